"""The model review's charts, drawn with matplotlib and returned as SVG text to inline in the HTML report.

Presentation only: each chart is drawn from the per-person scores, outcomes and likelihoods of the
reviews (`scoring.review.ModelReview`) and the rates the review computed. Figures are built on the
Agg canvas without pyplot (no global backend or state, never a display), with DejaVu Sans, which
matplotlib ships, so a plain machine draws the same text; text is written as glyph outlines, so the
SVG looks the same in any browser or mail client whatever fonts it has. Playbooks differ in colour,
line style, marker and hatching, so the charts still read when printed in greyscale. The same reviews
give byte-identical SVG (no date in the metadata, ids from a fixed salt).

A chart that cannot be drawn (nobody converted, or everybody did; no likelihoods) is None: the report
says why instead.
"""

from __future__ import annotations

import io
import re
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from leadloop.scoring.review import ModelReview, wilson_interval

# One look per playbook, in the reviews' order (current first). Colours from the Okabe–Ito palette,
# chosen so their greyscale values differ (dark blue, light orange, mid vermillion, black); the line
# style, marker and hatch tell them apart on their own too.
STYLES = (
    {"color": "#0b4f8a", "linestyle": "-", "marker": "o", "hatch": ""},
    {"color": "#e69f00", "linestyle": "--", "marker": "s", "hatch": "//"},
    {"color": "#c2410c", "linestyle": ":", "marker": "^", "hatch": ".."},
    {"color": "#222222", "linestyle": "-.", "marker": "D", "hatch": "xx"},
)
REFERENCE = {"color": "#888888", "linestyle": (0, (2, 2)), "linewidth": 1}  # chance, perfect calibration

RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "legend.fontsize": 8.5,
    "legend.frameon": False,
    "svg.fonttype": "path",
}

# Figure sizes in inches: two half-width charts sit side by side in the report's 72rem column.
HALF = (5.4, 4.2)
SQUARE = (5.4, 5.4)  # a square chart with its legend below
WIDE = (11.0, 4.2)


def style(index: int) -> dict[str, str]:
    return STYLES[index % len(STYLES)]


def new_figure(size: tuple[float, float]) -> Figure:
    """A figure on the Agg canvas with constrained layout, which makes room for every label."""
    figure = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def below(figure: Figure, axes: Axes) -> None:
    """The legend under the chart, where no curve, bar or interval can be: side by side when the
    entries are short, one per line when not."""
    handles, labels = axes.get_legend_handles_labels()
    wide = sum(len(label.split("\n")[0]) for label in labels) > 60
    figure.legend(handles, labels, loc="outside lower center", ncols=1 if wide else len(labels))


def short(name: str, width: int = 60) -> str:
    """A playbook's name as a legend shows it: wrapped, at most two lines."""
    return "\n".join(textwrap.wrap(name, width, max_lines=2, placeholder=" …")) or name


def wrapped(label: str, width: int = 14) -> str:
    """A tier name under its bars: broken into lines that fit the bar group's width."""
    return "\n".join(textwrap.wrap(label, width, break_long_words=False)) or label


def rankable(review: ModelReview) -> bool:
    """Curves need both converters and non-converters among the people scored."""
    return 0 < sum(review.labels) < len(review.labels)


def _svg_root(match: re.Match[str]) -> str:
    tag = re.sub(r'\s(width|height)="[^"]*"', "", match.group(0))
    return tag.replace("<svg", '<svg width="100%" class="chart"', 1)


def to_svg(figure: Figure, prefix: str) -> str:
    """The figure as an `<svg>` element to inline in HTML: no XML prologue, no date, scaled to the
    width of its container. Every id in it (and every reference to one) starts with `prefix`, since
    matplotlib numbers them the same way in every figure and one page holds several."""
    buffer = io.StringIO()
    with matplotlib.rc_context({**RC, "svg.hashsalt": f"leadloop-{prefix}"}):
        figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    ids = set(re.findall(r'\bid="([^"]+)"', text))
    text = re.sub(r'(\bid="|(?<=[("])#)([^")]+)(?=[")])',
                  lambda m: f"{m.group(1)}{prefix}-{m.group(2)}" if m.group(2) in ids else m.group(0), text)
    return re.sub(r"<svg\b[^>]*>", _svg_root, text, count=1)


