"""`leadloop sandbox serve|export` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from typer.testing import CliRunner

from leadloop.cli.app import app
from leadloop.connectors.settings import load_connection
from leadloop.crm.dataset import load_dataset

runner = CliRunner()


def test_serve_refuses_a_remote_address_without_allow_remote() -> None:
    result = runner.invoke(app, ["sandbox", "serve", "--host", "0.0.0.0", "--port", "0", "--empty"])
    assert result.exit_code == 2
    assert "--allow-remote" in result.output and "Traceback" not in result.output


def test_serve_refuses_an_unknown_size() -> None:
    result = runner.invoke(app, ["sandbox", "serve", "--size", "huge"])
    assert result.exit_code == 2 and "unknown size 'huge'" in result.output


def test_export_needs_a_source_and_reports_an_unreadable_connection_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sandbox", "export", "--out", str(tmp_path / "d.json")])
    assert result.exit_code == 2 and "--connection-file" in result.output
    result = runner.invoke(app, ["sandbox", "export", "--out", str(tmp_path / "d.json"),
                                 "--connection-file", str(tmp_path / "missing.json")])
    assert result.exit_code == 2 and "cannot read" in result.output


def test_export_in_process_writes_a_loadable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "tiny.json"
    result = runner.invoke(app, ["sandbox", "export", "--size", "tiny", "--seed", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    dataset = load_dataset(out)
    assert len(dataset.people) + len(dataset.invalid) == 50 and dataset.activities


def test_serve_writes_the_connection_file_serves_exports_and_saves_state_on_sigterm(tmp_path: Path) -> None:
    """As a user types it, in a folder of their own: the default connection file, a relative --data-dir."""
    connection_file, data_dir = tmp_path / ".leadloop" / "sandbox" / "connection.json", tmp_path / "data"
    process = subprocess.Popen(
        [sys.executable, "-m", "leadloop.cli.app", "sandbox", "serve", "--size", "tiny", "--port", "0",
         "--data-dir", "data"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while not connection_file.exists():
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the sandbox was not ready within 60 s"
            time.sleep(0.1)
        connection = json.loads(connection_file.read_text())
        # the file's CA is found as every leadloop command reads the file (relative paths against
        # the file's folder): it used to resolve to .leadloop/sandbox/.leadloop/sandbox/ca.pem
        ca_cert = load_connection(connection_file).ca_cert
        assert ca_cert == connection_file.parent.resolve() / "ca.pem" and ca_cert.is_file()
        session = requests.Session()
        session.trust_env = False
        session.verify = connection["ca_cert"]
        assert session.get(f"{connection['sandbox_admin_url']}/health").json()["size"] == "tiny"
        out = tmp_path / "export.json"
        exported = runner.invoke(app, ["sandbox", "export", "--connection-file", str(connection_file),
                                       "--out", str(out)])
        assert exported.exit_code == 0, exported.output
        assert len(json.loads(out.read_text())["people"]) == 50
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0, output
    assert "sandbox ready" in output and connection["salesforce"]["session_id"] not in output
    assert (data_dir / "sandbox.db").exists()


def test_serve_reports_an_unreadable_state_database_without_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "sandbox.db").write_text("this is not SQLite")
    result = runner.invoke(app, ["sandbox", "serve", "--port", "0", "--data-dir", str(tmp_path),
                                 "--connection-file", str(tmp_path / "c.json")])
    assert result.exit_code == 2 and "not a readable sandbox state database" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "c.json").exists()
