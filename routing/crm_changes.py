"""A routing decision as CRM changes: the owner and nurture-track field updates and the task upsert,
for each CRM where the person has a record; an account decision's task on the account's records.

Routing owns two person fields (logical names `owner` and `nurture_track`) and the tasks it
creates; the scoring fields are written by the flows from ScoreCards. Where a task goes is the
playbook's `routing.tasks_in`: by default one task, in the CRM where the routed owner works.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from leadloop.crm.changes import FieldUpdate, ObjectType, TaskUpsert
from leadloop.crm.records import Account, Crm, Person
from leadloop.routing.model import AccountDecision, Decision, PlannedTask
from leadloop.routing.owners import OwnerDirectory

OWNER_FIELD = "owner"
NURTURE_TRACK_FIELD = "nurture_track"


TASKS_IN = ("owner_crm", "salesforce", "hubspot", "both")


@dataclass(frozen=True, slots=True)
class TaskPlacement:
    """Where one decision's task went: the CRMs, whether the fallback owner stood in, or why no CRM
    could take it (the run summary names these people). `person_id` is the account's id for an
    account task."""

    person_id: str
    crms: tuple[Crm, ...] = ()
    fallback: bool = False
    problem: str | None = None


@dataclass(slots=True)
class RoutedChanges:
    changes: list[FieldUpdate | TaskUpsert] = field(default_factory=list)
    placement: TaskPlacement | None = None  # None when the decision asks for no task


def person_records(person: Person) -> list[tuple[Crm, str]]:
    """(CRM, record id) for each CRM the person exists in; a Salesforce Contact beats its Lead."""
    records = []
    salesforce = person.salesforce_contact_id or person.salesforce_lead_id
    if salesforce:
        records.append((Crm.SALESFORCE, salesforce))
    if person.hubspot_id:
        records.append((Crm.HUBSPOT, person.hubspot_id))
    return records


def _owner_id(directory: OwnerDirectory, owner: str, crm: Crm, fallback: str | None
              ) -> tuple[str, str, bool] | None:
    """(CRM owner id, a note, whether the fallback stands in), or None when neither has a user there."""
    owner_id = directory.crm_owner_id(owner, crm)
    if owner_id is not None:
        return owner_id, "", False
    if fallback is not None and (fallback_id := directory.crm_owner_id(fallback, crm)) is not None:
        note = f" ({owner} has no {crm.value} user: the fallback owner {fallback} stands in)"
        return fallback_id, note, True
    return None


def _task_targets(records: list[tuple[Crm, str]], owner: str, directory: OwnerDirectory, tasks_in: str,
                  preferred: Crm | None, fallback: str | None) -> list[tuple[Crm, str]]:
    """The records that get the task, in the CRMs `tasks_in` names.

    `owner_crm`: one task, in the first CRM where the routed owner is a user — the CRM holding the
    person's open opportunity or account ownership (`preferred`) first, then Salesforce, then
    HubSpot — else where the fallback owner is one. A named CRM where the person has no record gives
    way to the other: a task somewhere beats none."""
    if tasks_in == "both":
        return records
    if tasks_in in ("salesforce", "hubspot"):
        named = [r for r in records if r[0].value == tasks_in]
        return named or records[:1]
    ordered = sorted(records, key=lambda r: (r[0] != preferred, r[0] != Crm.SALESFORCE))
    for record in ordered:
        if directory.crm_owner_id(owner, record[0]) is not None:
            return [record]
    for record in ordered:
        if fallback is not None and directory.crm_owner_id(fallback, record[0]) is not None:
            return [record]
    return ordered[:1]


def to_crm_changes(decision: Decision, person: Person, directory: OwnerDirectory,
                   fallback_owner: str | None = None, *, tasks_in: str = "owner_crm",
                   preferred: Crm | None = None, connected: Collection[Crm] | None = None) -> RoutedChanges:
    """The FieldUpdate/TaskUpsert changes that carry out `decision` in the person's CRMs (those in
    `connected`, when given), and where its task went.

    Owners are mapped to CRM owner ids through `directory`; an owner with no user in a CRM is
    replaced there by `fallback_owner`. An owner missing in one CRM never drops the task in another:
    the placement says where it went, or why nowhere (no CRM the person is in has a user for the owner
    or the fallback)."""
    records = [r for r in person_records(person) if connected is None or r[0] in connected]
    routed = RoutedChanges()
    for crm, record_id in records:
        if decision.owner is not None and (
                owner := _owner_id(directory, decision.owner, crm, fallback_owner)) is not None:
            routed.changes.append(FieldUpdate(
                crm=crm, object_type=ObjectType.PERSON, record_id=record_id, field=OWNER_FIELD,
                value=owner[0], person_id=person.id,
                reason=f"owner {decision.owner}: {decision.owner_source}{owner[1]}"))
        if decision.nurture_track is not None or decision.clear_nurture_track:
            left = "; ".join(s.text for s in decision.suppressions) or f"left nurture: now {decision.tier}"
            why = f"nurture track {decision.nurture_track}" if decision.nurture_track else left
            routed.changes.append(FieldUpdate(crm=crm, object_type=ObjectType.PERSON, record_id=record_id,
                                              field=NURTURE_TRACK_FIELD, value=decision.nurture_track,
                                              person_id=person.id, reason=why))
    if decision.task is not None:
        _place_task(routed, decision.task, records, directory, fallback_owner, tasks_in, preferred, person.id,
                    person_task=True)
    return routed


def account_records(account: Account) -> list[tuple[Crm, str]]:
    """(CRM, record id) for each CRM the account exists in: its Salesforce Account, its HubSpot company."""
    return [(crm, record_id) for crm, record_id in ((Crm.SALESFORCE, account.salesforce_id),
                                                     (Crm.HUBSPOT, account.hubspot_id)) if record_id]


def account_task_changes(decision: AccountDecision, account: Account, directory: OwnerDirectory,
                         fallback_owner: str | None = None, *, tasks_in: str = "owner_crm",
                         preferred: Crm | None = None, connected: Collection[Crm] | None = None,
                         ) -> RoutedChanges:
    """The TaskUpsert that carries out an account decision's task on the account's records (a
    Salesforce Task related to the Account, a HubSpot task associated with the company), placed as a
    person's task is (`tasks_in`, owners, fallback); the placement names the account."""
    routed = RoutedChanges()
    if decision.task is not None:
        records = [r for r in account_records(account) if connected is None or r[0] in connected]
        _place_task(routed, decision.task, records, directory, fallback_owner, tasks_in, preferred,
                    account.id, person_task=False)
    return routed


