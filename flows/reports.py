"""Rendering of run summaries: Markdown for Prefect artifacts, a self-contained HTML model review.

Presentation only: every figure comes from the pure modules (scoring.review, scoring.quality) or the
run's counters; the charts are drawn in flows/charts.py. The HTML report has no external assets
(inline CSS and SVG), so it renders from a file and can be mailed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from leadloop.scoring.quality import Finding, Trend
from leadloop.scoring.review import (
    GroupRate,
    LearnedCandidate,
    ModelReview,
    SignalLift,
    TierInversion,
    tier_inversions,
    wilson_interval,
)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


INTRO = "Scored as of {days} days ago with only what was known then; outcome = an opportunity created since."
CEILING = ("Ceiling AUC: a gradient-boosting model on the raw features (no playbook points), trained on the "
           "older cohort and measured on the same held-out people.")


def top_decile_lift(review: ModelReview) -> str:
    """How many times the base rate the top tenth by score converted at, as shown ("2.31×", "n/a")."""
    if not review.lift_by_decile or not review.base_rate:
        return "n/a"
    return f"{review.lift_by_decile[0].rate / review.base_rate:.2f}×"


def top_tier(review: ModelReview) -> GroupRate | None:
    """The playbook's best tier as the review counted it (nobody in it: 0 of 0); None without a tier
    order."""
    if not review.tiers:
        return None
    best = review.tiers[0]
    return next((g for g in review.by_tier if g.group == best), GroupRate(best, 0, 0))


def top_tier_precision(review: ModelReview) -> str:
    """How many of the top tier converted ("23.5% (8 of 34)")."""
    tier = top_tier(review)
    if tier is None or not tier.people:
        return "n/a"
    return f"{tier.rate:.1%} ({tier.converted:,} of {tier.people:,})"


def top_tier_recall(review: ModelReview) -> str:
    """How many of the converters the top tier held ("8.6% (8 of 93)")."""
    tier = top_tier(review)
    if tier is None or not review.converted:
        return "n/a"
    return f"{tier.converted / review.converted:.1%} ({tier.converted:,} of {review.converted:,})"


def _auc(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def tier_cell(group: GroupRate | None) -> str:
    return "-" if group is None else f"{group.converted:,} of {group.people:,} ({group.rate:.1%})"


def tier_order(reviews: Mapping[str, ModelReview]) -> list[str]:
    """The tiers of all the reviews, in their playbooks' order (best first), then any others."""
    ordered = [t for r in reviews.values() for t in r.tiers]
    return list(dict.fromkeys([*ordered, *(g.group for r in reviews.values() for g in r.by_tier)]))


def _interval(bounds: tuple[float, float]) -> str:
    return f"{bounds[0]:.1%}–{bounds[1]:.1%}"


def inversion_text(inversion: TierInversion) -> str:
    """A tier inversion in one sentence, with both rates, their counts and whether it is beyond chance."""
    lower, higher = inversion.lower, inversion.higher
    verdict = ("beyond the 95% intervals" if inversion.beyond_intervals
               else "within the 95% intervals, so it may be chance")
    return (f"{lower.group} converted at {lower.rate:.1%} ({lower.converted:,} of {lower.people:,}, 95% "
            f"{_interval(inversion.lower_interval)}), above {higher.group} at {higher.rate:.1%} "
            f"({higher.converted:,} of {higher.people:,}, 95% {_interval(inversion.higher_interval)}): "
            f"{verdict}")


def inversion_line(inversion: TierInversion) -> str:
    """A tier inversion in a terminal's line."""
    lower, higher = inversion.lower, inversion.higher
    return (f"{lower.group} {lower.rate:.1%} ({lower.converted:,} of {lower.people:,}) above "
            f"{higher.group} {higher.rate:.1%} ({higher.converted:,} of {higher.people:,}), "
            + ("beyond the 95% intervals" if inversion.beyond_intervals else "may be chance"))


