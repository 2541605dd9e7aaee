"""`SalesforceSink`: owned-field updates and follow-up tasks, in sObject Collections batches of 200.

Field updates are merged per record (one row per record, all its changed owned fields) and sent as
`PATCH /composite/sobjects` with `allOrNone: false`, so one rejected record never holds back the
rest; each record's result, with Salesforce's `statusCode` and message, is reported for every
(record, field) it carried. Tasks are upserted on the external id `LL_Key__c` through
`PATCH /composite/sobjects/Task/LL_Key__c`: a rerun updates the same task instead of adding one. A
task's due day is its `ActivityDate`; its exact due moment, when it has one, its reminder
(`ReminderDateTime`, `IsReminderSet`).
The allowlist is checked for the whole input before any request is built.

Above `bulk_threshold` records in one call, updates and task upserts go through Bulk API 2.0
ingest jobs instead (one `update` job per sObject type, one `upsert` job on `LL_Key__c`), and each
record's successful, failed or unprocessed outcome becomes the same WriteResult a collection gives.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from leadloop.connectors.mapping import CrmMapping, CrmNotSetUp, ForbiddenFieldError, assert_writable
from leadloop.connectors.salesforce.bulk import DEFAULT_BULK_THRESHOLD, BulkApi
from leadloop.connectors.salesforce.client import SalesforceClient
from leadloop.connectors.salesforce.retry import TRANSIENT_CODES, SalesforceCallError
from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.ports import CrmSink, WriteResult
from leadloop.crm.records import Crm

log = logging.getLogger("leadloop.connectors.salesforce")


def _stop_if_not_set_up(endpoint: str, error: SalesforceCallError) -> None:
    """Raise `CrmNotSetUp` when Salesforce refused a whole call for a field (INVALID_FIELD: no such
    column, or a task key that is no external id): every batch would fail so."""
    if error.code == "INVALID_FIELD":
        raise CrmNotSetUp("Salesforce", endpoint, error.message[:300]) from error

COLLECTION_LIMIT = 200  # records per sObject Collections call
PERSON_OBJECTS = {"00Q": "Lead", "003": "Contact"}
PRIORITY = {Priority.HIGH: "High", Priority.NORMAL: "Normal", Priority.LOW: "Low"}
T = TypeVar("T")


class WrongTargetError(ValueError):
    """A change addressed to another CRM, or to a record id that is not a Lead, Contact or Account."""


def chunks(items: Sequence[T], size: int = COLLECTION_LIMIT) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def sobject_for(update: FieldUpdate) -> str:
    if update.object_type == ObjectType.ACCOUNT:
        return "Account"
    sobject = PERSON_OBJECTS.get(update.record_id[:3])
    if sobject is None:
        raise WrongTargetError(f"{update.record_id!r} is not a Salesforce Lead or Contact id")
    return sobject


def wire_datetime(moment: datetime) -> str:
    """An aware moment as a Salesforce dateTime, in UTC to the millisecond."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _item_error(item: dict[str, Any]) -> tuple[str, bool]:
    errors = item.get("errors") or [{}]
    first = errors[0]
    code = first.get("statusCode") or first.get("errorCode") or "UNKNOWN_ERROR"
    return f"{code}: {first.get('message', '')}".strip(), code in TRANSIENT_CODES


