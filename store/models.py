"""The state store's tables (sqlmodel), as of the latest schema version.

The schema itself is created and upgraded only by `store.migrations`; these classes describe the
current shape for queries, and a test checks that a migrated database matches them column for
column. Timestamps are stored as UTC and always come back timezone-aware.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, Date, DateTime, Float, Index, Integer, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC (naive in SQLite, `timestamptz` in PostgreSQL), read back aware.

    SQLite keeps datetimes as fixed-width text, so comparisons in SQL stay chronological.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"

    version: int = Field(primary_key=True, sa_type=Integer, sa_column_kwargs={"autoincrement": False})
    description: str = Field(sa_type=Text)
    applied_at: datetime = Field(sa_type=UtcDateTime)


class Snapshot(SQLModel, table=True):
    """The latest canonical record seen for one CRM record of one pulled stream."""

    __tablename__ = "snapshots"
    __table_args__ = (Index("ix_snapshots_kind_live", "kind", "deleted"),
                      Index("ix_snapshots_crm_id", "crm", "stream", "crm_id"),
                      Index("ix_snapshots_person_ref", "kind", "person_ref", "deleted"),
                      Index("ix_snapshots_stored_at", "stored_at"))

    crm: str = Field(primary_key=True, sa_type=Text)
    stream: str = Field(primary_key=True, sa_type=Text)
    record_id: str = Field(primary_key=True, sa_type=Text)  # CRM-qualified, e.g. sf-lead:00Q5e00000AbCdEEAZ
    crm_id: str = Field(sa_type=Text)  # the CRM's own id, e.g. 00Q5e00000AbCdEEAZ
    kind: str = Field(sa_type=Text)  # canonical kind: people, accounts, activities, ...
    payload: str | None = Field(default=None, sa_type=Text)  # the canonical record as JSON
    cursor: datetime | None = Field(default=None, sa_type=UtcDateTime)  # page cursor when stored
    updated_at: datetime | None = Field(default=None, sa_type=UtcDateTime)  # the record's own
    deleted: bool = Field(default=False, sa_type=Boolean)
    stored_at: datetime = Field(sa_type=UtcDateTime)
    quarantine_reason: str | None = Field(default=None, sa_type=Text)
    # whom the row names (CRM-qualified ids): an activity's or contact role's person; an opportunity's
    # account and contacts, sorted, space-separated (stored since schema version 8)
    person_ref: str | None = Field(default=None, sa_type=Text)
    # an activity's, opportunity's or contact role's payload from before it last named someone else
    # (an activity moved to another person): an hourly run rescores them too
    former: str | None = Field(default=None, sa_type=Text)


class Cursor(SQLModel, table=True):
    __tablename__ = "cursors"

    crm: str = Field(primary_key=True, sa_type=Text)
    stream: str = Field(primary_key=True, sa_type=Text)
    value: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class IdentityLink(SQLModel, table=True):
    """CRM-qualified record id → canonical person or account id."""

    __tablename__ = "identity_links"
    __table_args__ = (Index("ix_identity_links_canonical", "canonical_id"),)

    record_id: str = Field(primary_key=True, sa_type=Text)
    canonical_id: str = Field(sa_type=Text)
    kind: str = Field(sa_type=Text)  # person | account
    linked_at: datetime = Field(sa_type=UtcDateTime)
    # what identity read of the record to link it, at the merge that saved the link
    # (`crm.identity.identity_key`; stored since schema version 9)
    identity_key: str | None = Field(default=None, sa_type=Text)


class CanonicalRecord(SQLModel, table=True):
    """A canonical person, account or opportunity as identity last merged it (`kind` as in
    `Dataset`), kept with the stored time it covers (`Store.kept_identity`): an hourly run whose
    change since then leaves identity's inputs alone reads the part it rescores from here instead of
    merging the whole store again."""

    __tablename__ = "canonical_records"
    __table_args__ = (Index("ix_canonical_records_account", "account_id"),)

    kind: str = Field(primary_key=True, sa_type=Text)
    id: str = Field(primary_key=True, sa_type=Text)
    account_id: str | None = Field(default=None, sa_type=Text)
    payload: str = Field(sa_type=Text)


class IdentityConflictRow(SQLModel, table=True):
    __tablename__ = "identity_conflicts"

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    kind: str = Field(sa_type=Text)
    record_ids: list[str] = Field(default_factory=list, sa_type=JSON)
    detail: str = Field(sa_type=Text)
    detected_at: datetime = Field(sa_type=UtcDateTime)


class ScoreHistory(SQLModel, table=True):
    __tablename__ = "score_history"
    __table_args__ = (Index("ix_score_history_person", "person_id", "id"),
                      Index("ix_score_history_run", "run_id"))

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    run_id: str | None = Field(default=None, sa_type=Text)
    person_id: str = Field(sa_type=Text)
    account_id: str | None = Field(default=None, sa_type=Text)
    model_version: str = Field(sa_type=Text)
    tier: str = Field(sa_type=Text)
    score: float = Field(sa_type=Float)
    fit: float = Field(sa_type=Float)
    intent: float = Field(sa_type=Float)
    scored_at: datetime = Field(sa_type=UtcDateTime)
    card: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class AccountScoreHistory(SQLModel, table=True):
    __tablename__ = "account_score_history"
    __table_args__ = (Index("ix_account_score_history_account", "account_id", "id"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    run_id: str | None = Field(default=None, sa_type=Text)
    account_id: str = Field(sa_type=Text)
    model_version: str = Field(sa_type=Text)
    tier: str = Field(sa_type=Text)
    fit: float = Field(sa_type=Float)
    intent: float = Field(sa_type=Float)
    scored_at: datetime = Field(sa_type=UtcDateTime)
    score: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)


class WrittenValue(SQLModel, table=True):
    """The written ledger: the last value leadloop wrote to one CRM field of one record."""

    __tablename__ = "written_ledger"

    crm: str = Field(primary_key=True, sa_type=Text)
    record_id: str = Field(primary_key=True, sa_type=Text)  # the CRM's own record id
    field: str = Field(primary_key=True, sa_type=Text)  # the CRM's field name
    value: str = Field(sa_type=Text)
    written_at: datetime = Field(sa_type=UtcDateTime)
    run_id: str | None = Field(default=None, sa_type=Text)


class TaskLedger(SQLModel, table=True):
    """The task outbox and ledger: leadloop's deterministic key → the task it must deliver (`payload`)
    and, once the CRM confirmed it, the task the CRM created for it (`crm_task_id`, status `open`).
    `pending`: sent or about to be, outcome not known yet; `rejected`: the CRM said no, retried each
    run; `failed`: given up after too many attempts (the reason stays in `last_error`)."""

    __tablename__ = "task_ledger"
    __table_args__ = (Index("ix_task_ledger_status", "crm", "status"),)

    crm: str = Field(primary_key=True, sa_type=Text)
    key: str = Field(primary_key=True, sa_type=Text)
    crm_task_id: str = Field(sa_type=Text)
    person_id: str | None = Field(default=None, sa_type=Text)
    owner: str | None = Field(default=None, sa_type=Text)
    due: date | None = Field(default=None, sa_type=Date)
    status: str = Field(default="open", sa_type=Text)
    created_at: datetime = Field(sa_type=UtcDateTime)
    updated_at: datetime = Field(sa_type=UtcDateTime)
    run_id: str | None = Field(default=None, sa_type=Text)
    payload: str | None = Field(default=None, sa_type=Text)  # the TaskUpsert as JSON, until delivered
    attempts: int = Field(default=0, sa_type=Integer)
    last_error: str | None = Field(default=None, sa_type=Text)


class WriteFailure(SQLModel, table=True):
    """One record whose write the CRM rejected; retried on the next run until it succeeds."""

    __tablename__ = "write_failures"

    crm: str = Field(primary_key=True, sa_type=Text)
    record_id: str = Field(primary_key=True, sa_type=Text)
    target: str = Field(primary_key=True, sa_type=Text)  # a CRM field name, or "task:<key>"
    reason: str = Field(sa_type=Text)
    attempts: int = Field(default=1, sa_type=Integer)
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    run_id: str | None = Field(default=None, sa_type=Text)
    retriable: bool = Field(default=False, sa_type=Boolean)


class Run(SQLModel, table=True):
    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_kind_started", "kind", "started_at"),)

    id: str = Field(primary_key=True, sa_type=Text)
    kind: str = Field(sa_type=Text)
    started_at: datetime = Field(sa_type=UtcDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    status: str = Field(default="running", sa_type=Text)
    counts: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    error: str | None = Field(default=None, sa_type=Text)
    api_calls: dict[str, Any] | None = Field(default=None, sa_type=JSON)

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class RunLease(SQLModel, table=True):
    """The one writer of the store: which run holds it, where, and when it last said it was alive."""

    __tablename__ = "run_lease"

    name: str = Field(primary_key=True, sa_type=Text)
    holder: str | None = Field(default=None, sa_type=Text)
    kind: str | None = Field(default=None, sa_type=Text)
    host: str | None = Field(default=None, sa_type=Text)
    pid: int | None = Field(default=None, sa_type=Integer)
    acquired_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=UtcDateTime)


class PlaybookActivation(SQLModel, table=True):
    """One playbook made live: its name, version and whole text, when, by which run and who, and why.

    The latest row is the live playbook. Rows are never changed or deleted: the history says which
    playbook scored the CRM at any moment. The text is kept so every worker scores with exactly
    the live playbook, whatever files it has."""

    __tablename__ = "playbook_activations"
    __table_args__ = (Index("ix_playbook_activations_at", "activated_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    name: str = Field(sa_type=Text)
    model_version: str = Field(sa_type=Text)
    source: str = Field(sa_type=Text)  # the file or shipped name it was read from, as given
    text: str = Field(sa_type=Text)
    activated_at: datetime = Field(sa_type=UtcDateTime)
    run_id: str | None = Field(default=None, sa_type=Text)
    activated_by: str = Field(sa_type=Text)  # user@host of the process, or the Prefect flow run
    reason: str = Field(default="", sa_type=Text)


class AssignmentStateRow(SQLModel, table=True):
    __tablename__ = "assignment_state"

    name: str = Field(primary_key=True, sa_type=Text)
    state: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    updated_at: datetime = Field(sa_type=UtcDateTime)


class ScoreDue(SQLModel, table=True):
    """When a person's last score stops holding without new data (decay crossing a whole point or a
    tier, a window ending): the hourly sync rescores people whose time has come, and those whose
    records changed, and nobody else."""

    __tablename__ = "score_due"
    __table_args__ = (Index("ix_score_due_at", "due_at"),)

    person_id: str = Field(primary_key=True, sa_type=Text)
    due_at: datetime = Field(sa_type=UtcDateTime)


class DqFinding(SQLModel, table=True):
    """How many records one data-quality check flagged in one run, with a few examples."""

    __tablename__ = "dq_findings"
    __table_args__ = (Index("ix_dq_findings_class", "finding_class", "found_at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=Integer)
    run_id: str | None = Field(default=None, sa_type=Text)
    finding_class: str = Field(sa_type=Text)
    count: int = Field(sa_type=Integer)
    examples: list[Any] = Field(default_factory=list, sa_type=JSON)
    found_at: datetime = Field(sa_type=UtcDateTime)


class Quarantine(SQLModel, table=True):
    """A CRM record that could not be mapped to a canonical record, and why."""

    __tablename__ = "quarantine"

    crm: str = Field(primary_key=True, sa_type=Text)
    stream: str = Field(primary_key=True, sa_type=Text)
    crm_id: str = Field(primary_key=True, sa_type=Text)
    reason: str = Field(sa_type=Text)
    times_seen: int = Field(default=1, sa_type=Integer)
    first_seen: datetime = Field(sa_type=UtcDateTime)
    last_seen: datetime = Field(sa_type=UtcDateTime)
    resolved_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    run_id: str | None = Field(default=None, sa_type=Text)
