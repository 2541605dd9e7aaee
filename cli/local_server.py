"""Prefect's temporary server, out of reach of the terminal's Ctrl-C.

Without `PREFECT_API_URL`, Prefect starts a temporary API server as a child process on first use. A
child shares the terminal's process group, so a Ctrl-C reaches it too: the server died at once and
the interrupted run then spent more than a minute retrying to report its end to a server that was
gone, printing connection tracebacks, and stayed `Running`. Started here instead, with SIGINT
blocked (a blocked signal stays blocked across fork and exec), the server ignores the terminal's
Ctrl-C and lives until the command exits, when Prefect stops it (SIGTERM). Prefect reuses this
server: it keeps one per process.
"""

from __future__ import annotations

import signal


def start_local_server() -> None:
    """Start Prefect's temporary server now when the command runs in Prefect's local mode; a no-op
    with a `PREFECT_API_URL` or when it runs already."""
    from prefect.settings import PREFECT_API_URL

    if PREFECT_API_URL.value():
        return
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    if server.running:
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        server.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)
