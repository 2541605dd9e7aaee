"""Model review: how well past scores predicted what happened afterwards.

Pure analytics over (score card, outcome) pairs: conversion by tier, profile and segment, ROC AUC and
lift of the score, each signal's lift, where leads stall, a threshold backtest, and suggested weight
changes learned from outcomes. Suggestions are explained and never applied: a person reviews them
and edits the playbook.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from leadloop.crm.records import Activity, ActivityKind, ContactRole, Opportunity, Person
from leadloop.scoring.scorecard import ReasonKind, ScoreCard

SALES_TOUCHES = frozenset({ActivityKind.SALES_CALL, ActivityKind.SALES_EMAIL, ActivityKind.MEETING})


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a person within the review horizon after the score was taken."""

    person_id: str
    converted: bool
    won: bool = False
    detail: str = ""
    # already a contact on an opportunity open at the cut-off: not a lead the score predicts, so the
    # review leaves them out (see `outcomes_after`)
    in_open_opportunity: bool = False


@dataclass(frozen=True, slots=True)
class GroupRate:
    group: str
    people: int
    converted: int

    @property
    def rate(self) -> float:
        return self.converted / self.people if self.people else 0.0


@dataclass(frozen=True, slots=True)
class SignalLift:
    rule: str
    people_with: int
    rate_with: float
    rate_without: float
    lift: float  # rate_with / base rate
    current_points: float


@dataclass(frozen=True, slots=True)
class WeightSuggestion:
    rule: str
    current_points: float
    suggested_points: float
    why: str


@dataclass(frozen=True, slots=True)
class BacktestRow:
    threshold: float
    selected: int
    converted: int
    precision: float
    recall: float


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """Scores in [min_score, max_score) converted at `rate` (`converted` of `people`) within the
    horizon; the last bin includes its max_score. Bins are in score order and rates never fall."""

    min_score: float
    max_score: float
    rate: float
    people: int
    converted: int


@dataclass(frozen=True, slots=True)
class WeightChange:
    """One weight the learned candidate changes, with the evidence behind it."""

    rule: str  # playbook id: an intent/fit/negative rule, or a blend component (contact_fit, …)
    where: str  # "intent rule", "fit rule", "negative", "account signal", "blend"
    current: float
    candidate: float
    evidence: str  # in words, for revenue operations: who had it, how they converted, the fitted effect
    confidence: float  # 0–1: how sure the fit is of the direction of the change


@dataclass(slots=True)
class LearnedCandidate:
    """What the review learned from outcomes: a candidate playbook (written, never activated), its
    calibration, and the ceiling a gradient-boosting model on raw features reaches on the same
    held-out cohort. Trained on the older cohort, measured on the newest."""

    train_cutoff: datetime
    test_cutoff: datetime
    train_people: int
    test_people: int
    yaml_path: str | None  # where the candidate playbook was written
    changes: list[WeightChange] = field(default_factory=list)
    kept: int = 0  # weights left as they are (too little evidence, or no clear effect)
    calibration: list[CalibrationBin] = field(default_factory=list)
    calibration_error: float | None = None  # mean |predicted − observed| over held-out deciles
    ceiling_auc: float | None = None  # gradient boosting on raw features, held-out cohort


@dataclass(slots=True)
class ModelReview:
    model_version: str
    people: int
    converted: int
    base_rate: float
    auc: float | None
    by_tier: list[GroupRate] = field(default_factory=list)
    by_profile: list[GroupRate] = field(default_factory=list)
    by_segment: list[GroupRate] = field(default_factory=list)
    by_stage: list[GroupRate] = field(default_factory=list)
    lift_by_decile: list[GroupRate] = field(default_factory=list)
    signals: list[SignalLift] = field(default_factory=list)
    backtest: list[BacktestRow] = field(default_factory=list)
    suggestions: list[WeightSuggestion] = field(default_factory=list)
    # per person, in the same order: the score, whether they converted, and (with a calibration)
    # the likelihood the score maps to; the charts of the report are drawn from these
    scores: list[float] = field(default_factory=list)
    labels: list[bool] = field(default_factory=list)
    likelihoods: list[float] | None = None
    tiers: tuple[str, ...] = ()  # the playbook's tier order, best first
    learned: LearnedCandidate | None = None  # on the learned candidate's review: how it was learned
    # the top tier as a selection: the share of it that converted, and the share of converters in it
    top_tier_precision: float | None = None
    top_tier_recall: float | None = None
    # with `likelihoods`: the calibration they come from (fitted on the older cohort) and its error here
    calibration: list[CalibrationBin] = field(default_factory=list)
    calibration_error: float | None = None


