"""How a run ends when it is told to stop: Ctrl-C or SIGTERM to the process that runs it, or a cancel
in Prefect's UI or API.

Python raises `KeyboardInterrupt` (SIGINT) and Prefect `TerminationSignal` (SIGTERM) in the flow's
thread, wherever it is, in the middle of a CRM request included. Either passes through the run's
`recorded_run` (or the flow's own try), which records the run as `cancelled` and lets the workspace,
the writer's lease and the store go on the way out, as after a failure. What was stored and ledgered
stays: the cursors move only after a page is stored and the ledger and the task outbox say what was
written, so the next run picks up from there.

Prefect reports such a run as Crashed; `cancelled_if_interrupted`, each flow's `on_crashed` hook,
makes it Cancelled when the crash was one of these interruptions. A cancel from Prefect reaches a run
started by a worker or `serve` as their SIGTERM; a run started in a terminal (`leadloop sync`) has no
supervisor to send it, so `cancel_watch` polls the run's state and interrupts the flow's thread
itself. It also sends a Ctrl-C or SIGTERM again when the first did not get the run to stop: an
interruption raised in the middle of Prefect's own bookkeeping can be lost there.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.exceptions import TerminationSignal

log = logging.getLogger(__name__)

CANCEL_POLL_SECONDS = 2.0  # a cancel in Prefect stops a terminal's run within about this, plus the unwinding
RESEND_AFTER = 3.0  # a Ctrl-C or SIGTERM that has not started the run's unwinding by then is sent again
_interrupted: dict[str, str] = {}  # flow run id → what interrupted it, until its on_crashed hook reads it
_unwinding = threading.Event()  # set once the run knows it was interrupted and is recording it
_lock = threading.Lock()


def interrupt_behind(error: BaseException) -> BaseException | None:
    """The interruption (Ctrl-C, SIGTERM) that `error` is, or that it was raised while handling: an
    interruption that lands inside Prefect's own bookkeeping can come out as another error (a task
    run interrupted while it was being created: "Task run is not set")."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, KeyboardInterrupt | TerminationSignal):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def interruption(error: BaseException) -> str | None:
    """What stopped the run when `error` is (or hides) an interruption, else None."""
    interrupt = interrupt_behind(error)
    if isinstance(interrupt, TerminationSignal):
        return f"terminated ({signal.Signals(interrupt.signal).name})"
    return "interrupted (SIGINT)" if interrupt is not None else None


def run_ended_by(run_id: str, error: BaseException) -> tuple[str, str]:
    """The run record's status and error for a run that `error` ended: `cancelled` for an
    interruption (noted for the flow run's `on_crashed` and `on_failure` hooks), else `failed`."""
    why = interruption(error)
    if why is None:
        return "failed", f"{type(error).__name__}: {error}"
    _unwinding.set()
    with _lock:
        _interrupted[run_id] = why
    return "cancelled", why


def cancelled_if_interrupted(flow: Any, flow_run: Any, state: Any) -> None:
    """An `on_crashed` and `on_failure` hook: a flow run that ended because it was interrupted is
    Cancelled."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelled

    with _lock:
        why = _interrupted.pop(str(flow_run.id), None)
    if why is None:
        return
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run.id, Cancelled(message=f"{why}; the next run picks up where it "
                                                                 "stopped"), force=True)


@contextmanager
def cancel_watch(every: float = CANCEL_POLL_SECONDS) -> Iterator[None]:
    """While the block runs, a cancel of this flow run in Prefect interrupts it (SIGINT to the flow's
    thread), and a Ctrl-C or SIGTERM that something swallowed on its way up (an interruption can land
    anywhere, Prefect's own bookkeeping included) is sent again until the run is stopping.

    Only for a run nobody supervises: a worker's or `serve`'s runs get their SIGTERM from them, and
    Prefect's own SIGTERM handler must stay to read why (they set PREFECT__FLOW_RUN_ID); and only
    when the flow runs in the main thread, where Python delivers signals."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    main = threading.main_thread()
    if run_id is None or os.environ.get("PREFECT__FLOW_RUN_ID") or threading.current_thread() is not main:
        yield
        return
    stopped = threading.Event()
    received: list[tuple[int, float]] = []  # (signal, when)
    _unwinding.clear()

    def on_signal(signum: int, frame: Any) -> None:
        if _unwinding.is_set():
            return  # the run is stopping already: let it record how it ended
        received.append((signum, time.monotonic()))
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise TerminationSignal(signal=signum)

    def watch() -> None:
        from prefect.client.orchestration import get_client

        polled = time.monotonic()
        with get_client(sync_client=True) as client:
            while not stopped.wait(0.5):
                if received and not _unwinding.is_set() and time.monotonic() - received[-1][1] > RESEND_AFTER:
                    signum = received[-1][0]
                    log.warning("the run did not stop on %s: sending it again", signal.Signals(signum).name)
                    signal.pthread_kill(main.ident or 0, signum)
                if time.monotonic() - polled < every:
                    continue
                polled = time.monotonic()
                try:
                    state = client.read_flow_run(run_id).state
                except Exception:  # the API is briefly unreachable: look again next time
                    continue
                if state is not None and (state.is_cancelling() or state.is_cancelled()) and not received:
                    log.warning("the run was cancelled in Prefect: stopping it")
                    signal.pthread_kill(main.ident or 0, signal.SIGINT)

    before = {signum: signal.signal(signum, on_signal) for signum in (signal.SIGINT, signal.SIGTERM)}
    watcher = threading.Thread(target=watch, name=f"cancel-watch-{run_id}", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        stopped.set()
        for signum, handler in before.items():
            signal.signal(signum, handler)
