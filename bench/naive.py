"""A deliberately naive per-record connector, the baseline of the sync benchmark (never used by leadloop).

It does what a first integration often does: list the ids, then one GET per record read, one PATCH per
field written, one POST per task. It is built on the same official clients as leadloop's connectors
(simple-salesforce, hubspot-api-client) over the same verified TLS, so the difference measured is the
API pattern alone. Its only concession to reality is waiting out HubSpot's 429s (`Retry-After`), since
otherwise it could not finish under HubSpot's rate limits at all.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from datetime import time as clock_time
from pathlib import Path
from typing import Any, TypeVar

import requests
from hubspot import HubSpot
from hubspot.crm.objects import (
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.exceptions import ApiException
from simple_salesforce import Salesforce

from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert

T = TypeVar("T")

SF_PRIORITY = {Priority.HIGH: "High", Priority.NORMAL: "Normal", Priority.LOW: "Low"}
HS_PRIORITY = {Priority.HIGH: "HIGH", Priority.NORMAL: "MEDIUM", Priority.LOW: "LOW"}
SF_PERSON_OBJECTS = {"00Q": "Lead", "003": "Contact"}
HS_OBJECT_FOR = {ObjectType.PERSON: "contacts", ObjectType.ACCOUNT: "companies"}
TASK_TO_CONTACT, TASK_TO_COMPANY = 204, 192


def sf_sobject(update: FieldUpdate) -> str:
    if update.object_type == ObjectType.ACCOUNT:
        return "Account"
    return SF_PERSON_OBJECTS[update.record_id[:3]]


class NaiveSalesforce:
    """One REST call per record on simple-salesforce. `calls` counts HTTP requests by kind."""

    def __init__(self, instance_url: str, session_id: str, ca_cert: str | Path, api_version: str = "59.0"):
        session = requests.Session()
        session.trust_env = False
        session.verify = str(ca_cert)
        self.sf = Salesforce(
            instance_url=instance_url, session_id=session_id, session=session, version=api_version
        )
        self.calls: Counter[str] = Counter()

    def ids(self, sobject: str, limit: int | None = None) -> list[str]:
        """Record ids of `sobject` (an id-only query, 2,000 per page), at most `limit`."""
        soql = f"SELECT Id FROM {sobject}" + (f" LIMIT {int(limit)}" if limit else "")
        found: list[str] = []
        page = self.sf.query(soql)
        self.calls["query ids"] += 1
        while True:
            found += [row["Id"] for row in page["records"]]
            if page.get("done", True):
                return found
            page = self.sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
            self.calls["query ids"] += 1

    def get(self, sobject: str, record_id: str) -> dict[str, Any]:
        self.calls["GET record"] += 1
        return dict(getattr(self.sf, sobject).get(record_id))

    def patch_field(self, sobject: str, record_id: str, field: str, value: Any) -> None:
        self.calls["PATCH field"] += 1
        getattr(self.sf, sobject).update(record_id, {field: value})

    def post_task(self, task: TaskUpsert, key_field: str, suffix: str = "") -> str:
        """Create the task (a unique `key_field`: `suffix` keeps it apart from a task already there)."""
        row: dict[str, Any] = {
            key_field: task.key + suffix,
            "OwnerId": task.owner_id,
            "Subject": task.subject[:255],
            "Description": task.body,
            "ActivityDate": task.due_date.isoformat(),
            "Priority": SF_PRIORITY[task.priority],
            "Status": "Not Started",
        }
        if task.person_record_id:
            row["WhoId"] = task.person_record_id
        self.calls["POST task"] += 1
        return str(self.sf.Task.create(row)["id"])


class NaiveHubSpot:
    """One CRM v3 call per record on hubspot-api-client; waits out 429s. `calls` counts attempts."""

    def __init__(self, host: str, access_token: str, ca_cert: str | Path):
        self.hs = HubSpot(access_token=access_token, host=host, ssl_ca_cert=str(ca_cert), verify_ssl=True)
        self.objects = self.hs.crm.objects.basic_api
        self.calls: Counter[str] = Counter()
        self.waited = 0.0

    def _call(self, kind: str, send: Callable[[], T]) -> T:
        while True:
            self.calls[kind] += 1
            try:
                return send()
            except ApiException as error:
                if error.status != 429:
                    raise
                self.calls["429 refused"] += 1
                retry_after = (error.headers or {}).get("Retry-After")
                pause = float(retry_after) if retry_after else 1.0
                self.waited += pause
                time.sleep(pause)

    def ids(self, object_type: str, limit: int | None = None) -> list[str]:
        """Record ids of `object_type` (the list endpoint, 100 per page), at most `limit`."""
        found: list[str] = []
        after: str | None = None
        while limit is None or len(found) < limit:
            kwargs: dict[str, Any] = {"limit": 100}
            if after is not None:
                kwargs["after"] = after
            page = self._call("list ids", lambda kw=kwargs: self.objects.get_page(object_type, **kw))
            found += [item.id for item in page.results or []]
            following = page.paging.next if page.paging is not None else None
            if following is None:
                break
            after = following.after
        return found[:limit] if limit is not None else found

    def get(self, object_type: str, record_id: str) -> Any:
        return self._call("GET record", lambda: self.objects.get_by_id(object_type, record_id))

    def patch_field(self, object_type: str, record_id: str, prop: str, value: Any) -> None:
        body = SimplePublicObjectInput(properties={prop: "" if value is None else str(value)})
        self._call("PATCH field", lambda: self.objects.update(object_type, record_id, body))

    def post_task(self, task: TaskUpsert, key_property: str, suffix: str = "") -> str:
        due = datetime.combine(task.due_date, clock_time(12, 0, tzinfo=UTC))
        associations = []
        if task.person_record_id:
            associations.append(_association(task.person_record_id, TASK_TO_CONTACT))
        if task.account_record_id:
            associations.append(_association(task.account_record_id, TASK_TO_COMPANY))
        body = SimplePublicObjectInputForCreate(
            properties={
                "hs_task_subject": task.subject[:255],
                "hs_task_body": task.body,
                "hs_timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "hs_task_priority": HS_PRIORITY[task.priority],
                "hubspot_owner_id": task.owner_id,
                key_property: task.key + suffix,
                "hs_task_status": "NOT_STARTED",
                "hs_task_type": "TODO",
            },
            associations=associations,
        )
        return str(self._call("POST task", lambda: self.objects.create("tasks", body)).id)


def _association(to_id: str, type_id: int) -> dict[str, Any]:
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def spread(items: list[T], n: int) -> Iterator[T]:
    """At most `n` items evenly spread over `items` (a sample that is not just the first ones)."""
    if n <= 0 or not items:
        return
    step = max(1, len(items) // n)
    yield from items[::step][:n]
