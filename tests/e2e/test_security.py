"""Security properties of a whole sync against the sandbox: secrets stay out of logs, artifacts, the
state database and exception messages; emails in logs are masked; the write allowlist holds on every
path before any request; SOQL built from CRM values is escaped; TLS verification stays on; the
sandbox keeps to loopback unless told otherwise.

The sync is the real `hourly_sync` flow body run without a Prefect server: its Prefect tasks are
called as the plain functions they wrap and its artifacts are captured instead of published.
"""

from __future__ import annotations

import json
import logging
import re
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr
from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from leadloop.connectors.hubspot.client import hubspot_client
from leadloop.connectors.hubspot.retry import HubSpotError
from leadloop.connectors.hubspot.retry import RetryPolicy as HubSpotRetryPolicy
from leadloop.connectors.hubspot.setup import setup as hubspot_setup
from leadloop.connectors.hubspot.sink import HubSpotSink
from leadloop.connectors.mapping import ForbiddenFieldError, load_mapping
from leadloop.connectors.salesforce.client import AuthenticationError, salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy, SalesforceCallError
from leadloop.connectors.salesforce.setup import setup as salesforce_setup
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.settings import ConnectionSettings, load_connection
from leadloop.crm.changes import FieldUpdate, ObjectType
from leadloop.crm.records import Crm
from leadloop.sandbox.server import SandboxConfigError, SandboxHandle, running_sandbox, start_sandbox
from leadloop.store.db import open_store

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")
PRODUCTION = ("connectors", "crm", "flows", "routing", "scoring", "store", "sandbox", "deployments", "bench")
ONCE = RetryPolicy(attempts=1, timeout=(5, 10))
LEAKY_EMAIL = "leaky.person@"  # no domain: the row is rejected, and the rejection is logged


class Capture(logging.Handler):
    """Every record, formatted with its traceback, as a log file would hold it."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def backend(handle: SandboxHandle, name: str) -> Any:
    return next(b for b in handle.core.backends if b.name == name)


def admin(handle: SandboxHandle, method: str, path: str, body: Any = None) -> Any:
    session = requests.Session()
    session.trust_env, session.verify = False, str(handle.ca_path)
    response = session.request(method, f"{handle.admin_url}/{path}", json=body, timeout=30)
    response.raise_for_status()
    return response.json() if response.content else None


def run_sync_without_prefect(options: Any, published: list[str]) -> Any:
    """The hourly_sync flow body with its tasks as plain calls and its artifacts captured."""
    from leadloop.flows import artifacts, hourly_sync, tasks

    with pytest.MonkeyPatch.context() as patch:
        for name in ("pull_stream", "load_and_resolve", "save_identity", "score", "save_scores", "route",
                     "plan_changes", "write_plan"):
            patch.setattr(tasks, name, getattr(tasks, name).fn)
        patch.setattr(hourly_sync, "get_run_logger", lambda: logging.getLogger("leadloop.flow"))
        patch.setattr(artifacts, "create_markdown_artifact", lambda text, **_: published.append(text))
        patch.setattr(artifacts, "create_table_artifact",
                      lambda rows, **_: published.append(json.dumps(rows)))
        return hourly_sync.hourly_sync.fn(options)


@pytest.fixture(scope="module")
def synced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One full sync with a session that expires mid-run, so the password and security token are
    sent again; logs captured at DEBUG from every logger."""
    from leadloop.flows.options import SyncOptions

    workdir = tmp_path_factory.mktemp("security")
    connection = workdir / "connection.json"
    with running_sandbox(size="tiny", seed=7, connection_file=connection) as handle:
        login = handle.core.sessions.credentials("salesforce")
        data = json.loads(connection.read_text())
        data["salesforce"].update(login)
        connection.write_text(json.dumps(data))
        secrets = [data["salesforce"]["session_id"], login["password"], login["security_token"],
                   data["hubspot"]["access_token"]]
        backend(handle, "salesforce").org.insert("Lead", {"LastName": "Leaky", "Company": "Acme",
                                                          "Email": LEAKY_EMAIL})
        settings, mapping = load_connection(connection), load_mapping()
        salesforce_setup(settings, mapping)
        hubspot_setup(settings, mapping)
        # the session expires mid-pull (a quiet sync makes one query per object: ten in all)
        admin(handle, "POST", "faults", {"crm": "salesforce", "session_expire_after": 6})

        capture, root = Capture(), logging.getLogger()
        level = root.level
        root.addHandler(capture)
        root.setLevel(logging.DEBUG)
        published: list[str] = []
        store_path = workdir / "state.db"
        try:
            options = SyncOptions(connection_file=str(connection), playbook=PLAYBOOK,
                                  store_url=f"sqlite:///{store_path}")
            summary = run_sync_without_prefect(options, published)
        finally:
            root.removeHandler(capture)
            root.setLevel(level)
        admin(handle, "DELETE", "faults")
        yield {"handle": handle, "settings": settings, "secrets": secrets, "log": "\n".join(capture.lines),
               "published": published, "summary": summary, "store_path": store_path, "mapping": mapping}


