"""The leadloop connection block without a Prefect server: what it keeps, how it keeps the secrets,
the settings a run gets from it, and that a flow's parameters name it and hold nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from leadloop.connectors.settings import load_connection
from leadloop.flows import blocks
from leadloop.flows.blocks import ConnectionBlockError, LeadloopConnection
from leadloop.flows.options import DataQualityOptions, ModelReviewOptions, RescoreOptions, SyncOptions

SECRETS = ("sf-session-7f3a", "sf-password-91c2", "sf-token-55aa", "hs-token-d00d", "store-pw-3e3e")
PEM = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"


@pytest.fixture
def connection_file(tmp_path: Path) -> Path:
    (tmp_path / "ca.pem").write_text(PEM)
    path = tmp_path / "connection.json"
    path.write_text(json.dumps({
        "salesforce": {"instance_url": "https://sf.example.com", "session_id": SECRETS[0],
                       "username": "ops@example.com", "password": SECRETS[1], "security_token": SECRETS[2]},
        "hubspot": {"host": "https://hs.example.com", "access_token": SECRETS[3]},
        "ca_cert": "ca.pem",
        "store_url": f"postgresql+psycopg://leadloop:{SECRETS[4]}@db.example.com/leadloop",
    }))
    return path


@pytest.fixture(autouse=True)
def private_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for name in ("LEADLOOP_STORE_URL", "LEADLOOP_HUBSPOT__ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "cache"


def stored(block: LeadloopConnection) -> LeadloopConnection:
    """The block as Prefect stores it (secrets included, as JSON) and reads it back."""
    data = json.loads(json.dumps(block.model_dump(mode="json", context={"include_secrets": True})))
    return LeadloopConnection.model_validate(data)


def test_a_connection_file_survives_the_round_trip_through_a_block(connection_file):
    settings = load_connection(connection_file)
    again = stored(LeadloopConnection.from_settings(settings)).connection_settings("production")
    assert again.salesforce == settings.salesforce and again.hubspot == settings.hubspot
    assert again.store_url == settings.store_url
    assert again.ca_cert is not None and again.ca_cert.read_text() == PEM


def test_every_secret_is_a_secret_str_that_prefect_stores_as_a_secret(connection_file):
    block = LeadloopConnection.from_settings(load_connection(connection_file))
    assert isinstance(block.store_url, SecretStr)
    assert isinstance(block.salesforce.session_id, SecretStr)
    assert isinstance(block.hubspot.access_token, SecretStr)
    secret_fields = set(LeadloopConnection.model_json_schema()["secret_fields"])
    assert {"salesforce.session_id", "salesforce.password", "salesforce.security_token",
            "salesforce.consumer_secret", "hubspot.access_token", "store_url"} <= secret_fields


def test_no_secret_shows_in_the_blocks_repr_str_json_or_its_summary(connection_file):
    block = LeadloopConnection.from_settings(load_connection(connection_file))
    shown = " ".join((repr(block), str(block), block.model_dump_json(), json.dumps(block.safe_summary()),
                      str(block.model_dump())))
    assert not [s for s in SECRETS if s in shown]
    assert "BEGIN CERTIFICATE" not in repr(block)  # the PEM is summarised, not printed


def test_the_ca_certificate_is_kept_as_its_pem_so_a_worker_needs_no_file(connection_file, private_cache):
    block = LeadloopConnection.from_settings(load_connection(connection_file))
    assert block.ca_cert == PEM
    first = block.connection_settings().ca_cert
    assert first == block.connection_settings().ca_cert  # one file, reused by every run
    assert first is not None and first.is_relative_to(private_cache)


def test_a_ca_path_missing_on_the_worker_names_the_block_and_what_to_do():
    block = LeadloopConnection(hubspot={"access_token": SECRETS[3]}, ca_cert="/nowhere/ca.pem")
    with pytest.raises(ConnectionBlockError) as raised:
        block.connection_settings("production")
    assert "'production'" in str(raised.value) and "/nowhere/ca.pem" in str(raised.value)
    assert "leadloop connect --name production" in str(raised.value)


def test_the_workers_leadloop_environment_adds_nothing_to_a_blocks_settings(monkeypatch):
    monkeypatch.setenv("LEADLOOP_HUBSPOT__ACCESS_TOKEN", SECRETS[3])
    block = LeadloopConnection(salesforce={"instance_url": "https://sf.example.com",
                                           "session_id": SECRETS[0]})
    assert block.connection_settings().hubspot is None


def test_a_block_without_a_store_url_uses_the_workers(monkeypatch):
    monkeypatch.setenv("LEADLOOP_STORE_URL", "sqlite:////srv/leadloop/state.db")
    block = LeadloopConnection(hubspot={"access_token": SECRETS[3]})
    assert block.store_url is None and block.connection_settings().store_url == "sqlite:////srv/leadloop/state.db"


def test_a_block_without_any_crm_is_refused():
    with pytest.raises(ValidationError, match="configure salesforce, hubspot or both"):
        LeadloopConnection(store_url="sqlite:///x.db")


@pytest.mark.parametrize("options", [SyncOptions, RescoreOptions, DataQualityOptions, ModelReviewOptions])
def test_a_flows_parameters_hold_the_blocks_name_and_nothing_else_of_it(options):
    params = options(connection="production").model_dump(mode="json")
    assert params["connection"] == "production" and params["connection_file"] is None
    schema = options.model_json_schema()["properties"]["connection"]
    assert {"type": "string"} in schema["anyOf"] and "pattern" in schema


def test_a_run_names_a_block_or_a_connection_file_not_both():
    with pytest.raises(ValidationError, match="not both"):
        SyncOptions(connection="production", connection_file="connection.json")
    with pytest.raises(ValidationError, match="lowercase letters, digits and dashes"):
        SyncOptions(connection="Production Org")


def test_a_missing_block_says_which_and_how_to_create_it(monkeypatch):
    from prefect.exceptions import ObjectNotFound

    def not_found(name: str) -> LeadloopConnection:
        raise ValueError(f"Unable to find block document named {name}") from ObjectNotFound(None)

    monkeypatch.setattr(LeadloopConnection, "load", staticmethod(not_found))
    with pytest.raises(ConnectionBlockError) as raised:
        blocks.connection_settings(SyncOptions(connection="staging"))
    message = str(raised.value)
    assert "no leadloop connection block named 'staging'" in message
    assert "leadloop connect --name staging" in message and len(message.splitlines()) <= 3


def test_a_block_that_no_longer_validates_is_reported_without_its_values(monkeypatch):
    def invalid(name: str) -> LeadloopConnection:
        return LeadloopConnection.model_validate(
            {"salesforce": {"instance_url": "http://sf.example.com", "session_id": SECRETS[0]}})

    monkeypatch.setattr(LeadloopConnection, "load", staticmethod(invalid))
    with pytest.raises(ConnectionBlockError) as raised:
        blocks.load_connection_block("production")
    assert "salesforce.instance_url" in str(raised.value) and SECRETS[0] not in str(raised.value)


def test_a_store_password_in_the_settings_never_shows_in_their_repr(tmp_path):
    """A connection file or block may carry the store URL with its password: settings objects end up
    in reprs, error messages and tracebacks' locals, so the URL is not part of their repr."""
    file = tmp_path / "conn.json"
    file.write_text(json.dumps({"hubspot": {"host": "https://hs.example", "access_token": "pat-1"},
                                "store_url": "postgresql+psycopg://leadloop:hunter2@db/leadloop"}))
    settings = load_connection(file)
    assert settings.store_url.endswith("@db/leadloop")  # still there for whoever opens the store
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
