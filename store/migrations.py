"""The versioned schema of the state store: ordered migration steps and the `schema_version` table.

Each step's DDL is frozen here as it was when that version shipped (never derived from the current
models), so a newer leadloop upgrades an older state database in place, step by step, without
losing rows. Steps run in one transaction under a lock (PostgreSQL advisory lock, SQLite
`BEGIN IMMEDIATE`), so two processes opening the same store at once migrate it once.

To change the schema: append a step; never edit a shipped one; update `store/models.py` to match
(a test compares a migrated database with the models).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Float,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    false,
    inspect,
    text,
)

from leadloop.store.models import SchemaVersion, UtcDateTime

# An arbitrary constant naming leadloop's migration lock among PostgreSQL advisory locks.
_PG_LOCK_ID = 0x1EAD_1009


class SchemaError(RuntimeError):
    """The state database cannot be used by this version of leadloop; the message says why."""


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    apply: Callable[[Connection], None]


def _pk(name: str) -> Column:
    return Column(name, Text, primary_key=True)


def _v1_metadata() -> MetaData:
    md = MetaData()
    Table("schema_version", md,
          Column("version", Integer, primary_key=True, autoincrement=False),
          Column("description", Text, nullable=False),
          Column("applied_at", UtcDateTime, nullable=False))
    Table("snapshots", md,
          _pk("crm"), _pk("stream"), _pk("record_id"),
          Column("crm_id", Text, nullable=False),
          Column("kind", Text, nullable=False),
          Column("payload", Text),
          Column("cursor", UtcDateTime),
          Column("updated_at", UtcDateTime),
          Column("deleted", Boolean, nullable=False),
          Column("stored_at", UtcDateTime, nullable=False),
          Index("ix_snapshots_kind_live", "kind", "deleted"),
          Index("ix_snapshots_crm_id", "crm", "stream", "crm_id"))
    Table("cursors", md,
          _pk("crm"), _pk("stream"),
          Column("value", UtcDateTime, nullable=False),
          Column("updated_at", UtcDateTime, nullable=False))
    Table("identity_links", md,
          _pk("record_id"),
          Column("canonical_id", Text, nullable=False),
          Column("kind", Text, nullable=False),
          Column("linked_at", UtcDateTime, nullable=False),
          Index("ix_identity_links_canonical", "canonical_id"))
    Table("identity_conflicts", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("kind", Text, nullable=False),
          Column("record_ids", JSON, nullable=False),
          Column("detail", Text, nullable=False),
          Column("detected_at", UtcDateTime, nullable=False))
    Table("score_history", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("run_id", Text),
          Column("person_id", Text, nullable=False),
          Column("account_id", Text),
          Column("model_version", Text, nullable=False),
          Column("tier", Text, nullable=False),
          Column("score", Float, nullable=False),
          Column("fit", Float, nullable=False),
          Column("intent", Float, nullable=False),
          Column("scored_at", UtcDateTime, nullable=False),
          Column("card", JSON, nullable=False),
          Index("ix_score_history_person", "person_id", "id"),
          Index("ix_score_history_run", "run_id"))
    Table("written_ledger", md,
          _pk("crm"), _pk("record_id"), _pk("field"),
          Column("value", Text, nullable=False),
          Column("written_at", UtcDateTime, nullable=False),
          Column("run_id", Text))
    Table("task_ledger", md,
          _pk("crm"), _pk("key"),
          Column("crm_task_id", Text, nullable=False),
          Column("person_id", Text),
          Column("owner", Text),
          Column("due", Date),
          Column("status", Text, nullable=False),
          Column("created_at", UtcDateTime, nullable=False),
          Column("updated_at", UtcDateTime, nullable=False),
          Column("run_id", Text))
    Table("write_failures", md,
          _pk("crm"), _pk("record_id"), _pk("target"),
          Column("reason", Text, nullable=False),
          Column("attempts", Integer, nullable=False),
          Column("first_seen", UtcDateTime, nullable=False),
          Column("last_seen", UtcDateTime, nullable=False),
          Column("resolved_at", UtcDateTime),
          Column("run_id", Text))
    Table("runs", md,
          _pk("id"),
          Column("kind", Text, nullable=False),
          Column("started_at", UtcDateTime, nullable=False),
          Column("finished_at", UtcDateTime),
          Column("status", Text, nullable=False),
          Column("counts", JSON, nullable=False),
          Column("error", Text),
          Index("ix_runs_kind_started", "kind", "started_at"))
    return md


def _v2_new_tables() -> MetaData:
    md = MetaData()
    Table("account_score_history", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("run_id", Text),
          Column("account_id", Text, nullable=False),
          Column("model_version", Text, nullable=False),
          Column("tier", Text, nullable=False),
          Column("fit", Float, nullable=False),
          Column("intent", Float, nullable=False),
          Column("scored_at", UtcDateTime, nullable=False),
          Column("score", JSON, nullable=False),
          Index("ix_account_score_history_account", "account_id", "id"))
    Table("assignment_state", md,
          _pk("name"),
          Column("state", JSON, nullable=False),
          Column("updated_at", UtcDateTime, nullable=False))
    Table("dq_findings", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("run_id", Text),
          Column("finding_class", Text, nullable=False),
          Column("count", Integer, nullable=False),
          Column("examples", JSON, nullable=False),
          Column("found_at", UtcDateTime, nullable=False),
          Index("ix_dq_findings_class", "finding_class", "found_at"))
    Table("quarantine", md,
          _pk("crm"), _pk("stream"), _pk("crm_id"),
          Column("reason", Text, nullable=False),
          Column("times_seen", Integer, nullable=False),
          Column("first_seen", UtcDateTime, nullable=False),
          Column("last_seen", UtcDateTime, nullable=False),
          Column("resolved_at", UtcDateTime),
          Column("run_id", Text))
    return md


def add_column(conn: Connection, table: str, column: Column, default_sql: str | None = None) -> None:
    """`ALTER TABLE ... ADD COLUMN`, which both SQLite and PostgreSQL run without rewriting rows."""
    preparer = conn.dialect.identifier_preparer
    ddl = (f"ALTER TABLE {preparer.quote(table)} ADD COLUMN {preparer.quote(column.name)} "
           f"{column.type.compile(dialect=conn.dialect)}")
    if default_sql is not None:
        ddl += f" DEFAULT {default_sql}"
    if not column.nullable:
        ddl += " NOT NULL"
    conn.exec_driver_sql(ddl)


def _v1(conn: Connection) -> None:
    _v1_metadata().create_all(conn)


def _v2(conn: Connection) -> None:
    add_column(conn, "snapshots", Column("quarantine_reason", Text))
    add_column(conn, "runs", Column("api_calls", JSON))
    add_column(conn, "write_failures", Column("retriable", Boolean, nullable=False),
               default_sql=str(false().compile(dialect=conn.dialect)))
    _v2_new_tables().create_all(conn)


def _v3(conn: Connection) -> None:
    """Each stored activity names its person in a column, so a sync can read the activities of one
    account partition at a time instead of every activity at once. Existing rows are filled from
    their payloads (leadloop wrote them, so they are JSON)."""
    add_column(conn, "snapshots", Column("person_ref", Text))
    extract = ("payload::json ->> 'person_id'" if conn.dialect.name == "postgresql"
               else "json_extract(payload, '$.person_id')")
    conn.exec_driver_sql(f"UPDATE snapshots SET person_ref = {extract} "
                         "WHERE kind = 'activities' AND payload IS NOT NULL")
    # deleted too: with both equalities SQLite picks this index over (kind, deleted)
    conn.exec_driver_sql("CREATE INDEX ix_snapshots_person_ref ON snapshots (kind, person_ref, deleted)")


def _v4(conn: Connection) -> None:
    """The task ledger becomes an outbox (each entry keeps the task it must deliver, its attempts and
    last error), and one lease row lets a single writing run hold the store at a time."""
    add_column(conn, "task_ledger", Column("payload", Text))
    add_column(conn, "task_ledger", Column("attempts", Integer, nullable=False), default_sql="0")
    add_column(conn, "task_ledger", Column("last_error", Text))
    conn.exec_driver_sql("CREATE INDEX ix_task_ledger_status ON task_ledger (crm, status)")
    md = MetaData()
    Table("run_lease", md,
          _pk("name"),
          Column("holder", Text),
          Column("kind", Text),
          Column("host", Text),
          Column("pid", Integer),
          Column("acquired_at", UtcDateTime),
          Column("heartbeat_at", UtcDateTime))
    md.create_all(conn)


def _v5(conn: Connection) -> None:
    """Which playbook is live: each activation with the playbook's text, so syncs score with it."""
    md = MetaData()
    Table("playbook_activations", md,
          Column("id", Integer, primary_key=True, autoincrement=True),
          Column("name", Text, nullable=False),
          Column("model_version", Text, nullable=False),
          Column("source", Text, nullable=False),
          Column("text", Text, nullable=False),
          Column("activated_at", UtcDateTime, nullable=False),
          Column("run_id", Text),
          Column("activated_by", Text, nullable=False),
          Column("reason", Text, nullable=False),
          Index("ix_playbook_activations_at", "activated_at"))
    md.create_all(conn)


