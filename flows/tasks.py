"""Prefect tasks: each runs one step of a sync (`sync.workspace`), named for what it does.

A task takes the run's key and a few small values (a CRM's name, a stream, a partition's index, a
threshold) and returns a small summary (counts, names): the runtime and the run's large values (the
dataset, identity links, score cards, routing's decisions, the write plans) stay in the run's
workspace in this process, from the runtime's opening to the run's end (`flows.steps.recorded_run`).
Prefect records and walks only those few values, and each task run's name says what it did: `pull
salesforce Contact`, `score partition 2/4`, `write hubspot contacts`, `write salesforce tasks`.

No cache (`NO_CACHE`), and no persisted results, on purpose. Every task acts on the world or on the
run's workspace: a pull moves cursors, a write sends to a CRM and ledgers its answers, and even the
pure steps (score, route, plan) leave their output in the workspace, where the next step reads it. A
cached result would skip that work and hand the next step nothing to read; and since every task takes
its run's key, the same inputs never come back in another run, so a cache could not hit there anyway.
Nothing reads a result back from storage: a retry runs the task again, a rerun of the flow starts from
the store's cursors, ledger and outbox, which is what makes a rerun safe.

Only pulls retry at this level, and only on transport failures: the connectors already retry 429s and
5xx with backoff, and validation errors are never retried. The tasks run in the flow's process (the
default thread pool), where the workspace is.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import requests
import urllib3
from prefect import task
from prefect.cache_policies import NO_CACHE

from leadloop.flows import distributed
from leadloop.sync import workspace

RETRIABLE = (requests.ConnectionError, requests.Timeout, urllib3.exceptions.HTTPError, socket.timeout,
             ConnectionError, TimeoutError)


def _retriable(task: Any, task_run: Any, state: Any) -> bool:
    try:
        state.result()
    except RETRIABLE:
        return True
    except Exception:  # anything else is final: surface it, never retry blindly
        return False
    return False


def step(name: str, *, retries: int = 0, run_name: str | Callable[[], str] | None = None) -> Any:
    """A task for one step: `run_name` names each task run (a template of the step's parameters, as
    `pull {crm} {stream}`, or a function); without it the run is named `name`."""
    return task(name=name, task_run_name=run_name or name, cache_policy=NO_CACHE, retries=retries,
                retry_delay_seconds=[2, 10], retry_condition_fn=_retriable if retries else None,
                persist_result=False)


def _partition_name() -> str:
    from prefect.runtime import task_run

    parameters = task_run.parameters
    return f"score partition {parameters['index'] + 1}/{parameters['parts']}"


pull_stream = step("pull", retries=2, run_name="pull {crm} {stream}")(workspace.pull_stream)
load_and_resolve = step("identity")(workspace.load_and_resolve)
score = step("score")(workspace.score)
score_partition = step("score partition", run_name=_partition_name)(workspace.score_partition)
route = step("route")(workspace.route)
plan_changes = step("plan")(workspace.plan_changes)
save_identity = step("save identity")(workspace.save_identity)
write_plan = step("write", run_name="write {crm} {part}")(workspace.write_plan)
save_scores = step("save scores")(workspace.save_scores)


def _partition_task_runs(key: str, indices: Sequence[int], parts: int, now: datetime) -> None:
    futures = [score_partition.submit(key, index, parts, now) for index in indices]
    for future in futures:
        future.result()


def score_partitions(key: str, now: datetime, people_per_partition: int) -> workspace.Scored:
    """Everyone scored: by the single `score` task when the dataset fits one partition, otherwise in
    account partitions, each its own task run reading its own activities from the store
    (`workspace.score_in_partitions`), their results merged into the one-pass result. The partitions'
    task runs are the flow's, one at a time, unless `LEADLOOP_TASK_RUNNER=dask` sends them all at once
    to Dask workers (`flows.distributed`)."""
    parts = workspace.partitions_needed(key, people_per_partition)
    if parts == 1:
        return score(key, now)
    dask = distributed.dask_settings()
    if dask is not None:
        return workspace.score_in_partitions(key, now, parts, distributed.score_each_on_dask(dask),
                                             at_once=parts)
    return workspace.score_in_partitions(key, now, parts, _partition_task_runs)
