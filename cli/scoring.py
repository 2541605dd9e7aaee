"""CLI commands of the scoring area: `playbook check|docs`, `score` and `explain`.

Bad playbooks, datasets or arguments print precise messages on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from leadloop.crm.dataset import Dataset, DatasetError, dataset_json_schema, load_dataset_file
from leadloop.crm.identity import match_dataset_accounts
from leadloop.playbook.load import load_playbook
from leadloop.playbook.model import Playbook, PlaybookError

_err = Console(stderr=True, soft_wrap=True)


def fail(message: str, lines: list[str] | None = None) -> NoReturn:
    """Print a problem (and its detail lines) on stderr and exit 2."""
    _err.print(f"[bold red]error:[/bold red] {escape(message)}")
    for line in lines or []:
        _err.print(f"  {escape(line)}")
    raise typer.Exit(2)


PLAYBOOK_HELP = "Playbook: a YAML file or a shipped name (semiconductor, industrial)."


def read_playbook(path: Path) -> Playbook:
    try:
        return load_playbook(path)
    except PlaybookError as error:
        fail(f"{path} is not a valid playbook ({len(error.problems)} problem(s)):", error.problems)


def read_dataset(path: Path) -> tuple[Dataset, str | None]:
    """The dataset, its people joined to accounts by email domain as the sync's identity step joins
    them (`match_dataset_accounts`), and its `generated_at` reference time (if it has one)."""
    try:
        dataset, extras = load_dataset_file(path)
    except DatasetError as error:
        fail(str(error))
    reference = extras.get("generated_at")
    return match_dataset_accounts(dataset), reference if isinstance(reference, str) else None


def parse_time(value: str, what: str = "--at") -> datetime:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        fail(f"{what} must be an ISO time such as 2026-11-01T12:00:00Z, not {value!r}")
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_of(at: str | None, reference: str | None) -> datetime:
    """--at if given, else the dataset's reference time (said on stderr), else now."""
    if at:
        return parse_time(at)
    if reference:
        moment = parse_time(reference, "the dataset's generated_at")
        _err.print(
            f"[dim]scoring as of {moment:%Y-%m-%dT%H:%M:%SZ}, the dataset's generated_at "
            "(pass --at to change)[/dim]"
        )
        return moment
    return datetime.now(UTC)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _report_invalid(dataset: Dataset) -> None:
    if dataset.invalid:
        _err.print(f"[yellow]skipped {len(dataset.invalid)} invalid record(s):[/yellow]")
        for record in dataset.invalid[:50]:
            _err.print(f"  {escape(str(record))}")
        if len(dataset.invalid) > 50:
            _err.print(f"  … and {len(dataset.invalid) - 50} more (all are listed in the JSON output)")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    playbook_app = typer.Typer(help="Check and document scoring playbooks.", no_args_is_help=True)
    app.add_typer(playbook_app, name="playbook")
    playbook_app.command("check")(check_playbook)
    playbook_app.command("docs")(document_playbook)
    app.command()(score)
    app.command()(explain)


def check_playbook(file: Path = typer.Argument(..., help=PLAYBOOK_HELP)) -> None:
    """Validate a playbook: exit 0 when valid, else list every problem with its YAML path (exit 2)."""
    playbook = read_playbook(file)
    intent = playbook.intent
    Console(soft_wrap=True).print(
        f"[green]✓[/green] {escape(str(file))}: valid playbook [bold]{escape(playbook.name)}[/bold] "
        f"(model version {playbook.model_version}): {len(playbook.profiles)} profiles, "
        f"{len(playbook.assets)} assets, {len(intent.rules)} intent rules, "
        f"{len(intent.depth)} depth rules, "
        f"{len(playbook.negatives)} negatives, {len(playbook.disqualifiers)} disqualifiers, "
        f"{len(playbook.escalations)} escalations, {len(playbook.tiers)} tiers"
    )