def _v6(conn: Connection) -> None:
    """When each person's score is next due, and the snapshots by when they were stored: what an
    hourly sync reads to rescore only what changed or came due."""
    md = MetaData()
    Table("score_due", md,
          _pk("person_id"),
          Column("due_at", UtcDateTime, nullable=False),
          Index("ix_score_due_at", "due_at"))
    md.create_all(conn)
    conn.exec_driver_sql("CREATE INDEX ix_snapshots_stored_at ON snapshots (stored_at)")


def _v7(conn: Connection) -> None:
    """The canonical people, accounts and opportunities identity last merged: an hourly sync whose
    change since leaves identity's inputs alone reads its part from here."""
    md = MetaData()
    Table("canonical_records", md,
          _pk("kind"), _pk("id"),
          Column("account_id", Text),
          Column("payload", Text, nullable=False),
          Index("ix_canonical_records_account", "account_id"))
    md.create_all(conn)


def _v8(conn: Connection) -> None:
    """An activity, opportunity or contact role that comes to name other people or another account
    keeps its payload from before: an hourly run rescores those it no longer names. Whom a row names
    is `person_ref`, which opportunities and contact roles get from this version on; for one stored
    before, the first change counts as a move (its former payload is kept, once)."""
    add_column(conn, "snapshots", Column("former", Text))


