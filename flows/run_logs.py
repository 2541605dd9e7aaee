"""leadloop's own log lines in the flow run's logs, for the run's duration.

Every module logs to `logging.getLogger(__name__)`, under `leadloop`; without this, their lines (a
quarantined record, a retried call, a pull's progress) reach only the console of the process that
runs the flow: a worker's, or the terminal of `leadloop sync`. `leadloop_logs_in_run` sends them to
the Prefect API as the flow run's logs (a task run's, when logged inside one), whatever started the
run and whatever the environment says (`PREFECT_LOGGING_EXTRA_LOGGERS` only takes effect when set
before Prefect configures logging, which a deployment's worker does not do for leadloop).

The console keeps exactly what it showed before: `leadloop` is let down to INFO for the run so
the run's logs get INFO and above, and the lines below the level the console had are kept from it.
Emails are masked on the way out (as the connectors' own loggers mask them); secrets are never
logged in the first place (tests/e2e/test_security.py).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from prefect.exceptions import MissingContextError
from prefect.logging.handlers import APILogHandler

from leadloop.connectors.redaction import EmailMaskingFilter

LOGGER = "leadloop"


def _context_flow_run_id() -> UUID | None:
    """The flow run of the context this thread runs in (a task run's flow run), if any."""
    from prefect.context import get_run_context

    try:
        context = get_run_context()
    except MissingContextError:
        return None
    if (flow_run := getattr(context, "flow_run", None)) is not None:
        return flow_run.id
    task_run = getattr(context, "task_run", None)
    return task_run.flow_run_id if task_run is not None else None


class _FlowRunLogs(APILogHandler):
    """Sends `leadloop` records to one flow run's logs. A record from a thread outside any run's
    context (the lease heartbeat) goes to this flow run; one from another flow run's context is left
    to that run's handler."""

    def __init__(self, flow_run_id: UUID, level: int) -> None:
        super().__init__(level)
        self.flow_run_id = flow_run_id
        self.addFilter(EmailMaskingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, "flow_run_id", None) is None:
            running = _context_flow_run_id()
            if running is not None and running != self.flow_run_id:
                return  # another flow run's line: its own handler sends it
            if running is None:
                record = copy.copy(record)
                record.flow_run_id = self.flow_run_id
        super().emit(record)


class _AsBefore(logging.Handler):
    """Passes the records at or above the level `leadloop` had before the run to its parents'
    handlers, as propagation did: the console shows what it showed before."""

    def __init__(self, logger: logging.Logger, level: int) -> None:
        super().__init__(level)
        self.logger = logger

    def emit(self, record: logging.LogRecord) -> None:
        parent: Any = self.logger.parent
        while parent is not None:
            for handler in parent.handlers:
                if record.levelno >= handler.level:
                    handler.handle(record)
            parent = parent.parent if parent.propagate else None


@contextmanager
def leadloop_logs_in_run(level: int = logging.INFO) -> Iterator[None]:
    """While the block runs inside a flow run, `leadloop`'s records at `level` and above go to the
    flow run's logs too. Outside a flow run (a flow's `.fn` called directly) it does nothing."""
    from prefect.runtime import flow_run

    run_id = flow_run.get_id()
    if run_id is None:
        yield
        return
    logger = logging.getLogger(LOGGER)
    before_level, before_propagate = logger.level, logger.propagate
    console_level = logger.getEffectiveLevel()
    # Prefect's own API handler, when PREFECT_LOGGING_EXTRA_LOGGERS put one here: this run's handler
    # stands in for it while the run lasts (one line each, and none lost from threads without a context)
    theirs = [h for h in logger.handlers if isinstance(h, APILogHandler)]
    ours = _FlowRunLogs(UUID(str(run_id)), level)
    as_before = _AsBefore(logger, console_level) if console_level > level and logger.propagate else None
    for handler in theirs:
        logger.removeHandler(handler)
    logger.addHandler(ours)
    if as_before is not None:
        logger.addHandler(as_before)
        logger.propagate = False
    logger.setLevel(min(console_level, level))
    try:
        yield
    finally:
        logger.removeHandler(ours)
        if as_before is not None:
            logger.removeHandler(as_before)
        for handler in theirs:
            logger.addHandler(handler)
        logger.setLevel(before_level)
        logger.propagate = before_propagate
