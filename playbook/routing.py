"""Schema of the playbook's `routing:` section (owned by routing; lives here because the playbook
schema as a whole is scoring's, and scoring must not import routing).

The section says what happens to a scored person: the action per tier, who owns the lead (reps,
pools, territories, fallback), how fast (SLAs in business time), what is suppressed, which nurture
track applies, and what the rep is told (next step and qualification questions per stage). Every
rule carries a `why`, shown to reps and reviewers. Cross-references (a pool naming an unknown rep, a
territory naming an unknown pool) are checked here; references to the scoring part (tier, profile
and escalation SLA names) are checked by `routing_problems`.
"""

from __future__ import annotations

import datetime as dt
import re
import string
from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

Why = Annotated[str, Field(min_length=3, description="Why this rule exists; shown to reps and reviewers.")]
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SUBJECT_FIELDS = frozenset({"name", "account", "tier", "trigger", "title"})
_SLA_SHORTHAND = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(h|bh|d|bd)\s*$", re.IGNORECASE)


class _Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


def _valid_time_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r} (use an IANA name such as 'Europe/Berlin')") from None
    return value


@lru_cache(maxsize=1)
def _holiday_countries() -> dict[str, frozenset[str]]:
    """Country code → its subdivision codes, for every country the `holidays` library knows."""
    import holidays as holiday_library  # on first use: ~0.1 s that commands which never route skip

    return {country: frozenset(subdivisions)
            for country, subdivisions in holiday_library.list_supported_countries().items()}


NO_PUBLIC_HOLIDAYS = "none"


def _holiday_calendar(value: object) -> str:
    """A public-holiday calendar: an ISO 3166 country code the `holidays` library supports,
    optionally with a subdivision (`SG`, `US`, `DE-BY`), or `none` (null too) for no public holidays."""
    if value is None:
        return NO_PUBLIC_HOLIDAYS
    if value is False:  # YAML 1.1 reads a bare NO (Norway) as false
        raise ValueError("must be a country code; for Norway write 'NO' in quotes (YAML reads NO as false)")
    if not isinstance(value, str):
        raise ValueError(f"must be a country code such as 'SG' or 'DE-BY', or none (got {value!r})")
    text = value.strip()
    if text.lower() == NO_PUBLIC_HOLIDAYS:
        return NO_PUBLIC_HOLIDAYS
    country, _, subdivision = text.upper().partition("-")
    known = _holiday_countries()
    if country not in known:
        raise ValueError(f"unknown country {text!r} for public holidays: use an ISO 3166 code the `holidays` "
                         "library supports, such as 'SG', 'US' or 'DE-BY' (or none)")
    if subdivision and subdivision not in known[country]:
        choices = ", ".join(sorted(known[country])) or "none, use the country alone"
        raise ValueError(f"unknown subdivision {subdivision!r} of {country} for public holidays; "
                         f"its subdivisions: {choices}")
    return f"{country}-{subdivision}" if subdivision else country


HolidayCalendar = Annotated[str, BeforeValidator(_holiday_calendar)]


@lru_cache(maxsize=1024)
def _lower_set(values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in values)


class DateRange(_Rule):
    """Inclusive range of calendar days, e.g. an out-of-office period."""

    start: dt.date
    end: dt.date
    why: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


class Rep(_Rule):
    """A sales rep who can own leads. Owners are named by email, the same in every CRM."""

    email: str
    name: str
    time_zone: str = "UTC"
    weight: float = Field(1.0, gt=0, description="Share of round robin: weight 2 gets twice the leads.")
    daily_cap: int | None = Field(None, ge=0, description="New leads per local day; none = unlimited.")
    weekly_cap: int | None = Field(None, ge=0, description="New leads per ISO week; none = unlimited.")
    active: bool = True
    out_of_office: tuple[DateRange, ...] = ()
    holiday_calendar: HolidayCalendar | None = Field(
        None, description="The public holidays the rep observes ('SG', 'US', 'DE-BY', or none); "
                          "default: the calendar routing.holidays gives the rep's time zone."
    )
    crm_ids: dict[Literal["salesforce", "hubspot"], str] = Field(
        default_factory=dict, description="The rep's user/owner id in each CRM, when known here."
    )

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _valid_time_zone(value)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip().lower()
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
            raise ValueError(f"not an email address: {value!r}")
        return value

    def away_on(self, day: dt.date) -> DateRange | None:
        """The out-of-office range covering `day`, if any."""
        return next((r for r in self.out_of_office if r.covers(day)), None)