# ---------------------------------------------------------------------------------------------- curves


def roc_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[list[float], list[float]]:
    """The ROC curve: (false-positive rates, true-positive rates) as the threshold falls through the
    scores, people with the same score taken together (a diagonal step across ties)."""
    positives = sum(labels)
    negatives = len(labels) - positives
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    fpr, tpr = [0.0], [0.0]
    tp = fp = 0
    for rank, i in enumerate(order):
        tp += labels[i]
        fp += not labels[i]
        if rank + 1 == len(order) or scores[order[rank + 1]] != scores[i]:
            fpr.append(fp / negatives)
            tpr.append(tp / positives)
    return fpr, tpr


def gains_points(scores: Sequence[float], labels: Sequence[bool]) -> tuple[list[float], list[float]]:
    """Cumulative gains: (share of people contacted, share of converters among them) contacting the
    highest scores first, people with the same score taken together."""
    positives = sum(labels)
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    contacted, captured = [0.0], [0.0]
    hits = 0
    for rank, i in enumerate(order):
        hits += labels[i]
        if rank + 1 == len(order) or scores[order[rank + 1]] != scores[i]:
            contacted.append((rank + 1) / len(order))
            captured.append(hits / positives)
    return contacted, captured


def _curve_figure(reviews: Mapping[str, ModelReview], title: str, reference: str,
                  curve: Callable[[ModelReview], tuple[Sequence[float], Sequence[float], str]],
                  finish: Callable[[Axes], None]) -> Figure | None:
    """One chart of every rankable playbook's curve over [0, 1]², with a diagonal `reference` line:
    `curve(review)` gives its x, y and legend note; `finish(axes)` labels the axes."""
    drawn = [(i, name, r) for i, (name, r) in enumerate(reviews.items()) if rankable(r)]
    if not drawn:
        return None
    with matplotlib.rc_context(RC):
        figure = new_figure(SQUARE)
        axes = figure.add_subplot()
        axes.plot([0, 1], [0, 1], label=reference, **REFERENCE)
        for i, name, review in drawn:
            look = style(i)
            x, y, note = curve(review)
            axes.plot(x, y, color=look["color"], linestyle=look["linestyle"], linewidth=1.8,
                      label=f"{short(name)} ({note})")
        axes.set(xlim=(0, 1), ylim=(0, 1.01), aspect="equal")
        finish(axes)
        axes.set_title(title, loc="left")
        below(figure, axes)
    return figure


def roc_figure(reviews: Mapping[str, ModelReview]) -> Figure | None:
    """Every playbook's ROC curve on one chart, with its AUC in the legend and the chance diagonal."""
    def curve(review: ModelReview) -> tuple[Sequence[float], Sequence[float], str]:
        fpr, tpr = roc_points(review.scores, review.labels)
        return fpr, tpr, "AUC " + ("n/a" if review.auc is None else f"{review.auc:.3f}")

    def finish(axes: Axes) -> None:
        axes.set(xlabel="false-positive rate (non-converters above the threshold)",
                 ylabel="true-positive rate (converters above the threshold)")

    return _curve_figure(reviews, "ROC curve", "chance (AUC 0.500)", curve, finish)


def gains_figure(reviews: Mapping[str, ModelReview]) -> Figure | None:
    """Cumulative gains: the share of converters reached when contacting the top x % by score."""
    def curve(review: ModelReview) -> tuple[Sequence[float], Sequence[float], str]:
        contacted, captured = gains_points(review.scores, review.labels)
        at_tenth = next(c for x, c in zip(contacted, captured, strict=True) if x >= 0.1)
        return contacted, captured, f"top 10 %: {at_tenth:.0%}"

    def finish(axes: Axes) -> None:
        axes.axvline(0.1, color="#bbbbbb", linewidth=0.8)
        axes.set(xlabel="share of people contacted, highest scores first",
                 ylabel="share of converters reached")
        axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))

    return _curve_figure(reviews, "Cumulative gains", "contacting at random", curve, finish)


# ----------------------------------------------------------------------------------------- calibration


