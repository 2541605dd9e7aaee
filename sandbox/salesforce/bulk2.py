"""Bulk API 2.0 (query and ingest jobs)."""

from __future__ import annotations

from typing import Any


class Jobs:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.jobs: dict[str, Any] = {}


def add_routes(routes: Any, backend: Any) -> None:
    pass