class Queue(_Rule):
    """A shared owner (a Salesforce queue, a HubSpot team inbox) that can always take a lead."""

    id: str = Field(min_length=1, description="The owner key used in decisions and the directory.")
    name: str
    time_zone: str = "UTC"
    holiday_calendar: HolidayCalendar | None = Field(
        None, description="The public holidays the queue observes; default: its time zone's calendar."
    )
    crm_ids: dict[Literal["salesforce", "hubspot"], str] = Field(
        default_factory=dict, description="The queue's id in each CRM (a Salesforce queue, a HubSpot owner)."
    )
    why: Why

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return _valid_time_zone(value)


class Pool(_Rule):
    """Reps that share leads by weighted round robin; `fallback` takes the overflow."""

    name: str
    reps: tuple[str, ...] = Field(min_length=1)
    fallback: str | None = None
    why: Why

    @field_validator("reps")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(v.strip().lower() for v in value)


class Territory(_Rule):
    """Region × product line × segment → pool. An empty list matches anything; first match wins.

    `region` matches the account's region (else the person's), `product_line` the scorecard's
    profile, `segment` the account's segment, all case-insensitively.
    """

    name: str
    region: tuple[str, ...] = ()
    product_line: tuple[str, ...] = ()
    segment: tuple[str, ...] = ()
    pool: str
    why: Why

    def matches(self, region: str | None, product_line: str | None, segment: str | None) -> bool:
        for wanted, actual in ((self.region, region), (self.product_line, product_line),
                               (self.segment, segment)):
            if wanted and (actual is None or actual.strip().lower() not in _lower_set(wanted)):
                return False
        return True


class Sla(_Rule):
    """How fast the owner must follow up, in business hours or business days of the owner's time zone."""

    business_hours: float | None = Field(None, gt=0)
    business_days: int | None = Field(None, gt=0)
    priority: Literal["low", "normal", "high"] = "normal"
    why: Why

    @model_validator(mode="after")
    def _one_unit(self) -> Sla:
        if (self.business_hours is None) == (self.business_days is None):
            raise ValueError("give exactly one of business_hours or business_days")
        return self


