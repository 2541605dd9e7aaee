"""`leadloop sandbox serve|export`: run the local CRM sandbox, or write its world as a dataset.

The sandbox's own commands. leadloop's CLI finds them through the `leadloop.commands` entry point,
so no production code imports the sandbox; `python -m sandbox` runs them on their own.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from leadloop.sandbox.files import write_private

DEFAULT_CONNECTION_FILE = Path(".leadloop/sandbox/connection.json")
SIZES = ("tiny", "small", "medium", "large")

sandbox_app = typer.Typer(help="The local Salesforce + HubSpot sandbox (HTTPS, synthetic data, faults).",
                          no_args_is_help=True)


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _check_size(size: str) -> str:
    if size not in SIZES:
        raise _fail(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    return size


@sandbox_app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback unless --allow-remote).")]
        = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: a free one).", min=0, max=65535)] = 8443,
    size: Annotated[str, typer.Option(help="World size: tiny, small, medium or large.")] = "small",
    seed: Annotated[int, typer.Option(help="Seed of the generated world.")] = 7,
    empty: Annotated[bool, typer.Option("--empty", help="Start with empty CRMs.")] = False,
    data_dir: Annotated[Path | None, typer.Option(help="Keep state (and the CA) here across restarts.")]
        = None,
    connection_file: Annotated[Path, typer.Option(help="Where to write the connection file (0600).")]
        = DEFAULT_CONNECTION_FILE,
    allow_remote: Annotated[bool, typer.Option("--allow-remote",
                                               help="Allow listening on a non-loopback address.")] = False,
) -> None:
    """Serve both CRM APIs over HTTPS until stopped (Ctrl-C); writes the connection file when ready."""
    try:
        from leadloop.sandbox.server import SandboxConfigError, start_sandbox
    except ImportError as missing:  # the sandbox's web stack is an extra, not part of every install
        raise _fail(f"the sandbox needs its web stack ({missing.name} is not installed): "
                    "pip install 'leadloop[sandbox]'") from None

    _check_size(size)
    started = time.perf_counter()
    try:
        handle = start_sandbox(size=size, seed=seed, empty=empty, data_dir=data_dir,
                               connection_file=connection_file, host=host, port=port,
                               allow_remote=allow_remote)
    except SandboxConfigError as error:
        raise _fail(str(error)) from None
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    core = handle.core
    world = f"size {core.size}, seed {core.seed_value}" if core.size else "empty"
    typer.echo(f"sandbox ready in {time.perf_counter() - started:.1f}s at {handle.base_url} ({world}); "
               f"connection file {connection_file}, CA {handle.ca_path}")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        handle.stop()
        typer.echo("sandbox stopped" + (f"; state saved in {data_dir}" if data_dir else ""))


@sandbox_app.command("export")
def export(
    out: Annotated[Path, typer.Option(help="Dataset file to write (JSON).")],
    connection_file: Annotated[Path | None, typer.Option(help="Export from this running sandbox.")] = None,
    size: Annotated[str | None, typer.Option(help="Or generate a world of this size in-process.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --size.")] = 7,
) -> None:
    """Write the sandbox world as a canonical dataset (for `leadloop score` and the model review), 0600."""
    if (connection_file is None) == (size is None):
        raise _fail("give either --connection-file (a running sandbox) or --size (generate in-process)")
    if size is not None:
        from leadloop.sandbox.export import world_to_dataset
        from leadloop.sandbox.world import generate_world

        data: Any = world_to_dataset(generate_world(_check_size(size), seed))
        body = json.dumps(data).encode()
    else:
        body = _fetch_export(connection_file)  # type: ignore[arg-type]
        data = json.loads(body)
    write_private(out, body)  # the world's people: personal data, even if synthetic
    typer.echo(f"wrote {out}: {len(data['people'])} people, {len(data['accounts'])} accounts, "
               f"{len(data['activities'])} activities, {len(data['opportunities'])} opportunities")


def _fetch_export(connection_file: Path) -> bytes:
    import requests

    try:
        connection = json.loads(connection_file.read_text())
        admin_url, ca_cert = connection["sandbox_admin_url"], connection["ca_cert"]
    except OSError as error:
        raise _fail(f"cannot read {connection_file}: {error.strerror or error}") from None
    except (ValueError, KeyError, TypeError):
        raise _fail(f"{connection_file} is not a sandbox connection file (needs sandbox_admin_url, ca_cert)"
                    ) from None
    session = requests.Session()
    session.trust_env = False
    try:
        response = session.get(f"{admin_url}/export", verify=ca_cert, timeout=300)
    except requests.RequestException as error:
        raise _fail(f"cannot reach the sandbox at {admin_url}: {type(error).__name__}") from None
    if response.status_code != 200:
        raise _fail(f"the sandbox answered {response.status_code}: {response.text[:200]}")
    return response.content


def register(app: typer.Typer) -> None:
    """Add this area's commands to the app."""
    app.add_typer(sandbox_app, name="sandbox")
