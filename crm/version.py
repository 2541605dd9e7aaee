"""leadloop's installed version: what kept work (a saved merge, the last hourly run's due times) was
made by, so that another version redoes it."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def leadloop_version() -> str:
    try:
        return version("leadloop")
    except PackageNotFoundError:  # pragma: no cover - run from a checkout without installing
        return "unknown"
