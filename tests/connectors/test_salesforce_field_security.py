"""Reps see leadloop's fields only through field-level security, as in a real org: through
simple-salesforce against an empty sandbox, a rep's session is refused the LL_* fields of a scored
Contact until `crm setup` assigns them the read permission set; `crm check` names who lacks what;
a second `crm setup` changes nothing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest
from typer.testing import CliRunner

from leadloop.cli.app import app
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.access import LIST_VIEW, READ_SET, SYNC_SET
from leadloop.connectors.salesforce.setup import owned_fields, write_metadata
from leadloop.sandbox.server import SandboxHandle, running_sandbox

REP = "ann.rep@example.com"
NS = "{http://soap.sforce.com/2006/04/metadata}"


class Org:
    """An empty sandbox org and its Salesforce-only connection file."""

    def __init__(self, handle: SandboxHandle, folder: Path) -> None:
        self.handle = handle
        self.connection: dict[str, Any] = {k: v for k, v in handle.connection.items() if k != "hubspot"}
        self.ca = str(handle.ca_path)
        self.path = folder / "connection.json"
        self.write_connection()
        self.admin = self.session_of(self.connection["salesforce"]["session_id"])

    def write_connection(self, **salesforce: Any) -> Path:
        data = json.loads(json.dumps(self.connection))
        data["salesforce"].update(salesforce)
        self.path.write_text(json.dumps(data), encoding="utf-8")
        return self.path

    def session_of(self, session_id: str) -> Salesforce:
        session = requests.Session()
        session.trust_env, session.verify = False, self.ca
        return Salesforce(instance_url=self.handle.base_url, session_id=session_id, session=session,
                          version="59.0")

    def user(self, username: str, profile: str = "Standard User") -> dict[str, Any]:
        """A user of the org with a session of theirs (the sandbox admin API)."""
        response = requests.post(f"{self.handle.admin_url}/salesforce/users", timeout=30, verify=self.ca,
                                 json={"username": username, "profile": profile})
        response.raise_for_status()
        return dict(response.json())

    def crm(self, *args: str) -> Any:
        return CliRunner().invoke(app, ["crm", *args, "--connection-file", str(self.path)])

    def admin_api(self, method: str, path: str) -> Any:
        response = requests.request(method, f"{self.handle.admin_url}/{path}", timeout=30, verify=self.ca)
        response.raise_for_status()
        return response.json()


@pytest.fixture
def org(tmp_path: Path) -> Iterator[Org]:
    with running_sandbox(empty=True) as handle:
        yield Org(handle, tmp_path)


def scored_contact(sf: Salesforce) -> str:
    """A contact as leadloop's sync leaves it: scored, tiered, with its reasons."""
    contact = sf.Contact.create({"LastName": "Buyer", "Email": "buyer@acme.example"})["id"]
    sf.Contact.update(contact, {"LL_Score__c": 87, "LL_Tier__c": "Sales priority",
                                "LL_Reasons__c": "Downloaded the EVK-7710 datasheet"})
    return str(contact)


def first_record(sf: Salesforce, soql: str) -> dict[str, Any]:
    return dict(sf.query(soql)["records"][0])


def field_permissions(permission_set: ET.Element) -> dict[str | None, str | None]:
    """Field → its `editable` flag, in a permission set's metadata."""
    return {p.findtext(f"{NS}field"): p.findtext(f"{NS}editable")
            for p in permission_set.iter(f"{NS}fieldPermissions")}


def refusal(caught: pytest.ExceptionInfo[Exception]) -> dict[str, Any]:
    return caught.value.content[0]  # type: ignore[attr-defined]


SCORES = "SELECT Id, LL_Score__c, LL_Tier__c, LL_Reasons__c FROM Contact WHERE Id = '{id}'"


