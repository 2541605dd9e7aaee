"""Terminal summaries of a scoring run (rich): tier counts and the top leads with their reasons."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from scoring.engine import ScoringResult
from scoring.scorecard import ReasonKind, ScoreCard

_HEADLINE_KINDS = (ReasonKind.ESCALATION, ReasonKind.DISQUALIFIER, ReasonKind.INTENT, ReasonKind.NEGATIVE)


def headline_reasons(card: ScoreCard, limit: int = 3) -> list[str]:
    """The few reasons a rep reads first: escalation or disqualifier, then the biggest signals."""
    first = [r for r in card.reasons if r.kind in (ReasonKind.ESCALATION, ReasonKind.DISQUALIFIER)]
    signals = sorted(
        (r for r in card.reasons if r.kind in (ReasonKind.INTENT, ReasonKind.NEGATIVE)),
        key=lambda r: -abs(r.points),
    )
    return [r.text for r in (first + signals)[:limit]]


def print_scoring_summary(console: Console, result: ScoringResult, top: int = 10) -> None:
    """Tier counts, then the `top` leads (best tier, highest score first) with their main reasons."""
    counts = Table(title=f"Tiers (model {result.model_version}, as of {result.scored_at:%Y-%m-%d %H:%M} UTC)")
    counts.add_column("Tier")
    counts.add_column("People", justify="right")
    for tier, count in result.tier_counts().items():
        counts.add_row(tier, str(count))
    console.print(counts)

    leads = Table(title=f"Top {top} leads")
    for column, justify in (
        ("Lead", "left"),
        ("Tier", "left"),
        ("Score", "right"),
        ("Fit", "right"),
        ("Intent", "right"),
        ("Stage", "left"),
        ("Why", "left"),
    ):
        leads.add_column(column, justify=justify)  # type: ignore[arg-type]
    for card in result.ranked()[:top]:
        person = result.people.get(card.person_id)
        who = person.name if person else card.person_id
        if person and person.title:
            who += f"\n[dim]{person.title}[/dim]"
        leads.add_row(
            who,
            card.tier,
            f"{card.score:g}",
            f"{card.fit:g}",
            f"{card.intent:g}",
            card.stage or "—",
            "\n".join(headline_reasons(card)),
        )
    console.print(leads)
    if result.unknown_titles:
        shown = ", ".join(f"{title!r} ({n})" for title, n in list(result.unknown_titles.items())[:5])
        console.print(f"[dim]{len(result.unknown_titles)} job title(s) no persona understands: {shown}[/dim]")
    if result.unmatched_activities.total:
        console.print(
            f"[dim]{result.unmatched_activities.total} activities name content no asset rule recognizes[/dim]"
        )