class BusinessHours(_Rule):
    start: dt.time = dt.time(9, 0)
    end: dt.time = dt.time(17, 0)
    days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")

    @field_validator("days")
    @classmethod
    def _days(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        value = tuple(v.strip().lower()[:3] for v in value)
        unknown = [v for v in value if v not in _WEEKDAYS]
        if unknown or not value:
            raise ValueError(f"days must be some of {list(_WEEKDAYS)}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> BusinessHours:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(_WEEKDAYS.index(d) for d in self.days)


class Holiday(_Rule):
    """A day every owner is closed besides their public holidays (a company shutdown)."""

    date: dt.date
    name: str


class Holidays(_Rule):
    """The days closed besides weekends: each owner's public holidays, from the maintained `holidays`
    library, and the company's own closures.

    An owner observes the public holidays of their own `holiday_calendar`, else of the calendar
    `by_time_zone` gives their time zone, else of `default`. A calendar is an ISO 3166 country code,
    with a subdivision where holidays differ by region (`SG`, `US`, `DE-BY`), or `none`. `closures`
    close every owner. The old form, a list of dates, still reads, as closures and no public holidays.
    """

    by_time_zone: dict[str, HolidayCalendar] = Field(
        default_factory=dict, description="Owner time zone → the public holidays observed there."
    )
    default: HolidayCalendar | None = Field(
        None, description="The calendar of owners whose time zone is not in by_time_zone."
    )
    closures: tuple[Holiday, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _old_form(cls, value: object) -> object:
        if isinstance(value, list | tuple):  # `holidays: [{date, name}, ...]`, before calendars
            return {"closures": value}
        return value

    @field_validator("by_time_zone")
    @classmethod
    def _time_zones(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            _valid_time_zone(name)
        return value

    @property
    def uses_calendars(self) -> bool:
        """Whether owners observe public holidays (else only the closures and weekends close)."""
        return bool(self.by_time_zone) or self.default is not None

    def calendar_for(self, time_zone: str, own: str | None = None) -> str | None:
        """The public-holiday calendar of an owner in `time_zone` (with their own `holiday_calendar`),
        or None when they observe none."""
        chosen = own or self.by_time_zone.get(time_zone) or self.default
        return None if chosen in (None, NO_PUBLIC_HOLIDAYS) else chosen


class ActionKind(StrEnum):
    ASSIGN = "assign"
    NURTURE = "nurture"
    NONE = "none"


class TierAction(_Rule):
    """What a tier triggers: assign an owner with a task and SLA, enroll in nurture, or nothing."""

    tier: str
    do: ActionKind
    sla: str | None = None
    why: Why

    @model_validator(mode="after")
    def _sla_when_assigning(self) -> TierAction:
        if self.do is ActionKind.ASSIGN and not self.sla:
            raise ValueError(f"tier {self.tier!r} assigns an owner, so it needs an `sla`")
        return self


class PartnerAction(StrEnum):
    EXCLUDE = "exclude"
    PARTNER_MANAGER = "partner_manager"


class PartnerRule(_Rule):
    """Partner-owned or distributor-registered leads: left alone, or handed to the partner manager."""

    action: PartnerAction = PartnerAction.EXCLUDE
    partner_manager: str | None = None
    why: Why

    @model_validator(mode="after")
    def _manager_named(self) -> PartnerRule:
        if self.action is PartnerAction.PARTNER_MANAGER and not self.partner_manager:
            raise ValueError("action partner_manager needs `partner_manager` (a rep email or queue id)")
        return self


class CustomerEvaluationRule(_Rule):
    """An active customer evaluating again goes to the account team, never to round robin."""

    stages: tuple[str, ...] = ("evaluate", "validate")
    fallback: str | None = Field(None, description="Owner when the account owner is unknown.")
    why: Why


class Suppression(_Rule):
    duplicate_task_days: int = Field(14, ge=0, description="An open task younger than this is updated.")
    retrigger_intent_delta: float = Field(
        15, ge=0, description="Intent gain since the last score that counts as new activity."
    )
    open_opportunity_why: Why = "An open opportunity already has an owner; a second rep would collide."
    unsubscribed_why: Why = "No marketing email to people who unsubscribed or bounced."
    partner_owned: PartnerRule = PartnerRule(why="Partner-owned leads belong to the partner.")
    distributor_registered: PartnerRule = PartnerRule(
        why="Distributor-registered deals are protected by the registration."
    )
    customer_evaluation: CustomerEvaluationRule = CustomerEvaluationRule(
        why="Customers in an evaluation are the account team's, who know the installed base."
    )


class NurtureTrack(_Rule):
    """A nurture program; the first track whose filters match the person is chosen."""

    name: str
    segment: tuple[str, ...] = ()
    stage: tuple[str, ...] = ()
    profile: tuple[str, ...] = ()
    channel: Literal["email", "ads", "events"] = "email"
    why: Why

    def matches(self, segment: str | None, stage: str | None, profile: str | None) -> bool:
        for wanted, actual in ((self.segment, segment), (self.stage, stage), (self.profile, profile)):
            if wanted and (actual is None or actual.strip().lower() not in _lower_set(wanted)):
                return False
        return True


class Nurture(_Rule):
    tracks: tuple[NurtureTrack, ...] = ()
    default_track: str | None = None
    asset_types: tuple[str, ...] = Field(
        (), description="Asset types that can be sent or offered as the next asset; empty = any."
    )


class StageGuidance(_Rule):
    """What the rep should do at an evaluation stage, and the questions that confirm qualification."""

    next_step: str
    questions: tuple[str, ...] = ()
    why: Why


_COMMITTEE_SUBJECT_FIELDS = frozenset({"account", "tier", "roles", "count"})


class CommitteeRule(_Rule):
    """A buying committee nobody was routed for: when an account's roll-up reaches one of
    `account_tiers` with at least `min_roles` distinct roles engaged in the last `window_days`, and
    no one at the account is routed individually, the account owner gets one account task listing
    the members, their roles, what each did and `next_step`.

    One task per committee level: the same account at the same tier with the same roles is raised
    once; a role that was not in the last task raised for the account, or a tier above it, raises a
    new one. A member counts when their intent is at least `min_intent` and they did something in the
    window; `roles` are the roles that count (empty: the account roll-up's committee roles,
    `account.committee.roles`).
    """

    account_tiers: tuple[str, ...] = Field(
        min_length=1, description="Account tiers that qualify, highest first (as listed in account.tiers)."
    )
    min_roles: int = Field(3, ge=2, description="Distinct roles engaged in the window, at least.")
    roles: tuple[str, ...] = Field(
        (), description="Roles that count; empty: account.committee.roles."
    )
    min_intent: float = Field(0, ge=0, description="A member's intent, at least (0: any intent).")
    window_days: int = Field(30, gt=0, description="A member engaged within this many days counts.")
    sla: str | None = Field(None, description="An SLA of routing.slas; none: one business day.")
    subject: str = "Buying committee at {account}: {roles}"
    next_step: str = Field(min_length=3, description="What the account owner should do, shown in the task.")
    why: Why

    @field_validator("subject")
    @classmethod
    def _subject_fields(cls, value: str) -> str:
        used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        unknown = sorted(used - _COMMITTEE_SUBJECT_FIELDS)
        if unknown:
            raise ValueError(f"unknown placeholders {unknown}; "
                             f"use some of {sorted(_COMMITTEE_SUBJECT_FIELDS)}")
        return value

    @field_validator("account_tiers", "roles")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        dupes = sorted({v for v in value if value.count(v) > 1})
        if dupes:
            raise ValueError(f"listed twice: {dupes}")
        return value

    def rank(self, tier: str) -> int:
        """0 for the highest qualifying tier, 1 for the next…; len(account_tiers) for any other."""
        return self.account_tiers.index(tier) if tier in self.account_tiers else len(self.account_tiers)


class RoutingSection(BaseModel):
    """The playbook's `routing:` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    actions: tuple[TierAction, ...] = ()
    slas: dict[str, Sla] = Field(default_factory=dict)
    business_hours: BusinessHours = BusinessHours()
    holidays: Holidays = Holidays()
    reps: tuple[Rep, ...] = ()
    queues: tuple[Queue, ...] = ()
    pools: tuple[Pool, ...] = ()
    territories: tuple[Territory, ...] = ()
    default_pool: str | None = None
    fallback_owner: str | None = Field(
        None, description="Takes any lead nobody else can: a lead is never left unassigned."
    )
    tasks_in: Literal["owner_crm", "salesforce", "hubspot", "both"] = Field(
        "owner_crm",
        description="Where a routed lead's task goes. owner_crm: one task, in the CRM where the routed "
                    "owner is a user (the CRM of the person's open opportunity or account owner first, "
                    "then Salesforce); salesforce or hubspot: that CRM; both: every CRM the person is in.",
    )
    suppression: Suppression = Suppression()
    stage_order: tuple[str, ...] = ("learn", "evaluate", "validate", "buy")
    stages: dict[str, StageGuidance] = Field(default_factory=dict)
    nurture: Nurture = Nurture()
    task_subject: str = "{tier}: {name} ({account}) — {trigger}"
    committee: CommitteeRule | None = Field(
        None, description="An account task for a buying committee whose members are not routed individually."
    )

    @field_validator("fallback_owner", "default_pool")
    @classmethod
    def _strip(cls, value: str | None) -> str | None:
        return value.strip() if value else value

    @field_validator("task_subject")
    @classmethod
    def _subject_fields(cls, value: str) -> str:
        used = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        unknown = sorted(used - _SUBJECT_FIELDS)
        if unknown:
            raise ValueError(f"unknown placeholders {unknown}; use some of {sorted(_SUBJECT_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _references(self) -> RoutingSection:
        problems: list[str] = []
        rep_emails = [r.email for r in self.reps]
        queue_ids = [q.id for q in self.queues]
        owners = set(rep_emails) | set(queue_ids)
        pools = {p.name for p in self.pools}
        for label, names in (("reps", rep_emails), ("queues", queue_ids),
                             ("pools", [p.name for p in self.pools]),
                             ("actions", [a.tier for a in self.actions])):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                problems.append(f"{label}: duplicate {dupes}")
        for i, pool in enumerate(self.pools):
            problems += [f"pools[{i}].reps: unknown rep {r!r}" for r in pool.reps if r not in rep_emails]
            if pool.fallback and pool.fallback.lower() not in owners and pool.fallback not in owners:
                problems.append(f"pools[{i}].fallback: {pool.fallback!r} is neither a rep nor a queue")
        for i, territory in enumerate(self.territories):
            if territory.pool not in pools:
                problems.append(f"territories[{i}].pool: unknown pool {territory.pool!r}")
        if self.default_pool and self.default_pool not in pools:
            problems.append(f"default_pool: unknown pool {self.default_pool!r}")
        if self.actions and any(a.do is ActionKind.ASSIGN for a in self.actions):
            if not self.fallback_owner:
                problems.append("fallback_owner: required when a tier assigns owners (never leave a lead)")
            if not self.reps and not self.queues:
                problems.append("reps: at least one rep or queue is needed to assign owners")
        if self.fallback_owner and self._owner_key(self.fallback_owner) not in owners:
            problems.append(f"fallback_owner: {self.fallback_owner!r} is neither a rep nor a queue")
        for path, owner in (("suppression.partner_owned.partner_manager",
                             self.suppression.partner_owned.partner_manager),
                            ("suppression.distributor_registered.partner_manager",
                             self.suppression.distributor_registered.partner_manager),
                            ("suppression.customer_evaluation.fallback",
                             self.suppression.customer_evaluation.fallback)):
            if owner and self._owner_key(owner) not in owners:
                problems.append(f"{path}: {owner!r} is neither a rep nor a queue")
        for i, action in enumerate(self.actions):
            if action.sla and action.sla not in self.slas:
                problems.append(f"actions[{i}].sla: unknown SLA {action.sla!r}; known: {sorted(self.slas)}")
        tracks = {t.name for t in self.nurture.tracks}
        if self.nurture.default_track and self.nurture.default_track not in tracks:
            problems.append(f"nurture.default_track: unknown track {self.nurture.default_track!r}")
        stages = [s.lower() for s in self.stage_order]
        problems += [f"stages.{s}: not in stage_order {list(self.stage_order)}"
                     for s in self.stages if s.lower() not in stages]
        if self.committee is not None:
            if self.committee.sla and self.committee.sla not in self.slas:
                problems.append(f"committee.sla: unknown SLA {self.committee.sla!r}; "
                                f"known: {sorted(self.slas)}")
            if not self.fallback_owner:
                problems.append("fallback_owner: required for committee tasks (an account may have no owner)")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _owner_key(self, owner: str) -> str:
        owner = owner.strip()
        return owner.lower() if "@" in owner else owner

    def owner_key(self, owner: str) -> str:
        """Normalize an owner reference: rep emails lower-cased, queue ids as written."""
        return self._owner_key(owner)

    def action_for(self, tier: str) -> TierAction | None:
        return next((a for a in self.actions if a.tier == tier), None)


def sla_from_label(section: RoutingSection, label: str) -> Sla | None:
    """The SLA an escalation label names: a key of `slas`, or shorthand such as `4h` or `1bd`."""
    if label in section.slas:
        return section.slas[label]
    match = _SLA_SHORTHAND.match(label)
    if not match:
        return None
    amount, unit = float(match.group(1)), match.group(2).lower()
    why = f"escalation SLA {label}"
    if unit in ("h", "bh"):
        return Sla(business_hours=amount, priority="high", why=why)
    return Sla(business_days=max(1, round(amount)), priority="high", why=why)


def routing_problems(
    section: RoutingSection,
    tiers: Iterable[str],
    profiles: Iterable[str] = (),
    escalation_slas: Iterable[str] = (),
    stages: Iterable[str] = (),
    *,
    account_tiers: Iterable[str] | None = None,
    roles: Iterable[str] | None = None,
    committee_roles: Iterable[str] | None = None,
) -> list[str]:
    """Problems between the routing section and the rest of the playbook, each with its path.

    The playbook loader calls this with the tier, profile, escalation SLA and stage names it
    defines, and for the committee rule the account tiers (highest first), the persona roles and the
    account roll-up's committee roles (each checked only when given); an empty list means the section
    is consistent.
    """
    tiers, profiles, stages = list(tiers), {p.lower() for p in profiles}, {s.lower() for s in stages}
    problems = [f"routing.actions[{i}].tier: unknown tier {a.tier!r}; tiers are {tiers}"
                for i, a in enumerate(section.actions) if a.tier not in tiers]
    if section.actions:
        problems += [f"routing.actions: tier {t!r} has no action" for t in tiers
                     if section.action_for(t) is None]
    for label in escalation_slas:
        if sla_from_label(section, label) is None:
            problems.append(f"routing.slas: escalation SLA {label!r} is not defined (nor shorthand: 4h, 1bd)")
    if profiles:
        for i, territory in enumerate(section.territories):
            problems += [f"routing.territories[{i}].product_line: unknown profile {p!r}"
                         for p in territory.product_line if p.lower() not in profiles]
    if stages:
        problems += [f"routing.stage_order: unknown stage {s!r}" for s in section.stage_order
                     if s.lower() not in stages]
    if section.committee is not None:
        problems += _committee_problems(section.committee, account_tiers, roles, committee_roles)
    return problems + _owners_without_holidays(section)


def _committee_problems(rule: CommitteeRule, account_tiers: Iterable[str] | None, roles: Iterable[str] | None,
                        committee_roles: Iterable[str] | None) -> list[str]:
    """The committee rule against the account tiers (order included) and the persona roles."""
    problems = []
    if account_tiers is not None:
        ordered = list(account_tiers)
        unknown = [t for t in rule.account_tiers if t not in ordered]
        problems += [f"routing.committee.account_tiers: unknown account tier {t!r}; "
                     f"account tiers are {ordered}" for t in unknown]
        known = [t for t in rule.account_tiers if t in ordered]
        if not unknown and known != sorted(known, key=ordered.index):
            problems.append("routing.committee.account_tiers: list them highest first, as account.tiers "
                            f"does ({[t for t in ordered if t in known]})")
    if roles is not None:
        known_roles = set(roles)
        problems += [f"routing.committee.roles: unknown role {r!r}; roles are {sorted(known_roles)}"
                     for r in rule.roles if r not in known_roles]
    if not rule.roles and committee_roles is None:
        return problems
    counted = rule.roles or tuple(committee_roles or ())
    if not counted:
        problems.append("routing.committee.roles: name the roles that count (there is no account.committee "
                        "whose roles it could use)")
    elif len(set(counted)) < rule.min_roles:
        problems.append(f"routing.committee.min_roles: {rule.min_roles} roles can never engage: only "
                        f"{len(set(counted))} count ({', '.join(counted)})")
    return problems


def _owners_without_holidays(section: RoutingSection) -> list[str]:
    """Once the playbook uses public-holiday calendars, every owner needs one (or an explicit none):
    an owner silently observing no holidays would get tasks due on their public holidays."""
    holidays = section.holidays
    if not holidays.uses_calendars or holidays.default is not None:
        return []
    owners = [(f"routing.reps[{i}]", r) for i, r in enumerate(section.reps)]
    owners += [(f"routing.queues[{i}]", q) for i, q in enumerate(section.queues)]
    return [f"{path}.time_zone: no public-holiday calendar for time zone {owner.time_zone!r}: add it to "
            "routing.holidays.by_time_zone (e.g. Asia/Singapore: SG), give this owner a holiday_calendar, "
            "or set routing.holidays.default"
            for path, owner in owners
            if owner.holiday_calendar is None and owner.time_zone not in holidays.by_time_zone]
