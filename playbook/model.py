"""The playbook: the whole scoring model in one reviewed YAML file, loaded into pydantic models.

`load_playbook(path)` parses and validates a playbook; every problem is reported with its YAML path
(`intent.rules[3].points: must be a number (line 88)`) through `PlaybookError.problems`, never as a
traceback. Structural checks come from the models; cross-references (asset types, stages, groups,
tiers, lists, fields) are checked in `playbook.checks` with the same path-precise messages.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from datetime import date
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, field_validator, model_validator

from leadloop.crm.records import ActivityKind
from leadloop.playbook.patterns import check_regex
from leadloop.playbook.routing import RoutingSection

Number = Annotated[float, Strict()]
PositiveNumber = Annotated[float, Strict(), Field(gt=0)]
NonNegative = Annotated[float, Strict(), Field(ge=0)]
Why = Annotated[str, Field(min_length=3)]
Id = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


CONDITION_KINDS = ("in", "in_list", "contains", "matches", "range", "equals", "present")


class Condition(_Model):
    """A test on one person or account field: `{field: account.industry, in: [Automotive]}`.

    Text comparisons ignore case and surrounding spaces. `range` is `min` and/or `max` (min ≤ x < max).
    """

    field: str
    in_: list[str] | None = Field(default=None, alias="in")
    in_list: str | None = None
    contains: list[str] | None = None
    matches: str | None = None
    min: Number | None = None
    max: Number | None = None
    equals: bool | Number | str | None = None
    present: bool | None = None

    @field_validator("matches")
    @classmethod
    def _matches_is_a_regex(cls, value: str | None) -> str | None:
        return value if value is None else check_regex(value)

    def condition_kinds(self) -> list[str]:
        given = {
            "in": self.in_ is not None,
            "in_list": self.in_list is not None,
            "contains": self.contains is not None,
            "matches": self.matches is not None,
            "range": self.min is not None or self.max is not None,
            "equals": self.equals is not None,
            "present": self.present is not None,
        }
        return [kind for kind, is_given in given.items() if is_given]

    @model_validator(mode="after")
    def _exactly_one_test(self) -> Condition:
        if type(self) is Condition and len(self.condition_kinds()) != 1:
            raise ValueError(
                "give exactly one test: in, in_list, contains, matches, min/max, equals or present"
            )
        return self

    def describe(self) -> str:
        """`account.industry in [Automotive, EV]` — for documentation."""
        if self.in_ is not None:
            return f"{self.field} is one of {', '.join(self.in_)}"
        if self.in_list is not None:
            return f"{self.field} is in list '{self.in_list}'"
        if self.contains is not None:
            return f"{self.field} contains {' or '.join(self.contains)}"
        if self.matches is not None:
            return f"{self.field} matches /{self.matches}/"
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else f"{self.min:g} ≤ "
            high = "" if self.max is None else f" < {self.max:g}"
            return f"{low}{self.field}{high}"
        if self.equals is not None:
            return f"{self.field} = {self.equals}"
        return f"{self.field} is {'set' if self.present else 'empty'}"


class Band(_Model):
    """One band of a numeric field (e.g. employees 200–5000), min ≤ x < max."""

    min: Number | None = None
    max: Number | None = None
    points: Number
    label: str | None = None


class FitRule(Condition):
    """Points when an account or person field matches (or, with `bands`, per numeric band)."""

    id: Id
    why: Why
    points: Number | None = None
    bands: list[Band] | None = None

    @model_validator(mode="after")
    def _points_or_bands(self) -> FitRule:
        kinds = self.condition_kinds()
        if self.bands is not None:
            if kinds:
                raise ValueError("a rule with bands takes no other test (in, matches, min/max, ...)")
            if self.points is not None:
                raise ValueError("a rule with bands takes its points from each band, not 'points'")
        else:
            if len(kinds) != 1:
                raise ValueError(
                    "give exactly one test: in, in_list, contains, matches, min/max, equals, present or bands"
                )
            if self.points is None:
                raise ValueError("points: is required")
        return self

    @property
    def max_points(self) -> float:
        if self.bands is not None:
            return max((b.points for b in self.bands), default=0.0)
        return self.points or 0.0


class Profile(_Model):
    """An ideal-customer profile (a product line or sub-market) with its own account fit rules."""

    id: Id
    name: str
    why: Why
    segments: list[str] = Field(default_factory=list)
    applies_when: list[Condition] = Field(default_factory=list)
    cap: NonNegative = 100
    fit: list[FitRule]


class ContactFit(_Model):
    cap: NonNegative = 100
    why: str | None = None
    rules: list[FitRule] = Field(default_factory=list)


class RolePattern(_Model):
    role: Id
    weight: Number
    why: Why
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_regex(pattern)
        return value


class SeniorityPattern(_Model):
    level: Id
    weight: Number = 0
    patterns: list[str] = Field(min_length=1)

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_regex(pattern)
        return value


class Personas(_Model):
    """Title → role and seniority. Patterns are regexes matched against the normalized title
    (`playbook.personas.normalize_title`: NFKC, case-folded, punctuation and symbols as spaces, letters
    of every script kept: "Sr. HW Eng." → "sr hw eng", "Einkäufer" → "einkäufer"); the first matching
    role wins."""

    why: str | None = None
    roles: list[RolePattern] = Field(min_length=1)
    unknown_role: Id = "other"
    unknown_role_weight: Number = 0
    seniority: list[SeniorityPattern] = Field(default_factory=list)
    default_seniority: Id = "individual_contributor"


class AssetMatch(_Model):
    """How an activity is recognized as this asset: any URL, form or campaign regex, or an asset id."""

    urls: list[str] = Field(default_factory=list)
    forms: list[str] = Field(default_factory=list)
    campaigns: list[str] = Field(default_factory=list)
    asset_ids: list[str] = Field(default_factory=list)
    kinds: list[ActivityKind] = Field(default_factory=list)

    @field_validator("urls", "forms", "campaigns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_regex(pattern)
        return value

    @model_validator(mode="after")
    def _something_to_match(self) -> AssetMatch:
        if not (self.urls or self.forms or self.campaigns or self.asset_ids):
            raise ValueError("give at least one of urls, forms, campaigns or asset_ids")
        return self


class CatalogAsset(_Model):
    """A datasheet, app note, reference design, EVK, sample, webinar, workshop or trade show."""

    id: Id
    name: str
    type: Id
    product_family: str | None = None
    segment: str | None = None
    stage: str
    match: AssetMatch


class Frequency(_Model):
    """Count at most `max_count` occurrences per `window_days` period (periods counted back from now)."""

    max_count: Annotated[int, Strict(), Field(ge=1)]
    window_days: PositiveNumber


class IntentGroup(_Model):
    id: Id
    name: str
    why: Why
    cap: NonNegative | None = None
    half_life_days: PositiveNumber | None = None


class IntentRule(_Model):
    """Points per activity kind × asset type/stage, with optional decay, frequency and cap."""

    id: Id
    name: str | None = None
    why: Why
    kinds: list[ActivityKind] = Field(min_length=1)
    asset_types: list[str] | None = None
    stages: list[str] | None = None
    product_families: list[str] | None = None
    points: Number
    group: str | None = None
    half_life_days: PositiveNumber | None = None
    cap: NonNegative | None = None
    frequency: Frequency | None = None
    stage: str | None = None
    says: str | None = None

    @property
    def label(self) -> str:
        return self.name or self.id.replace("_", " ")


class DepthRule(_Model):
    """Depth of engagement: repeat visits or time spent on matching pages within a window."""

    id: Id
    name: str | None = None
    why: Why
    kinds: list[ActivityKind] = Field(default_factory=lambda: [ActivityKind.PAGE_VIEW], min_length=1)
    asset_types: list[str] | None = None
    relevant_only: bool = False
    min_visits: Annotated[int, Strict(), Field(ge=1)] | None = None
    min_seconds: PositiveNumber | None = None
    window_days: PositiveNumber
    points: Number
    group: str | None = None
    says: str | None = None

    @model_validator(mode="after")
    def _one_threshold(self) -> DepthRule:
        if (self.min_visits is None) == (self.min_seconds is None):
            raise ValueError("give exactly one of min_visits or min_seconds")
        return self

    @property
    def label(self) -> str:
        return self.name or self.id.replace("_", " ")


class Relevance(_Model):
    bonus_percent: NonNegative
    why: Why


class Intent(_Model):
    cap: NonNegative = 100
    default_half_life_days: PositiveNumber | None = None
    max_age_days: PositiveNumber | None = None
    relevance: Relevance | None = None
    groups: list[IntentGroup] = Field(default_factory=list)
    rules: list[IntentRule] = Field(min_length=1)
    depth: list[DepthRule] = Field(default_factory=list)


class Negative(_Model):
    """A signal that lowers fit or intent: a field condition (all must hold) or a recent activity kind."""

    id: Id
    why: Why
    points: Annotated[float, Strict(), Field(lt=0)]
    target: Literal["fit", "intent"] = "intent"
    when: list[Condition] = Field(default_factory=list)
    kinds: list[ActivityKind] = Field(default_factory=list)
    within_days: PositiveNumber | None = None
    says: str | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> Negative:
        if bool(self.when) == bool(self.kinds):
            raise ValueError("give either 'when' (field conditions) or 'kinds' (activity kinds), not both")
        return self


class Disqualifier(_Model):
    """A hard stop: when all conditions hold the person is never routed to sales."""

    id: Id
    why: Why
    when: list[Condition] = Field(min_length=1)
    says: str | None = None


# Account types whose people do not buy for their own designs, with what a rep reads when one is
# disqualified for it. Distributors, partners and competitors are told by the account's customer
# type; universities by the account's industry or an academic email domain.
NON_BUYING_TYPES: dict[str, str] = {
    "distributor": "works at a distributor, which resells rather than buys for its own designs",
    "partner": "works at a channel partner, which does not buy for its own designs",
    "competitor": "works at a competitor",
    "university": "works at a university, which does not buy for production designs",
}


class NonBuyingAccount(_Model):
    """One non-buying account type (`type`: one of NON_BUYING_TYPES); `says` replaces the sentence a
    rep reads after "disqualified: "."""

    type: str
    why: Why
    says: str | None = None

    @property
    def sentence(self) -> str:
        return self.says or NON_BUYING_TYPES.get(self.type, f"works at a {self.type}")


class Universities(_Model):
    """How a university is recognized: the account's industry (any of `industries`, ignoring case) or
    the person's email domain (any of the `email_domains` patterns)."""

    industries: list[str] = Field(default_factory=lambda: ["Higher Education"])
    email_domains: list[str] = Field(
        default_factory=lambda: [r"\.edu$", r"\.edu\.[a-z]{2}$", r"\.ac\.[a-z]{2}$"]
    )

    @field_validator("email_domains")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            check_regex(pattern)
        return value


