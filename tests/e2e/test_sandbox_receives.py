"""The sandbox receives what HubSpot receives, through the APIs a real integration calls, and leadloop
pulls it as it pulls what the sandbox was seeded with:

- users provisioned through the settings users API, each one also a CRM owner;
- forms made through the forms API and submitted through the forms submission API (the official
  client has no submission API: a website posts the form, so these tests post it with `requests`);
- marketing events created and their attendance recorded through the marketing events API;
- every activity kind leadloop scores, each made through an API (HubSpot's own, or the sandbox admin
  API for what only HubSpot records: page views and marketing email events);
- datetimes of any year, rendered with a four-digit year.

One sandbox (size tiny) for the module. "A leadloop sync" here is the hourly sync's own steps
(`sync.pipeline`: pull every HubSpot stream from its cursor into a temporary store, merge, score)
without Prefect and without write-back, which these tests do not look at.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from leadloop.sandbox.server import SandboxHandle, running_sandbox

PROJECT = Path(__file__).resolve().parents[2]
PLAYBOOK = str(PROJECT / "playbooks" / "semiconductor.yaml")
PORTAL_ID = 1000001
EVK_PAGE = "https://www.voltaris-semi.com/products/voltedge-sic/evaluation-kit"


# -- the sandbox and the clients ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxHandle]:
    connection = tmp_path_factory.mktemp("receives") / "connection.json"
    with running_sandbox(size="tiny", seed=23, connection_file=connection) as running:
        yield running


def http(handle: SandboxHandle, token: bool = False) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.verify = str(handle.ca_path)
    if token:
        session.headers["Authorization"] = f"Bearer {handle.connection['hubspot']['access_token']}"
    return session


def hubspot(handle: SandboxHandle) -> Any:
    from hubspot import HubSpot

    return HubSpot(access_token=handle.connection["hubspot"]["access_token"], host=handle.base_url,
                   ssl_ca_cert=str(handle.ca_path))


def now_ms() -> int:
    return int(time.time() * 1000)


def unique_email(name: str) -> str:
    return f"{name}.{uuid.uuid4().hex[:8]}@lumenfab-power.example.com"


def form_definition(name: str, fields: tuple[str, ...] = ("email", "firstname", "lastname", "jobtitle",
                                                            "company")) -> dict[str, Any]:
    """A forms v3 create body for a HubSpot form of contact fields (email required)."""
    groups = [{"groupType": "default_group", "richTextType": "text",
               "fields": [{"objectTypeId": "0-1", "name": field, "label": field.title(),
                           "required": field == "email", "hidden": False, "dependentFields": [],
                           "fieldType": "email" if field == "email" else "single_line_text"}]}
              for field in fields]
    return {
        "formType": "hubspot", "name": name, "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:00:00Z", "archived": False, "fieldGroups": groups,
        "configuration": {"language": "en", "cloneable": True, "editable": True, "archivable": True,
                          "recaptchaEnabled": False, "notifyContactOwner": False, "notifyRecipients": [],
                          "createNewContactForNewEmail": False, "prePopulateKnownValues": True,
                          "allowLinkToResetKnownValues": False, "lifecycleStages": [],
                          "postSubmitAction": {"type": "thank_you", "value": "Thanks, we will be in touch."}},
        "displayOptions": {"renderRawHtml": False, "theme": "default_style", "submitButtonText": "Submit",
                           "style": {}},
        "legalConsentOptions": {"type": "none"},
    }


def create_form(handle: SandboxHandle, name: str) -> str:
    form = hubspot(handle).marketing.forms.forms_api.create(form_definition(name))
    return str(form.to_dict()["id"])


def submit(handle: SandboxHandle, form_id: str, fields: dict[str, str], page: str, *,
           secure: bool = False) -> requests.Response:
    """What a website's form handler posts to HubSpot (no token; `secure`: the authenticated variant)."""
    kind = "secure/submit" if secure else "submit"
    return http(handle, token=secure).post(
        f"{handle.base_url}/submissions/v3/integration/{kind}/{PORTAL_ID}/{form_id}",
        json={"submittedAt": str(now_ms()),
              "fields": [{"objectTypeId": "0-1", "name": n, "value": v} for n, v in fields.items()],
              "context": {"pageUri": page, "pageName": "VoltEdge SiC evaluation kit",
                          "hutk": uuid.uuid4().hex}},
        timeout=30)


