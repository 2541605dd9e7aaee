"""`make serve` before it starts anything: which port it serves on, and what it refuses, with exit
code 2 and one line saying why and what to do."""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadloop.deployments.serve import DEFAULT_PORT, ServeError, serve_config

PROJECT = Path(__file__).resolve().parents[2]


def test_the_port_defaults_to_4200_and_the_state_to_the_project():
    config = serve_config({})
    assert config.port == DEFAULT_PORT and config.api_url == "http://127.0.0.1:4200/api"
    assert config.state_dir == PROJECT / ".leadloop" / "serve"
    assert config.prefect_home == config.state_dir / "prefect"


@pytest.mark.parametrize("environ", [
    {"LEADLOOP_SERVE_PORT": "4300"},
    {"PREFECT_SERVER_API_PORT": "4300"},
    {"PREFECT_API_URL": "http://127.0.0.1:4300/api"},
    {"PREFECT_API_URL": "http://localhost:4300/api", "LEADLOOP_SERVE_PORT": "4300"},
])
def test_the_port_comes_from_leadloop_serve_port_prefect_server_api_port_or_prefect_api_url(environ):
    assert serve_config(environ).port == 4300


def test_two_different_ports_are_refused_naming_both():
    with pytest.raises(ServeError) as refused:
        serve_config({"LEADLOOP_SERVE_PORT": "4400", "PREFECT_API_URL": "http://127.0.0.1:4300/api"})
    assert refused.value.code == 2 and "4400" in str(refused.value) and "4300" in str(refused.value)


def test_a_prefect_api_url_elsewhere_is_refused_rather_than_served_here():
    with pytest.raises(ServeError, match="not this machine"):
        serve_config({"PREFECT_API_URL": "https://api.prefect.cloud/api/accounts/a/workspaces/w"})


def test_a_port_that_is_not_a_number_is_refused():
    with pytest.raises(ServeError, match="not a port"):
        serve_config({"LEADLOOP_SERVE_PORT": "http"})


class _NotPrefect(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)  # answers everything, as a catch-all web app would
        self.end_headers()
        self.wfile.write(b"<html>hello</html>")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unrelated_server() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotPrefect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


def serve(port: int, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LEADLOOP_"))}
    env.update(LEADLOOP_SERVE_PORT=str(port), LEADLOOP_SERVE_DIR=str(tmp_path / "serve"),
               PREFECT_HOME=str(tmp_path / "prefect"))
    return subprocess.run([sys.executable, "-m", "leadloop.deployments.serve"], env=env, cwd=PROJECT,
                          capture_output=True, text=True, timeout=60)


def test_a_port_held_by_a_web_server_that_is_not_prefect_is_refused_with_exit_2(unrelated_server, tmp_path):
    result = serve(unrelated_server, tmp_path)
    assert result.returncode == 2
    assert f"port {unrelated_server} on 127.0.0.1 is held by something that is not a Prefect server" \
        in result.stderr
    assert f"LEADLOOP_SERVE_PORT={unrelated_server + 1} make serve" in result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "serve").exists()  # nothing started


def test_a_port_held_by_a_bare_listener_is_refused_too(tmp_path):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = serve(port, tmp_path)
    assert result.returncode == 2 and "is not a Prefect server" in result.stderr
