"""What scoring returns: a ScoreCard per person and an AccountScore per account, with reasons.

Fit and intent always stay visible separately next to the blended score. Every signed contribution
is a Reason with a sentence a rep can read and what it adds to the score today; caps and decay show
up as reasons too, adding nothing themselves (the lines they cut already count them).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class ReasonKind(StrEnum):
    FIT = "fit"
    PERSONA = "persona"
    INTENT = "intent"
    NEGATIVE = "negative"
    DISQUALIFIER = "disqualifier"
    ESCALATION = "escalation"
    CAP = "cap"
    DECAY = "decay"
    ACCOUNT = "account"


_LEADING_POINTS = re.compile(r"^[+-]\d+(?:\.\d)?\s+")


@dataclass(frozen=True, slots=True)
class Reason:
    """One signed line of a score: "+30 requested the EVK-7710 evaluation kit on 2026-11-26".

    `points` are the rule's own (before decay, caps and blend weights), as `text` starts with and
    `leadloop explain` and the playbook docs show them. `contribution` is what the line adds to the
    lead score today, in the score's units: points after decay, after the caps of the groups it counts
    in (cut in proportion to the positive lines of the group), times its blend weight. A card's
    contributions add up to its score (up to the rounding of fit, intent and score to one decimal).
    Lines that only explain an adjustment (decay, relevance bonus, caps, the best profile, the
    escalation) contribute 0: the lines they adjust carry it. Dates are absolute, never "2 days ago",
    so a line read a month after it was written is still true.
    """

    kind: ReasonKind
    rule: str
    points: float
    text: str
    occurred_at: datetime | None = None
    asset: str | None = None
    why: str | None = None
    contribution: float = 0.0

    @property
    def says(self) -> str:
        """`text` without the points it starts with: "requested the EVK-7710 evaluation kit on 2026-11-26"."""
        return _LEADING_POINTS.sub("", self.text, count=1)


@dataclass(frozen=True, slots=True)
class Escalation:
    rule: str
    sla: str
    text: str


@dataclass(frozen=True, slots=True)
class ScoreCard:
    person_id: str
    account_id: str | None
    model_version: str
    scored_at: datetime
    profile: str | None
    fit: float
    intent: float
    account_fit: float
    account_intent: float
    score: float
    tier: str
    grade: str | None = None
    stage: str | None = None
    role: str | None = None
    seniority: str | None = None
    escalation: Escalation | None = None
    disqualified: str | None = None
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    contact_fit: float = 0.0
    # the share of people at this score who converted within the playbook's calibration horizon
    # (0–1, `scoring.calibration`); None when the playbook has no calibration, and in cards stored
    # before it existed
    likelihood: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class AccountScore:
    account_id: str
    model_version: str
    fit: float
    intent: float
    tier: str
    buying_roles: tuple[str, ...] = ()
    engaged_people: int = 0
    reasons: tuple[Reason, ...] = field(default_factory=tuple)
    profile: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
