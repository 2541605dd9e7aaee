"""The scoring engine: pure functions from canonical records and a playbook to ScoreCards.

`score_dataset(playbook, dataset, now)` scores everyone in one pass: account fit per account (best
applicable profile), contact fit per person (persona + person rules), contact intent from activities
(`scoring.intent`), account intent rolled up from the people, then the blend, tiers, escalations and
disqualifiers. `now` is always a parameter; records are sorted first, so the output never depends on
their order. Scores are rounded to one decimal so float noise never changes a tier, and tiers are
placed on the whole points the CRMs show (a 24.6 is written as 25, so it is placed as 25).

Every reason carries its contribution to the lead score today (`Reason.contribution`): fit lines
times their blend weight, intent lines after decay and caps times theirs, the account-intent line
times its weight, and the static cap shared out among the fit lines it cuts. A disqualified person
drops to the lowest tier and their score is held at its bottom (`disqualified_ceiling`); their
disqualifier heads the reasons and carries what that took off, so the lines still add up.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import repeat

import numpy as np

from leadloop.crm.activity_columns import ActivityColumns
from leadloop.crm.batch import build_many
from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Activity, Person
from leadloop.playbook.assets import ActivityKey, AssetCatalog
from leadloop.playbook.compiled import CompiledPlaybook, compile_playbook
from leadloop.playbook.model import Playbook
from leadloop.playbook.wording import VERBS, fill, number, signed
from leadloop.scoring.calibration import likelihoods
from leadloop.scoring.contributions import contributions, cut_many, share
from leadloop.scoring.fit import AccountFit, _account_fit, _PersonFit, _Static, account_fit
from leadloop.scoring.intent import (
    DAY,
    ActivityReport,
    IntentInputs,
    Trigger,
    _Classes,
    classify,
    compute_intent,
)
from leadloop.scoring.intent_lines import IntentWriter, on_day
from leadloop.scoring.machine_email import MachineEmail, filter_machine_email
from leadloop.scoring.rollup import _rollups, score_account
from leadloop.scoring.scorecard import AccountScore, Escalation, Reason, ReasonKind, ScoreCard
from leadloop.scoring.tiers import _r, _rounded, _tiers_reached, whole

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class UnmatchedActivities:
    """Activities that name something (URL, form, campaign, asset id) no asset rule understands."""

    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)
    examples: tuple[str, ...] = ()


@dataclass(slots=True)
class ScoringResult:
    model_version: str
    scored_at: datetime
    cards: dict[str, ScoreCard]
    accounts: dict[str, AccountScore]
    unknown_titles: dict[str, int] = field(default_factory=dict)
    missing_titles: int = 0
    unmatched_activities: UnmatchedActivities = field(default_factory=UnmatchedActivities)
    orphan_activities: int = 0
    future_activities: int = 0
    tiers: tuple[str, ...] = ()
    people: dict[str, Person] = field(default_factory=dict)
    # what `unmatched_activities` summarizes, by activity key (for merging partitions' results)
    unmatched_counts: dict[ActivityKey, int] = field(default_factory=dict, repr=False, compare=False)
    machine_email: MachineEmail = field(default_factory=MachineEmail)  # email events no person made
    # person id → when the card is next due (`scoring.due`), where the caller asked for it
    due: dict[str, datetime] = field(default_factory=dict, repr=False, compare=False)

    def tier_counts(self) -> dict[str, int]:
        """People per tier, in the playbook's tier order."""
        counts = Counter(card.tier for card in self.cards.values())
        ordered = {tier: counts.get(tier, 0) for tier in self.tiers}
        ordered.update({tier: n for tier, n in sorted(counts.items()) if tier not in ordered})
        return ordered

    def ranked(self) -> list[ScoreCard]:
        """Cards from the best tier and highest score down (ties by person id)."""
        rank = {tier: i for i, tier in enumerate(self.tiers)}
        return sorted(self.cards.values(), key=lambda c: (rank.get(c.tier, len(rank)), -c.score, c.person_id))