def _place_task(routed: RoutedChanges, task: PlannedTask, records: list[tuple[Crm, str]],
                directory: OwnerDirectory, fallback_owner: str | None, tasks_in: str, preferred: Crm | None,
                whose: str, *, person_task: bool) -> None:
    """Add the task's upserts to `routed`, on `records` (a person's, or an account's when not
    `person_task`), and say where it went."""
    if not records:
        what = "person" if person_task else "account"
        routed.placement = TaskPlacement(whose, problem=f"the {what} has no record in a connected CRM")
        return
    placed, used_fallback = [], False
    for crm, record_id in _task_targets(records, task.owner, directory, tasks_in, preferred, fallback_owner):
        owner = _owner_id(directory, task.owner, crm, fallback_owner)
        if owner is None:
            continue
        owner_id, note, used = owner
        used_fallback |= used
        placed.append(crm)
        routed.changes.append(TaskUpsert(crm=crm, key=task.key, owner_id=owner_id, subject=task.subject,
                                         body=task.note, due_date=task.due, due_at=task.due_at,
                                         priority=task.priority,
                                         person_record_id=record_id if person_task else None,
                                         account_record_id=None if person_task else record_id,
                                         person_id=whose if person_task else None,
                                         reason=f"{task.kind.value}, SLA {task.sla}{note}"))
    problem = None
    if not placed:
        where = " or ".join(crm.value for crm, _ in records)
        problem = (f"{task.owner} has no {where} user" + (
            f" and neither has the fallback owner {fallback_owner}" if fallback_owner else
            " and the playbook names no fallback_owner"))
    routed.placement = TaskPlacement(whose, tuple(placed), used_fallback, problem)
