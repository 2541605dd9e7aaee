"""A routing decision as CRM changes: the owner and nurture-track field updates and the task upsert,
for each CRM where the person has a record.

Routing owns two person fields (logical names `owner` and `nurture_track`) and the tasks it
creates; the scoring fields are written by the flows from ScoreCards. The task body is the same
handoff note in both CRMs.
"""

from __future__ import annotations

from crm.changes import FieldUpdate, ObjectType, TaskUpsert
from crm.records import Crm, Person
from routing.model import Decision
from routing.owners import OwnerDirectory

OWNER_FIELD = "owner"
NURTURE_TRACK_FIELD = "nurture_track"


class OwnerNotInDirectory(LookupError):
    """An owner has no id in a CRM the person lives in, and the directory has no fallback there."""


def person_records(person: Person) -> list[tuple[Crm, str]]:
    """(CRM, record id) for each CRM the person exists in; a Salesforce Contact beats its Lead."""
    records = []
    salesforce = person.salesforce_contact_id or person.salesforce_lead_id
    if salesforce:
        records.append((Crm.SALESFORCE, salesforce))
    if person.hubspot_id:
        records.append((Crm.HUBSPOT, person.hubspot_id))
    return records


def _owner_id(directory: OwnerDirectory, owner: str, crm: Crm, fallback: str | None) -> tuple[str, str]:
    owner_id = directory.crm_owner_id(owner, crm)
    if owner_id is not None:
        return owner_id, ""
    if fallback is not None and (fallback_id := directory.crm_owner_id(fallback, crm)) is not None:
        return fallback_id, f" ({owner} has no {crm.value} user: the fallback owner {fallback} stands in)"
    raise OwnerNotInDirectory(f"owner {owner!r} has no {crm.value} owner id in the directory")


def to_crm_changes(decision: Decision, person: Person, directory: OwnerDirectory,
                   fallback_owner: str | None = None) -> list[FieldUpdate | TaskUpsert]:
    """The FieldUpdate/TaskUpsert changes that carry out `decision` in each of the person's CRMs.

    Owners are mapped to CRM owner ids through `directory`; an owner missing in one CRM falls back
    to `fallback_owner` there, else OwnerNotInDirectory is raised (a configuration error to fix,
    never a lead silently dropped).
    """
    changes: list[FieldUpdate | TaskUpsert] = []
    for crm, record_id in person_records(person):
        if decision.owner is not None:
            owner_id, note = _owner_id(directory, decision.owner, crm, fallback_owner)
            changes.append(FieldUpdate(crm=crm, object_type=ObjectType.PERSON, record_id=record_id,
                                       field=OWNER_FIELD, value=owner_id, person_id=person.id,
                                       reason=f"owner {decision.owner}: {decision.owner_source}{note}"))
        if decision.nurture_track is not None or decision.clear_nurture_track:
            left = "; ".join(s.text for s in decision.suppressions) or f"left nurture: now {decision.tier}"
            why = f"nurture track {decision.nurture_track}" if decision.nurture_track else left
            changes.append(FieldUpdate(crm=crm, object_type=ObjectType.PERSON, record_id=record_id,
                                       field=NURTURE_TRACK_FIELD, value=decision.nurture_track,
                                       person_id=person.id, reason=why))
        task = decision.task
        if task is not None:
            owner_id, note = _owner_id(directory, task.owner, crm, fallback_owner)
            changes.append(TaskUpsert(crm=crm, key=task.key, owner_id=owner_id, subject=task.subject,
                                      body=task.note, due_date=task.due, priority=task.priority,
                                      person_record_id=record_id, person_id=person.id,
                                      reason=f"{task.kind.value}, SLA {task.sla}{note}"))
    return changes