@dataclass(frozen=True, slots=True)
class CalibrationPoint:
    """A tenth of the people by predicted likelihood: what they were predicted and what they did."""

    predicted: float  # mean predicted likelihood
    observed: float
    people: int
    converted: int


def calibration_points(likelihoods: Sequence[float], labels: Sequence[bool], bins: int = 10
                       ) -> list[CalibrationPoint]:
    """Predicted against observed conversion over tenths of the people sorted by likelihood."""
    order = sorted(range(len(likelihoods)), key=lambda i: likelihoods[i])
    points = []
    for b in range(bins):
        chunk = order[len(order) * b // bins:len(order) * (b + 1) // bins]
        if not chunk:
            continue
        converted = sum(labels[i] for i in chunk)
        points.append(CalibrationPoint(sum(likelihoods[i] for i in chunk) / len(chunk),
                                       converted / len(chunk), len(chunk), converted))
    return points


def calibrated(reviews: Mapping[str, ModelReview]) -> list[tuple[int, str, ModelReview]]:
    return [(i, name, r) for i, (name, r) in enumerate(reviews.items())
            if r.likelihoods and len(r.likelihoods) == len(r.labels)]


def calibration_figure(reviews: Mapping[str, ModelReview]) -> Figure | None:
    """Predicted likelihood against observed conversion per decile, with 95 % intervals. With one
    calibrated playbook each point is labelled with its number of converters, the people per decile
    in the legend (with more, the points alone)."""
    drawn = calibrated(reviews)
    if not drawn:
        return None
    with matplotlib.rc_context(RC):
        figure = new_figure(SQUARE)
        axes = figure.add_subplot()
        series = [(i, name, calibration_points(r.likelihoods or [], r.labels)) for i, name, r in drawn]
        top = max(max(p.predicted, wilson_interval(p.converted, p.people)[1]) for _, _, ps in series
                  for p in ps)
        top = min(1.0, max(0.05, top * 1.08))
        axes.plot([0, top], [0, top], label="perfectly calibrated", **REFERENCE)
        for i, name, points in series:
            look = style(i)
            intervals = [wilson_interval(p.converted, p.people) for p in points]
            error = [[p.observed - low for p, (low, _) in zip(points, intervals, strict=True)],
                     [high - p.observed for p, (_, high) in zip(points, intervals, strict=True)]]
            sizes = sorted({p.people for p in points})
            people = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,}–{sizes[-1]:,}"
            label = short(name)
            if len(series) == 1:
                label += f"\n(deciles of {people} people; labels: converters)"
            axes.errorbar([p.predicted for p in points], [p.observed for p in points], yerr=error,
                          color=look["color"], linestyle=look["linestyle"], marker=look["marker"],
                          markersize=5, capsize=3, linewidth=1.4, label=label)
            if len(series) == 1:  # left and right in turn: neighbouring deciles often share a likelihood
                for k, p in enumerate(points):
                    axes.annotate(f"{p.converted}", (p.predicted, p.observed), textcoords="offset points",
                                  xytext=(6, -3) if k % 2 else (-6, -3), ha="left" if k % 2 else "right",
                                  fontsize=7.5, color="#333333")
        axes.set(xlim=(0, top), ylim=(0, top), aspect="equal",
                 xlabel="predicted likelihood (mean per decile)",
                 ylabel="observed conversion (95 % interval)")
        axes.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_title("Calibration by decile of likelihood", loc="left")
        below(figure, axes)
    return figure


# ------------------------------------------------------------------------------------ distributions