def contact_id(handle: SandboxHandle, email: str) -> str:
    return str(hubspot(handle).crm.contacts.basic_api.get_by_id(email, id_property="email").id)


# -- a leadloop sync into a temporary store --------------------------------------------------------------


class Leadloop:
    """leadloop on the sandbox's HubSpot (Salesforce left out), with its own store."""

    def __init__(self, handle: SandboxHandle, store_url: str) -> None:
        from leadloop.connectors.settings import load_connection

        settings = load_connection(handle.connection_file)
        self.settings = settings.model_copy(update={"salesforce": None})
        self.store_url = store_url
        self.handle = handle
        self.first: tuple[Any, Any] = (None, None)  # the first sync's (dataset, scoring result)

    def sync(self) -> tuple[Any, Any]:
        """Pull every HubSpot stream from its cursor, merge and score: (dataset, scoring result)."""
        from leadloop.crm.records import Crm
        from leadloop.sync import pipeline

        runtime = pipeline.open_runtime(self.settings, PLAYBOOK, self.store_url)
        try:
            for stream in runtime.sources[Crm.HUBSPOT].streams():
                pipeline.pull_stream(runtime, Crm.HUBSPOT, stream)
            raw, identity = pipeline.load_and_resolve(runtime.store)
            dataset = pipeline.merged_dataset(raw, identity)
            return dataset, pipeline.score(runtime.playbook, dataset, self.sandbox_now())
        finally:
            runtime.close()

    def sandbox_now(self) -> datetime:
        health = http(self.handle).get(f"{self.handle.admin_url}/health", timeout=30).json()
        return datetime.fromisoformat(health["now"]).astimezone(UTC)


@pytest.fixture(scope="module")
def leadloop(handle: SandboxHandle, tmp_path_factory: pytest.TempPathFactory) -> Leadloop:
    """leadloop after its first (full) sync: what the tests then make arrives by incremental pulls."""
    synced = Leadloop(handle, f"sqlite:///{tmp_path_factory.mktemp('store') / 'state.db'}")
    synced.first = synced.sync()
    return synced


def activities_of(dataset: Any, hubspot_contact: str) -> list[Any]:
    person = person_of(dataset, hubspot_contact)
    return [a for a in dataset.activities if a.person_id == person.id]


def person_of(dataset: Any, hubspot_contact: str) -> Any:
    [person] = [p for p in dataset.people if p.hubspot_id == hubspot_contact]
    return person


# -- users and owners ----------------------------------------------------------------------------------


def test_a_user_created_through_the_settings_users_api_is_a_crm_owner_leadloop_pulls(handle, leadloop):
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate
    from hubspot.settings.users import PublicUserUpdate, UserProvisionRequest

    hs = hubspot(handle)
    team = hs.settings.users.teams_api.get_all().results[0]
    role = next(r for r in hs.settings.users.roles_api.get_all().results if r.name == "Sales rep")
    email = unique_email("new.fae")
    user = hs.settings.users.users_api.create(UserProvisionRequest(email=email, role_id=role.id,
                                                                   primary_team_id=team.id))
    assert (user.email, user.role_id, user.primary_team_id) == (email, role.id, team.id)
    assert not user.super_admin

    [owner] = hs.crm.owners.owners_api.get_page(email=email).results
    assert owner.user_id == int(user.id) and not owner.archived and owner.type == "PERSON"
    assert [(t.id, t.name, t.primary) for t in owner.teams] == [(team.id, team.name, True)]
    assert hs.crm.owners.owners_api.get_by_id(user.id, id_property="userId").id == owner.id
    [team_now] = [t for t in hs.settings.users.teams_api.get_all().results if t.id == team.id]
    assert user.id in team_now.user_ids
    assert hs.settings.users.users_api.get_by_id(email, id_property="EMAIL").id == user.id

    # the new owner can own records at once
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": unique_email("owned"), "hubspot_owner_id": owner.id}))
    assert contact.properties["hubspot_owner_id"] == owner.id

    dataset, _scoring = leadloop.sync()
    assert [(o.email, o.active) for o in dataset.owners if o.crm_id == owner.id] == [(email, True)]

    changed = hs.settings.users.users_api.replace(user.id, PublicUserUpdate(role_id="1002"))
    assert changed.role_id == "1002"

    # removing the user archives its owner; adding the email again brings the same owner back
    hs.settings.users.users_api.archive(user.id)
    assert hs.crm.owners.owners_api.get_page(email=email).results == []
    assert [o.id for o in hs.crm.owners.owners_api.get_page(email=email, archived=True).results] == [owner.id]
    again = hs.settings.users.users_api.create(UserProvisionRequest(email=email))
    assert again.id == user.id
    assert [o.id for o in hs.crm.owners.owners_api.get_page(email=email).results] == [owner.id]