class NonBuying(_Model):
    """Account types whose people are disqualified whatever they do: they get the lowest tier and at
    most its bottom score, with the type named as the first reason."""

    why: str | None = None
    accounts: list[NonBuyingAccount] = Field(min_length=1)
    universities: Universities = Field(default_factory=Universities)


class Escalation(_Model):
    """A high-value action with a minimum fit forces a tier (by default the top one) with its SLA."""

    id: Id
    why: Why
    kinds: list[ActivityKind] = Field(min_length=1)
    asset_types: list[str] | None = None
    within_days: PositiveNumber
    min_fit: NonNegative = 0
    tier: str | None = None
    sla: str = Field(min_length=1)


class AccountIntent(_Model):
    """Account intent from its people's intent with diminishing returns: the most engaged person
    counts fully, the next `decay_factor` times as much, and so on."""

    decay_factor: Annotated[float, Strict(), Field(ge=0, le=1)] = 0.5
    max_people: Annotated[int, Strict(), Field(ge=1)] = 10
    cap: NonNegative = 100
    why: str | None = None


class Committee(_Model):
    """Buying-committee coverage: points for each distinct role engaged beyond the first."""

    roles: list[str] = Field(min_length=1)
    min_intent: NonNegative = 0
    points_per_role: NonNegative
    cap: NonNegative
    why: Why