def outcomes_after(
    people: Iterable[Person],
    opportunities: Iterable[Opportunity],
    cutoff: datetime,
    horizon: timedelta,
    contact_roles: Iterable[ContactRole] = (),
) -> dict[str, Outcome]:
    """A person converted when an opportunity was created within (cutoff, cutoff + horizon] on
    their account or with them as a contact role; `won` when one of those opportunities was won.

    People who were already a contact on an opportunity still open at the cut-off are marked
    `in_open_opportunity`, and `review_model` leaves them out: sales already works their evaluation,
    and the score's question (who opens the next opportunity) is not theirs. Counted as "not
    converted" they sit in the top tier, whose intent they still show, and pull its rate down.
    Contacts come from `contact_ids` and `contact_roles` (person ids as in `people`)."""
    end = cutoff + horizon
    roles: dict[str, set[str]] = defaultdict(set)
    for role in contact_roles:
        roles[role.opportunity_id].add(role.person_id)
    by_account: dict[str, list[Opportunity]] = defaultdict(list)
    by_contact: dict[str, list[Opportunity]] = defaultdict(list)
    in_open_opportunity: set[str] = set()
    for opp in opportunities:
        contacts = roles.get(opp.id, set()).union(opp.contact_ids)
        if opp.created_at is not None and opp.created_at <= cutoff and not (
                opp.is_closed and (opp.close_date is None or opp.close_date <= cutoff.date())):
            in_open_opportunity.update(contacts)
        if opp.created_at is None or not (cutoff < opp.created_at <= end):
            continue
        if opp.account_id:
            by_account[opp.account_id].append(opp)
        for contact in contacts:
            by_contact[contact].append(opp)
    outcomes = {}
    for person in people:
        opps = by_contact.get(person.id) or by_account.get(person.account_id or "", [])
        outcomes[person.id] = Outcome(
            person_id=person.id,
            converted=bool(opps),
            won=any(o.is_won for o in opps),
            detail=", ".join(sorted({o.name or o.id for o in opps}))[:200],
            in_open_opportunity=person.id in in_open_opportunity,
        )
    return outcomes


