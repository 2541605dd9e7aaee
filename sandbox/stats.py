"""Call statistics: calls by CRM, endpoint (a normalized route name) and method; records read and
written as the backends report them; faults the core injected."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any


class CallStats:
    """Counters behind `GET /_sandbox/stats` (implements the `Stats` seam)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._calls: Counter[tuple[str, str, str]] = Counter()
            self._targets: Counter[tuple[str, str, str]] = Counter()
            self._statuses: Counter[tuple[str, int]] = Counter()
            self._read: dict[str, Counter[str]] = defaultdict(Counter)
            self._written: dict[str, Counter[str]] = defaultdict(Counter)
            self._faults: Counter[str] = Counter()
            self._since = datetime.now(UTC)

    def call(self, crm: str, endpoint: str, method: str, status: int, target: str | None = None) -> None:
        """One call; `target` names the object it read or wrote, when the backend knows it."""
        with self._lock:
            self._calls[(crm, endpoint, method)] += 1
            self._targets[(crm, target or "", endpoint)] += 1
            self._statuses[(crm, status)] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self._faults[kind] += 1

    def records_read(self, crm: str, endpoint: str, n: int) -> None:
        with self._lock:
            self._read[crm][endpoint] += n

    def records_written(self, crm: str, endpoint: str, n: int) -> None:
        with self._lock:
            self._written[crm][endpoint] += n

    def report(self) -> dict[str, Any]:
        """The JSON body of `GET /_sandbox/stats`."""
        with self._lock:
            by_crm: Counter[str] = Counter()
            by_endpoint: dict[str, Counter[str]] = defaultdict(Counter)
            by_method: dict[str, Counter[str]] = defaultdict(Counter)
            for (crm, endpoint, method), n in self._calls.items():
                by_crm[crm] += n
                by_endpoint[crm][endpoint] += n
                by_method[crm][method] += n
            by_object: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
            for (crm, target, endpoint), n in self._targets.items():
                if target:
                    by_object[crm][target][endpoint] += n
            by_status: dict[str, dict[str, int]] = defaultdict(dict)
            for (crm, status), n in self._statuses.items():
                by_status[crm][str(status)] = n
            return {
                "since": self._since.isoformat(),
                "calls": sum(by_crm.values()),
                "by_crm": dict(by_crm),
                "by_endpoint": {crm: dict(c) for crm, c in by_endpoint.items()},
                "by_method": {crm: dict(c) for crm, c in by_method.items()},
                "by_object": {crm: {o: dict(c) for o, c in objects.items()}
                              for crm, objects in by_object.items()},
                "by_status": dict(by_status),
                "records_read": {crm: dict(c) for crm, c in self._read.items()},
                "records_written": {crm: dict(c) for crm, c in self._written.items()},
                "records_read_total": {crm: sum(c.values()) for crm, c in self._read.items()},
                "records_written_total": {crm: sum(c.values()) for crm, c in self._written.items()},
                "faults_injected": dict(self._faults),
            }
