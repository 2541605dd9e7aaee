"""A newer leadloop opens an older state database without losing anything, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import json
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

from leadloop.crm.records import Crm
from leadloop.store import StoreError, open_store
from leadloop.store import models as store_models
from leadloop.store.db import create_store_engine
from leadloop.store.migrations import LATEST_VERSION, _v1_metadata, current_version, migrate

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _make_v1_database_with_rows(url: str) -> None:
    engine = create_store_engine(url)
    assert migrate(engine, up_to=1) == [1]
    v1 = _v1_metadata().tables
    with engine.begin() as conn:
        conn.execute(v1["snapshots"].insert(), {
            "crm": "salesforce", "stream": "Lead", "record_id": "sf-lead:00QA", "crm_id": "00QA",
            "kind": "people", "payload": '{"id": "sf-lead:00QA", "email": "ana@acme-semi.com"}',
            "cursor": T0, "updated_at": T0, "deleted": False, "stored_at": T0,
        })
        conn.execute(v1["snapshots"].insert(), {
            "crm": "salesforce", "stream": "Task", "record_id": "sf-task:00TA", "crm_id": "00TA",
            "kind": "activities", "payload": '{"id": "sf-task:00TA", "person_id": "sf-lead:00QA", '
                                             '"kind": "sales_call", "occurred_at": "2024-05-01T12:00:00Z"}',
            "cursor": T0, "updated_at": T0, "deleted": False, "stored_at": T0,
        })
        conn.execute(v1["cursors"].insert(), {"crm": "salesforce", "stream": "Lead", "value": T0,
                                              "updated_at": T0})
        conn.execute(v1["written_ledger"].insert(), {"crm": "salesforce", "record_id": "00QA",
                                                     "field": "LL_Score__c", "value": "72", "written_at": T0,
                                                     "run_id": "r1"})
        conn.execute(v1["write_failures"].insert(), {
            "crm": "hubspot", "record_id": "501", "target": "ll_score", "reason": "PROPERTY_DOESNT_EXIST",
            "attempts": 3, "first_seen": T0, "last_seen": T0, "resolved_at": None, "run_id": "r1"})
        conn.execute(v1["runs"].insert(), {"id": "r1", "kind": "sync", "started_at": T0, "finished_at": T0,
                                           "status": "ok", "counts": {"pulled": 1}, "error": None})
        conn.execute(v1["task_ledger"].insert(), {
            "crm": "salesforce", "key": "ll:k1", "crm_task_id": "00TA",
            "person_id": "person:ana@acme-semi.com", "owner": "005A", "due": T0.date(), "status": "open",
            "created_at": T0, "updated_at": T0,
            "run_id": "r1"})
    engine.dispose()


def test_a_version_1_database_opens_with_its_rows_and_gains_the_new_columns(empty_store_url):
    _make_v1_database_with_rows(empty_store_url)

    with open_store(empty_store_url) as opened:
        assert [p.email for p in opened.load_records().people] == ["ana@acme-semi.com"]
        assert opened.get_cursor(Crm.SALESFORCE, "Lead") == T0
        assert opened.ledger(Crm.SALESFORCE) == {("00QA", "LL_Score__c"): "72"}
        task = opened.get_task(Crm.SALESFORCE, "ll:k1")
        assert task.crm_task_id == "00TA"
        assert (task.payload, task.attempts, task.last_error) == (None, 0, None)  # version 4's outbox
        [failure] = opened.failures()
        assert (failure.attempts, failure.retriable) == (3, False)  # new column, filled by its default
        run = opened.get_run("r1")
        assert run is not None and run.counts == {"pulled": 1} and run.api_calls is None
        # version 3 filled in the person of each stored activity, so it can be read by its person
        assert opened.activity_persons() == ({"sf-lead:00QA"}, set())
        [call], invalid = opened.load_activities(["sf-lead:00QA"])
        assert (call.id, invalid) == ("sf-task:00TA", [])
        # version 8: an activity stored before it, then moved to another person, names whom it named
        since = opened.stored_through()
        opened.upsert_snapshots(Crm.SALESFORCE, "Task", [dataclasses.replace(call, person_id="sf-lead:00QB")])
        [(_, _, person_ref, _, former)] = opened.changed_since(since)
        assert (person_ref, json.loads(former)["person_id"]) == ("sf-lead:00QB", "sf-lead:00QA")
        # the tables and columns version 2 added are usable at once
        opened.quarantine(Crm.SALESFORCE, "Lead", "00QA", "bad email")
        assert opened.load_records().people == []
        opened.save_assignment_state({"owners": {}})
        opened.save_dq_findings("dq", {"missing_email": (1, [])})
        # version 5: no playbook is live until one is activated; then the latest activation is
        assert opened.live_playbook() is None
        for version in ("a1", "b2"):
            opened.activate_playbook(name="semiconductor", model_version=version, source="semiconductor",
                                     text="name: semiconductor\n", activated_by="rev@host", run_id="r1")
        assert opened.live_playbook().model_version == "b2"
        assert [a.model_version for a in opened.playbook_history()] == ["b2", "a1"]
        with opened.engine.connect() as conn:
            assert current_version(conn) == LATEST_VERSION
            versions = conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars()
            assert list(versions) == [1, 2, 3, 4, 5, 6, 7, 8, 9]


def test_a_migrated_database_matches_the_models_column_for_column(empty_store_url):
    with open_store(empty_store_url) as opened, opened.engine.connect() as conn:
        inspector = inspect(conn)
        for name in sorted(_store_tables()):
            table = SQLModel.metadata.tables[name]
            columns = {c["name"]: c for c in inspector.get_columns(name)}
            assert set(columns) == set(table.columns.keys()), name
            for column in table.columns:
                assert columns[column.name]["nullable"] == (column.nullable and not column.primary_key), (
                    f"{name}.{column.name}")
            primary = inspector.get_pk_constraint(name)["constrained_columns"]
            assert set(primary) == {c.name for c in table.primary_key.columns}, name
            indexes = {i["name"] for i in inspector.get_indexes(name)}
            assert {i.name for i in table.indexes} <= indexes, name


def _store_tables() -> set[str]:
    return {model.__tablename__ for model in vars(store_models).values()  # type: ignore[attr-defined]
            if isinstance(model, type) and issubclass(model, SQLModel) and hasattr(model, "__table__")}


def test_opening_a_current_database_again_changes_nothing(empty_store_url):
    open_store(empty_store_url).close()
    engine = create_store_engine(empty_store_url)
    try:
        assert migrate(engine) == []
    finally:
        engine.dispose()


def test_a_database_from_a_newer_leadloop_is_refused_with_advice(empty_store_url):
    open_store(empty_store_url).close()
    engine = create_store_engine(empty_store_url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version (version, description, applied_at) "
                          "VALUES (99, 'from the future', CURRENT_TIMESTAMP)"))
    engine.dispose()

    with pytest.raises(StoreError, match="schema version 99, newer than this leadloop"):
        open_store(empty_store_url)


def test_two_processes_opening_a_new_store_at_once_migrate_it_once(empty_store_url):
    errors: list[BaseException] = []

    def open_and_close() -> None:
        try:
            open_store(empty_store_url).close()
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_and_close) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    engine = create_store_engine(empty_store_url)
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT version FROM schema_version ORDER BY version")).scalars()
        assert list(versions) == [1, 2, 3, 4, 5, 6, 7, 8, 9]
    engine.dispose()
