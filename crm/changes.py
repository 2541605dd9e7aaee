"""The CRM changes leadloop decides on: field updates and task upserts, each with its reason.

The pure core (scoring, routing) returns these; the write-back plan diffs them against the ledger;
connectors apply them. Nothing else is ever written to a CRM.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum

from pydantic import ConfigDict
from pydantic.dataclasses import dataclass

from crm.records import Crm

_CONFIG = ConfigDict(extra="forbid")


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


@dataclass(frozen=True, slots=True, config=_CONFIG)
class TaskUpsert:
    """Create or update one follow-up task, idempotently, by its deterministic `key`."""

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