def test_a_user_email_already_in_the_portal_or_an_unknown_role_is_refused(handle):
    from hubspot.settings.users import UserProvisionRequest
    from hubspot.settings.users.exceptions import ApiException

    hs = hubspot(handle)
    existing = hs.crm.owners.owners_api.get_page(limit=1).results[0].email
    with pytest.raises(ApiException) as conflict:
        hs.settings.users.users_api.create(UserProvisionRequest(email=existing))
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as unknown_role:
        hs.settings.users.users_api.create(UserProvisionRequest(email=unique_email("x"), role_id="999"))
    assert unknown_role.value.status == 400


# -- form submissions ----------------------------------------------------------------------------------


def test_a_form_submitted_for_a_new_email_creates_the_contact_and_leadloop_scores_the_evaluation_kit_request(
        handle, leadloop):
    form_id = create_form(handle, "VoltEdge SiC MOSFETs evaluation kit request")
    email = unique_email("ines.hwang")
    answer = submit(handle, form_id, {"email": email, "firstname": "Ines", "lastname": "Hwang",
                                      "jobtitle": "Senior Power Electronics Engineer",
                                      "company": "Lumenfab Power"}, EVK_PAGE)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"inlineMessage": "Thanks, we will be in touch."}

    contact = hubspot(handle).crm.contacts.basic_api.get_by_id(
        email, id_property="email", properties=["firstname", "lastname", "jobtitle", "company"])
    submitted = {"firstname": "Ines", "lastname": "Hwang", "jobtitle": "Senior Power Electronics Engineer",
                 "company": "Lumenfab Power"}
    assert {name: contact.properties[name] for name in submitted} == submitted
    listing = f"{handle.base_url}/form-integrations/v1/submissions/forms/{form_id}"
    listed = http(handle, token=True).get(listing, timeout=30).json()["results"]
    assert [s["pageUrl"] for s in listed] == [EVK_PAGE]

    dataset, scoring = leadloop.sync()
    [request] = [a for a in activities_of(dataset, contact.id) if a.kind == "eval_kit_request"]
    assert request.id == f"hs-form:{listed[0]['conversionId']}" and request.url == EVK_PAGE
    assert request.form_name == "VoltEdge SiC MOSFETs evaluation kit request"
    card = scoring.cards[person_of(dataset, contact.id).id]
    [reason] = [r for r in card.reasons if r.kind == "intent"]
    assert (reason.rule, reason.asset, reason.points) == ("evk_request", "voltedge_evk", card.intent)
    assert card.intent > 0 and card.stage == "validate"


def test_an_evaluation_kit_requested_through_a_form_by_a_fitting_contact_escalates_them(handle, leadloop):
    """The same request from someone at a fitting account: the playbook's escalation, top tier."""
    dataset, scoring = leadloop.first
    fitting = next(p for p in dataset.people if p.hubspot_id and p.email and scoring.cards[p.id].fit >= 60
                   and scoring.cards[p.id].escalation is None and not p.unsubscribed)
    form_id = create_form(handle, "VoltEdge SiC MOSFETs evaluation kit request (product page)")
    answer = submit(handle, form_id, {"email": fitting.email}, EVK_PAGE)
    assert answer.status_code == 200, answer.text

    dataset, scoring = leadloop.sync()
    card = scoring.cards[person_of(dataset, fitting.hubspot_id).id]
    assert card.escalation is not None and card.escalation.rule == "evaluation_request", card
    assert card.tier == scoring.tiers[0]


