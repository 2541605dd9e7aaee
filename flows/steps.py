"""The sequence both the hourly sync and a rescore run after the data is in the store:
identity → score → route → plan → write back → record the run, and the run's summary.

Called from inside a flow, so each step runs as a Prefect task; business rules live in the pure
packages and the write plan, never here.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crm.dataset import Dataset
from crm.records import Crm
from flows import pipeline, tasks
from flows.options import RescoreScope, SyncOptions
from flows.pipeline import CrmPlan, PullStats, Runtime, WriteStats
from routing.state import AssignmentState
from scoring.engine import ScoringResult
from scoring.scorecard import ScoreCard
from store.writeplan import ledger_text, mapped_fields


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

    def counts(self) -> dict[str, Any]:
        return {
            "records_pulled": self.records_pulled, "people_scored": self.people_scored,
            "accounts_scored": self.accounts_scored, "tier_changes": sum(self.tier_changes.values()),
            "fields_written": self.fields_written, "tasks_created": self.tasks_created,
            "rejections": self.rejections, "dry_run": self.dry_run,
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
                                           "tasks_awaiting_confirmation": plan.deferred_tasks}
        for task in plan.tasks:
            if task.key in seen_keys:
                continue
            seen_keys.add(task.key)
            owners[directory.owner_key_for(task.owner_id) or task.owner_id] += 1
            if task.person_id and len(summary.handoff_notes) < 20:
                summary.handoff_notes.setdefault(task.person_id, task.body)
    summary.tasks_by_owner = dict(owners.most_common())

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


@contextmanager
def recorded_run(options: SyncOptions, kind: str, extra_counts: dict[str, Any] | None = None
                 ) -> Iterator[tuple[Runtime, SyncSummary]]:
    """Open the runtime, record the run as started, and on the way out (success or not) record its
    outcome, counts and API calls, close the store; the summary's timing covers the whole run."""
    started = time.monotonic()
    runtime = pipeline.open_runtime(options.connection_file, options.playbook, options.store_url)
    summary = SyncSummary(kind, run_id_for(kind.replace("_", "-")), options.dry_run)
    runtime.store.start_run(kind, run_id=summary.run_id)
    status, error = "failed", None
    try:
        yield runtime, summary
        status = "ok"
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        summary.api_calls = runtime.api_calls()
        summary.seconds = time.monotonic() - started
        counts = {**summary.counts(), **(extra_counts or {})}
        runtime.store.finish_run(summary.run_id, status=status, counts=counts, api_calls=summary.api_calls,
                                 error=error)
        runtime.close()
