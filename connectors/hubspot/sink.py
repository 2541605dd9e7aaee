"""`HubSpotSink`: owned properties and follow-up tasks, written in batches of 100.

Field updates are merged per record (one input per record with all its changed owned properties) and
sent to `POST /crm/v3/objects/{contacts|companies}/batch/update`. A 207 answer keeps the rest of the
batch: each error is matched to its record through `context.ids` and reported with HubSpot's own
message for every (record, field) that record carried.

Tasks are made idempotent by their deterministic key, stored in the task property `ll_key`. A key is
looked up, in order, in the keys the caller already knows (the task ledger), in this sink's own
memory of what it created in this run (HubSpot's search lags behind writes), and then by a search on
`ll_key`; only keys found nowhere are created, through `batch/create` with the task's associations
to its contact (type 204) and company (type 192). So a crash between HubSpot's answer and the ledger's
commit never yields a second task: the next run's search finds the first. A create that got no
answer (a timeout, a dropped connection, a 5xx) is not retried: its tasks are reported with an
unknown outcome, and the caller looks them up by key before anything is sent again. A task is due
at its exact due moment (`hs_timestamp`, which HubSpot shows in each user's time zone). Known tasks
get their subject, note, due moment, priority and owner updated, never their status (a rep may have
closed it).
The allowlist is checked for the whole input before any request is built.

Docs: https://developers.hubspot.com/docs/api/crm/tasks,
https://developers.hubspot.com/docs/api/crm/understanding-the-crm (batch limits, 207 results)
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, time
from typing import Any, TypeVar

from leadloop.connectors.hubspot.client import BATCH_MAX, SEARCH_PAGE_MAX, HubSpotClient, next_after
from leadloop.connectors.hubspot.records import values_text
from leadloop.connectors.hubspot.retry import HubSpotError
from leadloop.connectors.mapping import CrmMapping, CrmNotSetUp, ForbiddenFieldError, assert_writable
from leadloop.connectors.paging import TokenPaginator
from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.ports import CrmSink, WriteResult
from leadloop.crm.records import Crm

log = logging.getLogger("leadloop.connectors.hubspot")


_MISSING_PROPERTY = re.compile(r'Property \\?"([^"\\]+)\\?" does not exist')


def _stop_if_not_set_up(endpoint: str, error: HubSpotError) -> None:
    """Raise `CrmNotSetUp` when HubSpot answered that a property leadloop writes or searches by does
    not exist (`PROPERTY_DOESNT_EXIST`): not a bad value of one record, every batch would fail so."""
    text = f"{error.message} {error.body}"
    if error.status == 400 and ("PROPERTY_DOESNT_EXIST" in text or (
            "Property" in error.message and "does not exist" in error.message)):
        names = sorted(set(_MISSING_PROPERTY.findall(text)))
        detail = f"no property {', '.join(names)}" if names else error.message[:300]
        raise CrmNotSetUp("HubSpot", endpoint, detail) from error

TASK_TO_CONTACT = 204  # HUBSPOT_DEFINED association type ids
TASK_TO_COMPANY = 192
PRIORITY = {Priority.HIGH: "HIGH", Priority.NORMAL: "MEDIUM", Priority.LOW: "LOW"}
OBJECT_FOR = {ObjectType.PERSON: "contacts", ObjectType.ACCOUNT: "companies"}
# A task with a due day only (queued before leadloop kept due moments) is due at noon UTC: the same
# calendar day in every time zone from UTC-11 to UTC+11, where the reps are.
DUE_TIME = time(12, 0, tzinfo=UTC)
T = TypeVar("T")


class WrongTargetError(ValueError):
    """A change addressed to another CRM."""


def chunks(items: Sequence[T], size: int = BATCH_MAX) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _get(item: Any, name: str, wire_name: str | None = None) -> Any:
    """An attribute of an official-client model, or a key of a plain dict."""
    if isinstance(item, dict):
        return item.get(wire_name or name)
    return getattr(item, name, None)


def _error_ids(error: Any, key: str) -> list[str]:
    context = _get(error, "context") or {}
    return [str(v) for v in (context.get(key) or [])] if isinstance(context, dict) else []


def _error_text(error: Any) -> str:
    category = _get(error, "category") or "ERROR"
    return f"{category}: {_get(error, 'message') or ''}".strip()


class HubSpotSink(CrmSink):
    crm = Crm.HUBSPOT

    def __init__(self, client: HubSpotClient, mapping: CrmMapping,
                 known_tasks: Mapping[str, str] | None = None) -> None:
        self.client = client
        self.mapping = mapping
        self.known_tasks: dict[str, str] = dict(known_tasks or {})  # key → task id (ledger + this run)

    def __repr__(self) -> str:
        return f"HubSpotSink({self.client!r})"

    # -- owned fields --------------------------------------------------------------------------------

    def _crm_field(self, update: FieldUpdate) -> str:
        person = update.object_type == ObjectType.PERSON
        owned = self.mapping.owned_person if person else self.mapping.owned_account
        if update.field not in owned:
            raise ForbiddenFieldError(
                f"refusing to write {update.field!r} on {update.object_type.value} records: it is not one of "
                f"leadloop's owned fields {sorted(owned)}")
        return owned[update.field]

    def write_fields(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        inputs: dict[tuple[str, str], dict[str, str]] = {}
        for update in updates:  # every check before the first request
            if update.crm != Crm.HUBSPOT:
                raise WrongTargetError(f"a {update.crm.value} update was sent to the HubSpot sink")
            crm_field = self._crm_field(update)
            assert_writable(self.mapping, update.object_type.value, {crm_field})
            key = (OBJECT_FOR[update.object_type], update.record_id)
            inputs.setdefault(key, {})[crm_field] = values_text(update.value)
        by_record: dict[tuple[str, str], WriteResult] = {}
        for object_type in ("contacts", "companies"):
            ids = [record_id for (kind, record_id) in inputs if kind == object_type]
            for batch in chunks(ids):
                body = {"inputs": [{"id": rid, "properties": inputs[(object_type, rid)]} for rid in batch]}
                for rid, result in self._update(object_type, body, batch).items():
                    by_record[(object_type, rid)] = result
        return [self._for_update(u, by_record[(OBJECT_FOR[u.object_type], u.record_id)]) for u in updates]

    def _update(self, object_type: str, body: dict[str, Any], ids: Sequence[str]) -> dict[str, WriteResult]:
        endpoint = f"POST /crm/v3/objects/{object_type}/batch/update"
        try:
            answer = self.client.call(endpoint, self.client.batch.update_with_http_info, object_type, body)
        except HubSpotError as error:
            _stop_if_not_set_up(endpoint, error)
            log.error("hubspot %s failed for %d records: %s", endpoint, len(ids), error)
            reason = f"{error.category or error.status}: {error.message}"
            return {rid: WriteResult(rid, False, error=reason, retriable=error.retriable, call_failed=True)
                    for rid in ids}
        done = {str(_get(item, "id")) for item in _get(answer, "results") or []}
        failed: dict[str, str] = {}
        unattributed: list[str] = []
        for error in _get(answer, "errors") or []:
            named = _error_ids(error, "ids") or _error_ids(error, "id")
            for rid in named:
                failed[rid] = _error_text(error)
            if not named:
                unattributed.append(_error_text(error))
        results: dict[str, WriteResult] = {}
        for rid in ids:
            if rid in failed:
                results[rid] = WriteResult(rid, False, crm_id=rid, error=failed[rid])
            elif rid in done:
                results[rid] = WriteResult(rid, True, crm_id=rid)
            else:
                reason = unattributed[0] if unattributed else "HubSpot returned no result for this record"
                results[rid] = WriteResult(rid, False, crm_id=rid, error=reason, retriable=not unattributed)
        if failed or unattributed:
            rejected = sum(not r.ok for r in results.values())
            log.warning("hubspot %s: %d of %d records rejected", endpoint, rejected, len(ids))
        return results

    @staticmethod
    def _for_update(update: FieldUpdate, result: WriteResult) -> WriteResult:
        return WriteResult(key=f"{update.record_id}:{update.field}", ok=result.ok, crm_id=result.crm_id,
                           error=result.error, retriable=result.retriable, call_failed=result.call_failed)

    # -- tasks ---------------------------------------------------------------------------------------

    def _task_properties(self, task: TaskUpsert) -> dict[str, str]:
        if task.crm != Crm.HUBSPOT:
            raise WrongTargetError(f"a {task.crm.value} task was sent to the HubSpot sink")
        due = task.due_at or datetime.combine(task.due_date, DUE_TIME)
        return {
            "hs_task_subject": task.subject[:255], "hs_task_body": task.body,
            "hs_timestamp": due.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "hs_task_priority": PRIORITY[task.priority],
            "hubspot_owner_id": task.owner_id, self.mapping.task_key: task.key,
        }

    def upsert_tasks(self, tasks: Sequence[TaskUpsert]) -> list[WriteResult]:
        assert_writable(self.mapping, "task", {self.mapping.task_key})
        properties = {task.key: self._task_properties(task) for task in tasks}
        unknown = [key for key in dict.fromkeys(properties) if key not in self.known_tasks]
        self.known_tasks.update(self.find_tasks(unknown))
        results: dict[str, WriteResult] = {}
        unique = {task.key: task for task in tasks}
        missing = [task for task in unique.values() if task.key not in self.known_tasks]
        for batch in chunks(missing):
            results.update(self._create(batch, properties))
        existing = [key for key in dict.fromkeys(properties) if key not in results]
        for batch in chunks(existing):
            body = {"inputs": [{"id": self.known_tasks[key], "properties": properties[key]} for key in batch]}
            answers = self._update("tasks", body, [self.known_tasks[key] for key in batch])
            for key in batch:
                answer = answers[self.known_tasks[key]]
                results[key] = WriteResult(key, answer.ok, crm_id=answer.crm_id, error=answer.error,
                                           retriable=answer.retriable, call_failed=answer.call_failed)
        return [results[task.key] for task in tasks]

    def find_tasks(self, keys: Sequence[str]) -> dict[str, str]:
        """key → task id for the keys HubSpot's search can see (`ll_key` IN keys, 100 values per query).
        When a key matches several tasks, the oldest id wins."""
        found: dict[str, str] = {}
        for batch in chunks(list(keys)):
            for answer in self._tasks_with_keys(batch):
                for item in answer.results or []:
                    key = (item.properties or {}).get(self.mapping.task_key)
                    if key in batch and key not in found:
                        found[key] = str(item.id)
        return found

    def _tasks_with_keys(self, keys: Sequence[str]) -> TokenPaginator[Any]:
        """The search answers for the tasks whose `ll_key` is one of `keys`, oldest id first."""
        endpoint = "POST /crm/v3/objects/tasks/search"
        key_filter = {"propertyName": self.mapping.task_key, "operator": "IN", "values": list(keys)}

        def fetch(after: str | None) -> Any:
            body = {"filterGroups": [{"filters": [key_filter]}],
                    "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
                    "properties": [self.mapping.task_key], "limit": SEARCH_PAGE_MAX, "after": after or "0"}
            try:
                return self.client.call(endpoint, self.client.search.do_search_with_http_info, "tasks", body,
                                        search=True)
            except HubSpotError as error:
                _stop_if_not_set_up(endpoint, error)
                raise

        return TokenPaginator(fetch, next_after, endpoint=endpoint)

    def _create(self, tasks: Sequence[TaskUpsert], properties: Mapping[str, dict[str, str]]
                ) -> dict[str, WriteResult]:
        inputs = []
        for task in tasks:
            associations = []
            if task.person_record_id:
                associations.append(_association(task.person_record_id, TASK_TO_CONTACT))
            if task.account_record_id:
                associations.append(_association(task.account_record_id, TASK_TO_COMPANY))
            inputs.append({"properties": {**properties[task.key], "hs_task_status": "NOT_STARTED",
                                          "hs_task_type": "TODO"},
                           "associations": associations, "objectWriteTraceId": task.key})
        endpoint = "POST /crm/v3/objects/tasks/batch/create"
        keys = [task.key for task in tasks]
        try:
            answer = self.client.call(endpoint, self.client.batch.create_with_http_info, "tasks",
                                      {"inputs": inputs}, idempotent=False)
        except HubSpotError as error:
            _stop_if_not_set_up(endpoint, error)
            log.error("hubspot %s failed for %d tasks: %s", endpoint, len(tasks), error)
            reason = f"{error.category or error.status}: {error.message}"
            # no answer, or a 5xx: the tasks may exist now; they are looked up by key, not resent
            unknown = error.may_have_applied
            return {key: WriteResult(key, False, error=reason, retriable=error.retriable, unknown=unknown,
                                     call_failed=True) for key in keys}
        results: dict[str, WriteResult] = {}
        for item in _get(answer, "results") or []:
            key = (_get(item, "properties") or {}).get(self.mapping.task_key) or _get(
                item, "object_write_trace_id", "objectWriteTraceId")
            if key in properties:
                self.known_tasks[key] = str(_get(item, "id"))
                results[key] = WriteResult(key, True, crm_id=self.known_tasks[key])
        unattributed: list[str] = []
        for error in _get(answer, "errors") or []:
            traced = _error_ids(error, "objectWriteTraceId")
            for key in traced:
                results.setdefault(key, WriteResult(key, False, error=_error_text(error)))
            if not traced:
                unattributed.append(_error_text(error))
        for key in keys:
            if key not in results:
                reason = unattributed[0] if unattributed else "HubSpot returned no result for this task"
                results[key] = WriteResult(key, False, error=reason, retriable=not unattributed)
        failed = sum(not r.ok for r in results.values())
        if failed:
            log.warning("hubspot %s: %d of %d tasks rejected", endpoint, failed, len(tasks))
        return results


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    kind = {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}
    return {"to": {"id": to_id}, "types": [kind]}
