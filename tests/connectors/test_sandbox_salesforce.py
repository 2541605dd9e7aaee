"""The sandbox's Salesforce, driven over HTTPS by simple-salesforce as leadloop's connector drives it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from field_access import grant_field_access
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

SandboxFixture = Any  # tests/connectors/conftest.py's fixture object


def trusting_session(ca_path: str) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the machine's REQUESTS_CA_BUNDLE would override `verify`
    session.verify = ca_path
    return session


def backend(sandbox: SandboxFixture) -> Any:
    return next(b for b in sandbox.handle.core.backends if b.name == "salesforce")


def error_of(caught: pytest.ExceptionInfo[Exception]) -> dict[str, Any]:
    return caught.value.content[0]  # type: ignore[attr-defined]


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


def create_leads(sf: Salesforce, tag: str, n: int) -> list[str]:
    ids: list[str] = []
    for start in range(0, n, 200):
        records = [
            {
                "attributes": {"type": "Lead"},
                "LastName": f"Batch{i}",
                "Company": f"Co {tag}",
                "Email": f"p{i}.{tag}@example.com",
            }
            for i in range(start, min(n, start + 200))
        ]
        results = sf.restful(
            "composite/sobjects", method="POST", json={"allOrNone": True, "records": records}
        )
        ids += [result["id"] for result in results]
    return ids


def test_the_generated_world_is_in_the_org(sf: Salesforce) -> None:
    contacts = sf.query(
        "SELECT Id, Email, Account.Name, Owner.Email FROM Contact WHERE AccountId != null LIMIT 5"
    )
    assert contacts["totalSize"] > 0
    assert all(record["Account"]["Name"] for record in contacts["records"])
    tasks = sf.query(
        "SELECT Subject, Description, Who.Type FROM Task WHERE Subject LIKE 'Form fill:%' LIMIT 5"
    )
    assert all(record["Who"]["Type"] in ("Lead", "Contact") for record in tasks["records"])
    members = sf.query("SELECT COUNT() FROM CampaignMember WHERE HasResponded = true")
    assert members["totalSize"] > 0


def test_query_all_follows_next_records_url_across_batches(sf: Salesforce, tag: str) -> None:
    create_leads(sf, tag, 450)
    soql = f"SELECT Id, Email FROM Lead WHERE Company = 'Co {tag}' ORDER BY Email"
    first = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=200"})
    assert first["totalSize"] == 450 and not first["done"] and len(first["records"]) == 200
    assert first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert first["nextRecordsUrl"].endswith("-200")
    everything = sf.query_all(soql, headers={"Sforce-Query-Options": "batchSize=200"})
    emails = [record["Email"] for record in everything["records"]]
    assert len(emails) == 450 and emails == sorted(emails) and len(set(emails)) == 450


def test_crud_keeps_modstamps_and_leaves_a_tombstone_for_query_all(sf: Salesforce, tag: str) -> None:
    created = sf.Lead.create({"LastName": "Ohm", "Company": f"Res {tag}", "Email": f"ohm.{tag}@example.com"})
    lead_id = created["id"]
    assert created["success"] and len(lead_id) == 18 and lead_id.startswith("00Q")
    before = sf.Lead.get(lead_id)
    assert before["Status"] == "Open - Not Contacted" and before["IsConverted"] is False
    assert sf.Lead.update(lead_id, {"Title": "Power Engineer"}) == 204
    after = sf.Lead.get(lead_id)
    assert after["Title"] == "Power Engineer"
    assert after["SystemModstamp"] >= before["SystemModstamp"]
    assert after["SystemModstamp"].endswith(".000+0000")
    assert sf.Lead.get(lead_id, params={"fields": "Email"}) == {
        "attributes": before["attributes"],
        "Email": f"ohm.{tag}@example.com",
        "Id": lead_id,
    }
    assert sf.Lead.delete(lead_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Lead.get(lead_id)
    soql = f"SELECT Id, IsDeleted FROM Lead WHERE Id = '{lead_id}'"
    assert sf.query(soql)["totalSize"] == 0
    assert sf.query_all(soql, include_deleted=True)["records"][0]["IsDeleted"] is True


def test_writes_to_unknown_or_read_only_fields_are_refused(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "X", "Company": "Y", "Fit__c": 3})
    assert error_of(caught) == {
        "message": "No such column 'Fit__c' on sobject of type Lead",
        "errorCode": "INVALID_FIELD",
        "fields": ["Fit__c"],
    }
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"LastName": "X", "Company": "Y", "IsConverted": True})
    assert error_of(caught)["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.Lead.create({"Company": "Y"})
    assert error_of(caught)["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_tooling_creates_an_external_id_field_that_upsert_uses(sf: Salesforce, tag: str) -> None:
    field = f"Sync_Key_{tag}__c"
    result = sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={
            "FullName": f"Task.{field}",
            "Metadata": {
                "label": "Sync Key",
                "type": "Text",
                "length": 64,
                "externalId": True,
                "unique": True,
            },
        },
    )
    assert result["success"] and result["id"].startswith("00N")
    grant_field_access(sf, f"Task.{field}")  # a new field is visible to nobody until granted
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.toolingexecute(
            "sobjects/CustomField",
            method="POST",
            data={
                "FullName": f"Task.{field}",
                "Metadata": {"label": "Sync Key", "type": "Text", "length": 64},
            },
        )
    assert error_of(caught)["errorCode"] == "DUPLICATE_DEVELOPER_NAME"
    described = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert described[field]["externalId"] and described[field]["custom"] and described[field]["length"] == 64
    assert sf.Task.upsert(f"{field}/k-{tag}", {"Subject": "Follow up", "Priority": "High"}) == 201
    assert sf.Task.upsert(f"{field}/k-{tag}", {"Subject": "Follow up again"}) == 200
    rows = sf.query(f"SELECT Subject, Priority, {field} FROM Task WHERE {field} = 'k-{tag}'")["records"]
    assert [(r["Subject"], r["Priority"]) for r in rows] == [("Follow up again", "High")]
    with pytest.raises(SalesforceResourceNotFound) as not_external:
        sf.Task.upsert(f"Subject/k-{tag}", {"Priority": "Low"})
    assert error_of(not_external)["errorCode"] == "NOT_FOUND"
    listed = sf.toolingexecute(
        "query/?q=SELECT+Id,DeveloperName+FROM+CustomField+WHERE+TableEnumOrId='Task'"
    )
    assert f"Sync_Key_{tag}" in [r["DeveloperName"] for r in listed["records"]]


def test_collections_report_each_record_and_honour_all_or_none(
    sf: Salesforce, sandbox: SandboxFixture, tag: str
) -> None:
    ids = create_leads(sf, tag, 3)
    sandbox.admin_post(
        "faults",
        {"crm": "salesforce", "reject": [{"object": "Lead", "id": ids[1], "message": "Territory is locked"}]},
    )
    update = [{"attributes": {"type": "Lead"}, "id": record_id, "Title": "Buyer"} for record_id in ids]
    partial = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": update})
    assert [r["success"] for r in partial] == [True, False, True]
    assert partial[1]["errors"] == [
        {"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION", "message": "Territory is locked", "fields": []}
    ]
    update = [{**record, "Title": "Engineer"} for record in update]
    rolled_back = sf.restful(
        "composite/sobjects", method="PATCH", json={"allOrNone": True, "records": update}
    )
    assert [r["errors"][0]["statusCode"] for r in rolled_back] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    ]
    titles = sf.query(f"SELECT Title FROM Lead WHERE Company = 'Co {tag}' ORDER BY LastName")["records"]
    assert [r["Title"] for r in titles] == ["Buyer", None, "Buyer"]


def test_collection_upsert_by_external_id(sf: Salesforce, tag: str) -> None:
    field = f"Ext_{tag}__c"
    sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={
            "FullName": f"Contact.{field}",
            "Metadata": {"label": "Ext", "type": "Text", "length": 40, "externalId": True},
        },
    )
    grant_field_access(sf, f"Contact.{field}")
    records = [{"attributes": {"type": "Contact"}, field: f"c{i}", "LastName": f"Up{i}"} for i in range(3)]
    created = sf.restful(
        f"composite/sobjects/Contact/{field}", method="PATCH", json={"allOrNone": False, "records": records}
    )
    assert [r["created"] for r in created] == [True, True, True]
    records[0]["LastName"] = "Changed"
    again = sf.restful(
        f"composite/sobjects/Contact/{field}",
        method="PATCH",
        json={"allOrNone": False, "records": [*records, {**records[1]}]},
    )
    assert [r["success"] for r in again] == [True, False, True, False]
    assert again[1]["errors"][0]["statusCode"] == "DUPLICATE_EXTERNAL_ID"
    assert again[0] == {"id": created[0]["id"], "success": True, "errors": [], "created": False}


def test_more_than_200_records_is_the_documented_error(sf: Salesforce) -> None:
    records = [{"attributes": {"type": "Lead"}, "LastName": "X", "Company": "Y"}] * 201
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.restful("composite/sobjects", method="POST", json={"records": records})
    assert error_of(caught) == {
        "message": "record limit reached. cannot submit more than 200 records into this call",
        "errorCode": "EXCEEDED_ID_LIMIT",
    }


def test_describe_lists_fields_with_their_types_and_picklists(sf: Salesforce) -> None:
    lead = sf.Lead.describe()
    assert lead["keyPrefix"] == "00Q" and lead["name"] == "Lead"
    fields = {f["name"]: f for f in lead["fields"]}
    assert fields["Email"]["type"] == "email" and fields["Email"]["length"] == 80
    assert fields["IsConverted"]["updateable"] is False
    assert "Open - Not Contacted" in [p["value"] for p in fields["Status"]["picklistValues"]]
    assert fields["OwnerId"]["relationshipName"] == "Owner" and fields["OwnerId"]["referenceTo"] == ["User"]
    names = [s["name"] for s in sf.describe()["sobjects"]]
    for expected in (
        "Account",
        "Contact",
        "Lead",
        "Opportunity",
        "OpportunityContactRole",
        "Campaign",
        "CampaignMember",
        "Task",
        "Event",
        "User",
    ):
        assert expected in names


@pytest.mark.parametrize(
    ("soql", "code"),
    [
        ("SELECT Id, Fit__c FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Lead WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Prospect", "INVALID_TYPE"),
    ],
)
def test_bad_queries_get_salesforces_own_errors(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as caught:
        sf.query(soql)
    assert error_of(caught)["errorCode"] == code


def test_a_wrong_token_is_invalid_session_id(sandbox: SandboxFixture) -> None:
    stranger = Salesforce(
        instance_url=sandbox.base_url,
        session_id="00Dxx!wrong",
        session=trusting_session(sandbox.ca_path),
        version="59.0",
    )
    with pytest.raises(SalesforceExpiredSession) as caught:
        stranger.query("SELECT Id FROM Lead")
    assert error_of(caught) == {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}


def test_unknown_object_and_version_are_not_found(sf: Salesforce, sandbox: SandboxFixture) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Prospect.describe()
    http = trusting_session(sandbox.ca_path)
    token = sandbox.connection["salesforce"]["session_id"]
    response = http.get(
        f"{sandbox.base_url}/services/data/v42.0/limits", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 404 and response.json()[0]["errorCode"] == "NOT_FOUND"


def test_password_login_issues_a_token_and_bad_credentials_are_invalid_grant(sandbox: SandboxFixture) -> None:
    http = trusting_session(sandbox.ca_path)
    creds = backend(sandbox).credentials()
    url = f"{sandbox.base_url}/services/oauth2/token"
    good = http.post(
        url,
        data={
            "grant_type": "password",
            "username": creds["username"],
            "password": creds["password"] + creds["security_token"],
        },
    )
    assert good.status_code == 200
    body = good.json()
    assert body["token_type"] == "Bearer" and body["instance_url"] == sandbox.base_url
    fresh = Salesforce(
        instance_url=body["instance_url"],
        session_id=body["access_token"],
        session=trusting_session(sandbox.ca_path),
        version="62.0",
    )
    assert fresh.query("SELECT COUNT() FROM User")["totalSize"] >= 1
    bad = http.post(url, data={"grant_type": "password", "username": creds["username"], "password": "nope"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


@pytest.fixture
def small_allocation(sandbox: SandboxFixture) -> Iterator[Any]:
    sf_backend = backend(sandbox)
    limit = sf_backend.usage.limit
    yield sf_backend
    sf_backend.set_daily_limit(limit)


def test_every_response_reports_usage_and_a_spent_allocation_is_refused(
    sf: Salesforce, small_allocation: Any
) -> None:
    sf.query("SELECT Id FROM User LIMIT 1")
    used, total = sf.api_usage["api-usage"]
    assert total == 15000 and used >= 1
    assert sf.limits()["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - used - 1}
    small_allocation.set_daily_limit(used + 2)  # the limits call was one more
    sf.query("SELECT Id FROM User LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as caught:
        sf.query("SELECT Id FROM User LIMIT 1")
    assert error_of(caught) == {
        "message": "TotalRequests Limit exceeded.",
        "errorCode": "REQUEST_LIMIT_EXCEEDED",
    }
