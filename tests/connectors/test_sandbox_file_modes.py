"""Every file the sandbox writes that holds a token, a key or personal data is created 0600, and the
directories it creates for them 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from leadloop.sandbox.cli import sandbox_app
from leadloop.sandbox.server import running_sandbox


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """umask 000: a mode that comes out right is the code's doing, not the environment's."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_connection_file_keys_and_state_are_private(tmp_path: Path, permissive_umask: None) -> None:
    data_dir = tmp_path / "state" / "sandbox"
    connection_file = tmp_path / "conn" / "sandbox" / "connection.json"
    with running_sandbox(size="tiny", data_dir=data_dir, connection_file=connection_file) as handle:
        assert mode(connection_file) == 0o600  # tokens and the Salesforce password
        assert mode(data_dir / "ca-key.pem") == 0o600
        assert mode(handle._scratch / "server.pem") == 0o600  # the TLS key, for the server's lifetime
        assert mode(handle.core.persist()) == 0o600  # sandbox.db: the world's people and the sessions
    assert mode(data_dir / "sandbox.db") == 0o600  # saved again on stop
    for directory in (data_dir, data_dir.parent, connection_file.parent, connection_file.parent.parent):
        assert mode(directory) == 0o700, directory


def test_a_state_database_left_readable_is_made_private(tmp_path: Path, permissive_umask: None) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    os.chmod(data_dir, 0o755)
    with running_sandbox(size="tiny", data_dir=data_dir):
        pass
    os.chmod(data_dir / "sandbox.db", 0o644)  # as sandboxes before this change left it
    with running_sandbox(data_dir=data_dir):
        assert mode(data_dir / "sandbox.db") == 0o600
    assert mode(data_dir) == 0o755  # a directory the user made keeps the mode they gave it


def test_an_exported_world_is_private(tmp_path: Path, permissive_umask: None) -> None:
    out = tmp_path / "exports" / "tiny.json"
    result = CliRunner().invoke(sandbox_app, ["export", "--size", "tiny", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600 and mode(out.parent) == 0o700
