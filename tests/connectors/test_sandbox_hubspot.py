"""The sandbox's HubSpot CRM v3 driven by hubspot-api-client over HTTPS: objects, batch, search,
associations, properties, owners, errors and rate limits."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hubspot.crm.associations.v4 import AssociationSpec, BatchInputPublicFetchAssociationsBatchRequest
from hubspot.crm.contacts import (
    ApiException,
    BatchInputSimplePublicObjectBatchInput,
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate

from leadloop.sandbox.hubspot import HubSpotBackend

SandboxFixture = Any  # tests/connectors/conftest.py's fixture object


@pytest.fixture
def backend(sandbox: SandboxFixture) -> Iterator[HubSpotBackend]:
    """The sandbox's HubSpot backend with its call counters cleared, so each test starts with HubSpot's
    full burst and search allowances (the limits themselves stay enforced)."""
    found = next(b for b in sandbox.handle.core.backends if b.name == "hubspot")
    found.reset_limits()
    yield found
    found.configure_limits(burst=190, daily=650_000, search_per_second=5, enforced=True)
    found.reset_limits()


@pytest.fixture
def raw(sandbox: SandboxFixture, backend: HubSpotBackend) -> Any:
    """A requests session with the HubSpot bearer token, for wire-level checks."""
    session = requests.Session()
    session.trust_env = False
    session.verify = sandbox.ca_path
    session.headers["Authorization"] = f"Bearer {sandbox.connection['hubspot']['access_token']}"
    return session


def unique_email() -> str:
    return f"t-{uuid.uuid4().hex[:10]}@example-test.com"


def error_of(excinfo: pytest.ExceptionInfo[ApiException]) -> dict[str, Any]:
    import json

    return json.loads(excinfo.value.body)


def contact_with_company(backend: HubSpotBackend) -> tuple[str, str]:
    store = backend.store
    for (from_type, to_type), by_from in store.associations.items():
        if (from_type, to_type) == ("contacts", "companies"):
            for contact_id, targets in by_from.items():
                for company_id, types in targets.items():
                    if 1 in types:
                        return str(contact_id), str(company_id)
    raise AssertionError("the tiny world has no contact with a primary company")


# ---- list, read, write -----------------------------------------------------------------------------


def test_get_all_pages_through_every_live_contact(hs: Any, backend: HubSpotBackend) -> None:
    live = {str(r.id) for r in backend.store.table("contacts").records.values() if not r.archived}
    pulled = hs.crm.contacts.get_all(properties=["email", "lifecyclestage"])
    assert {c.id for c in pulled} == live
    assert all(set(c.properties) >= {"email", "lifecyclestage"} for c in pulled)


def test_list_pages_follow_the_after_cursor_without_overlap(hs: Any, backend: HubSpotBackend) -> None:
    first = hs.crm.contacts.basic_api.get_page(limit=10)
    second = hs.crm.contacts.basic_api.get_page(limit=10, after=first.paging.next.after)
    assert len(first.results) == 10
    assert not {c.id for c in first.results} & {c.id for c in second.results}
    assert int(second.results[0].id) > int(first.results[-1].id)


def test_list_limit_above_100_is_a_validation_error(hs: Any, backend: HubSpotBackend) -> None:
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.get_page(limit=101)
    assert excinfo.value.status == 400
    assert error_of(excinfo)["category"] == "VALIDATION_ERROR"


def test_properties_query_accepts_the_repeated_and_the_comma_form(raw: Any, sandbox: SandboxFixture) -> None:
    url = f"{sandbox.base_url}/crm/v3/objects/contacts"
    repeated = raw.get(
        url, params=[("properties", "email"), ("properties", "jobtitle"), ("limit", "3")]
    ).json()
    comma = raw.get(url, params={"properties": "email,jobtitle", "limit": "3"}).json()
    assert repeated == comma
    assert set(repeated["results"][0]["properties"]) == {"email", "jobtitle"}


def test_property_values_are_strings_or_null(raw: Any, sandbox: SandboxFixture) -> None:
    body = raw.get(
        f"{sandbox.base_url}/crm/v3/objects/companies",
        params={"properties": "numberofemployees,annualrevenue,name", "limit": "20"},
    ).json()
    values = [v for r in body["results"] for v in r["properties"].values()]
    assert values and all(v is None or isinstance(v, str) for v in values)


def test_a_contact_is_readable_by_email_with_id_property(hs: Any, backend: HubSpotBackend) -> None:
    email = unique_email()
    created = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email}))
    found = hs.crm.contacts.basic_api.get_by_id(email.upper(), id_property="email")
    assert found.id == created.id


def test_writes_maintain_hs_object_id_createdate_and_lastmodifieddate(
    hs: Any, sandbox: SandboxFixture, backend: HubSpotBackend
) -> None:
    created = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email(), "jobtitle": "Process engineer"})
    )
    assert created.properties["hs_object_id"] == created.id
    assert created.properties["createdate"] == created.properties["lastmodifieddate"]
    sandbox.admin_post("clock", {"advance_seconds": 120})
    try:
        updated = hs.crm.contacts.basic_api.update(
            created.id, SimplePublicObjectInput(properties={"jobtitle": "Test engineer"})
        )
    finally:
        sandbox.admin_post("clock", {})
    assert updated.properties["jobtitle"] == "Test engineer"
    assert updated.properties["lastmodifieddate"] > created.properties["lastmodifieddate"]
    assert updated.updated_at > created.updated_at
    assert updated.properties["createdate"] == created.properties["createdate"]


def test_delete_archives_the_record(hs: Any, backend: HubSpotBackend) -> None:
    created = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email()})
    )
    hs.crm.contacts.basic_api.archive(created.id)
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.get_by_id(created.id)
    assert excinfo.value.status == 404
    assert error_of(excinfo)["category"] == "OBJECT_NOT_FOUND"
    assert hs.crm.contacts.basic_api.get_by_id(created.id, archived=True).archived is True


def test_unknown_property_in_a_write_is_a_validation_error(hs: Any, backend: HubSpotBackend) -> None:
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"favourite_colour": "red"})
        )
    body = error_of(excinfo)
    assert excinfo.value.status == 400
    assert body["category"] == "VALIDATION_ERROR"
    assert "PROPERTY_DOESNT_EXIST" in body["message"]


def test_a_malformed_email_is_invalid_email(hs: Any, backend: HubSpotBackend) -> None:
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": "jsato@@summit.ch"})
        )
    assert "INVALID_EMAIL" in error_of(excinfo)["message"]


def test_an_enumeration_outside_its_options_is_invalid_option(hs: Any, backend: HubSpotBackend) -> None:
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": unique_email(), "lifecyclestage": "hot"})
        )
    assert "INVALID_OPTION" in error_of(excinfo)["message"]


def test_unknown_object_type_is_a_400_in_hubspots_format(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.objects import ApiException as ObjectsApiException

    with pytest.raises(ObjectsApiException) as excinfo:
        hs.crm.objects.basic_api.get_page("widgets")
    body = error_of(excinfo)
    assert excinfo.value.status == 400
    assert body["status"] == "error" and body["message"] == "Unable to infer object type from: widgets"


def test_object_type_ids_work_in_the_path(raw: Any, sandbox: SandboxFixture) -> None:
    by_id = raw.get(f"{sandbox.base_url}/crm/v3/objects/0-2", params={"limit": "5"}).json()
    by_name = raw.get(f"{sandbox.base_url}/crm/v3/objects/companies", params={"limit": "5"}).json()
    assert [r["id"] for r in by_id["results"]] == [r["id"] for r in by_name["results"]]


def test_a_wrong_token_gets_hubspots_401(sandbox: SandboxFixture) -> None:
    from hubspot import HubSpot

    stranger = HubSpot(access_token="pat-na1-wrong", host=sandbox.base_url, ssl_ca_cert=sandbox.ca_path)
    with pytest.raises(ApiException) as excinfo:
        stranger.crm.contacts.basic_api.get_page()
    assert excinfo.value.status == 401
    assert error_of(excinfo)["category"] == "INVALID_AUTHENTICATION"


def test_a_malformed_body_is_a_400_not_a_500(raw: Any, sandbox: SandboxFixture) -> None:
    response = raw.post(
        f"{sandbox.base_url}/crm/v3/objects/contacts/batch/update",
        data=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["category"] == "VALIDATION_ERROR"


# ---- batch ----------------------------------------------------------------------------------------


def test_batch_read_reports_missing_ids_in_a_207(hs: Any, backend: HubSpotBackend) -> None:
    existing = hs.crm.contacts.basic_api.get_page(limit=2).results
    response = hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": existing[0].id}, {"id": existing[1].id}, {"id": "999999999"}],
            properties=["email"],
            properties_with_history=[],
        )
    )
    assert {r.id for r in response.results} == {existing[0].id, existing[1].id}
    assert response.num_errors == 1
    assert response.errors[0].category == "OBJECT_NOT_FOUND"
    assert response.errors[0].context == {"ids": ["999999999"]}


def test_records_read_and_written_are_counted_by_endpoint(
    hs: Any, sandbox: SandboxFixture, backend: HubSpotBackend
) -> None:
    def counts() -> tuple[int, int]:
        stats = sandbox.admin_get("stats")
        read = stats["records_read"].get("hubspot", {}).get("POST /crm/v3/objects/contacts/batch/read", 0)
        written = (
            stats["records_written"].get("hubspot", {}).get("POST /crm/v3/objects/contacts/batch/update", 0)
        )
        return read, written

    ids = [c.id for c in hs.crm.contacts.basic_api.get_page(limit=3).results]
    read_before, written_before = counts()
    hs.crm.contacts.batch_api.read(
        BatchReadInputSimplePublicObjectId(
            inputs=[{"id": i} for i in ids], properties=[], properties_with_history=[]
        )
    )
    hs.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(inputs=[{"id": ids[0], "properties": {"jobtitle": "Buyer"}}])
    )
    assert counts() == (read_before + 3, written_before + 1)


def test_batch_update_rejects_the_faulted_record_with_207_and_writes_the_rest(
    hs: Any, sandbox: SandboxFixture, backend: HubSpotBackend
) -> None:
    ids = [
        hs.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": unique_email()})
        ).id
        for _ in range(3)
    ]
    sandbox.admin_post(
        "faults",
        {
            "crm": "hubspot",
            "reject": [
                {"object": "contacts", "id": ids[1], "message": "Job title is locked for this record"}
            ],
        },
    )
    response = hs.crm.contacts.batch_api.update(
        BatchInputSimplePublicObjectBatchInput(
            inputs=[{"id": i, "properties": {"jobtitle": "Quality manager"}} for i in ids]
        )
    )
    assert response.num_errors == 1
    error = response.errors[0]
    assert error.category == "VALIDATION_ERROR" and error.message == "Job title is locked for this record"
    assert error.context["ids"] == [ids[1]]
    assert {r.id for r in response.results} == {ids[0], ids[2]}
    assert backend.record("contacts", ids[1]).props.get("jobtitle") is None
    assert backend.record("contacts", ids[2]).props["jobtitle"] == "Quality manager"


def test_batch_upsert_by_email_updates_known_and_creates_new_contacts(
    hs: Any, backend: HubSpotBackend
) -> None:
    known = unique_email()
    hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": known}))
    fresh = unique_email()
    response = hs.crm.contacts.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                {"id": known, "idProperty": "email", "properties": {"jobtitle": "CTO"}},
                {"id": fresh, "idProperty": "email", "properties": {"jobtitle": "Buyer"}},
            ]
        )
    )
    by_email = {r.properties["email"]: r for r in response.results}
    assert by_email[known].new is False and by_email[fresh].new is True
    assert by_email[known].properties["jobtitle"] == "CTO"


def test_batch_create_of_an_existing_email_is_a_409_conflict(hs: Any, backend: HubSpotBackend) -> None:
    email = unique_email()
    first = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email}))
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(
                inputs=[{"properties": {"email": unique_email()}}, {"properties": {"email": email}}]
            )
        )
    body = error_of(excinfo)
    assert excinfo.value.status == 409
    assert (
        body["category"] == "CONFLICT"
        and body["message"] == f"Contact already exists. Existing ID: {first.id}"
    )


def test_a_batch_of_more_than_100_inputs_is_a_400(hs: Any, backend: HubSpotBackend) -> None:
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.batch_api.update(
            BatchInputSimplePublicObjectBatchInput(
                inputs=[{"id": str(i), "properties": {"jobtitle": "x"}} for i in range(101)]
            )
        )
    assert excinfo.value.status == 400
    assert error_of(excinfo)["category"] == "VALIDATION_ERROR"


def test_batch_archive_answers_204_and_archives(hs: Any, backend: HubSpotBackend) -> None:
    created = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email()})
    )
    hs.crm.contacts.batch_api.archive({"inputs": [{"id": created.id}]})
    assert backend.record("contacts", created.id) is None


# ---- search ---------------------------------------------------------------------------------------


def search(hs: Any, **body: Any) -> Any:
    return hs.crm.contacts.search_api.do_search(PublicObjectSearchRequest(**body))


def test_search_ands_filters_within_a_group_and_ors_groups(hs: Any, backend: HubSpotBackend) -> None:
    tag = uuid.uuid4().hex[:8]
    for title, country in (("Design engineer", "Germany"), ("Design engineer", "Japan"), ("Buyer", "Japan")):
        hs.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={
                    "email": f"{tag}-{title[:3]}-{country}@search-test.com",
                    "jobtitle": title,
                    "country": country,
                    "company": tag,
                }
            )
        )
    same_tag = {"propertyName": "company", "operator": "EQ", "value": tag}
    design_in_japan = search(
        hs,
        filter_groups=[
            {
                "filters": [
                    same_tag,
                    {"propertyName": "jobtitle", "operator": "CONTAINS_TOKEN", "value": "design"},
                    {"propertyName": "country", "operator": "IN", "values": ["japan"]},
                ]
            }
        ],
        properties=["email"],
    )
    assert design_in_japan.total == 1
    either = search(
        hs,
        filter_groups=[
            {"filters": [same_tag, {"propertyName": "country", "operator": "EQ", "value": "Germany"}]},
            {"filters": [same_tag, {"propertyName": "jobtitle", "operator": "EQ", "value": "Buyer"}]},
        ],
    )
    assert either.total == 2


def test_search_compares_datetimes_given_as_epoch_ms_or_iso(hs: Any, backend: HubSpotBackend) -> None:
    records = backend.store.table("contacts").records.values()
    middle = sorted(r.props["createdate"] for r in records if not r.archived)[len(records) // 2]
    from leadloop.sandbox.hubspot.store import parse_datetime_ms

    as_ms = str(parse_datetime_ms(middle))
    by_ms = search(
        hs,
        filter_groups=[{"filters": [{"propertyName": "createdate", "operator": "GTE", "value": as_ms}]}],
        limit=200,
    )
    by_iso = search(
        hs,
        filter_groups=[{"filters": [{"propertyName": "createdate", "operator": "GTE", "value": middle}]}],
        limit=200,
    )
    assert by_ms.total == by_iso.total > 0
    assert all(r.properties["createdate"] >= middle for r in by_ms.results)


def test_search_sorts_descending_in_the_string_form_and_pages_by_offset(
    hs: Any, backend: HubSpotBackend
) -> None:
    first = search(hs, sorts=["-createdate"], limit=5, properties=["createdate"])
    second = search(
        hs, sorts=["-createdate"], limit=5, after=first.paging.next.after, properties=["createdate"]
    )
    dates = [r.properties["createdate"] for r in first.results + second.results]
    assert dates == sorted(dates, reverse=True)
    assert first.paging.next.after == "5"


def test_search_sees_a_write_made_between_two_identical_queries(hs: Any, backend: HubSpotBackend) -> None:
    query = {
        "filter_groups": [
            {"filters": [{"propertyName": "jobtitle", "operator": "EQ", "value": "Metrologist"}]}
        ]
    }
    before = search(hs, **query).total
    hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email(), "jobtitle": "Metrologist"})
    )
    assert search(hs, **query).total == before + 1


def test_search_finds_activities_by_their_associated_contact(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput

    contact, other = (
        hs.crm.contacts.basic_api.create(
            SimplePublicObjectInputForCreate(properties={"email": unique_email()})
        )
        for _ in range(2)
    )

    def call_with(contact_id: str) -> str:
        link = {
            "to": {"id": contact_id},
            "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 194}],
        }
        return hs.crm.objects.basic_api.create(
            "calls",
            ObjectInput(
                properties={"hs_timestamp": "2025-05-01T10:00:00Z", "hs_call_title": "Intro"},
                associations=[link],
            ),
        ).id

    mine = {call_with(contact.id), call_with(contact.id)}
    call_with(other.id)
    found = hs.crm.objects.search_api.do_search(
        "calls",
        PublicObjectSearchRequest(
            filter_groups=[
                {"filters": [{"propertyName": "associations.contact", "operator": "EQ", "value": contact.id}]}
            ],
            limit=100,
        ),
    )
    assert {r.id for r in found.results} == mine


def test_search_limit_above_200_is_a_400(hs: Any, backend: HubSpotBackend) -> None:
    with pytest.raises(ApiException) as excinfo:
        search(hs, limit=201)
    assert excinfo.value.status == 400


def test_search_stops_at_10000_results(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.objects import ApiException as ObjectsApiException

    tag = f"cap-{uuid.uuid4().hex[:8]}"
    ids = backend.bulk_insert(
        "notes", [{"hs_note_body": f"{tag} note {i}", "hs_timestamp": None} for i in range(10_050)]
    )
    try:
        body = {
            "filter_groups": [
                {"filters": [{"propertyName": "hs_note_body", "operator": "CONTAINS_TOKEN", "value": tag}]}
            ],
            "limit": 200,
        }
        last = hs.crm.objects.search_api.do_search("notes", PublicObjectSearchRequest(after="9800", **body))
        assert last.total == 10_050
        assert len(last.results) == 200
        assert last.paging.next.after == "10000"
        with pytest.raises(ObjectsApiException) as excinfo:
            hs.crm.objects.search_api.do_search("notes", PublicObjectSearchRequest(after="10000", **body))
        assert excinfo.value.status == 400
        assert error_of(excinfo)["category"] == "VALIDATION_ERROR"
    finally:
        backend.purge("notes", ids)


def test_search_does_not_see_writes_younger_than_the_search_lag(
    hs: Any, sandbox: SandboxFixture, backend: HubSpotBackend
) -> None:
    sandbox.admin_post("faults", {"crm": "hubspot", "search_lag_seconds": 30})
    email = unique_email()
    hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email}))
    by_email = [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]
    assert search(hs, filter_groups=by_email).total == 0
    sandbox.admin_post("clock", {"advance_seconds": 31})
    try:
        assert search(hs, filter_groups=by_email).total == 1
    finally:
        sandbox.admin_post("clock", {})


def test_search_has_its_own_limit_of_five_requests_a_second(hs: Any, backend: HubSpotBackend) -> None:
    statuses = []
    for _ in range(7):
        try:
            search(hs, limit=1)
            statuses.append(200)
        except ApiException as error:
            statuses.append(error.status)
            body = error.body
    assert statuses.count(200) == 5 and statuses[-1] == 429
    assert '"policyName":"SECONDLY"' in body and '"errorType":"RATE_LIMIT"' in body


def test_too_many_filters_is_a_400(hs: Any, backend: HubSpotBackend) -> None:
    filters = [{"propertyName": "email", "operator": "HAS_PROPERTY"}] * 11
    with pytest.raises(ApiException) as excinfo:
        search(hs, filter_groups=[{"filters": filters}])
    assert excinfo.value.status == 400


# ---- rate limits ----------------------------------------------------------------------------------


def test_every_response_carries_the_rate_limit_headers(hs: Any, backend: HubSpotBackend) -> None:
    _, status, headers = hs.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    _, _, later = hs.crm.contacts.basic_api.get_page_with_http_info(limit=1)
    assert status == 200
    assert headers["X-HubSpot-RateLimit-Max"] == "190"
    assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
    assert int(later["X-HubSpot-RateLimit-Remaining"]) == int(headers["X-HubSpot-RateLimit-Remaining"]) - 1
    assert int(later["X-HubSpot-RateLimit-Daily-Remaining"]) < int(
        headers["X-HubSpot-RateLimit-Daily-Remaining"]
    )


def test_the_ten_second_burst_limit_answers_429_naming_its_policy(hs: Any, backend: HubSpotBackend) -> None:
    backend.configure_limits(burst=3)
    for _ in range(3):
        hs.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.get_page(limit=1)
    body = error_of(excinfo)
    assert excinfo.value.status == 429
    assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
    assert body["message"] == "You have reached your ten_secondly_rolling limit."
    assert excinfo.value.headers["X-HubSpot-RateLimit-Remaining"] == "0"


def test_the_daily_limit_answers_429_daily(hs: Any, backend: HubSpotBackend) -> None:
    backend.configure_limits(daily=2)
    hs.crm.contacts.basic_api.get_page(limit=1)
    hs.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(ApiException) as excinfo:
        hs.crm.contacts.basic_api.get_page(limit=1)
    assert error_of(excinfo)["policyName"] == "DAILY"


def test_rate_limits_can_be_switched_off(hs: Any, backend: HubSpotBackend) -> None:
    backend.configure_limits(burst=1, enforced=False)
    for _ in range(3):
        hs.crm.contacts.basic_api.get_page(limit=1)


def test_the_burst_window_rolls_on(hs: Any, sandbox: SandboxFixture, backend: HubSpotBackend) -> None:
    backend.configure_limits(burst=2)
    hs.crm.contacts.basic_api.get_page(limit=1)
    hs.crm.contacts.basic_api.get_page(limit=1)
    sandbox.admin_post("clock", {"advance_seconds": 11})
    try:
        hs.crm.contacts.basic_api.get_page(limit=1)
    finally:
        sandbox.admin_post("clock", {})


# ---- associations ---------------------------------------------------------------------------------


def test_v4_associations_carry_the_primary_and_unlabeled_types(hs: Any, backend: HubSpotBackend) -> None:
    contact_id, company_id = contact_with_company(backend)
    page = hs.crm.associations.v4.basic_api.get_page("contacts", contact_id, "companies")
    found = {r.to_object_id: {(t.type_id, t.label) for t in r.association_types} for r in page.results}
    assert found[company_id] == {(1, "Primary"), (279, None)}
    back = hs.crm.associations.v4.basic_api.get_page("companies", company_id, "contacts")
    assert contact_id in {r.to_object_id for r in back.results}


def test_v4_batch_read_returns_each_input_and_flags_ones_without_associations(
    hs: Any, backend: HubSpotBackend
) -> None:
    contact_id, company_id = contact_with_company(backend)
    loner = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email()})
    )
    response = hs.crm.associations.v4.batch_api.get_page(
        "contacts",
        "companies",
        BatchInputPublicFetchAssociationsBatchRequest(inputs=[{"id": contact_id}, {"id": loner.id}]),
    )
    assert [r._from.id for r in response.results] == [contact_id]
    assert company_id in {t.to_object_id for t in response.results[0].to}
    assert response.num_errors == 1


def test_v3_list_includes_requested_associations(
    raw: Any, sandbox: SandboxFixture, backend: HubSpotBackend
) -> None:
    contact_id, company_id = contact_with_company(backend)
    body = raw.get(
        f"{sandbox.base_url}/crm/v3/objects/contacts/{contact_id}", params={"associations": "companies"}
    ).json()
    types = {(a["id"], a["type"]) for a in body["associations"]["companies"]["results"]}
    assert types == {(company_id, "contact_to_company"), (company_id, "contact_to_company_unlabeled")}


def test_default_and_labelled_associations_can_be_created(hs: Any, backend: HubSpotBackend) -> None:
    contact = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email()})
    )
    _, company_id = contact_with_company(backend)
    hs.crm.associations.v4.basic_api.create_default("contacts", contact.id, "companies", company_id)
    labelled = hs.crm.associations.v4.basic_api.create(
        "contacts",
        contact.id,
        "companies",
        company_id,
        [AssociationSpec(association_category="HUBSPOT_DEFINED", association_type_id=1)],
    )
    assert labelled.labels == ["Primary"]
    page = hs.crm.associations.v4.basic_api.get_page("contacts", contact.id, "companies")
    assert {t.type_id for t in page.results[0].association_types} == {1, 279}


def test_a_task_is_created_with_its_contact_and_company_associations(
    hs: Any, backend: HubSpotBackend
) -> None:
    from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput

    contact_id, company_id = contact_with_company(backend)
    owner = hs.crm.owners.owners_api.get_page(limit=1).results[0].id
    task = hs.crm.objects.basic_api.create(
        "tasks",
        ObjectInput(
            properties={
                "hs_timestamp": "2025-03-01T15:00:00.000Z",
                "hs_task_subject": "Follow up: high fit score",
                "hs_task_body": "Score 87",
                "hs_task_status": "NOT_STARTED",
                "hs_task_priority": "HIGH",
                "hs_task_type": "TODO",
                "hubspot_owner_id": owner,
            },
            associations=[
                {
                    "to": {"id": contact_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 204}],
                },
                {
                    "to": {"id": company_id},
                    "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 192}],
                },
            ],
        ),
    )
    assert task.properties["hs_task_subject"] == "Follow up: high fit score"
    from_contact = hs.crm.associations.v4.basic_api.get_page("contacts", contact_id, "tasks")
    assert task.id in {r.to_object_id for r in from_contact.results}
    from_company = hs.crm.associations.v4.basic_api.get_page("companies", company_id, "tasks")
    assert task.id in {r.to_object_id for r in from_company.results}


def test_tasks_upsert_idempotently_on_a_unique_custom_property(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputUpsert as UpsertInput

    key = f"task_key_{uuid.uuid4().hex[:6]}"
    hs.crm.properties.core_api.create(
        "tasks",
        PropertyCreate(
            name=key,
            label="Task key",
            type="string",
            field_type="text",
            group_name="task",
            has_unique_value=True,
        ),
    )
    task = {
        "id": "lead-42:follow-up",
        "idProperty": key,
        "properties": {"hs_timestamp": "2025-03-01T15:00:00Z", "hs_task_subject": "Call back"},
    }
    first = hs.crm.objects.batch_api.upsert("tasks", UpsertInput(inputs=[task]))
    task["properties"]["hs_task_subject"] = "Call back today"
    second = hs.crm.objects.batch_api.upsert("tasks", UpsertInput(inputs=[task]))
    assert first.results[0].new is True and second.results[0].new is False
    assert first.results[0].id == second.results[0].id
    assert backend.record("tasks", first.results[0].id).props["hs_task_subject"] == "Call back today"


def test_a_task_without_its_timestamp_is_a_400(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.objects import ApiException as ObjectsApiException
    from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput

    with pytest.raises(ObjectsApiException) as excinfo:
        hs.crm.objects.basic_api.create("tasks", ObjectInput(properties={"hs_task_subject": "No time"}))
    assert excinfo.value.status == 400
    assert "hs_timestamp" in error_of(excinfo)["message"]


def test_an_association_type_from_the_wrong_object_is_a_400(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.objects import ApiException as ObjectsApiException
    from hubspot.crm.objects import SimplePublicObjectInputForCreate as ObjectInput

    contact_id, _ = contact_with_company(backend)
    with pytest.raises(ObjectsApiException) as excinfo:
        hs.crm.objects.basic_api.create(
            "tasks",
            ObjectInput(
                properties={"hs_timestamp": "2025-03-01T15:00:00Z"},
                associations=[
                    {
                        "to": {"id": contact_id},
                        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 279}],
                    }
                ],
            ),
        )
    assert excinfo.value.status == 400


# ---- properties and owners ------------------------------------------------------------------------


def test_a_created_property_is_writable_and_a_second_create_is_409(hs: Any, backend: HubSpotBackend) -> None:
    from hubspot.crm.properties import ApiException as PropertiesApiException

    suffix = uuid.uuid4().hex[:6]
    group = f"scoring_{suffix}"
    hs.crm.properties.groups_api.create("contacts", PropertyGroupCreate(name=group, label="Scoring"))
    created = hs.crm.properties.core_api.create(
        "contacts",
        PropertyCreate(
            name=f"fit_score_{suffix}",
            label="Fit score",
            type="number",
            field_type="number",
            group_name=group,
        ),
    )
    assert created.name == f"fit_score_{suffix}" and created.hubspot_defined is False
    with pytest.raises(PropertiesApiException) as excinfo:
        hs.crm.properties.core_api.create(
            "contacts",
            PropertyCreate(
                name=f"fit_score_{suffix}",
                label="Fit score",
                type="number",
                field_type="number",
                group_name=group,
            ),
        )
    assert excinfo.value.status == 409
    assert error_of(excinfo)["category"] == "OBJECT_ALREADY_EXISTS"
    with pytest.raises(PropertiesApiException) as excinfo:
        hs.crm.properties.groups_api.create("contacts", PropertyGroupCreate(name=group, label="Scoring"))
    assert excinfo.value.status == 409
    contact = hs.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": unique_email(), f"fit_score_{suffix}": 87})
    )
    assert contact.properties[f"fit_score_{suffix}"] == "87"


def test_standard_properties_are_described(hs: Any, backend: HubSpotBackend) -> None:
    names = {p.name: p for p in hs.crm.properties.core_api.get_all("contacts").results}
    assert {"email", "lifecyclestage", "hs_lead_status", "hs_email_optout", "lastmodifieddate"} <= set(names)
    assert "marketingqualifiedlead" in {o.value for o in names["lifecyclestage"].options}
    assert hs.crm.properties.core_api.get_by_name("companies", "hs_lastmodifieddate").type == "datetime"


def test_the_owner_property_offers_the_active_owners(hs: Any, backend: HubSpotBackend) -> None:
    owner = hs.crm.properties.core_api.get_by_name("contacts", "hubspot_owner_id")
    active = {o["id"] for o in backend.store.owners.values() if not o["archived"]}
    assert {o.value for o in owner.options} == active


def test_an_unknown_path_is_a_404_in_hubspots_format(raw: Any, sandbox: SandboxFixture) -> None:
    response = raw.get(f"{sandbox.base_url}/crm/v3/nothing/here/at/all")
    assert response.status_code == 404
    assert response.json()["status"] == "error" and response.json()["category"] == "OBJECT_NOT_FOUND"


def test_the_deal_pipeline_names_its_closed_stages(hs: Any, backend: HubSpotBackend) -> None:
    pipeline = hs.crm.pipelines.pipelines_api.get_all("deals").results[0]
    closed = {s.id for s in pipeline.stages if s.metadata["isClosed"] == "true"}
    assert pipeline.id == "default" and closed == {"closedwon", "closedlost"}
    stages = {r.props.get("dealstage") for r in backend.store.table("deals").records.values()}
    assert stages <= {s.id for s in pipeline.stages}


def test_owners_page_and_read_by_id(hs: Any, backend: HubSpotBackend) -> None:
    owners = hs.crm.owners.owners_api.get_page(limit=2)
    assert len(owners.results) == 2 and owners.paging.next.after
    one = hs.crm.owners.owners_api.get_by_id(owners.results[0].id)
    assert one.email == owners.results[0].email
    assert all(o.id in backend.store.owners for o in owners.results)


# ---- persistence ----------------------------------------------------------------------------------


def test_a_snapshot_restores_the_same_portal_after_a_json_round_trip() -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    import orjson

    from leadloop.sandbox.world import generate_world

    ctx = SimpleNamespace(
        now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        base_url="https://127.0.0.1:1",
        faults=None,
        stats=None,
        sessions=None,
    )
    original = HubSpotBackend(ctx)
    original.load_world(generate_world("tiny", 3))
    data = orjson.loads(orjson.dumps(original.snapshot(), option=orjson.OPT_NON_STR_KEYS))
    copy = HubSpotBackend(ctx)
    copy.restore(data)
    for name, table in original.store.tables.items():
        restored = copy.store.tables[name]
        props = {i: r.props for i, r in restored.records.items()}
        assert {i: r.props for i, r in table.records.items()} == props
    assert copy.store.associations == original.store.associations
    assert [list(r) for r in copy.store.web_events] == [list(r) for r in original.store.web_events]
    assert copy.store.next_id == original.store.next_id


# ---- the same people in both CRMs -----------------------------------------------------------------


def test_salesforce_cross_ids_name_the_same_people_and_accounts(sf: Any, backend: HubSpotBackend) -> None:
    contacts = [r.props for r in backend.store.table("contacts").records.values()]
    synced = [
        p for p in contacts if p.get("email") and (p.get("salesforcecontactid") or p.get("salesforceleadid"))
    ]
    assert synced, "the tiny world has people in both CRMs"
    for props in synced:
        email = (props.get("email") or "").lower()
        if props.get("salesforcecontactid"):
            assert (sf.Contact.get(props["salesforcecontactid"])["Email"] or "").lower() == email
        if props.get("salesforceleadid"):
            assert (sf.Lead.get(props["salesforceleadid"])["Email"] or "").lower() == email
    companies = [r.props for r in backend.store.table("companies").records.values()]
    for props in [p for p in companies if p.get("salesforceaccountid")][:5]:
        assert sf.Account.get(props["salesforceaccountid"])["Name"] == props["name"]
