"""Contact intent from activities, in bulk: classify, decay, frequency-cap and aggregate with numpy.

Activities arrive as columns (`crm.activity_columns.ActivityColumns`: a store hands them over that
way, and records are turned into columns once); each distinct person is looked up and each distinct
(kind, url, form, campaign, asset id) classified once. Everything after that runs on arrays: age,
decay, relevance, frequency caps (the most valuable `max_count` per window counted back from `now`),
and aggregation per (person, rule) with the most recent asset named. The small per-person remainder
(rule caps, group caps, sentences) happens in `scoring.intent_lines`.

Results never depend on record order: classes are numbered in sorted key order and every ranking
and "most recent" pick breaks ties by time, then class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import repeat

import numpy as np

from leadloop.crm.activity_columns import ActivityColumns
from leadloop.crm.records import Activity, ActivityKind
from leadloop.playbook.assets import ActivityKey, AssetCatalog, AssetInfo, has_something_to_classify
from leadloop.playbook.compiled import CompiledPlaybook

DAY = 86400.0
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIRST_SECOND = -62135596800.0  # 0001-01-01 and 10000-01-01 in POSIX seconds: the calendar's ends
_LAST_SECOND = 253402300800.0


@dataclass(frozen=True, slots=True)
class Trigger:
    """The most recent activity that fired an escalation or an activity-based negative."""

    rule: int
    ts: float
    asset: AssetInfo | None
    kind: ActivityKind


def _empty(dtype: type = np.int64) -> np.ndarray:
    return np.zeros(0, dtype=dtype)


@dataclass(slots=True)
class IntentInputs:
    """The raw material of every person's intent, as parallel arrays (no object per activity).

    Rule hits (one per person and intent rule with counted activities) are sorted by person, then
    rule. A hit carries its person, the count of counted activities, points before decay (`base`),
    relevance bonus before decay, value after decay, how many were relevant, the time, class and
    `occurred_at` of the most recent one, and how many distinct assets it spans.
    """

    classes: _Classes | None = None
    person: np.ndarray = field(default_factory=_empty)
    rule: np.ndarray = field(default_factory=_empty)
    count: np.ndarray = field(default_factory=_empty)
    base: np.ndarray = field(default_factory=lambda: _empty(np.float64))
    bonus: np.ndarray = field(default_factory=lambda: _empty(np.float64))
    value: np.ndarray = field(default_factory=lambda: _empty(np.float64))
    relevant: np.ndarray = field(default_factory=_empty)
    last_ts: np.ndarray = field(default_factory=lambda: _empty(np.float64))
    last_class: np.ndarray = field(default_factory=_empty)
    last_when: list[datetime] = field(default_factory=list)
    assets: np.ndarray = field(default_factory=_empty)
    stage: list[int] = field(default_factory=list)
    depth: dict[int, list[tuple[int, float]]] = field(default_factory=dict)
    escalations: dict[int, list[Trigger]] = field(default_factory=dict)
    negatives: dict[int, list[Trigger]] = field(default_factory=dict)

    def release_hits(self) -> None:
        """Drop the per-hit arrays once intents are computed (stage and triggers stay)."""
        self.person, self.rule, self.count, self.relevant = _empty(), _empty(), _empty(), _empty()
        self.base, self.bonus, self.value = _empty(np.float64), _empty(np.float64), _empty(np.float64)
        self.last_ts, self.last_class, self.assets = _empty(np.float64), _empty(), _empty()
        self.last_when = []


@dataclass(slots=True)
class ActivityReport:
    """Data-quality side results: activities no asset rule understands, activities of unknown people."""

    unmatched: dict[ActivityKey, int] = field(default_factory=dict)
    orphans: int = 0
    future: int = 0
    total: int = 0


class _Classes:
    """Per distinct activity key: asset, intent rule, stage, segment, and rule memberships.

    All of these depend on the key without its URL query (tracking parameters make many keys of one
    page), so each such plain key is classified once and its row repeated for its keys."""

    def __init__(self, cp: CompiledPlaybook, catalog: AssetCatalog, keys: list[ActivityKey]) -> None:
        pb = cp.playbook
        self.keys = keys
        self.kinds = [k[0] for k in keys]
        row_of: dict[ActivityKey, int] = {}
        rows = np.fromiter(
            (row_of.setdefault(_without_query(key), len(row_of)) for key in keys), np.int64, len(keys)
        )
        plain = list(row_of)
        n = len(plain)
        assets = [catalog.classify_key(key) for key in plain]
        seg_index = {s: i for i, s in enumerate(cp.segments)}
        rule = np.full(n, -1, dtype=np.int64)
        stage = np.full(n, -1, dtype=np.int64)
        segment = np.full(n, len(cp.segments), dtype=np.int64)  # the last column means "none"
        asset_index = np.zeros(n, dtype=np.int64)
        distinct: dict[str | None, int] = {}
        for i, (key, asset) in enumerate(zip(plain, assets, strict=True)):
            rule[i] = found = cp.rule_for(
                key[0],
                asset.type if asset else None,
                asset.stage if asset else None,
                asset.product_family if asset else None,
            )
            if found >= 0:
                reached = asset.stage if asset else pb.intent.rules[found].stage
                stage[i] = cp.stage_index.get(reached, -1) if reached else -1
            if asset is not None and asset.segment:
                segment[i] = seg_index.get(asset.segment.lower(), len(cp.segments))
            asset_index[i] = distinct.setdefault(asset.id if asset else None, len(distinct))
        self.assets: list[AssetInfo | None] = list(map(assets.__getitem__, rows.tolist()))
        self.rule, self.stage = rule[rows], stage[rows]
        self.segment, self.asset_index = segment[rows], asset_index[rows]

        def member(kinds: Sequence[ActivityKind], types: Sequence[str] | None) -> np.ndarray:
            kinds = frozenset(kinds)
            return np.array(
                [
                    k[0] in kinds and (types is None or (a is not None and a.type in types))
                    for k, a in zip(plain, assets, strict=True)
                ],
                dtype=bool,
            )[rows]

        self.depth = [member(d.kinds, d.asset_types) for d in pb.intent.depth]
        self.escalation = [member(e.kinds, e.asset_types) for e in pb.escalations]
        self.negative = [member(n.kinds, None) for n in cp.activity_negatives]


def _without_query(key: ActivityKey) -> ActivityKey:
    url = key[1]
    if url and ("?" in url or "#" in url):
        return (key[0], url.split("#", 1)[0].split("?", 1)[0], key[2], key[3], key[4])
    return key


def _sort_keys(keys: set[ActivityKey]) -> list[ActivityKey]:
    return sorted(keys, key=lambda k: (k[0].value, k[1] or "", k[2] or "", k[3] or "", k[4] or ""))


def _latest_per_person(p: np.ndarray, ts: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each person present, the position of their most recent activity (ties: highest class)."""
    order = np.lexsort((c, ts, p))
    last = np.r_[p[order][1:] != p[order][:-1], True]
    return p[order][last], order[last]


