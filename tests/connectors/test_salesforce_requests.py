"""Request shapes of the Salesforce connector, checked against recorded HTTP with `responses`:
paging URLs, SOQL, batch sizes, upsert paths, headers, and which failures are retried."""

from __future__ import annotations

import json
import logging
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import SecretStr

from leadloop.connectors.mapping import CrmNotSetUp, ForbiddenFieldError, load_mapping
from leadloop.connectors.salesforce.client import AuthenticationError, salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.settings import SalesforceSettings
from leadloop.crm.changes import FieldUpdate, ObjectType, Priority, TaskUpsert
from leadloop.crm.records import Crm

INSTANCE = "https://sf.example.test"
BASE = f"{INSTANCE}/services/data/v59.0"
SESSION = "00DTEST!session-secret-value"
LEAD = "00Q000000000001AAA"
CONTACT = "003000000000001AAA"
ACCOUNT = "001000000000001AAA"
USER = "005000000000001AAA"


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def policy(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.02, max_retry_after=5, sleep=sleeps.append)


@pytest.fixture
def client(policy: RetryPolicy):
    settings = SalesforceSettings(instance_url=INSTANCE, session_id=SESSION)
    return salesforce_client(settings, None, policy=policy)


@pytest.fixture
def mapping():
    return load_mapping().salesforce


def describe(*names: str, relationships: dict[str, str] | None = None) -> dict:
    fields = [{"name": n, "relationshipName": None} for n in names]
    fields += [{"name": f, "relationshipName": r} for f, r in (relationships or {}).items()]
    return {"name": "X", "fields": fields}


def lead_row(n: int, stamp: str = "2024-05-01T10:00:00.000+0000", **extra) -> dict:
    row = {"attributes": {"type": "Lead", "url": f"/services/data/v59.0/sobjects/Lead/00Q{n:015d}"},
           "Id": f"00Q{n:015d}", "Email": f"p{n}@acme-semi.com", "LastName": f"P{n}", "Company": "Acme",
           "IsConverted": False, "IsDeleted": False, "SystemModstamp": stamp}
    row.update(extra)
    return row


LEAD_FIELDS = ("Id", "Email", "FirstName", "LastName", "Company", "IsConverted", "ConvertedContactId",
               "ConvertedAccountId", "ConvertedDate", "CreatedDate", "Title", "Country", "LeadSource",
               "Status", "OwnerId", "HasOptedOutOfEmail", "EmailBouncedReason", "SystemModstamp", "IsDeleted")


def soql_of(call) -> str:
    return parse_qs(urlparse(call.request.url).query)["q"][0]


@responses.activate
def test_a_pull_pages_through_query_all_with_the_locator_and_asks_for_full_batches(client, mapping):
    locator = "/services/data/v59.0/queryAll/01gXX0000000001-2000"
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 3, "done": False, "nextRecordsUrl": locator,
                                             "records": [lead_row(1), lead_row(2)]})
    responses.get(f"{INSTANCE}{locator}", json={"totalSize": 3, "done": True,
                                                 "records": [lead_row(3, "2024-05-01T11:00:00.000+0000")]})
    since = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    pages = list(SalesforceSource(client, mapping).pull("Lead", since))

    assert [len(p.records) for p in pages] == [2, 1]
    assert pages[-1].cursor == datetime(2024, 5, 1, 11, 0, tzinfo=UTC)
    query = responses.calls[0]  # no describe first: the mapped fields are asked for directly
    soql = soql_of(query)
    assert soql.startswith("SELECT Id, Email, FirstName")
    assert "FROM Lead WHERE SystemModstamp >= 2024-05-01T08:55:00+00:00" in soql  # 5-minute overlap
    assert soql.endswith("ORDER BY SystemModstamp ASC, Id ASC")
    assert query.request.headers["Sforce-Query-Options"] == "batchSize=2000"
    assert query.request.headers["Authorization"] == f"Bearer {SESSION}"
    assert responses.calls[1].request.url == f"{INSTANCE}{locator}"
    assert client.counter.calls == {"query:Lead": 2}