class SalesforceSink(CrmSink):
    crm = Crm.SALESFORCE

    def __init__(self, client: SalesforceClient, mapping: CrmMapping, *,
                 bulk_threshold: int | None = DEFAULT_BULK_THRESHOLD, bulk: BulkApi | None = None) -> None:
        self.client = client
        self.mapping = mapping
        self.bulk_threshold = bulk_threshold  # None: never Bulk API
        self.bulk = bulk or BulkApi(client)

    def _bulk_sized(self, records: int) -> bool:
        return self.bulk_threshold is not None and records > self.bulk_threshold

    def _crm_field(self, update: FieldUpdate) -> str:
        person = update.object_type == ObjectType.PERSON
        owned = self.mapping.owned_person if person else self.mapping.owned_account
        if update.field not in owned:
            raise ForbiddenFieldError(
                f"refusing to write {update.field!r} on {update.object_type.value} records: it is not one of "
                f"leadloop's owned fields {sorted(owned)}")
        return owned[update.field]

    def write_fields(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        rows: dict[str, dict[str, Any]] = {}
        for update in updates:
            if update.crm != Crm.SALESFORCE:
                raise WrongTargetError(f"a {update.crm.value} update was sent to the Salesforce sink")
            crm_field = self._crm_field(update)
            assert_writable(self.mapping, update.object_type.value, {crm_field})
            row = rows.setdefault(update.record_id, {"attributes": {"type": sobject_for(update)},
                                                     "id": update.record_id})
            row[crm_field] = update.value
        # Collections process a batch in chunks of one type (at most 10), so keep each type together.
        ordered = sorted(rows.values(), key=lambda r: r["attributes"]["type"])
        if self._bulk_sized(len(ordered)):
            by_record = self._bulk_update(ordered)
            return [self._for_update(update, by_record[update.record_id]) for update in updates]
        by_record = {}
        for batch in chunks(ordered):
            answers = self._send("PATCH", "composite/sobjects/", "composite/sobjects:update", batch)
            for row, result in zip(batch, answers, strict=True):
                by_record[row["id"]] = result
        return [self._for_update(update, by_record[update.record_id]) for update in updates]

    def _bulk_update(self, rows: Sequence[dict[str, Any]]) -> dict[str, WriteResult]:
        """One `update` ingest job per sObject type; a job that cannot run fails its records."""
        by_type: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            fields = {k: v for k, v in row.items() if k not in ("attributes", "id")}
            by_type.setdefault(row["attributes"]["type"], []).append({"Id": row["id"], **fields})
        by_record: dict[str, WriteResult] = {}
        for sobject, typed in by_type.items():
            try:
                by_record.update(self.bulk.ingest(sobject, "update", typed, "Id"))
            except SalesforceCallError as error:
                by_record.update(self._all_failed(f"bulk update {sobject}", [r["Id"] for r in typed], error))
        return by_record

    @staticmethod
    def _all_failed(what: str, keys: Sequence[str], error: SalesforceCallError) -> dict[str, WriteResult]:
        _stop_if_not_set_up(what, error)
        log.error("salesforce %s failed for %d records: %s", what, len(keys), error)
        reason = f"{error.code or error.status}: {error.message}"
        return {k: WriteResult(key=k, ok=False, error=reason, retriable=error.retriable, call_failed=True)
                for k in keys}

    @staticmethod
    def _for_update(update: FieldUpdate, record_result: WriteResult) -> WriteResult:
        return WriteResult(key=f"{update.record_id}:{update.field}", ok=record_result.ok,
                           crm_id=record_result.crm_id, error=record_result.error,
                           retriable=record_result.retriable, call_failed=record_result.call_failed)

    def _task_row(self, task: TaskUpsert) -> dict[str, Any]:
        if task.crm != Crm.SALESFORCE:
            raise WrongTargetError(f"a {task.crm.value} task was sent to the Salesforce sink")
        row: dict[str, Any] = {
            "attributes": {"type": "Task"}, self.mapping.task_key: task.key, "OwnerId": task.owner_id,
            "Subject": task.subject[:255], "Description": task.body,
            "ActivityDate": task.due_date.isoformat(), "Priority": PRIORITY[task.priority],
            "Status": "Not Started",
        }
        if task.due_at is not None:
            # A Task's due date (ActivityDate) has no time of day; the exact due moment is its
            # reminder, which Salesforce shows to the owner in their own time zone.
            row["ReminderDateTime"] = wire_datetime(task.due_at)
            row["IsReminderSet"] = True
        if task.person_record_id:
            row["WhoId"] = task.person_record_id
        # Salesforce refuses a WhatId next to a Lead WhoId; an account goes on Contact tasks only.
        if task.account_record_id and not (task.person_record_id or "").startswith("00Q"):
            row["WhatId"] = task.account_record_id
        return row

    def upsert_tasks(self, tasks: Sequence[TaskUpsert]) -> list[WriteResult]:
        assert_writable(self.mapping, "task", {self.mapping.task_key})
        rows = [self._task_row(task) for task in tasks]
        if self._bulk_sized(len(rows)):
            key = self.mapping.task_key
            try:
                by_key = self.bulk.ingest("Task", "upsert", rows, key)
            except SalesforceCallError as error:
                by_key = self._all_failed("bulk upsert Task", [str(r[key]) for r in rows], error)
            results = [by_key[str(row[key])] for row in rows]
            return [WriteResult(key=task.key, ok=r.ok, crm_id=r.crm_id, error=r.error, retriable=r.retriable,
                                call_failed=r.call_failed) for task, r in zip(tasks, results, strict=True)]
        path = f"composite/sobjects/Task/{self.mapping.task_key}"
        results = []
        for batch in chunks(rows):
            results.extend(self._send("PATCH", path, "composite/sobjects:upsert Task", batch))
        return [WriteResult(key=task.key, ok=r.ok, crm_id=r.crm_id, error=r.error, retriable=r.retriable,
                            call_failed=r.call_failed) for task, r in zip(tasks, results, strict=True)]

    def _send(self, method: str, path: str, endpoint: str, batch: Sequence[dict[str, Any]]
              ) -> list[WriteResult]:
        """One collections call; per-record results in order. A failed call fails every record in it."""
        keys = [str(row.get("id") or row.get(self.mapping.task_key)) for row in batch]
        try:
            body = {"allOrNone": False, "records": list(batch)}
            answer = self.client.request(method, path, endpoint, json=body)
        except SalesforceCallError as error:
            _stop_if_not_set_up(endpoint, error)
            log.error("salesforce %s failed for %d records: %s", endpoint, len(batch), error)
            reason = f"{error.code or error.status}: {error.message}"
            return [WriteResult(key=k, ok=False, error=reason, retriable=error.retriable, call_failed=True)
                    for k in keys]
        items = answer if isinstance(answer, list) else []
        if len(items) != len(batch):
            reason = f"Salesforce answered {len(items)} results for {len(batch)} records"
            return [WriteResult(key=k, ok=False, error=reason, retriable=True) for k in keys]
        results = []
        for key, item in zip(keys, items, strict=True):
            if item.get("success"):
                results.append(WriteResult(key=key, ok=True, crm_id=item.get("id")))
            else:
                reason, retriable = _item_error(item)
                results.append(WriteResult(key=key, ok=False, crm_id=item.get("id"), error=reason,
                                           retriable=retriable))
        failed = sum(not r.ok for r in results)
        if failed:
            log.warning("salesforce %s: %d of %d records rejected", endpoint, failed, len(batch))
        return results
