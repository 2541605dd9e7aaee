"""Prefect's temporary server, out of reach of the terminal's Ctrl-C and off its screen.

Without `PREFECT_API_URL`, Prefect starts a temporary API server as a child process on first use. A
child shares the terminal's process group, so a Ctrl-C reaches it too: the server died at once and
the interrupted run then spent more than a minute retrying to report its end to a server that was
gone, printing connection tracebacks, and stayed `Running`. Started here instead, with SIGINT
blocked (a blocked signal stays blocked across fork and exec), the server ignores the terminal's
Ctrl-C and lives until the command exits, when Prefect stops it (SIGTERM). Prefect reuses this
server: it keeps one per process.

The server writes its own output to `temporary-server.log` in `PREFECT_HOME`, not to the terminal:
stopped while it still records the last task runs of an interrupted run, it logs that as an error
with a traceback, which is about Prefect's bookkeeping and not the user's sync.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

SERVER_LOG = "temporary-server.log"


def start_local_server() -> None:
    """Start Prefect's temporary server now when the command runs in Prefect's local mode; a no-op
    with a `PREFECT_API_URL` or when it runs already."""
    from prefect.settings import PREFECT_API_URL, PREFECT_HOME

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running:
        return
    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    server._run_uvicorn_command = _output_to(home / SERVER_LOG, server._run_uvicorn_command)
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        server.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _output_to(path: Path, spawn: Callable[[], Any]) -> Callable[[], Any]:
    """`spawn` (which starts the server's process) with the process's stdout and stderr on `path`
    for the moment of the spawn: the child inherits them, this process gets its own back."""

    def spawned() -> Any:
        sys.stdout.flush()
        sys.stderr.flush()
        with path.open("ab") as log:
            saved = os.dup(1), os.dup(2)
            try:
                os.dup2(log.fileno(), 1)
                os.dup2(log.fileno(), 2)
                return spawn()
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])

    return spawned
