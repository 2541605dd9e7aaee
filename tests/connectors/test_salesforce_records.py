"""Salesforce rows become canonical records: ids, mapped fields, conversions, activities, rejections."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.records import campaign_member_kind, map_row, task_kind
from leadloop.crm.records import ActivityKind, CustomerType

READ = load_mapping({"salesforce": {"read": {"Lead": {"segment": "Application_Segment__c"}}}}).salesforce.read
STAMP = "2024-05-01T10:00:00.000+0000"
LEAD = "00Q5e00000AbCdEEAZ"
CONTACT = "0035e00000AbCdEEAZ"


def mapped(sobject: str, **row):
    raw = {"attributes": {"type": sobject}, "SystemModstamp": STAMP, **row}
    return map_row(sobject, raw, READ, "LL_Key__c")


def test_a_lead_becomes_a_person_with_a_qualified_id_and_its_raw_id():
    person = mapped("Lead", Id=LEAD, Email=" Jane@Acme-Semi.com ", FirstName="Jane", LastName="Li",
                    Company="Acme Semi", HasOptedOutOfEmail=False, EmailBouncedReason="mailbox full",
                    Application_Segment__c="automotive").record
    assert person.id == f"sf-lead:{LEAD}" and person.salesforce_lead_id == LEAD
    assert person.email == "jane@acme-semi.com" and person.email_domain == "acme-semi.com"
    assert person.company_name == "Acme Semi" and person.bounced is True and person.unsubscribed is False
    assert person.attributes == {"segment": "automotive"}
    assert person.updated_at == datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def test_a_converted_lead_points_at_its_contact():
    person = mapped("Lead", Id=LEAD, IsConverted=True, ConvertedContactId=CONTACT).record
    assert person.attributes["converted_to"] == f"sf-contact:{CONTACT}"


def test_a_contact_carries_its_account_as_a_canonical_id():
    person = mapped("Contact", Id=CONTACT, AccountId="0015e00000AbCdEEAZ", Email="a@b.com").record
    assert person.id == f"sf-contact:{CONTACT}" and person.salesforce_contact_id == CONTACT
    assert person.account_id == "sf-account:0015e00000AbCdEEAZ"


def test_an_account_maps_its_type_and_domain():
    account = mapped("Account", Id="0015e00000AbCdEEAZ", Name="Acme", Website="https://www.acme-semi.com/x",
                     Type="Customer - Direct", NumberOfEmployees=1200, Application_Segment__c="power").record
    assert account.domain == "acme-semi.com" and account.customer_type == CustomerType.CUSTOMER
    assert account.segment == "power" and account.employees == 1200


def test_deleted_rows_are_tombstones_and_bad_values_are_rejections():
    assert mapped("Lead", Id=LEAD, IsDeleted=True).deleted == f"sf-lead:{LEAD}"
    assert "not an email" in mapped("Lead", Id=LEAD, Email="nobody").rejected
    assert "not a date" in mapped("Opportunity", Id="006000000000001AAA", CloseDate="2024-13-45").rejected
    assert mapped("Lead", Id=LEAD, SystemModstamp="yesterday").rejected


@pytest.mark.parametrize(("subtype", "subject", "kind"), [
    ("Call", "Intro", ActivityKind.SALES_CALL),
    ("Email", "Re: pricing", ActivityKind.SALES_EMAIL),
    ("Task", "Form fill: Request EVK-7710 evaluation kit", ActivityKind.EVAL_KIT_REQUEST),
    ("Task", "Form fill: Request samples of MX-200", ActivityKind.SAMPLE_REQUEST),
    ("Task", "Form fill: Book a demo", ActivityKind.DEMO_REQUEST),
    ("Task", "Download: SiC MOSFET datasheet", ActivityKind.ASSET_DOWNLOAD),
    ("Task", "Form fill: Newsletter", ActivityKind.FORM_FILL),
    ("Task", "Update CRM hygiene", None),
])
def test_task_kinds_follow_subtype_then_subject(subtype, subject, kind):
    assert task_kind(subtype, subject) == kind


@pytest.mark.parametrize(("campaign_type", "status", "responded", "kind"), [
    ("Webinar", "Registered", False, ActivityKind.WEBINAR_REGISTERED),
    ("Webinar", "Attended", True, ActivityKind.WEBINAR_ATTENDED),
    ("Trade Show", "Visited Booth", True, ActivityKind.TRADE_SHOW_SCAN),
    ("Trade Show", "Invited", False, None),
    ("Email", "Clicked", True, ActivityKind.EMAIL_CLICK),
    ("Email", "Sent", False, None),
    ("Partners", "Referred", True, ActivityKind.PARTNER_REFERRAL),
    ("Workshop", "Attended", True, ActivityKind.WORKSHOP_ATTENDED),
])
def test_campaign_member_kinds_follow_campaign_type_and_status(campaign_type, status, responded, kind):
    assert campaign_member_kind(campaign_type, status, responded) == kind


def test_a_campaign_member_is_an_activity_of_its_contact_before_its_lead():
    campaign = {"attributes": {"type": "Campaign"}, "Name": "GaN webinar", "Type": "Webinar"}
    activity = mapped("CampaignMember", Id="00v000000000001AAA", CampaignId="701000000000001AAA",
                      LeadId=LEAD, ContactId=CONTACT, Status="Attended", HasResponded=True,
                      FirstRespondedDate="2024-04-30", Campaign=campaign).record
    assert activity.person_id == f"sf-contact:{CONTACT}" and activity.kind == ActivityKind.WEBINAR_ATTENDED
    assert activity.occurred_at == datetime(2024, 4, 30, tzinfo=UTC)
    assert activity.campaign_id == "sf-campaign:701000000000001AAA"
    assert activity.campaign_name == "GaN webinar"


def test_tasks_leadloop_created_are_not_buyer_activity():
    row = {"Id": "00T000000000001AAA", "WhoId": LEAD, "Subject": "Call: follow up", "TaskSubtype": "Call",
           "CreatedDate": STAMP}
    assert mapped("Task", **row).record is not None
    assert mapped("Task", **row, LL_Key__c="k-1").record is None


def test_an_event_is_a_meeting_with_its_duration():
    activity = mapped("Event", Id="00U000000000001AAA", WhoId=CONTACT, StartDateTime=STAMP,
                      DurationInMinutes=30).record
    assert activity.kind == ActivityKind.MEETING and activity.duration_seconds == 1800


def test_a_user_becomes_an_owner_and_a_contact_role_links_a_person_to_an_opportunity():
    owner = mapped("User", Id="005000000000001AAA", Email="Rep@Example.com", IsActive=True,
                   TimeZoneSidKey="America/Chicago").record
    assert (owner.id, owner.crm_id, owner.email) == ("sf-user:005000000000001AAA", "005000000000001AAA",
                                                     "rep@example.com")
    role = mapped("OpportunityContactRole", Id="00K000000000001AAA", OpportunityId="006000000000001AAA",
                  ContactId=CONTACT, Role="Technical Buyer", IsPrimary=True).record
    assert role.opportunity_id == "sf-opp:006000000000001AAA" and role.person_id == f"sf-contact:{CONTACT}"


def test_a_quote_or_a_call_from_sales_is_a_sales_conversation_in_both_crms():
    from leadloop.connectors.hubspot.records import form_kind
    from leadloop.connectors.salesforce.records import task_kind
    from leadloop.crm.records import ActivityKind

    for subject in ("Request a call from sales", "Request NanoPMIC volume pricing", "Request a quote"):
        assert task_kind(None, f"Form fill: {subject}") == ActivityKind.CONTACT_SALES
        assert form_kind(subject) == ActivityKind.CONTACT_SALES
