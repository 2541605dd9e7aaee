"""Who is who and what was scored: identity links and conflicts, person and account score history."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Text,
    cast,
    delete,
    func,
    select,
    update,
)

from leadloop.crm.dataset import validate_payloads
from leadloop.crm.identity import IdentityConflict
from leadloop.crm.version import leadloop_version
from leadloop.store.base import StoreBase
from leadloop.store.tables import (
    _ACCOUNT_PREFIXES,
    _ACCOUNT_SCORE_COLUMNS,
    _IN_CHUNK,
    _SCORE_COLUMNS,
    ACCOUNT_SCORES,
    ASSIGNMENT,
    CANONICAL,
    CONFLICTS,
    DUE,
    LINKS,
    SCORES,
    StoreError,
    _chunks,
    _now,
    _scored_at,
)

KEPT_IDENTITY = "identity"  # the assignment_state row saying what the kept canonical records cover


class ScoreStore(StoreBase):
    """Identity links and score history."""

    # -- identity ---------------------------------------------------------------------------------

    def save_identity(self, links: Mapping[str, str], conflicts: Sequence[IdentityConflict] = (),
                      now: datetime | None = None, *, records: Mapping[str, Sequence[Any]] | None = None,
                      through: datetime | None = None, keys: Mapping[str, str] | None = None) -> None:
        """Replace the identity links (CRM-qualified id → canonical id) and the current conflicts;
        with `records` (kind → the canonical people, accounts and opportunities they merge into), keep
        those too, as merged from the snapshots stored up to `through` (`kept_identity`). Without
        them, whatever was kept no longer matches the links and is dropped. `keys`: record id → what
        identity read of it (`crm.identity.identity_key`), kept with its link."""
        keys = keys or {}
        moment = _now(now)
        with self._write() as conn:
            conn.execute(delete(CANONICAL))
            conn.execute(delete(ASSIGNMENT).where(ASSIGNMENT.c.name == KEPT_IDENTITY))
            if records is not None:
                self._bulk_insert(conn, CANONICAL, ("kind", "id", "account_id", "payload"),  # type: ignore[attr-defined]
                                  [(kind, record.id, getattr(record, "account_id", None), self._dump(record))
                                   for kind, kept in records.items() for record in kept])
                state = {"through": _now(through).isoformat() if through else None,
                         "version": leadloop_version()}
                conn.execute(ASSIGNMENT.insert(),
                             [{"name": KEPT_IDENTITY, "state": state, "updated_at": moment}])
            existing = {rid: (canonical, key) for rid, canonical, key in conn.execute(
                select(LINKS.c.record_id, LINKS.c.canonical_id, LINKS.c.identity_key))}
            gone = [r for r in existing if r not in links]
            for chunk in _chunks(gone, _IN_CHUNK):
                conn.execute(delete(LINKS).where(LINKS.c.record_id.in_(chunk)))
            changed = [
                {"record_id": record_id, "canonical_id": canonical, "linked_at": moment,
                 "kind": "account" if record_id.startswith(_ACCOUNT_PREFIXES) else "person",
                 "identity_key": keys.get(record_id)}
                for record_id, canonical in links.items()
                if existing.get(record_id) != (canonical, keys.get(record_id))
            ]
            self._upsert(conn, LINKS, changed, ("record_id",),
                         ("canonical_id", "kind", "linked_at", "identity_key"))
            conn.execute(delete(CONFLICTS))
            if conflicts:
                conn.execute(CONFLICTS.insert(), [
                    {"kind": c.kind, "record_ids": list(c.record_ids), "detail": c.detail,
                     "detected_at": moment}
                    for c in conflicts
                ])

    def kept_identity(self) -> datetime | None:
        """Up to when the snapshots were stored that the kept canonical records were merged from (see
        `save_identity`); None when none are kept, or kept by another version of leadloop."""
        with self._read() as conn:
            state = conn.execute(select(ASSIGNMENT.c.state)
                                 .where(ASSIGNMENT.c.name == KEPT_IDENTITY)).scalar_one_or_none()
        if not state or state.get("version") != leadloop_version() or not state.get("through"):
            return None
        return _now(datetime.fromisoformat(state["through"]))

    def canonical_accounts_of_people(self) -> dict[str, str | None]:
        """Every kept canonical person's id → their account's id, in id order."""
        query = (select(CANONICAL.c.id, CANONICAL.c.account_id).where(CANONICAL.c.kind == "people")
                 .order_by(CANONICAL.c.id))
        with self._read() as conn:
            return dict(conn.execute(query).tuples().all())

    def canonical_ids(self, kind: str) -> list[str]:
        """The ids of the kept canonical records of one kind."""
        with self._read() as conn:
            return list(conn.execute(select(CANONICAL.c.id).where(CANONICAL.c.kind == kind)).scalars())

    def canonical_records(self, kind: str, ids: Collection[str] | None = None) -> list[Any]:
        """The kept canonical records of one kind (`people`, `accounts`, `opportunities`) in id order:
        all of them, or those with the given ids."""
        payloads: list[tuple[str, str]] = []
        with self._read() as conn:
            base = select(CANONICAL.c.id, CANONICAL.c.payload).where(CANONICAL.c.kind == kind)
            if ids is None:
                payloads.extend(conn.execute(base).tuples())
            else:
                for chunk in _chunks(sorted(ids), _IN_CHUNK):
                    payloads.extend(conn.execute(base.where(CANONICAL.c.id.in_(chunk))).tuples())
        payloads.sort()
        records, invalid = validate_payloads(kind, payloads)
        if invalid:  # written by this very version (see `kept_identity`): not the user's data
            raise StoreError(f"kept canonical {kind} no longer load: {invalid[0].record_id}: "
                             f"{'; '.join(invalid[0].problems)}")
        return records

    def identity_keys(self, record_ids: Iterable[str]) -> dict[str, str | None]:
        """Record id → what identity read of it at the merge that saved its link (None: saved before
        schema version 9); records without a link are absent."""
        keys: dict[str, str | None] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(record_ids)), _IN_CHUNK):
                keys.update((rid, key) for rid, key in conn.execute(
                    select(LINKS.c.record_id, LINKS.c.identity_key).where(LINKS.c.record_id.in_(chunk))))
        return keys

    def linked_to(self, canonical_ids: Iterable[str]) -> dict[str, list[str]]:
        """Canonical id → the record ids linked to it, in id order."""
        members: dict[str, list[str]] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(set(canonical_ids)), _IN_CHUNK):
                for rid, canonical in conn.execute(select(LINKS.c.record_id, LINKS.c.canonical_id)
                                                   .where(LINKS.c.canonical_id.in_(chunk))):
                    members.setdefault(canonical, []).append(rid)
        return {canonical: sorted(ids) for canonical, ids in members.items()}

    def patch_identity(self, records: Mapping[str, Sequence[Any]], removed: Mapping[str, Collection[str]],
                       through: datetime | None) -> None:
        """Replace some kept canonical records (kind → records) and drop others (kind → ids), now
        merged from the snapshots stored up to `through`: for a change that left every link as it
        was (`save_identity` keeps the rest)."""
        going: dict[str, set[str]] = {kind: {r.id for r in kept} for kind, kept in records.items()}
        for kind, ids in removed.items():
            going.setdefault(kind, set()).update(ids)
        with self._write() as conn:
            for kind, ids in going.items():
                for chunk in _chunks(sorted(ids), _IN_CHUNK):
                    conn.execute(delete(CANONICAL).where(CANONICAL.c.kind == kind, CANONICAL.c.id.in_(chunk)))
            self._bulk_insert(conn, CANONICAL, ("kind", "id", "account_id", "payload"),  # type: ignore[attr-defined]
                              [(kind, record.id, getattr(record, "account_id", None), self._dump(record))
                               for kind, kept in records.items() for record in kept])
            conn.execute(update(ASSIGNMENT).where(ASSIGNMENT.c.name == KEPT_IDENTITY).values(
                state={"through": _now(through).isoformat() if through else None,
                       "version": leadloop_version()}, updated_at=_now(None)))

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

    def latest_scorecards_json(self, person_ids: Collection[str] | None = None) -> dict[str, str]:
        """`latest_scorecards` as the stored JSON text, for callers that decode many cards at once
        (decoding 100,000 cards row by row through the JSON column cost more than the query); with
        `person_ids`, only theirs (an hourly run reads the cards of the people it rescores)."""
        query = select(SCORES.c.person_id, cast(SCORES.c.card, Text))
        if person_ids is None:
            latest = select(func.max(SCORES.c.id)).group_by(SCORES.c.person_id)
            with self._read() as conn:
                return {person_id: text for person_id, text in
                        conn.execute(query.where(SCORES.c.id.in_(latest)))}
        found: dict[str, str] = {}
        with self._read() as conn:
            for chunk in _chunks(sorted(person_ids), _IN_CHUNK):
                latest = (select(func.max(SCORES.c.id)).where(SCORES.c.person_id.in_(chunk))
                          .group_by(SCORES.c.person_id))
                found.update((person_id, text) for person_id, text in
                             conn.execute(query.where(SCORES.c.id.in_(latest))))
        return found

    def score_history(self, person_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """One person's stored cards, newest first, each with the `run_id` that produced it."""
        with self._read() as conn:
            rows = conn.execute(select(SCORES.c.run_id, SCORES.c.card).where(SCORES.c.person_id == person_id)
                                .order_by(SCORES.c.id.desc()).limit(limit))
            return [{**r.card, "run_id": r.run_id} for r in rows]

    # -- when scores are next due ------------------------------------------------------------------

    def save_due(self, due: Mapping[str, datetime], *, replace_all: bool = False,
                 forget: Iterable[str] = ()) -> int:
        """Record when each person's score is next due (`scoring.due`), for the people given; with
        `replace_all`, everyone else's time is dropped (a full rescore gives everyone's), and the
        people in `forget` (no longer scored: merged or deleted) are dropped. Returns how many."""
        at = self._time_param  # type: ignore[attr-defined]
        with self._write() as conn:
            if replace_all:
                conn.execute(delete(DUE))
            for chunk in _chunks(sorted(set(forget) - set(due)), _IN_CHUNK):
                conn.execute(delete(DUE).where(DUE.c.person_id.in_(chunk)))
            if replace_all:
                self._bulk_insert(conn, DUE, ("person_id", "due_at"),  # type: ignore[attr-defined]
                                  [(person_id, at(moment)) for person_id, moment in due.items()])
            else:
                self._upsert(conn, DUE, [{"person_id": person_id, "due_at": _now(moment)}
                                         for person_id, moment in due.items()], ("person_id",), ("due_at",))
        return len(due)

    def due_people(self, by: datetime) -> set[str]:
        """The people whose score is due by `by`."""
        with self._read() as conn:
            return set(conn.execute(select(DUE.c.person_id).where(DUE.c.due_at <= _now(by))).scalars())

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
