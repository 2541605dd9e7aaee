"""What was written: the last value leadloop wrote to each CRM field, and the writes the CRMs refused."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    bindparam,
    func,
    select,
    update,
)

from leadloop.crm.changes import FieldUpdate
from leadloop.crm.ports import WriteResult
from leadloop.store.base import StoreBase
from leadloop.store.models import (
    WriteFailure,
)
from leadloop.store.tables import (
    _BATCH,
    _IN_CHUNK,
    FAILURES,
    LEDGER,
    StoreError,
    _chunks,
    _now,
    _unique,
)
from leadloop.store.writeplan import FieldNamer, ledger_text, logical_field


class LedgerStore(StoreBase):
    """The written ledger and write failures."""

    # -- written ledger and write failures ------------------------------------------------------------

    def ledger(self, crm: str, record_ids: Iterable[str] | None = None) -> dict[tuple[str, str], str]:
        """(CRM record id, field) → the last value leadloop wrote there, as text; with `record_ids`,
        for those records only (an hourly run plans the records of the people it rescored)."""
        query = select(LEDGER.c.record_id, LEDGER.c.field, LEDGER.c.value).where(LEDGER.c.crm == str(crm))
        with self._read() as conn:
            if record_ids is None:
                return {(record_id, field): value for record_id, field, value in conn.execute(query)}
            found: dict[tuple[str, str], str] = {}
            for chunk in _chunks(sorted(set(record_ids)), _IN_CHUNK):
                found.update(((record_id, field), value) for record_id, field, value in
                             conn.execute(query.where(LEDGER.c.record_id.in_(chunk))))
            return found

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
