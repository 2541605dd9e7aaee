"""When a score stops holding: the first moment a person's card could change with no new data.

A card changes without new data only because time passes: decay wears intent down, an activity ages
past a window (an escalation's, a negative's, a frequency cap's period, the oldest age counted), a
dated activity comes due. The hourly sync rescores the people whose records changed and those whose
time has come, and nobody else; this module says when that time is.

Between two *rises* (moments something can lift a score: a future-dated activity arriving, a negative
ending, an activity crossing into another frequency-cap period or out of the counted age where a cap
cut something) everything that decides what leadloop writes only falls or stays: decayed points, the
caps taken of them (min and top-k sums of falling values fall), the account's roll-up of its people,
the tier reached, escalations and stages as activities age out. So a card's *key* (what the CRM
shows, whole points and tiers, and what the score history and routing compare) that is the same at
two moments between rises is the same at every moment between them. `due_times` scores the same
people at a few later moments (`PROBE_HOURS`) and takes the last one before the first rise at which
neither the person's key nor their account's has moved: until then, a rescore would write, save and
route exactly what the last one did. A person is as due as their account: its roll-up and buying
committee read all of its people.

Pure: no store, no clock; `now` and the activities are parameters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from leadloop.crm.activity_columns import ActivityColumns
from leadloop.crm.dataset import Dataset
from leadloop.playbook.compiled import CompiledPlaybook
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import Prepared, ScoringResult, prepare, score_prepared
from leadloop.scoring.intent import DAY, classify, read_activities
from leadloop.scoring.scorecard import AccountScore, ScoreCard

# Hours after `now` at which the cards are scored again; a person whose key holds at all of them (and
# whom no rise comes to) is due at the last. Wider steps cost fewer rescores now, more people rescored
# a little early later.
PROBE_HOURS = (1, 3, 9, 27, 81)


def _halves(value: float) -> tuple[int, int]:
    """A value as both roundings show it: Python's (to even) and the CRM fields' (halves up)."""
    return round(value), math.floor(value + 0.5)


def card_key(card: ScoreCard) -> tuple[Any, ...]:
    """What of a person's card the CRM shows, the score history keeps and routing compares."""
    return (card.model_version, card.tier, card.grade, card.stage, card.disqualified,
            card.escalation.rule if card.escalation else None, _halves(card.score), _halves(card.fit),
            _halves(card.intent), _halves(card.account_intent), card.account_id)


def account_key(score: AccountScore | None) -> tuple[Any, ...] | None:
    if score is None:
        return None
    return (score.tier, _halves(score.fit), _halves(score.intent), tuple(score.buying_roles),
            score.engaged_people)


def next_rises(cp: CompiledPlaybook, catalog: Any, person_index: Mapping[str, int], columns: ActivityColumns,
               now: datetime, classified: tuple[Any, np.ndarray] | None = None) -> np.ndarray:
    """Per person (positions of `person_index`), the first moment after `now` (POSIX seconds) at
    which something could raise their card with no new data; inf when nothing can. `classified`:
    `classify` of the same columns, when already done."""
    rises = np.full(len(person_index), np.inf)
    if not len(columns) or not len(person_index):
        return rises
    now_ts = now.timestamp()
    p, ts = read_activities(columns, person_index)
    classes, c = classified if classified is not None else classify(cp, catalog, columns)
    known = p >= 0

    def at(mask: np.ndarray, moments: np.ndarray) -> None:
        mask = mask & known & (moments > now_ts)
        np.minimum.at(rises, p[mask], moments[mask])

    at(ts > now_ts, ts)  # a dated activity comes due
    age = (now_ts - ts) / DAY
    past = ts <= now_ts
    for g, negative in enumerate(cp.activity_negatives):  # a negative ends
        if negative.within_days is not None:
            at(past & classes.negative[g][c], ts + negative.within_days * DAY)
    rule = classes.rule[c]
    max_count = np.asarray([*cp.rule_max_count, 0], dtype=np.int64)[rule]  # rule -1 reads the 0
    window = np.asarray([*cp.rule_window, math.inf])[rule]
    capped = past & known & (rule >= 0) & (max_count > 0) & (age <= cp.max_age_days)
    if capped.any():
        _frequency_rises(at, p, rule, age, ts, max_count, window, capped, len(cp.rule_max_count), now_ts)
    return rises


