"""Account partitions scored on a real Dask cluster (two worker processes) through prefect-dask give
what the flow's own process gives: the same cards, account scores and routing input, for a full
rescore on a real Prefect engine and for the model review's look back, over a PostgreSQL store that
each worker opens itself."""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from leadloop.store import open_store
from leadloop.sync import pipeline

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests" / "unit"))

from generate_canonical import REFERENCE_TIME  # noqa: E402
from test_scoring_partition import assert_same  # noqa: E402
from worlds.stored import fill_awkward_world  # noqa: E402

NOW = REFERENCE_TIME
PLAYBOOK = str(ROOT / "bench" / "northwind.yaml")
PEOPLE_PER_PARTITION = 300


@pytest.fixture(scope="module")
def cluster() -> Any:
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as local:
        yield local


def stores_opened_on_workers(cluster: Any) -> list[str]:
    """The store URLs the worker processes have opened (`flows.distributed.worker_store`)."""
    import distributed

    def opened() -> list[str]:
        from leadloop.flows import distributed as ours

        return list(ours._stores)

    with distributed.Client(cluster) as client:
        return [url for urls in client.run(opened).values() for url in urls]


@pytest.fixture
def world(postgres_url: str) -> str:
    """Both CRMs' records, the awkward activities and evaluation kits asked for
    (`worlds.stored.fill_awkward_world`)."""
    with open_store(postgres_url) as store:
        fill_awkward_world(store, NOW, people=1500, accounts=240, activities=15_000, kits=150)
    return postgres_url


