"""HubSpot payloads → canonical records. The only module that reads HubSpot `properties`.

HubSpot returns every property value as a string or null: numbers as `"1500.5"`, booleans as
`"true"`/`"false"`, datetimes as ISO-8601 with milliseconds (some engagement timestamps as epoch
milliseconds). A value that cannot be read raises `BadRecord`, which the source turns into a
`PulledPage.rejected` entry instead of failing the pull.

Which CRM property feeds which canonical field comes from the mapping's `read` section
(`read["contacts"]["title"] = "jobtitle"`); a mapped canonical name that is not a field of the record
lands in `attributes`. The Salesforce integration's cross-ids (`salesforcecontactid`,
`salesforceleadid`, `salesforceaccountid`) are kept in `attributes` under those names, for identity.

Docs: https://developers.hubspot.com/docs/api/crm/understanding-the-crm (object model),
https://developers.hubspot.com/docs/api/crm/engagements (calls, emails, meetings, tasks)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from pydantic import ValidationError

from leadloop.crm.records import Account, Activity, ActivityKind, CustomerType, Opportunity, Owner, Person

CROSS_IDS_PERSON = ("salesforcecontactid", "salesforceleadid")
CROSS_IDS_ACCOUNT = ("salesforceaccountid",)

_PERSON_FIELDS = frozenset(f.name for f in dataclasses.fields(Person))
_ACCOUNT_FIELDS = frozenset(f.name for f in dataclasses.fields(Account))
_BOOL_FIELDS = frozenset({"unsubscribed", "bounced", "partner_owned", "distributor_registered"})
_INT_FIELDS = frozenset({"employees"})
_FLOAT_FIELDS = frozenset({"annual_revenue"})

# HubSpot company `type` (PROSPECT, PARTNER, RESELLER, VENDOR, OTHER; portals add their own) → ours.
_COMPANY_TYPES = {
    "prospect": CustomerType.PROSPECT, "customer": CustomerType.CUSTOMER, "partner": CustomerType.PARTNER,
    "reseller": CustomerType.DISTRIBUTOR, "distributor": CustomerType.DISTRIBUTOR,
    "competitor": CustomerType.COMPETITOR, "vendor": CustomerType.OTHER, "other": CustomerType.OTHER,
}

ENGAGEMENT_KINDS = {"calls": ActivityKind.SALES_CALL, "emails": ActivityKind.SALES_EMAIL,
                    "meetings": ActivityKind.MEETING}
ENGAGEMENT_PREFIX = {"calls": "hs-call", "emails": "hs-sales-email", "meetings": "hs-meeting",
                     "tasks": "hs-task"}


class BadRecord(ValueError):
    """A HubSpot record whose values cannot become a canonical record; the message says why."""


@dataclass(frozen=True, slots=True)
class RawObject:
    """A CRM object as HubSpot sent it, reduced to what mapping needs."""

    id: str
    properties: Mapping[str, str | None]
    associations: Mapping[str, tuple[str, ...]]
    archived: bool = False
    archived_at: datetime | None = None
    updated_at: datetime | None = None


def raw_object(model: Any) -> RawObject:
    """A RawObject from the official client's SimplePublicObject(WithAssociations) model."""
    associations: dict[str, tuple[str, ...]] = {}
    for name, collection in (getattr(model, "associations", None) or {}).items():
        ids: dict[str, None] = {}
        for item in getattr(collection, "results", None) or []:
            ids[str(item.id)] = None
        associations[name] = tuple(ids)
    return RawObject(str(model.id), _texts(model.properties or {}), associations, bool(model.archived),
                     _aware(getattr(model, "archived_at", None)), _aware(getattr(model, "updated_at", None)))


def _texts(properties: Mapping[str, Any]) -> dict[str, str | None]:
    """Property values as HubSpot defines them, text or null, whatever type the payload carried."""
    return {str(k): v if v is None or isinstance(v, str) else str(v) for k, v in properties.items()}


