"""Canonical records normalize at construction and reject bad values with the field named."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from crm.dataset import dataset_from_dict, dataset_json_schema
from crm.records import Account, Activity, ActivityKind, Person


def test_emails_are_lower_cased_and_their_domain_extracted():
    person = Person(id="p1", email="  Jane.Doe@Acme-Semi.COM ")
    assert person.email == "jane.doe@acme-semi.com"
    assert person.email_domain == "acme-semi.com"


def test_titles_are_trimmed_and_inner_whitespace_folded():
    assert Person(id="p1", title="  Sr.   HW  Eng. ").title == "Sr. HW Eng."


def test_blank_text_becomes_none_and_a_non_text_value_is_refused_with_its_field():
    assert Person(id="p1", title=" \t\n ", department="").title is None
    assert Person(id="p1", department="").department is None
    with pytest.raises(ValidationError) as info:
        Person(id="p1", title=42)
    assert "title" in str(info.value) and "string" in str(info.value)


def test_website_domain_is_extracted_without_scheme_www_or_path():
    assert Account(id="a1", website="https://www.Acme-Semi.com/products?x=1").domain == "acme-semi.com"


def test_naive_timestamps_are_taken_as_utc_and_aware_ones_converted():
    naive = Activity(id="x", person_id="p", kind="page_view", occurred_at=datetime(2024, 1, 1, 12))
    assert naive.occurred_at == datetime(2024, 1, 1, 12, tzinfo=UTC)
    cet = timezone(timedelta(hours=1))
    aware = Activity(id="y", person_id="p", kind=ActivityKind.PAGE_VIEW,
                     occurred_at=datetime(2024, 1, 1, 12, tzinfo=cet))
    assert aware.occurred_at == datetime(2024, 1, 1, 11, tzinfo=UTC)


def test_invalid_email_names_the_record_type_and_field():
    with pytest.raises(ValidationError) as info:
        Person(id="p1", email="no-at-sign")
    text = str(info.value)
    assert "Person" in text and "email" in text


def test_records_are_frozen():
    person = Person(id="p1")
    with pytest.raises(AttributeError):
        person.title = "CEO"  # type: ignore[misc]


def test_dataset_loader_skips_bad_records_and_says_why():
    dataset = dataset_from_dict({
        "people": [{"id": "ok", "email": "a@b.com"}, {"id": "bad", "email": "nope"}],
        "activities": [{"id": "a1", "person_id": "ok", "kind": "teleport",
                        "occurred_at": "2024-01-01T00:00:00Z"}],
    })
    assert [p.id for p in dataset.people] == ["ok"]
    problems = {str(i) for i in dataset.invalid}
    assert any("people[1] (id bad)" in p and "email" in p for p in problems)
    assert any("activities[0]" in p and "kind" in p for p in problems)


def test_dataset_schema_documents_every_record_kind():
    schema = dataset_json_schema()
    assert set(schema["properties"]) == {
        "accounts", "people", "activities", "opportunities", "campaigns", "assets", "owners", "contact_roles"
    }
    assert "Person" in schema["$defs"]


def test_an_unusable_domain_falls_back_to_the_website_and_normalizing_twice_changes_nothing():
    from pydantic import TypeAdapter

    account = Account(id="a1", domain="?", website="https://www.acme-semi.com/x")
    assert account.domain == "acme-semi.com"
    adapter = TypeAdapter(Account)
    assert adapter.validate_python(adapter.dump_python(account)) == account
