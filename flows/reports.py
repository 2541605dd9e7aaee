"""Rendering of run summaries: Markdown for Prefect artifacts, a self-contained HTML model review.

Presentation only: every figure comes from the pure modules (scoring.review, scoring.quality) or the
run's counters. The HTML report has no external assets (inline CSS and SVG), so it can be mailed.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from leadloop.scoring.quality import Finding, Trend
from leadloop.scoring.review import GroupRate, ModelReview


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def review_markdown(reviews: dict[str, ModelReview], lookback_days: int) -> str:
    """Side-by-side summary of one or more playbooks' reviews (current first)."""
    names = list(reviews)
    intro = f"Scored as of {lookback_days} days ago; outcome = an opportunity created since."
    parts = [f"# Model review\n\n{intro}"]
    parts.append(markdown_table(
        ["", *names],
        [
            ["model version", *(r.model_version for r in reviews.values())],
            ["people", *(r.people for r in reviews.values())],
            ["converted", *(r.converted for r in reviews.values())],
            ["ROC AUC", *(f"{r.auc:.3f}" if r.auc is not None else "n/a" for r in reviews.values())],
            ["top-decile lift", *(top_decile_lift(r) for r in reviews.values())],
        ],
    ))
    for name, review in reviews.items():
        parts.append(f"## {name}: conversion by tier")
        parts.append(markdown_table(["tier", "people", "converted", "rate"],
                                    [[g.group, g.people, g.converted, _pct(g.rate)] for g in review.by_tier]))
        parts.append(_signals_markdown(name, review))
        parts.append(_suggestions_markdown(name, review))
    return "\n\n".join(parts)


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


def top_decile_lift(review: ModelReview) -> str:
    """How many times the base rate the top tenth by score converted at, as shown ("2.31×", "n/a")."""
    if not review.lift_by_decile or not review.base_rate:
        return "n/a"
    return f"{review.lift_by_decile[0].rate / review.base_rate:.2f}×"


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


def _bar_chart(title: str, groups: Sequence[GroupRate], color: str) -> str:
    """A horizontal bar chart of conversion rates as inline SVG."""
    width, bar_h, label_w = 560, 22, 150
    top = max((g.rate for g in groups), default=0) or 1
    height = 30 + bar_h * len(groups)
    rows = [f'<text x="0" y="16" class="t">{html.escape(title)}</text>']
    for i, g in enumerate(groups):
        y = 26 + i * bar_h
        w = (width - label_w - 90) * g.rate / top
        rows.append(f'<text x="0" y="{y + 15}">{html.escape(g.group)}</text>')
        rows.append(f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{bar_h - 6}" fill="{color}"/>')
        rows.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 15}">{g.rate:.1%} of {g.people}</text>')
    return f'<svg width="{width}" height="{height}" role="img">{"".join(rows)}</svg>'


_TEMPLATES = Path(__file__).parent / "templates"


def write_review_html(
    reviews: dict[str, ModelReview], lookback_days: int, reports_dir: str | Path, now: datetime,
    sla_summary: str = "",
) -> Path:
    """Write `reports/model-review-<date>.html` and return its path."""
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(default=True))
    template = env.get_template("model_review.html.j2")

    charts = [
        (Markup(_bar_chart("Conversion by tier", r.by_tier, "#3b7dd8")),
         Markup(_bar_chart("Conversion by score decile (lift)", r.lift_by_decile, "#d8843b")))
        for r in reviews.values()
    ]
    page = template.render(
        generated=now.strftime("%Y-%m-%d %H:%M UTC"), lookback=lookback_days, names=list(reviews),
        reviews=list(reviews.values()), pairs=list(reviews.items()), charts=charts, sla=sla_summary,
    )
    folder = Path(reports_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"model-review-{now:%Y-%m-%d}.html"
    path.write_text(page, encoding="utf-8")
    return path
