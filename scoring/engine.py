"""The scoring engine: pure functions from canonical records and a playbook to ScoreCards.

`score_dataset(playbook, dataset, now)` scores everyone in one pass: account fit per account (best
applicable profile), contact fit per person (persona + person rules), contact intent from activities
(`scoring.intent`), account intent rolled up from the people, then the blend, tiers, escalations and
disqualifiers. `now` is always a parameter; records are sorted first, so the output never depends on
their order. Scores are rounded to one decimal so float noise never changes a tier.
"""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from math import floor
from typing import Protocol

import numpy as np

from crm.dataset import Dataset
from crm.records import Account, Activity, Person
from scoring.assets import ActivityKey
from scoring.compiled import CompiledPlaybook, CompiledProfile
from scoring.conditions import Subject
from scoring.intent import DAY, Trigger, compute_intent
from scoring.intent_lines import IntentWriter
from scoring.personas import TitleMatch
from scoring.playbook import Playbook
from scoring.scorecard import AccountScore, Escalation, Reason, ReasonKind, ScoreCard
from scoring.wording import VERBS, ago, fill, number, signed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _r(value: float) -> float:
    """Round for output: one decimal, halves up, never -0.0 (cheaper than round(x, 1))."""
    return floor(value * 10.0 + 0.5) / 10.0


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


@dataclass(frozen=True, slots=True)
class AccountFit:
    profile: CompiledProfile | None
    fit: float
    reasons: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class _Static:
    """Everything about a person that does not depend on activities."""

    role: str
    seniority: str
    title_matched: bool
    contact_fit: float
    reasons: tuple[Reason, ...]
    intent_negatives: tuple[tuple[float, Reason], ...]
    disqualifier: Reason | None


