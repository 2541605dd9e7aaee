"""The sequence both the hourly sync and a rescore run after the data is in the store:
identity → score → route → plan → write back → record the run, and the run's summary.

Called from inside a flow, so each step runs as a Prefect task; business rules live in the pure
packages and the write plan, never here.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Crm
from leadloop.flows import tasks
from leadloop.flows.options import RescoreScope, SyncOptions
from leadloop.routing.state import AssignmentState
from leadloop.scoring.engine import ScoringResult
from leadloop.scoring.scorecard import ScoreCard
from leadloop.store.facade import Store
from leadloop.store.writeplan import ledger_text, mapped_fields
from leadloop.sync import pipeline
from leadloop.sync.pipeline import PullStats, Runtime
from leadloop.sync.writeback import CrmPlan, WriteStats

log = logging.getLogger("leadloop.sync")


@dataclass(slots=True)
class SyncSummary:
    """What a run did, for the CLI, the artifacts and the run record. No secrets, no emails."""

    kind: str
    run_id: str
    dry_run: bool
    model_version: str = ""
    pulls: list[PullStats] = field(default_factory=list)
    people_scored: int = 0
    accounts_scored: int = 0
    tier_counts: dict[str, int] = field(default_factory=dict)
    tier_changes: dict[str, int] = field(default_factory=dict)
    scorecards_saved: int = 0
    suppressions: dict[str, int] = field(default_factory=dict)
    tasks_by_owner: dict[str, int] = field(default_factory=dict)
    writes: list[WriteStats] = field(default_factory=list)
    planned: dict[str, dict[str, int]] = field(default_factory=dict)
    changes: list[dict[str, str]] = field(default_factory=list)  # dry run: what would change
    handoff_notes: dict[str, str] = field(default_factory=dict)  # person id → note, first few tasks
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    tasks_fallback: list[str] = field(default_factory=list)  # person ids whose task the fallback owner took
    tasks_unplaced: dict[str, str] = field(default_factory=dict)  # person id → why no CRM could take its task

    @property
    def records_pulled(self) -> int:
        return sum(p.records for p in self.pulls)

    @property
    def fields_written(self) -> int:
        return sum(w.fields_written for w in self.writes)

    @property
    def tasks_created(self) -> int:
        return sum(w.tasks_written for w in self.writes)

    @property
    def rejections(self) -> int:
        return sum(w.fields_rejected + w.tasks_rejected for w in self.writes)

    @property
    def tasks_unconfirmed(self) -> int:
        return sum(w.tasks_unconfirmed for w in self.writes)

    @property
    def tasks_given_up(self) -> int:
        return sum(w.tasks_given_up for w in self.writes)

    def failed_writes(self) -> list[str]:
        """`crm object` for each object of which every write failed (an outage, not a bad record)."""
        return [f"{w.crm} {o}" for w in self.writes for o in w.failed_objects()]

    @property
    def outcome(self) -> str:
        """`failed`: writes failed for a whole object or CRM; `rejections`: some writes were refused,
        a task is unconfirmed or a routed person got no task; `ok`: everything was written."""
        if self.failed_writes():
            return "failed"
        if self.rejections or self.tasks_unconfirmed or self.tasks_unplaced:
            return "rejections"
        return "ok"

    def rejection_groups(self, examples: int = 3) -> list[dict[str, Any]]:
        """Rejections grouped by CRM, object and reason, largest first, with a few example records."""
        groups: dict[tuple[str, str, str], list[str]] = {}
        for write in self.writes:
            for r in write.rejections:
                key = (write.crm, r.object_type, r.reason or "no reason given")
                groups.setdefault(key, []).append(r.target)
        if self.tasks_unplaced:
            for person_id, why in self.tasks_unplaced.items():
                groups.setdefault(("-", "task", f"no CRM can take the task: {why}"), []).append(person_id)
        return [{"crm": crm, "object": obj, "reason": reason, "count": len(targets),
                 "examples": targets[:examples]}
                for (crm, obj, reason), targets in sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))]

    def counts(self) -> dict[str, Any]:
        return {
            "records_pulled": self.records_pulled, "people_scored": self.people_scored,
            "accounts_scored": self.accounts_scored, "tier_changes": sum(self.tier_changes.values()),
            "fields_written": self.fields_written, "tasks_created": self.tasks_created,
            "rejections": self.rejections, "tasks_unconfirmed": self.tasks_unconfirmed,
            "tasks_given_up": self.tasks_given_up, "tasks_unplaced": len(self.tasks_unplaced),
            "dry_run": self.dry_run, "outcome": self.outcome,
        }


ScopeFilter = Callable[[ScoreCard], bool]


def scope_filter(scope: RescoreScope | None, dataset: Dataset) -> ScopeFilter | None:
    """Which score cards a rescore scope keeps; None keeps everyone."""
    if scope is None or scope.kind == "all":
        return None
    values = {v.strip().lower() for v in scope.values}
    if scope.kind == "accounts":
        return lambda card: (card.account_id or "").lower() in values
    if scope.kind == "emails":
        emails = {p.id: (p.email or "") for p in dataset.people}
        return lambda card: emails.get(card.person_id, "") in values
    if scope.kind == "profile":
        return lambda card: (card.profile or "").lower() in values
    segments = {a.id: (a.segment or "").lower() for a in dataset.accounts}
    return lambda card: segments.get(card.account_id or "", "") in values


def _in_scope(result: ScoringResult, keep: ScopeFilter | None) -> ScoringResult:
    if keep is None:
        return result
    cards = {pid: c for pid, c in result.cards.items() if keep(c)}
    in_scope = {c.account_id for c in cards.values()}
    accounts = {aid: a for aid, a in result.accounts.items() if aid in in_scope}
    return dataclasses.replace(result, cards=cards, accounts=accounts)


def change_rows(runtime: Runtime, plan: CrmPlan, limit: int = 500) -> list[dict[str, str]]:
    """The dry-run listing: record, field, old → new, and each task that would be created."""
    crm_mapping = getattr(runtime.mapping, plan.crm.value)
    namer = mapped_fields(crm_mapping.owned_person, crm_mapping.owned_account)
    ledger = runtime.store.ledger(plan.crm.value)
    rows = []
    for update in plan.updates[:limit]:
        name = namer(update)
        rows.append({"crm": plan.crm.value, "record": update.record_id, "field": name,
                     "old": ledger.get((update.record_id, name), "(never written)"),
                     "new": ledger_text(update.value)[:120]})
    for task in plan.tasks[: max(0, limit - len(rows))]:
        rows.append({"crm": plan.crm.value, "record": task.person_record_id or "", "field": "new task",
                     "old": "", "new": f"{task.subject} (due {task.due_date}, {task.priority.value})"})
    return rows


def score_route_write(runtime: Runtime, summary: SyncSummary, now: datetime, *, dry_run: bool,
                      min_change: float, scope: RescoreScope | None = None,
                      people_per_partition: int = pipeline.PEOPLE_PER_PARTITION) -> SyncSummary:
    """Everything after the pull; fills `summary` and returns it."""
    store = runtime.store
    raw, identity = tasks.load_and_resolve(store, people_per_partition)
    dataset = pipeline.merged_dataset(raw, identity)
    pipeline.release_pulled(raw)
    previous = pipeline.previous_cards(store)
    # more than one partition: the activities are still in the store, and each partition reads its own
    full = tasks.score_partitions(runtime.playbook, dataset, now, people_per_partition,
                                  store=store, links=identity.person_links)
    result = _in_scope(full, scope_filter(scope, dataset))
    summary.model_version = result.model_version
    summary.people_scored = len(result.cards)
    summary.accounts_scored = len(result.accounts)
    summary.tier_counts = result.tier_counts()
    summary.tier_changes = {f"{old or '(new)'} → {new}": n
                            for (old, new), n in sorted(pipeline.tier_changes(result, previous).items())}

    state = AssignmentState.from_dict(store.load_assignment_state())
    routing = tasks.route(runtime.playbook, dataset, result, previous, pipeline.open_tasks(store), state, now)
    if routing is not None:
        summary.suppressions = {kind.value: n for kind, n in sorted(routing.report.counts.items())}

    plans: dict[Crm, CrmPlan] = tasks.plan_changes(runtime, dataset, result, routing, min_change)
    directory = pipeline.routing_directory(runtime.playbook, dataset)
    owners: Counter[str] = Counter()
    seen_keys: set[str] = set()  # one task per person and reason, even when it lands in both CRMs
    for plan in plans.values():
        summary.planned[plan.crm.value] = {"fields": len(plan.updates), "tasks": len(plan.tasks),
                                           "tasks_already_there": plan.skipped_tasks,
                                           "tasks_retried": plan.retried_tasks,
                                           "tasks_to_confirm": len(plan.confirm)}
        for task in plan.tasks:
            if task.key in seen_keys:
                continue
            seen_keys.add(task.key)
            owners[directory.owner_key_for(task.owner_id) or task.owner_id] += 1
            if task.person_id and len(summary.handoff_notes) < 20:
                summary.handoff_notes.setdefault(task.person_id, task.body)
    summary.tasks_by_owner = dict(owners.most_common())
    placements = next(iter(plans.values())).placements if plans else []  # the run's, on every plan
    summary.tasks_fallback = sorted(p.person_id for p in placements if p.fallback)
    summary.tasks_unplaced = {p.person_id: p.problem for p in placements if p.problem}

    if dry_run:
        for plan in plans.values():
            summary.changes += change_rows(runtime, plan)
        return summary

    tasks.save_identity(store, identity)
    for plan in plans.values():
        summary.writes.append(tasks.write_plan(runtime, plan, summary.run_id))
    # Only now do these cards become "the last score": routing compares against them, so saving them
    # before the write-back would let a run that dies mid-way suppress its own tasks on the rerun.
    changed = pipeline.changed_cards(result, previous)
    summary.scorecards_saved = tasks.save_scores(store, summary.run_id, changed, result.accounts.values(),
                                                 now)
    if routing is not None:
        store.save_assignment_state(routing.state.to_dict())  # type: ignore[attr-defined]
    return summary


def run_id_for(kind: str) -> str:
    """The Prefect flow run's id when there is one, so the store and the UI name runs alike."""
    from prefect.runtime import flow_run

    return str(flow_run.get_id() or f"{kind}-{int(time.time() * 1000)}")


