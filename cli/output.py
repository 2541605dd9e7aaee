"""What `leadloop sync`, `rescore` and `demo` show in a terminal: progress bars fed by the sync's
progress hook, the run summary, what was not written and why, and the exit code it calls for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

if TYPE_CHECKING:
    from leadloop.flows.steps import SyncSummary

console = Console()
err = Console(stderr=True)


class progress_bars:
    """A rich progress display fed by sync.pipeline's progress hook."""

    def __enter__(self) -> progress_bars:
        from leadloop.sync import pipeline

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.tasks: dict[str, int] = {}
        self.progress.start()

        def report(step: str, done: int, total: int | None) -> None:
            if step not in self.tasks:
                self.tasks[step] = self.progress.add_task(step, total=total)
            self.progress.update(self.tasks[step], completed=done, total=total)

        pipeline.set_progress(report)
        return self

    def __exit__(self, *exc: object) -> None:
        from leadloop.sync import pipeline

        pipeline.set_progress(None)
        self.progress.stop()


def print_problems(summary: SyncSummary) -> None:
    """What went wrong, grouped by reason with a few example records; people routed to a task that
    no CRM could take, by id. Nothing when everything was written."""
    groups = summary.rejection_groups()
    if groups:
        table = Table(title="Not written (retried next run)", title_justify="left")
        for column in ("CRM", "object", "reason", "count", "examples"):
            table.add_column(column, overflow="fold", justify="right" if column == "count" else "left")
        for group in groups[:10]:
            table.add_row(group["crm"], group["object"], group["reason"][:160], f"{group['count']:,}",
                          ", ".join(group["examples"]))
        console.print(table)
        if len(groups) > 10:
            console.print(f"… and {len(groups) - 10} more reasons (see the run's artifact)")
    if summary.failed_writes():
        err.print(f"[red]failed:[/red] every write failed for {', '.join(summary.failed_writes())}",
                  highlight=False)
    if summary.tasks_unconfirmed:
        err.print(f"{summary.tasks_unconfirmed} task creates got no answer from the CRM: the next run "
                  "looks for them by key before sending anything again", highlight=False)


# The exit codes of `sync` and `rescore` (see the README): all written; failed; bad input or
# configuration; completed with rejected, unconfirmed or unplaceable writes.
EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_REJECTIONS = 0, 1, 2, 3


def exit_code(summary: SyncSummary) -> int:
    return {"ok": EXIT_OK, "failed": EXIT_FAILED, "rejections": EXIT_REJECTIONS}[summary.outcome]


def playbook_line(playbook: dict[str, Any]) -> str:
    """Which playbook a run scored with, and what that did to the live one."""
    version = playbook.get("model_version", "")
    if playbook.get("preview"):
        return (f"{version}: a preview, nothing written (the live one is {playbook.get('was_live')}; "
                f"--activate makes this one live)")
    if playbook.get("activated"):
        return f"{version}: live from this run on"
    return f"{version} (live)"


def print_summary(summary: SyncSummary, title: str) -> None:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    if summary.playbook:
        table.add_row("playbook", playbook_line(summary.playbook))
    table.add_row("records pulled", f"{summary.records_pulled:,}")
    rescored = summary.rescored
    if rescored and summary.people_scored < rescored["of"]:
        table.add_row("people scored", f"{summary.people_scored:,} of {rescored['of']:,} (changed or due)")
    elif rescored.get("everyone"):
        table.add_row("people scored", f"{summary.people_scored:,} (everyone: {rescored['why']})")
    else:
        table.add_row("people scored", f"{summary.people_scored:,}")
    table.add_row("accounts scored", f"{summary.accounts_scored:,}")
    quarantined = sum(p.rejected for p in summary.pulls)
    if quarantined:
        table.add_row("quarantined (bad values)", f"{quarantined:,}")
    table.add_row("tier changes", f"{sum(summary.tier_changes.values()):,}")
    verb = "would write" if summary.dry_run else "written"
    planned_fields = sum(p["fields"] for p in summary.planned.values())
    planned_tasks = sum(p["tasks"] for p in summary.planned.values())
    table.add_row(f"fields {verb}", f"{planned_fields if summary.dry_run else summary.fields_written:,}")
    table.add_row(f"tasks {verb}", f"{planned_tasks if summary.dry_run else summary.tasks_created:,}")
    table.add_row("rejected by the CRM", f"{summary.rejections:,}")
    if summary.tasks_unconfirmed:
        table.add_row("tasks awaiting confirmation", f"{summary.tasks_unconfirmed:,}")
    if summary.tasks_given_up:
        table.add_row("tasks given up", f"{summary.tasks_given_up:,}")
    if summary.tasks_fallback:
        table.add_row("tasks to the fallback owner", f"{len(summary.tasks_fallback):,}")
    for crm, calls in summary.api_calls.items():
        table.add_row(f"API calls ({crm})", f"{sum(calls.values()):,}")
    table.add_row("time", f"{summary.seconds:.1f} s")
    console.print(table)
    tiers = Table(title=summary.tiers_title, title_justify="left")
    tiers.add_column("tier")
    tiers.add_column("people", justify="right")
    for tier, n in summary.tier_counts.items():
        tiers.add_row(tier, f"{n:,}")
    console.print(tiers)
    print_problems(summary)
    if summary.dry_run and summary.changes:
        changes = Table(
            title=f"What would change (first {min(len(summary.changes), 25)})", title_justify="left"
        )
        for column in ("crm", "record", "field", "old", "new"):
            changes.add_column(column, overflow="fold")
        for row in summary.changes[:25]:
            changes.add_row(*(row[c] for c in ("crm", "record", "field", "old", "new")))
        console.print(changes)