def _escalation(
    cp: CompiledPlaybook, triggers: list[Trigger], fit: float
) -> tuple[Escalation, str, Reason] | None:
    by_rule = {t.rule: t for t in triggers}
    for index, rule in enumerate(cp.playbook.escalations):
        trigger = by_rule.get(index)
        if trigger is None or fit < rule.min_fit:
            continue
        tier = rule.tier or cp.playbook.top_tier
        asset = trigger.asset.name if trigger.asset else "their request"
        did = fill(VERBS.get(trigger.kind, "asked for {asset}"), asset=asset)
        text = f"escalated to {tier} (SLA {rule.sla}): {did} {on_day(trigger.ts)}"
        reason = Reason(
            ReasonKind.ESCALATION,
            rule.id,
            0.0,
            text,
            datetime.fromtimestamp(trigger.ts, UTC),
            trigger.asset.id if trigger.asset else None,
            rule.why,
        )
        return Escalation(rule.id, rule.sla, text), tier, reason
    return None


def _sorted_unique(records: Iterable, stamp: str) -> list:
    """Sorted by id; of duplicate ids the most recently updated wins (then the larger repr)."""
    ordered = sorted(records, key=lambda r: (r.id, getattr(r, stamp) or _EPOCH))
    unique = []
    for record in ordered:
        if unique and unique[-1].id == record.id:
            previous = unique[-1]
            newer = (getattr(record, stamp) or _EPOCH, repr(record)) >= (
                getattr(previous, stamp) or _EPOCH,
                repr(previous),
            )
            if newer:
                unique[-1] = record
            continue
        unique.append(record)
    return unique


def score_dataset(
    playbook: Playbook,
    dataset: Dataset,
    now: datetime,
    *,
    account_intent_override: dict[str, float] | None = None,
    activity_columns: ActivityColumns | None = None,
) -> ScoringResult:
    """Score every person and account of a dataset as of `now`. The activities are
    `activity_columns` when given (a store's read, no record per activity), else the dataset's
    records, turned into the same columns."""
    prepared = prepare(playbook, dataset, activity_columns)
    return score_prepared(prepared, now, account_intent_override=account_intent_override, release=True)


@dataclass(slots=True)
class Prepared:
    """What scoring a dataset takes that does not depend on `now`: the records in order, every fit,
    the activities without machine-made email and, once asked for (`classified`), each activity's
    class. Scoring the same people at several moments (`scoring.due`'s probes) does this once;
    `part` hands a subset of whole accounts the same work without redoing it."""

    playbook: Playbook
    cp: CompiledPlaybook
    dataset: Dataset
    people: list[Person]
    accounts: dict[str, Account]
    fits: dict[str, AccountFit]
    statics: list[_Static]
    profiles: np.ndarray
    catalog: AssetCatalog
    columns: ActivityColumns | None
    machine_email: MachineEmail
    classes: tuple[_Classes, np.ndarray] | None = None

    def classified(self) -> tuple[_Classes, np.ndarray]:
        """The activity classes and each activity's class (`scoring.intent.classify`), kept."""
        if self.classes is None:
            assert self.columns is not None, "the activities were released"
            self.classes = classify(self.cp, self.catalog, self.columns)
        return self.classes

    def part(self, person_ids: set[str], account_ids: set[str]) -> Prepared:
        """The people of `person_ids` with the accounts of `account_ids` and their activities, in
        the same order; scored, each card is the whole's when the part holds whole accounts. All the
        people: this itself, without a copy."""
        if len(person_ids) == len(self.people):
            return self
        assert self.columns is not None, "the activities were released"
        positions = [i for i, person in enumerate(self.people) if person.id in person_ids]
        wanted = np.fromiter((person in person_ids for person in self.columns.persons), dtype=bool,
                             count=len(self.columns.persons))
        rows = np.flatnonzero(wanted[self.columns.person] if len(wanted) else np.zeros(0, dtype=bool))
        classes = None if self.classes is None else (self.classes[0], self.classes[1][rows])
        people = [self.people[i] for i in positions]
        accounts = {a: account for a, account in self.accounts.items() if a in account_ids}
        return Prepared(
            self.playbook, self.cp,
            replace(self.dataset, people=people, accounts=list(accounts.values()), activities=[]),
            people, accounts, {a: fit for a, fit in self.fits.items() if a in account_ids},
            [self.statics[i] for i in positions], self.profiles[positions], self.catalog,
            self.columns.take(rows), self.machine_email, classes)