@responses.activate
def test_a_first_pull_without_a_cursor_reads_everything(client, mapping):
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 0, "done": True, "records": []})
    pages = list(SalesforceSource(client, mapping).pull("Lead", None))
    assert "WHERE" not in soql_of(responses.calls[0])
    assert pages[0].records == [] and pages[0].cursor is None


@responses.activate
def test_a_mapped_custom_field_missing_from_the_org_is_left_out_of_the_query(client, mapping, caplog):
    refusal = [{"errorCode": "INVALID_FIELD", "message": "No such column 'Partner_Owned__c' on entity "
                "'Lead'. If you are attempting to use a custom field, be sure to append the '__c'"}]
    responses.get(f"{BASE}/queryAll/", json=refusal, status=400)
    responses.get(f"{BASE}/sobjects/Lead/describe/", json=describe(*LEAD_FIELDS))  # no Partner_Owned__c
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 1, "done": True, "records": [lead_row(1)]})
    source = SalesforceSource(client, mapping)
    with caplog.at_level(logging.WARNING):
        pages = list(source.pull("Lead", None))
    assert "Partner_Owned__c" in soql_of(responses.calls[0])  # asked for first, refused, never retried
    assert responses.calls[1].request.url.endswith("/sobjects/Lead/describe/")
    assert "Partner_Owned__c" not in soql_of(responses.calls[2])
    assert client.counter.calls == {"query:Lead": 2, "describe:Lead": 1}
    list(source.pull("Lead", None))  # the source remembers what the org has
    assert "Partner_Owned__c" not in soql_of(responses.calls[3]) and len(responses.calls) == 4
    assert "Lead.Partner_Owned__c does not exist" in caplog.text
    assert pages[0].records[0].partner_owned is False


@responses.activate
def test_deleted_rows_become_tombstones_and_bad_values_are_rejected_not_raised(client, mapping):
    responses.get(f"{BASE}/sobjects/Lead/describe/", json=describe(*LEAD_FIELDS))
    rows = [lead_row(1, IsDeleted=True), lead_row(2, Email="not-an-email"), lead_row(3)]
    responses.get(f"{BASE}/queryAll/", json={"totalSize": 3, "done": True, "records": rows})
    page = next(SalesforceSource(client, mapping).pull("Lead", None))
    assert page.deleted == [f"sf-lead:00Q{1:015d}"]
    assert page.rejected[0][0] == f"sf-lead:00Q{2:015d}" and "not an email" in page.rejected[0][1]
    assert [r.id for r in page.records] == [f"sf-lead:00Q{3:015d}"]


def _updates(n: int) -> list[FieldUpdate]:
    return [FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id=f"00Q{i:015d}",
                        field="score", value=i) for i in range(n)]


@responses.activate
def test_field_updates_go_in_collections_of_at_most_200_without_all_or_none(client, mapping):
    def answer(request):
        body = json.loads(request.body)
        return 200, {}, json.dumps([{"id": r["id"], "success": True, "errors": []} for r in body["records"]])

    responses.add_callback(responses.PATCH, f"{BASE}/composite/sobjects/", callback=answer)
    results = SalesforceSink(client, mapping).write_fields(_updates(450))

    bodies = [json.loads(c.request.body) for c in responses.calls]
    assert [len(b["records"]) for b in bodies] == [200, 200, 50]
    assert all(b["allOrNone"] is False for b in bodies)
    assert bodies[0]["records"][0] == {"attributes": {"type": "Lead"}, "id": f"00Q{0:015d}", "LL_Score__c": 0}
    assert len(results) == 450 and all(r.ok for r in results)
    assert results[7].key == f"00Q{7:015d}:score"


@responses.activate
def test_several_fields_of_one_record_travel_in_one_row(client, mapping):
    responses.patch(f"{BASE}/composite/sobjects/", json=[{"id": ACCOUNT, "success": True, "errors": []}])
    updates = [FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.ACCOUNT, record_id=ACCOUNT,
                           field=f, value=v) for f, v in (("account_fit", 80), ("account_tier", "A"))]
    results = SalesforceSink(client, mapping).write_fields(updates)
    records = json.loads(responses.calls[0].request.body)["records"]
    assert records == [{"attributes": {"type": "Account"}, "id": ACCOUNT, "LL_Account_Fit__c": 80,
                        "LL_Account_Tier__c": "A"}]
    assert [r.ok for r in results] == [True, True]


