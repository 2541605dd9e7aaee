"""A completed pull ends on the CRM's clock (its horizon), so an hour later a quiet pull re-reads
nothing, and a change made after it is still found. Both connectors, on a sandbox of their own whose
clock the test moves (the session's shared sandbox keeps its clock)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import requests

from leadloop.connectors.hubspot.client import hubspot_client
from leadloop.connectors.hubspot.source import HubSpotSource
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.client import salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.settings import ConnectionSettings
from leadloop.sandbox.server import SandboxHandle, running_sandbox

MAPPING = load_mapping()


@pytest.fixture(scope="module")
def handle() -> Iterator[SandboxHandle]:
    with running_sandbox(size="tiny", seed=9) as handle:
        yield handle


def admin(handle: SandboxHandle) -> requests.Session:
    session = requests.Session()
    session.trust_env, session.verify = False, str(handle.ca_path)
    return session


def advance_an_hour(handle: SandboxHandle) -> datetime:
    http = admin(handle)
    http.post(f"{handle.admin_url}/clock", json={"advance_seconds": 3600}, timeout=30).raise_for_status()
    return datetime.fromisoformat(http.get(f"{handle.admin_url}/health", timeout=30).json()["now"])


def source_for(handle: SandboxHandle, crm: str) -> Any:
    settings = ConnectionSettings(**handle.connection)
    if crm == "salesforce":
        client = salesforce_client(settings.salesforce, settings.ca_cert, policy=RetryPolicy(attempts=2))
        return SalesforceSource(client, MAPPING.salesforce, streams=["Lead"])
    return HubSpotSource(hubspot_client(settings.hubspot, settings.ca_cert), MAPPING.hubspot,
                         streams=["contacts"])


def touch(handle: SandboxHandle, crm: str) -> str:
    """Change one person in the CRM; returns its canonical id."""
    if crm == "salesforce":
        from simple_salesforce import Salesforce

        conn = handle.connection["salesforce"]
        sf = Salesforce(instance_url=conn["instance_url"], session_id=conn["session_id"],
                        session=admin(handle),
                        version=conn.get("api_version", "59.0"))
        lead = sf.query("SELECT Id FROM Lead ORDER BY Id LIMIT 1")["records"][0]["Id"]
        sf.Lead.update(lead, {"Title": "Principal Engineer"})
        return f"sf-lead:{lead}"
    from hubspot import HubSpot

    contacts = HubSpot(access_token=handle.connection["hubspot"]["access_token"], host=handle.base_url,
                       ssl_ca_cert=str(handle.ca_path)).crm.contacts
    contact = str(contacts.basic_api.get_page(limit=1).results[0].id)
    contacts.basic_api.update(contact, {"properties": {"jobtitle": "Principal Engineer"}})
    return f"hs-contact:{contact}"


@pytest.mark.parametrize("crm", ["salesforce", "hubspot"])
def test_a_quiet_pull_ends_on_the_crms_clock_and_the_next_one_reads_only_what_changed(handle, crm):
    stream = "Lead" if crm == "salesforce" else "contacts"
    first = list(source_for(handle, crm).pull(stream, None))
    cursor = max(p.cursor for p in first if p.cursor)
    quiet_at = advance_an_hour(handle)
    quiet = list(source_for(handle, crm).pull(stream, cursor))  # re-reads the first pull's overlap
    horizon = max(p.cursor for p in quiet if p.cursor)
    assert quiet_at.timestamp() - 5 <= horizon.timestamp() <= quiet_at.timestamp()

    advance_an_hour(handle)
    nothing = list(source_for(handle, crm).pull(stream, horizon))
    assert not [r for p in nothing for r in p.records]
    changed = touch(handle, crm)
    found = list(source_for(handle, crm).pull(stream, max(p.cursor for p in nothing if p.cursor)))
    assert [r.id for p in found for r in p.records] == [changed]