def compute_intent(
    cp: CompiledPlaybook,
    catalog: AssetCatalog,
    person_index: dict[str, int],
    person_profile: np.ndarray,
    activities: ActivityColumns | Sequence[Activity],
    now: datetime,
    *,
    classified: tuple[_Classes, np.ndarray] | None = None,
) -> tuple[IntentInputs, ActivityReport]:
    """Classify, decay, frequency-cap and aggregate all activities (columns, or records turned into
    columns); see IntentInputs. `classified` is `classify` of the same columns, when already done."""
    columns = (activities if isinstance(activities, ActivityColumns)
               else ActivityColumns.from_records(activities))
    n_people = len(person_index)
    n = len(columns)
    report = ActivityReport(total=n)
    inputs = IntentInputs(stage=[-1] * n_people)
    if not n:
        return inputs, report
    p_all, ts_all = read_activities(columns, person_index)
    classes, c_all = classified if classified is not None else classify(cp, catalog, columns)
    inputs.classes = classes
    distinct = classes.keys

    for i, count_ in enumerate(np.bincount(c_all, minlength=len(distinct)).tolist()):
        if count_ and classes.assets[i] is None and has_something_to_classify(distinct[i]):
            report.unmatched[distinct[i]] = count_

    now_ts = now.timestamp()
    keep = p_all >= 0
    report.orphans = int(n - keep.sum())
    future = ts_all > now_ts
    report.future = int((future & keep).sum())
    keep &= ~future
    idx = np.nonzero(keep)[0]
    p, c, ts = p_all[idx], c_all[idx], ts_all[idx]
    del p_all, c_all, ts_all
    age = (now_ts - ts) / DAY
    n_seg = len(cp.segments)
    relevant_matrix = np.zeros((len(cp.profiles) + 1, n_seg + 1), dtype=bool)
    for profile in cp.profiles:
        for s, name in enumerate(cp.segments):
            relevant_matrix[profile.index, s] = name in profile.segments
    relevant = relevant_matrix[person_profile[p], classes.segment[c]]

    _depth_hits(cp, inputs, p, c, age, relevant, columns.duration[idx])
    for e, escalation in enumerate(cp.playbook.escalations):
        mask = classes.escalation[e][c] & (age <= escalation.within_days)
        for trigger_p, trigger in _triggers(e, mask, p, c, ts, classes):
            inputs.escalations.setdefault(trigger_p, []).append(trigger)
    for g, negative in enumerate(cp.activity_negatives):
        mask = classes.negative[g][c]
        if negative.within_days is not None:
            mask &= age <= negative.within_days
        for trigger_p, trigger in _triggers(g, mask, p, c, ts, classes):
            inputs.negatives.setdefault(trigger_p, []).append(trigger)
    # Last, and handing over the only references, so each array is freed as soon as it is replaced.
    arrays = [p, c, ts, age, relevant]
    del p, c, ts, age, relevant, idx
    _intent_hits(cp, inputs, n_people, arrays)
    return inputs, report


