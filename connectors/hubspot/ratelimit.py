"""A client-side limiter that keeps leadloop under HubSpot's rate limits before HubSpot has to say no.

HubSpot enforces a rolling 10-second burst limit per private app (190 requests on Professional and
Enterprise portals) and a separate limit of 5 search requests per second. The limiter keeps a
sliding log of the calls it let through and makes a caller wait when the next call would exceed
either limit, minus a safety margin (the server counts arrivals, which bunch up behind latency).
It also listens to the server: `X-HubSpot-RateLimit-Remaining` below what the log expects means
someone else shares the app's budget, and a 429's `Retry-After` pauses every caller.

Thread-safe: a caller reserves its slot under the lock and sleeps outside it. Calls made at once
reach HubSpot up to a latency apart from when they were sent, more than the search window's margin
(a new connection's handshake alone can take that): a search is therefore logged again when it is
answered (`answered`), the latest moment HubSpot can have counted it, and a search reserved after
that answer is spaced from it (the client makes one search at a time for this).
Docs: https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details
"""

from __future__ import annotations

import bisect
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RateLimits:
    """HubSpot's limits for this app. `burst_margin` calls and `window_margin` of each window are
    kept in reserve."""

    burst: int = 190
    burst_interval: float = 10.0
    search_per_second: int = 5
    burst_margin: int = 10
    window_margin: float = 0.1

    def __post_init__(self) -> None:
        if self.burst - self.burst_margin < 1 or self.search_per_second < 1:
            raise ValueError("rate limits leave no room for a single call")


class _SlidingLog:
    """Timestamps of the calls let through within the last `interval` seconds."""

    def __init__(self, limit: int, interval: float) -> None:
        self.limit = limit
        self.interval = interval
        self.times: deque[float] = deque()

    def forget_before(self, now: float) -> None:
        while self.times and self.times[0] <= now - self.interval:
            self.times.popleft()

    def earliest_slot(self, now: float) -> float:
        """When the next call may go, given the calls already logged (some may be in the future)."""
        self.forget_before(now)
        if len(self.times) < self.limit:
            return now
        return max(now, self.times[-self.limit] + self.interval)


class RateLimiter:
    """Waits as long as needed before each call; `observe` and `hold` learn from the server."""

    def __init__(self, limits: RateLimits | None = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.limits = limits or RateLimits()
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        interval = self.limits.burst_interval * (1 + self.limits.window_margin)
        self._burst = _SlidingLog(self.limits.burst - self.limits.burst_margin, interval)
        self._search = _SlidingLog(self.limits.search_per_second, 1.0 + self.limits.window_margin)
        self._hold_until = 0.0
        self.waited = 0.0  # total seconds callers spent waiting, for run records

    def acquire(self, search: bool = False) -> float:
        """Block until a call may be made; returns the seconds waited. Search calls count toward both
        the burst and the search limit."""
        return self._take(search)[1]

    def reserve(self, search: bool = False, *, unless: threading.Event | None = None) -> float:
        """`acquire`, returning the moment of the slot taken (for `answered`). With `unless`, the wait
        ends early when that event is set (a run that stops does not wait out a window)."""
        return self._take(search, unless)[0]

    def _take(self, search: bool, unless: threading.Event | None = None) -> tuple[float, float]:
        with self._lock:
            now = self._clock()
            slot = max(now, self._hold_until, self._burst.earliest_slot(now))
            if search:
                slot = max(slot, self._search.earliest_slot(now))
            bisect.insort(self._burst.times, slot)
            if search:
                bisect.insort(self._search.times, slot)
            wait = slot - now
            self.waited += wait
        if wait > 0:
            if unless is None:
                self._sleep(wait)
            else:
                unless.wait(wait)
        return slot, wait

    def answered(self, slot: float, search: bool = False) -> None:
        """The call sent in `slot` has its answer: a search counts from now on, not from when it was
        sent, since it may have reached HubSpot as late as this."""
        if not search:
            return
        with self._lock:
            now = self._clock()
            times = self._search.times
            index = bisect.bisect_left(times, slot)
            if index < len(times) and times[index] == slot and now > slot:
                del times[index]
                bisect.insort(times, now)

    def hold(self, seconds: float) -> None:
        """Let no call through for `seconds` (a 429's Retry-After)."""
        with self._lock:
            self._hold_until = max(self._hold_until, self._clock() + max(0.0, seconds))

    def observe(self, headers: Mapping[str, str] | None) -> None:
        """Align the log with the server's count from `X-HubSpot-RateLimit-*` headers, when present:
        calls the server has counted but the log has not (another process on the same app) are
        logged as made just now, which is the cautious reading."""
        if not headers:
            return
        remaining = _int_header(headers, "X-HubSpot-RateLimit-Remaining")
        maximum = _int_header(headers, "X-HubSpot-RateLimit-Max")
        if remaining is None or maximum is None:
            return
        with self._lock:
            now = self._clock()
            self._burst.forget_before(now)
            server_used = maximum - remaining
            our_limit = self._burst.limit
            # the server's max may be below ours (an OAuth app gets 110): count the difference as used
            server_used += max(0, our_limit - (maximum - self.limits.burst_margin))
            missing = server_used - len(self._burst.times)
            for _ in range(min(max(0, missing), our_limit)):
                bisect.insort(self._burst.times, now)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None
