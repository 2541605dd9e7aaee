"""The Salesforce objects leadloop pulls, declared once: name, sObject, fields, cursor, query kind.

Every stream reads incrementally by `SystemModstamp` (which, unlike LastModifiedDate, also moves on
system changes such as a Lead conversion) through `queryAll`, so deleted and merged rows come back
with `IsDeleted = true` and become tombstones. The fields selected are the stream's own plus the
mapping's `read` section for that object, intersected with what the org's describe says exists: a
custom field missing from the org degrades to None with a warning instead of failing the query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("leadloop.connectors.salesforce")

CURSOR = "SystemModstamp"


@dataclass(frozen=True, slots=True)
class Stream:
    name: str
    sobject: str
    fields: tuple[str, ...]
    cursor: str = CURSOR
    include_deleted: bool = True  # queryAll: deleted rows become tombstones


STREAMS: tuple[Stream, ...] = (
    Stream("User", "User", ("Id", "Name", "Email", "IsActive", "TimeZoneSidKey"), include_deleted=False),
    Stream("Account", "Account", ("Id", "Name", "Website", "CreatedDate")),
    Stream("Contact", "Contact", ("Id", "AccountId", "Email", "FirstName", "LastName", "CreatedDate")),
    Stream("Lead", "Lead", (
        "Id", "Email", "FirstName", "LastName", "Company", "IsConverted", "ConvertedContactId",
        "ConvertedAccountId", "ConvertedDate", "CreatedDate",
    )),
    Stream("Campaign", "Campaign", ("Id", "Name", "Type", "Status", "StartDate")),
    Stream("Opportunity", "Opportunity", (
        "Id", "AccountId", "Name", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate", "CreatedDate",
        "OwnerId",
    )),
    Stream("OpportunityContactRole", "OpportunityContactRole", (
        "Id", "OpportunityId", "ContactId", "Role", "IsPrimary",
    )),
    Stream("CampaignMember", "CampaignMember", (
        "Id", "CampaignId", "LeadId", "ContactId", "Status", "HasResponded", "FirstRespondedDate",
        "CreatedDate", "Campaign.Name", "Campaign.Type",
    )),
    Stream("Task", "Task", (
        "Id", "WhoId", "WhatId", "OwnerId", "Subject", "TaskSubtype", "Description", "Status",
        "ActivityDate", "CompletedDateTime", "CreatedDate", "LL_Key__c",
    )),
    Stream("Event", "Event", (
        "Id", "WhoId", "WhatId", "OwnerId", "Subject", "StartDateTime", "DurationInMinutes",
        "ActivityDateTime", "CreatedDate",
    )),
)

STREAMS_BY_NAME: dict[str, Stream] = {s.name: s for s in STREAMS}


def wanted_fields(stream: Stream, read_mapping: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The stream's own fields, then its mapped read fields, then the cursor and IsDeleted; no repeats."""
    names: list[str] = [*stream.fields, *read_mapping.get(stream.sobject, {}).values(), stream.cursor]
    if stream.include_deleted:
        names.append("IsDeleted")
    return list(dict.fromkeys(names))


def existing_fields(wanted: Iterable[str], describe: Mapping[str, Any], sobject: str) -> list[str]:
    """`wanted` minus the fields this org lacks; `Parent.Field` passes when the relationship exists."""
    described = describe.get("fields", ())
    fields = {f["name"] for f in described}
    relationships = {f.get("relationshipName") for f in described if f.get("relationshipName")}
    kept: list[str] = []
    for name in wanted:
        present = name.split(".", 1)[0] in relationships if "." in name else name in fields
        if present:
            kept.append(name)
        else:
            log.warning("salesforce %s.%s does not exist in this org; it reads as empty", sobject, name)
    return kept