def _v9(conn: Connection) -> None:
    """Each identity link keeps what identity read of its record (email, account, cross-ids; a
    domain): an hourly run whose changed people and accounts all read as at the last merge updates
    those records' canonical ones alone. Links saved before have none, so the next run merges all."""
    add_column(conn, "identity_links", Column("identity_key", Text))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "snapshots, cursors, identity, score history, ledgers, write failures, runs", _v1),
    Migration(2, "quarantine, data-quality findings, assignment state, account score history, "
                 "API calls per run, retriable write failures", _v2),
    Migration(3, "the person of each stored activity, for reading the store one partition at a time", _v3),
    Migration(4, "the task outbox (payload, attempts, last error) and the writers' run lease", _v4),
    Migration(5, "the live playbook and the history of activations", _v5),
    Migration(6, "when each person's score is next due; snapshots by the time they were stored", _v6),
    Migration(7, "the canonical records identity last merged, for hourly syncs that leave identity alone",
              _v7),
    Migration(8, "the payload an activity, opportunity or contact role had before it named someone else",
              _v8),
    Migration(9, "what identity read of each linked record, for hourly syncs that merge only what changed",
              _v9),
)
LATEST_VERSION = MIGRATIONS[-1].version


def current_version(conn: Connection) -> int:
    """The schema version of the database behind `conn`; 0 for an empty database."""
    if not inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(text("SELECT max(version) FROM schema_version")).scalar()
    return int(value or 0)


def migrate(engine: Engine, up_to: int = LATEST_VERSION) -> list[int]:
    """Bring the database to version `up_to`; returns the versions applied (empty when current).

    Raises SchemaError when the database was written by a newer leadloop.
    """
    with engine.connect() as conn:
        conn.execution_options(sqlite_immediate=True)
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _PG_LOCK_ID})
            found = current_version(conn)
            if found > LATEST_VERSION:
                raise SchemaError(
                    f"the state database has schema version {found}, newer than this leadloop "
                    f"understands ({LATEST_VERSION}); upgrade leadloop or point it at another store"
                )
            applied = []
            for step in MIGRATIONS:
                if found < step.version <= up_to:
                    step.apply(conn)
                    conn.execute(SchemaVersion.__table__.insert(), {  # type: ignore[attr-defined]
                        "version": step.version, "description": step.description,
                        "applied_at": datetime.now(UTC),
                    })
                    applied.append(step.version)
            return applied
