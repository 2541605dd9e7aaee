"""Transport faults and call statistics as the official clients see them on the real backends."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from hubspot.crm.contacts.exceptions import ApiException
from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceGeneralError


def test_an_expired_session_reaches_both_clients_as_their_401_and_clears(sandbox: Any, sf: Any, hs: Any
                                                                          ) -> None:
    sandbox.admin_post("faults", {"session_expire_after": 1})
    sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Lead LIMIT 1")
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.basic_api.get_page(limit=1)
        hs.crm.contacts.basic_api.get_page(limit=1)
    assert error.value.status == 401
    sandbox.reset_faults()
    assert sf.query("SELECT Id FROM Lead LIMIT 1")["totalSize"] == 1
    assert len(hs.crm.contacts.basic_api.get_page(limit=1).results) == 1


def test_a_5xx_reaches_simple_salesforce_as_a_general_error(sandbox: Any, sf: Any) -> None:
    sandbox.admin_post("faults", {"crm": "salesforce", "error_5xx_ratio": 1.0, "error_5xx_status": 503})
    with pytest.raises(SalesforceGeneralError) as error:
        sf.query("SELECT Id FROM Lead LIMIT 1")
    assert error.value.status == 503


def test_a_429_reaches_the_hubspot_client_with_retry_after(sandbox: Any, hs: Any) -> None:
    sandbox.admin_post("faults", {"crm": "hubspot", "endpoint": "/crm/v3/objects/contacts",
                                  "status_429_every": 1, "retry_after": 1})
    with pytest.raises(ApiException) as error:
        hs.crm.contacts.basic_api.get_page(limit=1)
    assert error.value.status == 429 and error.value.headers["Retry-After"] == "1"
    assert len(hs.crm.companies.basic_api.get_page(limit=1).results) == 1  # other endpoints unaffected


def test_a_dropped_connection_reaches_simple_salesforce_as_a_connection_error(sandbox: Any, sf: Any) -> None:
    sandbox.admin_post("faults", {"crm": "salesforce", "drop_connection_every": 1})
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        sf.query("SELECT Id FROM Lead LIMIT 1")


def test_stats_name_the_routes_the_clients_called(sandbox: Any, sf: Any, hs: Any) -> None:
    sandbox.admin_post("stats/reset")
    sf.query_all("SELECT Id, Email FROM Lead")
    hs.crm.contacts.basic_api.get_page(limit=10)
    stats = sandbox.admin_get("stats")
    sf_endpoints = stats["by_endpoint"]["salesforce"]
    assert any(name.startswith("GET /services/data/vXX.X/query") for name in sf_endpoints)
    assert stats["by_method"]["hubspot"] == {"GET": 1}
    assert stats["records_read_total"]["salesforce"] >= 1 and stats["records_read_total"]["hubspot"] == 10


def test_records_written_through_both_clients_survive_a_restart_with_a_data_dir(tmp_path: Any) -> None:
    from hubspot import HubSpot
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate
    from simple_salesforce import Salesforce

    from leadloop.sandbox.server import running_sandbox

    def clients(handle: Any) -> tuple[Any, Any]:
        session = requests.Session()
        session.trust_env = False
        session.verify = str(handle.ca_path)
        sf_conn, hs_conn = handle.connection["salesforce"], handle.connection["hubspot"]
        return (Salesforce(instance_url=sf_conn["instance_url"], session_id=sf_conn["session_id"],
                           session=session, version="59.0"),
                HubSpot(access_token=hs_conn["access_token"], host=hs_conn["host"],
                        ssl_ca_cert=str(handle.ca_path)))

    with running_sandbox(size="tiny", seed=2, data_dir=tmp_path) as first:
        sf, hs = clients(first)
        lead = {"LastName": "Ohm", "Company": "Persist Co", "Email": "ohm@persist.example"}
        lead_id = sf.Lead.create(lead)["id"]
        contact = SimplePublicObjectInputForCreate(properties={"email": "volta@persist.example"})
        contact_id = hs.crm.contacts.basic_api.create(contact).id
        leads = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    with running_sandbox(size="tiny", seed=99, data_dir=tmp_path) as second:
        sf, hs = clients(second)
        assert sf.Lead.get(lead_id)["Email"] == "ohm@persist.example"
        assert sf.query("SELECT COUNT() FROM Lead")["totalSize"] == leads
        assert hs.crm.contacts.basic_api.get_by_id(contact_id, properties=["email"]).properties["email"] == (
            "volta@persist.example")
