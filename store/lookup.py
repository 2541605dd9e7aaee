"""Reads about one person at a time, for `leadloop explain`: their CRM records, what leadloop last
wrote to them, their tasks, and the CRM users those tasks went to.

Each read goes through an index or a narrow filter and returns the store's own rows; nothing here
scores, routes or merges (the caller does, with the pure core). Finding people by email is the one
read that scans: a person's email lives in the stored payload, which no column indexes.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select

from leadloop.store.facade import Store
from leadloop.store.models import TaskLedger, WriteFailure, WrittenValue
from leadloop.store.tables import (
    _IN_CHUNK,
    FAILURES,
    LEDGER,
    LINKS,
    SNAPSHOTS,
    TASKS,
    _chunks,
    raw_crm_id,
)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """One stored CRM record: where it came from and its canonical payload, as stored (JSON text)."""

    crm: str
    stream: str  # the CRM object: Lead, Contact, contacts, Account, companies, User, ...
    record_id: str  # CRM-qualified, e.g. sf-lead:00Q...
    crm_id: str  # the CRM's own id
    payload: str
    quarantine_reason: str | None = None

    def field(self, name: str) -> Any:
        return json.loads(self.payload).get(name)


_RECORD_COLUMNS = (SNAPSHOTS.c.crm, SNAPSHOTS.c.stream, SNAPSHOTS.c.record_id, SNAPSHOTS.c.crm_id,
                   SNAPSHOTS.c.payload, SNAPSHOTS.c.quarantine_reason)


def _records(store: Store, kind: str, *conditions: Any) -> list[StoredRecord]:
    """The live (not deleted) stored records of `kind` meeting `conditions`, by record id."""
    query = (select(*_RECORD_COLUMNS)
             .where(SNAPSHOTS.c.kind == kind, SNAPSHOTS.c.deleted.is_(False),
                    SNAPSHOTS.c.payload.is_not(None), *conditions)
             .order_by(SNAPSHOTS.c.record_id, SNAPSHOTS.c.stream))
    with store._read() as conn:
        return [StoredRecord(*row) for row in conn.execute(query)]


def people_with_email(store: Store, email: str) -> list[StoredRecord]:
    """The stored person records (Leads, Contacts, HubSpot contacts) whose email is `email`, which
    must already be normalized as records store it (trimmed, lower case)."""
    # A coarse filter in SQL on the payload's JSON text, then an exact comparison on the parsed
    # payload: LIKE's wildcards in an address (`_`) are escaped, and a near miss is dropped.
    needle = '"email":' + json.dumps(email, ensure_ascii=False)
    found = _records(store, "people", SNAPSHOTS.c.payload.contains(needle, autoescape=True))
    return [record for record in found if record.field("email") == email]


def people_with_crm_id(store: Store, crm_id: str) -> list[StoredRecord]:
    """The stored person records with this CRM id: the CRM's own (`00Q...`, a HubSpot contact id) or
    CRM-qualified (`sf-lead:00Q...`)."""
    return _records(store, "people", or_(SNAPSHOTS.c.crm_id == raw_crm_id(crm_id),
                                         SNAPSHOTS.c.record_id == crm_id))


def canonical_ids(store: Store, record_ids: Iterable[str]) -> dict[str, str]:
    """CRM-qualified record id → the canonical id identity resolution linked it to (absent: none yet)."""
    links: dict[str, str] = {}
    with store._read() as conn:
        for chunk in _chunks(sorted(set(record_ids)), _IN_CHUNK):
            links |= {record_id: canonical for record_id, canonical in conn.execute(
                select(LINKS.c.record_id, LINKS.c.canonical_id).where(LINKS.c.record_id.in_(chunk)))}
    return links


def linked_records(store: Store, canonical_id: str, kind: str = "people") -> list[StoredRecord]:
    """The stored records identity resolution merged into `canonical_id` (a person, or an account
    with kind `accounts`)."""
    with store._read() as conn:
        members = list(conn.execute(select(LINKS.c.record_id).where(LINKS.c.canonical_id == canonical_id))
                       .scalars())
    found: list[StoredRecord] = []
    for chunk in _chunks(sorted(members), _IN_CHUNK):
        found += _records(store, kind, SNAPSHOTS.c.record_id.in_(chunk))
    return found


def written_values(store: Store, crm: str, record_ids: Iterable[str]) -> list[WrittenValue]:
    """The written ledger's rows for these CRM records (the CRM's own ids): the last value leadloop
    wrote to each of their fields."""
    rows: list[WrittenValue] = []
    with store._read() as conn:
        for chunk in _chunks(sorted(set(record_ids)), _IN_CHUNK):
            rows += [WrittenValue(**row._mapping) for row in conn.execute(
                select(LEDGER).where(LEDGER.c.crm == crm, LEDGER.c.record_id.in_(chunk))
                .order_by(LEDGER.c.record_id, LEDGER.c.field))]
    return rows


def open_write_failures(store: Store, crm: str, record_ids: Iterable[str]) -> list[WriteFailure]:
    """The writes to these CRM records (the CRM's own ids) that the CRM refused and that no later
    write has resolved."""
    rows: list[WriteFailure] = []
    with store._read() as conn:
        for chunk in _chunks(sorted(set(record_ids)), _IN_CHUNK):
            rows += [WriteFailure(**row._mapping) for row in conn.execute(
                select(FAILURES).where(FAILURES.c.crm == crm, FAILURES.c.record_id.in_(chunk),
                                       FAILURES.c.resolved_at.is_(None))
                .order_by(FAILURES.c.record_id, FAILURES.c.target))]
    return rows


def tasks_of_person(store: Store, person_id: str) -> list[TaskLedger]:
    """Every task ledger entry of one canonical person, in any CRM and state, newest first."""
    with store._read() as conn:
        return [TaskLedger(**row._mapping) for row in conn.execute(
            select(TASKS).where(TASKS.c.person_id == person_id)
            .order_by(TASKS.c.updated_at.desc(), TASKS.c.crm, TASKS.c.key))]


def crm_users(store: Store, crm: str, crm_ids: Iterable[str]) -> dict[str, StoredRecord]:
    """CRM user id → the stored CRM user (Salesforce User, HubSpot owner), for the ids stored."""
    found: dict[str, StoredRecord] = {}
    for chunk in _chunks(sorted(set(crm_ids)), _IN_CHUNK):
        found |= {r.crm_id: r for r in _records(store, "owners", SNAPSHOTS.c.crm == crm,
                                                 SNAPSHOTS.c.crm_id.in_(chunk))}
    return found
