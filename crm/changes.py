"""The CRM changes leadloop decides on: field updates and task upserts, each with its reason.

The pure core (scoring, routing) returns these; the write-back plan diffs them against the ledger;
connectors apply them. Nothing else is ever written to a CRM.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, ConfigDict
from pydantic.dataclasses import dataclass

from leadloop.crm.batch import slot_setters
from leadloop.crm.records import Crm

_CONFIG = ConfigDict(extra="forbid")
_new = object.__new__


class ObjectType(StrEnum):
    """Which kind of CRM record a change targets, in leadloop's own words."""

    PERSON = "person"
    ACCOUNT = "account"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


@dataclass(frozen=True, slots=True, config=_CONFIG)
class FieldUpdate:
    """Set one owned field on one CRM record. `field` is leadloop's logical name (e.g. `score`);
    the connector maps it to the CRM's field (`LL_Score__c`, `ll_score`) through the mapping."""

    crm: Crm
    object_type: ObjectType
    record_id: str
    field: str
    value: str | int | float | None
    reason: str = ""
    person_id: str | None = None


_PLAIN_VALUES = frozenset({str, int, float, type(None)})
_SLOT_ORDER = ("crm", "object_type", "record_id", "field", "value", "reason", "person_id")
_SETTER_OF = dict(slot_setters(FieldUpdate))
if set(_SETTER_OF) != set(_SLOT_ORDER):  # a field added to FieldUpdate must be set below too
    raise TypeError(f"FieldUpdate's fields {sorted(_SETTER_OF)} are not {sorted(_SLOT_ORDER)}")
_FIELD_UPDATE_SETTERS = tuple(_SETTER_OF[name] for name in _SLOT_ORDER)


def field_updates_for(crm: Crm, object_type: ObjectType, record_id: str, fields: Mapping[str, Any],
                      person_id: str | None = None, reason: str = "") -> list[FieldUpdate]:
    """One FieldUpdate per (field, value) of one CRM record.

    When every argument already has exactly the type the model declares (a Crm, an ObjectType,
    strings, and str, int, float or None values), validation would return them unchanged, so the
    updates are built slot by slot without it: pydantic's per-instance validation costs ~9 µs, and a
    sync at 100,000 people builds 1.2 million desired values to diff against the ledger. Anything
    else goes through the validating constructor and its errors."""
    plain = (type(crm) is Crm and type(object_type) is ObjectType and type(record_id) is str
             and type(reason) is str and (person_id is None or type(person_id) is str))
    set_crm, set_type, set_record, set_field, set_value, set_reason, set_person = _FIELD_UPDATE_SETTERS
    updates = []
    for name, value in fields.items():
        if not (plain and type(name) is str and type(value) in _PLAIN_VALUES):
            updates.append(FieldUpdate(crm=crm, object_type=object_type, record_id=record_id, field=name,
                                       value=value, reason=reason, person_id=person_id))
            continue
        update = _new(FieldUpdate)
        set_crm(update, crm)
        set_type(update, object_type)
        set_record(update, record_id)
        set_field(update, name)
        set_value(update, value)
        set_reason(update, reason)
        set_person(update, person_id)
        updates.append(update)
    return updates


@dataclass(frozen=True, slots=True, config=_CONFIG)
class TaskUpsert:
    """Create or update one follow-up task, idempotently, by its deterministic `key`.

    `due_date` is the due day in the owner's own calendar; `due_at` the exact due moment (aware) when
    the task has one: a task queued before leadloop kept it, or a day-only task, has the day alone."""

    crm: Crm
    key: str
    owner_id: str
    subject: str
    body: str
    due_date: date
    priority: Priority = Priority.NORMAL
    person_record_id: str | None = None
    account_record_id: str | None = None
    reason: str = ""
    person_id: str | None = None
    due_at: AwareDatetime | None = None
