"""The write plan and the write-back: what to write into each CRM (the owned-field values that
changed since leadloop last wrote them, routing's new tasks and every outstanding task of the outbox),
then applying it one API batch at a time, each batch's answers ledgered before the next is sent."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as Map
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from leadloop.crm.changes import FieldUpdate, ObjectType, TaskUpsert
from leadloop.crm.dataset import Dataset
from leadloop.crm.ports import CrmSink, WriteResult
from leadloop.crm.records import Crm, Person
from leadloop.routing.crm_changes import (
    NURTURE_TRACK_FIELD,
    RoutedChanges,
    TaskPlacement,
    account_task_changes,
    person_records,
    to_crm_changes,
)
from leadloop.routing.model import RoutingResult
from leadloop.scoring.engine import ScoringResult
from leadloop.scoring.scorecard import ScoreCard
from leadloop.store.facade import FAILED, PENDING, REJECTED
from leadloop.store.writeplan import (
    ACCOMPANYING_FIELDS,
    FieldNamer,
    Ledger,
    desired_account_fields,
    desired_person_fields,
    field_updates,
    kept_indices,
    ledger_text,
    mapped_fields,
    person_reasons,
    rides_along,
)
from leadloop.sync.pipeline import Runtime, report_progress, routing_directory, utc_now

log = logging.getLogger("leadloop.sync")


# -- the write plan ---------------------------------------------------------------------------------


# Salesforce upserts tasks on the LL_Key__c external id: re-sending a pending one cannot duplicate it.
UPSERTS_TASKS_BY_KEY = frozenset({Crm.SALESFORCE})
# HubSpot's search typically trails writes by seconds; ten minutes matches the pull's overlap window.
# Within it, a task whose create may have reached HubSpot is looked for by key, never created again.
PENDING_GRACE = timedelta(minutes=10)
# A task the CRM keeps rejecting is tried on this many runs (a day of hourly runs), then given up
# with its reason in the run summary.
MAX_TASK_ATTEMPTS = 24


@dataclass(slots=True)
class CrmPlan:
    """What to write into one CRM: the field updates that change something, and the tasks to deliver
    (routing's new ones and the outbox's outstanding ones)."""

    crm: Crm
    updates: list[FieldUpdate] = field(default_factory=list)
    tasks: list[TaskUpsert] = field(default_factory=list)
    confirm: list[TaskUpsert] = field(default_factory=list)  # outcome unknown: look for them by key
    desired_fields: int = 0
    skipped_tasks: int = 0
    retried_tasks: int = 0  # from the outbox: interrupted, rejected or unconfirmed in an earlier run
    placements: list[TaskPlacement] = field(default_factory=list)  # the whole run's, on every plan


def _crm_of(record_id: str | None) -> Crm | None:
    if not record_id:
        return None
    if record_id.startswith("sf-"):
        return Crm.SALESFORCE
    return Crm.HUBSPOT if record_id.startswith("hs-") else None


def task_crm_preferences(dataset: Dataset) -> dict[str, Crm]:
    """Account id → the CRM its tasks belong in: the CRM of an open opportunity on the account, else
    the CRM of the account's owner. An account's owner id is the CRM's own (a HubSpot owner's number,
    a Salesforce User id): the pulled owners say which CRM it belongs to."""
    owners = {o.crm_id: crm for o in dataset.owners if o.crm_id and (crm := _crm_of(o.id)) is not None}
    preferred = {a.id: crm for a in dataset.accounts
                 if a.owner_id and (crm := owners.get(a.owner_id) or _crm_of(a.owner_id)) is not None}
    for opportunity in dataset.opportunities:
        if opportunity.account_id and not opportunity.is_closed:
            crm = (Crm.SALESFORCE if opportunity.salesforce_id else
                   Crm.HUBSPOT if opportunity.hubspot_id else _crm_of(opportunity.id))
            if crm is not None:
                preferred[opportunity.account_id] = crm
    return preferred


def _routed_tasks(runtime: Runtime, dataset: Dataset, routing: RoutingResult, people: Map[str, Person],
                  desired: dict[Crm, list[FieldUpdate]]) -> tuple[dict[Crm, dict[str, TaskUpsert]],
                                                                   list[TaskPlacement]]:
    """Routing's decisions as tasks per CRM (placed by the playbook's `tasks_in`) and nurture-track
    updates (added to `desired`), its account decisions' tasks on the accounts' records; and where
    each task went."""
    section = runtime.playbook.routing
    assert section is not None
    directory = routing_directory(runtime.playbook, dataset)
    preferred = task_crm_preferences(dataset)
    new_tasks: dict[Crm, dict[str, TaskUpsert]] = {crm: {} for crm in runtime.sinks}
    placements = []

    def fields_of(routed: RoutedChanges) -> list[FieldUpdate]:
        """Keeps a routed decision's placement and tasks; returns its field updates."""
        if routed.placement is not None:
            placements.append(routed.placement)
        fields = []
        for change in routed.changes:
            if isinstance(change, TaskUpsert):
                new_tasks[change.crm][change.key] = change
            else:
                fields.append(change)
        return fields

    for decision in routing.decisions:
        person = people.get(decision.person_id)
        if person is None:
            continue
        routed = to_crm_changes(decision, person, directory, section.fallback_owner,
                                tasks_in=section.tasks_in, preferred=preferred.get(person.account_id or ""),
                                connected=runtime.sinks)
        for change in fields_of(routed):
            if change.field == NURTURE_TRACK_FIELD:
                # leadloop owns the nurture track; record ownership stays with the CRM's own
                # assignment rules (it is not an owned field): the rep is reached through the task.
                desired[change.crm].append(change)
    accounts = {a.id: a for a in dataset.accounts} if routing.accounts else {}
    for account_decision in routing.accounts:
        account = accounts.get(account_decision.account_id)
        if account is None or account_decision.task is None:
            continue
        routed = account_task_changes(account_decision, account, directory, section.fallback_owner,
                                      tasks_in=section.tasks_in, preferred=preferred.get(account.id),
                                      connected=runtime.sinks)
        fields_of(routed)  # of an account decision only its task is written
    unplaced = [p for p in placements if p.problem]
    if unplaced:
        log.warning("%d routed people or accounts got no task: %s: %s", len(unplaced), unplaced[0].person_id,
                    unplaced[0].problem)
    return new_tasks, placements