def with_associations(raw: RawObject, associations: Mapping[str, tuple[str, ...]]) -> RawObject:
    """The same object with associations read separately (search results carry none)."""
    return dataclasses.replace(raw, associations={**raw.associations, **associations})


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_datetime(value: str | None, name: str = "value") -> datetime | None:
    """An ISO-8601 datetime, a date, or epoch milliseconds, as an aware UTC datetime."""
    if value is None or value == "":
        return None
    text = str(value).strip()
    try:
        if text.lstrip("-").isdigit():
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise BadRecord(f"{name} is not a datetime: {text[:40]!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def cursor_value(raw: RawObject, cursor_property: str) -> datetime | None:
    """The record's value of its stream's cursor property (falls back to `updatedAt`)."""
    value = parse_datetime(raw.properties.get(cursor_property), cursor_property)
    return value or raw.updated_at


def _number(value: str | None, name: str) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except ValueError:
        raise BadRecord(f"{name} is not a number: {value[:40]!r}") from None
    if not math.isfinite(number):
        raise BadRecord(f"{name} is not a finite number: {value[:40]!r}")
    return number


def _bool(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in ("", "false", "0", "no")


def _date(value: str | None, name: str) -> date | None:
    moment = parse_datetime(value, name)
    return moment.date() if moment else None


def _mapped(raw: RawObject, read: Mapping[str, str], own_fields: frozenset[str]
            ) -> tuple[dict[str, Any], dict[str, str]]:
    """(canonical field values, attributes) from the mapping's read section."""
    values: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    for canonical, crm_field in read.items():
        value = raw.properties.get(crm_field)
        if canonical not in own_fields:
            if value not in (None, ""):
                attributes[canonical] = str(value)
            continue
        if canonical in _BOOL_FIELDS:
            values[canonical] = _bool(value)
        elif canonical in _INT_FIELDS:
            number = _number(value, crm_field)
            values[canonical] = None if number is None else int(number)
        elif canonical in _FLOAT_FIELDS:
            values[canonical] = _number(value, crm_field)
        elif canonical == "customer_type":
            values[canonical] = _COMPANY_TYPES.get((value or "").strip().lower(), CustomerType.PROSPECT)
        else:
            values[canonical] = value
    return values, attributes


def _cross_ids(raw: RawObject, names: tuple[str, ...]) -> dict[str, str]:
    return {name: str(raw.properties[name]) for name in names if raw.properties.get(name)}


def _build(cls: type, **kwargs: Any) -> Any:
    try:
        return cls(**kwargs)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        raise BadRecord(problems) from None


def person_from_contact(raw: RawObject, read: Mapping[str, str]) -> Person:
    values, attributes = _mapped(raw, read, _PERSON_FIELDS)
    attributes.update(_cross_ids(raw, CROSS_IDS_PERSON))
    if raw.properties.get("hs_lead_status"):
        attributes.setdefault("hs_lead_status", str(raw.properties["hs_lead_status"]))
    company = raw.properties.get("associatedcompanyid") or next(iter(raw.associations.get("companies", ())),
                                                                 None)
    if company and not values.get("account_id"):
        values["account_id"] = f"hs-company:{int(_number(company, 'associatedcompanyid') or 0)}"
    values.pop("id", None)
    return _build(
        Person, id=f"hs-contact:{raw.id}", hubspot_id=raw.id, attributes=attributes,
        created_at=parse_datetime(raw.properties.get("createdate"), "createdate"),
        updated_at=cursor_value(raw, "lastmodifieddate"), **values,
    )


def account_from_company(raw: RawObject, read: Mapping[str, str]) -> Account:
    values, attributes = _mapped(raw, read, _ACCOUNT_FIELDS)
    attributes.update(_cross_ids(raw, CROSS_IDS_ACCOUNT))
    if "customer_type" not in values and raw.properties.get("type"):
        kind = str(raw.properties["type"]).lower()
        values["customer_type"] = _COMPANY_TYPES.get(kind, CustomerType.PROSPECT)
    if "website" not in values and raw.properties.get("website"):
        values["website"] = raw.properties["website"]
    values.pop("id", None)
    return _build(Account, id=f"hs-company:{raw.id}", hubspot_id=raw.id, attributes=attributes,
                  updated_at=cursor_value(raw, "hs_lastmodifieddate"), **values)


def opportunity_from_deal(raw: RawObject) -> Opportunity:
    p = raw.properties
    stage = (p.get("dealstage") or "").lower()
    won, closed = p.get("hs_is_closed_won"), p.get("hs_is_closed")
    is_won = _bool(won) if won is not None else stage == "closedwon"
    is_closed = _bool(closed) if closed is not None else stage in ("closedwon", "closedlost")
    companies = raw.associations.get("companies", ())
    return _build(
        Opportunity, id=f"hs-deal:{raw.id}", hubspot_id=raw.id, name=p.get("dealname"),
        stage=p.get("dealstage"),
        is_closed=is_closed, is_won=is_won, amount=_number(p.get("amount"), "amount"),
        close_date=_date(p.get("closedate"), "closedate"),
        created_at=parse_datetime(p.get("createdate"), "createdate"), owner_id=p.get("hubspot_owner_id"),
        account_id=f"hs-company:{companies[0]}" if companies else None,
        contact_ids=tuple(f"hs-contact:{c}" for c in raw.associations.get("contacts", ())),
    )


def activities_from_engagement(raw: RawObject, object_type: str) -> list[Activity]:
    """One Activity per associated contact of a call, email or meeting (a completed CALL/EMAIL task
    counts as the same); none for other tasks or engagements without a contact."""
    p = raw.properties
    if object_type == "tasks":
        task_type = (p.get("hs_task_type") or "").upper()
        if (p.get("hs_task_status") or "").upper() != "COMPLETED" or task_type not in ("CALL", "EMAIL"):
            return []
        kind = ActivityKind.SALES_CALL if task_type == "CALL" else ActivityKind.SALES_EMAIL
    else:
        kind = ENGAGEMENT_KINDS[object_type]
    occurred = parse_datetime(p.get("hs_timestamp"), "hs_timestamp") or parse_datetime(
        p.get("hs_meeting_start_time"), "hs_meeting_start_time")
    if occurred is None:
        raise BadRecord("hs_timestamp is missing")
    duration: float | None = None
    if object_type == "calls" and p.get("hs_call_duration"):
        duration = (_number(p.get("hs_call_duration"), "hs_call_duration") or 0) / 1000  # milliseconds
    elif object_type == "meetings":
        start = parse_datetime(p.get("hs_meeting_start_time"), "hs_meeting_start_time")
        end = parse_datetime(p.get("hs_meeting_end_time"), "hs_meeting_end_time")
        if start and end and end >= start:
            duration = (end - start).total_seconds()
    contacts = sorted(raw.associations.get("contacts", ()), key=lambda c: (len(c), c))
    prefix = ENGAGEMENT_PREFIX[object_type]
    activities = []
    for n, contact in enumerate(contacts):
        activity_id = f"{prefix}:{raw.id}" if n == 0 else f"{prefix}:{raw.id}:{contact}"
        activities.append(_build(Activity, id=activity_id, person_id=f"hs-contact:{contact}", kind=kind,
                                 occurred_at=occurred, duration_seconds=duration, source="hubspot"))
    return activities


def owner_from_hubspot(model: Any) -> Owner:
    """An Owner from the official client's PublicOwner model (`hubspot_owner_id` holds its `id`)."""
    name = " ".join(p for p in (getattr(model, "first_name", None), getattr(model, "last_name", None)) if p)
    return _build(Owner, id=f"hs-owner:{model.id}", crm_id=str(model.id), email=getattr(model, "email", None),
                  name=name or None, active=not bool(getattr(model, "archived", False)))


def values_text(value: str | int | float | None) -> str:
    """A value as HubSpot stores it: strings; integral floats without `.0`; None as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# -- activity sources outside the CRM objects ----------------------------------------------------------

# Form name keywords → what the submission means; the first match wins. Webinar registrations are read
# from marketing event participations instead, so their forms are skipped (None) to avoid counting twice.
FORM_KINDS: tuple[tuple[tuple[str, ...], ActivityKind | None], ...] = (
    (("webinar", "registration"), None),
    (("demo",), ActivityKind.DEMO_REQUEST),
    (("evaluation kit", "eval kit", "evk"), ActivityKind.EVAL_KIT_REQUEST),
    (("sample",), ActivityKind.SAMPLE_REQUEST),
    (("contact sales", "talk to sales", "sales inquiry", "call from sales", "quote", "pricing"),
     ActivityKind.CONTACT_SALES),
    (("partner", "referral"), ActivityKind.PARTNER_REFERRAL),
    (("download", "datasheet", "app note", "application note", "reference design", "white paper"),
     ActivityKind.ASSET_DOWNLOAD),
)
EMAIL_EVENT_KINDS = {"OPEN": ActivityKind.EMAIL_OPEN, "CLICK": ActivityKind.EMAIL_CLICK,
                     "BOUNCE": ActivityKind.HARD_BOUNCE}
ATTENDANCE_KINDS = {"WEBINAR": ActivityKind.WEBINAR_ATTENDED, "CONFERENCE": ActivityKind.TRADE_SHOW_SCAN,
                    "TRADESHOW": ActivityKind.TRADE_SHOW_SCAN, "WORKSHOP": ActivityKind.WORKSHOP_ATTENDED}


def form_kind(form_name: str | None) -> ActivityKind | None:
    """What a submission of this form means, by the form's name; FORM_FILL when nothing matches."""
    name = (form_name or "").lower()
    for keywords, kind in FORM_KINDS:
        if any(k in name for k in keywords):
            return kind
    return ActivityKind.FORM_FILL


def submission_email(submission: Mapping[str, Any]) -> str | None:
    for value in submission.get("values") or []:
        if str(value.get("name", "")).lower() == "email" and value.get("value"):
            return str(value["value"]).strip().lower()
    return None


def activity_from_submission(submission: Mapping[str, Any], form_name: str | None, contact_id: str
                             ) -> Activity | None:
    """A form submission (forms v1) as an Activity, or None for forms counted elsewhere."""
    kind = form_kind(form_name)
    if kind is None:
        return None
    return _build(Activity, id=f"hs-form:{submission.get('conversionId')}",
                  person_id=f"hs-contact:{contact_id}", kind=kind,
                  occurred_at=parse_datetime(str(submission.get("submittedAt")), "submittedAt"),
                  url=submission.get("pageUrl"), form_name=form_name, source="hubspot")


def activity_from_page_view(event: Mapping[str, Any]) -> Activity:
    """A web analytics `e_visited_page` event (events v3) as an Activity."""
    properties = event.get("properties") or {}
    return _build(Activity, id=f"hs-pageview:{event.get('id')}",
                  person_id=f"hs-contact:{event.get('objectId')}", kind=ActivityKind.PAGE_VIEW,
                  occurred_at=parse_datetime(event.get("occurredAt"), "occurredAt"),
                  url=properties.get("hs_url"), source="hubspot")


def activity_from_email_event(event: Mapping[str, Any], contact_id: str) -> Activity | None:
    """A marketing email event (email events v1) as an Activity; None for sends, deliveries and the like."""
    kind = EMAIL_EVENT_KINDS.get(str(event.get("type", "")).upper())
    if str(event.get("type", "")).upper() == "STATUSCHANGE":
        unsubscribed = str(event.get("portalSubscriptionStatus", "")).upper() == "UNSUBSCRIBED" or any(
            str(s.get("status", "")).upper() == "UNSUBSCRIBED" for s in event.get("subscriptions") or [])
        kind = ActivityKind.UNSUBSCRIBE if unsubscribed else None
    category = str(event.get("category", "HARD_BOUNCE")).upper()
    if kind == ActivityKind.HARD_BOUNCE and category != "HARD_BOUNCE":
        kind = None
    if kind is None:
        return None
    campaign = event.get("emailCampaignId")
    return _build(Activity, id=f"hs-email:{event.get('id')}", person_id=f"hs-contact:{contact_id}",
                  kind=kind,
                  occurred_at=parse_datetime(str(event.get("created")), "created"), url=event.get("url"),
                  campaign_id=f"hs-campaign:email-{campaign}" if campaign is not None else None,
                  source="hubspot")


def activity_from_participation(participation: Mapping[str, Any], event_type: str | None) -> Activity | None:
    """A marketing event participation (participant-state breakdown) as an Activity; None for
    cancellations and no-shows."""
    associations = participation.get("associations") or {}
    contact = (associations.get("contact") or {}).get("contactId")
    marketing_event = associations.get("marketingEvent") or {}
    properties = participation.get("properties") or {}
    state = str(properties.get("attendanceState", "")).upper()
    if state == "ATTENDED":
        kind = ATTENDANCE_KINDS.get(str(event_type or "").upper(), ActivityKind.WEBINAR_ATTENDED)
    elif state == "REGISTERED":
        kind = ActivityKind.WEBINAR_REGISTERED
    else:
        return None
    if not contact:
        raise BadRecord("participation names no contact")
    occurred = properties.get("occurredAt") or participation.get("createdAt")
    duration = properties.get("attendanceDurationSeconds")
    event_id = marketing_event.get("marketingEventId")
    return _build(Activity, id=f"hs-mevent:{participation.get('id')}", person_id=f"hs-contact:{contact}",
                  kind=kind, occurred_at=parse_datetime(str(occurred), "occurredAt"),
                  campaign_id=f"hs-campaign:{event_id}" if event_id else None,
                  campaign_name=marketing_event.get("name"),
                  duration_seconds=float(duration) if duration not in (None, "") else None, source="hubspot")
