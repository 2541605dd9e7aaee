"""Shared fixtures: a throwaway PostgreSQL 15 cluster for the session, and `store_url` over SQLite and it.

The cluster is created only when a test asks for PostgreSQL: `initdb` into a private directory
(as the `postgres` user when the tests run as root, since the server refuses to run as root), then
`pg_ctl start` on a free port with its socket in that directory and no TCP listener. Every test
shares one schema migrated once, emptied before each test (`postgres_url`), or gets a brand-new
schema (`postgres_empty_url`, for migration tests). Without the server binaries the
PostgreSQL cases are skipped with the reason shown.
"""

from __future__ import annotations

import glob
import importlib
import itertools
import os
import pwd
import random
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

# In CI (CI=true) property tests replay the same examples every run, so a red build always means a
# change, never a newly drawn case; local runs keep exploring fresh examples and no deadlines flake
# on a busy 2-core machine.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None, print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")

# Prefect's events client keeps a websocket to the test server open from a background thread, and
# websockets draws its ping payloads (and reconnect delays) from the global `random`. Hypothesis takes
# any change of the global random state while it draws an example for the strategy's doing and warns
# ("Do not use the `random` module inside strategies"), now and then, whenever a ping lands mid-draw.
# Those modules get a generator of their own, so the global state changes only when a test changes it.
for _name in ("websockets.asyncio.connection", "websockets.client"):
    try:
        _module = importlib.import_module(_name)
    except ImportError:
        continue
    if getattr(_module, "random", None) is random:
        _module.random = random.Random()

# Prefect keeps its settings, database and blocks under PREFECT_HOME: a temporary one per session
os.environ.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="leadloop-prefect-"))
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

_PG_BIN_GLOBS = ("/usr/lib/postgresql/*/bin", "/usr/local/pgsql/bin", "/usr/pgsql-*/bin")
_schemas = itertools.count(1)


@dataclass(frozen=True)
class PostgresCluster:
    bin_dir: Path
    data_dir: Path
    socket_dir: Path
    port: int
    user: str

    def url(self, database: str = "postgres", schema: str | None = None) -> str:
        url = f"postgresql+psycopg://{self.user}@/{database}?host={self.socket_dir}&port={self.port}"
        if schema:
            url += f"&options=-csearch_path%3D{schema}"
        return url


