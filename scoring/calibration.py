"""Score → likelihood: the share of people at a score who had an opportunity within the playbook's
calibration horizon, as the model review learned it from outcomes (`calibration.bins`).

Pure: a lookup in the playbook's bins, no outcomes, no I/O. The engine puts the likelihood on each
ScoreCard; the write-back shows it to reps as a percentage (`store.writeplan.percent_points`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

from leadloop.playbook.model import Calibration, CalibrationBin


def bin_of(score: float, calibration: Calibration) -> CalibrationBin:
    """The last bin whose `min_score` the score reaches; the first bin for a score below all of them."""
    bins = calibration.bins
    at = bisect_right([b.min_score for b in bins], score) - 1
    return bins[max(at, 0)]


def likelihood_of(score: float, calibration: Calibration | None) -> float | None:
    """The expected conversion rate (0–1) of a score; None without a calibration."""
    if calibration is None:
        return None
    return bin_of(score, calibration).rate


def likelihoods(scores: Sequence[float], calibration: Calibration | None) -> list[float | None]:
    """`likelihood_of` of each score (the bin edges are read once)."""
    if calibration is None:
        return [None] * len(scores)
    return list(rates_at(scores, calibration.bins))


def rates_at(scores: Sequence[float], bins: Sequence[Any]) -> list[float]:
    """For each score, the rate of the last bin whose `min_score` it reaches (the first bin's for a
    score below all of them). `bins`: ascending, non-empty, anything with `min_score` and `rate` (the
    playbook's bins, or the ones the model review is learning)."""
    edges = [b.min_score for b in bins]
    rates = [b.rate for b in bins]
    return [rates[max(bisect_right(edges, s) - 1, 0)] for s in scores]

