"""Flow tests run on a real Prefect engine (`prefect_harness`, tests/conftest.py) against a real
sandbox (its own process thread) and a real SQLite state store."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flows")