def roc_auc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Area under the ROC curve (Mann–Whitney U with tied scores counted half); None when one class
    is missing, since the AUC is then undefined."""
    positives = sum(1 for label in labels if label)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    ranked = sorted(zip(scores, labels, strict=True), key=lambda pair: pair[0])
    rank_sum = 0.0
    i = 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        average_rank = (i + j) / 2 + 1
        rank_sum += average_rank * sum(1 for k in range(i, j + 1) if ranked[k][1])
        i = j + 1
    u = rank_sum - positives * (positives + 1) / 2
    return u / (positives * negatives)


def _rates(pairs: Iterable[tuple[str, bool]]) -> list[GroupRate]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for group, converted in pairs:
        counts[group][0] += 1
        counts[group][1] += int(converted)
    return [GroupRate(g, n, c) for g, (n, c) in sorted(counts.items())]


def _deciles(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> list[GroupRate]:
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    size = max(1, len(order) // bins)
    rows = []
    for b in range(bins):
        chunk = order[b * size:(b + 1) * size] if b < bins - 1 else order[b * size:]
        if not chunk:
            continue
        rows.append(GroupRate(f"top {10 * (b + 1)}%", len(chunk), sum(labels[i] for i in chunk)))
    return rows


def _signal_rules(card: ScoreCard) -> set[str]:
    kinds = (ReasonKind.INTENT, ReasonKind.ESCALATION)
    return {r.rule for r in card.reasons if r.kind in kinds and r.points > 0}


def signal_lifts(
    cards: Sequence[ScoreCard], labels: Sequence[bool], rule_points: dict[str, float], min_people: int = 5
) -> list[SignalLift]:
    """Conversion of the people who showed each intent signal, against everyone else."""
    total = len(cards)
    base = sum(labels) / total if total else 0.0
    having: dict[str, list[int]] = defaultdict(list)
    for index, card in enumerate(cards):
        for rule in _signal_rules(card):
            having[rule].append(index)
    lifts = []
    for rule, indices in sorted(having.items()):
        if len(indices) < min_people:
            continue
        with_rate = sum(labels[i] for i in indices) / len(indices)
        others = total - len(indices)
        without_rate = (sum(labels) - sum(labels[i] for i in indices)) / others if others else 0.0
        lifts.append(SignalLift(rule, len(indices), with_rate, without_rate,
                                with_rate / base if base else 0.0, rule_points.get(rule, 0.0)))
    return sorted(lifts, key=lambda s: -s.lift)


def suggest_weights(lifts: Sequence[SignalLift], max_change: float = 0.5) -> list[WeightSuggestion]:
    """Nudge each signal's points towards its observed lift: points × lift, at most ±50 % per review,
    only where the evidence is clear (lift below 0.8 or above 1.25)."""
    suggestions = []
    for signal in lifts:
        if signal.current_points <= 0 or 0.8 <= signal.lift <= 1.25:
            continue
        factor = min(1 + max_change, max(1 - max_change, signal.lift))
        suggested = round(signal.current_points * factor)
        if suggested == signal.current_points:
            continue
        direction = "raise" if suggested > signal.current_points else "lower"
        suggestions.append(WeightSuggestion(
            signal.rule, signal.current_points, suggested,
            f"{direction}: {signal.people_with} people with this signal converted at "
            f"{signal.rate_with:.0%} against {signal.rate_without:.0%} without it (lift {signal.lift:.2f})",
        ))
    return suggestions


def backtest(
    scores: Sequence[float], labels: Sequence[bool], thresholds: Iterable[float]
) -> list[BacktestRow]:
    """What the top tier would hold, and how well it would convert, at other score thresholds."""
    positives = sum(labels)
    rows = []
    for threshold in thresholds:
        chosen = [label for score, label in zip(scores, labels, strict=True) if score >= threshold]
        hits = sum(chosen)
        rows.append(BacktestRow(threshold, len(chosen), hits,
                                hits / len(chosen) if chosen else 0.0,
                                hits / positives if positives else 0.0))
    return rows


def review_model(
    cards: Sequence[ScoreCard],
    outcomes: dict[str, Outcome],
    segment_of: Callable[[ScoreCard], str | None],
    rule_points: dict[str, float],
    thresholds: Iterable[float] = (20, 30, 40, 50, 60, 70, 80),
    tiers: Sequence[str] = (),
) -> ModelReview:
    """The whole review for one model version's score cards."""
    paired = sorted((c for c in cards if c.person_id in outcomes
                     and not outcomes[c.person_id].in_open_opportunity), key=lambda c: c.person_id)
    labels = [outcomes[c.person_id].converted for c in paired]
    scores = [c.score for c in paired]
    converted = sum(labels)
    top = [y for c, y in zip(paired, labels, strict=True) if tiers and c.tier == tiers[0]]
    return ModelReview(
        model_version=paired[0].model_version if paired else "",
        people=len(paired),
        converted=converted,
        base_rate=converted / len(paired) if paired else 0.0,
        auc=roc_auc(scores, labels),
        by_tier=_rates((c.tier, y) for c, y in zip(paired, labels, strict=True)),
        by_profile=_rates((c.profile or "(none)", y) for c, y in zip(paired, labels, strict=True)),
        by_segment=_rates((segment_of(c) or "(unknown)", y) for c, y in zip(paired, labels, strict=True)),
        by_stage=_rates((c.stage or "(none)", y) for c, y in zip(paired, labels, strict=True)),
        lift_by_decile=_deciles(scores, labels),
        signals=signal_lifts(paired, labels, rule_points),
        backtest=backtest(scores, labels, thresholds),
        suggestions=suggest_weights(signal_lifts(paired, labels, rule_points)),
        scores=scores,
        labels=labels,
        tiers=tuple(tiers),
        top_tier_precision=sum(top) / len(top) if top else None,
        top_tier_recall=sum(top) / converted if tiers and converted else None,
    )


