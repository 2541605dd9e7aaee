"""Salesforce rows → canonical records. The only module that sees Salesforce's raw dicts (`attributes`).

Ids are CRM-qualified (`sf-lead:`, `sf-contact:`, `sf-account:`, `sf-opp:`, `sf-ocr:`, `sf-campaign:`,
`sf-user:`, `sf-task:`, `sf-event:`, `sf-cm:`); owner ids stay raw Salesforce User ids, as routing's
owner directory expects. Person and Account fields come from the mapping's `read` section; a mapped
field that is not a canonical attribute lands in `attributes`. A converted Lead carries
`attributes["converted_to"] = "sf-contact:<ConvertedContactId>"` so identity follows it.

Activities, and how their kind is decided (first match wins):
- CampaignMember, by the member Status, then by the campaign Type:
  Status mentioning sample / evaluation kit / demo / download → that request or download;
  Type Webinar: responded or Status Attended → webinar_attended, else webinar_registered;
  Type Trade Show or Conference: responded → trade_show_scan (only invited: not an activity);
  Type Workshop or Seminar: responded → workshop_attended; Type Partner/Referral → partner_referral;
  Type Email: Status Clicked → email_click, Opened → email_open, Unsubscribed → unsubscribe,
  Bounced → hard_bounce (Sent: not an activity); any other type: responded → form_fill.
  occurred_at is FirstRespondedDate for responses, else CreatedDate.
- Task: TaskSubtype Call → sales_call, Email/ListEmail → sales_email; otherwise the Subject's words
  (marketing automation logs "Form fill: Request EVK-7710 evaluation kit"): evaluation kit / EVK →
  eval_kit_request, sample → sample_request, demo → demo_request, contact sales / a call from sales /
  a quote or pricing → contact_sales,
  download → asset_download, webinar attended/registered, trade show / booth → trade_show_scan,
  workshop → workshop_attended, referral → partner_referral, form → form_fill, page view / visited →
  page_view, unsubscribe, bounce, email click/open, call, email, meeting. A Task leadloop created itself
  (its `LL_Key__c` set) and a Task whose Subject says nothing recognizable are not activities.
- Event: meeting, lasting DurationInMinutes.
Activities without a Lead or Contact (WhoId of another kind) are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from leadloop.crm.records import (
    Account,
    Activity,
    ActivityKind,
    Campaign,
    ContactRole,
    CustomerType,
    Opportunity,
    Owner,
    Person,
)

PREFIX = {"Lead": "sf-lead", "Contact": "sf-contact", "Account": "sf-account", "Opportunity": "sf-opp",
          "OpportunityContactRole": "sf-ocr", "Campaign": "sf-campaign", "User": "sf-user", "Task": "sf-task",
          "Event": "sf-event", "CampaignMember": "sf-cm"}
KEY_PREFIX_PERSON = {"00Q": "sf-lead", "003": "sf-contact"}


class RejectedRow(ValueError):
    """A row whose values cannot form a canonical record; the message is the reason."""


@dataclass(frozen=True, slots=True)
class Mapped:
    """What one raw row became: a record, a tombstone id, nothing (not an activity), or a rejection."""

    record: Any = None
    deleted: str | None = None
    rejected: str | None = None
    cursor: datetime | None = None


def canonical_id(sobject: str, raw_id: str) -> str:
    return f"{PREFIX[sobject]}:{raw_id}"


def person_id_for(who_id: str | None) -> str | None:
    """`sf-lead:…` / `sf-contact:…` for a WhoId / LeadId / ContactId, None for other kinds."""
    if not who_id:
        return None
    prefix = KEY_PREFIX_PERSON.get(who_id[:3])
    return f"{prefix}:{who_id}" if prefix else None


def parse_datetime(value: Any) -> datetime | None:
    """Salesforce's `2024-05-01T10:00:00.000+0000` (also accepts `Z` and `+00:00`)."""
    if value in (None, ""):
        return None
    text = str(value)
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    text = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", text)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise RejectedRow(f"not a datetime: {str(value)[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise RejectedRow(f"not a date: {str(value)[:40]!r}") from None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    return str(value).strip().lower() not in ("", "false", "0", "no")


def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


_PERSON_FIELDS = {f.name for f in fields(Person)}
_ACCOUNT_FIELDS = {f.name for f in fields(Account)}
_BOOL_PERSON = {"unsubscribed", "bounced", "partner_owned", "distributor_registered"}
_CUSTOMER_TYPES: tuple[tuple[str, CustomerType], ...] = (
    ("competitor", CustomerType.COMPETITOR), ("distributor", CustomerType.DISTRIBUTOR),
    ("partner", CustomerType.PARTNER), ("reseller", CustomerType.PARTNER),
    ("customer", CustomerType.CUSTOMER), ("prospect", CustomerType.PROSPECT),
)


def customer_type(value: Any) -> CustomerType:
    """Account.Type picklist (`Customer - Direct`, `Channel Partner / Reseller`, ...) → CustomerType."""
    if not value:
        return CustomerType.PROSPECT
    text = str(value).lower()
    for word, kind in _CUSTOMER_TYPES:
        if word in text:
            return kind
    return CustomerType.OTHER


def _mapped_values(row: Mapping[str, Any], read: Mapping[str, str], known: set[str]
                   ) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for canonical, crm_field in read.items():
        raw = row.get(crm_field)
        if canonical in known:
            values[canonical] = raw
        elif raw not in (None, ""):
            attributes[canonical] = str(raw)
    return values, attributes


def _build(factory: Callable[..., Any], **kwargs: Any) -> Any:
    try:
        return factory(**kwargs)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg'].removeprefix('Value error, ')}"
            for e in error.errors())
        raise RejectedRow(problems) from None


def to_person(sobject: str, row: Mapping[str, Any], read: Mapping[str, str]) -> Person:
    values, attributes = _mapped_values(row, read, _PERSON_FIELDS - {"id", "attributes"})
    for name in _BOOL_PERSON & values.keys():
        values[name] = _as_bool(values[name])
    for name in ("first_name", "last_name", "title", "department", "country", "region", "company_name",
                 "lead_source", "lifecycle_status", "owner_id"):
        if name in values:
            values[name] = _as_text(values[name])
    values.pop("email_domain", None)
    raw_id = row["Id"]
    if values.get("account_id"):
        values["account_id"] = canonical_id("Account", values["account_id"])
    if sobject == "Lead":
        values["salesforce_lead_id"] = raw_id
        if row.get("IsConverted") and row.get("ConvertedContactId"):
            attributes["converted_to"] = canonical_id("Contact", row["ConvertedContactId"])
            if row.get("ConvertedAccountId"):
                attributes["converted_account"] = canonical_id("Account", row["ConvertedAccountId"])
    else:
        values["salesforce_contact_id"] = raw_id
        if not values.get("account_id") and row.get("AccountId"):
            values["account_id"] = canonical_id("Account", row["AccountId"])
    return _build(Person, id=canonical_id(sobject, raw_id), attributes=attributes,
                  created_at=parse_datetime(row.get("CreatedDate")),
                  updated_at=parse_datetime(row.get("SystemModstamp")), **values)


def to_account(row: Mapping[str, Any], read: Mapping[str, str]) -> Account:
    values, attributes = _mapped_values(row, read, _ACCOUNT_FIELDS - {"id", "attributes"})
    values["customer_type"] = customer_type(values.get("customer_type"))
    for name in ("employees", "annual_revenue"):
        if isinstance(values.get(name), str):
            values[name] = values[name].strip() or None
    values.setdefault("name", row.get("Name"))
    values.setdefault("website", row.get("Website"))
    return _build(Account, id=canonical_id("Account", row["Id"]), salesforce_id=row["Id"],
                  attributes=attributes, updated_at=parse_datetime(row.get("SystemModstamp")), **values)


def to_owner(row: Mapping[str, Any]) -> Owner:
    email = row.get("Email")
    return _build(Owner, id=canonical_id("User", row["Id"]), crm_id=row["Id"], name=row.get("Name"),
                  email=email, active=_as_bool(row.get("IsActive", True)),
                  time_zone=row.get("TimeZoneSidKey"))


def to_opportunity(row: Mapping[str, Any]) -> Opportunity:
    return _build(
        Opportunity, id=canonical_id("Opportunity", row["Id"]), salesforce_id=row["Id"],
        account_id=canonical_id("Account", row["AccountId"]) if row.get("AccountId") else None,
        name=row.get("Name"), stage=row.get("StageName"), is_closed=_as_bool(row.get("IsClosed")),
        is_won=_as_bool(row.get("IsWon")), amount=row.get("Amount"),
        close_date=parse_date(row.get("CloseDate")),
        created_at=parse_datetime(row.get("CreatedDate")), owner_id=row.get("OwnerId"),
    )


def to_contact_role(row: Mapping[str, Any]) -> ContactRole | None:
    person = person_id_for(row.get("ContactId"))
    if not person or not row.get("OpportunityId"):
        return None
    return _build(ContactRole, id=canonical_id("OpportunityContactRole", row["Id"]),
                  opportunity_id=canonical_id("Opportunity", row["OpportunityId"]), person_id=person,
                  role=row.get("Role"), is_primary=_as_bool(row.get("IsPrimary")))


def to_campaign(row: Mapping[str, Any], read: Mapping[str, str]) -> Campaign:
    topic_field = read.get("topic")
    return _build(Campaign, id=canonical_id("Campaign", row["Id"]), name=row.get("Name") or row["Id"],
                  type=row.get("Type"), topic=row.get(topic_field) if topic_field else None,
                  start_date=parse_date(row.get("StartDate")))


# -- activities ----------------------------------------------------------------------------------

_SUBJECT_KINDS: tuple[tuple[re.Pattern[str], ActivityKind], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), kind) for pattern, kind in (
        (r"evaluation kit|eval(uation)?[ -]kit|\bevk\b|\bevk-", ActivityKind.EVAL_KIT_REQUEST),
        (r"\bsamples?\b", ActivityKind.SAMPLE_REQUEST),
        (r"\bdemo\b", ActivityKind.DEMO_REQUEST),
        (r"contact(ed)? sales|talk to sales|contact us|call from sales|\bquote\b|pricing",
         ActivityKind.CONTACT_SALES),
        (r"unsubscribe", ActivityKind.UNSUBSCRIBE),
        (r"bounce", ActivityKind.HARD_BOUNCE),
        (r"webinar.*attend|attend.*webinar", ActivityKind.WEBINAR_ATTENDED),
        (r"webinar", ActivityKind.WEBINAR_REGISTERED),
        (r"trade ?show|booth|badge scan", ActivityKind.TRADE_SHOW_SCAN),
        (r"workshop", ActivityKind.WORKSHOP_ATTENDED),
        (r"referr", ActivityKind.PARTNER_REFERRAL),
        (r"download", ActivityKind.ASSET_DOWNLOAD),
        (r"\bform\b", ActivityKind.FORM_FILL),
        (r"page ?view|visited|web visit", ActivityKind.PAGE_VIEW),
        (r"email click|clicked", ActivityKind.EMAIL_CLICK),
        (r"email open|opened", ActivityKind.EMAIL_OPEN),
        (r"\bcall\b", ActivityKind.SALES_CALL),
        (r"\bmeeting\b", ActivityKind.MEETING),
        (r"\be-?mail\b", ActivityKind.SALES_EMAIL),
    )
)
_URL = re.compile(r"https?://\S+")


