"""The production configuration of deployments/README.md ("Outgrowing one machine"): a Prefect server
whose database is PostgreSQL, and leadloop's state store on PostgreSQL too. A real `prefect server
start` on a throwaway PostgreSQL 15 cluster; the hourly sync runs against it in its own process (as a
worker would) on a tiny sandbox; the run is then read back from the server and from its tables."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
import requests

PROJECT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent("""
    import sys
    from leadloop.connectors.hubspot.setup import setup as hubspot_setup
    from leadloop.connectors.mapping import load_mapping
    from leadloop.connectors.salesforce.setup import setup as salesforce_setup
    from leadloop.connectors.settings import load_connection
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.options import SyncOptions
    from leadloop.sandbox.server import running_sandbox

    connection, store_url, playbook = sys.argv[1:4]
    with running_sandbox(size="tiny", seed=3, connection_file=connection):
        settings, mapping = load_connection(connection), load_mapping()
        salesforce_setup(settings, mapping)
        hubspot_setup(settings, mapping)
        summary = hourly_sync(SyncOptions(connection_file=connection, playbook=playbook,
                                          store_url=store_url))
        print("people scored", summary.people_scored)
""")


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _server_env(home: Path, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_API_DATABASE_CONNECTION_URL=database_url,
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_UI_ENABLED="false",
               PREFECT_LOGGING_LEVEL="WARNING")
    return env


@pytest.mark.postgres
def test_the_hourly_sync_runs_on_a_prefect_server_backed_by_postgresql(postgres_cluster, _postgres_admin,
                                                                        tmp_path):
    database = f"prefect_{os.getpid()}"
    _postgres_admin.execute(f"CREATE DATABASE {database}")
    cluster = postgres_cluster
    prefect_db = (f"postgresql+asyncpg://{cluster.user}@/{database}"
                  f"?host={cluster.socket_dir}&port={cluster.port}")
    schema = f"leadloop_{os.getpid()}"
    _postgres_admin.execute(f"CREATE SCHEMA {schema}")
    store_url = cluster.url(schema=schema)

    port = _free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = _server_env(tmp_path / "prefect-home", prefect_db)
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)],  # with its services: they record task runs
                              cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-3000:]
            try:
                if requests.get(f"{api}/health", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not answer within 180 s"
            time.sleep(0.5)

        child_env = {**env, "PREFECT_API_URL": api, "PYTHONPATH": str(PROJECT)}
        child_env.pop("PREFECT_API_DATABASE_CONNECTION_URL")
        child = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "connection.json"), store_url,
                                str(PROJECT / "playbooks" / "semiconductor.yaml")],
                               cwd=PROJECT, env=child_env, capture_output=True, text=True, timeout=600)
        assert child.returncode == 0, child.stderr[-3000:]
        scored = int(child.stdout.strip().rsplit(" ", 1)[-1])
        assert scored > 0

        runs = requests.post(f"{api}/flow_runs/filter", json={"limit": 10}, timeout=30).json()
        assert [(r["name"] != "", r["state_type"]) for r in runs] == [(True, "COMPLETED")], runs
        deadline = time.monotonic() + 60  # task runs reach the server as events, recorded a moment later
        while True:
            tasks = requests.post(f"{api}/task_runs/filter", json={"limit": 200}, timeout=30).json()
            if (len(tasks) >= 5 and {t["state_type"] for t in tasks} == {"COMPLETED"}) or \
                    time.monotonic() > deadline:
                break
            time.sleep(1)
        assert len(tasks) >= 5 and {t["state_type"] for t in tasks} == {"COMPLETED"}, tasks[:3]

        # the run lives in PostgreSQL (not a SQLite file in PREFECT_HOME), as does leadloop's state
        rows: list[Any] = _fetch(cluster, database, "SELECT f.name, r.state_type FROM flow_run r "
                                                    "JOIN flow f ON f.id = r.flow_id")
        assert [(name, str(state)) for name, state in rows] == [("hourly-sync", "COMPLETED")]
        assert not list((tmp_path / "prefect-home").glob("*.db"))
        stored = _fetch(cluster, "postgres", f"SELECT count(*) FROM {schema}.runs")
        assert stored[0][0] >= 1
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


def _fetch(cluster: Any, database: str, sql: str) -> list[Any]:
    import psycopg

    with psycopg.connect(host=str(cluster.socket_dir), port=cluster.port, user=cluster.user,
                         dbname=database) as conn:
        return list(conn.execute(sql).fetchall())
