"""Where an account's tasks go when the playbook says `tasks_in: owner_crm`: the CRM of an open
opportunity on the account, else the CRM of the account's owner, whose id is the CRM's own (a HubSpot
owner's number, a Salesforce User id) and is known by the owners pulled from each CRM."""

from __future__ import annotations

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Crm, Opportunity, Owner
from leadloop.sync.writeback import task_crm_preferences

OWNERS = [Owner(id="hs-owner:64492900", crm_id="64492900", email="rachel@voltaris-semi.com"),
          Owner(id="sf-user:005Dn0000000006IAA", crm_id="005Dn0000000006IAA", email="dan@voltaris-semi.com")]


def test_an_account_owned_in_hubspot_or_salesforce_keeps_its_tasks_in_that_crm():
    dataset = Dataset(owners=OWNERS, accounts=[
        Account(id="acc-hs", owner_id="64492900"), Account(id="acc-sf", owner_id="005Dn0000000006IAA"),
        Account(id="acc-unknown-owner", owner_id="99"), Account(id="acc-no-owner")])
    assert task_crm_preferences(dataset) == {"acc-hs": Crm.HUBSPOT, "acc-sf": Crm.SALESFORCE}


def test_an_open_opportunity_outweighs_the_owner_and_a_closed_one_does_not():
    dataset = Dataset(owners=OWNERS, accounts=[Account(id="a1", owner_id="64492900"),
                                               Account(id="a2", owner_id="64492900")],
                      opportunities=[Opportunity(id="o1", account_id="a1", salesforce_id="006x"),
                                     Opportunity(id="o2", account_id="a2", salesforce_id="006y",
                                                 is_closed=True)])
    assert task_crm_preferences(dataset) == {"a1": Crm.SALESFORCE, "a2": Crm.HUBSPOT}
