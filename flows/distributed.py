"""Account partitions scored on a Dask cluster, through Prefect's `prefect-dask` task runner.

A run above one partition scores its partitions one after the other in the flow's process by default
(`sync.workspace.score_in_partitions`). With `LEADLOOP_TASK_RUNNER=dask` they go to Dask instead, all
at once, each a Prefect task run on a Dask worker: the worker opens the store itself, reads its
partition's activities (the bulk of a partition: ten or more per person), scores them and sends back only
the score cards, the account scores and the one activity per person and asset that routing reads.
The result is the in-process one, card for card: the same `pipeline.score_stored_partition` runs on
the same partition, only in another process.

The run's workspace never leaves the flow's process, so a task gets plain, picklable values: where
the store is (`StoreSource`: a URL without a password, or the connection block's name), the
playbook, the partition (its canonical accounts and people, as identity merged them over the whole
store, and which CRM persons' activities to read), the identity links of those persons and `now`.
The canonical people travel rather than being rebuilt on the worker: identity merges people and
accounts over every record (which account takes a shared domain, who owns a converted lead's email),
so rebuilding them from one partition's records could name them otherwise. Pickled, they are about a
fifth of the cards that come back, and of the activities the worker reads.

No password ever travels: a URL is sent without it (the worker takes it from its own
`LEADLOOP_STORE_PASSWORD`, as a flow run does), and a store URL kept in a connection block is read
from the block on the worker. A SQLite store works only with a local cluster (its file is on this
machine); a cluster elsewhere needs PostgreSQL.

`prefect-dask` is an optional dependency (`pip install 'leadloop[dask]'`), imported only when the
setting asks for Dask.
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import task
from prefect.cache_policies import NO_CACHE
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from leadloop.crm.records import Activity
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import ScoringResult
from leadloop.store.db import DEFAULT_STORE_URL, open_store, parse_store_url, split_password
from leadloop.store.facade import Store
from leadloop.sync import pipeline, workspace
from leadloop.sync.pipeline import StoredPartition, StoredRun

# where a run's workspace keeps the run's `StoreSource`, for its partitions' tasks
STORE_SOURCE = "store_source"


class TaskRunnerSettings(BaseSettings):
    """Where a run's account partitions are scored: in the flow's process (the default) or on Dask.
    Read from the flow's environment (`LEADLOOP_TASK_RUNNER`, `LEADLOOP_DASK_ADDRESS`,
    `LEADLOOP_DASK_WORKERS`)."""

    model_config = SettingsConfigDict(env_prefix="LEADLOOP_", extra="ignore")

    task_runner: Literal["in-process", "dask"] = "in-process"
    dask_address: str | None = Field(
        None, description="A running Dask scheduler (tcp://dask-scheduler:8786); without it, a local "
                          "cluster of `dask_workers` processes is started for the run.")
    dask_workers: int = Field(2, ge=1, description="Processes of the local cluster (without an address).")


def dask_settings() -> TaskRunnerSettings | None:
    """The settings when they ask for Dask, else None (partitions are scored in the flow's process)."""
    settings = TaskRunnerSettings()
    return settings if settings.task_runner == "dask" else None


class DaskNotInstalled(RuntimeError):
    """`LEADLOOP_TASK_RUNNER=dask` on a worker without `prefect-dask`."""


def _dask_task_runner(settings: TaskRunnerSettings) -> Any:
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError:
        raise DaskNotInstalled(
            "LEADLOOP_TASK_RUNNER=dask asks to score account partitions on Dask, but prefect-dask is not "
            "installed on this worker.\n"
            "  install it:  pip install 'leadloop[dask]'   (prefect-dask, dask and distributed)\n"
            "  or score partitions in the flow's process: unset LEADLOOP_TASK_RUNNER") from None
    if settings.dask_address:
        return DaskTaskRunner(address=settings.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": settings.dask_workers, "processes": True,
                                          "threads_per_worker": 1})


# -- where the worker finds the store ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreSource:
    """How a Dask worker opens the run's store: a URL without a password (the worker adds its own
    `LEADLOOP_STORE_PASSWORD`), or the name of the connection block that keeps the URL as a secret."""

    url: str | None = None
    connection: str | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.connection is None):
            raise ValueError("a store source is a URL or a connection block, one of them")
        if self.url is not None and split_password(self.url)[1] is not None:
            raise ValueError("a store source's URL carries no password")


def store_source(store: Store, store_url: str | None = None, connection: str | None = None) -> StoreSource:
    """Where the workers find `store`, which a run opened from `store_url` (a run option, never with a
    password) or else from the connection block `connection`, else from a connection file or the
    environment. A SQLite store is always named by its absolute path (the workers' working folder
    may differ); it has no password."""
    url = store.engine.url
    if url.get_backend_name() == "sqlite":
        path = Path(url.database or "").expanduser().resolve()
        return StoreSource(url=f"sqlite:///{path}")
    if store_url is not None:
        return StoreSource(url=store_url)
    if connection is not None:
        return StoreSource(connection=connection)
    return StoreSource(url=split_password(url.render_as_string(hide_password=False))[0])


