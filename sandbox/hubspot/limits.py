"""HubSpot's API rate limits: a rolling ten-second burst window, a daily allowance and the search API's own
per-second limit, with the X-HubSpot-RateLimit-* headers every response carries.

https://developers.hubspot.com/docs/api/usage-details (private apps: 190 requests per 10 seconds;
Professional 650,000 per day; search 5 requests per second per account).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime


@dataclass(slots=True)
class Limits:
    burst: int = 190
    interval_ms: int = 10_000
    daily: int = 650_000
    search_per_second: int = 5
    enforced: bool = True


class RateLimiter:
    """Counts calls on the sandbox clock; `check` answers the policy a call breaks, or None."""

    def __init__(self) -> None:
        self.limits = Limits()
        self.reset()

    def reset(self) -> None:
        self._window: deque[float] = deque()
        self._search_window: deque[float] = deque()
        self._day: str = ""
        self._daily_used = 0

    def configure(
        self,
        *,
        burst: int | None = None,
        daily: int | None = None,
        search_per_second: int | None = None,
        enforced: bool | None = None,
    ) -> None:
        if burst is not None:
            self.limits.burst = burst
        if daily is not None:
            self.limits.daily = daily
        if search_per_second is not None:
            self.limits.search_per_second = search_per_second
        if enforced is not None:
            self.limits.enforced = enforced

    def _expire(self, now: float) -> None:
        horizon = now - self.limits.interval_ms / 1000
        while self._window and self._window[0] <= horizon:
            self._window.popleft()
        while self._search_window and self._search_window[0] <= now - 1.0:
            self._search_window.popleft()

    def check(self, moment: datetime, *, search: bool) -> str | None:
        """Record the call unless it breaks a limit; the broken policy's name otherwise."""
        now = moment.timestamp()
        day = moment.strftime("%Y-%m-%d")
        if day != self._day:
            self._day, self._daily_used = day, 0
        self._expire(now)
        if self.limits.enforced:
            if self._daily_used >= self.limits.daily:
                return "DAILY"
            if len(self._window) >= self.limits.burst:
                return "TEN_SECONDLY_ROLLING"
            if search and len(self._search_window) >= self.limits.search_per_second:
                return "SECONDLY"
        self._window.append(now)
        self._daily_used += 1
        if search:
            self._search_window.append(now)
        return None

    def headers(self, moment: datetime) -> dict[str, str]:
        now = moment.timestamp()
        self._expire(now)
        secondly = max(1, self.limits.burst // 10)
        last_second = sum(1 for t in self._window if t > now - 1.0)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.limits.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, self.limits.daily - self._daily_used)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.limits.interval_ms),
            "X-HubSpot-RateLimit-Max": str(self.limits.burst),
            "X-HubSpot-RateLimit-Remaining": str(max(0, self.limits.burst - len(self._window))),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, secondly - last_second)),
        }
