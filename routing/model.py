"""The values routing takes and returns: open tasks in, decisions and a suppression report out, and
for accounts whose buying committee meets the playbook's condition, account decisions.

Decisions are CRM-neutral: owners are named by rep email or queue id; `routing.crm_changes` turns
a decision into the FieldUpdate/TaskUpsert changes of each CRM where the person exists.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import NamedTuple

from leadloop.crm.changes import Priority
from leadloop.crm.records import Asset
from leadloop.routing.state import AssignmentState


@dataclass(frozen=True, slots=True)
class OpenTask:
    """A follow-up task leadloop created that is still open in the CRM (from the task ledger)."""

    person_id: str
    key: str
    owner: str
    created_at: datetime
    due: date


class Action(StrEnum):
    """What routing did with a person."""

    ASSIGN = "assign"
    NURTURE = "nurture"
    NONE = "none"
    EXCLUDED = "excluded"


class TaskKind(StrEnum):
    SALES_HANDOFF = "sales-handoff"
    OPPORTUNITY_ACTIVITY = "opportunity-activity"
    ACCOUNT_TEAM = "account-team"
    PARTNER = "partner"
    BUYING_COMMITTEE = "buying-committee"  # an account task: the committee, not one person


class SuppressionKind(StrEnum):
    """Each way routing holds back an action; every one is explained and counted."""

    DISQUALIFIED = "disqualified"
    OPEN_OPPORTUNITY = "open_opportunity"
    DUPLICATE_TASK = "duplicate_task"
    NO_NEW_SIGNAL = "no_new_signal"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    PARTNER_OWNED = "partner_owned"
    DISTRIBUTOR_REGISTERED = "distributor_registered"
    CUSTOMER_EVALUATION = "customer_evaluation"


@dataclass(frozen=True, slots=True)
class Suppression:
    kind: SuppressionKind
    text: str


class PlannedTask(NamedTuple):
    """A follow-up task to create, or to update when `updates_open_task` (same key as an open one)."""

    key: str
    kind: TaskKind
    owner: str
    subject: str
    note: str
    due_at: datetime
    priority: Priority
    sla: str
    updates_open_task: bool = False

    @property
    def due(self) -> date:
        """The due date in the owner's own calendar (due_at carries the owner's time zone)."""
        return self.due_at.date()


class Decision(NamedTuple):
    """Everything routing decided for one person, each step with its reason.

    An immutable named tuple rather than a frozen dataclass: routing builds one per scored person,
    and a frozen dataclass is several times slower to construct.
    """

    person_id: str
    tier: str
    action: Action
    owner: str | None = None
    owner_source: str | None = None
    task: PlannedTask | None = None
    nurture_track: str | None = None
    clear_nurture_track: bool = False
    next_asset: Asset | None = None
    suppressions: tuple[Suppression, ...] = ()
    reasons: tuple[str, ...] = ()

    @property
    def suppressed(self) -> bool:
        return bool(self.suppressions)


class CommitteeMember(NamedTuple):
    """One engaged member of an account's buying committee, as the account task names them."""

    person_id: str
    name: str
    title: str | None
    role: str
    intent: float
    last_engaged: date
    did: str  # their strongest signal in the window: its reason line, dated


class AccountDecision(NamedTuple):
    """What routing decided for an account whose buying committee meets the playbook's committee
    condition: an account task for its owner, or why none (`task` None, the reason in `reasons`)."""

    account_id: str
    tier: str
    roles: tuple[str, ...]
    members: tuple[CommitteeMember, ...]
    owner: str | None = None
    owner_source: str | None = None
    task: PlannedTask | None = None
    reasons: tuple[str, ...] = ()


@dataclass(slots=True)
class SuppressionReport:
    """How many people each suppression held back, with a few examples of each."""

    counts: Counter[SuppressionKind] = field(default_factory=Counter)
    examples: dict[SuppressionKind, list[str]] = field(default_factory=dict)
    max_examples: int = 3

    def add(self, person_id: str, suppression: Suppression) -> None:
        self.counts[suppression.kind] += 1
        examples = self.examples.setdefault(suppression.kind, [])
        if len(examples) < self.max_examples:
            examples.append(f"{person_id}: {suppression.text}")

    def lines(self) -> list[str]:
        return [f"{kind.value}: {n}" for kind, n in sorted(self.counts.items())]


@dataclass(slots=True)
class RoutingResult:
    decisions: list[Decision]
    state: AssignmentState
    report: SuppressionReport
    accounts: list[AccountDecision] = field(default_factory=list)  # committees meeting the condition

    def by_person(self) -> dict[str, Decision]:
        return {d.person_id: d for d in self.decisions}
