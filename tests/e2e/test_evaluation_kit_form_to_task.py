"""Issue #20, acceptance: a design engineer's evaluation-kit request made through the HubSpot forms API
reaches the top tier, with one task in the CRM the playbook's task setting names.

Both CRMs start empty (`leadloop sandbox serve --empty`, then `crm setup` in each) and hold only what
this module makes through the official clients, as an admin and a website would:

- Rachel Kim, a rep of the semiconductor playbook (North America, automotive power), becomes a user in
  both CRMs: through HubSpot's settings users API (which makes her a CRM owner) and as a Salesforce
  User; so either CRM could take her task, and only `routing.tasks_in` decides which one does;
- a HubSpot company that fits the playbook's automotive-power profile well, owned by her;
- Ines Hwang, a senior power-electronics design engineer there, already a Salesforce Lead (a trade-show
  list import), submits the "Evaluation kit request" form (named like the seeded ones) on the
  VoltEdge SiC evaluation-kit page through the forms submission API;
- her new HubSpot contact gets the company as its primary company through the associations API, which
  HubSpot shows as the contact's `associatedcompanyid`, the property leadloop reads. Real HubSpot may
  also associate her by itself (by email domain, when the portal's auto-association setting is on); the
  sandbox does not, and this test does not rely on it (nor on leadloop's own email-domain match, which
  would find the same company).

The playbook is the shipped semiconductor one with `routing.tasks_in: hubspot`. The sync is the real
`hourly_sync` flow on a Prefect engine (`prefect_harness`), into a temporary SQLite store; every
check reads the CRMs back through hubspot-api-client and simple-salesforce.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from leadloop.sandbox.server import SandboxHandle

PROJECT = Path(__file__).resolve().parents[2]
PORTAL_ID = 1000001  # the sandbox portal's id, as a website's form embed code names it
REP = "rachel.kim@voltaris-semi.com"
ENGINEER = "ines.hwang@arcturus-traction.example.com"
COMPANY = "Arcturus Traction Systems"
EVK_PAGE = "https://www.voltaris-semi.com/products/voltedge-sic/evaluation-kit"
EVK_ASSET = "voltedge_evk"
CONTACT_TO_PRIMARY_COMPANY = 1  # HUBSPOT_DEFINED association type id


# -- the playbook --------------------------------------------------------------------------------------


def playbook_with_tasks_in(path: Path, tasks_in: str) -> dict[str, Any]:
    """The shipped semiconductor playbook with `routing.tasks_in` set, written to `path`."""
    playbook = yaml.safe_load((PROJECT / "playbooks" / "semiconductor.yaml").read_text(encoding="utf-8"))
    playbook["routing"]["tasks_in"] = tasks_in
    path.write_text(yaml.safe_dump(playbook, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return playbook


# -- the official clients ------------------------------------------------------------------------------


# -- what an admin and a website do ----------------------------------------------------------------------


def add_rep_to_both_crms(handle: SandboxHandle) -> str:
    """Rachel as a HubSpot user (so a CRM owner) and a Salesforce User; returns her HubSpot owner id."""
    from hubspot.settings.users import UserProvisionRequest

    hs = handle.hubspot()
    role = next(r for r in hs.settings.users.roles_api.get_all().results if r.name == "Sales rep")
    hs.settings.users.users_api.create(UserProvisionRequest(email=REP, role_id=role.id))
    [owner] = hs.crm.owners.owners_api.get_page(email=REP).results

    sf = handle.salesforce()
    profile = sf.query("SELECT Id FROM Profile WHERE Name = 'Standard User'")["records"][0]["Id"]
    sf.User.create({"Username": REP, "Email": REP, "FirstName": "Rachel", "LastName": "Kim", "Alias": "rkim",
                    "TimeZoneSidKey": "America/Los_Angeles", "ProfileId": profile})
    return str(owner.id)


def create_fitting_company(handle: SandboxHandle, owner_id: str) -> str:
    """A company the automotive-power profile fits well (segment, application, devices, process,
    region, size), owned by `owner_id`; returns its id."""
    from hubspot.crm.companies import SimplePublicObjectInputForCreate

    company = handle.hubspot().crm.companies.basic_api.create(SimplePublicObjectInputForCreate(properties={
        "name": COMPANY, "domain": ENGINEER.split("@")[1], "industry": "Automotive", "country": "US",
        "numberofemployees": "2400", "type": "PROSPECT", "segment": "automotive power",
        "application": "EV traction inverter", "device_type": "SiC MOSFET", "process": "SiC", "region": "NA",
        "hubspot_owner_id": owner_id}))
    return str(company.id)


def create_lead(handle: SandboxHandle) -> None:
    handle.salesforce().Lead.create({"FirstName": "Ines", "LastName": "Hwang", "Email": ENGINEER,
                                    "Company": COMPANY, "Title": "Senior Power Electronics Design Engineer",
                                    "LeadSource": "Trade Show"})


def create_evaluation_kit_form(handle: SandboxHandle) -> str:
    """A forms v3 HubSpot form of contact fields named like the seeded evaluation-kit forms; its id."""
    fields = ("email", "firstname", "lastname", "jobtitle", "company", "country")
    groups = [{"groupType": "default_group", "richTextType": "text",
               "fields": [{"objectTypeId": "0-1", "name": name, "label": name.title(),
                           "required": name == "email", "hidden": False, "dependentFields": [],
                           "fieldType": "email" if name == "email" else "single_line_text"}]}
              for name in fields]
    form = handle.hubspot().marketing.forms.forms_api.create({
        "formType": "hubspot", "name": "Evaluation kit request", "createdAt": "2024-01-01T00:00:00Z",
        "updatedAt": "2024-01-01T00:00:00Z", "archived": False, "fieldGroups": groups,
        "configuration": {"language": "en", "cloneable": True, "editable": True, "archivable": True,
                          "recaptchaEnabled": False, "notifyContactOwner": False, "notifyRecipients": [],
                          "createNewContactForNewEmail": False, "prePopulateKnownValues": True,
                          "allowLinkToResetKnownValues": False, "lifecycleStages": [],
                          "postSubmitAction": {"type": "thank_you", "value": "Your kit is on its way."}},
        "displayOptions": {"renderRawHtml": False, "theme": "default_style",
                           "submitButtonText": "Request kit", "style": {}},
        "legalConsentOptions": {"type": "none"},
    })
    return str(form.to_dict()["id"])


def submit_evaluation_kit_request(handle: SandboxHandle, form_id: str) -> None:
    """What the evaluation-kit page's form handler posts (the unauthenticated submission API)."""
    fields = {"email": ENGINEER, "firstname": "Ines", "lastname": "Hwang",
              "jobtitle": "Senior Power Electronics Design Engineer", "company": COMPANY, "country": "US"}
    answer = handle.session().post(
        f"{handle.base_url}/submissions/v3/integration/submit/{PORTAL_ID}/{form_id}",
        json={"submittedAt": str(int(time.time() * 1000)),
              "fields": [{"objectTypeId": "0-1", "name": n, "value": v} for n, v in fields.items()],
              "context": {"pageUri": EVK_PAGE, "pageName": "VoltEdge SiC evaluation kit",
                          "hutk": uuid.uuid4().hex}},
        timeout=30)
    assert answer.status_code == 200, answer.text