def prepare(playbook: Playbook, dataset: Dataset, activity_columns: ActivityColumns | None = None
            ) -> Prepared:
    """The part of scoring `dataset` that does not depend on `now` (see `Prepared`)."""
    cp = compile_playbook(playbook)
    people: list[Person] = _sorted_unique(dataset.people, "updated_at")
    accounts: dict[str, Account] = {a.id: a for a in _sorted_unique(dataset.accounts, "updated_at")}
    shared_lines: dict = {}
    fits = {account_id: _account_fit(cp, account, shared_lines) for account_id, account in accounts.items()}
    statics, profiles = _person_statics(cp, people, accounts, fits)
    catalog = cp.assets.with_dataset_assets(dataset.assets)
    columns = (activity_columns if activity_columns is not None
               else ActivityColumns.from_records(dataset.activities))
    columns, machine_email = filter_machine_email(columns)  # link scanners are not people
    return Prepared(playbook, cp, dataset, people, accounts, fits, statics, profiles, catalog, columns,
                    machine_email)


def score_prepared(prepared: Prepared, now: datetime, *,
                   account_intent_override: dict[str, float] | None = None,
                   release: bool = False, explain: bool = True) -> ScoringResult:
    """`score_dataset` of what `prepare` made, keeping the activity classes for the next moment. With
    `release`, the prepared activities are let go as soon as intent has read them instead (a one-time
    score of a large dataset). Without `explain`, the cards leave out the intent lines that only
    explain (activities, depth, relevance, decay): every score, tier and stage is the same, the
    reasons are not (`scoring.due` compares keys, never reasons)."""
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    cp, people, accounts, fits, statics = (prepared.cp, prepared.people, prepared.accounts, prepared.fits,
                                           prepared.statics)
    person_ids = [p.id for p in people]
    person_index = {person_id: i for i, person_id in enumerate(person_ids)}
    columns = prepared.columns
    assert columns is not None, "the activities were released"
    raw, report = compute_intent(cp, prepared.catalog, person_index, prepared.profiles, columns, now,
                                 classified=prepared.classes if release else prepared.classified())
    del columns
    if release:
        prepared.columns = None
    intent_totals, intent_lines = IntentWriter(cp, raw, now.timestamp())(
        len(people), [static.intent_negatives for static in statics], explain=explain
    )
    raw.release_hits()

    position = {account_id: k for k, account_id in enumerate(accounts)}
    account_of = np.fromiter(
        (position.get(p.account_id, -1) for p in people), dtype=np.int64, count=len(people)
    )
    account_scores = _account_scores(cp, people, person_ids, fits, statics, account_of, intent_totals)
    cards = _cards(
        cp,
        people,
        accounts,
        fits,
        account_scores,
        statics,
        intent_totals,
        intent_lines,
        raw,
        now,
        account_intent_override,
        account_of,
        person_ids,
    )
    result = _result(prepared.playbook, now, people, statics, cards, account_scores, report)
    result.machine_email = prepared.machine_email
    return result


def _person_statics(
    cp: CompiledPlaybook, people: list[Person], accounts: dict[str, Account], fits: dict[str, AccountFit]
) -> tuple[list[_Static], np.ndarray]:
    """Each person's fit from their own fields, and the profile of their account (the profile count
    when none applies)."""
    none_fit = AccountFit(None, 0.0)
    person_fit = _PersonFit(cp)
    statics: list[_Static] = []
    profiles = np.full(len(people), len(cp.profiles), dtype=np.int64)
    for i, person in enumerate(people):
        account = accounts.get(person.account_id) if person.account_id else None
        statics.append(person_fit(person, account))
        fit = fits.get(person.account_id, none_fit) if person.account_id else none_fit
        if fit.profile is not None:
            profiles[i] = fit.profile.index
    return statics, profiles