def test_a_rep_reads_a_scored_contact_only_once_setup_assigns_them_the_read_permission_set(org: Org) -> None:
    first = org.crm("setup")
    assert first.exit_code == 0, first.output
    assert f"added permission set {SYNC_SET.name}" in first.output
    contact = scored_contact(org.admin)  # the integration user writes through Leadloop_Sync
    rep = org.session_of(org.user(REP)["session_id"])

    with pytest.raises(SalesforceMalformedRequest) as caught:
        rep.query(SCORES.format(id=contact))
    assert refusal(caught)["errorCode"] == "INVALID_FIELD"
    assert "No such column 'LL_Score__c' on entity 'Contact'" in refusal(caught)["message"]
    assert "LL_Score__c" not in {f["name"] for f in rep.Contact.describe()["fields"]}
    assert first_record(rep, f"SELECT LastName FROM Contact WHERE Id = '{contact}'")["LastName"] == "Buyer"

    org.write_connection(rep_usernames=[REP])
    check = org.crm("check")
    assert check.exit_code == 1
    assert f"rep {REP} can read leadloop's fields" in check.output and "MISSING" in check.output
    assert "Contact.LL_Score__c" in check.output or "and 16 more" in check.output

    second = org.crm("setup")
    assert second.exit_code == 0, second.output
    assert second.output.strip() == f"salesforce: assigned {READ_SET.name} to {REP}"
    record = rep.query(SCORES.format(id=contact))["records"][0]
    assert (record["LL_Score__c"], record["LL_Tier__c"]) == (87, "Sales priority")
    assert record["LL_Reasons__c"] == "Downloaded the EVK-7710 datasheet"
    described = {f["name"]: f for f in rep.Contact.describe()["fields"]}
    assert not described["LL_Score__c"]["updateable"]
    with pytest.raises(SalesforceMalformedRequest) as read_only:
        rep.Contact.update(contact, {"LL_Score__c": 99})
    assert refusal(read_only)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"

    after = org.crm("check")
    assert after.exit_code == 0, after.output


def test_setup_run_twice_changes_nothing_the_second_time(org: Org) -> None:
    org.user(REP)
    org.write_connection(rep_usernames=[REP])
    assert org.crm("setup").exit_code == 0
    counts = {name: org.admin.query(f"SELECT COUNT() FROM {name}")["totalSize"]
              for name in ("PermissionSet", "FieldPermissions", "PermissionSetAssignment", "ListView")}
    org.admin_api("POST", "stats/reset")

    again = org.crm("setup")

    assert again.exit_code == 0 and "nothing to do" in again.output, again.output
    assert set(org.admin_api("GET", "stats")["by_method"]["salesforce"]) == {"GET"}  # it only read
    assert counts == {name: org.admin.query(f"SELECT COUNT() FROM {name}")["totalSize"] for name in counts}


def test_a_field_made_through_the_tooling_api_is_hidden_even_from_the_integration_user_until_setup(
        org: Org) -> None:
    sf = org.admin
    sf.toolingexecute("sobjects/CustomField/", method="POST", data={
        "FullName": "Contact.LL_Score__c", "Metadata": {"label": "LL Score", "type": "Number", "precision": 6,
                                                        "scale": 1}})
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query("SELECT LL_Score__c FROM Contact")
    assert refusal(caught)["errorCode"] == "INVALID_FIELD"
    contact = sf.Contact.create({"LastName": "Buyer"})["id"]
    with pytest.raises(SalesforceMalformedRequest) as write:
        sf.Contact.update(contact, {"LL_Score__c": 5})
    assert refusal(write)["errorCode"] == "INVALID_FIELD"
    assert "No such column 'LL_Score__c' on sobject of type Contact" in refusal(write)["message"]

    check = org.crm("check")
    assert "it exists but the integration user cannot see it" in check.output

    setup = org.crm("setup")
    assert "created Contact.LL_Score__c" not in setup.output  # it existed: setup granted it instead
    sf.Contact.update(contact, {"LL_Score__c": 5})
    assert first_record(sf, f"SELECT LL_Score__c FROM Contact WHERE Id = '{contact}'")["LL_Score__c"] == 5


def test_the_users_of_a_public_group_get_the_read_permission_set(org: Org) -> None:
    sf = org.admin
    reps = [org.user(f"rep{i}@example.com") for i in range(2)]
    group = sf.Group.create({"Name": "Sales reps", "DeveloperName": "Sales_Reps", "Type": "Regular"})["id"]
    for rep in reps:
        sf.GroupMember.create({"GroupId": group, "UserOrGroupId": rep["id"]})
    org.write_connection(rep_group="Sales_Reps")

    setup = org.crm("setup")

    assert all(f"assigned {READ_SET.name} to {rep['username']}" in setup.output for rep in reps), setup.output
    contact = scored_contact(sf)
    for rep in reps:
        assert first_record(org.session_of(rep["session_id"]), SCORES.format(id=contact))["LL_Score__c"] == 87
    assert org.crm("check").exit_code == 0