def _frequency_rises(at: Any, p: np.ndarray, rule: np.ndarray, age: np.ndarray, ts: np.ndarray,
                     max_count: np.ndarray, window: np.ndarray, capped: np.ndarray, n_rules: int,
                     now_ts: float) -> None:
    """Frequency caps keep the `max_count` most valuable activities of a rule in each period counted
    back from now, so an activity ageing into the next period moves between periods. That lifts a
    score only when it leaves a period holding more than the cap (a dropped activity then counts, or
    it counts again in the next); leaving a period within the cap, it only falls or stays. Within one
    window from now an activity crosses at most one boundary, so a period holds at most its own
    activities and those of the period before it then. Past that window every capped person is
    treated as rising (no probe reaches that far)."""
    sel = np.nonzero(capped)[0]
    span = window[sel]
    period = np.floor(age[sel] / span).astype(np.int64)
    group = p[sel] * (n_rules + 1) + rule[sel]
    width = int(period.max()) + 2
    cell = group * width + period + 1  # (group, period); period - 1 is cell - 1
    cells, counts = np.unique(cell, return_counts=True)

    def count(of: np.ndarray) -> np.ndarray:
        at_ = np.clip(np.searchsorted(cells, of), 0, len(cells) - 1)
        return np.where(cells[at_] == of, counts[at_], 0)

    crossing = ts[sel] + (period + 1.0) * span * DAY
    crowded = count(cell) + count(cell - 1) > max_count[sel]
    soon = crossing <= now_ts + span * DAY
    mask = np.zeros(len(capped), dtype=bool)
    mask[sel] = crowded & soon
    moments = np.full(len(capped), np.inf)
    moments[sel] = crossing
    at(mask, moments)
    horizon = np.full(len(capped), np.inf)
    horizon[sel] = now_ts + span * DAY
    at(capped, horizon)


def due_times(playbook: Playbook, dataset: Dataset, columns: ActivityColumns, now: datetime,
              result: ScoringResult, probe_hours: Iterable[float] = PROBE_HOURS, *,
              prepared: Prepared | None = None) -> dict[str, datetime]:
    """person id → when their card (`result`, scored at `now` from `dataset` and `columns`) is next
    due: the last probe moment before the first rise of anyone in their account at which neither
    their key nor their account's has moved; `now` itself when the first probe already differs.

    The probes share one `prepare` of the dataset (fits, machine-email filter, activity classes): only
    what depends on the moment is computed again, for the accounts still holding. `prepared` is that
    of `dataset` and `columns`, when the caller scored `result` from it."""
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    cards = result.cards
    if not cards:
        return {}
    if prepared is None:
        prepared = prepare(playbook, dataset, columns)
    ids = sorted(cards)
    index = {person_id: i for i, person_id in enumerate(ids)}
    assert prepared.columns is not None
    rises = next_rises(prepared.cp, prepared.catalog, index, prepared.columns, now, prepared.classified())
    unit_of = {pid: (card.account_id if card.account_id in result.accounts else f"person:{pid}")
               for pid, card in cards.items()}
    members: dict[str, list[str]] = {}
    for pid in ids:
        members.setdefault(unit_of[pid], []).append(pid)
    first_rise = {unit: min(rises[index[pid]] for pid in people) for unit, people in members.items()}
    keys = {pid: card_key(card) for pid, card in cards.items()}
    accounts = {aid: account_key(score) for aid, score in result.accounts.items()}
    due = dict.fromkeys(ids, now)
    holding = set(ids)  # people whose key and account's key have held at every probe so far
    for hours in sorted(set(probe_hours)):
        moment = now + timedelta(hours=hours)
        holding = {pid for pid in holding if first_rise[unit_of[pid]] > moment.timestamp()}
        if not holding:
            break
        # the accounts (and people without one) still holding, with all their people: each scores as
        # in the whole (a partition of whole accounts)
        units = {unit_of[pid] for pid in holding}
        part = prepared.part({p.id for p in prepared.people if unit_of.get(p.id) in units}, units)
        later = score_prepared(part, moment, explain=False)  # keys only: no reason is read
        moved = {unit for unit in accounts if account_key(later.accounts.get(unit)) != accounts[unit]}
        for pid in list(holding):
            if unit_of[pid] in moved or card_key(later.cards[pid]) != keys[pid]:
                holding.discard(pid)
            else:
                due[pid] = moment
    return due