def _account_scores(
    cp: CompiledPlaybook,
    people: list[Person],
    person_ids: list[str],
    fits: dict[str, AccountFit],
    statics: list[_Static],
    account_of: np.ndarray,
    intent_totals: list[float],
) -> dict[str, AccountScore]:
    """Every account's roll-up of its people, by account id (in `fits` order)."""
    account_ids = list(fits)
    return dict(
        zip(
            account_ids,
            _rollups(
                cp,
                account_ids,
                [fits[a] for a in account_ids],
                account_of,
                np.array(intent_totals, dtype=np.float64),
                np.array([s.disqualifier is not None for s in statics], dtype=bool),
                person_ids,
                [s.role for s in statics],
                lambda i: people[i].name,
            ),
            strict=True,
        )
    )


def _result(
    pb: Playbook,
    now: datetime,
    people: list[Person],
    statics: list[_Static],
    cards: dict[str, ScoreCard],
    account_scores: dict[str, AccountScore],
    report: ActivityReport,
) -> ScoringResult:
    unknown = Counter(
        p.title for p, s in zip(people, statics, strict=True) if p.title and not s.title_matched
    )
    return ScoringResult(
        model_version=pb.model_version,
        scored_at=now,
        cards=cards,
        accounts=account_scores,
        unknown_titles=dict(sorted(unknown.items(), key=lambda kv: (-kv[1], kv[0]))),
        missing_titles=sum(1 for p in people if not p.title),
        unmatched_activities=_unmatched(report.unmatched),
        orphan_activities=report.orphans,
        future_activities=report.future,
        tiers=tuple(t.name for t in pb.tiers),
        people={p.id: p for p in people},
        unmatched_counts=dict(report.unmatched),
    )


def _cards(
    cp: CompiledPlaybook,
    people: list[Person],
    accounts: dict[str, Account],
    fits: dict[str, AccountFit],
    account_scores: dict[str, AccountScore],
    statics: list[_Static],
    intent_totals: list[float],
    intent_lines: list[list[Reason]],
    raw: IntentInputs,
    now: datetime,
    account_intent_override: dict[str, float] | None,
    account_of: np.ndarray,
    person_ids: list[str],
) -> dict[str, ScoreCard]:
    """Blend, tier, grade, escalation and reasons of everyone (`account_of[i]`: person i's position in
    `accounts`, -1 for none; `person_ids[i]`: their id); the arithmetic runs on arrays in the order a
    per-person loop would use, so every float is the same."""
    pb = cp.playbook
    n = len(people)
    account_ids = list(accounts)
    # index -1 (no account) reads the last entry: no profile, no fit, no intent
    account_fit = np.array([fits[a].fit for a in account_ids] + [0.0])[account_of]
    account_intent = _account_intent_of_people(
        people, account_ids, account_scores, account_of, account_intent_override
    )
    contact_fit = np.array([s.contact_fit for s in statics], dtype=np.float64)
    intent = np.array(intent_totals, dtype=np.float64)
    fit, score, tails = _blend(pb, contact_fit, account_fit, intent, account_intent)
    held = _hold_disqualified(pb, statics, score)
    fit_list, account_intent_list = fit.tolist(), account_intent.tolist()
    _add_account_intent_lines(
        tails, people, account_scores, account_intent, account_intent_list, pb.blend.account_intent,
        frozenset(signal.id for signal in pb.account.signals),
    )

    tier = _tiers_reached(pb.tiers, n, score=whole(score), fit=whole(fit), intent=whole(intent))
    heads, escalations = _heads(cp, statics, raw, fit_list, tier, held)
    account_lines = [fits[a].reasons for a in account_ids] + [()]  # -1 (no account): none
    capped = _static_capped(pb, contact_fit, account_fit)
    reasons = _reasons(intent_lines, heads, account_lines, account_of, statics, tails, capped,
                       pb.blend.static_cap)
    del tails, heads

    stages = pb.stages
    profiles = [fits[a].profile.profile.id if fits[a].profile else None for a in account_ids] + [None]
    built = build_many(
        ScoreCard,
        n,
        {
            "person_id": person_ids,
            "account_id": [p.account_id for p in people],
            "model_version": repeat(pb.model_version, n),
            "scored_at": repeat(now, n),
            "profile": [profiles[k] for k in account_of.tolist()],
            "fit": fit_list,
            "intent": intent_totals,
            "account_fit": account_fit.tolist(),
            "account_intent": account_intent_list,
            "score": score.tolist(),
            "tier": tier,
            "grade": _grades(pb, fit, intent),
            "stage": [stages[k] if k >= 0 else None for k in raw.stage],
            "role": [s.role for s in statics],
            "seniority": [s.seniority for s in statics],
            "escalation": [escalations.get(i) for i in range(n)],
            "disqualified": [s.disqualifier.rule if s.disqualifier else None for s in statics],
            "reasons": reasons,
            "contact_fit": contact_fit.tolist(),
            "likelihood": likelihoods(score.tolist(), pb.calibration),
        },
    )
    return dict(zip(person_ids, built, strict=True))


