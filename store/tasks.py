"""The task outbox and ledger (every task from queued to confirmed), and the writers' lease."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    select,
    update,
)

from leadloop.crm.changes import TaskUpsert
from leadloop.crm.ports import WriteResult
from leadloop.store.ledger import LedgerStore
from leadloop.store.models import (
    RunLease,
    TaskLedger,
)
from leadloop.store.tables import (
    _BATCH,
    _IN_CHUNK,
    FAILED,
    LEASE,
    OPEN,
    PENDING,
    REJECTED,
    RUNS,
    TASKS,
    WRITER_LEASE,
    WRITING_KINDS,
    StoreError,
    StoreLocked,
    TaskOutcomes,
    _chunks,
    _lease_lapsed,
    _now,
    _unique,
)


class TaskStore(LedgerStore):
    """The task outbox and the writers' lease; rejected tasks are also write failures."""

    # -- task outbox and ledger -----------------------------------------------------------------------

    def task_ledger(self, crm: str) -> dict[str, TaskLedger]:
        """Task key → what leadloop knows of the CRM task created for it (or still to create)."""
        with self._read() as conn:
            return {r.key: TaskLedger(**r._mapping) for r in conn.execute(
                select(TASKS).where(TASKS.c.crm == str(crm)))}

    def task_outbox(self, crm: str) -> dict[str, TaskLedger]:
        """The entries still to deliver: `pending` (sent, or about to be, when a run stopped) and
        `rejected` (the CRM said no; tried again each run). Read through the status index, so a run
        with nothing outstanding reads nothing."""
        with self._read() as conn:
            return {r.key: TaskLedger(**r._mapping) for r in conn.execute(
                select(TASKS).where(TASKS.c.crm == str(crm), TASKS.c.status.in_((PENDING, REJECTED))))}

    def task_rows(self, crm: str, keys: Iterable[str]) -> dict[str, TaskLedger]:
        """The ledger entries of these keys (absent keys are absent)."""
        rows: dict[str, TaskLedger] = {}
        with self._read() as conn:
            for batch in _chunks(list(dict.fromkeys(keys)), _IN_CHUNK):
                rows |= {r.key: TaskLedger(**r._mapping) for r in conn.execute(
                    select(TASKS).where(TASKS.c.crm == str(crm), TASKS.c.key.in_(batch)))}
        return rows

    def outbox_task(self, row: TaskLedger) -> TaskUpsert | None:
        """The task an outbox entry must deliver, or None for an entry written before the outbox
        kept payloads."""
        return self._adapter(TaskUpsert).validate_json(row.payload) if row.payload else None

    def get_task(self, crm: str, key: str) -> TaskLedger | None:
        with self._read() as conn:
            row = conn.execute(select(TASKS).where(TASKS.c.crm == str(crm), TASKS.c.key == key)).first()
        return TaskLedger(**row._mapping) if row else None

    def put_task(self, crm: str, key: str, crm_task_id: str, *, person_id: str | None = None,
                 owner: str | None = None, due: date | None = None, status: str = OPEN,
                 run_id: str | None = None, now: datetime | None = None) -> None:
        moment = _now(now)
        with self._write() as conn:
            self._put_tasks(conn, [{"crm": str(crm), "key": key, "crm_task_id": crm_task_id,
                                    "person_id": person_id, "owner": owner, "due": due, "status": status,
                                    "created_at": moment, "updated_at": moment, "run_id": run_id,
                                    "payload": None, "attempts": 0, "last_error": None}])

    def _put_tasks(self, conn: Connection, rows: list[dict[str, Any]],
                   columns: Sequence[str] = ("crm_task_id", "person_id", "owner", "due", "status",
                                             "updated_at", "run_id", "payload", "attempts", "last_error"),
                   ) -> None:
        self._upsert(conn, TASKS, _unique(rows, ("key",)), ("crm", "key"), columns)

    def queue_tasks(self, crm: str, tasks: Sequence[TaskUpsert], run_id: str | None = None,
                    now: datetime | None = None) -> None:
        """Write-ahead, in one transaction before the CRM is called: each task becomes (or stays) a
        `pending` outbox entry holding its payload, one attempt more. A run killed after this point
        leaves entries the next run delivers or confirms. A task the CRM already confirmed keeps its
        id and status; only its payload (the refreshed note, due date) is replaced."""
        if not tasks:
            return
        moment = _now(now)
        known = self.task_rows(crm, (t.key for t in tasks))
        rows = []
        for task in tasks:
            row = known.get(task.key)
            confirmed = row is not None and row.status == OPEN and bool(row.crm_task_id)
            rows.append({"crm": str(crm), "key": task.key, "crm_task_id": row.crm_task_id if row else "",
                         "person_id": task.person_id, "owner": task.owner_id, "due": task.due_date,
                         "status": OPEN if confirmed else PENDING,
                         "created_at": row.created_at if row else moment, "updated_at": moment,
                         "run_id": run_id, "payload": self._dump(task),
                         "attempts": (row.attempts if row else 0) + 1, "last_error": None})
        with self._write() as conn:
            self._put_tasks(conn, rows)

    def record_task_results(self, crm: str, tasks: Sequence[TaskUpsert], results: Sequence[WriteResult],
                            run_id: str | None = None, now: datetime | None = None,
                            max_attempts: int | None = None) -> TaskOutcomes:
        """Ledger what the CRM said of each task:

        - accepted: `open` with the CRM's task id; its payload is dropped (delivered);
        - outcome unknown (a create that timed out may have reached the CRM): stays `pending`, to be
          confirmed by key before anything is sent again;
        - rejected: `rejected` with the CRM's reason, retried next run, and a write failure (target
          `task:<key>`); `failed` once it was tried `max_attempts` times.
        """
        if len(tasks) != len(results):
            raise StoreError(f"{len(results)} task results for {len(tasks)} tasks")
        moment = _now(now)
        outcome = TaskOutcomes()
        attempts = {key: row.attempts for key, row in self.task_rows(crm, (t.key for t in tasks)).items()}
        rows, failed, resolved = [], [], []
        for task, result in zip(tasks, results, strict=True):
            record_id = task.person_record_id or task.account_record_id or task.key
            row = {"crm": str(crm), "key": task.key, "crm_task_id": result.crm_id or "",
                   "person_id": task.person_id, "owner": task.owner_id, "due": task.due_date,
                   "created_at": moment, "updated_at": moment, "run_id": run_id,
                   "payload": self._dump(task), "attempts": attempts.get(task.key, 1),
                   "last_error": (result.error or "")[:2000] or None}
            if result.ok:  # an accepted task is ledgered even if the CRM did not echo its id
                rows.append(row | {"status": OPEN, "payload": None, "last_error": None})
                resolved.append((record_id, f"task:{task.key}"))
                outcome.written += 1
            elif result.unknown:
                rows.append(row | {"status": PENDING, "crm_task_id": ""})
                outcome.unconfirmed += 1
            else:
                given_up = max_attempts is not None and row["attempts"] >= max_attempts
                rows.append(row | {"status": FAILED if given_up else REJECTED, "crm_task_id": ""})
                failed.append(
                    self._failure_row(str(crm), record_id, f"task:{task.key}", result, run_id, moment))
                outcome.rejected += 1
                outcome.given_up += given_up
        with self._write() as conn:
            self._put_tasks(conn, rows, ("crm_task_id", "person_id", "owner", "due", "status", "updated_at",
                                         "run_id", "payload", "last_error"))
            self._save_failures(conn, failed)
            self._resolve(conn, str(crm), resolved, moment)
        return outcome

    def confirm_tasks(self, crm: str, found: Mapping[str, str], run_id: str | None = None,
                      now: datetime | None = None) -> int:
        """Outbox entries the CRM shows under their key (found by a search) become `open`."""
        moment = _now(now)
        stmt = update(TASKS).where(TASKS.c.crm == str(crm), TASKS.c.key == bindparam("b_key"),
                                   TASKS.c.status != OPEN).values(
            crm_task_id=bindparam("b_id"), status=OPEN, payload=None, last_error=None, updated_at=moment,
            run_id=run_id)
        rows = [{"b_key": key, "b_id": task_id} for key, task_id in found.items()]
        if not rows:
            return 0
        with self._write() as conn:
            return sum(conn.execute(stmt, list(batch)).rowcount or 0 for batch in _chunks(rows, _BATCH))

    # -- the writers' lease ------------------------------------------------------------------------------

    def acquire_lease(self, run_id: str, kind: str, ttl: timedelta, now: datetime | None = None) -> RunLease:
        """Take the store for one writing run, or raise StoreLocked naming the run that holds it.

        A lease is free when nobody holds it, when its holder stopped renewing it for `ttl`, or when
        its holder was a process on this host that no longer exists (killed). Taking a lease from a
        dead holder marks that holder's run `crashed`, as any other run of a writing kind left
        `running`: with the lease taken, none of them can still be alive."""
        moment = _now(now)
        me = {"holder": run_id, "kind": kind, "host": socket.gethostname(), "pid": os.getpid(),
              "acquired_at": moment, "heartbeat_at": moment}
        with self._write() as conn:
            conn.execute(self._insert(LEASE).on_conflict_do_nothing(index_elements=["name"]),
                         {"name": WRITER_LEASE, **dict.fromkeys(me)})
            held = conn.execute(select(LEASE).where(LEASE.c.name == WRITER_LEASE)).one()
            current = RunLease(**held._mapping)
            if current.holder is not None and current.holder != run_id and not _lease_lapsed(current, ttl,
                                                                                            moment):
                raise StoreLocked(current, ttl)
            conn.execute(update(LEASE).where(LEASE.c.name == WRITER_LEASE).values(**me))
            stranded = conn.execute(select(RUNS.c.id).where(
                RUNS.c.status == "running", RUNS.c.kind.in_(WRITING_KINDS), RUNS.c.id != run_id)
            ).scalars().all()
            if stranded:
                why = (f"the run stopped without finishing (killed or lost); run {run_id} took over "
                       f"the store at {moment.isoformat(timespec='seconds')}")
                conn.execute(update(RUNS).where(RUNS.c.id.in_(stranded)).values(
                    status="crashed", finished_at=moment, error=why))
        return RunLease(name=WRITER_LEASE, **me)

    def renew_lease(self, run_id: str, now: datetime | None = None) -> bool:
        """The holder is alive; False when the lease is no longer this run's."""
        with self._write() as conn:
            return bool(conn.execute(update(LEASE).where(LEASE.c.name == WRITER_LEASE,
                                                         LEASE.c.holder == run_id)
                                     .values(heartbeat_at=_now(now))).rowcount)

    def release_lease(self, run_id: str) -> None:
        with self._write() as conn:
            conn.execute(update(LEASE).where(LEASE.c.name == WRITER_LEASE, LEASE.c.holder == run_id)
                         .values(holder=None, kind=None, host=None, pid=None, acquired_at=None,
                                 heartbeat_at=None))

    def lease(self) -> RunLease | None:
        with self._read() as conn:
            row = conn.execute(select(LEASE).where(LEASE.c.name == WRITER_LEASE)).first()
        return RunLease(**row._mapping) if row is not None and row.holder else None
