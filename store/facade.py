"""`Store`: plain methods over the state tables, no business logic, one part per concern.

What was pulled (`store.snapshots`: snapshots, cursors, quarantine), who is who and what was scored
(`store.scores`), what was written (`store.ledger`: the written ledger, write failures; `store.tasks`:
the task outbox and the writers' lease), and how each run went (`store.runs`). Bulk methods use
`INSERT ... ON CONFLICT` with executemany in batches inside one transaction, so a page of thousands of
records is one round of statements, not thousands.

Every method that records a moment takes an optional `now` (UTC) so callers and tests control time.
"""

from __future__ import annotations

from leadloop.store.runs import RunStore
from leadloop.store.scores import ScoreStore
from leadloop.store.snapshots import SnapshotStore
from leadloop.store.tables import (
    ACCOUNT_SCORES,
    ASSIGNMENT,
    CONFLICTS,
    CURSORS,
    FAILED,
    FAILURES,
    FINDINGS,
    LEASE,
    LEDGER,
    LINKS,
    OPEN,
    PENDING,
    QUARANTINE,
    REJECTED,
    RUNS,
    SCORES,
    SNAPSHOTS,
    TASKS,
    StoreError,
    StoreLocked,
    TaskOutcomes,
    raw_crm_id,
)
from leadloop.store.tasks import TaskStore

__all__ = ["ACCOUNT_SCORES", "ASSIGNMENT", "CONFLICTS", "CURSORS", "FAILED", "FAILURES", "FINDINGS", "LEASE",
           "LEDGER", "LINKS", "OPEN", "PENDING", "QUARANTINE", "REJECTED", "RUNS", "SCORES", "SNAPSHOTS",
           "TASKS", "Store", "StoreError", "StoreLocked", "TaskOutcomes", "raw_crm_id"]


class Store(SnapshotStore, ScoreStore, TaskStore, RunStore):
    """The state store. Build it with `store.open_store(url)`; it is safe to share between threads."""