class Member(Protocol):
    """What the account roll-up needs from each person (a ScoreCard qualifies)."""

    @property
    def person_id(self) -> str: ...
    @property
    def intent(self) -> float: ...
    @property
    def role(self) -> str | None: ...
    @property
    def disqualified(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class _Member:
    person_id: str
    intent: float
    role: str | None
    disqualified: str | None
    name: str


def _label(field_name: str) -> str:
    return field_name.partition(".")[2].removeprefix("attributes.").replace("_", " ")


def _show(value: object) -> str:
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _fit_lines(
    rules, subject: Subject, kind: ReasonKind, cache: dict | None = None
) -> tuple[float, list[Reason]]:
    """Points and reason lines of fit rules; lines are shared through `cache` by (rule, value)."""
    total, reasons = 0.0, []
    for compiled in rules:
        hit = compiled.evaluate(subject)
        if hit is None:
            continue
        total += hit.points
        if not hit.points:
            continue
        rule = compiled.rule
        key = (rule.id, hit.value, hit.points)
        reason = cache.get(key) if cache is not None else None
        if reason is None:
            band = f" ({hit.band.label})" if hit.band is not None and hit.band.label else ""
            text = f"{signed(hit.points)} {_label(rule.field)}: {_show(hit.value)}{band}"
            reason = Reason(kind, rule.id, _r(hit.points), text, why=rule.why)
            if cache is not None:
                cache[key] = reason
        reasons.append(reason)
    return total, reasons


def account_fit(playbook: Playbook, account: Account | None) -> AccountFit:
    """The best account fit over the profiles that apply (ties: the profile listed first)."""
    if account is None:
        return AccountFit(None, 0.0)
    subject = Subject(None, account)
    best: AccountFit | None = None
    for profile in playbook.compiled.profiles:
        if not profile.applies(subject):
            continue
        total, reasons = _fit_lines(profile.rules, subject, ReasonKind.FIT)
        cap = profile.profile.cap
        if total > cap:
            reasons.append(
                Reason(
                    ReasonKind.CAP,
                    profile.profile.id,
                    _r(cap - total),
                    f"{signed(cap - total)} capped at {number(cap)}: account fit points",
                )
            )
        fit = _r(max(0.0, min(total, cap)))
        if best is None or fit > best.fit:
            header = Reason(
                ReasonKind.FIT,
                profile.profile.id,
                0.0,
                f"best profile: {profile.profile.name} (account fit {number(fit)})",
                why=profile.profile.why,
            )
            best = AccountFit(profile, fit, (header, *reasons))
    return best or AccountFit(None, 0.0)


class _PersonFit:
    """Contact fit, field negatives and disqualifiers per person; shares identical reason lines."""

    def __init__(self, cp: CompiledPlaybook) -> None:
        self.cp = cp
        self.lines: dict = {}
        self.persona: dict[str | None, tuple[TitleMatch, tuple[Reason, ...], float]] = {}

    def _persona(self, title: str | None) -> tuple[TitleMatch, tuple[Reason, ...], float]:
        found = self.persona.get(title)
        if found is not None:
            return found
        titles = self.cp.titles
        match = titles(title)
        reasons = []
        role_weight = titles.role_weight.get(match.role, 0.0)
        level_weight = titles.level_weight.get(match.seniority, 0.0)
        shown = f" ({title})" if title else ""
        if role_weight:
            reasons.append(
                Reason(
                    ReasonKind.PERSONA,
                    f"role:{match.role}",
                    _r(role_weight),
                    f"{signed(role_weight)} role: {match.role.replace('_', ' ')}{shown}",
                    why=titles.role_why.get(match.role),
                )
            )
        if level_weight:
            reasons.append(
                Reason(
                    ReasonKind.PERSONA,
                    f"seniority:{match.seniority}",
                    _r(level_weight),
                    f"{signed(level_weight)} seniority: {match.seniority.replace('_', ' ')}",
                )
            )
        found = self.persona[title] = (match, tuple(reasons), role_weight + level_weight)
        return found

    def __call__(self, person: Person, account: Account | None) -> _Static:
        cp = self.cp
        match, persona_reasons, persona_points = self._persona(person.title)
        subject = Subject(person, account, match.role, match.seniority)
        total, reasons = _fit_lines(cp.contact_rules, subject, ReasonKind.FIT, self.lines)
        reasons[:0] = persona_reasons
        total += persona_points
        cap = cp.playbook.contact_fit.cap
        if total > cap:
            reasons.append(
                Reason(
                    ReasonKind.CAP,
                    "contact_fit",
                    _r(cap - total),
                    f"{signed(cap - total)} capped at {number(cap)}: contact fit points",
                )
            )
            total = cap
        intent_negatives = []
        for negative, test in cp.field_negatives:
            if test(subject):
                reason = self.lines.get(negative.id)
                if reason is None:
                    text = f"{signed(negative.points)} {negative.says or negative.id.replace('_', ' ')}"
                    reason = self.lines[negative.id] = Reason(
                        ReasonKind.NEGATIVE, negative.id, _r(negative.points), text, why=negative.why
                    )
                if negative.target == "fit":
                    total += negative.points
                    reasons.append(reason)
                else:
                    intent_negatives.append((negative.points, reason))
        disqualifier = None
        for rule, test in cp.disqualifiers:
            if test(subject):
                disqualifier = self.lines.get(("disqualifier", rule.id))
                if disqualifier is None:
                    disqualifier = self.lines[("disqualifier", rule.id)] = Reason(
                        ReasonKind.DISQUALIFIER,
                        rule.id,
                        0.0,
                        f"disqualified: {rule.says or rule.id.replace('_', ' ')}",
                        why=rule.why,
                    )
                break
        return _Static(
            match.role,
            match.seniority,
            match.matched,
            _r(max(0.0, total)),
            tuple(reasons),
            tuple(intent_negatives),
            disqualifier,
        )


def _rollup(
    cp: CompiledPlaybook,
    account_id: str,
    fit: AccountFit,
    members: Iterable[Member],
    names: dict[str, str] | None = None,
) -> AccountScore:
    """Account intent with diminishing returns plus buying-committee coverage; account tier."""
    pb = cp.playbook
    section = pb.account
    engaged = sorted(
        ((m.intent, m.person_id, m.role) for m in members if not m.disqualified and m.intent > 0),
        key=lambda t: (-t[0], t[1]),
    )
    reasons: list[Reason] = []
    rolled = 0.0
    factor = 1.0
    for position, (intent, person_id, role) in enumerate(engaged[: section.intent.max_people]):
        share = intent * factor
        rolled += share
        who = (names or {}).get(person_id, person_id)
        weight = "" if position == 0 else f" × {factor:.3g}"
        if position < 3:
            reasons.append(
                Reason(
                    ReasonKind.ACCOUNT,
                    person_id,
                    _r(share),
                    f"{signed(share)} {who} ({(role or 'other').replace('_', ' ')}, "
                    f"intent {number(intent)}{weight})",
                    why=section.intent.why,
                )
            )
        factor *= section.intent.decay_factor
    if len(engaged) > 3:
        rest = rolled - sum(r.points for r in reasons)
        reasons.append(
            Reason(
                ReasonKind.ACCOUNT,
                "more_people",
                _r(rest),
                f"{signed(rest)} {len(engaged) - 3} more engaged people (diminishing)",
            )
        )
    roles: tuple[str, ...] = ()
    committee = section.committee
    if committee is not None:
        wanted = set(committee.roles)
        roles = tuple(
            sorted({role for intent, _, role in engaged if role in wanted and intent >= committee.min_intent})
        )
        if len(roles) > 1:
            bonus = min(committee.cap, committee.points_per_role * (len(roles) - 1))
            rolled += bonus
            capped = " (capped)" if bonus == committee.cap else ""
            reasons.append(
                Reason(
                    ReasonKind.ACCOUNT,
                    "committee",
                    _r(bonus),
                    f"{signed(bonus)} buying committee: {', '.join(r.replace('_', ' ') for r in roles)}"
                    f" engaged{capped}",
                    why=committee.why,
                )
            )
    if rolled > section.intent.cap:
        reasons.append(
            Reason(
                ReasonKind.CAP,
                "account_intent",
                _r(section.intent.cap - rolled),
                f"{signed(section.intent.cap - rolled)} capped at {number(section.intent.cap)}: "
                "account intent",
            )
        )
        rolled = section.intent.cap
    intent = _r(rolled)
    tier = next(
        t.name
        for t in section.tiers
        if (t.min_fit is None or fit.fit >= t.min_fit) and (t.min_intent is None or intent >= t.min_intent)
    )
    return AccountScore(
        account_id,
        pb.model_version,
        fit.fit,
        intent,
        tier,
        roles,
        len(engaged),
        (*fit.reasons, *reasons),
        fit.profile.profile.id if fit.profile else None,
    )


def score_account(playbook: Playbook, account: Account, members: Iterable[Member]) -> AccountScore:
    """An account's fit and intent from its people's scorecards (or anything with intent and role)."""
    return _rollup(playbook.compiled, account.id, account_fit(playbook, account), members)


def _tier(pb: Playbook, score: float, fit: float, intent: float) -> str:
    for tier in pb.tiers:
        if (
            (tier.min_score is None or score >= tier.min_score)
            and (tier.min_fit is None or fit >= tier.min_fit)
            and (tier.min_intent is None or intent >= tier.min_intent)
        ):
            return tier.name
    return pb.tiers[-1].name


class _Grader:
    """Fit × intent grade (A1…D4), remembered per (fit, intent) pair."""

    def __init__(self, pb: Playbook) -> None:
        self.grid = pb.grid
        self.seen: dict[tuple[float, float], str | None] = {}

    def __call__(self, fit: float, intent: float) -> str | None:
        found = self.seen.get((fit, intent), "")
        if found != "":
            return found
        grid = self.grid
        if grid is None:
            label = None
        else:
            fit_label = next((b.label for b in grid.fit if fit >= b.min), grid.fit[-1].label)
            intent_label = next((b.label for b in grid.intent if intent >= b.min), grid.intent[-1].label)
            label = f"{fit_label}{intent_label}"
        self.seen[(fit, intent)] = label
        return label


def _escalation(
    cp: CompiledPlaybook, triggers: list[Trigger], fit: float, now_ts: float
) -> tuple[Escalation, str, Reason] | None:
    by_rule = {t.rule: t for t in triggers}
    for index, rule in enumerate(cp.playbook.escalations):
        trigger = by_rule.get(index)
        if trigger is None or fit < rule.min_fit:
            continue
        tier = rule.tier or cp.playbook.top_tier
        asset = trigger.asset.name if trigger.asset else "their request"
        did = fill(VERBS.get(trigger.kind, "asked for {asset}"), asset=asset)
        text = (
            f"escalated to {tier} (SLA {rule.sla}): {did} {ago(now_ts - trigger.ts)} "
            f"with fit {number(fit)} ≥ {number(rule.min_fit)}"
        )
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
) -> ScoringResult:
    """Score every person and account of a dataset as of `now`."""
    # A run creates millions of small acyclic objects (reasons, lists of array values); the cyclic
    # garbage collector would rescan every loaded record many times over, with nothing to collect.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _score_dataset(playbook, dataset, now, account_intent_override)
    finally:
        if enabled:
            gc.enable()


