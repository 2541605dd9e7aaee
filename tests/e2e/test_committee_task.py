"""A buying committee reaches a rep: a design engineer, a product manager and a buyer at one account
each download the same reference design, as marketing automation logs it into Salesforce. Each stays
just under the person threshold (Nurture), the account becomes an Engaged account, and the account
owner gets one account task in each CRM, read back through the official clients (simple-salesforce,
hubspot-api-client): a Salesforce Task related to the Account (WhatId, no WhoId) and a HubSpot task
associated with the company, both owned by the account owner and naming the members, their roles and
what each did. A second sync adds nothing.

The CRMs start empty (after `crm setup`); everything is built here through the CRMs' own APIs: the
account owner as a user of each CRM, a Salesforce Account with three Contacts and their downloads, and
the HubSpot company of the same domain. The sync is the real `hourly_sync` flow on a Prefect engine
(`prefect_harness`), with the shipped semiconductor playbook changed in one place: `tasks_in: both`,
so that the one account task lands in both CRMs.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadloop.sandbox.server import SandboxHandle

PROJECT = Path(__file__).resolve().parents[2]
OWNER = "katrin.vogel@voltaris-semi.com"
DOMAIN = "brightline-drives.de"
ACCOUNT_NAME = "Brightline Drives GmbH"
REFERENCE_DESIGN = "VoltEdge 800 V traction-inverter reference design"
COMMITTEE = [  # first, last, title, department, the role the playbook's personas give the title
    ("Dana", "Lindqvist", "Senior Power Electronics Design Engineer", "Engineering", "engineering"),
    ("Pat", "Moreau", "Product Manager, Traction Inverters", "Product Management", "product management"),
    ("Sam", "Berger", "Senior Buyer, Power Semiconductors", "Purchasing", "procurement"),
]


def format_soql(query: str, *args: Any) -> str:
    from simple_salesforce import format_soql as formatted

    return str(formatted(query, *args))


def playbook_with_tasks_in_both(path: Path) -> Path:
    playbook = yaml.safe_load((PROJECT / "playbooks" / "semiconductor.yaml").read_text(encoding="utf-8"))
    playbook["routing"]["tasks_in"] = "both"
    path.write_text(yaml.safe_dump(playbook, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def add_owner_to_both_crms(handle: SandboxHandle) -> dict[str, Any]:
    """Katrin Vogel as a Salesforce User and a HubSpot user (so a HubSpot owner), as an admin adds a
    rep; returns her Salesforce User."""
    from hubspot.settings.users import UserProvisionRequest

    hs = handle.hubspot()
    role = next(r for r in hs.settings.users.roles_api.get_all().results if r.name == "Sales rep")
    hs.settings.users.users_api.create(UserProvisionRequest(email=OWNER, role_id=role.id))
    sf = handle.salesforce()
    profile = sf.query("SELECT Id FROM Profile WHERE Name = 'Standard User'")["records"][0]["Id"]
    created = sf.User.create({"Username": OWNER, "Email": OWNER, "FirstName": "Katrin", "LastName": "Vogel",
                              "Alias": "kvogel", "TimeZoneSidKey": "Europe/Berlin", "ProfileId": profile})
    return {"Id": created["id"]}


def build_committee(handle: SandboxHandle) -> dict[str, Any]:
    """The account in both CRMs, owned by Katrin Vogel, and three Contacts who each download the
    reference design (a completed Task whose subject and URL say so, as marketing automation logs a
    gated download)."""
    sf, hs = handle.salesforce(), handle.hubspot()
    user = add_owner_to_both_crms(handle)
    account_id = sf.Account.create({
        "Name": ACCOUNT_NAME, "Website": f"https://www.{DOMAIN}", "Industry": "Automotive",
        "Type": "Prospect", "BillingCountry": "DE", "NumberOfEmployees": 2400, "OwnerId": user["Id"],
        "Application_Segment__c": "automotive power", "Application__c": "EV traction inverter",
        "Device_Type__c": "SiC MOSFET", "Process_Node__c": "SiC", "Region__c": "EMEA"})["id"]
    hubspot_owner = next(o.id for o in hs.crm.owners.get_all() if o.email == OWNER)
    company_id = hs.crm.companies.basic_api.create({"properties": {
        "name": ACCOUNT_NAME, "domain": DOMAIN, "industry": "Automotive", "country": "DE",
        "hubspot_owner_id": hubspot_owner}}).id
    contacts = []
    for first, last, title, department, _role in COMMITTEE:
        contact_id = sf.Contact.create({
            "FirstName": first, "LastName": last, "Title": title, "Department": department,
            "Email": f"{first.lower()}.{last.lower()}@{DOMAIN}", "AccountId": account_id,
            "MailingCountry": "DE"})["id"]
        sf.Task.create({
            "WhoId": contact_id, "Subject": f"Form fill: Download {REFERENCE_DESIGN}", "Status": "Completed",
            "ActivityDate": datetime.now(UTC).date().isoformat(),
            "Description": "URL: https://www.voltaris-semi.com/products/voltedge-sic/reference-design\n"
                           f"Asset: {REFERENCE_DESIGN}\nAsset type: reference_design"})
        contacts.append(contact_id)
    return {"account_id": account_id, "company_id": company_id, "contacts": contacts, "user_id": user["Id"],
            "hubspot_owner": hubspot_owner}


def run_sync(options: Any) -> Any:
    """One hourly sync, a real flow run; its summary."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.steps import summary_of

    return summary_of(hourly_sync(options))


