"""`Store`: plain methods over the state tables, no business logic.

What was pulled (snapshots, cursors, quarantine), who is who (identity links and conflicts), what was
scored (score history), what was written (the written ledger, the task ledger, write failures), and
how each run went. Bulk methods use `INSERT ... ON CONFLICT` with executemany in batches inside one
transaction, so a page of thousands of records is one round of statements, not thousands.

Every method that records a moment takes an optional `now` (UTC) so callers and tests control time.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import TypeAdapter
from sqlalchemy import (
    Connection,
    Engine,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    delete,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

from crm.changes import FieldUpdate, TaskUpsert
from crm.dataset import RECORD_TYPES, Dataset, InvalidRecord, validate_payloads
from crm.heap import cycle_collection_paused
from crm.identity import IdentityConflict
from crm.ports import WriteResult
from crm.records import Activity
from store.models import (
    AccountScoreHistory,
    AssignmentStateRow,
    Cursor,
    DqFinding,
    IdentityConflictRow,
    IdentityLink,
    Quarantine,
    Run,
    RunLease,
    ScoreHistory,
    Snapshot,
    TaskLedger,
    WriteFailure,
    WrittenValue,
)
from store.writeplan import FieldNamer, ledger_text, logical_field

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


class Store:
    """The state store. Build it with `store.open_store(url)`; it is safe to share between threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._adapters: dict[type, TypeAdapter[Any]] = {}

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)})"

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A write transaction (SQLite takes its write lock up front, so it never fails halfway)."""
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_immediate=True)
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def _insert(self, table: Table) -> Any:
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        return dialect.insert(table)

    def _upsert(self, conn: Connection, table: Table, rows: Sequence[dict[str, Any]],
                keys: Sequence[str], updates: Mapping[str, Any] | Sequence[str],
                where: Any = None) -> None:
        """executemany of INSERT ... ON CONFLICT (keys) DO UPDATE, in batches.

        `updates` lists columns taken from the new row, or maps columns to SQL expressions built
        from `stmt.excluded` via a callable.
        """
        if not rows:
            return
        stmt = self._insert(table)
        if isinstance(updates, Mapping):
            set_ = {name: (value(stmt) if callable(value) else value) for name, value in updates.items()}
        else:
            set_ = {name: stmt.excluded[name] for name in updates}
        stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_=set_,
                                          where=where(stmt) if callable(where) else where)
        for batch in _chunks(rows, _BATCH):
            conn.execute(stmt, list(batch))

    def _dump(self, record: Any) -> str:
        if isinstance(record, Mapping):
            return json.dumps(record, default=str, separators=(",", ":"))
        adapter = self._adapters.get(type(record))
        if adapter is None:
            adapter = self._adapters[type(record)] = TypeAdapter(type(record))
        return adapter.dump_json(record).decode()

    def _as_json(self, value: Any) -> tuple[Mapping[str, Any], str]:
        """A score (dataclass or dict) → (its fields, its JSON text). pydantic's serializer is
        far faster than `dataclasses.asdict` + `json.dumps`, which deep-copies every reason."""
        if isinstance(value, Mapping):
            return value, _json(value)
        adapter = self._adapters.get(type(value))
        if adapter is None:
            adapter = self._adapters[type(value)] = TypeAdapter(type(value))
        return _Fields(value), adapter.dump_json(value).decode()

    # -- snapshots, cursors, quarantine --------------------------------------------------------------

    def upsert_snapshots(self, crm: str, stream: str, records: Iterable[Any],
                         cursor: datetime | None = None, now: datetime | None = None) -> int:
        """Store the canonical records of one pulled page; returns how many were given.

        A record older than the stored one (by its own `updated_at`, e.g. from a lagging search
        index) never overwrites it. Storing a record un-deletes and un-quarantines it.
        """
        moment = _now(now)
        at = self._time_param
        stored_at, page_cursor, crm = at(moment), at(cursor), str(crm)
        rows: dict[str, tuple[Any, ...]] = {}
        for record in records:
            record_id = _record_id(record)
            kind = _KIND_BY_TYPE.get(type(record)) or (
                stream if isinstance(record, Mapping) else type(record).__name__.lower())
            rows[record_id] = (crm, stream, record_id, raw_crm_id(record_id), kind, self._dump(record),
                               page_cursor, at(getattr(record, "updated_at", None)), False, stored_at, None,
                               getattr(record, "person_id", None) if kind == "activities" else None)
        if not rows:
            return 0
        table = SNAPSHOTS
        stmt = self._insert(table).values({name: bindparam(name) for name in _SNAPSHOT_COLUMNS})
        stmt = stmt.on_conflict_do_update(
            index_elements=["crm", "stream", "record_id"],
            set_={name: stmt.excluded[name] for name in _SNAPSHOT_COLUMNS[3:]},
            # not older than what is stored, and something to change: an overlap re-read of
            # unchanged records then costs reads only
            where=and_(
                or_(table.c.updated_at.is_(None), stmt.excluded.updated_at.is_(None),
                    stmt.excluded.updated_at >= table.c.updated_at),
                or_(table.c.payload.is_distinct_from(stmt.excluded.payload), table.c.deleted.is_(True),
                    table.c.quarantine_reason.is_not(None)),
            ),
        )
        with self._write() as conn:
            if conn.dialect.name == "postgresql":
                self._copy_upsert_snapshots(conn, list(rows.values()))
            else:
                self._executemany_raw(conn, stmt, _SNAPSHOT_COLUMNS, list(rows.values()))
            self._resolve_quarantine(conn, crm, stream, list(rows), moment)
        return len(rows)

    @staticmethod
    def _copy_upsert_snapshots(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL: COPY the page into a session temp table, then one INSERT ... SELECT ... ON
        CONFLICT, several times faster than executemany for large pages."""
        columns = ", ".join(_SNAPSHOT_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _SNAPSHOT_COLUMNS[3:])
        raw = conn.connection.driver_connection
        with raw.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute("CREATE TEMP TABLE IF NOT EXISTS leadloop_snapshots_in "
                           "(LIKE snapshots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
            with cursor.copy(f"COPY leadloop_snapshots_in ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO snapshots ({columns}) SELECT {columns} FROM leadloop_snapshots_in "
                f"ON CONFLICT (crm, stream, record_id) DO UPDATE SET {updates} "
                "WHERE (snapshots.updated_at IS NULL OR EXCLUDED.updated_at IS NULL "
                "OR EXCLUDED.updated_at >= snapshots.updated_at) "
                "AND (snapshots.payload IS DISTINCT FROM EXCLUDED.payload OR snapshots.deleted "
                "OR snapshots.quarantine_reason IS NOT NULL)")
            cursor.execute("TRUNCATE leadloop_snapshots_in")

    def _time_param(self, value: datetime | None) -> Any:
        """A timestamp as the driver takes it for a UtcDateTime column (for `_executemany_raw`)."""
        if value is None:
            return None
        value = _now(value)
        if self.engine.dialect.name == "sqlite":
            # the text form SQLAlchemy's SQLite DateTime type writes and parses back
            return value.replace(tzinfo=None).isoformat(" ", "microseconds")
        return value

    def _bulk_insert(self, conn: Connection, table: Table, columns: Sequence[str],
                     rows: list[tuple[Any, ...]]) -> None:
        """Plain appends of driver-ready rows (JSON already as text): COPY on PostgreSQL,
        executemany on SQLite."""
        if not rows:
            return
        if conn.dialect.name == "postgresql":
            raw = conn.connection.driver_connection
            with raw.cursor() as cursor, cursor.copy(  # type: ignore[union-attr]
                    f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        stmt = table.insert().values({name: bindparam(name) for name in columns})
        self._executemany_raw(conn, stmt, columns, rows)

    @staticmethod
    def _executemany_raw(conn: Connection, stmt: Any, columns: Sequence[str],
                         rows: list[tuple[Any, ...]]) -> None:
        """executemany straight to the driver: the hot path for snapshots, where SQLAlchemy's per-row
        parameter processing costs more than the database. Rows hold driver-ready values in
        `columns` order."""
        compiled = stmt.compile(dialect=conn.dialect)
        sql = str(compiled)
        names = compiled.positiontup
        if names is not None and list(names) != list(columns):
            order = [list(columns).index(n) for n in names]
            rows = [tuple(row[i] for i in order) for row in rows]
        for batch in _chunks(rows, _BATCH):
            if names is not None:
                conn.exec_driver_sql(sql, list(batch))
            else:
                conn.exec_driver_sql(sql, [dict(zip(columns, row, strict=True)) for row in batch])

    def _resolve_quarantine(self, conn: Connection, crm: str, stream: str, record_ids: list[str],
                            moment: datetime) -> None:
        open_rows = conn.execute(
            select(func.count()).select_from(QUARANTINE).where(
                QUARANTINE.c.crm == crm, QUARANTINE.c.stream == stream, QUARANTINE.c.resolved_at.is_(None))
        ).scalar_one()
        if not open_rows:
            return
        ids = record_ids + [raw_crm_id(r) for r in record_ids]
        for chunk in _chunks(ids, _IN_CHUNK):
            conn.execute(update(QUARANTINE).where(
                QUARANTINE.c.crm == crm, QUARANTINE.c.stream == stream, QUARANTINE.c.crm_id.in_(chunk),
                QUARANTINE.c.resolved_at.is_(None)).values(resolved_at=moment))

    def _matching(self, crm: str, stream: str, ids: Sequence[str]) -> Any:
        raw = [raw_crm_id(i) for i in ids]
        return and_(SNAPSHOTS.c.crm == crm, SNAPSHOTS.c.stream == stream,
                    or_(SNAPSHOTS.c.crm_id.in_(raw), SNAPSHOTS.c.record_id.in_(list(ids))))

    def tombstone(self, crm: str, stream: str, ids: Iterable[str], now: datetime | None = None) -> int:
        """Mark records deleted (or merged away) in the CRM; `ids` may be raw or CRM-qualified.
        Returns how many stored records were marked."""
        ids = list(dict.fromkeys(ids))
        moment = _now(now)
        marked = 0
        with self._write() as conn:
            for chunk in _chunks(ids, _IN_CHUNK):
                result = conn.execute(update(SNAPSHOTS).where(self._matching(str(crm), stream, chunk))
                                      .values(deleted=True, stored_at=moment))
                marked += result.rowcount or 0
        return marked

    def quarantine(self, crm: str, stream: str, crm_id: str, reason: str,
                   run_id: str | None = None, now: datetime | None = None) -> None:
        """Hold one record out of scoring because its CRM values could not be mapped."""
        self.quarantine_rejected(crm, stream, [(crm_id, reason)], run_id=run_id, now=now)

    def quarantine_rejected(self, crm: str, stream: str, rejected: Iterable[tuple[str, str]],
                            run_id: str | None = None, now: datetime | None = None) -> int:
        """Quarantine a page's `rejected` (crm id, reason) pairs; returns how many."""
        moment = _now(now)
        rows = {crm_id: {"crm": str(crm), "stream": stream, "crm_id": crm_id, "reason": reason[:2000],
                         "times_seen": 1, "first_seen": moment, "last_seen": moment, "resolved_at": None,
                         "run_id": run_id}
                for crm_id, reason in rejected}
        if not rows:
            return 0
        with self._write() as conn:
            self._upsert(conn, QUARANTINE, list(rows.values()), ("crm", "stream", "crm_id"), {
                "reason": lambda s: s.excluded.reason,
                "last_seen": lambda s: s.excluded.last_seen,
                "run_id": lambda s: s.excluded.run_id,
                "resolved_at": None,
                "times_seen": QUARANTINE.c.times_seen + 1,
            })
            for crm_id, row in rows.items():
                conn.execute(update(SNAPSHOTS).where(self._matching(str(crm), stream, [crm_id]))
                             .values(quarantine_reason=row["reason"]))
        return len(rows)

    def quarantined(self, crm: str | None = None, include_resolved: bool = False) -> list[Quarantine]:
        query = select(QUARANTINE).order_by(QUARANTINE.c.crm, QUARANTINE.c.stream, QUARANTINE.c.crm_id)
        if crm is not None:
            query = query.where(QUARANTINE.c.crm == str(crm))
        if not include_resolved:
            query = query.where(QUARANTINE.c.resolved_at.is_(None))
        with self._read() as conn:
            return [Quarantine(**row._mapping) for row in conn.execute(query)]

    def get_cursor(self, crm: str, stream: str) -> datetime | None:
        with self._read() as conn:
            return conn.execute(select(CURSORS.c.value).where(
                CURSORS.c.crm == str(crm), CURSORS.c.stream == stream)).scalar_one_or_none()

    def set_cursor(self, crm: str, stream: str, value: datetime, now: datetime | None = None) -> datetime:
        """Move a stream's cursor forward to `value` (never back); returns the cursor now stored."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        row = {"crm": str(crm), "stream": stream, "value": value, "updated_at": _now(now)}
        with self._write() as conn:
            self._upsert(conn, CURSORS, [row], ("crm", "stream"), ("value", "updated_at"),
                         where=lambda stmt: stmt.excluded.value > CURSORS.c.value)
            return conn.execute(select(CURSORS.c.value).where(
                CURSORS.c.crm == str(crm), CURSORS.c.stream == stream)).scalar_one()

    def cursors(self) -> dict[tuple[str, str], datetime]:
        with self._read() as conn:
            return {(r.crm, r.stream): r.value for r in conn.execute(select(CURSORS))}

    @staticmethod
    def _live(include_quarantined: bool, kinds: Iterable[str] = RECORD_TYPES) -> list[Any]:
        live = [SNAPSHOTS.c.deleted.is_(False), SNAPSHOTS.c.kind.in_(list(kinds)),
                SNAPSHOTS.c.payload.is_not(None)]
        if not include_quarantined:
            live.append(SNAPSHOTS.c.quarantine_reason.is_(None))
        return live

    @cycle_collection_paused()  # millions of new records: see crm.heap
    def load_records(self, include_quarantined: bool = False, *, skip: Collection[str] = ()) -> Dataset:
        """The current canonical records by kind, each kind in record-id order (deleted ones left
        out; quarantined ones too unless asked), except the kinds in `skip`. A stored payload that no
        longer validates lands in `Dataset.invalid`. A record id stored under two streams keeps its
        most recently stored payload.

        The rows are read unordered and sorted by id here: ordering them in SQL sorted every payload
        along with its id (a temporary B-tree the size of the store), most of the read's time."""
        kinds = [kind for kind in RECORD_TYPES if kind not in skip]
        live = self._live(include_quarantined, kinds)
        raw: dict[str, dict[str, str]] = {kind: {} for kind in kinds}
        twice: set[str] = set()  # ids read more than once (stored under two streams)
        with self._read() as conn:
            for kind, record_id, payload in conn.execute(
                    select(SNAPSHOTS.c.kind, SNAPSHOTS.c.record_id, SNAPSHOTS.c.payload).where(*live)):
                by_id = raw[kind]
                if record_id in by_id:
                    twice.add(record_id)
                by_id[record_id] = payload
            if twice:  # rare: settle each such id on its newest payload
                self._settle_newest(conn, live, SNAPSHOTS.c.record_id, sorted(twice), raw)
        dataset = Dataset()
        for kind, by_id in raw.items():
            good, bad = validate_payloads(kind, ((rid, by_id[rid]) for rid in sorted(by_id)))
            setattr(dataset, kind, good)
            dataset.invalid.extend(bad)
        return dataset

    @staticmethod
    def _settle_newest(conn: Connection, live: list[Any], column: Any, values: Sequence[Any],
                       raw: dict[str, dict[str, str]]) -> None:
        """Re-read the live rows whose `column` is one of `values`, oldest stored first, so that each
        record id ends on its most recently stored payload."""
        for chunk in _chunks(values, _IN_CHUNK):
            for kind, record_id, payload in conn.execute(
                    select(SNAPSHOTS.c.kind, SNAPSHOTS.c.record_id, SNAPSHOTS.c.payload)
                    .where(*live, column.in_(chunk)).order_by(SNAPSHOTS.c.stored_at, SNAPSHOTS.c.stream)):
                raw[kind][record_id] = payload

    # -- activities one partition at a time ---------------------------------------------------------

    def activity_persons(self, include_quarantined: bool = False) -> tuple[set[str | None], set[str]]:
        """The persons (CRM-qualified ids) the undeleted activities name, None for an activity stored
        without one, and the ids of activities stored under more than one stream: what a sync needs
        to read activities partition by partition (`load_activities`) with the result of one read."""
        live = self._live(include_quarantined, ("activities",))
        with self._read() as conn:
            # (kind, deleted) only: the index answers that alone; a person whose activities are all
            # quarantined or empty is listed for nothing, since reading them finds none
            persons = set(conn.execute(select(SNAPSHOTS.c.person_ref).distinct().where(
                SNAPSHOTS.c.kind == "activities", SNAPSHOTS.c.deleted.is_(False))).scalars())
            twice = set(conn.execute(select(SNAPSHOTS.c.record_id).where(*live)
                                     .group_by(SNAPSHOTS.c.record_id).having(func.count() > 1)).scalars())
        return persons, twice

    @cycle_collection_paused()
    def load_activities(self, persons: Iterable[str | None] = (), ids: Iterable[str] = (), *,
                        skip: Collection[str] = (), include_quarantined: bool = False,
                        ) -> tuple[list[Activity], list[InvalidRecord]]:
        """The live activities of the given persons (None: those stored without a person) and those
        with the given record ids, except the ids in `skip`, in record-id order; each id on its most
        recently stored payload, as in `load_records`."""
        live = self._live(include_quarantined, ("activities",))
        persons = set(persons)
        wanted = sorted(p for p in persons if p is not None)
        by_id: dict[str, str] = {}
        twice: set[str] = set()
        query = select(SNAPSHOTS.c.record_id, SNAPSHOTS.c.payload)
        with self._read() as conn:
            def read(condition: Any) -> None:
                for record_id, payload in conn.execute(query.where(*live, condition)):
                    if record_id in skip:
                        continue
                    if record_id in by_id:
                        twice.add(record_id)
                    by_id[record_id] = payload

            if None in persons:
                read(SNAPSHOTS.c.person_ref.is_(None))
            for chunk in _chunks(wanted, _IN_CHUNK):
                read(SNAPSHOTS.c.person_ref.in_(chunk))
            for chunk in _chunks(sorted(set(ids)), _IN_CHUNK):
                read(SNAPSHOTS.c.record_id.in_(chunk))
            if twice:
                self._settle_newest(conn, live, SNAPSHOTS.c.record_id, sorted(twice), {"activities": by_id})
        return validate_payloads("activities", ((rid, by_id[rid]) for rid in sorted(by_id)))

    def iter_activities(self, persons_per_read: int = 5000, include_quarantined: bool = False,
                        ) -> Iterator[Activity]:
        """Every live activity once, on its newest payload, read `persons_per_read` persons at a time:
        for a caller that counts or aggregates them and so never needs them all in memory. Not in
        record-id order; payloads that no longer validate are left out, as `load_records` leaves
        them out of `Dataset.activities`."""
        persons, twice = self.activity_persons(include_quarantined)
        if twice:
            yield from self.load_activities(ids=twice, include_quarantined=include_quarantined)[0]
        ordered = sorted(persons, key=lambda p: (p is not None, p or ""))
        for chunk in _chunks(ordered, max(1, persons_per_read)):
            yield from self.load_activities(chunk, skip=twice, include_quarantined=include_quarantined)[0]

    def load_kind(self, kind: str) -> list[dict[str, Any]]:
        """Stored payloads of a non-canonical kind (e.g. CRM users), as plain dicts."""
        with self._read() as conn:
            rows = conn.execute(select(SNAPSHOTS.c.payload).where(
                SNAPSHOTS.c.kind == kind, SNAPSHOTS.c.deleted.is_(False), SNAPSHOTS.c.payload.is_not(None),
            ).order_by(SNAPSHOTS.c.record_id))
            return [json.loads(payload) for (payload,) in rows]

    def snapshot_counts(self) -> dict[tuple[str, str], dict[str, int]]:
        """(crm, stream) → live, deleted and quarantined record counts."""
        query = select(
            SNAPSHOTS.c.crm, SNAPSHOTS.c.stream, SNAPSHOTS.c.deleted,
            SNAPSHOTS.c.quarantine_reason.is_not(None).label("held"), func.count(),
        ).group_by(SNAPSHOTS.c.crm, SNAPSHOTS.c.stream, SNAPSHOTS.c.deleted, "held")
        counts: dict[tuple[str, str], dict[str, int]] = {}
        with self._read() as conn:
            for crm, stream, deleted, held, n in conn.execute(query):
                slot = counts.setdefault((crm, stream), {"live": 0, "deleted": 0, "quarantined": 0})
                slot["deleted" if deleted else "quarantined" if held else "live"] += n
        return counts

    # -- identity ---------------------------------------------------------------------------------

    def save_identity(self, links: Mapping[str, str], conflicts: Sequence[IdentityConflict] = (),
                      now: datetime | None = None) -> None:
        """Replace the identity links (CRM-qualified id → canonical id) and the current conflicts."""
        moment = _now(now)
        with self._write() as conn:
            existing = {rid: canonical for rid, canonical in conn.execute(
                select(LINKS.c.record_id, LINKS.c.canonical_id))}
            gone = [r for r in existing if r not in links]
            for chunk in _chunks(gone, _IN_CHUNK):
                conn.execute(delete(LINKS).where(LINKS.c.record_id.in_(chunk)))
            changed = [
                {"record_id": record_id, "canonical_id": canonical, "linked_at": moment,
                 "kind": "account" if record_id.startswith(_ACCOUNT_PREFIXES) else "person"}
                for record_id, canonical in links.items() if existing.get(record_id) != canonical
            ]
            self._upsert(conn, LINKS, changed, ("record_id",), ("canonical_id", "kind", "linked_at"))
            conn.execute(delete(CONFLICTS))
            if conflicts:
                conn.execute(CONFLICTS.insert(), [
                    {"kind": c.kind, "record_ids": list(c.record_ids), "detail": c.detail,
                     "detected_at": moment}
                    for c in conflicts
                ])

    def identity_links(self) -> dict[str, str]:
        with self._read() as conn:
            return {rid: canonical for rid, canonical in conn.execute(
                select(LINKS.c.record_id, LINKS.c.canonical_id))}

    def identity_conflicts(self) -> list[IdentityConflict]:
        with self._read() as conn:
            return [IdentityConflict(r.kind, tuple(r.record_ids), r.detail)
                    for r in conn.execute(select(CONFLICTS).order_by(CONFLICTS.c.id))]

    # -- score history ------------------------------------------------------------------------------

    def save_scorecards(self, run_id: str | None, cards: Iterable[Any]) -> int:
        """Append every ScoreCard (or its `to_dict()`) to the score history; returns how many."""
        at = self._time_param
        rows = []
        for card in cards:
            data, text = self._as_json(card)
            rows.append((run_id, data["person_id"], data.get("account_id"), data["model_version"],
                         data["tier"], float(data["score"]), float(data["fit"]), float(data["intent"]),
                         at(_scored_at(data["scored_at"])), text))
        with self._write() as conn:
            self._bulk_insert(conn, SCORES, _SCORE_COLUMNS, rows)
        return len(rows)

    def latest_scorecards(self) -> dict[str, dict[str, Any]]:
        """person id → the most recently stored card (as stored: timestamps are ISO strings)."""
        return {person_id: json.loads(text) for person_id, text in self.latest_scorecards_json().items()}

    def latest_scorecards_json(self) -> dict[str, str]:
        """`latest_scorecards` as the stored JSON text, for callers that decode many cards at once
        (decoding 100,000 cards row by row through the JSON column cost more than the query)."""
        latest = select(func.max(SCORES.c.id)).group_by(SCORES.c.person_id)
        with self._read() as conn:
            rows = conn.execute(select(SCORES.c.person_id, cast(SCORES.c.card, Text))
                                .where(SCORES.c.id.in_(latest)))
            return {person_id: text for person_id, text in rows}

    def score_history(self, person_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """One person's stored cards, newest first, each with the `run_id` that produced it."""
        with self._read() as conn:
            rows = conn.execute(select(SCORES.c.run_id, SCORES.c.card).where(SCORES.c.person_id == person_id)
                                .order_by(SCORES.c.id.desc()).limit(limit))
            return [{**r.card, "run_id": r.run_id} for r in rows]

    def save_account_scores(self, run_id: str | None, scores: Iterable[Any], scored_at: datetime) -> int:
        moment = self._time_param(scored_at)
        rows = []
        for score in scores:
            data, text = self._as_json(score)
            rows.append((run_id, data["account_id"], data["model_version"], data["tier"], float(data["fit"]),
                         float(data["intent"]), moment, text))
        with self._write() as conn:
            self._bulk_insert(conn, ACCOUNT_SCORES, _ACCOUNT_SCORE_COLUMNS, rows)
        return len(rows)

    def latest_account_scores(self) -> dict[str, dict[str, Any]]:
        latest = select(func.max(ACCOUNT_SCORES.c.id)).group_by(ACCOUNT_SCORES.c.account_id)
        with self._read() as conn:
            return {r.account_id: r.score for r in conn.execute(
                select(ACCOUNT_SCORES.c.account_id, ACCOUNT_SCORES.c.score)
                .where(ACCOUNT_SCORES.c.id.in_(latest)))}

    def prune_score_history(self, before: datetime) -> int:
        """Delete person and account cards scored before `before`, except each one's latest."""
        removed = 0
        with self._write() as conn:
            for table, key in ((SCORES, SCORES.c.person_id), (ACCOUNT_SCORES, ACCOUNT_SCORES.c.account_id)):
                latest = select(func.max(table.c.id)).group_by(key)
                result = conn.execute(delete(table).where(table.c.scored_at < _now(before),
                                                          table.c.id.not_in(latest)))
                removed += result.rowcount or 0
        return removed

    # -- written ledger and write failures ------------------------------------------------------------

    def ledger(self, crm: str) -> dict[tuple[str, str], str]:
        """(CRM record id, field) → the last value leadloop wrote there, as text."""
        with self._read() as conn:
            rows = conn.execute(select(LEDGER.c.record_id, LEDGER.c.field, LEDGER.c.value)
                                .where(LEDGER.c.crm == str(crm)))
            return {(record_id, field): value for record_id, field, value in rows}

    def record_writes(self, crm: str, updates: Sequence[FieldUpdate], results: Sequence[WriteResult],
                      run_id: str | None = None, crm_field: FieldNamer = logical_field,
                      now: datetime | None = None) -> tuple[int, int]:
        """Remember what the CRM accepted (ledger) and rejected (write failures); `results` are
        the sink's, one per update in the same order. Returns (written, failed)."""
        if len(updates) != len(results):
            raise StoreError(f"{len(results)} write results for {len(updates)} updates")
        moment = _now(now)
        written, resolved, failed = [], [], []
        for change, result in zip(updates, results, strict=True):
            field = crm_field(change)
            if result.ok:
                written.append({"crm": str(crm), "record_id": change.record_id, "field": field,
                                "value": ledger_text(change.value), "written_at": moment, "run_id": run_id})
                resolved.append((change.record_id, field))
            else:
                failed.append(self._failure_row(str(crm), change.record_id, field, result, run_id, moment))
        with self._write() as conn:
            self._upsert(conn, LEDGER, _unique(written, ("record_id", "field")),
                         ("crm", "record_id", "field"), ("value", "written_at", "run_id"))
            self._save_failures(conn, failed)
            self._resolve(conn, str(crm), resolved, moment)
        return len(written), len(failed)

    @staticmethod
    def _failure_row(crm: str, record_id: str, target: str, result: WriteResult, run_id: str | None,
                     moment: datetime) -> dict[str, Any]:
        return {"crm": crm, "record_id": record_id, "target": target,
                "reason": (result.error or "rejected without a reason")[:2000], "attempts": 1,
                "first_seen": moment, "last_seen": moment, "resolved_at": None, "run_id": run_id,
                "retriable": bool(result.retriable)}

    def _save_failures(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        self._upsert(conn, FAILURES, _unique(rows, ("record_id", "target")), ("crm", "record_id", "target"), {
            "reason": lambda s: s.excluded.reason,
            "last_seen": lambda s: s.excluded.last_seen,
            "run_id": lambda s: s.excluded.run_id,
            "retriable": lambda s: s.excluded.retriable,
            "resolved_at": None,
            # a failure that came back after being resolved starts a new count
            "attempts": lambda s: FAILURES.c.attempts + 1,
        })

    def _resolve(self, conn: Connection, crm: str, keys: Sequence[tuple[str, str]], moment: datetime) -> int:
        has_open = conn.execute(select(func.count()).select_from(FAILURES).where(
            FAILURES.c.crm == crm, FAILURES.c.resolved_at.is_(None))).scalar_one()
        if not has_open or not keys:
            return 0
        stmt = update(FAILURES).where(
            FAILURES.c.crm == crm, FAILURES.c.record_id == bindparam("b_record_id"),
            FAILURES.c.target == bindparam("b_target"), FAILURES.c.resolved_at.is_(None),
        ).values(resolved_at=moment)
        rows = [{"b_record_id": r, "b_target": t} for r, t in dict.fromkeys(keys)]
        resolved = 0
        for batch in _chunks(rows, _BATCH):
            resolved += conn.execute(stmt, list(batch)).rowcount or 0
        return resolved

    def record_failure(self, crm: str, record_id: str, target: str, reason: str, retriable: bool = False,
                       run_id: str | None = None, now: datetime | None = None) -> None:
        row = self._failure_row(str(crm), record_id, target, WriteResult(key=target, ok=False, error=reason,
                                                                          retriable=retriable),
                                run_id, _now(now))
        with self._write() as conn:
            self._save_failures(conn, [row])

    def failures(self, crm: str | None = None, include_resolved: bool = False) -> list[WriteFailure]:
        query = select(FAILURES).order_by(FAILURES.c.crm, FAILURES.c.record_id, FAILURES.c.target)
        if crm is not None:
            query = query.where(FAILURES.c.crm == str(crm))
        if not include_resolved:
            query = query.where(FAILURES.c.resolved_at.is_(None))
        with self._read() as conn:
            return [WriteFailure(**row._mapping) for row in conn.execute(query)]

    def resolve_failures(self, crm: str, keys: Iterable[tuple[str, str]], now: datetime | None = None) -> int:
        """Mark (record id, target) failures resolved; returns how many were open."""
        with self._write() as conn:
            return self._resolve(conn, str(crm), list(keys), _now(now))

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
        if not row.payload:
            return None
        adapter = self._adapters.get(TaskUpsert)
        if adapter is None:
            adapter = self._adapters[TaskUpsert] = TypeAdapter(TaskUpsert)
        return adapter.validate_json(row.payload)

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
        known = {}
        with self._read() as conn:
            for batch in _chunks(list(dict.fromkeys(t.key for t in tasks)), _IN_CHUNK):
                known |= {r.key: r for r in conn.execute(
                    select(TASKS.c.key, TASKS.c.crm_task_id, TASKS.c.status, TASKS.c.attempts,
                           TASKS.c.created_at)
                    .where(TASKS.c.crm == str(crm), TASKS.c.key.in_(batch)))}
        rows = []
        for task in tasks:
            row = known.get(task.key)
            confirmed = row is not None and row.status == OPEN and bool(row.crm_task_id)
            rows.append({"crm": str(crm), "key": task.key, "crm_task_id": row.crm_task_id if row else "",
                         "person_id": task.person_id, "owner": task.owner_id, "due": task.due_date,
                         "status": OPEN if confirmed else PENDING,
                         "created_at": row.created_at if row else moment, "updated_at": moment,
                         "run_id": run_id, "payload": self._dump_task(task),
                         "attempts": (row.attempts if row else 0) + 1, "last_error": None})
        with self._write() as conn:
            self._put_tasks(conn, rows)

    def _dump_task(self, task: TaskUpsert) -> str:
        adapter = self._adapters.get(TaskUpsert)
        if adapter is None:
            adapter = self._adapters[TaskUpsert] = TypeAdapter(TaskUpsert)
        return adapter.dump_json(task).decode()

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
        attempts: dict[str, int] = {}
        with self._read() as conn:
            for batch in _chunks(list(dict.fromkeys(t.key for t in tasks)), _IN_CHUNK):
                attempts |= {k: n for k, n in conn.execute(select(TASKS.c.key, TASKS.c.attempts).where(
                    TASKS.c.crm == str(crm), TASKS.c.key.in_(batch)))}
        rows, failed, resolved = [], [], []
        for task, result in zip(tasks, results, strict=True):
            record_id = task.person_record_id or task.account_record_id or task.key
            row = {"crm": str(crm), "key": task.key, "crm_task_id": result.crm_id or "",
                   "person_id": task.person_id, "owner": task.owner_id, "due": task.due_date,
                   "created_at": moment, "updated_at": moment, "run_id": run_id,
                   "payload": self._dump_task(task), "attempts": attempts.get(task.key, 1),
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

    # -- runs ------------------------------------------------------------------------------------------

    def start_run(self, kind: str, run_id: str | None = None, now: datetime | None = None) -> str:
        """Record a run as started; returns its id (a new one unless given, e.g. the flow run's id)."""
        run_id = run_id or uuid.uuid4().hex
        try:
            with self._write() as conn:
                conn.execute(RUNS.insert(), {"id": run_id, "kind": kind, "started_at": _now(now),
                                             "status": "running", "counts": {}})
        except IntegrityError:
            raise StoreError(f"a run with id {run_id!r} was already started") from None
        return run_id

    def finish_run(self, run_id: str, status: str = "ok", counts: Mapping[str, Any] | None = None,
                   api_calls: Mapping[str, Any] | None = None, error: str | None = None,
                   now: datetime | None = None) -> None:
        """Close a run with its outcome. `error` must already be free of secrets."""
        with self._write() as conn:
            result = conn.execute(update(RUNS).where(RUNS.c.id == run_id).values(
                finished_at=_now(now), status=status, counts=dict(counts or {}),
                api_calls=dict(api_calls) if api_calls is not None else None,
                error=error[:4000] if error else None))
        if not result.rowcount:
            raise StoreError(f"no run with id {run_id!r} was started")

    def get_run(self, run_id: str) -> Run | None:
        with self._read() as conn:
            row = conn.execute(select(RUNS).where(RUNS.c.id == run_id)).first()
        return Run(**row._mapping) if row else None

    def runs(self, kind: str | None = None, limit: int = 20) -> list[Run]:
        """The most recent runs first."""
        query = select(RUNS).order_by(RUNS.c.started_at.desc(), RUNS.c.id).limit(limit)
        if kind is not None:
            query = query.where(RUNS.c.kind == kind)
        with self._read() as conn:
            return [Run(**row._mapping) for row in conn.execute(query)]

    # -- routing state and data quality -----------------------------------------------------------------

    def load_assignment_state(self, name: str = "default") -> dict[str, Any]:
        """The saved assignment state (e.g. `AssignmentState.to_dict()`), {} when none was saved."""
        with self._read() as conn:
            state = conn.execute(
                select(ASSIGNMENT.c.state).where(ASSIGNMENT.c.name == name)).scalar_one_or_none()
        return dict(state) if state else {}

    def save_assignment_state(self, state: Mapping[str, Any], name: str = "default",
                              now: datetime | None = None) -> None:
        with self._write() as conn:
            self._upsert(conn, ASSIGNMENT, [{"name": name, "state": dict(state), "updated_at": _now(now)}],
                         ("name",), ("state", "updated_at"))

    def save_dq_findings(self, run_id: str | None, findings: Mapping[str, tuple[int, Sequence[Any]]],
                         now: datetime | None = None) -> None:
        """finding class → (count, a few examples), for one data-quality run."""
        moment = _now(now)
        rows = [{"run_id": run_id, "finding_class": name, "count": int(count), "examples": list(examples),
                 "found_at": moment} for name, (count, examples) in findings.items()]
        if rows:
            with self._write() as conn:
                conn.execute(FINDINGS.insert(), rows)

    def dq_history(self, finding_class: str | None = None, limit: int = 500) -> list[DqFinding]:
        """Findings, oldest first (the most recent `limit`), to show trends per class."""
        query = select(FINDINGS).order_by(FINDINGS.c.id.desc()).limit(limit)
        if finding_class is not None:
            query = query.where(FINDINGS.c.finding_class == finding_class)
        with self._read() as conn:
            rows = [DqFinding(**row._mapping) for row in conn.execute(query)]
        return rows[::-1]


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