def scored_runs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Each rescore's scoring result and what routing gets of the activities, as the run left them
    in its workspace."""
    from leadloop.sync import workspace

    seen: list[dict[str, Any]] = []
    rows = workspace.tier_change_rows

    def recording(key: str, limit: int = 500) -> list[dict[str, str]]:
        held = workspace.get(key)
        seen.append({"result": held.need("result"),
                     "routing_activities": list(held.need("dataset").activities)})
        return rows(key, limit)

    monkeypatch.setattr(workspace, "tier_change_rows", recording)
    return seen


def task_runs(flow_run_id: Any) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, TaskRunFilter

    with get_client(sync_client=True) as client:
        return client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])),
                                     task_run_filter=TaskRunFilter())


@pytest.mark.postgres
def test_a_rescore_on_dask_workers_scores_every_card_as_the_flows_own_process_does(
        world, cluster, prefect_harness, tmp_path, monkeypatch):
    from pydantic import SecretStr

    from leadloop.connectors.settings import HubSpotSettings
    from leadloop.flows.blocks import LeadloopConnection
    from leadloop.flows.options import RescoreOptions
    from leadloop.flows.rescore import rescore

    # a CRM to name (a run needs one); the dry run plans from the store and never calls it
    connection = tmp_path / "connection.json"
    hubspot = {"host": "https://127.0.0.1:9", "access_token": "pat-x"}
    connection.write_text(json.dumps({"hubspot": hubspot}))
    common = dict(connection_file=str(connection), playbook=PLAYBOOK, store_url=world, dry_run=True, at=NOW,
                  people_per_partition=PEOPLE_PER_PARTITION)
    seen = scored_runs(monkeypatch)
    monkeypatch.delenv("LEADLOOP_TASK_RUNNER", raising=False)
    here = rescore(RescoreOptions(**common), return_state=True)
    # the store URL kept as a secret in a connection block, which each worker reads for itself
    LeadloopConnection(hubspot=HubSpotSettings(**hubspot), store_url=SecretStr(world)).save(
        "dask-partitions", overwrite=True)
    monkeypatch.setenv("LEADLOOP_TASK_RUNNER", "dask")
    monkeypatch.setenv("LEADLOOP_DASK_ADDRESS", cluster.scheduler_address)
    on_dask = rescore(RescoreOptions(**{**common, "connection_file": None, "store_url": None},
                                     connection="dask-partitions"), return_state=True)

    first, second = seen
    parts = pipeline.partitions_for(first["result"].cards, PEOPLE_PER_PARTITION)
    assert parts >= 4 and first["result"].orphan_activities == 20
    assert_same(second["result"], first["result"])
    assert second["result"] == first["result"]  # every field, the people and reports included
    assert second["routing_activities"] == first["routing_activities"]
    assert len(first["routing_activities"]) == 97  # one per person and asset
    summary, dask_summary = here.result(), on_dask.result()
    assert dask_summary.people_scored == summary.people_scored > 1000
    assert dask_summary.tier_counts == summary.tier_counts and dask_summary.planned == summary.planned

    in_process = [r.name for r in task_runs(here.state_details.flow_run_id)]
    on_workers = [r for r in task_runs(on_dask.state_details.flow_run_id)
                  if r.name.startswith("score partition")]
    assert sorted(r.name for r in on_workers) == sorted(f"score partition {i}/{parts} on dask"
                                                        for i in range(1, parts + 1))
    assert all(r.state_type.value == "COMPLETED" for r in on_workers)
    assert not [name for name in in_process if name.endswith("on dask")]
    # each partition read its activities in a worker process, from the store the block names (the
    # run's only source of the URL: no store_url, no connection file)
    assert set(stores_opened_on_workers(cluster)) == {world}


@pytest.mark.postgres
def test_the_model_reviews_look_back_on_dask_workers_equals_the_one_in_the_flows_process(world, cluster,
                                                                                          prefect_harness):
    from leadloop.flows import distributed
    from leadloop.flows.model_review import as_of
    from leadloop.playbook.load import load_playbook

    playbook = load_playbook(PLAYBOOK)
    cutoff = NOW - timedelta(days=60)
    with open_store(world) as store:
        raw, identity = pipeline.load_and_resolve(store, PEOPLE_PER_PARTITION)
        past = as_of(pipeline.merged_dataset(raw, identity), cutoff)
        parts = pipeline.partitions_for(past, PEOPLE_PER_PARTITION)
        here = pipeline.score_from_store(playbook, store, past, identity.person_links, cutoff, parts,
                                         until=cutoff)
        settings = distributed.TaskRunnerSettings(task_runner="dask", dask_address=cluster.scheduler_address)
        run = distributed.stored_run(settings, distributed.store_source(store, world), playbook,
                                     identity.person_links, cutoff)
        on_dask = pipeline.score_from_store(playbook, store, past, identity.person_links, cutoff, parts,
                                            run=run, until=cutoff)
    assert parts >= 4 and len(here.cards) > 1000
    assert_same(on_dask, here)
    assert on_dask == here and on_dask.future_activities == 0


@pytest.mark.postgres
def test_the_model_review_flow_on_dask_workers_reviews_every_score_as_in_the_flows_process(
        world, cluster, prefect_harness, tmp_path, monkeypatch):
    from leadloop.flows.model_review import model_review
    from leadloop.flows.options import ModelReviewOptions

    connection = tmp_path / "connection.json"
    connection.write_text(json.dumps({"hubspot": {"host": "https://127.0.0.1:9", "access_token": "pat-x"}}))
    common = dict(connection_file=str(connection), playbook=PLAYBOOK, store_url=world, at=NOW,
                  lookback_days=60, reports_dir=str(tmp_path / "reports"),
                  people_per_partition=PEOPLE_PER_PARTITION)
    monkeypatch.delenv("LEADLOOP_TASK_RUNNER", raising=False)
    here = model_review(ModelReviewOptions(**common))
    monkeypatch.setenv("LEADLOOP_TASK_RUNNER", "dask")
    monkeypatch.setenv("LEADLOOP_DASK_ADDRESS", cluster.scheduler_address)
    state = model_review(ModelReviewOptions(**common), return_state=True)
    on_dask = state.result()
    assert on_dask == here and all(len(review.scores) > 1000 for review in here.values())
    names = [r.name for r in task_runs(state.state_details.flow_run_id)]
    assert any(name.endswith("on dask") for name in names), names


def test_a_store_url_with_a_password_never_becomes_a_workers_input():
    from leadloop.flows.distributed import StoreSource

    with pytest.raises(ValueError, match="no password"):
        StoreSource(url="postgresql+psycopg://leadloop:s3cret@db/leadloop")
    with pytest.raises(ValueError, match="one of them"):
        StoreSource()


def test_the_workers_get_a_postgresql_url_without_its_password_or_the_blocks_name(monkeypatch):
    from sqlalchemy.engine import make_url

    from leadloop.flows.distributed import store_source

    class Opened:  # a store opened from a URL that holds a password (from a block or the environment)
        engine = type("Engine", (), {"url": make_url("postgresql+psycopg://leadloop:s3cret@db:5432/leadloop")})

    assert store_source(Opened()).url == "postgresql+psycopg://leadloop@db:5432/leadloop"  # type: ignore[arg-type]
    assert store_source(Opened(), connection="production").connection == "production"  # type: ignore[arg-type]
    given = "postgresql+psycopg://leadloop@db/leadloop"
    assert store_source(Opened(), given, connection="production").url == given  # type: ignore[arg-type]


def test_a_sqlite_store_is_refused_for_a_cluster_elsewhere(tmp_path):
    from leadloop.flows import distributed

    with open_store(f"sqlite:///{tmp_path / 'state.db'}") as store:
        source = distributed.store_source(store)
    assert source.url == f"sqlite:///{tmp_path / 'state.db'}"
    settings = distributed.TaskRunnerSettings(task_runner="dask", dask_address="tcp://dask-scheduler:8786")
    with pytest.raises(ValueError, match="use a PostgreSQL store"):
        distributed.score_on_dask(settings, source, None, [], {}, NOW, 2)  # type: ignore[arg-type]


def test_asking_for_dask_without_prefect_dask_says_what_to_install(monkeypatch):
    from leadloop.flows import distributed

    monkeypatch.setitem(sys.modules, "prefect_dask", None)  # as if not installed
    monkeypatch.setenv("LEADLOOP_TASK_RUNNER", "dask")
    settings = distributed.dask_settings()
    assert settings is not None and settings.dask_address is None and settings.dask_workers == 2
    with pytest.raises(distributed.DaskNotInstalled, match=r"pip install 'leadloop\[dask\]'"):
        distributed._dask_task_runner(settings)
    monkeypatch.delenv("LEADLOOP_TASK_RUNNER")
    assert distributed.dask_settings() is None
