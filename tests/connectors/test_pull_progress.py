"""A long pull says how far it has come: each page carries the rows read so far of the total the CRM
announced (a Salesforce query's `totalSize`, a HubSpot search's `total`), and the pull logs a line
every few pages or seconds, with the total where there is one and the count alone where there is
none (HubSpot's lists). Against recorded HTTP: `responses` for Salesforce, recorded answers in place
of the official HubSpot client's urllib3 pool (which `responses` does not reach)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import responses
import urllib3
from pydantic import SecretStr

from leadloop.connectors.hubspot.client import hubspot_client
from leadloop.connectors.hubspot.source import HubSpotSource
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.client import salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.settings import HubSpotSettings, SalesforceSettings
from leadloop.crm.ports import CrmSource, ReadProgress
from leadloop.store.db import open_store
from leadloop.sync import pipeline
from leadloop.sync.pipeline import ProgressLines, PullStats, Runtime, progress_line, pull_stream

MAPPING = load_mapping()
INSTANCE = "https://sf.example.test"
BASE = f"{INSTANCE}/services/data/v59.0"
HUBSPOT = "https://api.hubapi.example.test"
T1, T2, T3 = "2024-05-01T10:00:00.000+0000", "2024-05-01T10:30:00.000+0000", "2024-05-01T11:00:00.000+0000"


# -- Salesforce, through `responses` ------------------------------------------------------------------


def salesforce(**settings: Any) -> Any:
    policy = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.01, sleep=lambda _s: None)
    return salesforce_client(SalesforceSettings(instance_url=INSTANCE, session_id="00DX!secret", **settings),
                             None, policy=policy)


def lead_row(n: int, stamp: str) -> dict[str, Any]:
    return {"attributes": {"type": "Lead"}, "Id": f"00Q{n:015d}", "Email": f"p{n}@acme-semi.com",
            "LastName": f"P{n}", "Company": "Acme", "IsConverted": False, "IsDeleted": False,
            "SystemModstamp": stamp}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    """A store to pull into; a pull needs no playbook."""
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield Runtime(settings=None, playbook=None, mapping=MAPPING, store=store)  # type: ignore[arg-type]
    store.close()


def pulled(runtime: Runtime, source: CrmSource, stream: str, caplog: pytest.LogCaptureFixture,
           monkeypatch: pytest.MonkeyPatch) -> tuple[PullStats, list[str]]:
    """`pull_stream` with a progress line per page; returns its stats and leadloop.sync's lines."""
    monkeypatch.setattr(pipeline, "PAGES_PER_PROGRESS_LINE", 1)
    runtime.sources = {source.crm: source}
    with caplog.at_level(logging.INFO, logger="leadloop.sync"):
        stats = pull_stream(runtime, source.crm, stream)
    return stats, [r.getMessage() for r in caplog.records if r.name == "leadloop.sync"]


@responses.activate
def test_a_salesforce_pull_logs_how_many_of_the_querys_total_size_it_has_read(runtime, caplog, monkeypatch):
    locator = "/services/data/v59.0/queryAll/01gXX0000000001-2"
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 3, "done": False, "nextRecordsUrl": locator,
                                             "records": [lead_row(1, T1), lead_row(2, T2)]})
    responses.get(f"{INSTANCE}{locator}", json={"totalSize": 3, "done": True, "records": [lead_row(3, T3)]})

    stats, lines = pulled(runtime, SalesforceSource(salesforce(), MAPPING.salesforce), "Lead", caplog,
                          monkeypatch)

    assert lines[:2] == ["pull salesforce Lead: 2 of 3 (66%) in 1 page so far",
                         "pull salesforce Lead: 3 of 3 (100%) in 2 pages so far"]
    assert lines[2].startswith("pulled salesforce Lead: 3 records in 2 pages") and len(lines) == 3
    # the cursor is still the highest SystemModstamp seen, stored as before
    highest = datetime(2024, 5, 1, 11, tzinfo=UTC)
    assert stats.cursor == runtime.store.get_cursor("salesforce", "Lead") == highest


@responses.activate
def test_a_resumed_salesforce_query_adds_what_it_counts_to_the_rows_read_before_it():
    client = salesforce(login_url="https://login.example.test", username="ops@example.com",
                        password=SecretStr("pw"), security_token=SecretStr("tok"), consumer_key="ck")
    locator = "/services/data/v59.0/queryAll/01gOLD-2"
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 3, "done": False, "nextRecordsUrl": locator,
                                             "records": [lead_row(1, T1), lead_row(2, T2)]})
    responses.get(f"{INSTANCE}{locator}", status=401,
                  json=[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])
    responses.post("https://login.example.test/services/oauth2/token",
                   json={"access_token": "00DNEW!fresh", "instance_url": INSTANCE})
    # resumed from the cursor: the row at it is read again, then the one left
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 2, "done": True,
                                             "records": [lead_row(2, T2), lead_row(3, T3)]})

    pages = list(SalesforceSource(client, MAPPING.salesforce).pull("Lead", None))

    assert [p.progress for p in pages] == [ReadProgress(2, 3), ReadProgress(4, 4)]
    assert [r.id for p in pages for r in p.records] == [f"sf-lead:00Q{n:015d}" for n in (1, 2, 3)]


# -- HubSpot, through recorded answers in place of the official client's pool -------------------------


