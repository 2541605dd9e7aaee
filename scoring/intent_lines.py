"""Contact intent and its reasons for everyone at once, from the rule hits of `scoring.intent`.

Per person the reasons read: one block per rule hit (its line, then its rule-cap line) and per depth
signal, most valuable first; then relevance, decay, group caps, the intent cap and the negatives.
Totals are computed with arrays in exactly the order a per-person loop would add them (so float
rounding is the same); each distinct sentence is built once from its parts (points, asset, day,
count), each part worded once per distinct value, and reason objects in batches (`crm.batch`).

Each hit, depth signal and negative also carries its contribution to the lead score today: its
points after decay and relevance, its rule cap, its group's cap and the intent cap shared out in
proportion (`scoring.contributions`), the floor at zero shared among the negatives, times the
blend weight of contact intent. So relevance, decay and cap lines contribute nothing themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from itertools import repeat
from math import floor, inf, prod
from typing import NamedTuple

import numpy as np

from leadloop.crm.batch import build_many
from leadloop.playbook.compiled import CompiledPlaybook
from leadloop.playbook.wording import VERBS, days, fill, number, signed
from leadloop.scoring.contributions import shares
from leadloop.scoring.intent import DAY, IntentInputs, bits, stable_argsort
from leadloop.scoring.scorecard import Reason, ReasonKind


def _r(value: float) -> float:
    """One decimal, halves up, never -0.0 (the engine's rounding)."""
    return floor(value * 10.0 + 0.5) / 10.0


def _round_all(values: np.ndarray) -> list[float]:
    return (np.floor(values * 10.0 + 0.5) / 10.0).tolist()


def on_day(seconds: float) -> str:
    """The UTC day of a POSIX time as reasons name it: `on 2026-11-26` (never "2 days ago", which
    would go stale in a CRM field that is rewritten only when the score moves)."""
    return "on " + datetime.fromtimestamp(floor(seconds / DAY) * DAY, UTC).date().isoformat()


class _Words(NamedTuple):
    """A wording per item, stored once per distinct wording: item i reads `words[code[i]]`."""

    words: list
    code: np.ndarray

    def expand(self) -> list:
        return list(map(self.words.__getitem__, self.code.tolist()))

    def compact(self) -> _Words:
        """The same wordings with one code per distinct word (different keys often read the same)."""
        index: dict = {}
        recode = np.array([index.setdefault(word, len(index)) for word in self.words], dtype=np.int64)
        return _Words(list(index), recode[self.code])


def _day_words(seconds: np.ndarray) -> _Words:
    """`on_day(s)` for every POSIX time, each distinct day worded once. Days are small integers (the
    activities counted span at most `max_age_days`), so a table indexed by day finds them without
    sorting."""
    if not len(seconds):
        return _Words([], np.zeros(0, dtype=np.int64))
    day = np.floor(seconds / DAY).astype(np.int64)
    first = int(day.min())
    keys = day - first
    present = np.flatnonzero(np.bincount(keys))
    words: list[str | None] = [None] * (int(keys.max()) + 1)
    for key in present.tolist():
        words[key] = on_day((first + key) * DAY)
    return _Words(words, keys)


def _value_words(values: np.ndarray, form: Callable[[float], object] = lambda v: v) -> _Words:
    """`form(v)` for every value, called once per distinct value."""
    distinct, inverse = np.unique(values, return_inverse=True)
    return _Words([form(v) for v in distinct.tolist()], inverse)


def _signed_words(values: np.ndarray) -> _Words:
    """`signed(v)` for every value. It shows one decimal, so values are keyed by their tenths and each
    key worded once; a value within a hair of a rounding boundary (x.x5) is worded on its own, so that
    the text is always exactly `signed(v)`."""
    tenths = values * 10.0
    with np.errstate(invalid="ignore"):  # inf and nan are worded alone
        fraction = tenths - np.floor(tenths)
    # below 1e9 the float error of `values * 10` is far smaller than the margin
    alone = ~(np.abs(tenths) < 1e9) | (np.abs(fraction - 0.5) < 1e-6)
    keyed = np.flatnonzero(~alone)
    distinct, inverse = np.unique(np.rint(tenths[keyed]), return_inverse=True)
    words = [signed(t / 10.0) for t in distinct.tolist()]
    code = np.empty(len(values), dtype=np.int64)
    code[keyed] = inverse
    single = np.flatnonzero(alone)
    code[single] = len(words) + np.arange(len(single))
    words += [signed(v) for v in values[single].tolist()]
    return _Words(words, code)


def _sentences(parts: Sequence[_Words], make: Callable[..., str]) -> list[str]:
    """`make(*part words)` for every item, called once per distinct combination of the parts (reasons
    repeat: 618,000 hit lines at L read 25,000 ways), so equal sentences are also one string."""
    parts = [part.compact() for part in parts]
    sizes = [max(1, len(part.words)) for part in parts]
    if prod(sizes) >= 2**63:
        return list(map(make, *(part.expand() for part in parts)))
    code = np.zeros(len(parts[0].code), dtype=np.int64)
    for part, size in zip(parts, sizes, strict=True):
        code = code * size + part.code
    distinct, inverse = np.unique(code, return_inverse=True)
    columns = []
    for part, size in zip(reversed(parts), reversed(sizes), strict=True):
        columns.append(list(map(part.words.__getitem__, (distinct % size).tolist())))
        distinct = distinct // size
    texts = list(map(make, *reversed(columns)))
    return list(map(texts.__getitem__, inverse.tolist()))


def _block_order(hp: np.ndarray, kept: np.ndarray, rule_ids: list[str], r: np.ndarray) -> np.ndarray:
    """Hits by person, most valuable first, ties by rule id: `np.lexsort((id rank, -kept, hp))` as
    one integer sort when the person, the rank of the value and the rank of the id fit in 63 bits."""
    id_rank = {rule_id: i for i, rule_id in enumerate(sorted(set(rule_ids)))}
    ranks = np.array([id_rank[x] for x in rule_ids], dtype=np.int64)[r]
    if not len(hp):
        return np.zeros(0, dtype=np.int64)
    distinct, value_rank = np.unique(kept, return_inverse=True)
    k = len(distinct)
    person_bits, value_bits, id_bits = bits(int(hp.max())), bits(k - 1), bits(len(id_rank) - 1)
    if person_bits + value_bits + id_bits > 63:
        return np.lexsort((ranks, -kept, hp))
    combined = (hp << (value_bits + id_bits)) | ((k - 1 - value_rank) << id_bits) | ranks
    return stable_argsort(combined)


class _Shares(NamedTuple):
    """What intent lines contribute to the lead score: per hit, per depth signal (in the order of
    `IntentWriter._depth_points`), and per person the score points one intent point of a negative
    is worth (the blend weight, less where intent stops at zero)."""

    hits: np.ndarray
    depth: list[float]
    per_point: np.ndarray


class IntentWriter:
    """Sentences that many people share (asset wording per rule and class), remembered per run."""

    def __init__(self, cp: CompiledPlaybook, inputs: IntentInputs, now_ts: float) -> None:
        self.cp, self.inputs, self.now_ts = cp, inputs, now_ts
        self.rules = cp.playbook.intent.rules
        self.says: dict[tuple[int, int, int], str] = {}

    def _says(self, rule_index: int, cls: int, n_assets: int) -> str:
        key = (rule_index, cls, n_assets)
        found = self.says.get(key)
        if found is None:
            classes = self.inputs.classes
            rule = self.rules[rule_index]
            asset = classes.assets[cls] if classes else None
            if asset is None:  # no catalog entry: the rule's own name reads better than a template
                found = rule.label
            else:
                template = rule.says or VERBS.get(
                    classes.kinds[cls] if classes else None, "engaged with {asset}"
                )
                found = fill(template, asset=asset.name)
            if n_assets > 1:
                found += f" and {n_assets - 1} more"
            self.says[key] = found
        return found

    def _all_says(self, rule: np.ndarray, cls: np.ndarray, n_assets: np.ndarray) -> _Words:
        """`_says` for every hit, each distinct (rule, class, asset count) worded once."""
        if not len(rule):
            return _Words([], np.zeros(0, dtype=np.int64))
        n_classes = int(cls.max()) + 1
        most = int(n_assets.max()) + 1
        codes = (rule * n_classes + cls) * most + n_assets
        distinct, inverse = np.unique(codes, return_inverse=True)
        words = [
            self._says(c // most // n_classes, c // most % n_classes, c % most) for c in distinct.tolist()
        ]
        return _Words(words, inverse)

    def __call__(
        self, n_people: int, field_negatives: Sequence[tuple[tuple[float, Reason], ...]], *,
        explain: bool = True,
    ) -> tuple[list[float], list[list[Reason]]]:
        """Every person's contact intent (rounded) and intent reasons, in person order. Without
        `explain`, only the cap and negative lines: the totals are the same (they come from the sums,
        never from the lines), for a caller that reads no reason (`scoring.due`'s probes)."""
        inputs, n_groups = self.inputs, len(self.cp.playbook.intent.groups)
        hp, r, value = inputs.person, inputs.rule, inputs.value
        rule_cap = np.array([inf if rule.cap is None else float(rule.cap) for rule in self.rules])[r]
        capped = value > rule_cap
        kept = np.where(capped, rule_cap, value)
        # Points per person and group; the last column holds the rules in no group.
        slot = np.array([g if g >= 0 else n_groups for g in self.cp.rule_group], dtype=np.int64)[r]
        sums = np.bincount(hp * (n_groups + 1) + slot, weights=kept, minlength=n_people * (n_groups + 1))
        sums = sums.reshape(n_people, n_groups + 1)
        active = np.zeros(n_people, dtype=bool)
        active[hp] = True
        special = np.zeros(n_people, dtype=bool)  # people whose blocks need sorting with cap or depth lines
        special[hp[capped]] = True

        depth = self._depth_points(sums, active, special)
        share = self._shares(n_people, kept, slot, sums, depth, active, field_negatives)
        if explain:
            depth_blocks = self._depth_blocks(depth, share)
            lines = self._blocks_by_value(n_people, kept, capped, depth_blocks, active, special, share.hits)
            self._add_relevance_lines(lines, active)
            self._add_decay_lines(lines, active)
        else:
            lines = [[] for _ in range(n_people)]
        totals = self._capped_totals(lines, sums, active)
        return self._with_negatives(lines, totals, field_negatives, share)

    def _group_totals(self, sums: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Each person's intent after the group caps (before the intent cap), and each group's
        points as counted (capped), in the order `_capped_totals` adds them."""
        groups = self.cp.playbook.intent.groups
        total = sums[:, len(groups)].copy()
        counted = []
        for g, group in enumerate(groups):
            value_g = sums[:, g]
            if group.cap is not None:
                value_g = np.where(value_g > group.cap, float(group.cap), value_g)
            counted.append(value_g)
            total = total + value_g
        return total, counted

    def _shares(
        self,
        n_people: int,
        kept: np.ndarray,
        slot: np.ndarray,
        sums: np.ndarray,
        depth: list[tuple[int, int, float]],
        active: np.ndarray,
        field_negatives: Sequence[tuple[tuple[float, Reason], ...]],
    ) -> _Shares:
        """What every hit, depth signal and negative contributes to the lead score (see the module's
        docstring): the group caps, then the intent cap, then the floor at zero, shared out."""
        cp = self.cp
        intent, weight = cp.playbook.intent, cp.playbook.blend.contact_intent
        n_slots = len(intent.groups) + 1
        hp = self.inputs.person
        depth_person = np.array([d[0] for d in depth], dtype=np.int64)
        depth_slot = np.array([d[1] for d in depth], dtype=np.int64)
        values = np.concatenate([kept, np.array([d[2] for d in depth], dtype=np.float64)])
        person = np.concatenate([hp, depth_person])
        cell = person * n_slots + np.concatenate([slot, depth_slot])
        # the group caps: each group's lines add up to what the group counts
        total, counted = self._group_totals(sums)
        target = np.column_stack([*counted, sums[:, -1]]).ravel() if counted else sums[:, -1].copy()
        cut, _ = shares(values, cell, target)
        values = values * np.where(values > 0, cut[cell], 1.0)
        # the intent cap
        over = active & (total > intent.cap)
        if over.any():
            cut, _ = shares(values, person, np.where(over, float(intent.cap), total))
            values = values * np.where(values > 0, cut[person], 1.0)
            total = np.where(over, float(intent.cap), total)
        total[~active] = 0.0
        # the negatives, and the floor at zero they may reach
        negative = np.zeros(n_people)
        for p, triggers in self.inputs.negatives.items():
            for trigger in triggers:
                negative[p] += cp.activity_negatives[trigger.rule].points
        for p, found in enumerate(field_negatives):
            for points, _reason in found:
                negative[p] += points
        lift = np.ones(n_people)
        floored = np.flatnonzero(total + negative < 0)
        if len(floored):
            everyone = np.arange(n_people)
            _, lift = shares(
                np.concatenate([values, negative]), np.concatenate([person, everyone]), np.zeros(n_people)
            )
            lift = np.where(total + negative < 0, lift, 1.0)
            values = values * np.where(values < 0, lift[person], 1.0)
        values *= weight
        m = len(kept)
        return _Shares(values[:m], values[m:].tolist(), lift * weight)

    def _hit_lines(self, r_list: list[int], contribution: np.ndarray) -> list[Reason]:
        """One reason per rule hit, in hit order (`r_list`: each hit's rule)."""
        inputs, rules = self.inputs, self.rules
        cls_list = inputs.last_class.tolist()
        texts = _sentences(
            [
                _value_words(inputs.base, signed),
                self._all_says(inputs.rule, inputs.last_class, inputs.assets),
                _day_words(inputs.last_ts),
                _value_words(inputs.count),
            ],
            lambda p, s, w, n: f"{p} {s} {w}" if n == 1 else f"{p} {s} ({n} times, last {w})",
        )
        rule_ids = [rule.id for rule in rules]
        whys = [rule.why for rule in rules]
        classes = inputs.classes
        asset_ids = [a.id if a is not None else None for a in classes.assets] if classes else []
        m = len(r_list)
        return build_many(
            Reason,
            m,
            {
                "kind": repeat(ReasonKind.INTENT, m),
                "rule": list(map(rule_ids.__getitem__, r_list)),
                "points": _round_all(inputs.base),
                "text": texts,
                "occurred_at": inputs.last_when,
                "asset": list(map(asset_ids.__getitem__, cls_list)),
                "why": list(map(whys.__getitem__, r_list)),
                "contribution": contribution.tolist(),
            },
        )

    def _cap_lines(self, capped: np.ndarray, r_list: list[int]) -> dict[int, Reason]:
        """The rule-cap line of each hit over its rule's cap, by hit position."""
        value = self.inputs.value
        cap_lines: dict[int, Reason] = {}
        for j in np.nonzero(capped)[0].tolist():
            rule = self.rules[r_list[j]]
            over = rule.cap - float(value[j])
            cap_lines[j] = Reason(
                ReasonKind.CAP,
                rule.id,
                _r(over),
                f"{signed(over)} capped at {number(rule.cap)}: {rule.label}",
            )
        return cap_lines

    def _depth_points(
        self, sums: np.ndarray, active: np.ndarray, special: np.ndarray
    ) -> list[tuple[int, int, float]]:
        """Depth signals: their points go into `sums` and their people become active and special;
        returns (person, slot in `sums`, points) of each, in the order added."""
        cp = self.cp
        depth_rules, n_groups = cp.playbook.intent.depth, len(cp.playbook.intent.groups)
        added = []
        for person, found in sorted(self.inputs.depth.items()):
            active[person] = special[person] = True
            for d, _amount in found:
                group = cp.depth_group[d]
                slot = group if group >= 0 else n_groups
                sums[person, slot] += depth_rules[d].points
                added.append((person, slot, depth_rules[d].points))
        return added

    def _depth_blocks(
        self, depth: list[tuple[int, int, float]], share: _Shares
    ) -> dict[int, list[tuple[float, str, list[Reason]]]]:
        """Depth signals: a block each, by person (in the order of `_depth_points`)."""
        depth_rules = self.cp.playbook.intent.depth
        depth_blocks: dict[int, list[tuple[float, str, list[Reason]]]] = {}
        k = 0
        for person, found in sorted(self.inputs.depth.items()):
            for d, amount in found:
                rule = depth_rules[d]
                text = fill(
                    rule.says or rule.label + " ({count})",
                    count=number(amount),
                    window=number(rule.window_days),
                )
                line = Reason(
                    ReasonKind.INTENT,
                    rule.id,
                    _r(rule.points),
                    f"{signed(rule.points)} {text}",
                    why=rule.why,
                    contribution=share.depth[k],
                )
                k += 1
                depth_blocks.setdefault(person, []).append((rule.points, rule.id, [line]))
        return depth_blocks

    def _blocks_by_value(
        self,
        n_people: int,
        kept: np.ndarray,
        capped: np.ndarray,
        depth_blocks: dict[int, list[tuple[float, str, list[Reason]]]],
        active: np.ndarray,
        special: np.ndarray,
        contribution: np.ndarray,
    ) -> list[list[Reason]]:
        """Each person's blocks (a hit with its cap line, a depth signal), most valuable first, ties by
        rule id: one sort for everyone, and a sort of their own for the special people."""
        hp, r_list = self.inputs.person, self.inputs.rule.tolist()
        rule_ids = [rule.id for rule in self.rules]
        hit_lines = self._hit_lines(r_list, contribution)
        cap_lines = self._cap_lines(capped, r_list)
        lines: list[list[Reason]] = [[] for _ in range(n_people)]
        order = _block_order(hp, kept, rule_ids, self.inputs.rule)
        starts = np.searchsorted(hp, np.arange(n_people), side="left").tolist()
        ends = np.searchsorted(hp, np.arange(n_people), side="right").tolist()
        ordered = list(map(hit_lines.__getitem__, order.tolist()))
        kept_list = kept.tolist()
        for person in np.nonzero(active & ~special)[0].tolist():
            lines[person] = ordered[starts[person] : ends[person]]
        for person in np.nonzero(special)[0].tolist():
            blocks = [
                (
                    kept_list[j],
                    rule_ids[r_list[j]],
                    [hit_lines[j], cap_lines[j]] if j in cap_lines else [hit_lines[j]],
                )
                for j in range(starts[person], ends[person])
            ]
            blocks.extend(depth_blocks.get(person, ()))
            blocks.sort(key=lambda b: (-b[0], b[1]))
            lines[person] = [line for block in blocks for line in block[2]]
        return lines

    def _add_relevance_lines(self, lines: list[list[Reason]], active: np.ndarray) -> None:
        """Relevance: one line per person with a bonus."""
        inputs, n_people = self.inputs, len(lines)
        hp = inputs.person
        bonus_total = np.bincount(hp, weights=inputs.bonus, minlength=n_people)
        bonus_count = np.bincount(hp, weights=inputs.relevant * (inputs.bonus != 0), minlength=n_people)
        with_bonus = np.nonzero(active & (bonus_total != 0))[0]
        if not len(with_bonus):
            return
        relevance = self.cp.playbook.intent.relevance
        percent = number(relevance.bonus_percent) if relevance else "0"
        totals = bonus_total[with_bonus]
        texts = _sentences(
            [_signed_words(totals), _value_words(bonus_count[with_bonus].astype(np.int64))],
            lambda s, n: (
                f"{s} relevance: {n} {'activity' if n == 1 else 'activities'} "
                f"on their profile's segment (+{percent}%)"
            ),
        )
        k = len(with_bonus)
        made = build_many(
            Reason,
            k,
            {
                "kind": repeat(ReasonKind.INTENT, k),
                "rule": repeat("relevance", k),
                "points": _round_all(totals),
                "text": texts,
                "why": repeat(relevance.why if relevance else None, k),
            },
        )
        for person, line in zip(with_bonus.tolist(), made, strict=True):
            lines[person].append(line)

    def _add_decay_lines(self, lines: list[list[Reason]], active: np.ndarray) -> None:
        """Decay: one line per person whose activity lost at least 0.05 points to age, naming the hit
        that lost most (the first such hit on ties)."""
        inputs, n_people = self.inputs, len(lines)
        hp = inputs.person
        decay = inputs.base + inputs.bonus - inputs.value
        decay_total = np.bincount(hp, weights=decay, minlength=n_people)
        with_decay = np.nonzero(active & (decay_total >= 0.05))[0]
        if not len(with_decay):
            return
        worst = np.full(n_people, -inf)
        np.maximum.at(worst, hp, decay)
        candidates = np.nonzero(decay == worst[hp])[0]
        people, first = np.unique(hp[candidates], return_index=True)
        worst_hit = np.full(n_people, -1, dtype=np.int64)
        worst_hit[people] = candidates[first]
        js = worst_hit[with_decay]
        totals = -decay_total[with_decay]
        rule_part = [
            (f"most from {rule.label}, last ", f", half-life {days(self.cp.rule_half_life[x])})")
            for x, rule in enumerate(self.rules)
        ]
        texts = _sentences(
            [_signed_words(totals), _Words(rule_part, inputs.rule[js]),
             _day_words(inputs.last_ts[js])],
            lambda s, part, a: f"{s} decay: older activity counts less ({part[0]}{a}{part[1]}",
        )
        k = len(with_decay)
        made = build_many(
            Reason,
            k,
            {
                "kind": repeat(ReasonKind.DECAY, k),
                "rule": repeat("decay", k),
                "points": _round_all(totals),
                "text": texts,
            },
        )
        for person, line in zip(with_decay.tolist(), made, strict=True):
            lines[person].append(line)

    def _capped_totals(self, lines: list[list[Reason]], sums: np.ndarray, active: np.ndarray) -> list[float]:
        """Each person's intent after the group caps, then the intent cap (a line for each cut); zero
        for people without activity."""
        intent = self.cp.playbook.intent
        n_groups = len(intent.groups)
        total = sums[:, n_groups].copy()
        for g, group in enumerate(intent.groups):
            value_g = sums[:, g]
            if group.cap is not None:
                over = active & (value_g > group.cap)
                for person, amount in zip(np.nonzero(over)[0].tolist(), value_g[over].tolist(), strict=True):
                    cut = group.cap - amount
                    lines[person].append(
                        Reason(
                            ReasonKind.CAP,
                            group.id,
                            _r(cut),
                            f"{signed(cut)} capped at {number(group.cap)}: {group.name}",
                        )
                    )
                value_g = np.where(value_g > group.cap, float(group.cap), value_g)
            total = total + value_g
        cap = intent.cap
        over = active & (total > cap)
        for person, amount in zip(np.nonzero(over)[0].tolist(), total[over].tolist(), strict=True):
            cut = cap - amount
            lines[person].append(
                Reason(
                    ReasonKind.CAP,
                    "intent",
                    _r(cut),
                    f"{signed(cut)} capped at {number(cap)}: contact intent",
                )
            )
        total = np.where(total > cap, float(cap), total)
        total[~active] = 0.0
        return total.tolist()

    def _with_negatives(
        self,
        lines: list[list[Reason]],
        totals: list[float],
        field_negatives: Sequence[tuple[tuple[float, Reason], ...]],
        share: _Shares,
    ) -> tuple[list[float], list[list[Reason]]]:
        """Negatives last: from activities (unsubscribe, bounce), then from fields; the totals rounded,
        never below zero. A negative contributes its points × the person's share of the floor (1 when
        intent stays above zero) × the blend weight; a shared field-negative line is copied only
        where that differs from what it was built with."""
        cp = self.cp
        per_point = share.per_point.tolist()
        for person, triggers in sorted(self.inputs.negatives.items()):
            for trigger in triggers:
                negative = cp.activity_negatives[trigger.rule]
                says_text = negative.says or VERBS.get(trigger.kind, negative.id)
                lines[person].append(
                    Reason(
                        ReasonKind.NEGATIVE,
                        negative.id,
                        _r(negative.points),
                        f"{signed(negative.points)} {says_text} {on_day(trigger.ts)}",
                        datetime.fromtimestamp(trigger.ts, UTC),
                        None,
                        negative.why,
                        negative.points * per_point[person],
                    )
                )
                totals[person] += negative.points
        for person, negatives in enumerate(field_negatives):
            for points, reason in negatives:
                contribution = points * per_point[person]
                if reason.contribution != contribution:
                    reason = replace(reason, contribution=contribution)
                lines[person].append(reason)
                totals[person] += points
        final = np.array(totals, dtype=np.float64)
        return _round_all(np.where(final < 0, 0.0, final)), lines
