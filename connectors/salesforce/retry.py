"""Salesforce failures, sorted once into retriable and fatal, and the tenacity policy that retries them.

Retriable: HTTP 429, any 5xx, dropped connections, timeouts, and the transient error codes
`UNABLE_TO_LOCK_ROW` / `SERVER_UNAVAILABLE` (which Salesforce may send with a 4xx). Everything else
is fatal and raised at once: a validation error retried is still a validation error. Waits grow
exponentially with jitter, and never undercut the server's `Retry-After`. Every retry and give-up
is logged with the endpoint and the error code, never with a token or a request body.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import requests
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

log = logging.getLogger("leadloop.connectors.salesforce")

T = TypeVar("T")

TRANSIENT_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG"})


class SalesforceCallError(Exception):
    """A Salesforce API call that failed, with the HTTP status, the CRM's error code and message."""

    def __init__(self, endpoint: str, status: int | None, code: str | None, message: str,
                 retry_after: float | None = None) -> None:
        self.endpoint = endpoint
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        super().__init__(f"{endpoint}: {status or 'no response'} {code or ''} {message}".replace("  ", " "))

    @property
    def retriable(self) -> bool:
        return is_retriable(self)


class SessionExpiredError(SalesforceCallError):
    """The session id was refused (401 INVALID_SESSION_ID): expired, or never valid. Salesforce does
    not say which; the client, which knows whether the session worked before, does."""


def is_retriable(error: BaseException) -> bool:
    """True for failures worth another attempt: 429, 5xx, transient codes, connection errors, timeouts."""
    if isinstance(error, SessionExpiredError):
        return False  # renewed by the client, not retried blindly
    if isinstance(error, SalesforceCallError):
        if error.status is None:
            return True
        return error.status == 429 or error.status >= 500 or error.code in TRANSIENT_CODES
    return isinstance(error, requests.ConnectionError | requests.Timeout)


def error_from_body(body: Any) -> tuple[str | None, str]:
    """(errorCode, message) from a Salesforce error body: a JSON array of `{errorCode, message}`."""
    if isinstance(body, list) and body and isinstance(body[0], dict):
        first = body[0]
        return first.get("errorCode") or first.get("statusCode"), str(first.get("message", ""))[:500]
    if isinstance(body, dict):
        return body.get("errorCode") or body.get("error"), str(
            body.get("message") or body.get("error_description") or "")[:500]
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return None, text[:300]


def retry_after_seconds(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try. `max_retry_after` caps a server's Retry-After so one odd header cannot stall a run."""

    attempts: int = 6
    initial_wait: float = 0.5
    max_wait: float = 30.0
    max_retry_after: float = 120.0
    timeout: tuple[float, float] = (10.0, 120.0)  # (connect, read) seconds per request
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)


class _Wait:
    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self._backoff = wait_exponential_jitter(initial=policy.initial_wait, max=policy.max_wait)

    def __call__(self, state: RetryCallState) -> float:
        backoff = self._backoff(state)
        error = state.outcome.exception() if state.outcome else None
        server = getattr(error, "retry_after", None)
        if server is not None:
            return max(backoff, min(server, self._policy.max_retry_after))
        return backoff


def _describe(error: BaseException | None) -> str:
    if isinstance(error, SalesforceCallError):
        return f"{error.status or 'no response'} {error.code or ''}".strip()
    return type(error).__name__ if error else "unknown"


def call_with_retries(fn: Callable[[], T], endpoint: str, policy: RetryPolicy) -> T:
    """`fn()` retried on retriable failures; fatal ones and the last retriable one are raised."""

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("salesforce %s failed (%s); retry %d/%d in %.2fs", endpoint, _describe(error),
                    state.attempt_number, policy.attempts - 1, wait)

    retrying = Retrying(
        retry=retry_if_exception(is_retriable),
        wait=_Wait(policy),
        stop=stop_after_attempt(policy.attempts),
        before_sleep=before_sleep,
        sleep=policy.sleep,
        reraise=True,
    )
    try:
        return retrying(fn)
    except Exception as error:
        if is_retriable(error):
            log.error("salesforce %s gave up after %d attempts (%s)", endpoint, policy.attempts,
                      _describe(error))
        raise


_USAGE = re.compile(r"api-usage=(\d+)/(\d+)")


@dataclass(frozen=True, slots=True)
class ApiUsage:
    """The org's rolling 24-hour API usage from the `Sforce-Limit-Info` header."""

    used: int
    limit: int

    @property
    def fraction(self) -> float:
        return self.used / self.limit if self.limit else 0.0


def parse_limit_info(header: str | None) -> ApiUsage | None:
    if not header:
        return None
    match = _USAGE.search(header)
    return ApiUsage(int(match.group(1)), int(match.group(2))) if match else None