def test_a_submission_updates_the_contact_its_email_names(handle):
    hs = hubspot(handle)
    form_id = create_form(handle, "Contact us")
    email = unique_email("known")
    submit(handle, form_id, {"email": email, "jobtitle": "Buyer"}, "https://www.voltaris-semi.com/contact")
    first = contact_id(handle, email)
    answer = submit(handle, form_id, {"email": email.upper(), "jobtitle": "Senior Buyer"},
                    "https://www.voltaris-semi.com/contact", secure=True)
    assert answer.status_code == 200, answer.text
    contact = hs.crm.contacts.basic_api.get_by_id(first, properties=["jobtitle"])
    assert contact.properties["jobtitle"] == "Senior Buyer"


def test_a_submission_hubspot_would_refuse_is_refused_with_its_error_types(handle):
    form_id = create_form(handle, "Sample request")
    url = f"{handle.base_url}/submissions/v3/integration/submit/{PORTAL_ID}/{form_id}"
    bad = http(handle).post(url, json={"fields": [{"name": "email", "value": "not-an-address"},
                                                  {"name": "favourite_colour", "value": "teal"}],
                                       "context": {"hutk": "not-a-cookie"}}, timeout=30)
    assert bad.status_code == 400
    assert {e["errorType"] for e in bad.json()["errors"]} == {"INVALID_EMAIL", "FIELD_NOT_IN_FORM_DEFINITION",
                                                              "INVALID_HUTK"}
    missing = http(handle).post(url, json={"fields": [{"name": "firstname", "value": "Ann"}]}, timeout=30)
    assert [e["errorType"] for e in missing.json()["errors"]] == ["REQUIRED_FIELD"]
    unknown = http(handle).post(url.replace(form_id, str(uuid.uuid4())), json={"fields": []}, timeout=30)
    assert unknown.status_code == 404
    secure_without_token = http(handle).post(url.replace("/submit/", "/secure/submit/"), json={"fields": []},
                                             timeout=30)
    assert secure_without_token.status_code == 401


# -- marketing events ------------------------------------------------------------------------------------


