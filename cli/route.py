"""`leadloop route`: score a dataset with a playbook, route the scored people and print the decisions
(owner, task, due date, handoff note, nurture track, suppressions), readable in a terminal."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from leadloop.crm.dataset import Dataset, DatasetError, load_dataset
from leadloop.crm.identity import match_dataset_accounts
from leadloop.playbook.routing import routing_problems
from leadloop.routing import Action, AssignmentState, Decision, RoutingResult, route_all
from leadloop.sync.pipeline import catalog_assets


class RouteInputError(ValueError):
    """Bad user input for `leadloop route`: printed as is, exit code 2."""


def parse_at(value: str | None) -> datetime:
    """`--at` as an aware UTC datetime (naive values are UTC); the current time when absent."""
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise RouteInputError(f"--at {value!r} is not an ISO time such as 2025-06-11T10:00:00Z") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def route_dataset(playbook_path: Path, data_path: Path, at: datetime,
                  ) -> tuple[RoutingResult, Dataset, list[str]]:
    """Score and route a dataset file; raises RouteInputError with a printable message."""
    from leadloop.playbook.load import load_playbook
    from leadloop.playbook.model import PlaybookError
    from leadloop.scoring.engine import score_dataset

    try:
        playbook = load_playbook(playbook_path)
    except PlaybookError as error:
        raise RouteInputError(str(error)) from None
    section = playbook.routing
    if section is None or not section.actions:
        raise RouteInputError(f"{playbook_path}: the playbook has no `routing:` section with tier actions")
    problems = routing_problems(
        section,
        tiers=[t.name for t in playbook.tiers],
        profiles=[p.id for p in playbook.profiles],
        escalation_slas=[e.sla for e in playbook.escalations],
        stages=playbook.stages,
    )
    if problems:
        listed = "\n".join(f"  {p}" for p in problems)
        raise RouteInputError(f"{playbook_path}: {len(problems)} problem(s)\n{listed}")
    try:
        dataset = match_dataset_accounts(load_dataset(data_path))  # joined by email domain, as the sync does
    except DatasetError as error:
        raise RouteInputError(str(error)) from None
    scored = score_dataset(playbook, dataset, at)
    result = route_all(
        scored.cards.values(),
        people={p.id: p for p in dataset.people},
        accounts={a.id: a for a in dataset.accounts},
        opportunities=dataset.opportunities,
        activities=dataset.activities,
        assets=catalog_assets(playbook, dataset.assets),
        section=section,
        state=AssignmentState(),
        now=at,
        profile_segments={p.id: p.segments for p in playbook.profiles},
        account_scores=scored.accounts,
        committee_roles=playbook.account.committee.roles if playbook.account.committee is not None else (),
    )
    return result, dataset, [str(item) for item in dataset.invalid]


def _local(moment: datetime) -> str:
    """`Tue 2026-11-03 12:00 Asia/Shanghai`: the owner's wall clock, with an unambiguous zone name."""
    zone = getattr(moment.tzinfo, "key", None) or moment.strftime("%Z")
    return f"{moment.strftime('%a %Y-%m-%d %H:%M')} {zone}"


def _task_table(decisions: list[Decision], names: dict[str, str]) -> Table:
    table = Table(title="Owners and tasks", title_justify="left", show_lines=False)
    for column in ("person", "tier", "owner", "why this owner", "task", "due", "priority"):
        table.add_column(column, overflow="fold")
    for d in decisions:
        task = d.task
        what = ("update " if task and task.updates_open_task else "") + (task.kind.value if task else "none")
        table.add_row(names.get(d.person_id, d.person_id), d.tier, d.owner or "", d.owner_source or "", what,
                      _local(task.due_at) if task else "",
                      task.priority.value if task else "")
    return table


def _committee_table(result: RoutingResult, names: dict[str, str]) -> Table:
    """Accounts whose buying committee meets the playbook's condition: the account task, or why none."""
    table = Table(title="Buying committees", title_justify="left")
    for column in ("account", "tier", "roles", "members", "owner", "task", "due"):
        table.add_column(column, overflow="fold")
    for account in result.accounts:
        task = account.task
        table.add_row(names.get(account.account_id, account.account_id), account.tier,
                      ", ".join(account.roles), ", ".join(m.name for m in account.members),
                      account.owner or "", "account task" if task else "; ".join(account.reasons) or "none",
                      _local(task.due_at) if task else "")
    return table


def print_result(console: Console, result: RoutingResult, names: dict[str, str], notes: bool) -> None:
    assigned = [d for d in result.decisions if d.action is Action.ASSIGN]
    nurtured = [d for d in result.decisions if d.action is Action.NURTURE]
    console.print(_task_table(assigned, names) if assigned else "No one is ready for sales.")
    if notes:
        for d in assigned:
            if d.task is not None:
                due = d.task.due_at.isoformat(timespec="minutes")
                console.print(Panel(d.task.note, title=f"{d.task.subject}  →  {d.task.owner}",
                                    subtitle=f"due {due} · key {d.task.key}",
                                    title_align="left", subtitle_align="left", expand=False))
    if nurtured:
        table = Table(title="Nurture", title_justify="left")
        for column in ("person", "track", "next asset"):
            table.add_column(column, overflow="fold")
        for d in nurtured:
            asset = f"{d.next_asset.name} ({d.next_asset.stage})" if d.next_asset else "(none left)"
            table.add_row(names.get(d.person_id, d.person_id), d.nurture_track or "", asset)
        console.print(table)
    held = [(d, s) for d in result.decisions for s in d.suppressions]
    if held:
        table = Table(title="Suppressed or redirected", title_justify="left")
        for column in ("person", "kind", "why"):
            table.add_column(column, overflow="fold")
        for d, s in held:
            table.add_row(names.get(d.person_id, d.person_id), s.kind.value, s.text)
        console.print(table)
    if result.accounts:
        console.print(_committee_table(result, names))
    counts = ", ".join(f"{kind.value} {n}" for kind, n in sorted(result.report.counts.items())) or "none"
    console.print(f"{len(result.decisions)} people routed: {len(assigned)} to owners,"
                  f" {len(nurtured)} to nurture; suppressions: {counts}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""

    @app.command()
    def route(
        playbook: Annotated[Path, typer.Option("--playbook", help="Playbook YAML with a routing: section.")],
        data: Annotated[Path, typer.Option("--data", help="Canonical dataset JSON.")],
        at: Annotated[str | None, typer.Option(help="Route as of this ISO time (UTC if naive).")] = None,
        notes: Annotated[bool, typer.Option(help="Print each task's handoff note.")] = True,
    ) -> None:
        """Score a dataset, route the scored people and print owner, task, due date and note."""
        console = Console()
        errors = Console(stderr=True)
        try:
            moment = parse_at(at)
            result, dataset, skipped = route_dataset(playbook, data, moment)
        except RouteInputError as error:
            errors.print(f"[red]error:[/red] {error}", markup=True, highlight=False)
            raise typer.Exit(2) from None
        for line in skipped:
            errors.print(f"skipped invalid record {line}", markup=False, highlight=False)
        names = {p.id: p.name for p in dataset.people} | {a.id: a.name for a in dataset.accounts if a.name}
        console.print(f"Routing as of {moment.isoformat(timespec='minutes')}", highlight=False)
        print_result(console, result, names, notes)
