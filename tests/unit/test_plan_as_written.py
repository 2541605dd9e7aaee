"""The write plan skips building updates for records the ledger already holds: the same plan, in the
same order, as diffing every desired value (the plan before that shortcut, kept here as the reference)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from leadloop.connectors.mapping import load_mapping
from leadloop.crm.changes import FieldUpdate, ObjectType
from leadloop.crm.dataset import load_dataset
from leadloop.crm.identity import match_dataset_accounts
from leadloop.crm.ports import WriteResult
from leadloop.crm.records import Crm
from leadloop.playbook.load import load_playbook
from leadloop.routing.crm_changes import person_records
from leadloop.routing.state import AssignmentState
from leadloop.scoring.engine import score_dataset
from leadloop.store import open_store
from leadloop.store.writeplan import (
    desired_account_fields,
    desired_person_fields,
    field_updates,
    mapped_fields,
    plan_writes,
)
from leadloop.sync import pipeline, writeback
from leadloop.sync.pipeline import Runtime

PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def reference_plan(runtime: Runtime, dataset, scoring, routing, min_change: float
                   ) -> dict[Crm, list[FieldUpdate]]:
    """Every desired value of every record built and diffed against the ledger."""
    people = {p.id: p for p in dataset.people}
    desired: dict[Crm, list[FieldUpdate]] = {crm: [] for crm in runtime.sinks}
    for person_id, card in scoring.cards.items():
        person = people.get(person_id)
        if person is None:
            continue
        values = desired_person_fields(card)
        for crm, record_id in person_records(person):
            if crm in desired:
                desired[crm] += field_updates(crm, ObjectType.PERSON, record_id, values, person_id=person_id)
    accounts = {a.id: a for a in dataset.accounts}
    for account_id, score in scoring.accounts.items():
        account = accounts.get(account_id)
        if account is None:
            continue
        for crm, record_id in ((Crm.SALESFORCE, account.salesforce_id), (Crm.HUBSPOT, account.hubspot_id)):
            if record_id and crm in desired:
                values = desired_account_fields(score)
                desired[crm] += field_updates(crm, ObjectType.ACCOUNT, record_id, values)
    if routing is not None:
        writeback._routed_tasks(runtime, dataset, routing, people, desired)
    plans = {}
    for crm in runtime.sinks:
        crm_mapping = getattr(runtime.mapping, crm.value)
        namer = mapped_fields(crm_mapping.owned_person, crm_mapping.owned_account)
        plans[crm] = plan_writes(desired[crm], runtime.store.ledger(crm.value), min_change=min_change,
                                 crm_field=namer)
    return plans


@pytest.fixture()
def runtime(tmp_path: Path):
    playbook = load_playbook(str(PLAYBOOKS / "semiconductor.yaml"))
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    runtime = Runtime(settings=None, playbook=playbook, mapping=load_mapping(playbook.mapping),  # type: ignore[arg-type]
                      store=store, sinks={Crm.SALESFORCE: None, Crm.HUBSPOT: None})  # type: ignore[dict-item]
    yield runtime
    store.close()


@pytest.mark.parametrize("min_change", [1.0, 5.0])
@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("before", [timedelta(hours=1), timedelta(days=7)])
def test_skipping_records_as_written_gives_the_reference_plan(runtime, min_change, every, before,
                                                              monkeypatch):
    dataset = match_dataset_accounts(load_dataset(PLAYBOOKS / "example_dataset.json"))
    # what an earlier run wrote (some writes refused): the ledger differs here and there
    earlier = score_dataset(runtime.playbook, dataset, NOW - before)
    for crm, updates in reference_plan(runtime, dataset, earlier, None, min_change).items():
        namer = mapped_fields(getattr(runtime.mapping, crm.value).owned_person,
                              getattr(runtime.mapping, crm.value).owned_account)
        results = [WriteResult(u.record_id, ok=n % every == 0, error=None if n % every == 0 else "refused")
                   for n, u in enumerate(updates)]
        runtime.store.record_writes(crm.value, updates, results, crm_field=namer)
    scoring = score_dataset(runtime.playbook, dataset, NOW)
    routing = pipeline.route(runtime.playbook, dataset, scoring, {}, [], AssignmentState(), NOW)
    assert routing is not None and routing.decisions

    built: list[str] = []
    build = writeback.field_updates
    monkeypatch.setattr(writeback, "field_updates", lambda crm, kind, record_id, *a, **k: (
        built.append(record_id), build(crm, kind, record_id, *a, **k))[1])
    plans = writeback.plan_changes(runtime, dataset, scoring, routing, min_change)
    expected = reference_plan(runtime, dataset, scoring, routing, min_change)

    for crm in runtime.sinks:
        assert plans[crm].updates == expected[crm]
    assert any(plan.updates for plan in plans.values())
    assert any(u.field == "nurture_track" for plan in plans.values() for u in plan.updates)
    records = {record for p in dataset.people if p.id in scoring.cards for _crm, record in person_records(p)}
    if before < timedelta(days=1) and every == 1:  # an hour later many records are as written
        assert len(records - set(built)) >= len(records) // 4
