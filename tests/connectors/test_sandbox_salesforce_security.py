"""The sandbox's Salesforce enforces field-level security as Salesforce does: the rules on the permission
objects themselves, every API (REST, Bulk API 2.0) run as the session's user, and the generated
world's reps on their Standard User profile. Through simple-salesforce on the shared sandbox."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

SandboxFixture = Any  # tests/connectors/conftest.py's fixture object


def session_of(sandbox: SandboxFixture, username: str) -> tuple[dict[str, Any], Salesforce]:
    user = sandbox.admin_post("salesforce/users", {"username": username})
    session = requests.Session()
    session.trust_env, session.verify = False, sandbox.ca_path
    return user, Salesforce(instance_url=sandbox.base_url, session_id=user["session_id"], session=session,
                            version="59.0")


def error_of(caught: pytest.ExceptionInfo[Exception]) -> dict[str, Any]:
    return caught.value.content[0]  # type: ignore[attr-defined]


@pytest.fixture
def permission_set(sf: Salesforce) -> str:
    name = f"Test_{uuid.uuid4().hex[:8]}"
    return str(sf.PermissionSet.create({"Name": name, "Label": name})["id"])


def test_field_permissions_follow_salesforces_rules(sf: Salesforce, permission_set: str) -> None:
    def grant(field: str, read: bool = True, edit: bool = False) -> dict[str, Any]:
        row = {"ParentId": permission_set, "SobjectType": field.split(".")[0], "Field": field,
               "PermissionsRead": read, "PermissionsEdit": edit}
        return dict(sf.FieldPermissions.create(row))

    with pytest.raises(SalesforceMalformedRequest) as edit_without_read:
        grant("Lead.Title", read=False, edit=True)
    assert error_of(edit_without_read)["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    with pytest.raises(SalesforceMalformedRequest) as required_field:
        grant("Lead.LastName")  # required fields are always visible: no field permission names them
    assert error_of(required_field)["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    created = grant("Contact.Account")  # a lookup may be named without its "Id" (API 50.0+)
    stored = sf.query(f"SELECT Field FROM FieldPermissions WHERE Id = '{created['id']}'")["records"][0]
    assert stored["Field"] == "Contact.AccountId"
    with pytest.raises(SalesforceMalformedRequest) as twice:
        grant("Contact.AccountId")
    assert error_of(twice)["errorCode"] == "DUPLICATE_VALUE"
    described = {f["name"]: f for f in sf.Lead.describe()["fields"]}
    assert described["Title"]["permissionable"] and not described["LastName"]["permissionable"]


def test_a_permission_set_is_assigned_to_a_user_once(sf: Salesforce, sandbox: SandboxFixture,
                                                     permission_set: str) -> None:
    user, _ = session_of(sandbox, f"once.{uuid.uuid4().hex[:6]}@example.com")
    sf.PermissionSetAssignment.create({"AssigneeId": user["id"], "PermissionSetId": permission_set})
    with pytest.raises(SalesforceMalformedRequest) as again:
        sf.PermissionSetAssignment.create({"AssigneeId": user["id"], "PermissionSetId": permission_set})
    assert error_of(again)["errorCode"] == "DUPLICATE_VALUE"
    assert "Duplicate PermissionSetAssignment" in error_of(again)["message"]


def test_bulk_jobs_run_as_their_user(sf: Salesforce, sandbox: SandboxFixture) -> None:
    field = f"Hidden_{uuid.uuid4().hex[:8]}__c"
    sf.toolingexecute("sobjects/CustomField/", method="POST", data={
        "FullName": f"Lead.{field}", "Metadata": {"label": "Hidden", "type": "Text", "length": 20}})
    _, rep = session_of(sandbox, f"bulk.{uuid.uuid4().hex[:6]}@example.com")
    with pytest.raises(SalesforceMalformedRequest) as query_job:
        rep.bulk2.Lead._client.create_job("query", query=f"SELECT Id, {field} FROM Lead")
    assert error_of(query_job)["errorCode"] == "INVALID_FIELD"
    job = rep.bulk2.Lead._client.create_job("insert")
    rep.bulk2.Lead._client.upload_job_data(job["id"], f"LastName,Company,{field}\nHidden,Acme,x\n")
    rep.bulk2.Lead._client.close_job(job["id"])
    failed = rep.bulk2.Lead.get_failed_records(job["id"])
    assert f"INVALID_FIELD:No such column '{field}' on sobject of type Lead" in failed


def test_the_worlds_reps_read_the_standard_and_world_fields_through_their_profile(
        sf: Salesforce, sandbox: SandboxFixture) -> None:
    username = sf.query("SELECT Username FROM User WHERE Title = 'Account Executive' LIMIT 1")["records"][0]
    user, rep = session_of(sandbox, username["Username"])
    assert user["profile"] == "Standard User"
    leads = rep.query("SELECT Email, Title, Partner_Owned__c, Owner.Email FROM Lead LIMIT 3")["records"]
    assert leads and all("Email" in lead for lead in leads)
    with pytest.raises(SalesforceMalformedRequest) as setup_object:
        rep.query("SELECT Id FROM PermissionSetAssignment")
    assert error_of(setup_object)["errorCode"] == "INVALID_TYPE"