def _plan_tasks(runtime: Runtime, plan: CrmPlan, routed: dict[str, TaskUpsert], wall_clock: datetime) -> None:
    """Routing's tasks plus the outbox's outstanding entries, each sent, confirmed or skipped by what
    the ledger knows of its key. Reads only the routed keys and the outbox, never the whole ledger."""
    store, crm = runtime.store, plan.crm
    outbox = store.task_outbox(crm.value)
    wanted = dict(routed)
    for key, row in outbox.items():
        if key not in wanted and (task := store.outbox_task(row)) is not None:
            wanted[key] = task
            plan.retried_tasks += 1
    known = {**store.task_rows(crm.value, [k for k in wanted if k not in outbox]), **outbox}
    for key, task in wanted.items():
        row = known.get(key)
        if row is None or row.status == REJECTED or (row.status == FAILED and key in routed):
            plan.tasks.append(task)
        elif row.status == PENDING and (crm in UPSERTS_TASKS_BY_KEY
                                        or wall_clock - row.updated_at > PENDING_GRACE):
            plan.tasks.append(task)  # an upsert by key, or a lookup by key before creating
        elif row.status == PENDING:
            plan.confirm.append(task)  # may be in the CRM already, not yet searchable: look, never create
        else:
            plan.skipped_tasks += 1


@dataclass(frozen=True, slots=True)
class _Reasons:
    """A person record's `reasons` value, not rendered yet: the index in the CRM's desired updates it
    belongs before, the record and the card it is rendered from."""

    before: int
    record_id: str
    person_id: str
    card: ScoreCard


