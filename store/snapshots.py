"""What was pulled: snapshots of canonical records, cursors, quarantine, and the activities of one
account partition at a time."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Connection,
    Table,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
    update,
)

from leadloop.crm.activity_columns import ActivityColumns, columns_from_payloads
from leadloop.crm.dataset import RECORD_TYPES, Dataset, InvalidRecord, validate_payloads
from leadloop.crm.ports import family_of
from leadloop.crm.records import Activity
from leadloop.store.base import StoreBase
from leadloop.store.models import (
    Quarantine,
)
from leadloop.store.tables import (
    _BATCH,
    _IN_CHUNK,
    _KIND_BY_TYPE,
    _SNAPSHOT_COLUMNS,
    CURSORS,
    QUARANTINE,
    SNAPSHOTS,
    _chunks,
    _now,
    _record_id,
    raw_crm_id,
)

# PostgreSQL's form of the upsert's rule on a re-read that brings nothing new but the modification time
_PG_SAME = ("(NOT snapshots.deleted AND snapshots.quarantine_reason IS NULL AND "
            "(snapshots.payload::jsonb - 'updated_at') = (EXCLUDED.payload::jsonb - 'updated_at'))")
_PG_KEEP_UNCHANGED = ", ".join(f"{c} = CASE WHEN {_PG_SAME} THEN snapshots.{c} ELSE EXCLUDED.{c} END"
                               for c in ("payload", "stored_at"))
# the kinds whose rows keep their payload from before a change (`Snapshot.former`): the people and
# accounts they name are rescored when they no longer name them (people and accounts themselves are
# identity's, which notices a moved link)
FORMER_KINDS = ("activities", "opportunities", "contact_roles")
_PG_FORMER = (f"former = CASE WHEN snapshots.kind IN ({', '.join(repr(k) for k in FORMER_KINDS)}) "
              "AND snapshots.person_ref IS DISTINCT FROM EXCLUDED.person_ref THEN snapshots.payload "
              "ELSE snapshots.former END")
# records read whole (`store_pages`' `whole`) looked up per query: two key ranges each
_FAMILIES_PER_QUERY = 100


@lru_cache(maxsize=8)
def _family_query(families: int, postgresql: bool) -> Any:
    """The live record ids of `families` records read whole (`SnapshotStore._drop_the_rest`): each
    one's own id, and the ids after it that start with it and a colon. Byte order for the ranges
    (PostgreSQL's language collations sort by letters first); crm and stream in every term, so that
    SQLite searches the key once per term. Plain SQL text, built once per size: as an expression of
    200 terms the statement cost more to compile than to run."""
    key = 'record_id COLLATE "C"' if postgresql else "record_id"
    terms = [f"record_id = :f{n}" for n in range(families)]
    terms += [f"({key} > :lo{n} AND {key} < :hi{n})" for n in range(families)]
    return text("SELECT record_id FROM snapshots WHERE NOT deleted AND ("
                + " OR ".join(f"(crm = :crm AND stream = :stream AND {t})" for t in terms) + ")")


def _refs(kind: str, record: Any) -> str | None:
    """Whom a stored row names (`Snapshot.person_ref`): an activity's person; a contact role's person;
    an opportunity's account and contacts, sorted, space-separated. None for other kinds."""
    if kind == "activities" or kind == "contact_roles":
        return getattr(record, "person_id", None)
    if kind == "opportunities":
        contacts = getattr(record, "contact_ids", None) or ()
        named = sorted({getattr(record, "account_id", None), *contacts} - {None})
        return " ".join(named) or None
    return None


class SnapshotStore(StoreBase):
    """Snapshots, cursors and quarantine."""

    # -- snapshots, cursors, quarantine --------------------------------------------------------------

    def upsert_snapshots(self, crm: str, stream: str, records: Iterable[Any],
                         cursor: datetime | None = None, now: datetime | None = None) -> int:
        """Store the canonical records of one pulled page; returns how many were given.

        A record older than the stored one (by its own `updated_at`, e.g. from a lagging search
        index) never overwrites it. Storing a record un-deletes and un-quarantines it.
        """
        stored, _cursors = self.store_pages(crm, stream, [(records, cursor)], now=now)
        return stored

    def store_pages(self, crm: str, stream: str, pages: Iterable[tuple[Iterable[Any], datetime | None]],
                    cursors: Mapping[str, datetime] | None = None, now: datetime | None = None, *,
                    whole: Mapping[str, Collection[str]] | None = None) -> tuple[int, dict[str, datetime]]:
        """Store the records of several pulled pages (each with the cursor it came with) and move the
        `cursors` given (cursor row name → value, never back) in one transaction, so a cursor is
        committed with the records it covers or not at all, and SQLite commits once for all the
        pages. Returns how many records were stored (an id given twice counts once) and the values
        the named cursors now hold.

        `whole`: records read whole (`PulledPage.whole`) → the record ids each gives now; the stored
        records of each (`X`, `X:…`) not among them are marked deleted in the same transaction.

        Within the pages as in the store, a version of a record older than another (by its own
        `updated_at`) never replaces it; otherwise the later page's wins. Storing a record
        un-deletes and un-quarantines it.
        """
        moment = _now(now)
        at = self._time_param
        stored_at, crm = at(moment), str(crm)
        rows: dict[str, tuple[Any, ...]] = {}
        for records, cursor in pages:
            page_cursor = at(cursor)
            for record in records:
                record_id = _record_id(record)
                kind = _KIND_BY_TYPE.get(type(record)) or (
                    stream if isinstance(record, Mapping) else type(record).__name__.lower())
                row = (crm, stream, record_id, raw_crm_id(record_id), kind, self._dump(record), page_cursor,
                       at(getattr(record, "updated_at", None)), False, stored_at, None, _refs(kind, record))
                held = rows.get(record_id)
                # the same rule as the upsert's below: an older version never replaces a newer one
                if held is None or held[7] is None or row[7] is None or row[7] >= held[7]:
                    rows[record_id] = row
        if not rows and not cursors and not whole:
            return 0, {}
        table = SNAPSHOTS
        stmt = self._insert(table).values({name: bindparam(name) for name in _SNAPSHOT_COLUMNS})
        # a live record re-read with nothing new but its modification time (leadloop's own write-back,
        # an edit to a field leadloop does not read) keeps its stored payload and time of storing: no
        # change to rescore for, and no later "most recently updated" record in identity's merges
        key = literal_column("'$.updated_at'")
        same = and_(table.c.deleted.is_(False), table.c.quarantine_reason.is_(None),
                    func.json_remove(table.c.payload, key) == func.json_remove(stmt.excluded.payload, key))
        stmt = stmt.on_conflict_do_update(
            index_elements=["crm", "stream", "record_id"],
            set_={**{name: stmt.excluded[name] for name in _SNAPSHOT_COLUMNS[3:]},
                  "payload": case((same, table.c.payload), else_=stmt.excluded.payload),
                  "stored_at": case((same, table.c.stored_at), else_=stmt.excluded.stored_at),
                  # the payload from before the row last named other people or another account,
                  # kept through later changes (a run that dies before scoring leaves it for the
                  # next); see FORMER_KINDS. Literal kinds: the statement's parameters are the
                  # rows' columns only (`_executemany_raw`)
                  "former": case((and_(table.c.kind.in_([literal_column(repr(k)) for k in FORMER_KINDS]),
                                       table.c.person_ref.is_distinct_from(stmt.excluded.person_ref)),
                                  table.c.payload), else_=table.c.former)},
            # not older than what is stored, and something to change: an overlap re-read of
            # unchanged records then costs reads only
            where=and_(
                or_(table.c.updated_at.is_(None), stmt.excluded.updated_at.is_(None),
                    stmt.excluded.updated_at >= table.c.updated_at),
                or_(table.c.payload.is_distinct_from(stmt.excluded.payload), table.c.deleted.is_(True),
                    table.c.quarantine_reason.is_not(None)),
            ),
        )
        moved: dict[str, datetime] = {}
        with self._write() as conn:
            if rows:
                if conn.dialect.name == "postgresql":
                    self._copy_upsert_snapshots(conn, list(rows.values()))
                else:
                    self._executemany_raw(conn, stmt, _SNAPSHOT_COLUMNS, list(rows.values()))
                self._resolve_quarantine(conn, crm, stream, list(rows), moment)
            if whole:
                self._drop_the_rest(conn, crm, stream, whole, moment)
            for name, value in (cursors or {}).items():
                moved[name] = self._move_cursor(conn, crm, name, value, moment)
        return len(rows), moved

    @staticmethod
    def _drop_the_rest(conn: Connection, crm: str, stream: str, whole: Mapping[str, Collection[str]],
                       moment: datetime) -> int:
        """Mark deleted the live stored records of each record read whole (`X` and `X:…`: ranges of
        the primary key) that it no longer gives; returns how many."""
        gone: list[str] = []
        for chunk in _chunks(sorted(whole), _FAMILIES_PER_QUERY):
            query = _family_query(len(chunk), conn.dialect.name == "postgresql")
            values: dict[str, str] = {"crm": crm, "stream": stream}
            for n, family in enumerate(chunk):
                values |= {f"f{n}": family, f"lo{n}": f"{family}:", f"hi{n}": f"{family};"}
            found = conn.execute(query, values).scalars()
            gone += [rid for rid in found if rid not in whole.get(family_of(rid), (rid,))]
        for part in _chunks(gone, _IN_CHUNK):
            conn.execute(update(SNAPSHOTS).where(SNAPSHOTS.c.crm == crm, SNAPSHOTS.c.stream == stream,
                                                 SNAPSHOTS.c.record_id.in_(list(part)))
                         .values(deleted=True, stored_at=moment))
        return len(gone)

    @staticmethod
    def _copy_upsert_snapshots(conn: Connection, rows: list[tuple[Any, ...]]) -> None:
        """PostgreSQL: COPY the page into a session temp table, then one INSERT ... SELECT ... ON
        CONFLICT, several times faster than executemany for large pages."""
        columns = ", ".join(_SNAPSHOT_COLUMNS)
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in _SNAPSHOT_COLUMNS[3:]
                            if c not in ("payload", "stored_at"))
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
                f", {_PG_KEEP_UNCHANGED}, {_PG_FORMER} "
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
                             .values(quarantine_reason=row["reason"], stored_at=moment))
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
        with self._write() as conn:
            return self._move_cursor(conn, str(crm), stream, value, _now(now))

    def _move_cursor(self, conn: Connection, crm: str, stream: str, value: datetime,
                     moment: datetime) -> datetime:
        """`set_cursor` within the caller's transaction."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        row = {"crm": crm, "stream": stream, "value": value, "updated_at": moment}
        self._upsert(conn, CURSORS, [row], ("crm", "stream"), ("value", "updated_at"),
                     where=lambda stmt: stmt.excluded.value > CURSORS.c.value)
        return conn.execute(select(CURSORS.c.value).where(
            CURSORS.c.crm == crm, CURSORS.c.stream == stream)).scalar_one()

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

    def stored_through(self) -> datetime | None:
        """When the last snapshot row changed (stored, deleted or quarantined); None for an empty store."""
        with self._read() as conn:
            moment = conn.execute(select(func.max(SNAPSHOTS.c.stored_at))).scalar()
        return None if moment is None else _now(moment)

    def changed_since(self, moment: datetime) -> list[tuple[str, str, str | None, str | None, str | None]]:
        """(kind, record id, person_ref, payload, former payload) of every snapshot row stored, deleted
        or quarantined after `moment` (`stored_through` of an earlier read): what an hourly run
        rescores for. The former payload (activities, opportunities, contact roles) is the row's
        payload from before it last named other people or another account, None when it never named
        anyone else: whom an hourly run rescores too."""
        query = (select(SNAPSHOTS.c.kind, SNAPSHOTS.c.record_id, SNAPSHOTS.c.person_ref, SNAPSHOTS.c.payload,
                        SNAPSHOTS.c.former)
                 .where(SNAPSHOTS.c.stored_at > _now(moment)))
        with self._read() as conn:
            return [tuple(row) for row in conn.execute(query)]  # type: ignore[misc]

    def rows_changed_since(self, moment: datetime, kinds: Collection[str]
                           ) -> list[tuple[str, str, bool]]:
        """(kind, record id, live) of the snapshot rows of `kinds` stored, deleted or quarantined after
        `moment`; live: neither deleted nor quarantined."""
        query = (select(SNAPSHOTS.c.kind, SNAPSHOTS.c.record_id, SNAPSHOTS.c.deleted,
                        SNAPSHOTS.c.quarantine_reason, SNAPSHOTS.c.payload)
                 .where(SNAPSHOTS.c.stored_at > _now(moment), SNAPSHOTS.c.kind.in_(list(kinds))))
        with self._read() as conn:
            return [(kind, rid, not deleted and reason is None and payload is not None)
                    for kind, rid, deleted, reason, payload in conn.execute(query)]

    def records_by_id(self, kind: str, record_ids: Iterable[str]) -> tuple[list[Any], list[InvalidRecord]]:
        """The live records of one kind with the given ids, as `load_records` reads them (a record id
        stored under two streams keeps its most recently stored payload), in id order; and those whose
        payload no longer validates."""
        live = self._live(False, (kind,))
        raw: dict[str, dict[str, str]] = {kind: {}}
        with self._read() as conn:
            self._settle_newest(conn, live, SNAPSHOTS.c.record_id, sorted(set(record_ids)), raw)
        return validate_payloads(kind, sorted(raw[kind].items()))

    def changed_kinds_since(self, moment: datetime) -> set[str]:
        """The kinds of the snapshot rows stored, deleted or quarantined after `moment`."""
        query = select(SNAPSHOTS.c.kind).where(SNAPSHOTS.c.stored_at > _now(moment)).distinct()
        with self._read() as conn:
            return set(conn.execute(query).scalars())

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

    def load_activities(self, persons: Iterable[str | None] = (), ids: Iterable[str] = (), *,
                        skip: Collection[str] = (), include_quarantined: bool = False,
                        ) -> tuple[list[Activity], list[InvalidRecord]]:
        """The live activities of the given persons (None: those stored without a person) and those
        with the given record ids, except the ids in `skip`, in record-id order; each id on its most
        recently stored payload, as in `load_records`."""
        payloads = self._activity_payloads(persons, ids, skip, include_quarantined)
        return validate_payloads("activities", payloads)

    def load_activity_columns(self, persons: Iterable[str | None] = (), ids: Iterable[str] = (), *,
                              skip: Collection[str] = (), include_quarantined: bool = False,
                              every: bool = False) -> tuple[ActivityColumns, list[InvalidRecord]]:
        """`load_activities` as columns (`crm.activity_columns`): the same activities in the same
        order, and the same invalid records, without a record object per activity. For scoring,
        which reads a few fields of millions of activities. With `every`, all the live activities
        (one read of the table rather than one per chunk of persons)."""
        return columns_from_payloads(self._activity_payloads(persons, ids, skip, include_quarantined, every))

    def _activity_payloads(self, persons: Iterable[str | None], ids: Iterable[str], skip: Collection[str],
                           include_quarantined: bool, every: bool = False) -> list[tuple[str, str]]:
        """(record id, payload) of the activities `load_activities` reads (all of them with `every`),
        in record-id order."""
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

            if every:
                read(true())
            else:
                if None in persons:
                    read(SNAPSHOTS.c.person_ref.is_(None))
                for chunk in _chunks(wanted, _IN_CHUNK):
                    read(SNAPSHOTS.c.person_ref.in_(chunk))
                for chunk in _chunks(sorted(set(ids)), _IN_CHUNK):
                    read(SNAPSHOTS.c.record_id.in_(chunk))
            if twice:
                self._settle_newest(conn, live, SNAPSHOTS.c.record_id, sorted(twice), {"activities": by_id})
        return [(record_id, by_id[record_id]) for record_id in sorted(by_id)]

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
