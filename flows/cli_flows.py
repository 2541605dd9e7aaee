"""CLI commands of this area; `register(app)` adds them to the `leadloop` Typer app.

`leadloop demo` scores the bundled example dataset with the semiconductor playbook, as of the
dataset's reference time, and prints the tier counts and the top leads with their reasons.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer
from rich.console import Console

BUNDLED = Path(__file__).resolve().parents[1] / "playbooks"
EXAMPLE_DATASET = BUNDLED / "example_dataset.json"
EXAMPLE_PLAYBOOK = BUNDLED / "semiconductor.yaml"


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command()
    def demo(top: int = typer.Option(10, "--top", min=1, help="How many leads to show.")) -> None:
        """Score the bundled example dataset with the semiconductor playbook and print a summary."""
        from flows.cli_scoring import fail, read_dataset, read_playbook
        from flows.report import print_scoring_summary
        from scoring.engine import score_dataset

        console = Console()
        playbook = read_playbook(EXAMPLE_PLAYBOOK)
        dataset, reference = read_dataset(EXAMPLE_DATASET)
        if reference is None:
            fail(f"{EXAMPLE_DATASET} has no generated_at reference time")
        now = datetime.fromisoformat(reference)
        console.print(
            f"Scoring {len(dataset.people)} people at {len(dataset.accounts)} accounts "
            f"({len(dataset.activities)} activities) with [bold]{playbook.name}[/bold]"
        )
        print_scoring_summary(console, score_dataset(playbook, dataset, now), top=top)