def _plan_fields(crm: Crm, desired: Sequence[FieldUpdate], reasons: Sequence[_Reasons], ledger: Ledger,
                 min_change: float, namer: FieldNamer) -> list[FieldUpdate]:
    """`plan_writes` of `desired` with each person record's reasons in place, rendering the reasons
    only for the records that get a write. The reasons only ride along with another field's write
    (`store.writeplan`): a record without one writes nothing either way, and a record with one
    takes its reasons when they differ from the ledger's. Rendering every person's reasons to
    compare them was a third of planning a quiet run."""
    kept = kept_indices(desired, ledger, min_change=min_change, crm_field=namer)
    written = {(desired[i].object_type, desired[i].record_id) for i in kept}
    merged = [(index, 1, desired[index]) for index in kept]
    for r in reasons:
        if (ObjectType.PERSON, r.record_id) in written:
            update = field_updates(crm, ObjectType.PERSON, r.record_id, {"reasons": person_reasons(r.card)},
                                   person_id=r.person_id)[0]
            if rides_along(update, ledger, namer):
                merged.append((r.before, 0, update))
    merged.sort(key=lambda entry: entry[:2])
    return [update for _, _, update in merged]


def plan_changes(runtime: Runtime, dataset: Dataset, scoring: ScoringResult, routing: RoutingResult | None,
                 min_change: float, *, part: bool = False) -> dict[Crm, CrmPlan]:
    """Desired owned-field values for every scored person and account, diffed against what leadloop
    last wrote (the ledger); plus the tasks to deliver: the ones routing asked for that the CRM does
    not have yet, and every outstanding outbox entry, whether routing asked again or not.

    A task whose creation was sent by a run that died before ledgering the answer, or whose create
    timed out, is `pending`. In HubSpot it is looked for by key; it is created again only after
    PENDING_GRACE, when a lagging search index can show it, so a rerun finds it instead of creating
    it twice. The grace is wall-clock time, whatever moment a run scores as of.

    With `part` (the dataset is the part of the store an hourly run rescored), the ledger is read for
    its records only."""
    wall_clock = utc_now()
    people = {p.id: p for p in dataset.people}
    accounts = {a.id: a for a in dataset.accounts}
    # routing first: a record with a nurture-track change is planned whole, whatever else changed
    nurture: dict[Crm, list[FieldUpdate]] = {crm: [] for crm in runtime.sinks}
    new_tasks: dict[Crm, dict[str, TaskUpsert]] = {crm: {} for crm in runtime.sinks}
    placements: list[TaskPlacement] = []
    if routing is not None:
        new_tasks, placements = _routed_tasks(runtime, dataset, routing, people, nurture)
    plans = {}
    for crm in runtime.sinks:
        crm_mapping = getattr(runtime.mapping, crm.value)
        namer = mapped_fields(crm_mapping.owned_person, crm_mapping.owned_account)
        ledger = runtime.store.ledger(crm.value, _record_ids(crm, dataset, nurture[crm]) if part else None)
        as_written = _AsWritten(ledger, crm_mapping.owned_person, crm_mapping.owned_account,
                                {u.record_id for u in nurture[crm]})
        desired: list[FieldUpdate] = []
        reasons: list[_Reasons] = []
        values_seen = 0
        for person_id, card in scoring.cards.items():
            person = people.get(person_id)
            if person is None:
                continue
            values = desired_person_fields(card, reasons=False)
            before = list(values).index("model_version")  # where `desired_person_fields` puts the reasons
            for record_crm, record_id in person_records(person):
                if record_crm is not crm:
                    continue
                values_seen += len(values) + 1
                if not as_written.person(record_id, values):
                    reasons.append(_Reasons(len(desired) + before, record_id, person_id, card))
                    desired += field_updates(crm, ObjectType.PERSON, record_id, values, person_id=person_id)
        for account_id, account_score in scoring.accounts.items():
            account = accounts.get(account_id)
            if account is None:
                continue
            record_id = account.salesforce_id if crm is Crm.SALESFORCE else account.hubspot_id
            if record_id:
                values = desired_account_fields(account_score)
                values_seen += len(values)
                if not as_written.account(record_id, values):
                    desired += field_updates(crm, ObjectType.ACCOUNT, record_id, values)
        desired += nurture[crm]
        plan = CrmPlan(crm, desired_fields=values_seen + len(nurture[crm]), placements=placements)
        plan.updates = _plan_fields(crm, desired, reasons, ledger, min_change, namer)
        _plan_tasks(runtime, plan, new_tasks[crm], wall_clock)
        plans[crm] = plan
    return plans


