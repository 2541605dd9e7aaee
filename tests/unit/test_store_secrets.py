"""The store's secrets: a password never travels in a flow's parameters (the CLI moves it from
`--store-url` to LEADLOOP_STORE_PASSWORD, the options refuse one, the store takes it back from the
environment), and a SQLite store is readable by its owner alone."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from leadloop.cli.run import flow_options
from leadloop.flows.options import RescoreOptions, SyncOptions
from leadloop.store.db import STORE_PASSWORD_ENV, create_store_engine, open_store, split_password

PASSWORD = "s3cret-Pa55"
WITH_PASSWORD = f"postgresql+psycopg://leadloop:{PASSWORD}@db:5432/leadloop?connect_timeout=5"
WITHOUT = "postgresql+psycopg://leadloop@db:5432/leadloop?connect_timeout=5"


@pytest.fixture
def password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """LEADLOOP_STORE_PASSWORD unset for the test, and as it was afterwards."""
    monkeypatch.setenv(STORE_PASSWORD_ENV, "placeholder")
    monkeypatch.delenv(STORE_PASSWORD_ENV)


def test_split_password_takes_the_password_out_of_the_url():
    assert split_password(WITH_PASSWORD) == (WITHOUT, PASSWORD)
    assert split_password("postgresql+psycopg://leadloop:p%40ss%2Fw@db/leadloop") == (
        "postgresql+psycopg://leadloop@db/leadloop", "p@ss/w")


@pytest.mark.parametrize("url", [WITHOUT, "sqlite:////tmp/state.db", ".leadloop/state.db", "sqlite://",
                                 "not a url at all://"])
def test_split_password_leaves_a_url_without_one_as_it_is(url):
    assert split_password(url) == (url, None)


def test_the_store_takes_the_password_from_the_environment(password_env, monkeypatch):
    assert create_store_engine(WITHOUT).url.password is None
    monkeypatch.setenv(STORE_PASSWORD_ENV, PASSWORD)
    engine = create_store_engine(WITHOUT)  # no connection is made until it is used
    assert engine.url.password == PASSWORD
    assert PASSWORD not in repr(engine) and PASSWORD not in str(engine.url)
    assert create_store_engine("postgresql+psycopg://other:given@db/x").url.password == "given"


@pytest.mark.parametrize("options", [SyncOptions, RescoreOptions])
def test_the_options_refuse_a_url_with_a_password_without_echoing_it(options):
    with pytest.raises(ValidationError) as refused:
        options(store_url=WITH_PASSWORD)
    assert "put the password in LEADLOOP_STORE_PASSWORD or a Prefect Secret block" in str(refused.value)
    assert PASSWORD not in str(refused.value)
    assert options(store_url=WITHOUT).store_url == WITHOUT


def test_the_json_schema_refuses_a_password_too_so_the_prefect_ui_and_server_do():
    """Prefect validates a deployment's parameters against this schema before it stores a run."""
    pattern = SyncOptions.model_json_schema()["properties"]["store_url"]["pattern"]
    assert not re.search(pattern, WITH_PASSWORD)
    for url in (WITHOUT, "sqlite:////srv/leadloop/state.db", "postgresql+psycopg://u@/db?host=/run/pg"):
        assert re.search(pattern, url), url


def test_the_cli_moves_the_password_to_the_environment(password_env):
    options = flow_options("sync", store_url=WITH_PASSWORD, playbook="playbooks/semiconductor.yaml")
    assert options.store_url == WITHOUT
    assert os.environ[STORE_PASSWORD_ENV] == PASSWORD
    assert PASSWORD not in options.model_dump_json()
    rescore = flow_options("rescore", store_url=WITHOUT, scope={"kind": "all", "values": []})
    assert isinstance(rescore, RescoreOptions) and rescore.store_url == WITHOUT


def test_a_new_sqlite_store_and_its_wal_files_are_private(tmp_path: Path):
    path = tmp_path / "made-by-leadloop" / "state.db"
    store = open_store(f"sqlite:///{path}")
    try:
        store.start_run("hourly_sync", run_id="mode-check")  # a write: the -wal and -shm files exist now
        files = [path, *(p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists())]
        assert len(files) == 3
        for file in files:
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    finally:
        store.close()


def test_an_existing_store_keeps_the_mode_its_owner_gave_it(tmp_path: Path):
    path = tmp_path / "state.db"
    open_store(f"sqlite:///{path}").close()
    path.chmod(0o640)
    open_store(f"sqlite:///{path}").close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
