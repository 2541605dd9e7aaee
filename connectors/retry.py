"""The retry loop both connectors share: exponential backoff with jitter, a server's Retry-After
honoured (capped, so one odd header cannot stall a run), a bounded number of attempts, each retry
logged with what failed (status and code only: never a body, never a secret).

Which failures are worth another attempt is each CRM's own policy, passed in as `retriable`
(`connectors.salesforce.retry`, `connectors.hubspot.retry` sort them once; HubSpot also refuses to
resend a create that may have reached it). What happens around the loop stays with each CRM's client:
HubSpot's rate limiter hears every retry (`on_retry`), Salesforce renews an expired session and runs
the loop once more. Neither has a loop of its own.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. `timeout` is (connect, read) seconds per request; `jitter` the most random
    seconds added to a backoff wait (None: as much as the first wait, so a fast policy stays fast)."""

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    timeout: tuple[float, float] = (10.0, 120.0)
    jitter: float | None = None
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)


def until_stopped(policy: RetryPolicy, stopping: threading.Event) -> RetryPolicy:
    """`policy` with its waits between attempts cut short when `stopping` is set (the run is
    stopping: the client's next attempt then raises instead of sending); a policy with a sleep of
    its own (a test's) keeps it."""
    if policy.sleep is not time.sleep:
        return policy
    return replace(policy, sleep=lambda seconds: stopping.wait(seconds) and None)


def retry_after_seconds(headers: Mapping[str, str] | None) -> float | None:
    """A `Retry-After` header in seconds; None without one, or when it is an HTTP date (our own backoff
    applies then)."""
    if not headers:
        return None
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


class _Wait:
    """Exponential backoff with jitter, or the server's Retry-After when it asks for longer."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        jitter = policy.initial_wait if policy.jitter is None else policy.jitter
        self._backoff = wait_exponential_jitter(initial=policy.initial_wait, max=policy.max_wait,
                                                jitter=jitter)

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        error = state.outcome.exception() if state.outcome else None
        server = getattr(error, "retry_after", None)
        if server is not None:
            return max(backoff, min(server, self._policy.max_retry_after))
        return backoff


def call_with_retries(fn: Callable[[], T], endpoint: str, policy: RetryPolicy, *, crm: str,
                      retriable: Callable[[BaseException], bool],
                      describe: Callable[[BaseException | None], str],
                      on_retry: Callable[[BaseException, float], None] | None = None) -> T:
    """`fn()` retried while `retriable(error)`; a fatal failure, and the last retriable one, are raised.
    `on_retry(error, wait)` runs before each wait (HubSpot's client holds its rate limiter there)."""
    log = logging.getLogger(f"leadloop.connectors.{crm}")

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s %s failed (%s); retry %d/%d in %.2fs", crm, endpoint, describe(error),
                    state.attempt_number, policy.attempts - 1, wait)
        if on_retry is not None and error is not None:
            on_retry(error, wait)

    retrying = Retrying(
        retry=retry_if_exception(retriable),
        wait=_Wait(policy),
        stop=stop_after_attempt(policy.attempts),
        before_sleep=before_sleep,
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except Exception as error:
        if retriable(error):
            log.error("%s %s gave up after %d attempts (%s)", crm, endpoint, policy.attempts, describe(error))
        raise
