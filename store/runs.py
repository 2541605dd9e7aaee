"""How each run went, the routing's assignment state, and data-quality findings."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from leadloop.store.base import StoreBase
from leadloop.store.models import (
    DqFinding,
    PlaybookActivation,
    Run,
)
from leadloop.store.tables import (
    ACTIVATIONS,
    ASSIGNMENT,
    FINDINGS,
    RUNS,
    StoreError,
    _now,
)


class RunStore(StoreBase):
    """Run records, assignment state, data-quality history."""

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

    # -- the live playbook ------------------------------------------------------------------------------

    def live_playbook(self) -> PlaybookActivation | None:
        """The playbook syncs score with (the latest activation), None before the first."""
        query = select(ACTIVATIONS).order_by(ACTIVATIONS.c.id.desc()).limit(1)
        with self._read() as conn:
            row = conn.execute(query).first()
        return PlaybookActivation(**row._mapping) if row else None

    def activate_playbook(self, *, name: str, model_version: str, source: str, text: str,
                          activated_by: str, run_id: str | None = None, reason: str = "",
                          now: datetime | None = None) -> PlaybookActivation:
        """Make a playbook live from now on; the history keeps every earlier one."""
        row = {"name": name, "model_version": model_version, "source": source, "text": text,
               "activated_at": _now(now), "run_id": run_id, "activated_by": activated_by, "reason": reason}
        with self._write() as conn:
            conn.execute(ACTIVATIONS.insert(), row)
        return PlaybookActivation(**row)

    def playbook_history(self, limit: int = 20) -> list[PlaybookActivation]:
        """Activations, the most recent first (the first is the live one)."""
        query = select(ACTIVATIONS).order_by(ACTIVATIONS.c.id.desc()).limit(limit)
        with self._read() as conn:
            return [PlaybookActivation(**row._mapping) for row in conn.execute(query)]

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
