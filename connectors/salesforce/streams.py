"""The Salesforce objects leadloop pulls, declared once as `connectors.streams.Stream`s: name, sObject,
fields, cursor, and whether deleted rows are read.

Every stream reads incrementally by `SystemModstamp` (which, unlike LastModifiedDate, also moves on
system changes such as a Lead conversion), ties broken by `Id`, through `queryAll`, so deleted and
merged rows come back with `IsDeleted = true` and become tombstones. The fields selected are the
stream's own plus the mapping's `read` section for that object, intersected with what the org's
describe says exists: a custom field missing from the org degrades to None with a warning instead of
failing the query.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from leadloop.connectors.streams import Stream, by_name

log = logging.getLogger("leadloop.connectors.salesforce")

CURSOR = "SystemModstamp"


@dataclass(frozen=True, slots=True, kw_only=True)
class SalesforceStream(Stream):
    """A Salesforce stream: every one reads by `SystemModstamp` and `Id`."""

    cursor_field: str = CURSOR
    primary_key: str = "Id"
    include_deleted: bool = True  # queryAll: deleted rows become tombstones


STREAMS: tuple[SalesforceStream, ...] = (
    SalesforceStream(name="User", crm_object="User", include_deleted=False,
                     fields=("Id", "Name", "Email", "IsActive", "TimeZoneSidKey")),
    SalesforceStream(name="Account", crm_object="Account", fields=("Id", "Name", "Website", "CreatedDate")),
    SalesforceStream(name="Contact", crm_object="Contact", fields=(
        "Id", "AccountId", "Email", "FirstName", "LastName", "CreatedDate",
    )),
    SalesforceStream(name="Lead", crm_object="Lead", fields=(
        "Id", "Email", "FirstName", "LastName", "Company", "IsConverted", "ConvertedContactId",
        "ConvertedAccountId", "ConvertedDate", "CreatedDate",
    )),
    SalesforceStream(name="Campaign", crm_object="Campaign", fields=(
        "Id", "Name", "Type", "Status", "StartDate",
    )),
    SalesforceStream(name="Opportunity", crm_object="Opportunity", fields=(
        "Id", "AccountId", "Name", "StageName", "IsClosed", "IsWon", "Amount", "CloseDate", "CreatedDate",
        "OwnerId",
    )),
    SalesforceStream(name="OpportunityContactRole", crm_object="OpportunityContactRole", fields=(
        "Id", "OpportunityId", "ContactId", "Role", "IsPrimary",
    )),
    SalesforceStream(name="CampaignMember", crm_object="CampaignMember", fields=(
        "Id", "CampaignId", "LeadId", "ContactId", "Status", "HasResponded", "FirstRespondedDate",
        "CreatedDate", "Campaign.Name", "Campaign.Type",
    )),
    SalesforceStream(name="Task", crm_object="Task", fields=(
        "Id", "WhoId", "WhatId", "OwnerId", "Subject", "TaskSubtype", "Description", "Status",
        "ActivityDate", "CompletedDateTime", "CreatedDate", "LL_Key__c",
    )),
    SalesforceStream(name="Event", crm_object="Event", fields=(
        "Id", "WhoId", "WhatId", "OwnerId", "Subject", "StartDateTime", "DurationInMinutes",
        "ActivityDateTime", "CreatedDate",
    )),
)

STREAMS_BY_NAME: dict[str, SalesforceStream] = by_name(STREAMS)


def wanted_fields(stream: SalesforceStream, read_mapping: Mapping[str, Mapping[str, str]]) -> list[str]:
    """The stream's own fields, then its mapped read fields, then the cursor and IsDeleted; no repeats."""
    names: list[str] = [*stream.fields, *read_mapping.get(stream.crm_object, {}).values(),
                         stream.cursor_field]
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
