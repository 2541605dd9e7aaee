"""HubSpot payloads become canonical records; bad values are refused with a reason, never a crash."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadloop.connectors.hubspot.records import (
    BadRecord,
    RawObject,
    account_from_company,
    activities_from_engagement,
    activity_from_email_event,
    activity_from_participation,
    activity_from_submission,
    form_kind,
    opportunity_from_deal,
    person_from_contact,
    values_text,
)
from leadloop.connectors.mapping import load_mapping
from leadloop.crm.records import ActivityKind, CustomerType

READ = load_mapping().hubspot.read


def contact(**props: str | None) -> RawObject:
    base = {"email": "Jane.Doe@Acme-Semi.com", "firstname": "Jane", "jobtitle": "Director, Power Design",
            "lastmodifieddate": "2025-03-01T10:11:12.345Z", "createdate": "2024-01-17T19:55:04.281Z"}
    return RawObject("51", {**base, **props}, {})


def test_a_contact_becomes_a_person_with_hubspot_and_salesforce_ids():
    person = person_from_contact(contact(salesforcecontactid="003R000000A1BCDFXX", associatedcompanyid="9001",
                                         hs_email_optout="true"), READ["contacts"])
    assert person.id == "hs-contact:51" and person.hubspot_id == "51"
    assert person.email == "jane.doe@acme-semi.com" and person.email_domain == "acme-semi.com"
    assert person.account_id == "hs-company:9001"
    assert person.attributes["salesforcecontactid"] == "003R000000A1BCDFXX"
    assert person.unsubscribed is True and person.bounced is False
    assert person.updated_at == datetime(2025, 3, 1, 10, 11, 12, 345000, tzinfo=UTC)


def test_a_hard_bounce_reason_marks_the_person_bounced():
    raw = contact(hs_email_hard_bounce_reason_enum="UNKNOWN_USER")
    assert person_from_contact(raw, READ["contacts"]).bounced


def test_an_invalid_email_is_refused_with_a_reason():
    with pytest.raises(BadRecord, match="email"):
        person_from_contact(contact(email="not-an-email"), READ["contacts"])


def test_an_impossible_date_is_refused_with_a_reason():
    with pytest.raises(BadRecord, match="createdate"):
        person_from_contact(contact(createdate="2024-02-31T00:00:00Z"), READ["contacts"])


def test_a_company_keeps_its_salesforce_account_id_and_reads_numbers_and_type():
    raw = RawObject("9001", {"name": "Acme Semi", "domain": "www.acme-semi.com", "numberofemployees": "1500",
                             "annualrevenue": "2500000.50", "type": "RESELLER", "salesforceaccountid": "001X",
                             "hs_lastmodifieddate": "2025-03-01T00:00:00Z"}, {})
    account = account_from_company(raw, READ["companies"])
    assert account.id == "hs-company:9001" and account.domain == "acme-semi.com"
    assert account.employees == 1500 and account.annual_revenue == 2500000.5
    assert account.customer_type == CustomerType.DISTRIBUTOR
    assert account.attributes["salesforceaccountid"] == "001X"


def test_a_non_numeric_employee_count_is_refused():
    with pytest.raises(BadRecord, match="numberofemployees"):
        account_from_company(RawObject("1", {"numberofemployees": "lots"}, {}), READ["companies"])


def test_a_deal_points_at_its_company_and_contacts():
    raw = RawObject("77", {"dealname": "EVK pilot", "dealstage": "closedwon", "amount": "12000",
                           "closedate": "2025-02-01T00:00:00Z", "hs_is_closed": "true",
                           "hs_is_closed_won": "true"}, {"companies": ("9001",), "contacts": ("51", "52")})
    deal = opportunity_from_deal(raw)
    assert deal.account_id == "hs-company:9001" and deal.contact_ids == ("hs-contact:51", "hs-contact:52")
    assert deal.is_closed and deal.is_won and deal.amount == 12000


def test_a_call_with_two_contacts_is_one_activity_each():
    raw = RawObject("5", {"hs_timestamp": "2025-03-01T10:00:00Z", "hs_call_duration": "90000"},
                    {"contacts": ("52", "51")})
    first, second = activities_from_engagement(raw, "calls")
    assert (first.id, first.person_id) == ("hs-call:5", "hs-contact:51")
    assert (second.id, second.person_id) == ("hs-call:5:52", "hs-contact:52")
    assert first.kind == ActivityKind.SALES_CALL and first.duration_seconds == 90


def test_an_open_todo_task_is_no_activity():
    raw = RawObject("6", {"hs_timestamp": "2025-03-01T10:00:00Z", "hs_task_type": "TODO",
                          "hs_task_status": "NOT_STARTED"}, {"contacts": ("51",)})
    assert activities_from_engagement(raw, "tasks") == []


@pytest.mark.parametrize("name,kind", [
    ("Request a demo", ActivityKind.DEMO_REQUEST), ("Evaluation kit request", ActivityKind.EVAL_KIT_REQUEST),
    ("Sample request", ActivityKind.SAMPLE_REQUEST), ("Request a quote", ActivityKind.CONTACT_SALES),
    ("Contact sales", ActivityKind.CONTACT_SALES), ("App note download", ActivityKind.ASSET_DOWNLOAD),
    ("Reference design download", ActivityKind.ASSET_DOWNLOAD), ("Newsletter signup", ActivityKind.FORM_FILL),
    ("Webinar registration", None)])
def test_a_form_name_says_what_a_submission_means(name, kind):
    assert form_kind(name) == kind


def test_a_submission_is_an_activity_of_its_contact():
    row = {"conversionId": "f4b1", "submittedAt": 1714560000000, "pageUrl": "https://x.example/evk",
           "values": [{"name": "email", "value": "jane@acme.com"}]}
    activity = activity_from_submission(row, "Evaluation kit request", "51")
    assert activity.id == "hs-form:f4b1" and activity.person_id == "hs-contact:51"
    assert activity.occurred_at == datetime(2024, 5, 1, 10, 40, tzinfo=UTC)
    assert activity.url == "https://x.example/evk"


def test_email_events_keep_opens_clicks_bounces_and_unsubscribes_only():
    base = {"id": "e1", "created": 1714560000000, "recipient": "jane@acme.com", "emailCampaignId": 3}
    assert activity_from_email_event({**base, "type": "OPEN"}, "51").kind == ActivityKind.EMAIL_OPEN
    assert activity_from_email_event({**base, "type": "DELIVERED"}, "51") is None
    assert activity_from_email_event({**base, "type": "BOUNCE", "category": "HARD_BOUNCE"},
                                     "51").kind == ActivityKind.HARD_BOUNCE
    unsubscribed = {**base, "type": "STATUSCHANGE", "portalSubscriptionStatus": "UNSUBSCRIBED"}
    assert activity_from_email_event(unsubscribed, "51").kind == ActivityKind.UNSUBSCRIBE


def test_attendance_depends_on_the_event_type_and_no_shows_are_no_activity():
    row = {"id": "mp-1", "createdAt": "2025-01-10T15:00:00Z",
           "associations": {"contact": {"contactId": "51"}, "marketingEvent": {"marketingEventId": "8",
                                                                               "name": "Power week"}},
           "properties": {"attendanceState": "ATTENDED", "attendanceDurationSeconds": 1800}}
    assert activity_from_participation(row, "WEBINAR").kind == ActivityKind.WEBINAR_ATTENDED
    assert activity_from_participation(row, "CONFERENCE").kind == ActivityKind.TRADE_SHOW_SCAN
    no_show = {**row, "properties": {"attendanceState": "NO_SHOW"}}
    assert activity_from_participation(no_show, "WEBINAR") is None


def test_values_are_written_as_hubspot_stores_them():
    assert [values_text(v) for v in (87.0, 87.5, None, "A", 3)] == ["87", "87.5", "", "A", "3"]
