"""Bulk API 2.0 on the sandbox, through simple-salesforce's `sf.bulk2`."""

from __future__ import annotations

import csv
import io
import uuid

import pytest
from field_access import grant_field_access
from simple_salesforce import Salesforce


@pytest.fixture
def tag() -> str:
    return uuid.uuid4().hex[:8]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_query_job_pages_its_csv_results_by_locator(sf: Salesforce, tag: str) -> None:
    records = [
        {"attributes": {"type": "Lead"}, "LastName": f"Bulk{i:03d}", "Company": f"Bulk {tag}"}
        for i in range(120)
    ]
    sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": records})
    pages = list(
        sf.bulk2.Lead.query(
            f"SELECT Id, LastName, Owner.Email, IsConverted FROM Lead "
            f"WHERE Company = 'Bulk {tag}' ORDER BY LastName",
            max_records=50,
            wait=0,
        )
    )
    assert len(pages) == 3
    assert pages[0].splitlines()[0] == '"Id","LastName","Owner.Email","IsConverted"'
    rows = [row for page in pages for row in rows_of(page)]
    assert [row["LastName"] for row in rows] == [f"Bulk{i:03d}" for i in range(120)]
    assert rows[0]["IsConverted"] == "false" and "@" in rows[0]["Owner.Email"]


def test_an_ingest_job_upserts_and_reports_failures_per_row(sf: Salesforce, tag: str) -> None:
    field = f"Bulk_Key_{tag}__c"
    sf.toolingexecute(
        "sobjects/CustomField",
        method="POST",
        data={
            "FullName": f"Lead.{field}",
            "Metadata": {"label": "Bulk key", "type": "Text", "length": 40, "externalId": True},
        },
    )
    grant_field_access(sf, f"Lead.{field}")
    data = f"{field},LastName,Company,Email\nk1,One,Bulk {tag},one@example.com\nk2,,Bulk {tag},bad-email\n"
    job = sf.bulk2.Lead._client.create_job("upsert", external_id_field=field)
    assert job["state"] == "Open" and job["contentUrl"].endswith("/batches")
    sf.bulk2.Lead._client.upload_job_data(job["id"], data)
    sf.bulk2.Lead._client.close_job(job["id"])
    info = sf.bulk2.Lead._client.get_job(job["id"], False)
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    successes = rows_of(sf.bulk2.Lead.get_successful_records(job["id"]))
    failures = rows_of(sf.bulk2.Lead.get_failed_records(job["id"]))
    assert successes[0]["sf__Created"] == "true" and successes[0][field] == "k1"
    assert failures[0]["sf__Error"].startswith("INVALID_EMAIL_ADDRESS:")
    summary = sf.bulk2.Lead.upsert(
        records=[{field: "k1", "Title": "Engineer"}], external_id_field=field, wait=0
    )
    assert summary[0]["numberRecordsProcessed"] == 1 and summary[0]["numberRecordsFailed"] == 0
    lead = sf.query(f"SELECT Title FROM Lead WHERE {field} = 'k1'")["records"]
    assert [r["Title"] for r in lead] == ["Engineer"]