def test_the_sync_ran_through_a_session_renewal_and_wrote_back(synced):
    assert "salesforce session renewed" in synced["log"]
    assert synced["summary"].fields_written > 0 and synced["summary"].records_pulled > 0


def test_a_secret_used_throughout_a_sync_never_reaches_logs_artifacts_reports_or_the_state_database(synced):
    database = b"".join(p.read_bytes() for p in synced["store_path"].parent.glob("state.db*"))
    artifacts = "\n".join(synced["published"])
    summary = repr(synced["summary"])
    assert artifacts and database and synced["log"]
    for secret in synced["secrets"]:
        assert secret not in synced["log"]
        assert secret not in artifacts and secret not in summary
        assert secret.encode() not in database
    assert repr(synced["settings"]).count("**********") >= 3  # SecretStr in reprs


def test_emails_in_logs_are_masked(synced):
    log = synced["log"]
    assert "l***@" in log  # the rejected lead's reason was logged, masked
    assert LEAKY_EMAIL not in log
    with open_store(f"sqlite:///{synced['store_path']}") as store:
        emails = {p.email for p in store.load_records().people if p.email}
    assert emails
    assert not [e for e in emails if e in log]
    assert not re.search(r"[\w.+-]{2,}@[\w-]+\.[\w.]+", log), "an unmasked email address in the logs"


def test_exception_messages_carry_no_secret(synced):
    handle, settings, secrets = synced["handle"], synced["settings"], synced["secrets"]
    raised: list[BaseException] = []
    admin(handle, "POST", "faults", {"crm": "salesforce", "error_5xx_ratio": 1.0})
    try:
        client = salesforce_client(settings.salesforce, settings.ca_cert, policy=ONCE)
        with pytest.raises(SalesforceCallError) as failed:
            list(SalesforceSource(client, synced["mapping"].salesforce).pull("Lead", None))
        raised.append(failed.value)
    finally:
        admin(handle, "DELETE", "faults")
    wrong = settings.salesforce.model_copy(update={"session_id": None,
                                                   "password": SecretStr("not-the-password-" + secrets[1])})
    with pytest.raises(AuthenticationError) as refused:
        salesforce_client(wrong, settings.ca_cert, policy=ONCE)
    raised.append(refused.value)
    bad_token = settings.hubspot.model_copy(update={"access_token": SecretStr("pat-na1-" + secrets[3][::-1])})
    hs = hubspot_client(bad_token, settings.ca_cert, policy=HubSpotRetryPolicy(attempts=1))
    with pytest.raises(HubSpotError) as unauthorized:
        hs.request("GET", "/crm/v3/objects/contacts", query=[("limit", 1)])
    raised.append(unauthorized.value)
    leaked = [secrets[1], secrets[3], secrets[3][::-1], *secrets]
    for error in raised:
        text = "".join(traceback.format_exception(error)) + repr(error) + repr(error.args)
        assert not [s for s in leaked if s in text], type(error).__name__


def _forbidden(crm: Crm, record_id: str, object_type: ObjectType) -> list[FieldUpdate]:
    """An owned field, then one leadloop does not own, on the same record."""
    owned = "score" if object_type == ObjectType.PERSON else "account_fit"
    return [FieldUpdate(crm=crm, object_type=object_type, record_id=record_id, field=field, value=value)
            for field, value in ((owned, 1), ("email", "x@y.com"))]


