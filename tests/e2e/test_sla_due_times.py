"""SLA due times survive the trip into both CRMs: a sync on a Friday at 16:00 in Singapore routes a
lead to the Singapore rep, and the task read back through the official clients (simple-salesforce,
hubspot-api-client) is due on the next Singapore business day at 11:00 Singapore time: four business
hours in 08:30-17:30, weekends and Singapore's public holidays skipped. Salesforce shows the local due
day (`ActivityDate`) and the exact moment as the reminder; HubSpot the exact moment (`hs_timestamp`).

The CRMs start empty; through the official clients an admin adds Priya Raman (Asia/Singapore) to
both, and a design engineer at a fitting account requests an evaluation kit. The sync is the real
`hourly_sync` flow on a Prefect engine (`prefect_harness`). The playbook is the shipped semiconductor
one with three changes: every SLA is four business hours, tasks go to both CRMs, and Priya is the
one active rep, so every routed lead ends with her (as owner, pool member or fallback owner).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import holidays
import pytest
import yaml

from leadloop.sandbox.server import SandboxHandle

PROJECT = Path(__file__).resolve().parents[2]
PRIYA = "priya.raman@voltaris-semi.com"
SINGAPORE = ZoneInfo("Asia/Singapore")


def next_friday_4pm_in_singapore(now: datetime) -> datetime:
    """The next Friday 16:00 Singapore time after `now` (the world's activity is placed before now)."""
    today = now.astimezone(SINGAPORE).date()
    friday = today + timedelta(days=(4 - today.weekday()) % 7 or 7)
    return datetime.combine(friday, time(16, 0), SINGAPORE)


def next_singapore_business_day(day: date) -> date:
    """Computed here from the `holidays` library directly, not through leadloop's calendar."""
    public = holidays.country_holidays("SG", years=[day.year, day.year + 1])
    day += timedelta(days=1)
    while day.weekday() >= 5 or day in public:
        day += timedelta(days=1)
    return day


def singapore_playbook(path: Path) -> Path:
    playbook = yaml.safe_load((PROJECT / "playbooks" / "semiconductor.yaml").read_text(encoding="utf-8"))
    routing = playbook["routing"]
    routing["tasks_in"] = "both"
    for sla in routing["slas"].values():
        sla.pop("business_days", None)
        sla["business_hours"] = 4
    for rep in routing["reps"]:
        rep["active"] = rep["email"] == PRIYA
    for pool in routing["pools"]:
        pool["fallback"] = PRIYA
    routing["fallback_owner"] = PRIYA
    path.write_text(yaml.safe_dump(playbook, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def run_sync(options: Any) -> Any:
    """One hourly sync, a real flow run; its summary."""
    from leadloop.flows.hourly_sync import hourly_sync
    from leadloop.flows.steps import summary_of

    return summary_of(hourly_sync(options))


def salesforce_tasks(handle: SandboxHandle) -> dict[str, dict[str, Any]]:
    rows = handle.salesforce().query_all(
        "SELECT LL_Key__c, OwnerId, Owner.Email, Owner.TimeZoneSidKey, ActivityDate, ReminderDateTime, "
        "IsReminderSet FROM Task WHERE LL_Key__c != null")["records"]
    return {row["LL_Key__c"]: row for row in rows}


def hubspot_tasks(handle: SandboxHandle) -> dict[str, dict[str, Any]]:
    client = handle.hubspot()
    owners = {owner.id: owner.email for owner in client.crm.owners.get_all()}
    found: dict[str, dict[str, Any]] = {}
    properties = ["ll_key", "hs_timestamp", "hubspot_owner_id"]
    for task in client.crm.objects.get_all("tasks", properties=properties):
        key = task.properties.get("ll_key")
        if key:
            assert key not in found, f"two HubSpot tasks carry {key}"
            found[key] = {**task.properties, "owner_email": owners.get(task.properties["hubspot_owner_id"])}
    return found


DOMAIN = "lumenfab-power.example.com"
COMPANY = "Lumenfab Power"
ENGINEER = f"ines.hwang@{DOMAIN}"
EVALUATION_KIT = "VoltEdge SiC MOSFETs evaluation kit"


def add_priya_to_both_crms(handle: SandboxHandle) -> tuple[str, str]:
    """Priya Raman, working in Singapore, as a Salesforce User and a HubSpot user (so a HubSpot owner),
    as an admin adds a rep; (her Salesforce User id, her HubSpot owner id)."""
    from hubspot.settings.users import UserProvisionRequest

    hs = handle.hubspot()
    role = next(r for r in hs.settings.users.roles_api.get_all().results if r.name == "Sales rep")
    hs.settings.users.users_api.create(UserProvisionRequest(email=PRIYA, role_id=role.id))
    [owner] = hs.crm.owners.owners_api.get_page(email=PRIYA).results
    sf = handle.salesforce()
    profile = sf.query("SELECT Id FROM Profile WHERE Name = 'Standard User'")["records"][0]["Id"]
    user = sf.User.create({"Username": PRIYA, "Email": PRIYA, "FirstName": "Priya", "LastName": "Raman",
                           "Alias": "praman", "TimeZoneSidKey": "Asia/Singapore", "ProfileId": profile})
    return user["id"], str(owner.id)


def build_ready_lead(handle: SandboxHandle) -> None:
    """A design engineer at a fitting account, in both CRMs, who has just requested an evaluation kit
    (a completed Salesforce Task, as marketing automation logs the product page's form)."""
    user_id, owner_id = add_priya_to_both_crms(handle)
    sf, hs = handle.salesforce(), handle.hubspot()
    account = sf.Account.create({
        "Name": COMPANY, "Website": f"https://www.{DOMAIN}", "Industry": "Automotive", "Type": "Prospect",
        "BillingCountry": "SG", "NumberOfEmployees": 2400, "OwnerId": user_id,
        "Application_Segment__c": "automotive power", "Application__c": "EV traction inverter",
        "Device_Type__c": "SiC MOSFET", "Process_Node__c": "SiC", "Region__c": "APAC"})["id"]
    contact = sf.Contact.create({"FirstName": "Ines", "LastName": "Hwang", "Email": ENGINEER,
                                 "Title": "Senior Power Electronics Design Engineer",
                                 "Department": "Engineering", "AccountId": account,
                                 "MailingCountry": "SG"})["id"]
    sf.Task.create({"WhoId": contact, "Subject": f"Form fill: Request {EVALUATION_KIT}",
                    "Status": "Completed", "ActivityDate": datetime.now(UTC).date().isoformat(),
                    "Description": "URL: https://www.voltaris-semi.com/products/voltedge-sic/evaluation-kit\n"
                                   f"Asset: {EVALUATION_KIT}\nAsset type: evaluation_kit\n"
                                   "Form: Evaluation kit request"})
    hs.crm.companies.basic_api.create({"properties": {
        "name": COMPANY, "domain": DOMAIN, "industry": "Automotive", "country": "SG",
        "hubspot_owner_id": owner_id}})
    hs.crm.contacts.basic_api.create({"properties": {
        "email": ENGINEER, "firstname": "Ines", "lastname": "Hwang",
        "jobtitle": "Senior Power Electronics Design Engineer", "hubspot_owner_id": owner_id}})


@pytest.fixture(scope="module")
def synced(crm_sandbox, prefect_harness: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from leadloop.flows.options import SyncOptions

    workdir = tmp_path_factory.mktemp("sla")
    connection = workdir / "connection.json"
    at = next_friday_4pm_in_singapore(datetime.now(UTC))
    with crm_sandbox(connection, empty=True) as handle:
        build_ready_lead(handle)
        playbook = singapore_playbook(workdir / "singapore.yaml")
        options = SyncOptions(connection_file=str(connection), playbook=str(playbook),
                              store_url=f"sqlite:///{workdir / 'state.db'}", at=at.astimezone(UTC))
        summary = run_sync(options)
        yield {"handle": handle, "options": options, "at": at, "summary": summary,
               "salesforce": salesforce_tasks(handle), "hubspot": hubspot_tasks(handle)}


def test_the_sync_routed_leads_to_the_singapore_rep_with_a_task_in_each_crm(synced):
    assert synced["summary"].tasks_by_owner.keys() == {PRIYA}
    assert synced["salesforce"] and synced["salesforce"].keys() == synced["hubspot"].keys()
    assert {row["Owner"]["Email"] for row in synced["salesforce"].values()} == {PRIYA}
    assert {task["owner_email"] for task in synced["hubspot"].values()} == {PRIYA}


def test_salesforce_shows_the_singapore_due_day_and_the_reminder_at_11_singapore_time(synced):
    due_day = next_singapore_business_day(synced["at"].date())
    for row in synced["salesforce"].values():
        # the owner's own time zone, as Salesforce keeps it on the user, reads the reminder locally
        owner_zone = ZoneInfo(row["Owner"]["TimeZoneSidKey"])
        reminder = datetime.strptime(row["ReminderDateTime"], "%Y-%m-%dT%H:%M:%S.%f%z").astimezone(owner_zone)
        assert owner_zone.key == "Asia/Singapore"
        assert row["ActivityDate"] == due_day.isoformat()
        assert row["IsReminderSet"] is True
        assert (reminder.date(), reminder.time()) == (due_day, time(11, 0)), row


def test_hubspot_shows_the_same_moment_as_hs_timestamp(synced):
    due_day = next_singapore_business_day(synced["at"].date())
    expected = datetime.combine(due_day, time(11, 0), SINGAPORE)
    for key, task in synced["hubspot"].items():
        moment = datetime.fromisoformat(task["hs_timestamp"].replace("Z", "+00:00"))
        assert moment == expected, (key, task["hs_timestamp"])
        reminder = synced["salesforce"][key]["ReminderDateTime"]
        assert datetime.strptime(reminder, "%Y-%m-%dT%H:%M:%S.%f%z") == moment


def test_a_rerun_creates_no_second_task_and_keeps_the_due_moments(synced):
    summary = run_sync(synced["options"].model_copy(
        update={"at": synced["options"].at + timedelta(minutes=5)}))
    assert sum(w.tasks_written for w in summary.writes) == 0
    handle = synced["handle"]
    again_salesforce, again_hubspot = salesforce_tasks(handle), hubspot_tasks(handle)
    assert again_salesforce.keys() == synced["salesforce"].keys()
    assert again_hubspot.keys() == synced["hubspot"].keys()
    assert {k: r["ReminderDateTime"] for k, r in again_salesforce.items()} == {
        k: r["ReminderDateTime"] for k, r in synced["salesforce"].items()}
    assert {k: t["hs_timestamp"] for k, t in again_hubspot.items()} == {
        k: t["hs_timestamp"] for k, t in synced["hubspot"].items()}
