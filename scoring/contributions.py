"""What each reason line adds to the lead score today: caps and floors shared out among the lines.

A capped group (an intent group, the intent cap, a fit cap, the static cap of the blend) keeps less
than its lines add up to; the cut comes out of its positive lines in proportion to their size, and
the negative lines stay whole. A floor (fit or intent never below zero) works the other way: the
negative lines shrink in proportion until the group reaches zero. So the lines of a group always
add up to what the group counts, and every line keeps its sign and its rank within the group.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import fields, replace
from operator import attrgetter

import numpy as np

from leadloop.crm.batch import build_many
from leadloop.scoring.scorecard import Reason

_NOISE = 1e-9  # relative: a group this close to its target is at it (float sums in another order)


def share(positive: float, negative: float, target: float) -> tuple[float, float]:
    """(factor of the positive lines, factor of the negative lines) that make lines summing to
    `positive` and `negative` (≤ 0) add up to `target`; (1.0, 1.0) when they already do."""
    off = target - (positive + negative)
    noise = _NOISE * max(1.0, positive - negative)
    if off < -noise and positive > 0:
        return min(1.0, max(0.0, (target - negative) / positive)), 1.0
    if off > noise and negative < 0:
        return 1.0, min(1.0, max(0.0, (target - positive) / negative))
    return 1.0, 1.0


def shares(values: np.ndarray, group: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`share` for many groups at once: lines `values`, line i in group `group[i]`, group g to add up
    to `target[g]`; per group, the factor of its positive lines and that of its negative lines."""
    n = len(target)
    positive = np.bincount(group, weights=np.maximum(values, 0.0), minlength=n)
    negative = np.bincount(group, weights=np.minimum(values, 0.0), minlength=n)
    off = target - (positive + negative)
    noise = _NOISE * np.maximum(1.0, positive - negative)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        cut = np.where((off < -noise) & (positive > 0), (target - negative) / positive, 1.0)
        lift = np.where((off > noise) & (negative < 0), (target - positive) / negative, 1.0)
    return np.clip(cut, 0.0, 1.0), np.clip(lift, 0.0, 1.0)


def scaled(lines: Iterable[Reason], cut: float, lift: float) -> tuple[Reason, ...]:
    """The lines with their contributions shared out: positive ones times `cut`, negative ones times
    `lift`; a line whose contribution does not change is the same object."""
    if cut == 1.0 and lift == 1.0:
        return tuple(lines)
    out = []
    for line in lines:
        c = line.contribution
        factor = cut if c > 0 else lift
        out.append(line if c == 0 or factor == 1.0 else replace(line, contribution=c * factor))
    return tuple(out)


def cut_many(groups: Sequence[tuple[Reason, ...]], cuts: Sequence[float]) -> list[tuple[Reason, ...]]:
    """`scaled(group, cut, 1.0)` for many groups of lines (a cap on each), with the copies built in
    one batch (`crm.batch.build_many`): the static cap can cut the fit lines of most people."""
    originals: list[Reason] = []
    values: list[float] = []
    where: list[tuple[int, int]] = []
    for k, (lines, cut) in enumerate(zip(groups, cuts, strict=True)):
        if cut == 1.0:
            continue
        for j, line in enumerate(lines):
            if line.contribution > 0:
                originals.append(line)
                values.append(line.contribution * cut)
                where.append((k, j))
    columns = {f.name: list(map(attrgetter(f.name), originals)) for f in fields(Reason)}
    columns["contribution"] = values
    out = [list(lines) for lines in groups]
    for (k, j), copy in zip(where, build_many(Reason, len(originals), columns), strict=True):
        out[k][j] = copy
    return [tuple(lines) for lines in out]


def contributions(lines: Iterable[Reason]) -> tuple[float, float]:
    """(sum of the positive, sum of the negative) contributions of `lines`."""
    positive = negative = 0.0
    for line in lines:
        c = line.contribution
        if c > 0:
            positive += c
        else:
            negative += c
    return positive, negative