def test_marketing_event_attendance_recorded_through_the_client_is_what_leadloop_pulls(handle, leadloop):
    from hubspot.marketing.events import (
        BatchInputMarketingEventEmailSubscriber,
        BatchInputMarketingEventSubscriber,
        MarketingEventCreateRequestParams,
        MarketingEventEmailSubscriber,
        MarketingEventSubscriber,
    )

    hs = hubspot(handle)
    events = hs.marketing.events
    external_id = f"wb-{uuid.uuid4().hex[:6]}"
    event = events.basic_api.create(MarketingEventCreateRequestParams(
        external_account_id="webinar-platform", external_event_id=external_id,
        event_name="Webinar: SiC gate drive in practice", event_organizer="Voltaris marketing",
        event_type="WEBINAR", start_date_time="2026-01-14T15:00:00Z", end_date_time="2026-01-14T16:00:00Z"))
    known = hs.crm.contacts.basic_api.get_page(limit=1).results[0].id
    attended = events.add_event_attendees_api.record_by_contact_ids(
        external_id, "attend",
        BatchInputMarketingEventSubscriber(inputs=[MarketingEventSubscriber(
            vid=int(known), interaction_date_time=now_ms(),
            properties={"joinedAt": "2026-01-14T15:00:00Z", "leftAt": "2026-01-14T15:30:00Z"})]),
        external_account_id="webinar-platform")
    assert attended.status == "COMPLETE" and [r.vid for r in attended.results] == [int(known)]
    newcomer = unique_email("registrant")
    registered = events.add_event_attendees_api.record_by_email(
        event.object_id, "register", BatchInputMarketingEventEmailSubscriber(inputs=[
            MarketingEventEmailSubscriber(email=newcomer, interaction_date_time=now_ms(),
                                          contact_properties={"firstname": "Rae"})]))
    assert [r.email for r in registered.results] == [newcomer]

    breakdown = events.retrieve_participant_state_api.get_participations_breakdown_by_marketing_event_id(
        int(event.object_id))
    states = {(p.associations.contact.contact_id, p.properties.attendance_state) for p in breakdown.results}
    assert states == {(known, "ATTENDED"), (contact_id(handle, newcomer), "REGISTERED")}
    [attendance] = [p for p in breakdown.results if p.properties.attendance_state == "ATTENDED"]
    assert attendance.properties.attendance_duration_seconds == 1800
    assert attendance.properties.attendance_percentage == "50"
    read = events.basic_api.get_by_object_id(event.object_id)
    assert (read.attendees, read.registrants) == (1, 1)
    # a booth scan uploaded days after a trade show that leadloop has long read (HubSpot moves the
    # event's updatedAt, so an incremental pull reads it again)
    past = next(e for e in events.basic_api.get_all(limit=100).results if e.event_completed)
    there = {p.associations.contact.contact_id for p in events.retrieve_participant_state_api
             .get_participations_breakdown_by_marketing_event_id(int(past.object_id), limit=100).results}
    scanned = next(c.id for c in hs.crm.contacts.basic_api.get_page(limit=100).results if c.id not in there)
    scanned_at = now_ms()
    events.add_event_attendees_api.record_by_contact_id(
        past.object_id, "attend", BatchInputMarketingEventSubscriber(inputs=[
            MarketingEventSubscriber(vid=int(scanned), interaction_date_time=scanned_at)]))
    assert events.basic_api.get_by_object_id(past.object_id).updated_at > past.updated_at

    dataset, _scoring = leadloop.sync()
    [scan] = [a for a in activities_of(dataset, scanned) if a.campaign_id == f"hs-campaign:{past.object_id}"]
    assert int(scan.occurred_at.timestamp() * 1000) == scanned_at
    [webinar] = [a for a in activities_of(dataset, known)
                 if a.kind == "webinar_attended" and a.campaign_id == f"hs-campaign:{event.object_id}"]
    assert webinar.duration_seconds == 1800
    assert [a.kind for a in activities_of(dataset, contact_id(handle, newcomer))] == ["webinar_registered"]


# -- every scored activity kind ----------------------------------------------------------------------------

# Form names whose submissions leadloop reads as each kind (connectors.hubspot.records.FORM_KINDS).
FORMS = {
    "form_fill": "Contact us",
    "asset_download": "SiC MOSFET datasheet download",
    "eval_kit_request": "VoltEdge SiC MOSFETs evaluation kit request",
    "sample_request": "Sample request",
    "demo_request": "Request a demo",
    "contact_sales": "Contact sales",
    "partner_referral": "Partner referral",
}
EVENT_TYPES = {"webinar_attended": "WEBINAR", "trade_show_scan": "CONFERENCE",
               "workshop_attended": "WORKSHOP"}


