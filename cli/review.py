"""`leadloop review`: the monthly model review (flows/model_review.py) from a terminal.

The review reads the store only, what the syncs pulled: it scores everyone as of `--lookback-days`
ago with what was known then and compares with the opportunities created since, for the live
playbook and a candidate. The terminal gets one screen of headline figures; the whole review is the
HTML report and the flow run's artifact. Bad input (a store nothing was synced into, a playbook that
cannot be read, a reports folder that cannot be written) is one message with exit code 2, found
before the flow run starts, like `sync` and `rescore` (cli/run.py).
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from leadloop.cli.output import console, err
from leadloop.cli.run import (
    BlockOpt,
    ConnectionOpt,
    PlaybookOpt,
    StoreOpt,
    VerboseOpt,
    command_options,
    explain_failure,
    fail,
    quiet_prefect,
)

if TYPE_CHECKING:
    from leadloop.flows.options import ModelReviewOptions
    from leadloop.flows.reports import HeadlineRow
    from leadloop.scoring.review import ModelReview

NOTHING_SYNCED = ("run `leadloop sync` first, or point --store-url (or LEADLOOP_STORE_URL, or the "
                  "connection block) at the store the syncs write to")
# What a sync's hint says about picking up after a failure does not apply: a review writes nothing
# to the CRMs and changes no synced record (it adds its run record and report), so it is run again.
RUN_AGAIN = "the review changed nothing in the CRMs or the synced records: run it again once that is fixed"


def review_options(**params: Any) -> ModelReviewOptions:
    """The flow's options from the command's, made as a sync's are (`run.command_options`)."""
    from leadloop.flows.options import ModelReviewOptions

    return command_options(ModelReviewOptions, **params)


def _unwritable(folder: Path) -> str | None:
    """Why the report cannot be written into `folder` (created when missing), or None."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        return f"{existing} is a file, not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable"
    return None


def _synced_store(options: ModelReviewOptions, store_url: str) -> None:
    """The store must hold what a sync pulled: a review of an empty store would report nobody. A
    SQLite file that does not exist is not created (opening a store creates it)."""
    from leadloop.connectors.mapping import MappingError, load_mapping
    from leadloop.playbook.model import PlaybookError
    from leadloop.store.db import open_store, parse_store_url, redact
    from leadloop.store.facade import StoreError
    from leadloop.sync.live import choose_playbook

    try:
        parsed = parse_store_url(store_url)
    except StoreError as error:
        raise fail(str(error), "check --store-url (or LEADLOOP_STORE_URL)") from None
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_file():
            raise fail(f"there is no store at {path}: nothing has been synced there yet", NOTHING_SYNCED)
    try:
        store = open_store(store_url)
    except StoreError as error:
        raise fail(str(error), "check --store-url (or LEADLOOP_STORE_URL)") from None
    with store:
        if not store.cursors():
            raise fail(f"nothing has been synced into the store at {redact(store_url)} yet", NOTHING_SYNCED)
        try:  # the playbook the review calls current: the live one, unless --playbook names another
            load_mapping(choose_playbook(store, options.playbook, kind="model_review").playbook.mapping)
        except (PlaybookError, MappingError) as error:
            raise fail(str(error)) from None


def _check_inputs(options: ModelReviewOptions) -> str:
    """Read what the review reads before the flow run starts: the connection settings, both
    playbooks, the reports folder, the store. Returns the store's URL."""
    from leadloop.connectors.mapping import MappingError, load_mapping
    from leadloop.connectors.settings import ConnectionFileError
    from leadloop.flows.blocks import connection_settings
    from leadloop.playbook.load import load_playbook
    from leadloop.playbook.model import PlaybookError

    try:
        settings = connection_settings(options)
        if options.playbook is not None:
            load_mapping(load_playbook(options.playbook).mapping)
    except (ConnectionFileError, PlaybookError, MappingError) as error:
        raise fail(str(error)) from None
    try:
        if options.candidate_playbook is not None:
            load_playbook(options.candidate_playbook)
    except PlaybookError as error:
        raise fail(f"the candidate playbook {error}") from None
    if problem := _unwritable(Path(options.reports_dir)):
        raise fail(f"cannot write the report into {options.reports_dir}: {problem}",
                   "give --reports-dir a folder you can write to")
    store_url = options.store_url or settings.store_url
    _synced_store(options, store_url)
    return store_url


def explain_review_failure(error: Exception, connection: str) -> tuple[str, str, int] | None:
    """`explain_failure`'s message and exit code for an error that stopped the review (None: one
    leadloop does not know). A review writes nothing, so nothing was written when it failed."""
    explained = explain_failure(error, wrote=False, connection=connection)
    if explained is None or explained[2] == 2:
        return explained
    message, _, code = explained
    return message, RUN_AGAIN, code


def _connection_named(options: ModelReviewOptions) -> str:
    return (f"the connection block {options.connection!r}" if options.connection
            else f"connection file {options.connection_file}" if options.connection_file
            else "the LEADLOOP_ environment variables")


def _run_review(options: ModelReviewOptions, *, verbose: bool) -> tuple[dict[str, ModelReview], str]:
    """Run the flow; its reviews and its flow run's id (the store's run id too). A known failure is
    reported in one screen with its exit code (the traceback too with --verbose)."""
    from leadloop.cli.local_server import start_local_server
    from leadloop.flows.model_review import model_review

    start_local_server()
    playbooks = "the live playbook" if options.playbook is None else options.playbook
    if options.candidate_playbook:
        playbooks += f" and {options.candidate_playbook}"
    try:
        with err.status(f"reviewing {playbooks} as of {options.lookback_days} days ago …"):
            state = model_review(options, return_state=True)
            reviews: dict[str, ModelReview] = state.result()
    except Exception as error:
        explained = explain_review_failure(error, _connection_named(options))
        if explained is None:
            raise
        if verbose:
            err.print_exception()
        raise fail(*explained) from None
    return reviews, str(state.state_details.flow_run_id)


