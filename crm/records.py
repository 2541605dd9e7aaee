"""Canonical records: the one vocabulary every part of leadloop speaks.

Connectors turn CRM payloads into these at the boundary; scoring and routing only ever see these.
They are frozen, slotted pydantic dataclasses: validated and normalized once at construction
(emails lower-cased, domains extracted, titles trimmed, timestamps made timezone-aware UTC), and
small enough in memory that millions of activities fit in a scoring run.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, ConfigDict, Field
from pydantic.dataclasses import dataclass

_CONFIG = ConfigDict(str_strip_whitespace=True, extra="forbid", allow_inf_nan=False)
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")


def _utc(value: datetime) -> datetime:
    """Naive timestamps are taken as UTC; aware ones are converted to UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _email(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {_masked(value)!r}")
    return value


def _masked(value: str) -> str:
    """An invalid address as errors and logs may show it: its shape, not the person's name."""
    for separator in ("@", " at "):
        if separator in value:
            local, domain = value.split(separator, 1)
            return f"{local[:1]}***{separator}{domain[:60]}"
    return f"{value[:1]}***"


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _folded(value: str) -> str | None:
    """Whitespace runs collapsed to one space, ends trimmed, blank → None. It runs after the string
    check and only on strings: a null, the usual value of most text fields, never reaches Python.
    Records are re-validated on every reload of the store, and calling a validator for each null
    field was a sixth of validating an activity."""
    return " ".join(value.split()) or None


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]
Email = Annotated[str | None, BeforeValidator(_blank_to_none), AfterValidator(_email)]
Text = Annotated[str, AfterValidator(_folded)] | None


def email_domain(email: str | None) -> str | None:
    """The domain part of a (normalized) email address, or None."""
    if not email or "@" not in email:
        return None
    return email.rsplit("@", 1)[1]


def website_domain(website: str | None) -> str | None:
    """`https://www.Acme-Semi.com/products` → `acme-semi.com`."""
    if not website:
        return None
    host = website.strip().lower()
    host = re.sub(r"^[a-z][a-z0-9+.-]*://", "", host)
    host = host.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0]
    if host.startswith("www."):
        host = host[4:]
    return host or None


class Crm(StrEnum):
    SALESFORCE = "salesforce"
    HUBSPOT = "hubspot"


class ActivityKind(StrEnum):
    """What a person did. Assets and campaigns say what it was about; the kind says how deep."""

    PAGE_VIEW = "page_view"
    FORM_FILL = "form_fill"
    ASSET_DOWNLOAD = "asset_download"
    EVAL_KIT_REQUEST = "eval_kit_request"
    SAMPLE_REQUEST = "sample_request"
    DEMO_REQUEST = "demo_request"
    CONTACT_SALES = "contact_sales"
    WEBINAR_REGISTERED = "webinar_registered"
    WEBINAR_ATTENDED = "webinar_attended"
    TRADE_SHOW_SCAN = "trade_show_scan"
    WORKSHOP_ATTENDED = "workshop_attended"
    PARTNER_REFERRAL = "partner_referral"
    EMAIL_OPEN = "email_open"
    EMAIL_CLICK = "email_click"
    UNSUBSCRIBE = "unsubscribe"
    HARD_BOUNCE = "hard_bounce"
    SALES_CALL = "sales_call"
    SALES_EMAIL = "sales_email"
    MEETING = "meeting"


class CustomerType(StrEnum):
    PROSPECT = "prospect"
    CUSTOMER = "customer"
    PARTNER = "partner"
    DISTRIBUTOR = "distributor"
    COMPETITOR = "competitor"
    OTHER = "other"


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Account:
    """A company: a Salesforce Account and/or a HubSpot company."""

    id: str
    name: Text = None
    website: Text = None
    domain: Text = None
    industry: Text = None
    segment: Text = None
    application: Text = None
    device_type: Text = None
    process: Text = None
    package: Text = None
    region: Text = None
    country: Text = None
    employees: Annotated[int | None, Field(ge=0)] = None
    annual_revenue: Annotated[float | None, Field(ge=0)] = None
    customer_type: CustomerType = CustomerType.PROSPECT
    owner_id: Text = None
    salesforce_id: Text = None
    hubspot_id: Text = None
    attributes: dict[str, str] = Field(default_factory=dict)
    updated_at: UtcDatetime | None = None

    def __post_init__(self) -> None:
        # a domain that normalizes to nothing falls back to the website's, so that normalizing an
        # already-normalized account changes nothing
        domain = website_domain(self.domain) if self.domain else None
        object.__setattr__(self, "domain", domain or website_domain(self.website))


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Person:
    """One human: a Salesforce Lead or Contact and/or a HubSpot contact, with the ids it has in each."""

    id: str
    email: Email = None
    email_domain: Text = None
    first_name: Text = None
    last_name: Text = None
    title: Text = None
    department: Text = None
    country: Text = None
    region: Text = None
    account_id: Text = None
    company_name: Text = None
    lead_source: Text = None
    lifecycle_status: Text = None
    owner_id: Text = None
    unsubscribed: bool = False
    bounced: bool = False
    partner_owned: bool = False
    distributor_registered: bool = False
    salesforce_lead_id: Text = None
    salesforce_contact_id: Text = None
    hubspot_id: Text = None
    attributes: dict[str, str] = Field(default_factory=dict)
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "email_domain", email_domain(self.email))

    @property
    def name(self) -> str:
        full = " ".join(p for p in (self.first_name, self.last_name) if p)
        return full or self.email or self.id


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Activity:
    """Something a person did, at a moment: a form fill, a download, a visit, a booth scan, a call."""

    id: str
    person_id: str
    kind: ActivityKind
    occurred_at: UtcDatetime
    url: Text = None
    form_name: Text = None
    campaign_id: Text = None
    campaign_name: Text = None
    asset_id: Text = None
    duration_seconds: Annotated[float | None, Field(ge=0)] = None
    source: Text = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Opportunity:
    id: str
    account_id: Text = None
    name: Text = None
    stage: Text = None
    is_closed: bool = False
    is_won: bool = False
    amount: float | None = None
    close_date: date | None = None
    created_at: UtcDatetime | None = None
    owner_id: Text = None
    contact_ids: tuple[str, ...] = ()
    salesforce_id: Text = None
    hubspot_id: Text = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Campaign:
    """A program: a webinar, trade show, workshop, partner referral program or email campaign."""

    id: str
    name: str
    type: Text = None
    topic: Text = None
    start_date: date | None = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Asset:
    """A piece of content or an offer: datasheet, app note, reference design, EVK, sample, webinar."""

    id: str
    name: str
    type: str
    product_family: Text = None
    segment: Text = None
    stage: Text = None
    url: Text = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class Owner:
    """A CRM user who can own records and tasks (a Salesforce User, a HubSpot owner)."""

    id: str
    email: Email = None
    name: Text = None
    active: bool = True
    time_zone: Text = None
    crm_id: Text = None


@dataclass(frozen=True, slots=True, config=_CONFIG)
class ContactRole:
    """A person's role on an opportunity (a Salesforce OpportunityContactRole, a HubSpot deal–contact
    association): who is on the buying committee."""

    id: str
    opportunity_id: str
    person_id: str
    role: Text = None
    is_primary: bool = False
