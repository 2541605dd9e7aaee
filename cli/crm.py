"""`leadloop crm check|setup`: is each configured CRM ready for leadloop, and create what it owns.

`check` prints one line per thing verified (credentials, objects, every mapped read field, every owned
field and the task key) with how to fix what is missing, and exits 1 when anything is. `setup`
creates the missing owned fields (Salesforce custom fields through the Tooling API, HubSpot
properties in the group `leadloop`) and prints what it did. Bad input (connection file, playbook)
exits 2 with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from leadloop.connectors.checks import CheckItem
from leadloop.connectors.hubspot.setup import HubSpotSetup
from leadloop.connectors.mapping import Mapping, MappingError, load_mapping
from leadloop.connectors.salesforce.setup import SalesforceSetup
from leadloop.connectors.settings import ConnectionFileError, ConnectionSettings, load_connection
from leadloop.crm.ports import CrmSetup

crm_app = typer.Typer(help="Check that the CRMs have what leadloop reads and owns; create its fields.",
                      no_args_is_help=True)

ConnectionFile = Annotated[Path | None, typer.Option(
    "--connection-file", help="Connection file (JSON); LEADLOOP_ environment variables otherwise.")]
PlaybookFile = Annotated[Path | None, typer.Option(
    "--playbook", help="Playbook whose `mapping:` section renames or adds CRM fields.")]


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(message, err=True)
    return typer.Exit(code)


def _inputs(connection_file: Path | None, playbook: Path | None) -> tuple[ConnectionSettings, Mapping]:
    try:
        settings = load_connection(connection_file)
        override: dict[str, Any] | None = None
        if playbook is not None:
            from leadloop.playbook.load import load_playbook
            from leadloop.playbook.model import PlaybookError

            try:
                override = load_playbook(playbook).mapping
            except PlaybookError as error:
                raise _fail(str(error), 2) from None
        mapping = load_mapping(override)
    except (ConnectionFileError, MappingError) as error:
        raise _fail(str(error), 2) from None
    return settings, mapping


# Each connector's setup and check (the CrmSetup port), by the name of its section in the settings.
SETUPS: dict[str, Callable[..., CrmSetup]] = {"salesforce": SalesforceSetup, "hubspot": HubSpotSetup}


def _configured(settings: ConnectionSettings) -> list[str]:
    return [crm for crm in SETUPS if getattr(settings, crm) is not None]


def _run(crm: str, action: Callable[[], Any]) -> Any:
    try:
        return action()
    except Exception as error:  # a CRM that cannot be reached is reported, not a traceback
        raise _fail(f"{crm}: {type(error).__name__}: {error}", 1) from None


@crm_app.command("check")
def check_command(connection_file: ConnectionFile = None, playbook: PlaybookFile = None) -> None:
    """Verify credentials, objects, and every mapped and owned field; exit 1 when anything is missing."""
    settings, mapping = _inputs(connection_file, playbook)
    items: list[CheckItem] = []
    for crm in _configured(settings):
        items += _run(crm, SETUPS[crm](settings, mapping).check)
    table = Table("CRM", "Check", "OK", "How to fix", show_lines=False)
    for item in items:
        table.add_row(item.crm, item.what, "yes" if item.ok else "[red]MISSING[/red]", item.fix or "")
    console = Console(width=200)
    console.print(table)
    missing = [i for i in items if not i.ok]
    console.print(f"{len(items) - len(missing)} of {len(items)} checks pass"
                  + (f"; {len(missing)} missing" if missing else ""))
    if missing:
        raise typer.Exit(1)


@crm_app.command("setup")
def setup_command(
    connection_file: ConnectionFile = None,
    playbook: PlaybookFile = None,
    metadata_dir: Annotated[Path | None, typer.Option(
        "--metadata-dir", help="Also write a deployable Salesforce metadata folder here.")] = None,
) -> None:
    """Create the owned fields each configured CRM lacks, and print what was done."""
    settings, mapping = _inputs(connection_file, playbook)
    for crm in _configured(settings):
        extra = {"metadata_dir": metadata_dir} if crm == "salesforce" else {}
        actions = _run(crm, SETUPS[crm](settings, mapping, **extra).setup)
        for line in actions or [f"nothing to do: every owned field exists in {crm}"]:
            typer.echo(f"{crm}: {line}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.add_typer(crm_app, name="crm")