def document_playbook(
    file: Path = typer.Argument(..., help=PLAYBOOK_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write the Markdown here instead of stdout."),
) -> None:
    """Print a Markdown table of every signal: meaning, points, cap, decay, routing consequence."""
    from leadloop.playbook.docs import playbook_markdown

    text = playbook_markdown(read_playbook(file))
    if out is None:
        sys.stdout.write(text)
    else:
        _write(out, text)


def score(
    playbook: Path | None = typer.Option(None, "--playbook", help=PLAYBOOK_HELP),
    data: Path | None = typer.Option(None, "--data", help="Dataset JSON file (see --schema)."),
    at: str | None = typer.Option(
        None, "--at", help="Score as of this ISO time (default: the dataset's generated_at, else now)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Write the scorecards JSON here instead of stdout."
    ),
    schema: bool = typer.Option(False, "--schema", help="Print the dataset JSON Schema and exit."),
) -> None:
    """Score a dataset: scorecards as JSON. Invalid records are skipped and listed with the reason."""
    from leadloop.scoring.engine import score_dataset

    if schema:
        sys.stdout.write(json.dumps(dataset_json_schema(), indent=2) + "\n")
        return
    if playbook is None or data is None:
        fail("score needs --playbook FILE and --data DATASET.json (or --schema)")
    model = read_playbook(playbook)
    dataset, reference = read_dataset(data)
    now = as_of(at, reference)
    _report_invalid(dataset)
    result = score_dataset(model, dataset, now)
    document = {
        "playbook": model.name,
        "model_version": result.model_version,
        "scored_at": now,
        "tiers": result.tier_counts(),
        "people": [result.cards[pid].to_dict() for pid in sorted(result.cards)],
        "accounts": [result.accounts[aid].to_dict() for aid in sorted(result.accounts)],
        "invalid_records": [str(record) for record in dataset.invalid],
        "unknown_titles": result.unknown_titles,
        "unmatched_activities": asdict(result.unmatched_activities),
        "machine_email": {name: getattr(result.machine_email, name)
                          for name in ("total", "by_reason", "people", "examples")},
    }
    text = json.dumps(document, indent=1, default=_json_default, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
        return
    _write(out, text)
    counts = ", ".join(f"{tier}: {n}" for tier, n in result.tier_counts().items())
    _err.print(f"wrote {len(result.cards)} scorecards to {escape(str(out))} ({escape(counts)})")


def explain(
    playbook: Path | None = typer.Option(None, "--playbook", help=PLAYBOOK_HELP + " With --data."),
    data: Path | None = typer.Option(None, "--data", help="Dataset JSON file: explain a score computed now."),
    person: str | None = typer.Option(None, "--person", help="With --data: the person's email (or id)."),
    at: str | None = typer.Option(None, "--at", help="With --data: score as of this ISO time."),
    email: str | None = typer.Option(
        None, "--email", help="Explain a live lead from the store: the person with this email."),
    crm_id: str | None = typer.Option(
        None, "--crm-id", help="Explain a live lead from the store: a Salesforce Lead/Contact or HubSpot "
                               "contact id (picks one when several people share an email)."),
    store_url: str | None = typer.Option(
        None, "--store-url", help="With --email/--crm-id: the state store (default: LEADLOOP_STORE_URL, "
                                  "else sqlite:///.leadloop/state.db)."),
) -> None:
    """Explain one person's score: from a dataset file (--playbook --data --person), every signed
    reason of a score computed now; or a live lead from the store (--email or --crm-id), what the CRMs
    got (tier, scores, the reason lines), the latest score and what changed, and the routing."""
    live = email is not None or crm_id is not None
    if live and (playbook or data or person or at):
        fail("explain reads either a dataset file (--playbook, --data, --person, --at) or the store "
             "(--email or --crm-id, --store-url), not both")
    if live:
        _explain_live(email, crm_id, store_url)
        return
    if store_url:
        fail("--store-url goes with --email or --crm-id (a live lead from the store)")
    if playbook is None or data is None or person is None:
        fail("explain needs --email EMAIL (or --crm-id ID) for a lead in the store, or --playbook FILE "
             "--data DATASET.json --person EMAIL for a dataset file")
    _explain_dataset(playbook, data, person, at)


def _explain_dataset(playbook: Path, data: Path, person: str, at: str | None) -> None:
    from leadloop.scoring.engine import score_dataset

    model = read_playbook(playbook)
    dataset, reference = read_dataset(data)
    wanted = person.strip().lower()
    match = next((p for p in dataset.people if (p.email or "") == wanted or p.id.lower() == wanted), None)
    if match is None:
        fail(f"no person with email or id {person!r} in {data}")
    now = as_of(at, reference)
    result = score_dataset(model, dataset, now)
    card = result.cards[match.id]
    print_card(Console(), match, card, result)


def _explain_live(email: str | None, crm_id: str | None, store_url: str | None) -> None:
    from leadloop.cli.explain import ExplainError, explain_live, print_explanation

    try:
        found = explain_live(email=email, crm_id=crm_id, store_url=store_url)
    except ExplainError as error:
        fail(str(error), error.lines)
    # soft_wrap: a reason line stays one line however narrow the terminal, as the CRM field holds it
    print_explanation(Console(soft_wrap=True, highlight=False), found)


def _write(out: Path, text: str) -> None:
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as error:
        fail(f"cannot write {out}: {error.strerror or error}")


def print_card(console: Console, person, card, result) -> None:
    """One scorecard, readable in a terminal."""
    title = f"{person.name}" + (f", {person.title}" if person.title else "")
    console.print(f"[bold]{escape(title)}[/bold] <{escape(person.email or person.id)}>")
    facts = [
        ("Tier", card.tier + (f" (grade {card.grade})" if card.grade else "")),
        ("Lead score", f"{card.score:g}"),
        ("Fit", f"{card.fit:g} (contact {card.contact_fit:g}, account {card.account_fit:g})"),
        ("Intent", f"{card.intent:g} (account intent {card.account_intent:g})"),
        ("Profile", card.profile or "none applies"),
        ("Role", f"{card.role} / {card.seniority}"),
        ("Stage", card.stage or "—"),
    ]
    if card.escalation:
        facts.append(("Escalation", f"{card.escalation.rule} (SLA {card.escalation.sla})"))
    if card.disqualified:
        facts.append(("Disqualified", card.disqualified))
    facts.append(("Model", f"{card.model_version}, as of {card.scored_at:%Y-%m-%d %H:%M} UTC"))
    for label, value in facts:
        console.print(f"  {label:<13} {escape(value)}")
    table = Table(show_header=True, header_style="bold", expand=False)
    table.add_column("Kind")
    table.add_column("Reason")
    table.add_column("Why", style="dim")
    for reason in card.reasons:
        table.add_row(reason.kind.value, escape(reason.text), escape(reason.why or ""))
    console.print(table)