def make_primary_company(handle: SandboxHandle, contact_id: str, company_id: str) -> None:
    """The Primary association, which HubSpot also shows as the contact's `associatedcompanyid`."""
    from hubspot.crm.associations.v4 import AssociationSpec

    hs = handle.hubspot()
    hs.crm.associations.v4.basic_api.create(
        "contacts", contact_id, "companies", company_id,
        [AssociationSpec(association_category="HUBSPOT_DEFINED",
                         association_type_id=CONTACT_TO_PRIMARY_COMPANY)])
    contact = hs.crm.contacts.basic_api.get_by_id(contact_id, properties=["associatedcompanyid"])
    assert contact.properties["associatedcompanyid"] == company_id


# -- the sync ----------------------------------------------------------------------------------------------


def run_hourly_sync(options: Any) -> Any:
    """One hourly sync, a real flow run; its summary."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.steps import summary_of

    return summary_of(hourly_sync(options))


def hubspot_tasks(handle: SandboxHandle) -> list[Any]:
    """Every task in the HubSpot portal, with its contact associations."""
    properties = ["hs_task_subject", "hs_task_body", "hs_task_priority", "hubspot_owner_id", "ll_key"]
    return list(handle.hubspot().crm.objects.get_all("tasks", properties=properties,
                                                    associations=["contacts"]))


def salesforce_task_ids(handle: SandboxHandle) -> list[str]:
    return [row["Id"] for row in handle.salesforce().query_all("SELECT Id FROM Task")["records"]]


def salesforce_lead_tiers(handle: SandboxHandle) -> list[str | None]:
    from simple_salesforce import format_soql

    query = format_soql("SELECT LL_Tier__c FROM Lead WHERE Email = {}", ENGINEER)
    return [row["LL_Tier__c"] for row in handle.salesforce().query_all(query)["records"]]


@pytest.fixture(scope="module")
def requested(crm_sandbox, prefect_harness: str,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The empty CRMs after the request, and the first hourly sync over them."""
    from leadloop.flows.options import SyncOptions

    workdir = tmp_path_factory.mktemp("evk")
    playbook_file = workdir / "semiconductor-tasks-in-hubspot.yaml"
    playbook = playbook_with_tasks_in(playbook_file, "hubspot")
    with crm_sandbox(workdir / "connection.json", empty=True) as handle:
        owner_id = add_rep_to_both_crms(handle)
        company_id = create_fitting_company(handle, owner_id)
        create_lead(handle)
        submit_evaluation_kit_request(handle, create_evaluation_kit_form(handle))
        contact_id = str(handle.hubspot().crm.contacts.basic_api.get_by_id(ENGINEER, id_property="email").id)
        make_primary_company(handle, contact_id, company_id)

        options = SyncOptions(connection_file=str(workdir / "connection.json"), playbook=str(playbook_file),
                              store_url=f"sqlite:///{workdir / 'state.db'}")
        summary = run_hourly_sync(options)
        yield {"handle": handle, "playbook": playbook, "options": options, "summary": summary,
               "owner_id": owner_id, "contact_id": contact_id}