@dataclass(frozen=True, slots=True)
class SlaReport:
    tasks: int
    completed_on_time: int
    completed_late: int
    open_overdue: int
    median_hours_to_first_touch: float | None

    @property
    def adherence(self) -> float:
        return self.completed_on_time / self.tasks if self.tasks else 0.0


@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """A task leadloop created, as the CRM has it now."""

    person_id: str
    created_at: datetime
    due: datetime
    completed_at: datetime | None


def sla_report(tasks: Sequence[TaskOutcome], activities: Iterable[Activity], now: datetime) -> SlaReport:
    """SLA adherence (tasks completed by their due date) and speed to the first sales touch after a
    task was created (calls, sales emails, meetings)."""
    touches: dict[str, list[datetime]] = defaultdict(list)
    for activity in activities:
        if activity.kind in SALES_TOUCHES:
            touches[activity.person_id].append(activity.occurred_at)
    on_time = late = overdue = 0
    hours: list[float] = []
    for task in tasks:
        if task.completed_at is not None:
            if task.completed_at <= task.due:
                on_time += 1
            else:
                late += 1
        elif now > task.due:
            overdue += 1
        after = [t for t in touches.get(task.person_id, []) if t >= task.created_at]
        if after:
            hours.append((min(after) - task.created_at).total_seconds() / 3600)
    hours.sort()
    median = None
    if hours:
        mid = len(hours) // 2
        median = hours[mid] if len(hours) % 2 else (hours[mid - 1] + hours[mid]) / 2
    return SlaReport(len(tasks), on_time, late, overdue, median)


def wilson_interval(converted: int, people: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a conversion rate (z = 1.96): unlike rate ± 1.96·SE it stays
    within [0, 1] and is not zero-width at 0 of 5 or 5 of 5. (0, 1) when there is nobody."""
    if people <= 0:
        return 0.0, 1.0
    rate = converted / people
    denominator = 1 + z * z / people
    centre = (rate + z * z / (2 * people)) / denominator
    half = z * (rate * (1 - rate) / people + z * z / (4 * people * people)) ** 0.5 / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class TierInversion:
    """A tier that converted at a higher rate than a tier the playbook ranks above it."""

    higher: GroupRate  # the tier ranked better in the playbook
    lower: GroupRate  # the tier ranked below it, which converted more
    higher_interval: tuple[float, float]  # 95 % Wilson intervals of the two rates
    lower_interval: tuple[float, float]

    @property
    def beyond_intervals(self) -> bool:
        """The intervals do not overlap: the inversion is unlikely to be chance at these counts."""
        return self.lower_interval[0] > self.higher_interval[1]


def tier_inversions(review: ModelReview) -> list[TierInversion]:
    """Every pair of tiers (in `review.tiers`, best first) where the lower tier converted at a higher
    rate than the higher one, best-ranked pair first. Tiers nobody was in, and tiers the order does
    not name, are left out; without a tier order there is nothing to compare."""
    by_name = {group.group: group for group in review.by_tier if group.people}
    ranked = [by_name[name] for name in review.tiers if name in by_name]
    inversions = []
    for i, higher in enumerate(ranked):
        for lower in ranked[i + 1:]:
            if lower.rate > higher.rate:
                inversions.append(TierInversion(
                    higher, lower, wilson_interval(higher.converted, higher.people),
                    wilson_interval(lower.converted, lower.people)))
    return inversions