def classify(cp: CompiledPlaybook, catalog: AssetCatalog, columns: ActivityColumns
             ) -> tuple[_Classes, np.ndarray]:
    """The classes of the activity keys the columns use, and each activity's class. Classes are
    numbered in sorted key order, so nothing depends on record order; keys no activity here has (a
    subset's columns keep their whole list) are left out."""
    used, key_at = np.unique(columns.key, return_inverse=True)
    used_keys = [columns.keys[k] for k in used.tolist()]
    distinct = _sort_keys(set(used_keys))
    class_of = {key: i for i, key in enumerate(distinct)}
    remap = np.fromiter(map(class_of.__getitem__, used_keys), dtype=np.int64, count=len(used_keys))
    return _Classes(cp, catalog, distinct), remap[key_at.reshape(-1)]


def read_activities(columns: ActivityColumns, person_index: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Each activity's person as a position in `person_index` (-1 when unknown: one lookup per
    distinct person), and its time in POSIX seconds (equal to `occurred_at.timestamp()`)."""
    position = np.fromiter((person_index.get(p, -1) for p in columns.persons), dtype=np.int64,
                           count=len(columns.persons))
    person = position[columns.person] if len(position) else np.full(len(columns), -1, dtype=np.int64)
    return person, columns.seconds()


def utc_datetimes(seconds: np.ndarray) -> list[datetime]:
    """`datetime.fromtimestamp(s, UTC)` for every value: the times rounded half to even to whole
    microseconds as CPython rounds them, then one datetime per distinct microsecond."""
    seconds = np.asarray(seconds, dtype=np.float64)
    if not len(seconds):
        return []
    if not (np.isfinite(seconds).all() and seconds.min() >= _FIRST_SECOND and seconds.max() < _LAST_SECOND):
        # outside the calendar somewhere: the method itself, for its own error
        return list(map(datetime.fromtimestamp, seconds.tolist(), repeat(UTC)))
    micros = _rounded_micros(seconds)
    distinct, inverse = np.unique(micros, return_inverse=True)
    made = [_EPOCH + timedelta(microseconds=m) for m in distinct.tolist()]
    return list(map(made.__getitem__, inverse.reshape(-1).tolist()))


def _rounded_micros(seconds: np.ndarray) -> np.ndarray:
    """Whole seconds and the fraction's microseconds rounded half to even, as
    `datetime.fromtimestamp` splits a float (`_PyTime_DoubleToDenominator`)."""
    fraction, whole = np.modf(seconds)
    us = np.rint(fraction * 1e6)  # rint: half to even
    whole = whole + np.where(us >= 1e6, 1.0, 0.0) - np.where(us < 0, 1.0, 0.0)
    us = np.where(us >= 1e6, us - 1e6, np.where(us < 0, us + 1e6, us))
    return whole.astype(np.int64) * 1_000_000 + us.astype(np.int64)


def _triggers(
    rule: int, mask: np.ndarray, p: np.ndarray, c: np.ndarray, ts: np.ndarray, classes: _Classes
) -> list[tuple[int, Trigger]]:
    if not mask.any():
        return []
    sub = np.nonzero(mask)[0]
    people, positions = _latest_per_person(p[sub], ts[sub], c[sub])
    found = []
    for pi, pos in zip(people.tolist(), sub[positions].tolist(), strict=True):
        cls = int(c[pos])
        found.append((pi, Trigger(rule, float(ts[pos]), classes.assets[cls], classes.kinds[cls])))
    return found


def _intent_hits(
    cp: CompiledPlaybook,
    inputs: IntentInputs,
    n_people: int,
    arrays: list[np.ndarray],
) -> None:
    """Rule hits per (person, rule); `arrays` (p, c, ts, age, relevant) is emptied to save memory.
    Each step hands its arrays over in a list it empties, so that only one extra copy of an array
    exists at any moment."""
    classes = inputs.classes
    assert classes is not None
    counted = _counted_activities(cp, classes, arrays)
    if counted is None:
        return
    p, c, ts, age, rule, relevant = counted
    del counted
    inputs.stage = _furthest_stages(classes, n_people, p, c)
    base, bonus, value = _points_after_decay(cp, rule, relevant, age)
    n_rules = len(cp.rule_points)
    columns = [p * n_rules + rule, c, ts, age, rule, base, bonus, value, relevant]
    del p, c, ts, age, rule, base, bonus, value, relevant  # the person is key // n_rules
    _aggregate_hits(inputs, classes, n_rules, _grouped_within_caps(cp, columns, len(classes.keys)))


def _counted_activities(
    cp: CompiledPlaybook, classes: _Classes, arrays: list[np.ndarray]
) -> tuple[np.ndarray, ...] | None:
    """(p, c, ts, age, rule, relevant) of the activities an intent rule counts, not older than the
    oldest any rule counts; None when there are none. `arrays` (p, c, ts, age, relevant) is emptied."""
    p, c, ts, age, relevant = arrays
    arrays.clear()
    rule = classes.rule[c]
    mask = (rule >= 0) & (age <= cp.max_age_days)
    sel = np.nonzero(mask)[0]
    if not len(sel):
        return None
    del mask
    # one array at a time, so that only one extra copy exists at any moment
    p = p[sel]
    c = c[sel]
    ts = ts[sel]
    age = age[sel]
    rule = rule[sel]
    relevant = relevant[sel]
    return p, c, ts, age, rule, relevant


def _furthest_stages(classes: _Classes, n_people: int, p: np.ndarray, c: np.ndarray) -> list[int]:
    """Per person, the furthest buying stage their counted activities reached (-1: none)."""
    stage = classes.stage[c]
    staged = stage >= 0
    best = np.full(n_people, -1, dtype=np.int64)
    np.maximum.at(best, p[staged], stage[staged])
    return best.tolist()


def _points_after_decay(
    cp: CompiledPlaybook, rule: np.ndarray, relevant: np.ndarray, age: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per activity: its rule's points (base), the relevance bonus, and both after decay (value)."""
    base = np.asarray(cp.rule_points)[rule]
    bonus = base * cp.relevance_bonus * relevant
    half_life = np.asarray(cp.rule_half_life)[rule]
    value = (base + bonus) * np.exp2(-age / half_life)
    return base, bonus, value