def _url_of(source: StoreSource) -> str:
    if source.url is not None:
        return source.url
    from leadloop.flows.blocks import load_connection_block

    block = load_connection_block(source.connection or "")
    # as `LeadloopConnection.connection_settings` takes it, without the CRMs' settings (and their CA
    # file, which a Dask worker need not have)
    if block.store_url is not None:
        return block.store_url.get_secret_value()
    return os.environ.get("LEADLOOP_STORE_URL") or DEFAULT_STORE_URL


_stores: dict[str, Store] = {}  # by URL: a block read again for each partition, so a new password is seen
_stores_lock = threading.Lock()


def worker_store(source: StoreSource) -> Store:
    """The store `source` names, opened once per worker process and kept for its next partitions."""
    url = _url_of(source)
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = _stores[url] = open_store(url)
        return store


# -- the task a Dask worker runs --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartitionCards:
    """What a worker sends back: the partition's scoring result without its people (the flow has
    them: they came with the partition) and the activities routing reads (`pipeline.assets_had`)."""

    result: ScoringResult
    assets_had: list[Activity]


class Sealed:
    """A task's large inputs, which Prefect passes on without walking them. Prefect walks a task's
    parameters field by field (for futures to wait on) before sending it and again where it runs:
    5 to 10 s of the flow's process per partition of 20,000 people. Its own `opaque` would spare
    that, but Dask hands the task a plain tuple in its place."""

    __slots__ = ("value",)

    def __init__(self, value: tuple[Playbook, StoredPartition, dict[str, str]]) -> None:
        self.value = value

    def __getstate__(self) -> tuple[Playbook, StoredPartition, dict[str, str]]:
        return self.value

    def __setstate__(self, value: tuple[Playbook, StoredPartition, dict[str, str]]) -> None:
        self.value = value


def score_partition_remotely(source: StoreSource, work: Sealed, now: datetime, label: str = ""
                             ) -> PartitionCards:
    """One partition scored where this runs: its activities read from the store, scored under the
    playbook, re-pointed by the identity links (`work` holds the three), and the cards and account
    scores returned (`label` only names the task run: `2/4`)."""
    playbook, partition, links = work.value
    result, had = pipeline.score_stored_partition(playbook, worker_store(source), partition, links, now)
    return PartitionCards(dataclasses.replace(result, people={}), had)


score_partition_on_dask = task(
    name="score partition on dask", task_run_name="score partition {label} on dask", cache_policy=NO_CACHE,
    persist_result=False)(score_partition_remotely)


def _links_of(partition: StoredPartition, links: Mapping[str, str]) -> dict[str, str]:
    """The identity links of the persons whose activities the partition reads (its settled
    activities come re-pointed already)."""
    return {person: links[person] for person in partition.persons if person is not None and person in links}


def _check_reachable(source: StoreSource, settings: TaskRunnerSettings) -> None:
    if source.url is not None and settings.dask_address and parse_store_url(source.url).get_backend_name() \
            == "sqlite":
        raise ValueError(
            f"a SQLite store ({source.url}) is a file on this machine, which the Dask cluster at "
            f"{settings.dask_address} cannot read: use a PostgreSQL store, or leave LEADLOOP_DASK_ADDRESS "
            "unset to score on a local cluster")


def score_on_dask(settings: TaskRunnerSettings, source: StoreSource, playbook: Playbook,
                  partitions: Sequence[StoredPartition], links: Mapping[str, str], now: datetime,
                  parts: int) -> list[tuple[ScoringResult, list[Activity]]]:
    """`partitions` scored on Dask, all submitted at once, each a task run; their results in the
    partitions' order, as `pipeline.score_stored_partition` returns them in the flow's process (the
    people put back from the partitions)."""
    _check_reachable(source, settings)
    with _dask_task_runner(settings) as runner:
        futures = [runner.submit(score_partition_on_dask, parameters={
            "source": source, "work": Sealed((playbook, partition, _links_of(partition, links))), "now": now,
            "label": f"{partition.index + 1}/{parts}"}) for partition in partitions]
        outcomes: list[PartitionCards] = [future.result() for future in futures]
    return [(dataclasses.replace(outcome.result, people={p.id: p for p in partition.dataset.people}),
             outcome.assets_had) for partition, outcome in zip(partitions, outcomes, strict=True)]


def stored_run(settings: TaskRunnerSettings, source: StoreSource, playbook: Playbook,
               links: Mapping[str, str], now: datetime) -> StoredRun:
    """A `run` for `pipeline.score_from_store` that scores the partitions on Dask."""

    def run(partitions: Sequence[StoredPartition]) -> Iterator[tuple[ScoringResult, list[Activity]]]:
        yield from score_on_dask(settings, source, playbook, partitions, links, now, len(partitions))

    return run


def score_each_on_dask(settings: TaskRunnerSettings) -> workspace.ScoreEach:
    """A `score_each` for `workspace.score_in_partitions`: the run's partitions `indices` scored on
    Dask, their results left in the run's workspace as `workspace.score_partition` leaves them."""

    def score_each(key: str, indices: Sequence[int], parts: int, now: datetime) -> None:
        held = workspace.get(key)
        source = held.values.get(STORE_SOURCE) or store_source(held.runtime.store)
        partitions = [held.partitions[index] for index in indices]
        outcomes = score_on_dask(settings, source, held.runtime.playbook, partitions,
                                 held.need("identity").person_links, now, parts)
        for index, outcome in zip(indices, outcomes, strict=True):
            held.partition_results[index] = outcome

    return score_each