def _record_ids(crm: Crm, dataset: Dataset, nurture: Sequence[FieldUpdate]) -> set[str]:
    """The CRM's records of a dataset's people and accounts (and of the nurture-track updates)."""
    ids = {record_id for person in dataset.people for record_crm, record_id in person_records(person)
           if record_crm is crm}
    ids |= {record_id for account in dataset.accounts
            if (record_id := account.salesforce_id if crm is Crm.SALESFORCE else account.hubspot_id)}
    return ids | {u.record_id for u in nurture}


class _AsWritten:
    """Whether a record's desired values are all what the ledger holds already (the fields that ride
    along aside): then `plan_writes` keeps nothing of it, so the plan skips building its updates.
    In a quiet run that is nearly every record."""

    def __init__(self, ledger: Ledger, person_fields: Map[str, str], account_fields: Map[str, str],
                 planned_whole: set[str]) -> None:
        self.ledger, self.planned_whole = ledger, planned_whole
        self.person_names, self.account_names = person_fields, account_fields

    def _same(self, record_id: str, values: Map[str, Any], names: Map[str, str]) -> bool:
        if record_id in self.planned_whole:
            return False
        ledger = self.ledger
        for name, value in values.items():
            if name in ACCOMPANYING_FIELDS:
                continue
            crm_field = names.get(name)
            if crm_field is None or ledger.get((record_id, crm_field)) != ledger_text(value):
                return False  # (a field the mapping lacks: `plan_writes` says what is wrong)
        return True

    def person(self, record_id: str, values: Map[str, Any]) -> bool:
        return self._same(record_id, values, self.person_names)

    def account(self, record_id: str, values: Map[str, Any]) -> bool:
        return self._same(record_id, values, self.account_names)


# -- write-back -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rejection:
    """One write the CRM refused: what (`field` or `task`), which record, and the CRM's reason."""

    kind: str
    object_type: str
    target: str
    reason: str


