"""`leadloop sync`, `leadloop rescore` and `leadloop demo`: the flows from a terminal.

Prefect runs the flows (its local mode starts a temporary server on first use); its logging stays
at WARNING unless `--verbose`. Bad input (a missing connection file, a broken playbook) is reported
in one clear message with exit code 2, never a traceback.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import typer
from rich.markup import escape

from leadloop.cli.local_server import start_local_server
from leadloop.cli.output import console, err, exit_code, print_summary, progress_bars
from leadloop.playbooks import DEFAULT as DEFAULT_PLAYBOOK

if TYPE_CHECKING:
    from leadloop.flows.options import SyncOptions
    from leadloop.flows.steps import SyncSummary

OptionsT = TypeVar("OptionsT")
# whether the command was given --verbose (quiet_prefect is told first): a failure then shows its traceback
_verbose = False


def quiet_prefect(verbose: bool) -> None:
    """Set before Prefect is imported: its own logs only when asked. Without --verbose that includes
    Prefect's report of a failed task or flow run (a traceback each): the command says what failed
    itself, in one screen (`_run_flow`)."""
    global _verbose
    _verbose = verbose
    level = "INFO" if verbose else "WARNING"
    runs = "INFO" if verbose else "CRITICAL"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", level)
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL", runs)
    os.environ.setdefault("PREFECT_LOGGING_LOGGERS_PREFECT_TASK_RUNS_LEVEL", runs)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    # Prefect's local mode starts a temporary server on first use; on a busy 2-core machine that can
    # take longer than Prefect's default 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "leadloop")
    import logging

    # per-record warnings (a quarantined bad email, a retried call) are counted in the summary;
    # --verbose shows each one
    logging.getLogger("leadloop").setLevel(logging.INFO if verbose else logging.ERROR)


def fail(message: str, hint: str | None = None, code: int = 2) -> typer.Exit:
    """Print `error: message` (and `hint: …`) on stderr; the exit to raise. Code 2, bad input or
    configuration, unless told otherwise (1: the run failed)."""
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    if hint:
        err.print(f"hint: {escape(hint)}", highlight=False)
    return typer.Exit(code)


def flow_options(kind: Literal["sync", "rescore"], **params: Any) -> SyncOptions:
    """The flow's options from the command's (`command_options`)."""
    from leadloop.flows.options import RescoreOptions, SyncOptions

    return command_options(SyncOptions if kind == "sync" else RescoreOptions, **params)


def command_options(options: type[OptionsT], **params: Any) -> OptionsT:
    """A flow's options from a command's. `--at` without a time zone is taken as UTC, and said so:
    scoring compares it with the CRMs' UTC times. A password in `--store-url` moves to
    LEADLOOP_STORE_PASSWORD, where the flow (in this process) finds it: Prefect keeps a run's
    parameters and shows them in its UI and API, so the URL it gets has none. A value the options
    refuse is bad input, named as the command line names it."""
    from pydantic import ValidationError

    from leadloop.store.db import STORE_PASSWORD_ENV, split_password

    at = params.get("at")
    if isinstance(at, datetime) and at.tzinfo is None:
        params["at"] = at = at.replace(tzinfo=UTC)
        err.print(f"--at has no time zone: taken as UTC ({at.isoformat()})", highlight=False)
    if params.get("store_url"):
        params["store_url"], password = split_password(str(params["store_url"]))
        if password is not None:
            os.environ[STORE_PASSWORD_ENV] = password
    try:
        return options(**params)
    except ValidationError as error:
        raise fail("; ".join(_refused(e["loc"], e["msg"]) for e in error.errors())) from None


def _refused(location: tuple[int | str, ...], message: str) -> str:
    """A refused option as the command line names it: `--lookback-days: …`."""
    message = message.removeprefix("Value error, ")
    option = "-".join(str(part) for part in location).replace("_", "-")
    return f"--{option}: {message}" if option else message


def _check_inputs(options: SyncOptions) -> None:
    """Read what the run reads before its first CRM call: the connection settings, the playbook and
    its mapping, the store (opened, migrated if need be, closed). A problem there is bad input,
    reported at once with exit 2, not after a flow run started and the CRMs were called."""
    from leadloop.connectors.mapping import MappingError, load_mapping
    from leadloop.connectors.settings import ConnectionFileError
    from leadloop.flows.blocks import connection_settings
    from leadloop.flows.options import RescoreOptions
    from leadloop.playbook.load import load_playbook
    from leadloop.playbook.model import PlaybookError
    from leadloop.store.db import open_store
    from leadloop.store.facade import StoreError
    from leadloop.sync.live import PlaybookNotLive, choose_playbook

    try:
        settings = connection_settings(options)  # the named block's, the file's or the environment's
        if options.playbook is not None:  # a file that cannot be read says so before the store opens
            load_mapping(load_playbook(options.playbook).mapping)
    except (ConnectionFileError, PlaybookError, MappingError) as error:
        raise fail(str(error)) from None
    try:
        store = open_store(options.store_url or settings.store_url)
    except StoreError as error:  # SchemaError arrives as a StoreError too
        raise fail(str(error), "check --store-url (or LEADLOOP_STORE_URL); leadloop left the store as it "
                               "was: a damaged file can be moved aside to start afresh") from None
    kind = "rescore" if isinstance(options, RescoreOptions) else "hourly_sync"
    with store:
        try:  # which playbook the run would score with: the live one, unless it names another
            choice = choose_playbook(store, options.playbook, kind=kind,
                                     activate=getattr(options, "activate", False))
            load_mapping(choice.playbook.mapping)
        except (PlaybookError, MappingError, PlaybookNotLive) as error:
            raise fail(str(error)) from None


def explain_failure(error: Exception, *, wrote: bool, connection: str) -> tuple[str, str, int] | None:
    """What to tell the user about an error that stopped a run: (message, what to do, exit code), or
    None for an error leadloop does not know (its traceback says more). A CRM refusing the
    credentials is configuration (2) while nothing has been written yet; once something has, the
    run failed half-way (1), like any other failure. No message holds a secret: the connectors'
    errors never do."""
    from leadloop.connectors.hubspot.retry import HubSpotError
    from leadloop.connectors.mapping import CrmNotSetUp, MappingError
    from leadloop.connectors.salesforce.bulk import BulkJobError
    from leadloop.connectors.salesforce.client import AuthenticationError
    from leadloop.connectors.salesforce.retry import SalesforceCallError
    from leadloop.connectors.settings import ConnectionFileError
    from leadloop.crm.dataset import DatasetError
    from leadloop.playbook.model import PlaybookError
    from leadloop.store.facade import StoreError, StoreLocked
    from leadloop.sync.live import PlaybookNotLive

    again = "the next run picks up where this one stopped (what was written is in the ledger)"
    credentials, then = (1, f"; {again}") if wrote else (2, "")
    if isinstance(error, ConnectionFileError | PlaybookError | MappingError | DatasetError | PlaybookNotLive):
        return str(error), "correct it and run again", 2
    if isinstance(error, CrmNotSetUp):
        return (str(error), "create leadloop's fields once with `leadloop crm setup` and the same "
                f"connection (`leadloop crm check` lists what is missing), then run again{then}", credentials)
    if isinstance(error, AuthenticationError):
        return str(error), f"correct the salesforce section of {connection}{then}", credentials
    if isinstance(error, HubSpotError) and error.status in (401, 403):
        answer = " ".join(str(part) for part in (error.status, error.category) if part)
        if error.status == 401:
            return (f"HubSpot rejected the access token ({answer} on {error.endpoint})",
                    f"give a valid private app token as hubspot.access_token in {connection}{then}",
                    credentials)
        return (f"HubSpot refused {error.endpoint} ({answer}): {error.message}",
                f"the private app lacks a scope: see docs/least-privilege.md{then}", credentials)
    if isinstance(error, HubSpotError | SalesforceCallError | BulkJobError):
        crm = "HubSpot" if isinstance(error, HubSpotError) else "Salesforce"
        if getattr(error, "status", "") is None:  # no answer at all, after the retries
            hint = f"no answer from {crm}: check the network and the {crm.lower()} settings in {connection}"
            return f"{crm} call failed: {error}", f"{hint}; {again}", 1
        return f"{crm} call failed: {error}", again, 1
    if isinstance(error, StoreLocked):  # this run never started: nothing to pick up after it
        return str(error), "run it again once that run has finished", 1
    if isinstance(error, StoreError):
        return str(error), again, 1
    return None


def _run_flow(kind: Literal["sync", "rescore"], **params: object) -> SyncSummary:
    """Check the inputs, run the flow with a progress display, and report a known failure in one
    screen with its exit code (the traceback too with --verbose)."""
    if params.get("connection") and params.get("connection_file"):
        raise fail("give --connection (a block) or --connection-file, not both")
    options = flow_options(kind, **params)
    _check_inputs(options)
    start_local_server()
    bars = progress_bars()
    from prefect.exceptions import TerminationSignal

    try:
        with bars:
            if kind == "sync":
                from leadloop.flows.hourly_sync import hourly_sync

                return hourly_sync(options)
            from leadloop.flows.rescore import rescore

            return rescore(options)  # type: ignore[arg-type]
    except (KeyboardInterrupt, TerminationSignal) as stop:
        raise _stopped(stop) from None
    except Exception as error:
        # sync.pipeline reports a `write …` step only once a batch went out
        wrote = any(step.startswith("write ") for step in bars.tasks)
        connection = (f"the connection block {options.connection!r}" if options.connection
                      else f"connection file {options.connection_file}" if options.connection_file
                      else "the LEADLOOP_ environment variables")
        explained = explain_failure(error, wrote=wrote, connection=connection)
        if explained is None:
            raise
        if _verbose:
            err.print_exception()
        raise fail(*explained) from None


def _stopped(stop: BaseException) -> typer.Exit:
    """The exit for a run stopped by Ctrl-C or SIGTERM: the shell's code for that signal (130, 143)."""
    signum = getattr(stop, "signal", signal.SIGINT)
    return fail(f"{'terminated' if signum == signal.SIGTERM else 'interrupted'}: the run is recorded as "
                "cancelled; what it pulled and wrote is kept",
                "the next run picks up where this one stopped", code=128 + signum)