def test_check_names_reps_that_do_not_exist_and_a_group_that_does_not(org: Org) -> None:
    org.write_connection(rep_usernames=["ghost@example.com"], rep_group="No_Such_Group")
    assert org.crm("setup").exit_code == 0
    check = org.crm("check")
    assert check.exit_code == 1
    assert "No active Salesforce user has the username ghost@example.com" in check.output
    assert "No public group has the API name No_Such_Group" in check.output


def test_a_rep_cannot_see_permission_objects_and_their_session_is_their_own(org: Org) -> None:
    rep_user = org.user(REP)
    rep = org.session_of(rep_user["session_id"])
    with pytest.raises(SalesforceMalformedRequest) as caught:
        rep.query("SELECT Id FROM FieldPermissions")
    assert refusal(caught)["errorCode"] == "INVALID_TYPE"
    assert rep.oauth2("userinfo")["user_id"] == rep_user["id"]
    task = rep.Task.create({"Subject": "Call back"})["id"]
    assert first_record(rep, f"SELECT OwnerId FROM Task WHERE Id = '{task}'")["OwnerId"] == rep_user["id"]


def test_the_reps_list_view_filters_my_leads_on_the_top_tier(org: Org) -> None:
    assert org.crm("setup").exit_code == 0
    session = requests.Session()
    session.trust_env, session.verify = False, org.ca
    response = session.get(f"{org.handle.base_url}/services/data/v61.0/ui-api/list-info/Lead/{LIST_VIEW}",
                           headers={"Authorization": f"Bearer {org.connection['salesforce']['session_id']}"},
                           timeout=30)
    view = response.json()
    assert view["scope"] == {"apiName": "mine"} and view["visibility"] == "Public"
    assert view["filteredByInfo"] == [{"fieldApiName": "LL_Tier__c", "operandLabels": ["Sales priority"],
                                       "operator": "Equals"}]
    assert "LL_Score__c" in [c["fieldApiName"] for c in view["displayColumns"]]


def test_the_metadata_folder_carries_both_permission_sets_and_the_list_view(tmp_path: Path) -> None:
    mapping = load_mapping().salesforce
    write_metadata(mapping, tmp_path, with_access=True)
    sync = ET.parse(tmp_path / "permissionsets" / f"{SYNC_SET.name}.permissionset-meta.xml").getroot()
    read = ET.parse(tmp_path / "permissionsets" / f"{READ_SET.name}.permissionset-meta.xml").getroot()
    editable = field_permissions(sync)
    assert editable == {f"{o}.{f}": "true" for o, f, _ in owned_fields(mapping)}
    readable = field_permissions(read)
    assert "Task.LL_Key__c" not in readable and set(readable.values()) == {"false"}
    view = ET.parse(tmp_path / "objects" / "Lead" / "listViews" / f"{LIST_VIEW}.listView-meta.xml").getroot()
    assert view.find(f"{NS}filterScope").text == "Mine"
    assert view.find(f"{NS}filters/{NS}value").text == "Sales priority"
    package = ET.parse(tmp_path / "package.xml").getroot()
    assert [t.find(f"{NS}name").text for t in package.iter(f"{NS}types")] == [
        "CustomField", "PermissionSet", "ListView"]


def test_check_says_the_task_fields_a_routed_task_is_created_with_can_be_set(org: Org) -> None:
    assert org.crm("setup").exit_code == 0
    check = org.crm("check")
    assert check.exit_code == 0, check.output
    assert "Task.ReminderDateTime can be set on a new task" in " ".join(check.output.split())


def test_a_task_field_the_integration_user_may_not_set_fails_the_check_with_the_fix() -> None:
    from leadloop.connectors.salesforce.setup import TASK_FIELDS, _check_task_fields

    described = {name: {"name": name, "createable": True} for name in TASK_FIELDS}
    described["ReminderDateTime"]["createable"] = False
    failed = [item for item in _check_task_fields(described) if not item.ok]
    assert [item.what for item in failed] == [
        "Task.ReminderDateTime can be set on a new task (the exact SLA time, as a reminder)"]
    assert "Task.ReminderDateTime" in (failed[0].fix or "")
    assert _check_task_fields({}) == []