class RecordedHubSpot:
    """Stands in for the urllib3 pool of the official HubSpot client: each request gets the next JSON
    answer recorded for its method and path, and is kept (method, path, JSON body)."""

    def __init__(self, answers: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
        self.answers = {key: list(bodies) for key, bodies in answers.items()}
        self.requests: list[tuple[str, str, Any]] = []

    def request(self, method: str, url: str, body: Any = None, **_: Any) -> urllib3.HTTPResponse:
        path = urlparse(url).path
        self.requests.append((method, path, json.loads(body) if isinstance(body, (str, bytes)) else body))
        answer = self.answers[(method, path)].pop(0)
        return urllib3.HTTPResponse(body=json.dumps(answer).encode(), status=200, preload_content=True,
                                    headers={"Content-Type": "application/json"})

    def install(self, client: Any) -> Any:
        for api in (client.objects, client.search, client.owners, client.associations):
            api.api_client.rest_client.pool_manager = self
        return client


def hubspot(recorded: RecordedHubSpot) -> Any:
    settings = HubSpotSettings(access_token=SecretStr("pat-secret"), host=HUBSPOT)
    return recorded.install(hubspot_client(settings, None))


def contact(n: int, stamp: str) -> dict[str, Any]:
    return {"id": str(n), "archived": False, "createdAt": "2024-04-01T00:00:00.000Z", "updatedAt": stamp,
            "properties": {"hs_object_id": str(n), "email": f"c{n}@acme-semi.com", "lastname": f"C{n}",
                           "lastmodifieddate": stamp}}


SEARCH = ("POST", "/crm/v3/objects/contacts/search")
LIST = ("GET", "/crm/v3/objects/contacts")
Z1, Z2, Z3 = "2024-05-01T10:00:00.000Z", "2024-05-01T10:30:00.000Z", "2024-05-01T11:00:00.000Z"


def test_an_incremental_hubspot_pull_measures_its_windows_against_the_first_searchs_total():
    recorded = RecordedHubSpot({SEARCH: [
        {"total": 3, "results": [contact(1, Z1), contact(2, Z2)], "paging": {"next": {"after": "2"}}},
        {"total": 2, "results": [contact(2, Z2), contact(3, Z3)], "paging": {"next": {"after": "2"}}},
        {"total": 1, "results": [contact(3, Z3)]},
    ]})
    source = HubSpotSource(hubspot(recorded), MAPPING.hubspot, page_size=2, detect_archived=False)

    pages = list(source.pull("contacts", datetime(2024, 5, 1, 9, tzinfo=UTC)))

    assert [p.progress for p in pages] == [ReadProgress(2, 3), ReadProgress(3, 3)]
    assert [len(p.records) for p in pages] == [2, 1]
    assert [body["limit"] for _m, _p, body in recorded.requests] == [2, 2, 2]


def test_a_first_hubspot_pull_measures_its_list_against_what_the_newest_value_search_counted():
    recorded = RecordedHubSpot({
        SEARCH: [{"total": 3, "results": [contact(3, Z3)]},  # newest first, limit 1: counts them all
                 {"total": 1, "results": [contact(3, Z3)]}],  # the catch-up from the newest value
        LIST: [{"results": [contact(1, Z1), contact(2, Z2)], "paging": {"next": {"after": "2"}}},
               {"results": [contact(3, Z3)]}],
    })
    source = HubSpotSource(hubspot(recorded), MAPPING.hubspot, list_page_size=2)

    pages = list(source.pull("contacts", None))

    assert [p.progress for p in pages] == [ReadProgress(2, 3), ReadProgress(3, 3), ReadProgress(3, 3)]
    assert pages[-1].cursor == datetime(2024, 5, 1, 11, tzinfo=UTC)  # the catch-up ends on the newest


def test_a_hubspot_list_without_a_total_logs_the_count_alone(runtime, caplog, monkeypatch):
    owner = {"id": "64492917", "email": "rep@acme-semi.com", "firstName": "Ann", "lastName": "Rep",
             "type": "PERSON", "archived": False}
    recorded = RecordedHubSpot({("GET", "/crm/v3/owners/"): [
        {"results": [owner, {**owner, "id": "64492918", "email": "rep2@acme-semi.com"}],
         "paging": {"next": {"after": "2"}}},
        {"results": [{**owner, "id": "64492919", "email": "rep3@acme-semi.com"}]}]})
    source = HubSpotSource(hubspot(recorded), MAPPING.hubspot)

    stats, lines = pulled(runtime, source, "owners", caplog, monkeypatch)

    assert lines[:2] == ["pull hubspot owners: 2 records in 1 page so far",
                         "pull hubspot owners: 3 records in 2 pages so far"]
    assert stats.records == 3


# -- the lines and their cadence -------------------------------------------------------------------------


def test_a_progress_line_gives_the_count_of_the_total_with_thousands_separators_and_a_percentage():
    stats = PullStats("salesforce", "Contact", records=3_998, pages=2)
    assert progress_line(stats, ReadProgress(4_000, 12_345)) == (
        "pull salesforce Contact: 4,000 of 12,345 (32%) in 2 pages so far")


def test_a_count_past_the_announced_total_shows_at_most_100_percent():
    stats = PullStats("hubspot", "contacts", records=1_203, pages=7)
    past = progress_line(stats, ReadProgress(1_203, 1_200))
    assert past.endswith("1,203 of 1,200 (100%) in 7 pages so far")
    assert progress_line(stats, ReadProgress(0, 0)).endswith("0 of 0 (100%) in 7 pages so far")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(("seconds_per_page", "lines_on_pages"), [
    (1.0, [10, 20]),  # quick pages: a line every ten
    (4.0, [4, 8, 12, 16, 20, 24]),  # slow pages: a line once 15 seconds have passed
])
def test_a_pull_logs_every_ten_pages_or_sooner_when_pages_are_slow(seconds_per_page, lines_on_pages):
    clock = Clock()
    lines = ProgressLines(clock)
    due = []
    for page in range(1, 26):
        clock.now += seconds_per_page
        if lines.due(page):
            due.append(page)
    assert due == lines_on_pages