def _summary_even_if_failed(kind: Literal["sync", "rescore"], **params: object) -> SyncSummary:
    """The run's summary, also when its writes failed for a whole object or CRM (the flow run is
    then Failed, and the exit code says so after the summary is shown)."""
    from leadloop.flows.steps import WritesFailed

    try:
        return _run_flow(kind, **params)
    except WritesFailed as failed:
        return failed.summary


ConnectionOpt = Annotated[str | None, typer.Option("--connection-file", help="Connection file (JSON).")]
BlockOpt = Annotated[str | None, typer.Option(
    "--connection", help="A connection block's name (`leadloop connect` saves one), instead of a file.")]
PlaybookOpt = Annotated[str | None, typer.Option(
    "--playbook", help="Playbook: a shipped name (semiconductor, industrial) or a YAML file; default: the "
                       f"live one (a store's first run makes {DEFAULT_PLAYBOOK!r} live)")]
StoreOpt = Annotated[str | None, typer.Option("--store-url", help="State store URL (default SQLite).")]
AtOpt = Annotated[datetime | None, typer.Option("--at", help="Score as of this ISO time (default now).")]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Compute everything, write nothing.")]
VerboseOpt = Annotated[bool, typer.Option("--verbose", "-v", help="Show Prefect's and leadloop's logs.")]