class AccountSignal(_Model):
    """A fact about the account itself that counts as account intent before anyone engages, e.g. an
    existing customer, who places repeat orders: `points` join the people's roll-up (under the cap)."""

    id: Id
    why: Why
    points: Annotated[float, Strict(), Field(gt=0)]
    when: list[Condition] = Field(min_length=1)
    says: str | None = None

    @model_validator(mode="after")
    def _account_fields_only(self) -> AccountSignal:
        for condition in self.when:
            if not condition.field.startswith("account."):
                raise ValueError(f"account signal {self.id!r}: {condition.field!r} is not an account field; "
                                 "an account signal looks at the account only (account.customer_type, …)")
        return self


class AccountTier(_Model):
    name: str
    min_fit: NonNegative | None = None
    min_intent: NonNegative | None = None
    why: str | None = None


class AccountSection(_Model):
    intent: AccountIntent = Field(default_factory=AccountIntent)
    committee: Committee | None = None
    signals: list[AccountSignal] = Field(default_factory=list)
    tiers: list[AccountTier] = Field(min_length=1)


class Blend(_Model):
    """Lead score = min(static_cap, cf·contact_fit + af·account_fit)
    + ci·contact_intent + ai·account_intent."""

    contact_fit: NonNegative
    account_fit: NonNegative
    contact_intent: NonNegative
    account_intent: NonNegative
    static_cap: NonNegative
    why: Why


