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