def sync(
    connection_file: ConnectionOpt = None,
    connection: BlockOpt = None,
    playbook: PlaybookOpt = None,
    store_url: StoreOpt = None,
    at: AtOpt = None,
    dry_run: DryRunOpt = False,
    min_change: Annotated[float, typer.Option(help="Rewrite a decaying score only past this.")] = 5.0,
    everyone: Annotated[bool, typer.Option(
        "--everyone", help="Rescore everyone, not only the people whose records changed or whose score "
                           "came due.")] = False,
    verbose: VerboseOpt = False,
) -> None:
    """Run one hourly sync now: pull what changed, rescore who changed or came due, route, write back the
    difference."""
    quiet_prefect(verbose)
    summary = _summary_even_if_failed(
        "sync",
        connection_file=connection_file,
        connection=connection,
        playbook=playbook,
        store_url=store_url,
        at=at,
        dry_run=dry_run,
        min_change=min_change,
        rescore_everyone=everyone,
    )
    print_summary(summary, "leadloop sync" + (" (dry run)" if dry_run else ""))
    raise typer.Exit(exit_code(summary))


def rescore(
    connection_file: ConnectionOpt = None,
    connection: BlockOpt = None,
    playbook: PlaybookOpt = None,
    store_url: StoreOpt = None,
    at: AtOpt = None,
    dry_run: DryRunOpt = False,
    activate: Annotated[bool, typer.Option(
        "--activate", help="Make --playbook the live one (later syncs score with it); without, another "
                           "playbook than the live one is a preview that writes nothing.")] = False,
    scope: Annotated[str, typer.Option(help="all, accounts, emails, profile or segment.")] = "all",
    value: Annotated[list[str] | None, typer.Option("--value", help="Scope values (repeat).")] = None,
    reason: Annotated[str, typer.Option(help="Why (kept with the run record).")] = "",
    verbose: VerboseOpt = False,
) -> None:
    """Rescore stored records for a scope (e.g. after a playbook change); --dry-run shows the changes."""
    quiet_prefect(verbose)
    if scope not in ("all", "accounts", "emails", "profile", "segment"):
        raise fail(f"unknown scope {scope!r}: use all, accounts, emails, profile or segment")
    if scope != "all" and not value:
        raise fail(f"--scope {scope} needs at least one --value")
    summary = _summary_even_if_failed(
        "rescore",
        connection_file=connection_file,
        connection=connection,
        playbook=playbook,
        store_url=store_url,
        at=at,
        dry_run=dry_run,
        activate=activate,
        reason=reason,
        scope={"kind": scope, "values": value or []},
    )
    print_summary(summary, "leadloop rescore" + (" (dry run)" if dry_run else ""))
    raise typer.Exit(exit_code(summary))


