"""The client-side rate limiter and the retry classification of the HubSpot connector."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from leadloop.connectors.hubspot.ratelimit import RateLimiter, RateLimits
from leadloop.connectors.hubspot.retry import (
    HubSpotError,
    RetryPolicy,
    call_with_retries,
    error_from_api_exception,
    is_retriable,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def limiter(**limits: float) -> tuple[RateLimiter, FakeClock]:
    clock = FakeClock()
    return RateLimiter(RateLimits(**limits), clock=clock, sleep=clock.sleep), clock


def test_calls_within_the_burst_budget_do_not_wait():
    rl, clock = limiter(burst=20, burst_margin=2)
    assert sum(rl.acquire() for _ in range(18)) == 0
    assert clock.now == 0


def test_the_call_past_the_burst_budget_waits_for_the_window_to_roll():
    rl, _ = limiter(burst=20, burst_margin=2, burst_interval=10.0, window_margin=0.1)
    for _ in range(18):
        rl.acquire()
    assert rl.acquire() == pytest.approx(11.0)


def test_search_calls_keep_under_five_per_second():
    rl, _ = limiter()
    for _ in range(5):
        rl.acquire(search=True)
    waited = rl.acquire(search=True)
    assert waited == pytest.approx(1.1)


def test_a_retry_after_holds_every_caller():
    rl, _ = limiter()
    rl.hold(3.0)
    assert rl.acquire() == pytest.approx(3.0)


def test_calls_the_server_counted_but_we_did_not_are_taken_as_just_made():
    rl, _ = limiter(burst=190, burst_margin=10)
    rl.observe({"X-HubSpot-RateLimit-Max": "190", "X-HubSpot-RateLimit-Remaining": "20"})
    assert sum(rl.acquire() for _ in range(10)) == 0  # 170 counted + 10 = our budget of 180
    assert rl.acquire() > 10  # the next one waits for the window to roll


def test_headers_without_rate_limit_values_change_nothing():
    rl, _ = limiter(burst=20, burst_margin=2)
    rl.observe({"Content-Type": "application/json"})
    assert sum(rl.acquire() for _ in range(18)) == 0


def test_threads_sharing_a_limiter_never_exceed_the_burst_budget():
    rl = RateLimiter(RateLimits(burst=12, burst_margin=2, burst_interval=0.5, window_margin=0.0))
    stamps: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            rl.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stamps.sort()
    for i in range(len(stamps) - 10):
        assert stamps[i + 10] - stamps[i] >= 0.5 - 0.02


class FakeApiException(Exception):
    """The shape of every hubspot-api-client package's ApiException."""

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self.status, self.body, self.headers, self.reason = status, body, headers or {}, "reason"


@pytest.mark.parametrize("status,body,retriable", [
    (429, '{"errorType":"RATE_LIMIT","policyName":"TEN_SECONDLY_ROLLING","message":"limit"}', True),
    (429, '{"errorType":"RATE_LIMIT","policyName":"DAILY","message":"daily limit"}', False),
    (500, '{"status":"error","message":"internal"}', True),
    (503, "<html>unavailable</html>", True),
    (400, '{"category":"VALIDATION_ERROR","message":"Property values were not valid"}', False),
    (404, '{"category":"OBJECT_NOT_FOUND","message":"Object not found"}', False),
    (401, '{"category":"INVALID_AUTHENTICATION","message":"no"}', False),
])
def test_errors_are_sorted_once_into_retriable_and_fatal(status, body, retriable):
    error = error_from_api_exception("POST /crm/v3/objects/contacts/search", FakeApiException(status, body))
    assert is_retriable(error) is retriable


def test_no_response_is_retriable_but_a_certificate_failure_is_not():
    dropped = error_from_api_exception("GET x", FakeApiException(0, "", None))
    tls = FakeApiException(0, "")
    tls.reason = "SSLError\n[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"
    assert is_retriable(dropped) and not is_retriable(error_from_api_exception("GET x", tls))


FAST = RetryPolicy(attempts=4, initial_wait=0.001, max_wait=0.01, max_retry_after=0.05)


def test_a_validation_error_is_never_retried():
    calls = []

    def fail() -> None:
        calls.append(1)
        raise HubSpotError("POST batch/update", 400, "VALIDATION_ERROR", "bad value")

    with pytest.raises(HubSpotError):
        call_with_retries(fail, "POST batch/update", FAST)
    assert len(calls) == 1


def test_a_retriable_error_is_retried_until_it_succeeds_and_the_wait_honours_retry_after():
    calls: list[float] = []

    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise HubSpotError("GET x", 429, "RATE_LIMIT", "limit", retry_after=0.05)
        return "ok"

    assert call_with_retries(flaky, "GET x", FAST) == "ok"
    assert len(calls) == 3 and calls[1] - calls[0] >= 0.05


def test_retries_and_give_ups_are_logged_without_the_token(caplog):
    token = "pat-na1-11111111-2222-3333-4444-555555555555"

    def down() -> None:
        raise HubSpotError("GET /crm/v3/owners", 503, None, "unavailable")

    with caplog.at_level(logging.WARNING, logger="leadloop.connectors.hubspot"), pytest.raises(HubSpotError):
        call_with_retries(down, "GET /crm/v3/owners", FAST)
    assert "retry 1/3" in caplog.text and "gave up after 4 attempts" in caplog.text
    assert token not in caplog.text