# -- the promises -----------------------------------------------------------------------------------------


def test_the_request_puts_the_engineer_in_the_top_tier(requested):
    contact = requested["handle"].hubspot().crm.contacts.basic_api.get_by_id(
        requested["contact_id"], properties=["ll_tier", "ll_reasons"])
    top_tier = requested["playbook"]["tiers"][0]["name"]
    assert contact.properties["ll_tier"] == top_tier, contact.properties
    assert requested["summary"].outcome == "ok", requested["summary"].rejection_groups()


def test_one_hubspot_task_for_the_rep_names_the_evaluation_kit_request(requested):
    [task] = hubspot_tasks(requested["handle"])
    contacts = [a.id for a in task.associations["contacts"].results] if task.associations else []
    assert contacts == [requested["contact_id"]]
    assert task.properties["hubspot_owner_id"] == requested["owner_id"]
    [evk] = [a for a in requested["playbook"]["assets"] if a["id"] == EVK_ASSET]
    assert evk["name"] in task.properties["hs_task_subject"], task.properties["hs_task_subject"]
    assert task.properties["hs_task_priority"] == "HIGH"  # the evaluation request's escalation SLA
    assert requested["summary"].tasks_by_owner == {REP: 1}


def test_no_salesforce_task_though_she_is_a_salesforce_lead_too(requested):
    top_tier = requested["playbook"]["tiers"][0]["name"]
    assert salesforce_lead_tiers(requested["handle"]) == [top_tier]  # one person, scored in both CRMs
    assert salesforce_task_ids(requested["handle"]) == []


def test_a_second_sync_leaves_the_one_task_alone(requested):
    before = [task.id for task in hubspot_tasks(requested["handle"])]
    summary = run_hourly_sync(requested["options"])
    assert summary.outcome == "ok" and summary.tasks_created == 0
    [task] = hubspot_tasks(requested["handle"])
    assert [task.id] == before
    assert [a.id for a in task.associations["contacts"].results] == [requested["contact_id"]]
    assert salesforce_task_ids(requested["handle"]) == []