def _account_intent_of_people(
    people: list[Person],
    account_ids: list[str],
    account_scores: dict[str, AccountScore],
    account_of: np.ndarray,
    account_intent_override: dict[str, float] | None,
) -> np.ndarray:
    """Each person's account intent (0 without an account), or the override given for the account."""
    account_intents = [account_scores[a].intent for a in account_ids] + [0.0]
    account_intent = np.array(account_intents)[account_of]
    if account_intent_override:
        values = account_intent.tolist()
        for i, person in enumerate(people):
            if person.account_id in account_intent_override:
                values[i] = _r(account_intent_override[person.account_id])
        account_intent = np.array(values, dtype=np.float64)
    return account_intent


def _blend(
    pb: Playbook,
    contact_fit: np.ndarray,
    account_fit: np.ndarray,
    intent: np.ndarray,
    account_intent: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[list[Reason]]]:
    """(fit, lead score, each person's first tail lines): the blend of contact and account fit and
    intent, the points from fit capped at the static cap (with a line for each cut)."""
    blend = pb.blend
    n = len(contact_fit)
    fit_weight = blend.contact_fit + blend.account_fit
    static_points = blend.contact_fit * contact_fit + blend.account_fit * account_fit
    fit = _rounded(static_points / fit_weight) if fit_weight else np.zeros(n)
    over = static_points > blend.static_cap
    tails: list[list[Reason]] = [[] for _ in range(n)]
    for i, points in zip(np.nonzero(over)[0].tolist(), static_points[over].tolist(), strict=True):
        cut = blend.static_cap - points
        tails[i].append(
            Reason(
                ReasonKind.CAP,
                "static_cap",
                _r(cut),
                f"{signed(cut)} capped at {number(blend.static_cap)}: lead-score points from fit "
                "(static fields)",
                why=blend.why,
            )
        )
    static_points = np.where(over, float(blend.static_cap), static_points)
    score = _rounded(static_points + blend.contact_intent * intent + blend.account_intent * account_intent)
    return fit, score, tails


def _static_capped(pb: Playbook, contact_fit: np.ndarray, account_fit: np.ndarray) -> list[int]:
    """Positions of the people whose points from fit the static cap cuts (as `_blend` decides)."""
    blend = pb.blend
    static_points = blend.contact_fit * contact_fit + blend.account_fit * account_fit
    return np.nonzero(static_points > blend.static_cap)[0].tolist()


