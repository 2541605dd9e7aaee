"""The Salesforce record ids that HubSpot's Salesforce integration stores on synced records
(`salesforcecontactid`, `salesforceleadid`, `salesforceaccountid`, `salesforceownerid`).

https://knowledge.hubspot.com/salesforce/salesforce-integration-faq (the integration's Salesforce ID
properties). The sandbox's Salesforce org numbers the records it loads from the world in world order
(users after its integration user, accounts, then each person: a Lead, or a Contact followed by the Lead
it was converted from), and writes 18-character ids on pod "Dn0"; the ids are rebuilt here from the
same order, since the two backends share nothing but the world. tests/connectors checks that both agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_POD = "Dn0"
_FIRST_REP_USER = 2  # user 1 is the org's integration user


def salesforce_id(prefix: str, number: int) -> str:
    """The 18-character id of the `number`-th record with key prefix `prefix`."""
    digits = []
    for _ in range(9):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    id15 = prefix + _POD + "".join(reversed(digits))
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= char <= "Z")
        suffix += _CHECKSUM_ALPHABET[bits]
    return id15 + suffix


@dataclass(slots=True)
class SalesforceIds:
    """World keys -> the ids the same records carry in the sandbox's Salesforce org."""

    users: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)
    contacts: dict[str, str] = field(default_factory=dict)
    leads: dict[str, str] = field(default_factory=dict)


def salesforce_ids(world: Any) -> SalesforceIds:
    ids = SalesforceIds()
    for index, rep in enumerate(world.reps):
        ids.users[rep.key] = salesforce_id("005", _FIRST_REP_USER + index)
    accounts = [c for c in world.companies if c.in_salesforce]
    ids.accounts = {c.key: salesforce_id("001", n) for n, c in enumerate(accounts, 1)}
    contact_number = lead_number = 0
    for human in world.humans:
        if human.salesforce_kind == "lead":
            lead_number += 1
            ids.leads[human.key] = salesforce_id("00Q", lead_number)
        elif human.salesforce_kind == "contact":
            contact_number += 1
            ids.contacts[human.key] = salesforce_id("003", contact_number)
            if human.converted:
                lead_number += 1
                ids.leads[human.key] = salesforce_id("00Q", lead_number)
    return ids
