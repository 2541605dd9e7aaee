"""What scoring returns: a ScoreCard per person and an AccountScore per account, with reasons.

Fit and intent always stay visible separately next to the blended score. Every signed contribution
is a Reason with a sentence a rep can read; caps and decay show up as reasons too.
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Reason:
    """One signed contribution; `text` is shown to reps: "+25 requested EVK-7710 evaluation kit 2 days ago"
    """

    kind: ReasonKind
    rule: str
    points: float
    text: str
    occurred_at: datetime | None = None
    asset: str | None = None
    why: str | None = None


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