def task_kind(subtype: str | None, subject: str | None) -> ActivityKind | None:
    if subtype == "Call":
        return ActivityKind.SALES_CALL
    if subtype in ("Email", "ListEmail"):
        return ActivityKind.SALES_EMAIL
    for pattern, kind in _SUBJECT_KINDS:
        if subject and pattern.search(subject):
            return kind
    return None


def campaign_member_kind(campaign_type: str | None, status: str | None, responded: bool
                         ) -> ActivityKind | None:
    status_text = (status or "").lower()
    type_text = (campaign_type or "").lower()
    if "sample" in status_text:
        return ActivityKind.SAMPLE_REQUEST
    if "evaluation" in status_text or "eval kit" in status_text:
        return ActivityKind.EVAL_KIT_REQUEST
    if "demo" in status_text:
        return ActivityKind.DEMO_REQUEST
    if "download" in status_text:
        return ActivityKind.ASSET_DOWNLOAD
    if "webinar" in type_text:
        attended = responded or "attend" in status_text
        return ActivityKind.WEBINAR_ATTENDED if attended else ActivityKind.WEBINAR_REGISTERED
    if "trade" in type_text or "conference" in type_text:
        return ActivityKind.TRADE_SHOW_SCAN if responded else None
    if "workshop" in type_text or "seminar" in type_text:
        return ActivityKind.WORKSHOP_ATTENDED if responded else None
    if "partner" in type_text or "referral" in type_text:
        return ActivityKind.PARTNER_REFERRAL
    if "email" in type_text:
        for word, kind in (("click", ActivityKind.EMAIL_CLICK), ("open", ActivityKind.EMAIL_OPEN),
                           ("unsubscrib", ActivityKind.UNSUBSCRIBE), ("bounce", ActivityKind.HARD_BOUNCE)):
            if word in status_text:
                return kind
        return None
    return ActivityKind.FORM_FILL if responded else None


