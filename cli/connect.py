"""`leadloop connect`: save the CRM connection as a Prefect block that deployments name.

From a connection file (`--connection-file`), from the LEADLOOP_ environment (`--from-env`), or by
asking (secrets without echo). The block holds the Salesforce and HubSpot settings with their
secrets, the CA certificate (its PEM, so a worker elsewhere needs no file) and the store URL as a
secret; a deployment then says `connection: NAME` and its runs' parameters hold only that name.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import SecretStr, ValidationError
from rich.markup import escape

from leadloop.cli.output import console
from leadloop.cli.run import fail, quiet_prefect

if TYPE_CHECKING:
    from leadloop.flows.blocks import LeadloopConnection

# a Prefect block's name (flows/options.py holds the same; importing it here would import Prefect)
BLOCK_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


def _problems(error: ValidationError, where: str) -> str:
    """The fields and what is wrong with them, never the values (they may be secrets)."""
    lines = [f"  {'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
             f"{e['msg'].removeprefix('Value error, ')}" for e in error.errors()]
    return f"{where} is not usable:\n" + "\n".join(lines)


def _ask(text: str, *, secret: bool = False, default: str | None = None) -> str | None:
    answer = typer.prompt(text, default=default if default is not None else "", hide_input=secret,
                          show_default=default is not None)
    return answer.strip() or None


def _asked() -> dict[str, Any]:
    """The connection's parts, asked one by one; secrets are typed without echo."""
    crms = (_ask("CRMs to connect: salesforce, hubspot or both", default="both") or "both").lower()
    if crms not in ("salesforce", "hubspot", "both"):
        raise fail(f"unknown answer {crms!r}: salesforce, hubspot or both")
    parts: dict[str, Any] = {}
    if crms in ("salesforce", "both"):
        salesforce: dict[str, Any] = {"instance_url": _ask("Salesforce instance URL (https://…my.salesforce.com)")}
        salesforce["username"] = _ask("Salesforce username")
        way = (_ask("Salesforce sign-in: password or jwt (a connected app's key)", default="password")
               or "password").lower()
        if way == "jwt":
            salesforce["consumer_key"] = _ask("Connected app consumer key")
            salesforce["private_key_file"] = _ask("Private key file (its path on the worker)")
        else:
            salesforce["password"] = _ask("Salesforce password", secret=True)
            salesforce["security_token"] = _ask("Salesforce security token (empty if not needed)",
                                                secret=True)
        parts["salesforce"] = {k: v for k, v in salesforce.items() if v is not None}
    if crms in ("hubspot", "both"):
        hubspot = {"access_token": _ask("HubSpot private app access token", secret=True),
                   "host": _ask("HubSpot API host", default="https://api.hubapi.com")}
        parts["hubspot"] = {k: v for k, v in hubspot.items() if v is not None}
    parts["ca_cert"] = _ask("CA certificate file (empty for the public CRMs)")
    parts["store_url"] = _ask("State store URL (empty: the worker's LEADLOOP_STORE_URL, else SQLite)",
                              secret=True)
    return parts


def _from_parts(parts: dict[str, Any]) -> LeadloopConnection:
    from leadloop.flows.blocks import PEM_BEGIN, LeadloopConnection

    ca = parts.get("ca_cert")
    if ca is not None:
        path = Path(ca).expanduser()
        if not path.is_file():
            raise fail(f"CA file {path} does not exist")
        text = path.read_text(encoding="utf-8", errors="replace")
        if PEM_BEGIN not in text:
            raise fail(f"{path} holds no PEM certificate ({PEM_BEGIN} …)")
        parts["ca_cert"] = text
    if parts.get("store_url"):
        parts["store_url"] = SecretStr(parts["store_url"])
    try:
        return LeadloopConnection(**parts)
    except ValidationError as error:
        raise fail(_problems(error, "the answers")) from None


def _block(connection_file: Path | None, from_env: bool, store_url: str | None) -> LeadloopConnection:
    from leadloop.connectors.settings import ConnectionFileError, load_connection
    from leadloop.flows.blocks import LeadloopConnection

    if connection_file is None and not from_env:
        if not typer.get_text_stream("stdin").isatty():
            raise fail("no terminal to ask the settings in",
                       "give --connection-file FILE or --from-env (the LEADLOOP_ variables)")
        block = _from_parts(_asked())
        if store_url:
            block.store_url = SecretStr(store_url)
        return block
    try:
        settings = load_connection(connection_file)
    except ConnectionFileError as error:
        raise fail(str(error)) from None
    return LeadloopConnection.from_settings(settings, store_url=store_url)


def connect(
    name: Annotated[str, typer.Option("--name", help="The block's name, which deployments give as "
                                                     "`connection` (lowercase letters, digits, dashes).")]
        = "default",
    connection_file: Annotated[Path | None, typer.Option(
        "--connection-file", help="Read the settings from this connection file (JSON).")] = None,
    from_env: Annotated[bool, typer.Option(
        "--from-env", help="Read the settings from the LEADLOOP_ environment variables.")] = False,
    store_url: Annotated[str | None, typer.Option(
        "--store-url", help="State store URL to keep in the block, as a secret (it may hold a password).")]
        = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a block of that name.")] = False,
) -> None:
    """Save the CRM connection as a Prefect block that deployments name (`connection: NAME`).

    From --connection-file, --from-env, or (without either) by asking; secrets are kept as secrets.
    """
    quiet_prefect(False)
    if not BLOCK_NAME.match(name):
        raise fail(f"{name!r} cannot name a block",
                   "use lowercase letters, digits and dashes, e.g. production")
    if connection_file is not None and from_env:
        raise fail("give --connection-file or --from-env, not both")
    block = _block(connection_file, from_env, store_url)

    import httpx

    from leadloop.flows.blocks import server_description

    where = server_description()
    try:
        block.save(name, overwrite=overwrite)
    except ValueError as error:
        if "already in use" not in str(error):
            raise
        raise fail(f"a leadloop connection named {name!r} already exists on {where}",
                   "add --overwrite to replace it, or choose another --name") from None
    except httpx.HTTPError as error:
        raise fail(f"cannot save the block: {where} does not answer ({type(error).__name__})",
                   "start it (make serve) or set PREFECT_API_URL", code=1) from None
    console.print(f"saved leadloop connection [bold]{escape(name)}[/bold] on {escape(where)}",
                  highlight=False)
    for part, value in block.safe_summary().items():
        if value is not None:
            console.print(f"  {part:<11} {escape(value)}", highlight=False)
    console.print(f"Deployments use it with `connection: {name}` in their options (deployments/prefect.yaml "
                  f"or the UI's run form); `leadloop sync --connection {name}` runs with it here.",
                  highlight=False)


def register(app: typer.Typer) -> None:
    """Add this command to the app."""
    app.command("connect")(connect)