def _grouped_within_caps(cp: CompiledPlaybook, columns: list[np.ndarray], n_classes: int) -> list[np.ndarray]:
    """`columns` (key, c, ts, age, rule, base, bonus, value, relevant; emptied) grouped by key (person
    and rule), oldest first within each group, without what the frequency caps drop: returns (key, c,
    ts, base, bonus, value, relevant) in a list for `_aggregate_hits` to empty."""
    key, c, ts, age, rule, base, bonus, value, relevant = columns
    columns.clear()
    order = _group_order(key, ts, c, n_classes)
    # one array at a time, so that only one extra copy exists at any moment
    key = key[order]
    c = c[order]
    ts = ts[order]
    age = age[order]
    rule = rule[order]
    base = base[order]
    bonus = bonus[order]
    value = value[order]
    relevant = relevant[order]
    del order
    keep = _frequency_keep(cp, rule, key, age, ts, c, value, relevant, n_classes)
    del age, rule
    if keep is not None:
        key = key[keep]
        c = c[keep]
        ts = ts[keep]
        base = base[keep]
        bonus = bonus[keep]
        value = value[keep]
        relevant = relevant[keep]
        del keep
    return [key, c, ts, base, bonus, value, relevant]


def _aggregate_hits(inputs: IntentInputs, classes: _Classes, n_rules: int, columns: list[np.ndarray]) -> None:
    """One hit per run of equal keys in `columns` (key, c, ts, base, bonus, value, relevant; grouped
    by key, oldest first; emptied): its person, rule, count, sums, most recent activity and how
    many distinct assets it spans."""
    key, c, ts, base, bonus, value, relevant = columns
    columns.clear()
    starts = np.nonzero(np.r_[True, key[1:] != key[:-1]])[0]
    ends = np.r_[starts[1:], len(key)] - 1
    group_key = key[starts]
    inputs.person = group_key // n_rules
    inputs.rule = group_key % n_rules
    inputs.count = ends - starts + 1
    inputs.base = np.add.reduceat(base, starts)
    inputs.bonus = np.add.reduceat(bonus, starts)
    inputs.value = np.add.reduceat(value, starts)
    inputs.relevant = np.add.reduceat(relevant.astype(np.int64), starts)
    inputs.last_ts = ts[ends]
    inputs.last_class = c[ends]
    inputs.last_when = utc_datetimes(inputs.last_ts)
    n_assets = int(classes.asset_index.max()) + 1
    pairs = np.sort(key * n_assets + classes.asset_index[c])
    distinct_keys = pairs[np.r_[True, pairs[1:] != pairs[:-1]]] // n_assets
    inputs.assets = np.searchsorted(distinct_keys, group_key, side="right") - np.searchsorted(
        distinct_keys, group_key, side="left"
    )


