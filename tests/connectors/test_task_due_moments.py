"""Task payloads carry the exact due moment: Salesforce gets the owner's local due day (`ActivityDate`)
and the moment as the Task's reminder (`ReminderDateTime`, `IsReminderSet`), HubSpot the moment as
`hs_timestamp`. Tasks queued before leadloop kept due moments still deliver, day only, and a task the
CRM already has is not sent again because its payload now says more."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import responses
from pydantic import TypeAdapter

from leadloop.connectors.hubspot.sink import HubSpotSink
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.bulk import csv_uploads
from leadloop.connectors.salesforce.client import salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.settings import SalesforceSettings
from leadloop.crm.changes import Priority, TaskUpsert
from leadloop.crm.records import Crm
from leadloop.routing import TaskKind, task_key
from leadloop.store import open_store
from leadloop.store.facade import OPEN
from leadloop.sync.writeback import CrmPlan, _plan_tasks

INSTANCE = "https://sf.example.test"
BASE = f"{INSTANCE}/services/data/v59.0"
SINGAPORE = ZoneInfo("Asia/Singapore")
# Monday 11:00 in Singapore: a four-hour SLA started Friday 16:00 there, in 08:30-17:30 business hours
DUE_AT = datetime(2026, 3, 9, 11, 0, tzinfo=SINGAPORE)


def a_task(crm: Crm, due_at: datetime | None = DUE_AT, key: str = "ll-sg-1") -> TaskUpsert:
    return TaskUpsert(crm=crm, key=key, owner_id="005PRIYA" if crm is Crm.SALESFORCE else "7001",
                      subject="Sales priority: Wei Tan (Lion Semi) - requested an EVK", body="Why now: EVK",
                      due_date=date(2026, 3, 9), due_at=due_at, priority=Priority.HIGH,
                      person_record_id="00Q000000000001AAA" if crm is Crm.SALESFORCE else "51")


@pytest.fixture
def salesforce_sink() -> SalesforceSink:
    client = salesforce_client(SalesforceSettings(instance_url=INSTANCE, session_id="00DTEST!s"), None,
                               policy=RetryPolicy(attempts=1, sleep=lambda _: None))
    return SalesforceSink(client, load_mapping().salesforce)


@responses.activate
def test_a_salesforce_task_is_due_on_the_local_day_with_a_reminder_at_the_exact_moment(salesforce_sink):
    created = {"id": "00T000000000001AAA", "success": True, "errors": [], "created": True}
    call = responses.patch(f"{BASE}/composite/sobjects/Task/LL_Key__c", json=[created])
    [result] = salesforce_sink.upsert_tasks([a_task(Crm.SALESFORCE)])
    assert result.ok
    [row] = json.loads(call.calls[0].request.body)["records"]
    assert row["ActivityDate"] == "2026-03-09"
    assert row["ReminderDateTime"] == "2026-03-09T03:00:00.000Z"  # 11:00 in Singapore
    assert row["IsReminderSet"] is True
    assert row["LL_Key__c"] == "ll-sg-1"


@responses.activate
def test_a_salesforce_task_with_a_due_day_only_sets_no_reminder(salesforce_sink):
    updated = {"id": "00T000000000001AAA", "success": True, "errors": [], "created": False}
    call = responses.patch(f"{BASE}/composite/sobjects/Task/LL_Key__c", json=[updated])
    salesforce_sink.upsert_tasks([a_task(Crm.SALESFORCE, due_at=None)])
    [row] = json.loads(call.calls[0].request.body)["records"]
    assert row["ActivityDate"] == "2026-03-09"
    assert "ReminderDateTime" not in row and "IsReminderSet" not in row


def test_a_bulk_task_upsert_carries_the_reminder_too(salesforce_sink):
    rows = [salesforce_sink._task_row(a_task(Crm.SALESFORCE)),
            salesforce_sink._task_row(a_task(Crm.SALESFORCE, due_at=None, key="ll-old"))]
    [(body, keys)] = list(csv_uploads(rows, "LL_Key__c"))
    header, with_moment, day_only = (line.split(",") for line in body.splitlines())
    values = dict(zip(header, with_moment, strict=True))
    assert (values["ReminderDateTime"], values["IsReminderSet"]) == ("2026-03-09T03:00:00.000Z", "true")
    blank = dict(zip(header, day_only, strict=True))  # blank leaves the field as it is
    assert (blank["ReminderDateTime"], blank["IsReminderSet"]) == ("", "")
    assert keys == ["ll-sg-1", "ll-old"]


def test_a_hubspot_task_is_due_at_the_exact_moment():
    sink = HubSpotSink(client=None, mapping=load_mapping().hubspot)
    properties = sink._task_properties(a_task(Crm.HUBSPOT))
    assert properties["hs_timestamp"] == "2026-03-09T03:00:00.000Z"
    assert properties["ll_key"] == "ll-sg-1"


def test_a_hubspot_task_with_a_due_day_only_is_due_at_noon_utc_that_day():
    properties = HubSpotSink(client=None, mapping=load_mapping().hubspot)._task_properties(
        a_task(Crm.HUBSPOT, due_at=None))
    assert properties["hs_timestamp"] == "2026-03-09T12:00:00.000Z"


def test_a_due_moment_without_a_time_zone_is_refused():
    with pytest.raises(ValueError, match="timezone"):
        a_task(Crm.HUBSPOT, due_at=datetime(2026, 3, 9, 11, 0))


def test_an_outbox_payload_queued_before_due_moments_still_loads_as_a_day_only_task():
    queued = json.loads(TypeAdapter(TaskUpsert).dump_json(a_task(Crm.SALESFORCE, due_at=None)))
    del queued["due_at"]  # what the outbox held before TaskUpsert had the field
    task = TypeAdapter(TaskUpsert).validate_json(json.dumps(queued))
    assert task.due_at is None and task.due_date == date(2026, 3, 9)


def test_the_task_key_still_derives_from_person_reason_and_iso_week_only():
    friday = datetime(2026, 3, 6, 8, 0, tzinfo=UTC)
    assert task_key("p1", TaskKind.SALES_HANDOFF, friday) == task_key(
        "p1", TaskKind.SALES_HANDOFF, friday + timedelta(days=2))
    week_key = hashlib.sha1(b"p1|sales-handoff|2026-W10").hexdigest()[:24]  # nothing of the due moment
    assert task_key("p1", TaskKind.SALES_HANDOFF, friday) == f"ll-{week_key}"


@pytest.mark.parametrize("crm", [Crm.SALESFORCE, Crm.HUBSPOT])
def test_a_task_the_crm_already_has_is_not_sent_again_for_its_new_due_moment(sqlite_url: str, crm: Crm):
    with open_store(sqlite_url) as store:
        store.put_task(crm.value, "ll-sg-1", "00T000000000001AAA", person_id="p1", due=date(2026, 3, 9),
                       status=OPEN)
        plan = CrmPlan(crm)
        _plan_tasks(SimpleNamespace(store=store), plan, {"ll-sg-1": a_task(crm)}, datetime.now(UTC))
    assert plan.tasks == [] and plan.confirm == [] and plan.skipped_tasks == 1