def _inversions_cell(inversions: Sequence[TierInversion]) -> str:
    if not inversions:
        return "none"
    return "; ".join(f"{i.lower.group} above {i.higher.group}"
                     + ("" if i.beyond_intervals else " (may be chance)") for i in inversions)


@dataclass(frozen=True, slots=True)
class HeadlineRow:
    """A row of the side-by-side headline: one cell per playbook. `kind` is "figure", "tier" (its
    conversion) or "inversions"."""

    label: str
    cells: tuple[str, ...]
    kind: str = "figure"


def calibration_error(review: ModelReview) -> float | None:
    """Mean |predicted − observed| over deciles, for a review whose scores were calibrated."""
    if review.calibration_error is not None:
        return review.calibration_error
    return review.learned.calibration_error if review.learned else None


def headline(reviews: Mapping[str, ModelReview]) -> list[HeadlineRow]:
    """The headline figures of the playbooks side by side (current first). The ceiling and the
    calibration error come from learning on outcomes, so they have rows only when a review has them."""
    values = list(reviews.values())

    def row(label: str, cell, kind: str = "figure") -> HeadlineRow:
        return HeadlineRow(label, tuple(cell(r) for r in values), kind)

    rows = [
        row("model version", lambda r: r.model_version),
        row("people", lambda r: f"{r.people:,}"),
        row("converted", lambda r: f"{r.converted:,} ({r.base_rate:.1%})"),
        row("ROC AUC", lambda r: _auc(r.auc)),
    ]
    if any(r.learned and r.learned.ceiling_auc is not None for r in values):
        rows.append(row("ceiling AUC",
                        lambda r: _auc(r.learned.ceiling_auc) if r.learned else "-"))
    rows += [
        row("top-tier precision", top_tier_precision),
        row("top-tier recall", top_tier_recall),
        row("top-decile lift", top_decile_lift),
    ]
    if any(calibration_error(r) is not None for r in values):
        rows.append(row("calibration error", lambda r: "-" if (error := calibration_error(r)) is None
                        else f"{error:.3f}"))
    for tier in tier_order(reviews):
        rows.append(row(tier, lambda r, tier=tier: tier_cell(next((g for g in r.by_tier if g.group == tier),
                                                                  None)), "tier"))
    rows.append(row("tier inversions", lambda r: _inversions_cell(tier_inversions(r)), "inversions"))
    return rows


def red_flags(reviews: Mapping[str, ModelReview]) -> list[tuple[str, list[TierInversion]]]:
    """The playbooks whose tiers convert out of order, with each inversion."""
    return [(name, found) for name, review in reviews.items() if (found := tier_inversions(review))]


def lost_signals(review: ModelReview) -> list[SignalLift]:
    """Signals that lost their predictive power: the people who showed them converted no more than
    everyone did (lift at or below 1), weakest first."""
    return sorted((s for s in review.signals if s.lift <= 1), key=lambda s: (s.lift, s.rule))


@dataclass(frozen=True, slots=True)
class LostSignal:
    """A signal that lost its power, with the points each playbook gives it (None: not in it)."""

    lift: SignalLift
    points: tuple[float | None, ...]


def lost_signal_rows(reviews: Mapping[str, ModelReview]) -> list[LostSignal]:
    """The signals that lost their power in any of the reviews, once each (the people who show a
    signal do not depend on the playbook), with each playbook's points for it."""
    first: dict[str, SignalLift] = {}
    for review in reviews.values():
        for signal in lost_signals(review):
            first.setdefault(signal.rule, signal)
    points = [{s.rule: s.current_points for s in review.signals} for review in reviews.values()]
    return [LostSignal(signal, tuple(p.get(rule) for p in points))
            for rule, signal in sorted(first.items(), key=lambda item: (item[1].lift, item[0]))]