def bits(upper: int) -> int:
    """How many bits a non-negative integer up to `upper` needs (at least one)."""
    return max(1, int(upper).bit_length())


def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """`np.argsort(keys, kind="stable")` for integer keys, about three times faster: numpy's default
    sort is vectorized and the stable one is not, so sort unstably, then put each run of equal keys
    back in position order (equal keys are rare where this is used, but they do occur)."""
    order = np.argsort(keys)
    ranked = keys[order]
    tie = ranked[1:] == ranked[:-1]
    if tie.any():
        members = np.flatnonzero(np.r_[tie, False] | np.r_[False, tie])
        run = np.cumsum(np.r_[True, ~tie])[members]
        at = order[members]
        order[members] = at[np.lexsort((at, run))]
    return order


def _group_order(key: np.ndarray, ts: np.ndarray, c: np.ndarray, n_classes: int) -> np.ndarray:
    """Order by (key, time to the second, class): one int64 sort when the three fit in 63 bits."""
    seconds = np.floor(ts - ts.min()).astype(np.int64)
    key_bits, time_bits, class_bits = bits(int(key.max())), bits(int(seconds.max())), bits(n_classes)
    if key_bits + time_bits + class_bits <= 63:
        combined = (key << (time_bits + class_bits)) | (seconds << class_bits) | c
        return stable_argsort(combined)
    return np.lexsort((c, seconds, key))


