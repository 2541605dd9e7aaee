"""Prefect tasks: each wraps one step of flows.pipeline (one I/O call or one pure call).

Runtime objects (clients, the store) are passed between tasks in-process, so results are never
cached or persisted (`NO_CACHE`). Only pulls retry at this level, and only on transport failures:
the connectors already retry 429s and 5xx with backoff, and validation errors are never retried.
"""

from __future__ import annotations

import socket
from typing import Any

import requests
import urllib3
from prefect import task
from prefect.cache_policies import NO_CACHE

from flows import pipeline

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


pull_stream = step("pull", retries=2)(pipeline.pull_stream)
load_and_resolve = step("identity")(pipeline.load_and_resolve)
save_identity = step("save identity")(pipeline.save_identity)
score = step("score")(pipeline.score)
save_scores = step("save scores")(pipeline.save_scores)
route = step("route")(pipeline.route)
plan_changes = step("plan")(pipeline.plan_changes)
write_plan = step("write back")(pipeline.write_plan)