def _find_pg_bin() -> Path | None:
    candidates = [Path(p) for pattern in _PG_BIN_GLOBS for p in glob.glob(pattern)]
    for bin_dir in sorted(candidates, reverse=True):
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    found = shutil.which("initdb")
    return Path(found).parent if found and shutil.which("pg_ctl") else None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bin_dir = _find_pg_bin()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found in /usr/lib/postgresql/*/bin "
                    "or on PATH; install postgresql to run the store tests against it")
    as_root = os.geteuid() == 0
    if as_root:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no 'postgres' user to run the PostgreSQL server as")
        prefix = ["runuser", "-u", "postgres", "--"]
    else:
        prefix = []
    base = Path(tempfile.mkdtemp(prefix="leadloop-pg-"))
    data_dir, socket_dir = base / "data", base
    if as_root:
        os.chown(base, owner.pw_uid, owner.pw_gid)
    user = "postgres" if as_root else pwd.getpwuid(os.geteuid()).pw_name
    port = _free_port()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=120)

    init = run(str(bin_dir / "initdb"), "-D", str(data_dir), "-A", "trust", "-U", user, "-E", "UTF8",
               "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"initdb failed: {(init.stderr or init.stdout).strip()[-400:]}")
    options = (f"-p {port} -k {socket_dir} -c listen_addresses='' -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off")
    start = run(str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-o", options, "-l", str(base / "server.log"),
                "-w", "-t", "60", "start")
    if start.returncode != 0:
        server_log = base / "server.log"
        log = server_log.read_text(errors="replace")[-400:] if server_log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {(start.stderr or start.stdout).strip()[-300:]} {log}")
    try:
        yield PostgresCluster(bin_dir, data_dir, socket_dir, port, user)
    finally:
        run(str(bin_dir / "pg_ctl"), "-D", str(data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def _postgres_admin(postgres_cluster: PostgresCluster) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(host=str(postgres_cluster.socket_dir), port=postgres_cluster.port,
                         user=postgres_cluster.user, dbname="postgres", autocommit=True) as conn:
        conn.execute("SET lock_timeout = '10s'")
        yield conn


@pytest.fixture(scope="session")
def _postgres_shared_schema(postgres_cluster: PostgresCluster, _postgres_admin: Any) -> str:
    """One schema migrated once per session; tests empty its tables instead of re-creating them."""
    from leadloop.store import open_store

    schema = f"shared_{os.getpid()}"
    _postgres_admin.execute(f"CREATE SCHEMA {schema}")
    open_store(postgres_cluster.url(schema=schema)).close()
    return schema


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster, _postgres_admin: Any,
                 _postgres_shared_schema: str) -> str:
    """A PostgreSQL store URL whose state tables are empty (schema already at the latest version)."""
    schema = _postgres_shared_schema
    tables = [row[0] for row in _postgres_admin.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tablename <> 'schema_version'", (schema,))]
    if tables:
        qualified = ", ".join(f"{schema}.{t}" for t in tables)
        _postgres_admin.execute(f"TRUNCATE {qualified} RESTART IDENTITY")
    return postgres_cluster.url(schema=schema)


@pytest.fixture
def postgres_empty_url(postgres_cluster: PostgresCluster, _postgres_admin: Any) -> str:
    """A PostgreSQL URL with a brand-new empty schema (for migration tests)."""
    schema = f"t{os.getpid()}_{next(_schemas)}"
    _postgres_admin.execute(f"CREATE SCHEMA {schema}")
    return postgres_cluster.url(schema=schema)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'state' / 'state.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest) -> str:
    """The same test against a SQLite file and a real PostgreSQL schema."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_store_url(request: pytest.FixtureRequest) -> str:
    """Like `store_url`, but the database is brand new (no schema at all yet)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_empty_url"))


# -- the quick lane ----------------------------------------------------------------------------------
# `make check` runs the tests not marked slow. Slow, without each test having to say so: everything
# under tests/flows and tests/e2e (a Prefect engine, a sandbox, subprocesses), and every test that uses
# the sandbox, by fixture or by starting one itself.
_SLOW_FOLDERS = frozenset({"flows", "e2e"})
_SLOW_FIXTURES = frozenset({"sandbox", "sf", "hs", "harness", "prefect_harness", "synced", "chaos"})
_STARTS_A_SANDBOX = ("running_sandbox(", "start_sandbox(", "SandboxCore(")


def _starts_a_sandbox(path: Path, seen: dict[Path, bool] = {}) -> bool:  # noqa: B006 (a cache)
    if path not in seen:
        text = path.read_text(encoding="utf-8")
        seen[path] = any(marker in text for marker in _STARTS_A_SANDBOX)
    return seen[path]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        path = Path(str(item.fspath))
        if (path.parent.name in _SLOW_FOLDERS or _SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
                or _starts_a_sandbox(path)):
            item.add_marker(pytest.mark.slow)


@contextmanager
def _crm_sandbox(connection: Path, *, size: str = "tiny", seed: int = 7,
                 empty: bool = False, setup: bool = True) -> Iterator[Any]:
    """A sandbox that writes its connection file to `connection`, after `crm setup` in both CRMs (not
    with `setup=False`, as a user finds the CRMs before it); `empty`: no generated world (as
    `leadloop sandbox serve --empty`), so size and seed do not matter."""
    from leadloop.connectors.hubspot.setup import setup as hubspot_setup
    from leadloop.connectors.mapping import load_mapping
    from leadloop.connectors.salesforce.setup import setup as salesforce_setup
    from leadloop.connectors.settings import load_connection
    from leadloop.sandbox.server import running_sandbox

    with running_sandbox(size=size, seed=seed, empty=empty, connection_file=connection) as handle:
        if setup:
            settings, mapping = load_connection(connection), load_mapping()
            salesforce_setup(settings, mapping)
            hubspot_setup(settings, mapping)
        yield handle


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[str]:
    """A temporary Prefect server for the whole session (flows run on a real engine); yields its API
    URL."""
    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="session")
def crm_sandbox() -> Any:
    """`with crm_sandbox(connection_file, size=…, seed=…) as handle:` a running sandbox after `crm setup`
    in both CRMs, as a user starts with; each test module picks its world's size and seed, or
    `empty=True` for CRMs holding nothing but what the test itself creates."""
    return _crm_sandbox