def test_every_activity_kind_leadloop_scores_can_be_made_through_an_api(handle, leadloop):
    from hubspot.communication_preferences import PublicUpdateSubscriptionStatusRequest
    from hubspot.crm.objects import SimplePublicObjectInputForCreate
    from hubspot.marketing.events import (
        BatchInputMarketingEventSubscriber,
        MarketingEventCreateRequestParams,
        MarketingEventSubscriber,
    )

    from leadloop.crm.records import ActivityKind

    hs = hubspot(handle)
    email = unique_email("everything")
    person: str | None = None
    # forms, through the forms submission API
    for kind, name in FORMS.items():
        form_id = create_form(handle, name)
        answer = submit(handle, form_id, {"email": email, "firstname": "Eve"}, f"https://www.example.com/{kind}")
        assert answer.status_code == 200, (kind, answer.text)
        person = person or contact_id(handle, email)
    assert person is not None
    # marketing events, through the marketing events API
    for state, kinds in (("register", ["webinar_registered"]), ("attend", list(EVENT_TYPES))):
        for kind in kinds:
            event = hs.marketing.events.basic_api.create(MarketingEventCreateRequestParams(
                external_account_id="events-app", external_event_id=f"{kind}-{uuid.uuid4().hex[:6]}",
                event_name=f"Event for {kind}", event_organizer="Marketing",
                event_type=EVENT_TYPES.get(kind, "WEBINAR")))
            hs.marketing.events.add_event_attendees_api.record_by_contact_id(
                event.object_id, state, BatchInputMarketingEventSubscriber(inputs=[
                    MarketingEventSubscriber(vid=int(person), interaction_date_time=now_ms())]))
    # sales activity, through the CRM objects API
    stamp = datetime.now(UTC).isoformat()
    for object_type, properties, association in (
            ("calls", {"hs_call_title": "Intro call", "hs_call_status": "COMPLETED"}, 194),
            ("emails", {"hs_email_subject": "Following up", "hs_email_direction": "EMAIL"}, 198),
            ("meetings", {"hs_meeting_title": "Design review", "hs_meeting_outcome": "COMPLETED"}, 200)):
        hs.crm.objects.basic_api.create(object_type, SimplePublicObjectInputForCreate(
            properties={"hs_timestamp": stamp, **properties},
            associations=[{"to": {"id": person}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                               "associationTypeId": association}]}]))
    # an unsubscribe, through the subscription preferences API
    hs.communication_preferences.status_api.unsubscribe(
        PublicUpdateSubscriptionStatusRequest(email_address=email, subscription_id="1"))
    # what only HubSpot records (its tracking code, its email sending): the sandbox admin API
    admin = http(handle)
    assert admin.post(f"{handle.admin_url}/hubspot/page-views",
                      json={"email": email, "url": "https://www.voltaris-semi.com/products/voltedge-sic"},
                      timeout=30).status_code == 201
    for kind in ("OPEN", "CLICK", "BOUNCE"):
        made = admin.post(f"{handle.admin_url}/hubspot/email-events",
                          json={"email": email, "type": kind, "url": "https://www.voltaris-semi.com/news"},
                          timeout=30)
        assert made.status_code == 201, made.text

    dataset, _scoring = leadloop.sync()
    made_kinds = {a.kind for a in activities_of(dataset, person)}
    assert made_kinds == set(ActivityKind), sorted(set(ActivityKind) - made_kinds)


# -- datetimes -----------------------------------------------------------------------------------------------


def test_a_year_one_datetime_comes_back_with_a_four_digit_year(handle):
    from hubspot.crm.contacts import SimplePublicObjectInputForCreate
    from hubspot.crm.deals import SimplePublicObjectInputForCreate as DealInput

    hs = hubspot(handle)
    contact = hs.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"email": unique_email("ancient"), "createdate": "0001-01-01T00:00:00Z"}))
    read = hs.crm.contacts.basic_api.get_by_id(contact.id, properties=["createdate"])
    assert read.properties["createdate"] == "0001-01-01T00:00:00.000Z"
    assert read.created_at.astimezone(UTC).year == 1

    deal = hs.crm.deals.basic_api.create(DealInput(properties={
        "dealname": "Heirloom", "pipeline": "default", "dealstage": "qualifiedtobuy",
        "closedate": "0001-01-01T00:00:00.123Z"}))
    assert deal.properties["closedate"] == "0001-01-01T00:00:00.123Z"
    read_deal = hs.crm.deals.basic_api.get_by_id(deal.id, properties=["closedate"])
    assert read_deal.properties["closedate"] == "0001-01-01T00:00:00.123Z"
    late = hs.crm.deals.basic_api.create(DealInput(properties={
        "dealname": "Far future", "pipeline": "default", "dealstage": "qualifiedtobuy",
        "closedate": "9999-12-31T23:59:59.999Z"}))
    assert late.properties["closedate"] == "9999-12-31T23:59:59.999Z"
