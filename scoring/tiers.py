"""Numbers every part of scoring shares: scores rounded to one decimal (so float noise never changes
a tier), whole points as the CRMs show them, rows placed in tiers by their minimums (for people and
accounts alike)."""

from __future__ import annotations

from collections.abc import Sequence
from math import floor
from typing import Any

import numpy as np


def _r(value: float) -> float:
    """Round for output: one decimal, halves up, never -0.0 (cheaper than round(x, 1))."""
    return floor(value * 10.0 + 0.5) / 10.0


def _rounded(values: np.ndarray) -> np.ndarray:
    """`_r` on every value."""
    return np.floor(values * 10.0 + 0.5) / 10.0


def whole(values: np.ndarray) -> np.ndarray:
    """Whole points, halves away from zero: a score as the CRMs show it (`store.writeplan.whole_points`
    of a one-decimal score). Tiers are placed on these, so the written score and tier always agree."""
    return np.copysign(np.floor(np.abs(values) + 0.5), values) + 0.0  # + 0.0: never -0.0


def _tiers_reached(tiers: Sequence[Any], n: int, **values: np.ndarray) -> list[str]:
    """For each of `n` rows, the name of the first tier whose minimums it reaches (a tier's `min_fit`
    against `values["fit"]`, and so on), else the last tier's."""
    index = np.full(n, len(tiers) - 1, dtype=np.int64)
    undecided = np.ones(n, dtype=bool)
    for k, tier in enumerate(tiers):
        reached = undecided.copy()
        for name, column in values.items():
            low = getattr(tier, f"min_{name}")
            if low is not None:
                reached &= column >= low
        index[reached] = k
        undecided &= ~reached
    return [tiers[k].name for k in index.tolist()]