@dataclass(slots=True)
class WriteStats:
    crm: str
    fields_written: int = 0
    fields_rejected: int = 0
    tasks_written: int = 0
    tasks_rejected: int = 0
    tasks_confirmed: int = 0  # found in the CRM by key after an interrupted or timed-out create
    tasks_unconfirmed: int = 0  # may be in the CRM: looked for by key next run, never sent blindly
    tasks_given_up: int = 0
    written: dict[str, int] = field(default_factory=dict)  # object type → writes accepted
    calls_failed: dict[str, int] = field(default_factory=dict)  # object type → writes lost to failed calls
    rejections: list[Rejection] = field(default_factory=list)

    def count(self, object_type: str, results: Iterable[WriteResult]) -> None:
        for result in results:
            if result.ok:
                self.written[object_type] = self.written.get(object_type, 0) + 1
            elif result.call_failed:
                self.calls_failed[object_type] = self.calls_failed.get(object_type, 0) + 1

    def add(self, other: WriteStats) -> None:
        """Count `other`'s writes (another part of the same CRM's plan) in these."""
        for name in ("fields_written", "fields_rejected", "tasks_written", "tasks_rejected",
                     "tasks_confirmed", "tasks_unconfirmed", "tasks_given_up"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for mine, theirs in ((self.written, other.written), (self.calls_failed, other.calls_failed)):
            for object_type, n in theirs.items():
                mine[object_type] = mine.get(object_type, 0) + n
        self.rejections += other.rejections

    def failed_objects(self) -> list[str]:
        """Object types of which no write was accepted because the CRM's calls failed (an outage of
        that object or of the whole CRM), as opposed to records the CRM answered and refused."""
        return [o for o in self.calls_failed if not self.written.get(o)]


BATCH_RECORDS = {Crm.SALESFORCE: 200, Crm.HUBSPOT: 100}  # each API's batch maximum


def _record_chunks(updates: Sequence[FieldUpdate], size: int) -> Iterable[list[FieldUpdate]]:
    """Updates in chunks that hold at most `size` records, each record's fields kept together."""
    by_record: dict[tuple[str, str], list[FieldUpdate]] = {}
    for update in updates:
        by_record.setdefault((update.object_type.value, update.record_id), []).append(update)
    groups = list(by_record.values())
    for start in range(0, len(groups), size):
        yield [u for group in groups[start:start + size] for u in group]


def _records_per_call(sink: CrmSink, crm: Crm, records: int) -> int:
    """The API's batch maximum, or every record at once when the sink has a bulk path (Salesforce
    Bulk API 2.0) and there are more than its threshold: one job is then the batch."""
    threshold = getattr(sink, "bulk_threshold", None)
    if threshold is not None and records > threshold:
        return records
    return BATCH_RECORDS[crm]


TASKS = "tasks"  # the part of a plan that delivers its tasks; the others are named after CRM objects


def crm_object(update: FieldUpdate) -> str:
    """The CRM's own name for the object a field update lands on (`Lead`, `Contact`, `Account`,
    `contacts`, `companies`), as its stream is named."""
    if update.crm == Crm.HUBSPOT:
        from leadloop.connectors.hubspot.sink import OBJECT_FOR

        return OBJECT_FOR[update.object_type]
    from leadloop.connectors.salesforce.sink import WrongTargetError, sobject_for

    try:
        return sobject_for(update)
    except WrongTargetError:  # not a Lead or Contact id: the sink refuses it when it is written
        return update.object_type.value


def updates_by_object(updates: Iterable[FieldUpdate]) -> dict[str, list[FieldUpdate]]:
    """`updates` by `crm_object`, in their order (named once per kind of record id, not per update:
    a large sync plans over a million of them)."""
    names: dict[tuple[Crm, ObjectType, str], str] = {}
    groups: dict[str, list[FieldUpdate]] = {}
    for update in updates:
        kind = (update.crm, update.object_type, update.record_id[:3])
        name = names.get(kind)
        if name is None:
            name = names[kind] = crm_object(update)
        groups.setdefault(name, []).append(update)
    return groups


def write_parts(plan: CrmPlan) -> list[str]:
    """The parts `write_part` writes one CRM's plan in: each CRM object with field updates, in the
    plan's order, then `TASKS` when there are tasks to send or to look for."""
    return list(updates_by_object(plan.updates)) + ([TASKS] if plan.tasks or plan.confirm else [])


def write_plan(runtime: Runtime, plan: CrmPlan, run_id: str) -> WriteStats:
    """Apply one CRM's whole plan, part after part (`write_part`)."""
    stats = WriteStats(plan.crm.value)
    for part in write_parts(plan):
        stats.add(write_part(runtime, plan, part, run_id))
    return stats


def write_part(runtime: Runtime, plan: CrmPlan, part: str, run_id: str) -> WriteStats:
    """Apply one part of one CRM's plan (`write_parts`): the field updates of one CRM object, or the
    tasks. Either goes one API batch at a time, each batch's answers ledgered before the next is
    sent: a run killed here re-sends at most the one batch in flight (same values).

    Tasks go through the outbox: each batch is queued `pending` (with its payload) before the CRM is
    called, so a kill at any point leaves entries the next run delivers; Salesforce upserts them by
    key and HubSpot looks them up by key first, so nothing is created twice."""
    stats = WriteStats(plan.crm.value)
    if part == TASKS:
        _write_tasks(runtime, plan, stats, run_id)
    else:
        _write_fields(runtime, plan, updates_by_object(plan.updates).get(part, []), stats, run_id, part)
    return stats


def _write_fields(runtime: Runtime, plan: CrmPlan, updates: Sequence[FieldUpdate], stats: WriteStats,
                  run_id: str, part: str) -> None:
    sink = runtime.sinks[plan.crm]
    crm_mapping = getattr(runtime.mapping, plan.crm.value)
    namer = mapped_fields(crm_mapping.owned_person, crm_mapping.owned_account)
    records = len({(u.object_type, u.record_id) for u in updates})
    size = _records_per_call(sink, plan.crm, records)
    done = 0
    for chunk in _record_chunks(updates, size):
        results = sink.write_fields(chunk)
        written, rejected = runtime.store.record_writes(plan.crm.value, chunk, results, run_id=run_id,
                                                        crm_field=namer)
        stats.fields_written += written
        stats.fields_rejected += rejected
        for update, result in zip(chunk, results, strict=True):
            stats.count(update.object_type.value, [result])
            if not result.ok:
                stats.rejections.append(Rejection("field", update.object_type.value,
                                                  f"{update.record_id} {namer(update)}", result.error or ""))
        done += len(chunk)
        report_progress(f"write {plan.crm.value} {part}", done, len(updates))


def _write_tasks(runtime: Runtime, plan: CrmPlan, stats: WriteStats, run_id: str) -> None:
    sink = runtime.sinks[plan.crm]
    if plan.confirm:
        _confirm_tasks(runtime, plan, stats, run_id)
    size = _records_per_call(sink, plan.crm, len(plan.tasks))
    for start in range(0, len(plan.tasks), size):
        chunk_tasks = plan.tasks[start:start + size]
        runtime.store.queue_tasks(plan.crm.value, chunk_tasks, run_id)  # write-ahead: see write_part
        results = sink.upsert_tasks(chunk_tasks)
        outcome = runtime.store.record_task_results(plan.crm.value, chunk_tasks, results, run_id=run_id,
                                                    max_attempts=MAX_TASK_ATTEMPTS)
        stats.tasks_written += outcome.written
        stats.tasks_rejected += outcome.rejected
        stats.tasks_unconfirmed += outcome.unconfirmed
        stats.tasks_given_up += outcome.given_up
        stats.count("task", [r for r in results if not r.unknown])
        stats.rejections += [Rejection("task", "task", t.person_record_id or t.key, r.error or "")
                             for t, r in zip(chunk_tasks, results, strict=True) if not r.ok and not r.unknown]
        report_progress(f"write {plan.crm.value} tasks", start + len(chunk_tasks), len(plan.tasks))
    if stats.tasks_unconfirmed:
        log.warning("%s: %d task creates may or may not have reached the CRM (no answer): the next run "
                    "looks for them by key before sending anything", plan.crm.value, stats.tasks_unconfirmed)


def _confirm_tasks(runtime: Runtime, plan: CrmPlan, stats: WriteStats, run_id: str) -> None:
    """Look for the tasks whose create may have reached the CRM, by key: the ones found are ledgered
    `open`; the others stay `pending` until the search can be trusted (PENDING_GRACE)."""
    find = getattr(runtime.sinks[plan.crm], "find_tasks", None)
    if find is None:
        stats.tasks_unconfirmed += len(plan.confirm)
        return
    found = find([task.key for task in plan.confirm])
    stats.tasks_confirmed += runtime.store.confirm_tasks(plan.crm.value, found, run_id=run_id)
    stats.tasks_unconfirmed += len(plan.confirm) - len(found)