# A writing run renews its lease every LEASE_RENEW; a lease not renewed for LEASE_TTL has lapsed (its
# holder died on another host; on the same host a dead holder's lease is taken at once).
LEASE_TTL = timedelta(seconds=120)
LEASE_RENEW = 20.0


class _Heartbeat(threading.Thread):
    """Renews the run's lease while the run works, from its own thread: a step that blocks for
    minutes (a rate-limited pull) does not let the lease lapse."""

    def __init__(self, store: Store, run_id: str) -> None:
        super().__init__(name=f"lease-{run_id}", daemon=True)
        self.store, self.run_id, self.stopped = store, run_id, threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(LEASE_RENEW):
            try:
                if not self.store.renew_lease(self.run_id):
                    log.error("run %s lost its lease on the store", self.run_id)
                    return
            except Exception as error:  # the store is briefly unreachable: try again next beat
                log.warning("could not renew the lease of run %s: %s", self.run_id, error)

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=LEASE_RENEW)


class WritesFailed(RuntimeError):
    """The run finished, but writes failed for a whole object or CRM; carries the run's summary."""

    def __init__(self, summary: SyncSummary) -> None:
        self.summary = summary
        super().__init__(f"writes failed for all of: {', '.join(summary.failed_writes())}")


def final_state(summary: SyncSummary) -> Any:
    """What a flow returns: the summary when everything was written; a Completed state named
    "Completed with rejections" when some writes were refused; a Failed state when writes failed for
    a whole object or CRM (so the UI, automations and the CLI's exit code all see it)."""
    from prefect.states import Completed, Failed

    if summary.outcome == "failed":
        return Failed(message=str(WritesFailed(summary)), data=WritesFailed(summary))
    if summary.outcome == "rejections":
        groups = summary.rejection_groups()
        top = groups[0] if groups else None
        message = (f"{summary.rejections} writes rejected, {summary.tasks_unconfirmed} tasks unconfirmed, "
                   f"{len(summary.tasks_unplaced)} routed people without a task"
                   + (f"; most often: {top['reason'][:200]} ({top['count']})" if top else ""))
        return Completed(name="Completed with rejections", message=message, data=summary)
    return summary