def demo(
    size: Annotated[str, typer.Option(help="Sandbox size: tiny, small or medium.")] = "small",
    playbook: Annotated[str, typer.Option(
        "--playbook", help="Playbook: a shipped name (semiconductor, industrial) or a YAML file.")
    ] = DEFAULT_PLAYBOOK,
    workdir: Annotated[str, typer.Option(help="Where the demo keeps its files.")] = ".leadloop/demo",
    verbose: VerboseOpt = False,
) -> None:
    """The whole loop on the embedded sandbox: set-up, full sync, fresh activity, incremental sync."""
    quiet_prefect(verbose)
    from leadloop.cli.demo import run_demo

    if size not in ("tiny", "small", "medium"):
        raise fail(f"unknown size {size!r}: use tiny, small or medium")
    start_local_server()
    from leadloop.cli.demo import DemoError
    from leadloop.connectors.settings import ConnectionFileError
    from leadloop.playbook.model import PlaybookError

    try:
        run_demo(console, size=size, playbook=playbook, workdir=workdir)
    except (DemoError, ConnectionFileError, PlaybookError) as error:
        raise fail(str(error)) from None


def register(app: typer.Typer) -> None:
    """Add the run commands to the app."""
    for command in (sync, rescore, demo):
        app.command()(command)
