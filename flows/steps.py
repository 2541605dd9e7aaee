"""The sequence both the hourly sync and a rescore run after the data is in the store:
identity → score → route → plan → write back → record the run, and the run's summary.

Called from inside a flow, so each step runs as a Prefect task on the run's workspace, by the run's
id; business rules live in the pure packages and the write plan, never here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadloop.flows import blocks, cancel, tasks
from leadloop.flows.options import RescoreScope, SyncOptions
from leadloop.store.facade import Store
from leadloop.sync import live, pipeline, workspace
from leadloop.sync.pipeline import PullStats, Runtime
from leadloop.sync.workspace import TopTierMove
from leadloop.sync.writeback import WriteStats

log = logging.getLogger("leadloop.sync")


@dataclass(slots=True)
class SyncSummary:
    """What a run did, for the CLI, the artifacts and the run record. No secrets; emails only in a
    dry run's `changes` (who would change, for the run's artifact), never in the run record."""

    kind: str
    run_id: str
    dry_run: bool
    model_version: str = ""
    playbook: dict[str, Any] = field(default_factory=dict)  # which, and live, a preview or made live now
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
    changes: list[dict[str, str]] = field(default_factory=list)  # dry run: what would change, by person
    tier_moves: list[dict[str, str]] = field(default_factory=list)  # who changed tier (the first 500)
    top_tier_moves: list[TopTierMove] = field(default_factory=list)  # a writing run's, for `flows.events`
    rejected: list[dict[str, str]] = field(default_factory=list)  # each refused write, by person
    handoff_notes: dict[str, str] = field(default_factory=dict)  # person id → note, first few tasks
    api_calls: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0
    tasks_fallback: list[str] = field(default_factory=list)  # person ids whose task the fallback owner took
    tasks_unplaced: dict[str, str] = field(default_factory=dict)  # person id → why no CRM could take its task
    rescored: dict[str, Any] = field(default_factory=dict)  # an hourly run's: whom it rescored, and why

    @property
    def tiers_title(self) -> str:
        """"People per tier", saying whom it counts when an hourly run rescored only a part."""
        if self.rescored and self.people_scored < self.rescored["of"]:
            return f"People per tier (the {self.people_scored:,} rescored, of {self.rescored['of']:,})"
        return "People per tier"

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
            **({"rescored": self.rescored} if self.rescored else {}),
        }


def score_route_write(summary: SyncSummary, now: datetime, *, dry_run: bool, min_change: float,
                      scope: RescoreScope | None = None,
                      people_per_partition: int = pipeline.PEOPLE_PER_PARTITION,
                      hourly: bool = False, everyone: bool = False) -> SyncSummary:
    """Everything after the pull, on the run's workspace (`recorded_run` holds it under the run's id);
    fills `summary` and returns it. An `hourly` run rescores only what changed or came due since the
    last one (`workspace.only_what_changed`), unless `everyone`."""
    key = summary.run_id
    tasks.load_and_resolve(key, people_per_partition, not hourly, hourly and not everyone)
    if hourly:
        rescoring = workspace.only_what_changed(key, now, min_change, everyone)
        summary.rescored = {"people": rescoring.people, "of": rescoring.of, "everyone": rescoring.everyone,
                            "why": rescoring.why, "identity": rescoring.identity, **rescoring.counts}
    tasks.score_partitions(key, now, people_per_partition)
    scored = workspace.narrow_to_scope(key, scope.kind, scope.values) if scope else workspace.scored(key)
    summary.model_version = scored.model_version
    summary.people_scored = scored.people
    summary.accounts_scored = scored.accounts
    summary.tier_counts = scored.tier_counts
    summary.tier_changes = scored.tier_changes
    summary.tier_moves = workspace.tier_change_rows(key)

    routed = tasks.route(key, now)
    if routed is not None:
        summary.suppressions = routed.suppressions

    planned = tasks.plan_changes(key, min_change)
    summary.planned = planned.counts
    summary.tasks_by_owner = planned.tasks_by_owner
    summary.handoff_notes = planned.handoff_notes
    summary.tasks_fallback = planned.tasks_fallback
    summary.tasks_unplaced = planned.tasks_unplaced

    if dry_run:
        summary.changes = workspace.change_rows(key)
        return summary

    tasks.save_identity(key)
    for crm, parts in planned.parts.items():
        stats = WriteStats(crm)
        summary.writes.append(stats)
        for part in parts:
            stats.add(tasks.write_plan(key, crm, part))
    summary.rejected = workspace.rejected_rows(key, summary.writes, summary.tasks_unplaced)
    # Only now do these cards become "the last score": routing compares against them, so saving them
    # before the write-back would let a run that dies mid-way suppress its own tasks on the rerun.
    summary.scorecards_saved = tasks.save_scores(key, now)
    summary.top_tier_moves = workspace.top_tier_moves(key)
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
    the run as started and hold the run's workspace (`sync.workspace`) under the run's id; on the way
    out (success or not) drop the workspace, record the run's outcome, counts and API calls, release
    the lease and close the store. The summary's timing covers the whole run."""
    started = time.monotonic()
    runtime = pipeline.open_runtime(blocks.connection_settings(options), options.playbook, options.store_url,
                                    kind=kind, activate=getattr(options, "activate", False))
    choice = runtime.choice
    # another playbook than the live one, not activated, is a preview: computed and shown, not written
    summary = SyncSummary(kind, run_id_for(kind.replace("_", "-")), options.dry_run or choice.preview,
                          playbook=choice.summary)
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
        if not summary.dry_run:  # live from this run on: a run that stops half-way is finished by the next
            live.record_activation(runtime.store, choice, run_id=summary.run_id,
                                   reason=getattr(options, "reason", ""))
        with workspace.held(summary.run_id, runtime):  # the run's tasks find the runtime under its id
            yield runtime, summary
        status = summary.outcome
    except BaseException as exc:  # Ctrl-C and SIGTERM too: the run is then `cancelled` (flows.cancel)
        status, error = cancel.run_ended_by(summary.run_id, exc)
        if (interrupt := cancel.interrupt_behind(exc)) not in (None, exc):
            raise interrupt from None  # what stopped the run, not what it broke on the way out
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
