"""The sandbox's HubSpot activity sources, each through its documented API, driven over HTTPS: form
submissions, web-analytics page views, marketing email events and marketing-event attendance."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from leadloop.sandbox.hubspot import HubSpotBackend
from leadloop.sandbox.hubspot.store import iso_ms


@pytest.fixture
def backend(sandbox: Any) -> Iterator[HubSpotBackend]:
    found = next(b for b in sandbox.handle.core.backends if b.name == "hubspot")
    found.reset_limits()
    yield found
    found.reset_limits()


@pytest.fixture
def raw(sandbox: Any, backend: HubSpotBackend) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_path
    session.headers["Authorization"] = f"Bearer {sandbox.connection['hubspot']['access_token']}"
    return session


def busiest_form(backend: HubSpotBackend) -> str:
    return max(backend.store.submissions, key=lambda guid: len(backend.store.submissions[guid]))


# ---- forms ----------------------------------------------------------------------------------------


def test_forms_are_listed_by_the_marketing_forms_api(hs: Any, backend: HubSpotBackend) -> None:
    listed = hs.marketing.forms.forms_api.get_page(limit=100)
    assert {f.id for f in listed.results} == set(backend.store.forms)
    assert all(f.name for f in listed.results)


def test_form_submissions_come_newest_first_in_pages_of_at_most_50(
    raw: requests.Session, sandbox: Any, backend: HubSpotBackend
) -> None:
    guid = busiest_form(backend)
    url = f"{sandbox.base_url}/form-integrations/v1/submissions/forms/{guid}"
    seen, after = [], None
    while True:
        body = raw.get(url, params={"limit": 5, **({"after": after} if after else {})}).json()
        assert len(body["results"]) <= 5
        seen.extend(body["results"])
        after = (body.get("paging") or {}).get("next", {}).get("after")
        if not after:
            break
    assert len(seen) == len(backend.store.submissions[guid])
    times = [s["submittedAt"] for s in seen]
    assert times == sorted(times, reverse=True) and all(isinstance(t, int) for t in times)
    assert len({s["conversionId"] for s in seen}) == len(seen)
    assert all({"email"} <= {v["name"] for v in s["values"]} for s in seen)
    assert raw.get(url, params={"limit": 51}).status_code == 400


def test_submissions_of_an_unknown_form_are_a_404(raw: requests.Session, sandbox: Any) -> None:
    response = raw.get(f"{sandbox.base_url}/form-integrations/v1/submissions/forms/no-such-form")
    assert response.status_code == 404
    assert response.json()["category"] == "OBJECT_NOT_FOUND"


# ---- page views -----------------------------------------------------------------------------------


def test_page_views_of_one_contact_after_a_time(hs: Any, backend: HubSpotBackend) -> None:
    rows = backend.store.web_events
    contact_id = rows[len(rows) // 2][1]
    mine = [r for r in rows if r[1] == contact_id]
    since = datetime.fromtimestamp(mine[0][0] / 1000, UTC)
    page = hs.events.events_api.get_page(
        object_type="contact",
        object_id=int(contact_id),
        event_type="e_visited_page",
        occurred_after=since,
        limit=100,
    )
    assert len(page.results) == len([r for r in mine if r[0] > mine[0][0]])
    assert all(e.object_id == str(contact_id) and e.occurred_at > since for e in page.results)
    times = [e.occurred_at for e in page.results]
    assert times == sorted(times, reverse=True)
    assert all(e.properties["hs_url"].startswith("http") for e in page.results)


def test_page_views_in_a_window_page_through_without_loss(
    raw: requests.Session, sandbox: Any, backend: HubSpotBackend
) -> None:
    rows = backend.store.web_events
    low, high = rows[10][0], rows[-10][0]
    expected = {r[2] for r in rows if low < r[0] < high}
    params = {
        "eventType": "e_visited_page",
        "occurredAfter": iso_ms(low),
        "occurredBefore": str(high),
        "limit": 100,
        "sort": "ASCENDING",
    }
    seen: list[dict[str, Any]] = []
    while True:
        body = raw.get(f"{sandbox.base_url}/events/v3/events/", params=params).json()
        seen.extend(body["results"])
        if not body.get("paging"):
            break
        params["after"] = body["paging"]["next"]["after"]
    assert [e["id"] for e in seen] and {e["id"] for e in seen} == expected
    assert [e["occurredAt"] for e in seen] == sorted(e["occurredAt"] for e in seen)


# ---- marketing email events -----------------------------------------------------------------------


def test_email_events_since_a_start_timestamp_page_by_offset(
    raw: requests.Session, sandbox: Any, backend: HubSpotBackend
) -> None:
    rows = backend.store.email_events
    start = rows[len(rows) // 3][0]
    expected = {r[1] for r in rows if r[0] >= start}
    params: dict[str, Any] = {"startTimestamp": start, "limit": 40}
    seen: list[dict[str, Any]] = []
    while True:
        body = raw.get(f"{sandbox.base_url}/email/public/v1/events", params=params).json()
        seen.extend(body["events"])
        if not body["hasMore"]:
            break
        params["offset"] = body["offset"]
    assert {e["id"] for e in seen} == expected
    assert all(e["created"] >= start for e in seen)
    assert {e["type"] for e in seen} <= {"OPEN", "CLICK", "STATUSCHANGE", "BOUNCE"}
    assert all(e["url"] for e in seen if e["type"] == "CLICK")


def test_email_events_filter_by_type_and_recipient(
    raw: requests.Session, sandbox: Any, backend: HubSpotBackend
) -> None:
    recipient = next(r[2] for r in backend.store.email_events if r[3] == "CLICK")
    body = raw.get(
        f"{sandbox.base_url}/email/public/v1/events", params={"eventType": "CLICK", "recipient": recipient}
    ).json()
    assert body["events"] and all(
        e["type"] == "CLICK" and e["recipient"] == recipient for e in body["events"]
    )


# ---- marketing events -----------------------------------------------------------------------------


def test_marketing_event_attendance_is_read_per_event(hs: Any, backend: HubSpotBackend) -> None:
    events = hs.marketing.events.basic_api.get_all(limit=100).results
    assert {e.object_id for e in events} == set(backend.store.marketing_events)
    busiest = max(events, key=lambda e: len(backend.store.participations[e.object_id]))
    breakdown = (
        hs.marketing.events.retrieve_participant_state_api.get_participations_breakdown_by_marketing_event_id(
            busiest.object_id, limit=100
        )
    )
    assert breakdown.total == len(backend.store.participations[busiest.object_id]) > 0
    states = {p.properties.attendance_state for p in breakdown.results}
    assert states <= {"REGISTERED", "ATTENDED"}
    first = breakdown.results[0]
    contact = backend.record("contacts", first.associations.contact.contact_id)
    assert first.associations.contact.email == contact.props.get("email")
    assert first.associations.marketing_event.marketing_event_id == busiest.object_id
    counters = (
        hs.marketing.events.retrieve_participant_state_api.get_participations_counters_by_marketing_event_id(
            busiest.object_id
        )
    )
    assert counters.attended + counters.registered == breakdown.total


def test_a_contacts_participations_are_read_by_email(hs: Any, backend: HubSpotBackend) -> None:
    store = backend.store
    contact_id = next(row[0] for rows in store.participations.values() for row in rows)
    email = store.get("contacts", contact_id).props["email"]
    expected = sum(1 for rows in store.participations.values() for row in rows if row[0] == contact_id)
    breakdown = hs.marketing.events.retrieve_participant_state_api.get_participations_breakdown_by_contact_id(
        email, limit=100
    )
    assert breakdown.total == expected
    assert all(p.associations.contact.contact_id == str(contact_id) for p in breakdown.results)