def test_the_write_allowlist_holds_on_every_path_before_any_request(synced):
    handle, settings, mapping = synced["handle"], synced["settings"], synced["mapping"]
    sf = salesforce_client(settings.salesforce, settings.ca_cert, policy=ONCE)
    hs = hubspot_client(settings.hubspot, settings.ca_cert)
    sinks = {"salesforce collections": (SalesforceSink(sf, mapping.salesforce, bulk_threshold=None),
                                        "00Q000000000001AAA"),
             "salesforce bulk api": (SalesforceSink(sf, mapping.salesforce, bulk_threshold=0),
                                     "00Q000000000001AAA"),
             "hubspot batch": (HubSpotSink(hs, mapping.hubspot), "101")}
    admin(handle, "POST", "stats/reset")
    for path, (sink, record_id) in sinks.items():
        for object_type in ObjectType:
            with pytest.raises(ForbiddenFieldError):
                sink.write_fields(_forbidden(sink.crm, record_id, object_type))
            assert sf.counter.total == 0 and hs.counter.total == 0, path
    assert admin(handle, "GET", "stats")["calls"] == 0


def test_soql_built_from_crm_values_is_escaped_so_a_name_cannot_change_the_query(synced):
    conn = synced["handle"].connection["salesforce"]
    session = requests.Session()
    session.trust_env, session.verify = False, str(synced["handle"].ca_path)
    sf = Salesforce(instance_url=conn["instance_url"], session_id=conn["session_id"], session=session,
                    version=conn["api_version"])
    name = "x' OR Id != null OR LastName = 'y"
    lead = sf.Lead.create({"LastName": name, "Company": "Injection Test"})["id"]
    safe = sf.query(format_soql("SELECT Id, LastName FROM Lead WHERE LastName = {}", name))["records"]
    assert [(r["Id"], r["LastName"]) for r in safe] == [(lead, name)]
    naive = sf.query(f"SELECT Id FROM Lead WHERE LastName = '{name}'")["records"]  # what escaping prevents
    assert len(naive) > 1


def _project_sources(packages: tuple[str, ...] = PRODUCTION) -> Iterator[tuple[Path, str]]:
    for package in packages:
        for path in sorted((PROJECT / package).rglob("*.py")):
            yield path, path.read_text(encoding="utf-8")


def test_the_connectors_and_flows_build_soql_only_through_format_soql():
    interpolated = re.compile(r"""f["'][^"'\n]*\b(SELECT|WHERE)\b"""  # an f-string query
                              r"""|\bWHERE\b[^"'\n]*["']\s*(%|\+|\.format)""")  # or %, + and .format
    offenders = [f"{path.relative_to(PROJECT)}:{text[:m.start()].count(chr(10)) + 1}"
                 for path, text in _project_sources(("connectors", "flows"))
                 for m in interpolated.finditer(text)]
    assert offenders == []
    assert "format_soql" in (PROJECT / "connectors/salesforce/source.py").read_text()


def test_tls_verification_is_never_turned_off_in_the_code():
    switched_off = re.compile(r"verify\s*=\s*False|verify_ssl\s*=\s*False|CERT_NONE"
                              r"|_create_unverified_context|check_hostname\s*=\s*False|PYTHONHTTPSVERIFY")
    assert [str(p.relative_to(PROJECT)) for p, text in _project_sources() if switched_off.search(text)] == []


def _causes(error: BaseException | None) -> str:
    text = ""
    while error is not None:
        text += f"{type(error).__name__}: {error}\n"
        error = error.__cause__ or error.__context__
    return text


def test_a_client_not_given_the_sandbox_ca_refuses_its_certificate(synced, monkeypatch):
    settings: ConnectionSettings = synced["settings"]
    # environment CA variables must not widen what the connectors trust
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(synced["handle"].ca_path))
    monkeypatch.setenv("CURL_CA_BUNDLE", str(synced["handle"].ca_path))
    client = salesforce_client(settings.salesforce.model_copy(update={"username": None, "password": None}),
                               None, policy=ONCE)
    with pytest.raises(SalesforceCallError) as refused:
        client.request("GET", "limits/", "limits")
    assert isinstance(refused.value.__cause__, requests.exceptions.SSLError)
    assert "CERTIFICATE_VERIFY_FAILED" in _causes(refused.value)
    hs = hubspot_client(settings.hubspot, None, policy=HubSpotRetryPolicy(attempts=1))
    with pytest.raises(HubSpotError) as untrusted:
        hs.request("GET", "/crm/v3/objects/contacts", query=[("limit", 1)])
    assert "CERTIFICATE_VERIFY_FAILED" in _causes(untrusted.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::", "example.com"])
def test_the_sandbox_refuses_a_non_loopback_address_unless_told(host):
    with pytest.raises(SandboxConfigError, match="loopback"):
        start_sandbox(host=host, empty=True)
