"""`python -m sandbox serve|export`: the sandbox's commands on their own."""

from leadloop.sandbox.cli import sandbox_app

sandbox_app()