def _score_dataset(
    playbook: Playbook,
    dataset: Dataset,
    now: datetime,
    account_intent_override: dict[str, float] | None,
) -> ScoringResult:
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    now = now.astimezone(UTC)
    now_ts = now.timestamp()
    cp = playbook.compiled
    pb = playbook
    people: list[Person] = _sorted_unique(dataset.people, "updated_at")
    accounts: dict[str, Account] = {a.id: a for a in _sorted_unique(dataset.accounts, "updated_at")}
    fits = {account_id: account_fit(pb, account) for account_id, account in accounts.items()}
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

    person_index = {p.id: i for i, p in enumerate(people)}
    catalog = cp.assets.with_dataset_assets(dataset.assets)
    raw, report = compute_intent(cp, catalog, person_index, profiles, dataset.activities, now)

    intent_totals, intent_lines = IntentWriter(cp, raw, now_ts)(
        len(people), [static.intent_negatives for static in statics]
    )
    raw.release_hits()
    members: dict[str, list[_Member]] = {}
    for i, person in enumerate(people):
        if person.account_id in accounts:
            members.setdefault(person.account_id, []).append(
                _Member(
                    person.id,
                    intent_totals[i],
                    statics[i].role,
                    statics[i].disqualifier.rule if statics[i].disqualifier else None,
                    person.name,
                )
            )
    names = {p.id: p.name for p in people}
    account_scores = {
        account_id: _rollup(cp, account_id, fits[account_id], members.get(account_id, ()), names)
        for account_id in accounts
    }

    blend = pb.blend
    fit_weight = blend.contact_fit + blend.account_fit
    cards: dict[str, ScoreCard] = {}
    account_lines: dict[tuple[str | None, float], Reason] = {}
    grade = _Grader(pb)
    model_version, stages, lowest = pb.model_version, pb.stages, pb.lowest_tier
    for i, person in enumerate(people):
        static = statics[i]
        intent, intent_reasons = intent_totals[i], intent_lines[i]
        has_account = person.account_id in accounts
        fit_result = fits[person.account_id] if has_account else none_fit
        account_score = account_scores.get(person.account_id) if has_account else None
        account_intent = account_score.intent if account_score else 0.0
        if account_intent_override and person.account_id in account_intent_override:
            account_intent = _r(account_intent_override[person.account_id])
        fit = _r(
            (blend.contact_fit * static.contact_fit + blend.account_fit * fit_result.fit) / fit_weight
            if fit_weight
            else 0.0
        )
        static_points = blend.contact_fit * static.contact_fit + blend.account_fit * fit_result.fit
        reasons: list[Reason] = []
        tail: list[Reason] = []
        if static_points > blend.static_cap:
            cut = blend.static_cap - static_points
            tail.append(
                Reason(
                    ReasonKind.CAP,
                    "static_cap",
                    _r(cut),
                    f"{signed(cut)} capped at {number(blend.static_cap)}: lead-score points from fit "
                    "(static fields)",
                    why=blend.why,
                )
            )
            static_points = blend.static_cap
        if account_intent:
            shared = account_lines.get((person.account_id, account_intent))
            if shared is None:
                roles = (
                    ", ".join(r.replace("_", " ") for r in account_score.buying_roles)
                    if account_score
                    else ""
                )
                engaged = account_score.engaged_people if account_score else 0
                shared = account_lines[(person.account_id, account_intent)] = Reason(
                    ReasonKind.ACCOUNT,
                    "account_intent",
                    account_intent,
                    f"{signed(account_intent)} account intent: {engaged} engaged "
                    f"{'person' if engaged == 1 else 'people'}" + (f" ({roles})" if roles else ""),
                )
            tail.append(shared)
        score = _r(static_points + blend.contact_intent * intent + blend.account_intent * account_intent)
        tier = _tier(pb, score, fit, intent)
        escalation = None
        triggers = raw.escalations.get(i)
        if static.disqualifier is not None:
            reasons.append(static.disqualifier)
            tier = lowest
        elif triggers:
            fired = _escalation(cp, triggers, fit, now_ts)
            if fired is not None:
                escalation, forced, reason = fired
                reasons.append(reason)
                if pb.tier_rank(forced) < pb.tier_rank(tier):
                    tier = forced
        reasons.extend(intent_reasons)
        reasons.extend(fit_result.reasons)
        reasons.extend(static.reasons)
        reasons.extend(tail)
        stage = raw.stage[i]
        cards[person.id] = ScoreCard(
            person.id,
            person.account_id,
            model_version,
            now,
            fit_result.profile.profile.id if fit_result.profile else None,
            fit,
            intent,
            fit_result.fit,
            account_intent,
            score,
            tier,
            grade(fit, intent),
            stages[stage] if stage >= 0 else None,
            static.role,
            static.seniority,
            escalation,
            static.disqualifier.rule if static.disqualifier else None,
            reasons=tuple(reasons),
            contact_fit=static.contact_fit,
        )

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
    )


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
    "score_account",
    "score_dataset",
    "score_person",
]