def _points(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def learned_candidates(reviews: Mapping[str, ModelReview]) -> list[tuple[str, LearnedCandidate]]:
    return [(name, r.learned) for name, r in reviews.items() if r.learned is not None]


def why_no_curves(reviews: Mapping[str, ModelReview], lookback_days: int) -> str | None:
    """Why the report has no ROC, gains or score curves (None: it has them)."""
    values = list(reviews.values())
    if any(0 < sum(r.labels) < len(r.labels) for r in values):
        return None
    if all(r.people == 0 for r in values):
        return (f"Nobody in the store existed {lookback_days} days ago, so there is nobody to review: "
                "try a shorter look-back.")
    if all(r.converted == 0 for r in values):
        return ("Nobody converted since the cut-off, so there is nothing to rank against: no ROC, gains or "
                "score curves. A longer look-back gives outcomes more time.")
    if all(r.converted == r.people for r in values):
        return "Everybody converted since the cut-off, so there is nothing to rank against: no curves."
    return "The reviews carry no per-person scores, so no curves can be drawn."


def candidate_note(learned: LearnedCandidate) -> str:
    """Where the learned candidate was written, and that it stays a candidate."""
    where = (f"written to {learned.yaml_path}" if learned.yaml_path
             else "not written to a file")
    return (f"The candidate playbook was {where}. It is never activated automatically: review its changes, "
            "run it here as a candidate, then make it the live playbook yourself.")


def learned_summary(learned: LearnedCandidate) -> str:
    return (f"Learned from {learned.train_people:,} people scored as of {learned.train_cutoff:%Y-%m-%d} and "
            f"measured on the newest cohort, {learned.test_people:,} people scored as of "
            f"{learned.test_cutoff:%Y-%m-%d}. {len(learned.changes)} weights changed, {learned.kept} kept "
            "(too little evidence, or no clear effect).")


def review_markdown(reviews: dict[str, ModelReview], lookback_days: int) -> str:
    """The playbooks' reviews side by side (current first): the headline, red flags, the signals that
    lost their power, what a learned candidate changed, then each playbook's tiers, signals and
    suggestions."""
    names = list(reviews)
    parts = [f"# Model review\n\n{INTRO.format(days=lookback_days)}"]
    rows = headline(reviews)
    parts.append(markdown_table(["", *names], [[f"tier: {row.label}" if row.kind == "tier" else row.label,
                                                *row.cells] for row in rows]))
    if any(row.label == "ceiling AUC" for row in rows):
        parts[-1] += f"\n\n{CEILING}"
    if flags := red_flags(reviews):
        lines = [f"- **{name}**: {inversion_text(i)}" for name, found in flags for i in found]
        parts.append("## Red flag: tiers convert out of order\n\n" + "\n".join(lines))
    parts.append(_lost_signals_markdown(reviews))
    for name, learned in learned_candidates(reviews):
        parts.append(_learned_markdown(name, learned))
    for name, review in reviews.items():
        parts.append(f"## {name}: conversion by tier")
        parts.append(markdown_table(
            ["tier", "people", "converted", "rate", "95% interval"],
            [[g.group, g.people, g.converted, _pct(g.rate), _interval(wilson_interval(g.converted, g.people))]
             for g in _tiers_in_order(review)]))
        parts.append(_signals_markdown(name, review))
        parts.append(_suggestions_markdown(name, review))
    return "\n\n".join(parts)


def _tiers_in_order(review: ModelReview) -> list[GroupRate]:
    rank = {name: i for i, name in enumerate(review.tiers)}
    return sorted(review.by_tier, key=lambda g: (rank.get(g.group, len(rank)), g.group))


def _lost_signals_markdown(reviews: Mapping[str, ModelReview]) -> str:
    title = "## Signals that lost predictive power (lift at or below 1)"
    rows = [[row.lift.rule, row.lift.people_with, _pct(row.lift.rate_with), _pct(row.lift.rate_without),
             f"{row.lift.lift:.2f}", *(_points(p) for p in row.points)] for row in lost_signal_rows(reviews)]
    if not rows:
        return f"{title}\n\nNone: the people who showed each signal converted more than the base rate."
    return f"{title}\n\n" + markdown_table(
        ["signal", "people", "rate with", "rate without", "lift", *(f"points: {n}" for n in reviews)], rows)


def _learned_markdown(name: str, learned: LearnedCandidate) -> str:
    text = f"## What the learned candidate changes\n\n**{name}**: {learned_summary(learned)}\n\n"
    text += candidate_note(learned)
    if learned.changes:
        text += "\n\n" + markdown_table(
            ["weight", "where", "current → candidate", "confidence", "evidence"],
            [[c.rule, c.where, f"{c.current:g} → {c.candidate:g}", f"{c.confidence:.0%}", c.evidence]
             for c in learned.changes])
    return text


# The artifact keeps to the strongest signals: the HTML report lists them all.
ARTIFACT_SIGNALS = 10


def _signals_markdown(name: str, review: ModelReview) -> str:
    """The evidence behind the suggestions: how the people who showed each signal converted."""
    shown = review.signals[:ARTIFACT_SIGNALS]
    more = len(review.signals) - len(shown)
    rows = [[s.rule, s.people_with, _pct(s.rate_with), _pct(s.rate_without), f"{s.lift:.2f}",
             s.current_points] for s in shown]
    table = markdown_table(["signal", "people", "rate with", "rate without", "lift", "points"], rows)
    tail = f"\n\n… and {more} more signals in the HTML report." if more > 0 else ""
    return f"## {name}: signals by lift\n\n{table}{tail}"


def _suggestions_markdown(name: str, review: ModelReview) -> str:
    title = f"## {name}: suggested weight changes (review, never applied automatically)"
    if not review.suggestions:
        return f"{title}\n\nNo signal's evidence is clear enough to suggest a change."
    return f"{title}\n\n" + markdown_table(["signal", "now", "suggested", "why"],
                                             [[s.rule, s.current_points, s.suggested_points, s.why]
                                              for s in review.suggestions])

def quality_markdown(findings: Sequence[Finding], trends: Sequence[Trend]) -> str:
    change = {t.check: t.change for t in trends}
    rows = [
        [f.severity, f.title, f.count, f.total, _pct(f.share),
         "new" if change.get(f.check) is None else f"{change[f.check]:+d}", "; ".join(f.examples)[:160]]
        for f in findings if f.count
    ]
    return "# Data quality\n\n" + markdown_table(
        ["severity", "finding", "count", "of", "share", "vs last run", "examples"], rows
    )


_TEMPLATES = Path(__file__).parent / "templates"


def render_review_html(reviews: dict[str, ModelReview], lookback_days: int, now: datetime,
                       sla_summary: str = "") -> str:
    """The whole review as one self-contained HTML page."""
    from leadloop.flows.charts import review_charts  # matplotlib: only the review draws, not every sync

    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True))
    template = env.get_template("model_review.html.j2")
    charts = {kind: Markup(svg) for kind, svg in review_charts(reviews).items()}
    return template.render(
        generated=now.strftime("%Y-%m-%d %H:%M UTC"), intro=INTRO.format(days=lookback_days),
        names=list(reviews), headline=headline(reviews), charts=charts,
        no_curves=why_no_curves(reviews, lookback_days),
        flags=[(name, [(inversion_text(i), i.beyond_intervals) for i in found])
               for name, found in red_flags(reviews)],
        lost=[(row.lift, [_points(p) for p in row.points]) for row in lost_signal_rows(reviews)],
        learned=[(name, learned, learned_summary(learned), candidate_note(learned))
                 for name, learned in learned_candidates(reviews)],
        pairs=[(name, review, [(g, _interval(wilson_interval(g.converted, g.people)))
                               for g in _tiers_in_order(review)]) for name, review in reviews.items()],
        sla=sla_summary, ceiling=CEILING,
    )


def write_review_html(
    reviews: dict[str, ModelReview], lookback_days: int, reports_dir: str | Path, now: datetime,
    sla_summary: str = "",
) -> Path:
    """Write `reports/model-review-<date>.html` and return its path."""
    page = render_review_html(reviews, lookback_days, now, sla_summary)
    folder = Path(reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model-review-{now:%Y-%m-%d}.html"
    path.write_text(page, encoding="utf-8")
    return path
