"""The state tables, the store's errors and outcomes, and the small helpers every part of the store
shares (moments in UTC, chunks for IN lists and batches)."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Table,
)

from leadloop.crm.dataset import RECORD_TYPES
from leadloop.store.models import (
    AccountScoreHistory,
    AssignmentStateRow,
    CanonicalRecord,
    Cursor,
    DqFinding,
    IdentityConflictRow,
    IdentityLink,
    PlaybookActivation,
    Quarantine,
    Run,
    RunLease,
    ScoreDue,
    ScoreHistory,
    Snapshot,
    TaskLedger,
    WriteFailure,
    WrittenValue,
)

_BATCH = 5000
_IN_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit
_KIND_BY_TYPE = {cls: kind for kind, cls in RECORD_TYPES.items()}
_SNAPSHOT_COLUMNS = ("crm", "stream", "record_id", "crm_id", "kind", "payload", "cursor", "updated_at",
                     "deleted", "stored_at", "quarantine_reason", "person_ref")
_SCORE_COLUMNS = ("run_id", "person_id", "account_id", "model_version", "tier", "score", "fit", "intent",
                  "scored_at", "card")
_ACCOUNT_SCORE_COLUMNS = ("run_id", "account_id", "model_version", "tier", "fit", "intent", "scored_at",
                          "score")
_ACCOUNT_PREFIXES = ("sf-account:", "hs-company:", "account:")


def _table(model: Any) -> Table:
    return model.__table__  # type: ignore[no-any-return]


SNAPSHOTS = _table(Snapshot)
CURSORS = _table(Cursor)
LINKS = _table(IdentityLink)
CONFLICTS = _table(IdentityConflictRow)
SCORES = _table(ScoreHistory)
ACCOUNT_SCORES = _table(AccountScoreHistory)
LEDGER = _table(WrittenValue)
TASKS = _table(TaskLedger)
FAILURES = _table(WriteFailure)
RUNS = _table(Run)
ASSIGNMENT = _table(AssignmentStateRow)
FINDINGS = _table(DqFinding)
QUARANTINE = _table(Quarantine)
LEASE = _table(RunLease)
ACTIVATIONS = _table(PlaybookActivation)
DUE = _table(ScoreDue)
CANONICAL = _table(CanonicalRecord)


class StoreError(RuntimeError):
    """The state store cannot do what was asked; the message is safe to show (no secrets)."""


# Task outbox states (see TaskLedger).
OPEN, PENDING, REJECTED, FAILED = "open", "pending", "rejected", "failed"
WRITER_LEASE = "writer"
WRITING_KINDS = ("hourly_sync", "rescore")  # the runs that take the lease


class StoreLocked(StoreError):
    """Another run holds the store."""

    def __init__(self, lease: RunLease, ttl: timedelta) -> None:
        self.lease = lease
        since = lease.acquired_at.isoformat(timespec="seconds") if lease.acquired_at else "?"
        beat = lease.heartbeat_at.isoformat(timespec="seconds") if lease.heartbeat_at else "?"
        super().__init__(
            f"the store is in use by run {lease.holder} ({lease.kind}, process {lease.pid} on {lease.host}) "
            f"since {since}, alive at {beat}. Only one run writes at a time: wait for it to finish. If that "
            f"process is gone, its lease lapses {int(ttl.total_seconds())} s after it was last alive "
            "(at once when it ran on this host), and the next run marks it crashed.")


@dataclass(slots=True)
class TaskOutcomes:
    """What the CRM said of a batch of tasks."""

    written: int = 0
    rejected: int = 0
    unconfirmed: int = 0  # may have reached the CRM: confirmed by key on the next run
    given_up: int = 0  # rejected for the last time: `failed`


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _lease_lapsed(lease: RunLease, ttl: timedelta, moment: datetime) -> bool:
    if lease.heartbeat_at is None or moment - lease.heartbeat_at > ttl:
        return True
    return lease.host == socket.gethostname() and lease.pid is not None and lease.pid != os.getpid() \
        and not _pid_alive(lease.pid)


def raw_crm_id(record_id: str) -> str:
    """`sf-lead:00Q...` → `00Q...`; an id without a prefix is returned unchanged."""
    return record_id.split(":", 1)[1] if ":" in record_id else record_id


def _now(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _record_id(record: Any) -> str:
    value = record.get("id") if isinstance(record, Mapping) else getattr(record, "id", None)
    if not value:
        raise StoreError(f"cannot store a {type(record).__name__} without an id")
    return str(value)


def _unique(rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """The last row for each key: one statement may not touch the same row twice."""
    return list({tuple(row[k] for k in keys): row for row in rows}.values())


class _Fields:
    """Attribute access as `[...]` / `.get`, so dataclass scores read like their dicts."""

    __slots__ = ("_value",)

    def __init__(self, value: Any) -> None:
        self._value = value

    def __getitem__(self, name: str) -> Any:
        return getattr(self._value, name)

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self._value, name, default)


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _scored_at(value: Any) -> datetime:
    if isinstance(value, datetime):
        return _now(value)
    return _now(datetime.fromisoformat(str(value)))
