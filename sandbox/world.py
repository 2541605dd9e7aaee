"""The neutral generated world that fills both sandbox CRMs.

Plain stdlib dataclasses, independent of either CRM's wire format: each backend renders its own share
(`in_salesforce`, `salesforce_kind`, `in_hubspot`, an event's `channel`) in its native objects. All
timestamps are timezone-aware UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal

CustomerType = Literal["prospect", "customer", "partner", "distributor", "competitor"]
Channel = Literal["salesforce", "hubspot"]
EventKind = Literal[
    "page_view", "form_fill", "asset_download", "eval_kit_request", "sample_request", "demo_request",
    "contact_sales", "webinar_registered", "webinar_attended", "trade_show_scan", "workshop_attended",
    "partner_referral", "email_open", "email_click", "unsubscribe", "hard_bounce", "sales_call",
    "sales_email", "meeting",
]
SIZES: dict[str, int] = {"tiny": 50, "small": 2_000, "medium": 20_000, "large": 100_000}


@dataclass(slots=True)
class Rep:
    """A sales rep (a Salesforce User, a HubSpot owner) with a territory."""

    key: str
    email: str
    first_name: str
    last_name: str
    time_zone: str  # IANA name, e.g. America/Chicago
    region: str  # NA | EMEA | APAC
    active: bool


@dataclass(slots=True)
class Company:
    key: str
    name: str
    domain: str | None
    website: str | None
    industry: str | None
    segment: str | None
    application: str | None
    device_type: str | None
    process: str | None
    region: str | None
    country: str | None
    employees: int | None
    annual_revenue: float | None
    customer_type: CustomerType
    owner_rep: str | None  # Rep.key
    in_salesforce: bool
    in_hubspot: bool
    created_at: datetime
    modified_at: datetime


@dataclass(slots=True)
class Human:
    """One person. With `salesforce_kind` set and `in_hubspot` true, the same person is in both CRMs
    (same email)."""

    key: str
    email: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    department: str | None
    country: str | None
    company_key: str | None
    salesforce_kind: Literal["lead", "contact"] | None
    in_hubspot: bool
    lead_source: str | None
    lead_status: str | None  # Salesforce Lead Status, e.g. Open - Not Contacted
    lifecycle_stage: str | None  # HubSpot lifecyclestage, e.g. marketingqualifiedlead
    owner_rep: str | None  # Rep.key
    unsubscribed: bool
    bounced: bool
    partner_owned: bool
    converted: bool  # a Lead later converted to a Contact (salesforce_kind is then "contact")
    created_at: datetime
    modified_at: datetime


@dataclass(slots=True)
class Campaign:
    key: str
    name: str
    type: Literal["webinar", "trade_show", "workshop", "partner_referral", "email"]
    topic: str
    breadth: Literal["narrow", "broad"]
    start_date: date


@dataclass(slots=True)
class Asset:
    key: str
    name: str
    type: Literal["datasheet", "application_note", "reference_design", "evaluation_kit", "sample",
                  "webinar", "workshop", "trade_show"]
    url: str
    form_name: str | None
    product_family: str
    segment: str | None
    stage: Literal["learn", "evaluate", "validate", "buy"]


@dataclass(slots=True)
class Event:
    key: str
    human_key: str
    kind: EventKind
    occurred_at: datetime
    url: str | None
    form_name: str | None
    campaign_key: str | None
    asset_key: str | None
    duration_seconds: float | None
    channel: Channel  # which CRM records it


@dataclass(slots=True)
class Deal:
    key: str
    company_key: str
    name: str
    stage: str  # Salesforce-style stage name, e.g. Qualification, Closed Won
    amount: float | None
    close_date: date
    created_at: datetime
    is_closed: bool
    is_won: bool
    owner_rep: str | None
    contact_keys: tuple[str, ...]
    channel: Channel


@dataclass(slots=True)
class World:
    seed: int
    size: str
    generated_at: datetime
    reps: list[Rep] = field(default_factory=list)
    companies: list[Company] = field(default_factory=list)
    humans: list[Human] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)


def generate_world(size: str, seed: int, now: datetime | None = None) -> World:
    """A deterministic world of `size` (tiny|small|medium|large) for `seed`."""
    raise NotImplementedError("the generator lands in the next commit")