def _frequency_keep(
    cp: CompiledPlaybook,
    rule: np.ndarray,
    key: np.ndarray,
    age: np.ndarray,
    ts: np.ndarray,
    c: np.ndarray,
    value: np.ndarray,
    relevant: np.ndarray,
    n_classes: int,
) -> np.ndarray | None:
    """Frequency caps: within each window (counted back from now) only the `max_count` most valuable
    occurrences count; ties go to the most recent, then the highest class. Input is grouped by key
    and sorted by time, so each (key, window) is a contiguous run; when relevance is the same across
    a run, value falls with age and the most valuable are simply the last `max_count`."""
    max_count = np.asarray(cp.rule_max_count, dtype=np.int64)[rule]
    capped = max_count > 0
    if not capped.any():
        return None
    window = np.asarray(cp.rule_window)[rule]
    bucket = np.where(capped, np.floor(age / np.where(capped, window, 1.0)), 0).astype(np.int64)
    new_run = np.r_[True, (key[1:] != key[:-1]) | (bucket[1:] != bucket[:-1])]
    run_start = np.nonzero(new_run)[0]
    run_id = np.cumsum(new_run) - 1
    run_size = np.diff(np.r_[run_start, len(key)])
    position = np.arange(len(key)) - run_start[run_id]
    from_end = run_size[run_id] - 1 - position
    keep = ~capped | (from_end < max_count)
    over = capped & (run_size[run_id] > max_count)
    if over.any():
        mixed_runs = np.unique(run_id[over])
        rel_min = np.minimum.reduceat(relevant.astype(np.int8), run_start)
        rel_max = np.maximum.reduceat(relevant.astype(np.int8), run_start)
        mixed_runs = mixed_runs[rel_min[mixed_runs] != rel_max[mixed_runs]]
        if len(mixed_runs):
            members = np.nonzero(np.isin(run_id, mixed_runs))[0]
            tie = np.floor(ts[members]).astype(np.int64) * (n_classes + 1) + c[members]
            ranked = members[np.lexsort((-tie, -value[members], run_id[members]))]
            runs = run_id[ranked]
            first = np.r_[True, runs[1:] != runs[:-1]]
            idx = np.arange(len(ranked))
            rank = idx - np.maximum.accumulate(np.where(first, idx, 0))
            keep[members] = False
            keep[ranked[rank < max_count[ranked]]] = True
    return keep


def _depth_hits(
    cp: CompiledPlaybook,
    inputs: IntentInputs,
    p: np.ndarray,
    c: np.ndarray,
    age: np.ndarray,
    relevant: np.ndarray,
    duration: np.ndarray,
) -> None:
    """Depth signals: visits or seconds of the activities a depth rule counts (`duration`: each
    activity's seconds, NaN when it has none)."""
    classes = inputs.classes
    assert classes is not None
    for d, rule in enumerate(cp.playbook.intent.depth):
        mask = classes.depth[d][c] & (age <= rule.window_days)
        if rule.relevant_only:
            mask &= relevant
        sel = np.nonzero(mask)[0]
        if not len(sel):
            continue
        if rule.min_visits is not None:
            visits = np.bincount(p[sel])
            for pi in np.nonzero(visits >= rule.min_visits)[0].tolist():
                inputs.depth.setdefault(pi, []).append((d, float(visits[pi])))
        else:
            durations = np.nan_to_num(duration[sel], nan=0.0)
            # rounded so that summation order (record order) can never flip the threshold
            seconds = np.round(np.bincount(p[sel], weights=durations), 3)
            for pi in np.nonzero(seconds >= rule.min_seconds)[0].tolist():
                inputs.depth.setdefault(pi, []).append((d, float(seconds[pi]) / 60.0))