def score_distribution_figure(reviews: Mapping[str, ModelReview]) -> Figure | None:
    """Per playbook, the scores of converters against those of non-converters, each as a share of its
    group (converters are few): the further apart, the better the score separates them."""
    drawn = [(i, name, r) for i, (name, r) in enumerate(reviews.items()) if rankable(r)]
    if not drawn:
        return None
    with matplotlib.rc_context(RC):
        figure = new_figure((WIDE[0], 3.6))
        panels = figure.subplots(1, len(drawn), sharey=True, squeeze=False)[0]
        for axes, (i, name, review) in zip(panels, drawn, strict=True):
            look = style(i)
            low, high = min(review.scores), max(review.scores)
            if high <= low:
                high = low + 1
            edges = [low + (high - low) * k / 20 for k in range(21)]
            converters = [s for s, y in zip(review.scores, review.labels, strict=True) if y]
            others = [s for s, y in zip(review.scores, review.labels, strict=True) if not y]
            axes.hist(others, bins=edges, weights=[1 / len(others)] * len(others), color="#bbbbbb",
                      edgecolor="#777777", linewidth=0.5, label=f"did not convert ({len(others):,})")
            axes.hist(converters, bins=edges, weights=[1 / len(converters)] * len(converters),
                      histtype="step", color=look["color"], linewidth=2, hatch=look["hatch"] or "\\\\",
                      label=f"converted ({len(converters):,})")
            axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
            axes.set_xlabel("score")
            axes.set_title(short(name, 48), loc="left", fontsize=9.5)
            axes.legend(loc="upper right")
        panels[0].set_ylabel("share of the group")
        figure.suptitle("Score distributions: converters against the others", x=0.01, ha="left",
                        fontweight="bold", fontsize=11)
    return figure


def tier_conversion_figure(reviews: Mapping[str, ModelReview]) -> Figure | None:
    """Conversion by tier, the playbooks' bars side by side in each tier (best tier first), each bar
    with its 95 % Wilson interval and its counts."""
    shown = [(i, name, r) for i, (name, r) in enumerate(reviews.items()) if r.people]
    if not shown:
        return None
    order = [t for r in reviews.values() for t in r.tiers]
    names = list(dict.fromkeys([*order, *(g.group for _, _, r in shown for g in r.by_tier)]))
    with matplotlib.rc_context(RC):
        figure = new_figure(HALF)
        axes = figure.add_subplot()
        width = 0.8 / len(shown)
        top = 0.0
        for slot, (i, name, review) in enumerate(shown):
            look = style(i)
            groups = {g.group: g for g in review.by_tier}
            xs, rates, minus, plus, counts = [], [], [], [], []
            for position, tier in enumerate(names):
                if (group := groups.get(tier)) is None or not group.people:
                    continue
                low, high = wilson_interval(group.converted, group.people)
                xs.append(position - 0.4 + width * (slot + 0.5))
                rates.append(group.rate)
                minus.append(group.rate - low)
                plus.append(high - group.rate)
                counts.append((group.converted, group.people, high))
                top = max(top, high)
            axes.bar(xs, rates, width * 0.92, yerr=[minus, plus], capsize=3, color=look["color"],
                     hatch=look["hatch"], edgecolor="white" if not look["hatch"] else "#333333",
                     linewidth=0.5, error_kw={"elinewidth": 1, "ecolor": "#333333"}, label=short(name))
            for x, (converted, people, high) in zip(xs, counts, strict=True):
                axes.annotate(f"{converted}/{people}", (x, high), textcoords="offset points", xytext=(0, 3),
                              ha="center", fontsize=7.5 if len(shown) * len(names) <= 6 else 6.5)
        axes.set_xticks(range(len(names)), [wrapped(n) for n in names])
        axes.set_ylim(0, min(1.12, top * 1.15) or 1.0)  # room above the tallest interval for its counts
        axes.set_yticks([t for t in axes.get_yticks() if 0 <= t <= 1])
        axes.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        axes.set_ylabel("converted (95 % interval)")
        axes.set_title("Conversion by tier (converted/people)", loc="left")
        axes.grid(axis="x", visible=False)
        below(figure, axes)
    return figure


# ----------------------------------------------------------------------------------------- the lot

CHARTS = {
    "roc": roc_figure,
    "gains": gains_figure,
    "tiers": tier_conversion_figure,
    "calibration": calibration_figure,
    "scores": score_distribution_figure,
}


def review_charts(reviews: Mapping[str, ModelReview]) -> dict[str, str]:
    """Every chart that can be drawn from the reviews, as inline SVG, by kind (see CHARTS)."""
    charts = {}
    for kind, draw in CHARTS.items():
        if (figure := draw(reviews)) is not None:
            charts[kind] = to_svg(figure, kind)
    return charts
