"""Prefect tasks: each wraps one step of sync.pipeline (one I/O call or one pure call).

Runtime objects (clients, the store) are passed between tasks in-process, so results are never
cached or persisted (`NO_CACHE`). Only pulls retry at this level, and only on transport failures:
the connectors already retry 429s and 5xx with backoff, and validation errors are never retried.
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable
from typing import Any

import requests
import urllib3
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.utilities.annotations import quote

from leadloop.sync import pipeline, writeback

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


def step(name: str, *, retries: int = 0) -> Any:
    return task(name=name, cache_policy=NO_CACHE, retries=retries, retry_delay_seconds=[2, 10],
                retry_condition_fn=_retriable if retries else None, persist_result=False)


def unwalked(prefect_task: Any) -> Callable[..., Any]:
    """Call a task with every argument quoted: Prefect otherwise walks each argument looking for
    futures, and a dataset of millions of records made that walk cost more than the work itself."""

    @functools.wraps(prefect_task.fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        return prefect_task(*(quote(a) for a in args), **{k: quote(v) for k, v in kwargs.items()})

    call.task = prefect_task  # type: ignore[attr-defined]
    call.fn = prefect_task.fn  # type: ignore[attr-defined]  # the plain step, as on a Prefect task
    return call


pull_stream = unwalked(step("pull", retries=2)(pipeline.pull_stream))
load_and_resolve = unwalked(step("identity")(pipeline.load_and_resolve))
save_identity = unwalked(step("save identity")(pipeline.save_identity))
score = unwalked(step("score")(pipeline.score))
score_stored_partition = step("score partition")(pipeline.score_stored_partition)
save_scores = unwalked(step("save scores")(pipeline.save_scores))
route = unwalked(step("route")(pipeline.route))
plan_changes = unwalked(step("plan")(writeback.plan_changes))
write_plan = unwalked(step("write back")(writeback.write_plan))


def _partition_name(index: int, parts: int) -> str:
    return f"score partition {index + 1}/{parts}"


def score_partitions(playbook: Any, dataset: Any, now: Any, people_per_partition: int, store: Any,
                     links: Any) -> Any:
    """Scoring in account partitions, each its own task run, their results merged into the one-pass
    result. A dataset that fits one partition is scored by the single `score` task.

    Above one partition, the dataset's activities are still in `store`, as
    `pipeline.load_and_resolve` leaves them (`links`: the people's identity links): each
    partition's task run reads its own, `pipeline.PARTITIONS_AT_ONCE` at a time (one: see
    `pipeline.score_from_store`), and `dataset.activities` is then set to what routing needs of them
    (`pipeline.assets_had`)."""
    parts = pipeline.partitions_for(dataset, people_per_partition)
    if parts == 1:
        return score(playbook, dataset, now)

    def run_stored(partitions: Any) -> Any:
        for start in range(0, len(partitions), pipeline.PARTITIONS_AT_ONCE):
            futures = [score_stored_partition.with_options(task_run_name=_partition_name(p.index, parts))
                       .submit(quote(playbook), quote(store), quote(p), quote(links), quote(now))
                       for p in partitions[start:start + pipeline.PARTITIONS_AT_ONCE]]
            yield from (future.result() for future in futures)

    return pipeline.score_from_store(playbook, store, dataset, links, now, parts, run=run_stored)