def _parent(row: Mapping[str, Any], relationship: str, field: str) -> Any:
    parent = row.get(relationship)
    if isinstance(parent, Mapping):
        return parent.get(field)
    return row.get(f"{relationship}.{field}")


def to_campaign_member(row: Mapping[str, Any]) -> Activity | None:
    person = person_id_for(row.get("ContactId")) or person_id_for(row.get("LeadId"))
    if person is None:
        return None
    responded = _as_bool(row.get("HasResponded"))
    kind = campaign_member_kind(_parent(row, "Campaign", "Type"), row.get("Status"), responded)
    if kind is None:
        return None
    responded_on = parse_date(row.get("FirstRespondedDate"))
    occurred = (datetime.combine(responded_on, datetime.min.time(), UTC) if responded and responded_on
                else parse_datetime(row.get("CreatedDate")) or parse_datetime(row.get("SystemModstamp")))
    campaign = row.get("CampaignId")
    return _build(Activity, id=canonical_id("CampaignMember", row["Id"]), person_id=person, kind=kind,
                  occurred_at=occurred, campaign_id=canonical_id("Campaign", campaign) if campaign else None,
                  campaign_name=_parent(row, "Campaign", "Name"), source="salesforce:CampaignMember")


def to_task(row: Mapping[str, Any], task_key_field: str) -> Activity | None:
    person = person_id_for(row.get("WhoId"))
    if person is None or row.get(task_key_field):
        return None
    subject = row.get("Subject")
    kind = task_kind(row.get("TaskSubtype"), subject)
    if kind is None:
        return None
    occurred = (parse_datetime(row.get("CompletedDateTime")) or parse_datetime(row.get("CreatedDate"))
                or parse_datetime(row.get("SystemModstamp")))
    url_match = _URL.search(row.get("Description") or "")
    form = subject.split(":", 1)[1].strip() if subject and ":" in subject else None
    return _build(Activity, id=canonical_id("Task", row["Id"]), person_id=person, kind=kind,
                  occurred_at=occurred,
                  url=url_match.group(0) if url_match else None,
                  form_name=form if kind not in (ActivityKind.SALES_CALL, ActivityKind.SALES_EMAIL) else None,
                  source="salesforce:Task")


