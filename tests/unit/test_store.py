"""The state store keeps what was pulled, scored and written — the same on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from leadloop.crm.changes import FieldUpdate, ObjectType, TaskUpsert
from leadloop.crm.identity import IdentityConflict
from leadloop.crm.ports import WriteResult
from leadloop.crm.records import Account, Activity, ActivityKind, Crm, Person
from leadloop.scoring.scorecard import Reason, ReasonKind, ScoreCard
from leadloop.store import Store, StoreError, open_store, redact
from leadloop.store.writeplan import mapped_fields

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
SF = Crm.SALESFORCE


@pytest.fixture
def store(store_url: str):
    with open_store(store_url) as opened:
        yield opened


def lead(n: int, email: str | None = None, updated: datetime = T0, title: str | None = None) -> Person:
    return Person(id=f"sf-lead:00Q{n:015d}", email=email or f"person{n}@acme-semi.com", updated_at=updated,
                  title=title, salesforce_lead_id=f"00Q{n:015d}")


def card(person_id: str, score: float, tier: str = "warm", at: datetime = T0) -> ScoreCard:
    return ScoreCard(
        person_id=person_id, account_id=None, model_version="semi-2024.05", scored_at=at, profile=None,
        fit=40, intent=score - 40, account_fit=0, account_intent=0, score=score, tier=tier,
        reasons=(Reason(ReasonKind.INTENT, "evk", 25, "+25 requested EVK-7710 evaluation kit", at),),
    )


# -- snapshots ------------------------------------------------------------------------------------

def test_pulled_records_come_back_as_canonical_records_by_kind(store: Store):
    account = Account(id="sf-account:001A", name="Acme Semi", website="https://acme-semi.com")
    visit = Activity(id="hs-pageview:1", person_id="hs-contact:7", kind=ActivityKind.PAGE_VIEW,
                     occurred_at=T0, url="https://example.com/evk")
    store.upsert_snapshots(SF, "Lead", [lead(1), lead(2)], cursor=T0)
    store.upsert_snapshots(SF, "Account", [account], cursor=T0)
    store.upsert_snapshots(Crm.HUBSPOT, "page_views", [visit], cursor=T0)

    dataset = store.load_records()

    assert sorted(p.id for p in dataset.people) == [
        "sf-lead:00Q000000000000001", "sf-lead:00Q000000000000002"]
    assert dataset.accounts == [account]
    assert dataset.activities == [visit]
    assert dataset.people[0].updated_at == T0


def test_records_load_in_id_order_whatever_order_they_were_stored_in(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(3), lead(1)], cursor=T0)
    store.upsert_snapshots(SF, "Lead", [lead(2)], cursor=T0)

    assert [p.id for p in store.load_records().people] == [lead(1).id, lead(2).id, lead(3).id]


def test_a_record_id_stored_under_two_streams_loads_once_with_its_newest_payload(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Engineer"), lead(2)], cursor=T0, now=T0)
    hour = timedelta(hours=1)
    store.upsert_snapshots(SF, "LeadArchive", [lead(1, title="Director")], cursor=T0, now=T0 + hour)
    store.upsert_snapshots(SF, "Archive", [lead(2, title="Buyer")], cursor=T0, now=T0 - hour)

    people = store.load_records().people

    assert [(p.id, p.title) for p in people] == [(lead(1).id, "Director"), (lead(2).id, None)]

def call(n: int, person: str, minutes: int = 0) -> Activity:
    return Activity(id=f"sf-task:00T{n:015d}", person_id=person, kind=ActivityKind.SALES_CALL,
                    occurred_at=T0 - timedelta(minutes=minutes))


def test_activities_are_read_by_the_persons_they_name_as_loading_them_all_would(store: Store):
    ana, bo, cy = lead(1).id, lead(2).id, "hs-contact:3"
    store.upsert_snapshots(SF, "Task", [call(n, (ana, bo, cy)[n % 3], n) for n in range(1, 1201)],
                           cursor=T0, now=T0)
    hour = timedelta(hours=1)
    # stored again under another stream: the newer copy names another person, the older one is stale
    store.upsert_snapshots(SF, "TaskArchive", [call(4, cy, minutes=99)], cursor=T0, now=T0 + hour)
    store.upsert_snapshots(SF, "OldTasks", [call(5, ana)], cursor=T0, now=T0 - hour)
    store.tombstone(SF, "Task", [call(6, ana).id.split(":")[1]])
    everything = store.load_records().activities

    persons, twice = store.activity_persons()
    assert persons == {ana, bo, cy}
    assert twice == {call(4, ana).id, call(5, ana).id}
    settled, _ = store.load_activities(ids=twice)
    assert [(a.id, a.person_id) for a in settled] == [(call(4, ana).id, cy), (call(5, ana).id, cy)]

    # reading by person over many IN lists, without the twice-stored ids, plus those settled ones
    parts = [store.load_activities([ana], skip=twice)[0], store.load_activities([bo, cy], skip=twice)[0]]
    assert all(a.person_id == ana for a in parts[0]) and len(parts[0]) == 400 - 1  # one tombstoned
    assert [a.id for a in parts[1]] == sorted(a.id for a in parts[1])
    assert sorted([*parts[0], *parts[1], *settled], key=lambda a: a.id) == everything
    assert store.load_activities([None, "sf-lead:nobody"]) == ([], [])
    # or all of them, a couple of persons at a time
    assert sorted(store.iter_activities(persons_per_read=2), key=lambda a: a.id) == everything


def test_a_stored_payload_that_no_longer_loads_is_reported_and_the_rest_load(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1), lead(2), lead(3)], cursor=T0)
    from sqlalchemy import update

    from leadloop.store.facade import SNAPSHOTS
    with store._write() as conn:  # one payload cut short (not JSON any more), one no longer valid
        conn.execute(update(SNAPSHOTS).where(SNAPSHOTS.c.record_id == lead(1).id)
                     .values(payload='{"id": "sf-le'))
        conn.execute(update(SNAPSHOTS).where(SNAPSHOTS.c.record_id == lead(2).id)
                     .values(payload='{"id": "sf-lead:2", "email": "not-an-email"}'))

    dataset = store.load_records()

    assert dataset.people == [lead(3)]
    problems = {(i.kind, i.record_id): " ".join(i.problems) for i in dataset.invalid}
    assert sorted(problems) == [("people", lead(1).id), ("people", lead(2).id)]
    assert "email: not an email address" in problems["people", lead(2).id]
    assert "JSON" in problems["people", lead(1).id]


def test_a_re_pulled_record_replaces_its_snapshot_instead_of_adding_one(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Engineer")], cursor=T0)
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Director", updated=T0 + timedelta(hours=1))],
                           cursor=T0 + timedelta(hours=1))

    people = store.load_records().people
    assert [p.title for p in people] == ["Director"]


def test_an_older_version_from_a_lagging_search_never_overwrites_a_newer_one(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Director", updated=T0 + timedelta(hours=1))])
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Engineer", updated=T0)])

    assert store.load_records().people[0].title == "Director"


def test_a_re_read_that_brings_only_a_new_modification_time_is_no_change(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Engineer"), lead(2)], now=T0)
    stored = store.stored_through()
    # leadloop's own write-back touched both; a rep then edited one of them
    echo, edit = T0 + timedelta(hours=1), T0 + timedelta(hours=2)
    store.upsert_snapshots(SF, "Lead", [lead(1, title="Engineer", updated=echo), lead(2, updated=echo)],
                           now=echo)

    assert store.stored_through() == stored
    assert store.changed_since(stored) == []
    assert [p.updated_at for p in store.load_records().people] == [T0, T0]  # still the last content change

    store.upsert_snapshots(SF, "Lead", [lead(1, title="Director", updated=edit)], now=edit)
    assert [(kind, record_id) for kind, record_id, *_ in store.changed_since(stored)] == [
        ("people", lead(1).id)]
    assert [(p.title, p.updated_at) for p in store.load_records().people] == [("Director", edit), (None, T0)]
    # the version the echo stands for still keeps an older one from a lagging search out
    store.upsert_snapshots(SF, "Lead", [lead(2, title="Intern", updated=T0 + timedelta(minutes=30))])
    assert store.load_records().people[1].title is None


def test_tombstoned_records_leave_the_dataset_whether_named_by_raw_or_qualified_id(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1), lead(2), lead(3)])

    marked = store.tombstone(SF, "Lead", ["00Q000000000000001", "sf-lead:00Q000000000000002"])

    assert marked == 2
    assert [p.id for p in store.load_records().people] == ["sf-lead:00Q000000000000003"]
    assert store.snapshot_counts()[("salesforce", "Lead")] == {"live": 1, "deleted": 2, "quarantined": 0}


def test_a_record_that_comes_back_after_deletion_is_live_again(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1)])
    store.tombstone(SF, "Lead", ["00Q000000000000001"])
    store.upsert_snapshots(SF, "Lead", [lead(1, updated=T0 + timedelta(days=1))])

    assert len(store.load_records().people) == 1


def test_quarantined_records_are_held_out_and_released_when_they_map_cleanly_again(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1), lead(2)])

    store.quarantine(SF, "Lead", "00Q000000000000002", "Email: not an email address: 'x@'", now=T0)

    assert [p.id for p in store.load_records().people] == ["sf-lead:00Q000000000000001"]
    assert len(store.load_records(include_quarantined=True).people) == 2
    [held] = store.quarantined(SF)
    assert (held.crm_id, held.reason, held.first_seen) == ("00Q000000000000002",
                                                          "Email: not an email address: 'x@'", T0)

    store.upsert_snapshots(SF, "Lead", [lead(2, updated=T0 + timedelta(hours=1))])

    assert len(store.load_records().people) == 2
    assert store.quarantined(SF) == []


def test_an_unchanged_record_pulled_again_is_released_from_quarantine_and_deletion(store: Store):
    store.upsert_snapshots(SF, "Lead", [lead(1), lead(2)])
    store.quarantine(SF, "Lead", "00Q000000000000001", "bad email")
    store.tombstone(SF, "Lead", ["00Q000000000000002"])

    store.upsert_snapshots(SF, "Lead", [lead(1), lead(2)])  # the very same versions

    assert len(store.load_records().people) == 2


def test_quarantining_the_same_record_again_counts_the_times_seen(store: Store):
    store.quarantine_rejected(SF, "Lead", [("00Q1", "bad date")], now=T0)
    store.quarantine_rejected(SF, "Lead", [("00Q1", "bad email")], now=T0 + timedelta(hours=1))

    [held] = store.quarantined()
    assert (held.times_seen, held.reason, held.last_seen) == (2, "bad email", T0 + timedelta(hours=1))


def test_non_canonical_records_are_kept_by_their_stream(store: Store):
    store.upsert_snapshots(SF, "User", [{"id": "sf-user:005A", "name": "Rep One", "email": "rep@x.com"}])

    assert store.load_kind("User") == [{"id": "sf-user:005A", "name": "Rep One", "email": "rep@x.com"}]
    assert store.load_records().people == []


# -- cursors ----------------------------------------------------------------------------------------

def test_a_cursor_only_ever_moves_forward(store: Store):
    assert store.get_cursor(SF, "Lead") is None
    assert store.set_cursor(SF, "Lead", T0) == T0
    assert store.set_cursor(SF, "Lead", T0 - timedelta(minutes=5)) == T0
    assert store.get_cursor(SF, "Lead") == T0
    assert store.set_cursor(SF, "Lead", T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=1)
    assert store.cursors() == {("salesforce", "Lead"): T0 + timedelta(seconds=1)}


def test_cursors_keep_sub_second_precision_and_come_back_in_utc(store: Store):
    cet = datetime(2024, 5, 1, 14, 0, 0, 123000, tzinfo=__import__("datetime").timezone(timedelta(hours=2)))
    store.set_cursor(Crm.HUBSPOT, "contacts", cet)

    stored = store.get_cursor(Crm.HUBSPOT, "contacts")
    assert stored == cet and stored.tzinfo == UTC and stored.microsecond == 123000


# -- identity ----------------------------------------------------------------------------------------

def test_identity_links_are_replaced_and_conflicts_kept_for_data_quality(store: Store):
    store.save_identity({"sf-lead:1": "person:a@x.com", "hs-contact:9": "person:a@x.com",
                         "sf-account:001": "account:x.com"})
    conflict = IdentityConflict("duplicate_email", ("sf-lead:1", "sf-lead:2"), "two leads share a@x.com")
    store.save_identity({"sf-lead:1": "person:a@x.com", "sf-account:001": "account:x.com"}, [conflict])

    assert store.identity_links() == {"sf-lead:1": "person:a@x.com", "sf-account:001": "account:x.com"}
    assert store.identity_conflicts() == [conflict]


# -- score history ------------------------------------------------------------------------------------

def test_a_merge_saved_with_its_records_is_kept_until_a_merge_without_them(store: Store):
    anna = Person(id="person:anna@acme-semi.com", email="anna@acme-semi.com",
                  account_id="account:acme-semi.com")
    ben = Person(id="person:ben@acme-semi.com", email="ben@acme-semi.com")
    acme = Account(id="account:acme-semi.com", name="Acme Semi")
    links = {"sf-lead:1": anna.id, "hs-contact:9": anna.id, "sf-lead:2": ben.id, "sf-account:001": acme.id}
    assert store.kept_identity() is None

    store.save_identity(links, records={"people": [ben, anna], "accounts": [acme], "opportunities": []},
                        through=T0)

    assert store.kept_identity() == T0
    assert store.canonical_accounts_of_people() == {anna.id: acme.id, ben.id: None}
    assert store.canonical_ids("accounts") == [acme.id]
    assert store.canonical_records("people") == [anna, ben]
    assert store.canonical_records("people", {ben.id}) == [ben]
    store.save_identity(links)  # links saved without the records they merge into: nothing is kept
    assert store.kept_identity() is None and store.canonical_records("people") == []


def test_every_scorecard_is_kept_and_the_latest_per_person_is_at_hand(store: Store):
    store.save_scorecards("run-1", [card("person:a@x.com", 50), card("person:b@x.com", 70, "hot")])
    store.save_scorecards("run-2", [card("person:a@x.com", 65, at=T0 + timedelta(hours=1))])

    latest = store.latest_scorecards()

    assert {pid: c["score"] for pid, c in latest.items()} == {"person:a@x.com": 65, "person:b@x.com": 70}
    assert latest["person:b@x.com"]["tier"] == "hot"
    assert latest["person:a@x.com"]["model_version"] == "semi-2024.05"
    assert latest["person:a@x.com"]["reasons"][0]["text"] == "+25 requested EVK-7710 evaluation kit"
    history = store.score_history("person:a@x.com")
    assert [(h["run_id"], h["score"]) for h in history] == [("run-2", 65), ("run-1", 50)]


def test_the_latest_stored_cards_come_back_as_the_scorecards_that_were_saved(store: Store):
    from leadloop.crm.dataset import load_dataset
    from leadloop.playbook.load import load_playbook
    from leadloop.scoring.engine import score_dataset
    from leadloop.sync.pipeline import previous_cards

    at = datetime(2026, 11, 2, 9, tzinfo=UTC)
    result = score_dataset(load_playbook("playbooks/semiconductor.yaml"),
                           load_dataset("playbooks/example_dataset.json"), at)
    assert any(r.why for c in result.cards.values() for r in c.reasons)  # the rule's why travels too
    assert any(c.escalation for c in result.cards.values())
    store.save_scorecards("run-1", [card(pid, 10) for pid in result.cards])
    store.save_scorecards("run-2", list(result.cards.values()))

    assert previous_cards(store) == result.cards
    # what a sync compares with: the same cards without their reasons
    from dataclasses import replace

    from leadloop.sync.pipeline import last_scores

    assert last_scores(store) == {pid: replace(c, reasons=()) for pid, c in result.cards.items()}


def test_a_card_stored_before_a_field_existed_loads_with_that_fields_default(store: Store):
    from leadloop.sync.pipeline import previous_cards

    old = card("person:a@x.com", 50).to_dict()
    del old["contact_fit"], old["reasons"][0]["why"]
    store.save_scorecards("run-1", [old])

    loaded = previous_cards(store)["person:a@x.com"]

    assert loaded.contact_fit == 0.0 and loaded.reasons[0].why is None
    assert loaded == card("person:a@x.com", 50)


def test_pruning_history_keeps_each_persons_latest_card(store: Store):
    store.save_scorecards("r1", [card("person:a@x.com", 50, at=T0), card("person:b@x.com", 60, at=T0)])
    store.save_scorecards("r2", [card("person:a@x.com", 55, at=T0 + timedelta(days=40))])

    removed = store.prune_score_history(before=T0 + timedelta(days=30))

    assert removed == 1
    assert {p: c["score"] for p, c in store.latest_scorecards().items()} == {"person:a@x.com": 55,
                                                                             "person:b@x.com": 60}


def test_account_scores_are_kept_with_their_model_version(store: Store):
    store.save_account_scores("r1", [{"account_id": "account:x.com", "model_version": "m1", "fit": 70.0,
                                      "intent": 20.0, "tier": "engaged", "buying_roles": ["engineer"]}],
                              scored_at=T0)
    assert store.latest_account_scores()["account:x.com"]["tier"] == "engaged"


# -- written ledger, write failures, tasks ---------------------------------------------------------------

def _update(record_id: str, field: str, value: object) -> FieldUpdate:
    return FieldUpdate(crm=SF, object_type=ObjectType.PERSON, record_id=record_id, field=field, value=value)


def test_the_ledger_remembers_accepted_writes_by_crm_field_name(store: Store):
    updates = [_update("00QA", "score", 72), _update("00QA", "tier", "hot"), _update("00QB", "score", 10)]
    results = [WriteResult("00QA", True, "00QA"), WriteResult("00QA", True, "00QA"),
               WriteResult("00QB", False, error="FIELD_CUSTOM_VALIDATION_EXCEPTION: blocked")]
    namer = mapped_fields({"score": "LL_Score__c", "tier": "LL_Tier__c"}, {})

    written, failed = store.record_writes(SF, updates, results, run_id="r1", crm_field=namer, now=T0)

    assert (written, failed) == (2, 1)
    assert store.ledger(SF) == {("00QA", "LL_Score__c"): "72", ("00QA", "LL_Tier__c"): "hot"}
    assert store.ledger(Crm.HUBSPOT) == {}
    [failure] = store.failures(SF)
    assert (failure.record_id, failure.target, failure.reason, failure.attempts) == (
        "00QB", "LL_Score__c", "FIELD_CUSTOM_VALIDATION_EXCEPTION: blocked", 1)


def test_a_failure_retried_and_failing_again_counts_attempts_then_resolves_on_success(store: Store):
    update = [_update("00QB", "score", 10)]
    locked = [WriteResult("00QB", False, error="UNABLE_TO_LOCK_ROW", retriable=True)]
    store.record_writes(SF, update, locked, now=T0)
    store.record_writes(SF, update, locked, now=T0 + timedelta(hours=1))

    [failure] = store.failures()
    assert (failure.attempts, failure.first_seen, failure.last_seen, failure.retriable) == (
        2, T0, T0 + timedelta(hours=1), True)

    store.record_writes(SF, update, [WriteResult("00QB", True, "00QB")], now=T0 + timedelta(hours=2))

    assert store.failures() == []
    [resolved] = store.failures(include_resolved=True)
    assert resolved.resolved_at == T0 + timedelta(hours=2)
    assert store.ledger(SF) == {("00QB", "score"): "10"}


def test_failures_can_be_recorded_and_resolved_by_hand(store: Store):
    store.record_failure(Crm.HUBSPOT, "501", "ll_score", "PROPERTY_DOESNT_EXIST", now=T0)
    assert store.resolve_failures(Crm.HUBSPOT, [("501", "ll_score")], now=T0) == 1
    assert store.failures(Crm.HUBSPOT) == []


def test_the_task_ledger_maps_each_key_to_the_crm_task_and_failed_tasks_await_retry(store: Store):
    tasks = [
        TaskUpsert(crm=SF, key="ll:person:a@x.com:hot:2024-05", owner_id="005A", subject="Call",
                   body="note", due_date=date(2024, 5, 2), person_record_id="003A",
                   person_id="person:a@x.com"),
        TaskUpsert(crm=SF, key="ll:person:b@x.com:hot:2024-05", owner_id="005A", subject="Call",
                   body="note", due_date=date(2024, 5, 2), person_record_id="003B"),
    ]
    results = [WriteResult(tasks[0].key, True, "00TA"),
               WriteResult(tasks[1].key, False, error="INVALID_CROSS_REFERENCE_KEY: owner inactive")]

    store.queue_tasks(SF, tasks, run_id="r1", now=T0)
    assert set(store.task_outbox(SF)) == {tasks[0].key, tasks[1].key}
    outcome = store.record_task_results(SF, tasks, results, run_id="r1", now=T0)
    assert (outcome.written, outcome.rejected, outcome.given_up) == (1, 1, 0)

    entry = store.get_task(SF, tasks[0].key)
    assert entry is not None
    assert (entry.crm_task_id, entry.person_id, entry.owner, entry.due, entry.status, entry.payload) == (
        "00TA", "person:a@x.com", "005A", date(2024, 5, 2), "open", None)
    rejected = store.task_outbox(SF)[tasks[1].key]  # kept with its payload, to be sent again
    assert (rejected.status, rejected.attempts, rejected.last_error) == (
        "rejected", 1, "INVALID_CROSS_REFERENCE_KEY: owner inactive")
    assert store.outbox_task(rejected) == tasks[1]
    assert [f.target for f in store.failures(SF)] == [f"task:{tasks[1].key}"]

    store.queue_tasks(SF, tasks[1:], run_id="r2", now=T0)
    outcome = store.record_task_results(SF, tasks[1:], results[1:], run_id="r2", now=T0, max_attempts=2)
    assert (outcome.rejected, outcome.given_up) == (1, 1)
    assert store.get_task(SF, tasks[1].key).status == "failed" and not store.task_outbox(SF)

    store.put_task(SF, tasks[1].key, "00TB", person_id="person:b@x.com", status="open")
    assert set(store.task_ledger(SF)) == {tasks[0].key, tasks[1].key}


def test_a_task_whose_outcome_is_unknown_stays_pending_and_a_search_confirms_it(store: Store):
    task = TaskUpsert(crm=Crm.HUBSPOT, key="ll:k1", owner_id="7", subject="Call", body="note",
                      due_date=date(2024, 5, 2), person_record_id="501", person_id="p1")
    store.queue_tasks(Crm.HUBSPOT, [task], run_id="r1", now=T0)
    outcome = store.record_task_results(Crm.HUBSPOT, [task], [WriteResult(task.key, False, error="TIMEOUT",
                                                                          unknown=True)], run_id="r1", now=T0)
    assert (outcome.unconfirmed, outcome.rejected) == (1, 0) and not store.failures(Crm.HUBSPOT)
    assert store.task_outbox(Crm.HUBSPOT)[task.key].status == "pending"
    assert store.confirm_tasks(Crm.HUBSPOT, {task.key: "9001"}, run_id="r2", now=T0) == 1
    entry = store.get_task(Crm.HUBSPOT, task.key)
    assert (entry.status, entry.crm_task_id, entry.payload) == ("open", "9001", None)
    assert not store.task_outbox(Crm.HUBSPOT)


def test_one_run_holds_the_store_and_a_dead_holder_is_taken_over_and_marked_crashed(store: Store):
    from leadloop.store.facade import StoreLocked

    ttl = timedelta(seconds=90)
    store.start_run("hourly_sync", run_id="first", now=T0)
    store.acquire_lease("first", "hourly_sync", ttl, now=T0)
    with pytest.raises(StoreLocked, match="in use by run first"):
        store.acquire_lease("second", "hourly_sync", ttl, now=T0 + timedelta(seconds=30))
    assert store.renew_lease("first", now=T0 + timedelta(seconds=60))
    with pytest.raises(StoreLocked):  # renewed: alive for another ttl
        store.acquire_lease("second", "rescore", ttl, now=T0 + timedelta(seconds=120))
    # the holder stopped renewing: after ttl the lease lapses, the holder's run is marked crashed
    store.acquire_lease("second", "rescore", ttl, now=T0 + timedelta(seconds=151))
    assert store.lease().holder == "second" and not store.renew_lease("first")
    crashed = store.get_run("first")
    assert crashed.status == "crashed" and "took over" in crashed.error
    store.release_lease("second")
    assert store.lease() is None


# -- runs, routing state, data quality ---------------------------------------------------------------------

def test_a_run_records_its_outcome_counts_api_calls_and_duration(store: Store):
    run_id = store.start_run("sync", now=T0)
    store.finish_run(run_id, "partial", counts={"pulled": 120, "written": 30},
                     api_calls={"salesforce": {"query": 3}}, error="2 records rejected",
                     now=T0 + timedelta(seconds=42))

    run = store.get_run(run_id)
    assert run is not None
    assert (run.kind, run.status, run.counts, run.api_calls, run.error) == (
        "sync", "partial", {"pulled": 120, "written": 30}, {"salesforce": {"query": 3}}, "2 records rejected")
    assert run.duration_seconds == 42
    assert [r.id for r in store.runs("sync")] == [run_id]


def test_starting_a_run_twice_or_finishing_an_unknown_one_is_a_clear_error(store: Store):
    store.start_run("sync", run_id="flow-run-1")
    with pytest.raises(StoreError, match="already started"):
        store.start_run("sync", run_id="flow-run-1")
    with pytest.raises(StoreError, match="no run with id"):
        store.finish_run("nope")


def test_assignment_state_round_trips(store: Store):
    assert store.load_assignment_state() == {}
    state = {"credits": {"emea": {"005A": 1.5}}, "counts": {"005A": {"d:2024-05-01": 3}},
             "owners": {"person:a@x.com": {"owner": "005A", "at": T0.isoformat(), "via": "pool"}}}
    store.save_assignment_state(state)
    store.save_assignment_state(state)
    assert store.load_assignment_state() == state


def test_data_quality_findings_build_a_history_per_class(store: Store):
    store.save_dq_findings("dq-1", {"missing_email": (12, ["sf-lead:1"]), "duplicate_email": (2, [])}, now=T0)
    store.save_dq_findings("dq-2", {"missing_email": (9, ["sf-lead:2"])}, now=T0 + timedelta(days=1))

    history = store.dq_history("missing_email")
    assert [(f.run_id, f.count, f.examples) for f in history] == [("dq-1", 12, ["sf-lead:1"]),
                                                                   ("dq-2", 9, ["sf-lead:2"])]
    assert len(store.dq_history()) == 3


# -- opening, secrets, scale ----------------------------------------------------------------------------

def test_the_default_sqlite_store_creates_its_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_store() as opened:
        opened.set_cursor(SF, "Lead", T0)
    assert (tmp_path / ".leadloop" / "state.db").is_file()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    with open_store(sqlite_url) as opened, opened.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


def test_a_store_url_password_never_shows_in_messages_reprs_or_logs(postgres_cluster, caplog):
    url = f"postgresql+psycopg://leadloop:s3cr3t-pw@/postgres?host={postgres_cluster.socket_dir}&port=1"
    caplog.set_level(logging.DEBUG)
    with pytest.raises(StoreError) as info:
        open_store(url)
    assert "s3cr3t-pw" not in str(info.value)
    assert "***" in str(info.value)
    assert "s3cr3t-pw" not in caplog.text
    assert "s3cr3t-pw" not in redact(url)


def test_the_store_repr_hides_the_password(postgres_cluster):
    url = postgres_cluster.url().replace(f"{postgres_cluster.user}@", f"{postgres_cluster.user}:pw-123@")
    with open_store(url) as opened:
        assert "pw-123" not in repr(opened)


def test_an_unsupported_database_url_is_refused_with_a_clear_message():
    with pytest.raises(StoreError, match="unsupported store database 'mysql'"):
        open_store("mysql://u:p@localhost/db")
    with pytest.raises(StoreError, match="not a valid database URL"):
        open_store("postgresql+psycopg://:::")


def test_concurrent_writers_on_sqlite_all_land(sqlite_url):
    with open_store(sqlite_url) as opened:
        errors: list[BaseException] = []

        def write(offset: int) -> None:
            try:
                for n in range(offset, offset + 20):
                    opened.upsert_snapshots(SF, "Lead", [lead(n)])
                    opened.set_cursor(SF, f"Lead{offset}", T0 + timedelta(seconds=n))
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        threads = [threading.Thread(target=write, args=(k * 100,)) for k in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert errors == []
        assert len(opened.load_records().people) == 80


def test_bulk_snapshot_upserts_are_batched_not_row_by_row(store: Store):
    # 10k here keeps the suite fast; bench/bench_store.py measures 100k.
    import time

    records = [lead(n, updated=T0) for n in range(10_000)]
    started = time.perf_counter()
    store.upsert_snapshots(SF, "Lead", records, cursor=T0)
    store.upsert_snapshots(SF, "Lead", records, cursor=T0)
    elapsed = time.perf_counter() - started

    assert store.snapshot_counts()[("salesforce", "Lead")]["live"] == 10_000
    assert elapsed < 15, f"2 x 10k upserts took {elapsed:.1f}s"