def summary_of(result: Any) -> SyncSummary:
    """The summary inside whatever a flow's body returned (`final_state`)."""
    if isinstance(result, SyncSummary):
        return result
    data = getattr(result, "data", None)
    return data.summary if isinstance(data, WritesFailed) else data


@contextmanager
def recorded_run(options: SyncOptions, kind: str, extra_counts: dict[str, Any] | None = None
                 ) -> Iterator[tuple[Runtime, SyncSummary]]:
    """Open the runtime, take the store's writer lease (or fail at once naming who holds it), record
    the run as started, and on the way out (success or not) record its outcome, counts and API calls,
    release the lease and close the store; the summary's timing covers the whole run."""
    started = time.monotonic()
    runtime = pipeline.open_runtime(options.connection_file, options.playbook, options.store_url)
    summary = SyncSummary(kind, run_id_for(kind.replace("_", "-")), options.dry_run)
    try:
        runtime.store.acquire_lease(summary.run_id, kind, LEASE_TTL)
    except BaseException:
        runtime.close()
        raise
    heartbeat = _Heartbeat(runtime.store, summary.run_id)
    heartbeat.start()
    status, error = "failed", None
    try:
        runtime.store.start_run(kind, run_id=summary.run_id)
        yield runtime, summary
        status = summary.outcome
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        heartbeat.stop()
        summary.api_calls = runtime.api_calls()
        summary.seconds = time.monotonic() - started
        counts = {**summary.counts(), **(extra_counts or {})}
        try:
            if runtime.store.get_run(summary.run_id) is not None:
                runtime.store.finish_run(summary.run_id, status=status, counts=counts,
                                         api_calls=summary.api_calls, error=error)
        finally:
            runtime.store.release_lease(summary.run_id)
            runtime.close()
