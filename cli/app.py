"""The `leadloop` command line (Typer). Each area registers its commands from its own module."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from leadloop.cli import connect, crm, review, route, run, scoring

app = typer.Typer(
    name="leadloop",
    help="Score leads and accounts by fit and intent, route the ready ones, write back to the CRMs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)



@app.command()
def version() -> None:
    """Print leadloop's version."""
    from leadloop.crm.version import leadloop_version

    typer.echo(leadloop_version())


for module in (scoring, route, crm, run, review, connect):
    module.register(app)

# Command plugins installed beside leadloop (the sandbox's `leadloop sandbox serve|export`).
for plugin in entry_points(group="leadloop.commands"):
    plugin.load()(app)


if __name__ == "__main__":  # pragma: no cover
    app()