def salesforce_tasks(handle: SandboxHandle, built: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """leadloop's Tasks on the account, and on its three people."""
    sf = handle.salesforce()
    select = ("SELECT Id, LL_Key__c, OwnerId, Owner.Email, WhoId, WhatId, Subject, Description, Status"
              " FROM Task WHERE LL_Key__c != null AND ")
    on_account = sf.query_all(format_soql(select + "WhatId = {}", built["account_id"]))
    on_people = sf.query_all(format_soql(select + "WhoId IN {}", built["contacts"]))
    return {"account": on_account["records"], "people": on_people["records"]}


def hubspot_company_tasks(handle: SandboxHandle, built: dict[str, Any]) -> list[dict[str, Any]]:
    """leadloop's tasks associated with the company (each with the companies it is associated with)."""
    hs = handle.hubspot()
    page = hs.crm.associations.v4.basic_api.get_page("companies", built["company_id"], "tasks")
    found = []
    for association in page.results:
        task = hs.crm.objects.basic_api.get_by_id(
            "tasks", str(association.to_object_id), associations=["companies", "contacts"],
            properties=["ll_key", "hubspot_owner_id", "hs_task_subject", "hs_task_body", "hs_task_status"])
        if task.properties.get("ll_key"):
            companies = task.associations.get("companies") if task.associations else None
            contacts = task.associations.get("contacts") if task.associations else None
            found.append({**task.properties, "id": task.id,
                          "companies": [r.id for r in companies.results] if companies else [],
                          "contacts": [r.id for r in contacts.results] if contacts else []})
    return found


@pytest.fixture(scope="module")
def synced(crm_sandbox, prefect_harness: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from leadloop.flows.options import SyncOptions

    workdir = tmp_path_factory.mktemp("committee")
    connection = workdir / "connection.json"
    with crm_sandbox(connection, empty=True) as handle:
        built = build_committee(handle)
        options = SyncOptions(connection_file=str(connection),
                              playbook=str(playbook_with_tasks_in_both(workdir / "both.yaml")),
                              store_url=f"sqlite:///{workdir / 'state.db'}")
        summary = run_sync(options)
        yield {"handle": handle, "built": built, "options": options, "summary": summary,
               "salesforce": salesforce_tasks(handle, built), "hubspot": hubspot_company_tasks(handle, built)}


def test_a_committee_of_three_at_one_account_yields_one_account_task_in_salesforce(synced):
    tasks, built = synced["salesforce"], synced["built"]
    assert tasks["people"] == [], "each member stays under the person threshold: no person task"
    (task,) = tasks["account"]
    assert task["WhoId"] is None and task["WhatId"] == built["account_id"]
    assert task["OwnerId"] == built["user_id"] and task["Owner"]["Email"] == OWNER
    assert task["Status"] == "Not Started"
    assert task["Subject"] == (f"Buying committee at {ACCOUNT_NAME}: "
                               "engineering, procurement, product management")
    body = task["Description"]
    assert body.startswith(f"Buying committee at {ACCOUNT_NAME} (Engaged account): 3 roles engaged")
    for first, last, title, _department, role in COMMITTEE:
        assert f"- {first} {last} · {title} · {role} · intent " in body, body
    assert body.count(f"downloaded the {REFERENCE_DESIGN} on ") == 3, body
    assert "Next step\n- Call the engineer first" in body


def test_the_company_gets_the_same_account_task_in_hubspot(synced):
    built = synced["built"]
    (task,) = synced["hubspot"]
    (salesforce_task,) = synced["salesforce"]["account"]
    assert task["ll_key"] == salesforce_task["LL_Key__c"]
    assert task["companies"] == [str(built["company_id"])] and task["contacts"] == []
    assert task["hubspot_owner_id"] == str(built["hubspot_owner"])
    assert task["hs_task_subject"] == salesforce_task["Subject"]
    assert task["hs_task_body"] == salesforce_task["Description"]
    assert task["hs_task_status"] == "NOT_STARTED"


def test_a_second_sync_raises_no_second_account_task(synced):
    again = run_sync(synced["options"])
    assert sum(w.tasks_written for w in again.writes) == 0
    now = salesforce_tasks(synced["handle"], synced["built"])
    assert [t["Id"] for t in now["account"]] == [t["Id"] for t in synced["salesforce"]["account"]]
    assert now["people"] == []
    assert [t["id"] for t in hubspot_company_tasks(synced["handle"], synced["built"])] == [
        t["id"] for t in synced["hubspot"]]