@responses.activate
def test_a_field_outside_the_allowlist_raises_before_any_request(client, mapping):
    update = FieldUpdate(crm=Crm.SALESFORCE, object_type=ObjectType.PERSON, record_id=LEAD, field="email",
                         value="x@y.com")
    with pytest.raises(ForbiddenFieldError):
        SalesforceSink(client, mapping).write_fields([*_updates(3), update])
    assert len(responses.calls) == 0


@responses.activate
def test_a_partial_failure_reports_the_crms_status_code_and_message_per_record(client, mapping):
    responses.patch(f"{BASE}/composite/sobjects/", json=[
        {"id": f"00Q{0:015d}", "success": True, "errors": []},
        {"success": False, "errors": [{"statusCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                                       "message": "Score must be positive", "fields": []}]},
        {"success": False,
         "errors": [{"statusCode": "UNABLE_TO_LOCK_ROW", "message": "locked", "fields": []}]},
    ])
    results = SalesforceSink(client, mapping).write_fields(_updates(3))
    assert [r.ok for r in results] == [True, False, False]
    assert results[1].error == "FIELD_CUSTOM_VALIDATION_EXCEPTION: Score must be positive"
    assert results[1].retriable is False and results[2].retriable is True


def _task(key: str, person: str = CONTACT) -> TaskUpsert:
    return TaskUpsert(crm=Crm.SALESFORCE, key=key, owner_id=USER, subject="Follow up: EVK request",
                      body="Why now: requested an evaluation kit", due_date=date(2024, 6, 3),
                      priority=Priority.HIGH, person_record_id=person, account_record_id=ACCOUNT)


@responses.activate
def test_tasks_are_upserted_on_the_external_id_key(client, mapping):
    responses.patch(f"{BASE}/composite/sobjects/Task/LL_Key__c",
                    json=[{"id": "00T000000000001AAA", "success": True, "errors": [], "created": True},
                          {"id": "00T000000000002AAA", "success": True, "errors": [], "created": False}])
    results = SalesforceSink(client, mapping).upsert_tasks([_task("k1"), _task("k2", person=LEAD)])
    body = json.loads(responses.calls[0].request.body)
    assert body["allOrNone"] is False
    first, second = body["records"]
    assert first == {"attributes": {"type": "Task"}, "LL_Key__c": "k1", "OwnerId": USER,
                     "Subject": "Follow up: EVK request",
                     "Description": "Why now: requested an evaluation kit",
                     "ActivityDate": "2024-06-03", "Priority": "High", "Status": "Not Started",
                     "WhoId": CONTACT, "WhatId": ACCOUNT}
    assert "WhatId" not in second  # Salesforce forbids WhatId beside a Lead
    assert [(r.key, r.crm_id) for r in results] == [
        ("k1", "00T000000000001AAA"), ("k2", "00T000000000002AAA")]


@responses.activate
def test_429_and_5xx_are_retried_honouring_retry_after(client, sleeps):
    url = f"{BASE}/limits/"
    responses.get(url, status=429, headers={"Retry-After": "2"},
                  json=[{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"}])
    responses.get(url, status=503, json=[{"errorCode": "SERVER_UNAVAILABLE", "message": "busy"}])
    responses.get(url, json={"DailyApiRequests": {"Max": 10, "Remaining": 9}})
    assert client.request("GET", "limits/", "limits")["DailyApiRequests"]["Max"] == 10
    assert len(responses.calls) == 3
    assert sleeps[0] >= 2.0 and sleeps[1] < 1


@responses.activate
def test_a_dropped_connection_is_retried(client):
    url = f"{BASE}/limits/"
    responses.get(url, body=requests.ConnectionError("connection reset by peer"))
    responses.get(url, json={"ok": True})
    assert client.request("GET", "limits/", "limits") == {"ok": True}
    assert client.counter.calls == {"limits": 2}


@responses.activate
def test_lock_contention_is_retried_but_a_validation_error_never_is(client, mapping):
    url = f"{BASE}/composite/sobjects/"
    responses.patch(url, status=400, json=[{"errorCode": "UNABLE_TO_LOCK_ROW", "message": "locked"}])
    responses.patch(url, status=400, json=[{"errorCode": "STRING_TOO_LONG", "message": "value too large"}])
    results = SalesforceSink(client, mapping).write_fields(_updates(2))
    assert len(responses.calls) == 2  # one retry for the lock, none for the validation error
    assert all(not r.ok and not r.retriable and r.error.startswith("STRING_TOO_LONG") for r in results)


@responses.activate
def test_a_field_the_org_lacks_stops_the_writes_at_the_first_call(client, mapping):
    """INVALID_FIELD refuses the whole call for a field every record's write names: `crm setup` is
    missing, so the sink says so at once instead of failing each batch the same way."""
    url = f"{BASE}/composite/sobjects/"
    missing = "No such column 'LL_Score__c' on sobject of type Lead"
    responses.patch(url, status=400, json=[{"errorCode": "INVALID_FIELD", "message": missing}])
    with pytest.raises(CrmNotSetUp, match="LL_Score__c"):
        SalesforceSink(client, mapping).write_fields(_updates(450))  # three calls' worth
    assert len(responses.calls) == 1


@responses.activate
def test_giving_up_after_the_last_attempt_is_logged_without_secrets(client, caplog):
    responses.get(f"{BASE}/limits/", status=500, json=[{"errorCode": "UNKNOWN", "message": "boom"}])
    with caplog.at_level(logging.WARNING), pytest.raises(Exception, match="500"):
        client.request("GET", "limits/", "limits")
    assert len(responses.calls) == 4
    assert "gave up after 4 attempts" in caplog.text
    assert SESSION not in caplog.text and "session-secret" not in repr(client)


@responses.activate
def test_limit_usage_is_tracked_from_the_response_header(client):
    responses.get(f"{BASE}/limits/", json={}, headers={"Sforce-Limit-Info": "api-usage=18/5000"})
    client.request("GET", "limits/", "limits")
    assert (client.usage.used, client.usage.limit) == (18, 5000)


def _password_settings() -> SalesforceSettings:
    return SalesforceSettings(instance_url=INSTANCE, session_id=SESSION,
                              login_url="https://login.example.test",
                              username="ops@example.com", password=SecretStr("pw"),
                              security_token=SecretStr("tok"), consumer_key="ck")


@responses.activate
def test_an_expired_session_is_renewed_and_the_call_repeated(policy):
    client = salesforce_client(_password_settings(), None, policy=policy)
    url = f"{BASE}/limits/"
    responses.get(url, status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])
    responses.get(url, json={"ok": True})
    token = responses.post("https://login.example.test/services/oauth2/token",
                           json={"access_token": "00DNEW!fresh", "instance_url": INSTANCE})
    assert client.request("GET", "limits/", "limits") == {"ok": True}
    form = parse_qs(token.calls[0].request.body)
    assert form["grant_type"] == ["password"] and form["password"] == ["pwtok"]
    assert form["client_id"] == ["ck"]
    assert responses.calls[-1].request.headers["Authorization"] == "Bearer 00DNEW!fresh"


@responses.activate
def test_a_session_expiring_mid_query_resumes_from_the_cursor_not_the_locator(policy, mapping):
    client = salesforce_client(_password_settings(), None, policy=policy)
    responses.get(f"{BASE}/sobjects/Lead/describe/", json=describe(*LEAD_FIELDS))
    locator = "/services/data/v59.0/queryAll/01gOLD-2"
    t1, t2 = "2024-05-01T10:00:00.000+0000", "2024-05-01T10:00:00.500+0000"
    t3 = "2024-05-01T10:05:00.000+0000"
    responses.get(f"{BASE}/queryAll/", json={"done": False, "nextRecordsUrl": locator,
                                             "records": [lead_row(1, t1), lead_row(2, t2)]})
    responses.get(f"{INSTANCE}{locator}", status=401,
                  json=[{"errorCode": "INVALID_SESSION_ID", "message": "Session expired"}])
    responses.post("https://login.example.test/services/oauth2/token",
                   json={"access_token": "00DNEW!fresh", "instance_url": INSTANCE})
    # the resumed query re-reads the second that holds the cursor, then continues
    responses.get(f"{BASE}/queryAll/", json={"done": True, "records": [
        lead_row(1, t1), lead_row(2, t2), lead_row(3, t3)]})
    pages = list(SalesforceSource(client, mapping).pull("Lead", None))

    ids = [r.id for p in pages for r in p.records]
    assert ids == [f"sf-lead:00Q{n:015d}" for n in (1, 2, 3)]
    resumed = [c for c in responses.calls if "/queryAll/?" in c.request.url][-1]
    assert "SystemModstamp >= 2024-05-01T10:00:00+00:00" in soql_of(resumed)
    assert resumed.request.headers["Authorization"] == "Bearer 00DNEW!fresh"


@responses.activate
def test_without_credentials_an_expired_session_is_a_clear_error(client):
    responses.get(f"{BASE}/limits/", json={"ok": True})
    responses.get(f"{BASE}/limits/", status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "x"}])
    client.request("GET", "limits/", "limits")
    with pytest.raises(AuthenticationError, match="session expired and no credentials are configured"):
        client.request("GET", "limits/", "limits")


@responses.activate
def test_a_session_id_refused_on_the_first_call_is_rejected_not_expired(client):
    responses.get(f"{BASE}/limits/", status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "x"}])
    with pytest.raises(AuthenticationError) as raised:
        client.request("GET", "limits/", "limits")
    assert "rejected the configured session id" in str(raised.value)
    assert "expired" not in str(raised.value) and SESSION not in str(raised.value)


@responses.activate
def test_a_refused_login_after_the_session_worked_says_it_expired(policy):
    client = salesforce_client(_password_settings(), None, policy=policy)
    responses.get(f"{BASE}/limits/", json={"ok": True})
    responses.get(f"{BASE}/limits/", status=401, json=[{"errorCode": "INVALID_SESSION_ID", "message": "x"}])
    responses.post("https://login.example.test/services/oauth2/token", status=400,
                   json={"error": "invalid_grant", "error_description": "authentication failure"})
    client.request("GET", "limits/", "limits")
    with pytest.raises(AuthenticationError) as raised:
        client.request("GET", "limits/", "limits")
    assert str(raised.value).startswith("the Salesforce session expired and logging in again failed: "
                                        "the Salesforce username-password login")


@responses.activate
def test_the_jwt_bearer_flow_posts_a_signed_assertion(tmp_path, policy):
    import jwt

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    key_file = tmp_path / "server.key"
    key_file.write_bytes(pem)
    settings = SalesforceSettings(login_url="https://login.salesforce.com", username="ops@example.com",
                                  consumer_key="3MVG9-consumer", private_key_file=key_file)
    token = responses.post("https://login.salesforce.com/services/oauth2/token",
                           json={"access_token": "00DJWT!tok", "instance_url": INSTANCE})
    client = salesforce_client(settings, None, policy=policy)
    form = parse_qs(token.calls[0].request.body)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(form["assertion"][0], key.public_key(), algorithms=["RS256"],
                        audience="https://login.salesforce.com")
    assert claims["iss"] == "3MVG9-consumer" and claims["sub"] == "ops@example.com"
    assert client.instance_url == INSTANCE


@responses.activate
def test_refused_credentials_name_the_flow_but_not_the_secret(policy):
    settings = SalesforceSettings(login_url="https://login.example.test", username="ops@example.com",
                                  password=SecretStr("hunter2"))
    responses.post("https://login.example.test/services/oauth2/token", status=400,
                   json={"error": "invalid_grant", "error_description": "authentication failure"})
    with pytest.raises(AuthenticationError) as raised:
        salesforce_client(settings, None, policy=policy)
    assert "username-password" in str(raised.value) and "invalid_grant" in str(raised.value)
    assert "hunter2" not in str(raised.value)