def _report_path(store_url: str, run_id: str) -> str:
    """Where the run wrote its HTML report: its run record says."""
    from leadloop.store.db import open_store

    with open_store(store_url) as store:
        run = store.get_run(run_id)
    return str(run.counts.get("report", "")) if run is not None else ""


def _artifact_note(run_id: str) -> str:
    """Where the run's artifact is shown: on the Prefect server's page of the flow run, or in the
    local database of Prefect's temporary server, which `prefect server start` serves."""
    from prefect.settings import PREFECT_UI_URL

    ui = PREFECT_UI_URL.value()
    if ui:
        return f"model-review, at {ui}/runs/flow-run/{run_id}"
    return f"model-review on flow run {run_id} (`prefect server start` shows it)"


def _caveat(reviews: dict[str, ModelReview], lookback_days: int) -> str | None:
    """Why the figures say little, when they do."""
    if all(r.people == 0 for r in reviews.values()):
        return f"Nobody in the store existed {lookback_days} days ago: try a shorter --lookback-days."
    if all(r.auc is None for r in reviews.values()):
        return ("No AUC: nobody (or everybody) converted since the cut-off, so there is nothing to rank "
                "against; a longer --lookback-days gives outcomes more time.")
    return None


def _summary_table(reviews: dict[str, ModelReview], lookback_days: int, rows: list[HeadlineRow]) -> Table:
    """The headline figures, then conversion by tier, one column per playbook (a tier only one
    playbook has is `-` in the other's column)."""
    table = Table(title=f"leadloop review: scored as of {lookback_days} days ago, outcome = an opportunity "
                        "created since", title_justify="left")
    table.add_column("")
    for name in reviews:
        table.add_column(name, justify="right")
    figures = [row for row in rows if row.kind == "figure"]
    for row in figures:
        table.add_row(row.label, *row.cells, end_section=row is figures[-1])
    table.add_row("[bold]Conversion by tier[/bold]", *("" for _ in reviews))
    for row in rows:
        if row.kind == "tier":
            table.add_row(row.label, *row.cells)
    return table


def print_review(reviews: dict[str, ModelReview], lookback_days: int, report: str, artifact: str) -> None:
    """The headline figures side by side (AUC against the ceiling, the top tier's precision and
    recall, the calibration error), conversion by tier, any tier that converts above a better one,
    and where the report and a learned candidate playbook are."""
    from leadloop.flows.reports import headline, inversion_line, learned_candidates, red_flags

    console.print(_summary_table(reviews, lookback_days, headline(reviews)))
    for name, inversions in red_flags(reviews):
        for inversion in inversions:
            console.print(f"[bold red]red flag[/bold red]  {escape(name)}: "
                          f"{escape(inversion_line(inversion))}", highlight=False)
    if caveat := _caveat(reviews, lookback_days):
        console.print(caveat, highlight=False)
    # never broken into lines: a path or link is copied whole
    for _, learned in learned_candidates(reviews):
        where = learned.yaml_path or "not written"
        console.print(f"[bold]candidate[/bold] {escape(where)} ({len(learned.changes)} weights changed, "
                      f"{learned.kept} kept; never activated automatically)", highlight=False, soft_wrap=True)
    console.print(f"[bold]report[/bold]    {escape(report)}", highlight=False, soft_wrap=True)
    console.print(f"[bold]artifact[/bold]  {escape(artifact)}", highlight=False, soft_wrap=True)


def review(
    connection_file: ConnectionOpt = None,
    connection: BlockOpt = None,
    playbook: PlaybookOpt = None,
    candidate_playbook: Annotated[str | None, typer.Option(
        "--candidate-playbook", help="A playbook to compare with the current one before rollout: a shipped "
                                     "name or a YAML file.")] = None,
    lookback_days: Annotated[int, typer.Option(
        min=7, help="Score as of this many days ago, then see who converted since.")] = 120,
    store_url: StoreOpt = None,
    reports_dir: Annotated[str, typer.Option(help="Where the HTML report is written.")] = "reports",
    at: Annotated[datetime | None, typer.Option(
        "--at", help="The review's now (ISO time; default now): scored as of --lookback-days before it.")
    ] = None,
    people_per_partition: Annotated[int, typer.Option(
        min=100, help="Above this many people, score in account partitions of about this size.")] = 50_000,
    verbose: VerboseOpt = False,
) -> None:
    """The model review: how well the scores of N days ago predicted the opportunities since, for the
    live playbook and a candidate; writes an HTML report."""
    quiet_prefect(verbose)
    if connection and connection_file:
        raise fail("give --connection (a block) or --connection-file, not both")
    options = review_options(
        connection_file=connection_file, connection=connection, playbook=playbook,
        candidate_playbook=candidate_playbook, lookback_days=lookback_days, store_url=store_url,
        reports_dir=reports_dir, at=at, people_per_partition=people_per_partition,
    )
    store = _check_inputs(options)
    reviews, run_id = _run_review(options, verbose=verbose)
    print_review(reviews, options.lookback_days, _report_path(store, run_id), _artifact_note(run_id))


def register(app: typer.Typer) -> None:
    """Add `review` to the app."""
    app.command()(review)