def to_event(row: Mapping[str, Any]) -> Activity | None:
    person = person_id_for(row.get("WhoId"))
    if person is None:
        return None
    occurred = (parse_datetime(row.get("StartDateTime")) or parse_datetime(row.get("ActivityDateTime"))
                or parse_datetime(row.get("CreatedDate")))
    minutes = row.get("DurationInMinutes")
    return _build(Activity, id=canonical_id("Event", row["Id"]), person_id=person, kind=ActivityKind.MEETING,
                  occurred_at=occurred, duration_seconds=float(minutes) * 60 if minutes is not None else None,
                  source="salesforce:Event")


def map_row(sobject: str, row: Mapping[str, Any], read: Mapping[str, Mapping[str, str]],
            task_key_field: str) -> Mapped:
    """One raw row → a record, a tombstone, nothing, or a rejection (never raises for bad values)."""
    raw_id = row.get("Id")
    if not raw_id:
        return Mapped(rejected="row without an Id")
    try:
        cursor = parse_datetime(row.get("SystemModstamp"))
    except RejectedRow as error:
        return Mapped(rejected=str(error))
    if _as_bool(row.get("IsDeleted")):
        return Mapped(deleted=canonical_id(sobject, raw_id), cursor=cursor)
    try:
        record = _map_live(sobject, row, read, task_key_field)
    except RejectedRow as error:
        return Mapped(rejected=str(error), cursor=cursor)
    except (TypeError, ValueError, AttributeError, OverflowError) as error:
        # a value of a type the API never sends for that field (a number as an id, a list as a subject)
        reason = f"unreadable values ({type(error).__name__}: {str(error)[:200]})"
        return Mapped(rejected=reason, cursor=cursor)
    return Mapped(record=record, cursor=cursor)


def _map_live(sobject: str, row: Mapping[str, Any], read: Mapping[str, Mapping[str, str]],
              task_key_field: str) -> Any:
    object_read = read.get(sobject, {})
    if sobject in ("Lead", "Contact"):
        return to_person(sobject, row, object_read)
    if sobject == "Account":
        return to_account(row, object_read)
    if sobject == "User":
        return to_owner(row)
    if sobject == "Opportunity":
        return to_opportunity(row)
    if sobject == "OpportunityContactRole":
        return to_contact_role(row)
    if sobject == "Campaign":
        return to_campaign(row, object_read)
    if sobject == "CampaignMember":
        return to_campaign_member(row)
    if sobject == "Task":
        return to_task(row, task_key_field)
    if sobject == "Event":
        return to_event(row)
    raise RejectedRow(f"no mapping for {sobject}")