def _add_account_intent_lines(
    tails: list[list[Reason]],
    people: list[Person],
    account_scores: dict[str, AccountScore],
    account_intent: np.ndarray,
    account_intent_list: list[float],
    weight: float,
    signal_ids: frozenset[str] = frozenset(),
) -> None:
    """The account-intent line of everyone whose account intent counts, one object per (account,
    value); then a line of each account signal of their account (`account.signals`) that adds nothing
    by itself (the account-intent line carries its points) but says which signal counted, for the
    model review's learner."""
    shared: dict[tuple[str | None, float], tuple[Reason, ...]] = {}
    for i in np.nonzero(account_intent)[0].tolist():
        account_id = people[i].account_id
        key = (account_id, account_intent_list[i])
        lines = shared.get(key)
        if lines is None:
            account_score = account_scores.get(account_id)
            signals = [r for r in (account_score.reasons if account_score else ())
                       if r.kind == ReasonKind.ACCOUNT and r.rule in signal_ids]
            lines = shared[key] = (
                _account_line(account_score, account_intent_list[i], weight, [r.says for r in signals]),
                *(Reason(ReasonKind.ACCOUNT, r.rule, r.points, f"account intent includes: {r.says}",
                         why=r.why) for r in signals),
            )
        tails[i].extend(lines)


def disqualified_ceiling(pb: Playbook) -> float:
    """The most a disqualified person scores: the bottom of the tier they drop to (its `min_score`,
    0 when it has none), so their score never reads higher than the tier they are placed in."""
    lowest = next(t for t in pb.tiers if t.name == pb.lowest_tier)
    return float(lowest.min_score or 0.0)


def _hold_disqualified(pb: Playbook, statics: list[_Static], score: np.ndarray) -> dict[int, float]:
    """Holds each disqualified person's score at `disqualified_ceiling` (`score` is changed in place);
    returns what that took off (a negative number of score points), by person position. Fit and intent
    stay as computed: they still say who the person is and what they did."""
    ceiling = disqualified_ceiling(pb)
    held: dict[int, float] = {}
    for i, static in enumerate(statics):
        if static.disqualifier is not None and score[i] > ceiling:
            held[i] = ceiling - float(score[i])
            score[i] = ceiling
    return held


def _held_line(disqualifier: Reason, cut: float, ceiling: float) -> Reason:
    """The disqualifier as the line that takes the score down to the ceiling: "-58.6 disqualified: is
    owned by a channel partner (score held at 0)", contributing the cut, so the lines still add up."""
    text = f"{signed(cut)} {disqualifier.text} (score held at {number(ceiling)})"
    return replace(disqualifier, points=_r(cut), text=text, contribution=cut)


def _heads(
    cp: CompiledPlaybook,
    statics: list[_Static],
    raw: IntentInputs,
    fit_list: list[float],
    tier: list[str],
    held: dict[int, float],
) -> tuple[dict[int, Reason], dict[int, Escalation]]:
    """The first reason of the disqualified (who drop to the lowest tier, their score held at its
    bottom: `held` is what that took off, by person position) and of the escalated (who rise to their
    escalation's tier), by person position; `tier` is changed in place."""
    pb = cp.playbook
    heads: dict[int, Reason] = {}
    escalations: dict[int, Escalation] = {}
    lowest = pb.lowest_tier
    ceiling = disqualified_ceiling(pb)
    for i, static in enumerate(statics):
        if static.disqualifier is not None:
            cut = held.get(i)
            heads[i] = static.disqualifier if cut is None else _held_line(static.disqualifier, cut, ceiling)
            tier[i] = lowest
    for i, triggers in raw.escalations.items():
        if i in heads or not triggers:
            continue
        fired = _escalation(cp, triggers, fit_list[i])
        if fired is not None:
            escalations[i], forced, heads[i] = fired
            if pb.tier_rank(forced) < pb.tier_rank(tier[i]):
                tier[i] = forced
    return heads, escalations