class Tier(_Model):
    name: str = Field(min_length=1)
    min_score: NonNegative | None = None
    min_fit: NonNegative | None = None
    min_intent: NonNegative | None = None
    why: str | None = None

    @property
    def has_thresholds(self) -> bool:
        return any(v is not None for v in (self.min_score, self.min_fit, self.min_intent))


class GridBand(_Model):
    label: str = Field(min_length=1)
    min: NonNegative


class Grid(_Model):
    """Fit × intent grade (A1…D4): the first fit band and the first intent band reached."""

    fit: list[GridBand] = Field(min_length=1)
    intent: list[GridBand] = Field(min_length=1)


Count = Annotated[int, Strict(), Field(ge=0)]


class CalibrationBin(_Model):
    """Scores from `min_score` up to the next bin's: `converted` of the `people` seen at these scores
    converted within the horizon; `rate` is the share a rep reads (smoothed, so not always exactly
    converted / people)."""

    min_score: NonNegative
    rate: Annotated[float, Strict(), Field(ge=0, le=1)]
    people: Count
    converted: Count


class Calibration(_Model):
    """Score → expected conversion, learned from outcomes by the model review: the likelihood of a
    score is the rate of the last bin whose `min_score` it reaches (a score below the first bin's
    takes the first bin's rate). Bins go up by `min_score` and their rates never fall."""

    horizon_days: Annotated[int, Strict(), Field(ge=1)]
    learned: date
    why: Why
    bins: list[CalibrationBin] = Field(min_length=1)

    @model_validator(mode="after")
    def _bins_in_order(self) -> Calibration:
        # Relative paths, as the routing section names its own problems: the message is shown under
        # `calibration` with the line of that key.
        problems = []
        for i, b in enumerate(self.bins):
            if b.converted > b.people:
                problems.append(f"bins[{i}].converted: {b.converted} is more than its {b.people} people")
            if i == 0:
                continue
            before = self.bins[i - 1]
            if b.min_score <= before.min_score:
                problems.append(f"bins[{i}].min_score: {b.min_score:g} must be above bins[{i - 1}].min_score "
                                f"{before.min_score:g} (bins go up from the lowest score)")
            if b.rate < before.rate:
                problems.append(f"bins[{i}].rate: {b.rate:g} is below bins[{i - 1}].rate {before.rate:g} "
                                "(a higher score never means a lower likelihood)")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def short_name(name: str, limit: int = 24) -> str:
    """The first words of a playbook's name as a lowercase ASCII slug of at most `limit` characters
    ("Voltaris Semiconductor — power, …" → "voltaris-semiconductor"); "playbook" when none is left."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = ""
    for word in re.findall(r"[a-z0-9]+", ascii_name):
        candidate = f"{slug}-{word}" if slug else word[:limit]
        if len(candidate) > limit:
            break
        slug = candidate
    return slug or "playbook"


class Playbook(_Model):
    """The whole scoring model. `model_version` is a short hash of its scoring content."""

    name: str
    description: str | None = None
    lists: dict[str, list[str]] = Field(default_factory=dict)
    stages: list[str] = Field(min_length=1)
    profiles: list[Profile] = Field(min_length=1)
    contact_fit: ContactFit = Field(default_factory=ContactFit)
    personas: Personas
    assets: list[CatalogAsset] = Field(default_factory=list)
    intent: Intent
    negatives: list[Negative] = Field(default_factory=list)
    disqualifiers: list[Disqualifier] = Field(default_factory=list)
    non_buying: NonBuying | None = None
    escalations: list[Escalation] = Field(default_factory=list)
    account: AccountSection
    blend: Blend
    tiers: list[Tier] = Field(min_length=2)
    disqualified_tier: str | None = None
    grid: Grid | None = None
    mapping: dict[str, Any] | None = None
    routing: RoutingSection | None = None
    calibration: Calibration | None = None

    @cached_property
    def model_version(self) -> str:
        """What a rep reads in the CRM's model-version field: the playbook's name, shortened, and a
        short hash of its scoring content, e.g. `voltaris-semiconductor-3f2a1c9` (at most 32
        characters, within Salesforce's 40).

        Stable across comments, key order and formatting; changes when any scoring value does.
        The opaque `mapping` and the `routing` section do not change scores and are left out. The
        calibration changes the likelihood reps read, so it counts; a playbook without a calibration or
        a `non_buying` section, or without account signals, hashes as before those sections existed."""
        left_out: dict[str, Any] = {"mapping": True, "routing": True} | {
            section: True for section in ("calibration", "non_buying") if getattr(self, section) is None}
        if not self.account.signals:
            left_out["account"] = {"signals": True}
        content = self.model_dump(mode="json", by_alias=True, exclude=left_out)
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return f"{short_name(self.name)}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:7]}"

    def __getstate__(self) -> dict[Any, Any]:
        """Pickle the playbook, not its compiled form (closures, kept by `playbook.compiled`); it
        recompiles on first use."""
        state = super().__getstate__()
        state["__dict__"] = {k: v for k, v in state["__dict__"].items() if k != "compiled"}
        return state

    @property
    def top_tier(self) -> str:
        return self.tiers[0].name

    @property
    def lowest_tier(self) -> str:
        return self.disqualified_tier or self.tiers[-1].name

    def tier_rank(self, name: str) -> int:
        """0 for the top tier; larger is lower."""
        for rank, tier in enumerate(self.tiers):
            if tier.name == name:
                return rank
        return len(self.tiers)


class PlaybookError(ValueError):
    """A playbook that cannot be used; `.problems` are `path: message` lines, safe to print."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s)\n" + "\n".join(f"  {p}" for p in problems))