def _reasons(
    intent_lines: list[list[Reason]],
    heads: dict[int, Reason],
    account_lines: list[tuple[Reason, ...]],
    account_of: np.ndarray,
    statics: list[_Static],
    tails: list[list[Reason]],
    static_capped: list[int],
    static_cap: float,
) -> list[tuple[Reason, ...]]:
    """Each person's reasons: head, intent, account fit, contact fit, then the tail lines. The fit
    lines of the people in `static_capped` are copied with the static cap shared out among them."""
    static_lines = [(*account_lines[account], *statics[i].reasons)
                    for i, account in zip(static_capped, account_of[static_capped].tolist(), strict=True)]
    # a cap only cuts (fit is rounded before it is blended, so the lines may add up to a hair less)
    cuts = [share(*contributions(lines), static_cap)[0] for lines in static_lines]
    capped = dict(zip(static_capped, cut_many(static_lines, cuts), strict=True))
    reasons = []
    for i, (lines, account) in enumerate(zip(intent_lines, account_of.tolist(), strict=True)):
        head = heads.get(i)
        combined = [head, *lines] if head is not None else lines
        fit_lines = capped.get(i)
        if fit_lines is None:
            combined.extend(account_lines[account])
            combined.extend(statics[i].reasons)
        else:
            combined.extend(fit_lines)
        combined.extend(tails[i])
        reasons.append(tuple(combined))
    return reasons


def _account_line(account_score: AccountScore | None, account_intent: float, weight: float,
                  signals: Iterable[str] = ()) -> Reason:
    roles = ", ".join(r.replace("_", " ") for r in account_score.buying_roles) if account_score else ""
    engaged = account_score.engaged_people if account_score else 0
    return Reason(
        ReasonKind.ACCOUNT,
        "account_intent",
        account_intent,
        f"{signed(account_intent)} activity at their account: {engaged} engaged "
        f"{'person' if engaged == 1 else 'people'}" + (f" ({roles})" if roles else "")
        + "".join(f"; {says}" for says in signals),
        contribution=weight * account_intent,
    )


def _grades(pb: Playbook, fit: np.ndarray, intent: np.ndarray) -> list[str | None]:
    """Fit × intent grade (A1…D4): the first fit band and the first intent band reached."""
    grid = pb.grid
    if grid is None:
        return [None] * len(fit)

    def first_band(values: np.ndarray, bands: list) -> np.ndarray:
        chosen = np.full(len(values), len(bands) - 1, dtype=np.int64)
        undecided = np.ones(len(values), dtype=bool)
        for k, band in enumerate(bands):
            reached = undecided & (values >= band.min)
            chosen[reached] = k
            undecided &= ~reached
        return chosen

    labels = [f"{f.label}{i.label}" for f in grid.fit for i in grid.intent]
    codes = first_band(fit, grid.fit) * len(grid.intent) + first_band(intent, grid.intent)
    return [labels[k] for k in codes.tolist()]


def _unmatched(found: dict[ActivityKey, int], examples: int = 20) -> UnmatchedActivities:
    by_kind: Counter[str] = Counter()
    for key, count in found.items():
        by_kind[key[0].value] += count
    top = sorted(found.items(), key=lambda kv: (-kv[1], str(kv[0])))[:examples]
    lines = []
    for (kind, url, form, campaign, asset_id), count in top:
        named = ", ".join(
            f"{label} {value!r}"
            for label, value in (("url", url), ("form", form), ("campaign", campaign), ("asset", asset_id))
            if value
        )
        lines.append(f"{kind.value}: {named} ({count}×)")
    return UnmatchedActivities(sum(found.values()), dict(sorted(by_kind.items())), tuple(lines))


def score_person(
    playbook: Playbook,
    person: Person,
    activities: Iterable[Activity],
    now: datetime,
    *,
    account: Account | None = None,
    account_intent: float | None = None,
) -> ScoreCard:
    """One person's ScoreCard. Without `account_intent` the account's intent is this person's alone."""
    dataset = Dataset(
        accounts=[account] if account else [],
        people=[person],
        activities=[a for a in activities if a.person_id == person.id],
    )
    override = {account.id: account_intent} if account is not None and account_intent is not None else None
    return score_dataset(playbook, dataset, now, account_intent_override=override).cards[person.id]


__all__ = [
    "DAY",
    "AccountFit",
    "ScoringResult",
    "UnmatchedActivities",
    "account_fit",
    "disqualified_ceiling",
    "score_account",
    "score_dataset",
    "score_person",
]
