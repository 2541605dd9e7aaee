"""Canonical records normalize at construction and reject bad values with the field named."""

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from leadloop.crm.dataset import (
    _WHOLE_FILE,
    DatasetError,
    dataset_from_dict,
    dataset_json_schema,
    load_dataset_file,
)
from leadloop.crm.records import Account, Activity, ActivityKind, Person


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


# -- loading a dataset file: whole through pydantic's JSON parser, else record by record -------------------

# Values the records accept (quirky on purpose: normalization must come out the same) and refuse.
_GOOD = {
    "when": ["2026-11-01T12:00:00Z", "2026-11-01T12:00:00+02:00", "2026-11-01T12:00:00", "2026-11-01",
             1_790_000_000, 1_790_000_000.5],
    "email": ["Jane.Doe@Acme-Semi.COM", "  x@y.org ", "", None],
    "title": ["  Sr.   HW  Eng. ", "Buyer II", " \t ", "", None],
    "kind": ["page_view", "form_fill"],
    "duration": [None, 10, "250", 1.5, "7.5", True],
    "employees": [None, 10, "250", True],
    "website": ["https://www.Acme-Semi.com/products?x=1", "acme.com", "?", "", None],
    "closed": [True, False, "yes", "true", 1, 0, "no"],
    "close_date": ["2026-11-01", "2026-11-01T00:00:00", None],
}
_BAD = {
    "when": ["yesterday", "", None, True], "email": ["no-at-sign", 42], "title": [7, True],
    "kind": ["teleport", "FORM_FILL", "", None], "duration": [-3, "many", ""], "employees": [-3, 1.5, "many"],
    "website": [3], "closed": [None, 2], "close_date": ["2026-11-01T12:00:00Z", 1_790_000_000],
}


def _file_and_record_by_record(tmp_path, data):
    path = tmp_path / "dataset.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return load_dataset_file(path), dataset_from_dict(json.loads(path.read_text(encoding="utf-8")))


_KINDS = ("accounts", "people", "activities", "opportunities", "campaigns", "assets", "owners",
          "contact_roles", "invalid")


@st.composite
def _values(draw):
    values = {name: draw(st.sampled_from(choices)) for name, choices in _GOOD.items()}
    broken = draw(st.none() | st.sampled_from(sorted(_BAD)))
    if broken:
        values[broken] = draw(st.sampled_from(_BAD[broken]))
    return broken, values


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_values())
def test_a_dataset_file_loads_to_the_same_records_either_way(tmp_path, case):
    broken, v = case
    data = {
        "generated_at": "2026-11-01T12:00:00Z",
        "accounts": [{"id": "a1", "name": "Acme", "website": v["website"], "employees": v["employees"]}],
        "people": [{"id": "p1", "email": v["email"], "title": v["title"], "account_id": "a1"},
                   {"id": "p2", "email": "ok@acme.com"}],
        "activities": [{"id": "x1", "person_id": "p1", "kind": v["kind"], "occurred_at": v["when"],
                        "duration_seconds": v["duration"], "url": v["title"]}],
        "opportunities": [{"id": "o1", "account_id": "a1", "is_closed": v["closed"],
                           "close_date": v["close_date"]}],
    }
    (dataset, extras), expected = _file_and_record_by_record(tmp_path, data)
    for kind_name in _KINDS:
        assert getattr(dataset, kind_name) == getattr(expected, kind_name), kind_name
    assert extras == {"generated_at": "2026-11-01T12:00:00Z"}
    assert bool(dataset.invalid) == bool(broken)
    if not broken:  # what was compared came from the whole-file path
        assert _WHOLE_FILE.validate_json(json.dumps(data))["people"][0] == dataset.people[0]


def test_a_valid_file_is_read_whole_and_a_bad_record_is_reported_with_the_rest_loaded(tmp_path):
    example = json.loads(Path("playbooks/example_dataset.json").read_text(encoding="utf-8"))
    assert _WHOLE_FILE.validate_json(json.dumps(example))["people"]  # the whole-file path takes it
    (dataset, extras), expected = _file_and_record_by_record(tmp_path, example)
    assert dataset.activities == expected.activities and len(dataset.people) == len(example["people"])
    assert set(extras) == {"generated_at", "description"}

    example["people"][1]["email"] = "nope"
    (dataset, _), _ = _file_and_record_by_record(tmp_path, example)
    assert len(dataset.people) == len(example["people"]) - 1
    assert [str(i) for i in dataset.invalid] == [
        f"people[1] (id {example['people'][1]['id']}): email: not an email address: 'n***'"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"people": [}', "is not valid JSON (line 1"),
        (b'{"people": [\xff]}', "is not UTF-8 text"),
        (b'{"people": [], "bogus": 1}', "unknown top-level keys ['bogus']"),
        (b'{"people": {"id": "p1"}}', "'people' must be a list of records"),
        (b'[1, 2]', "must be a JSON object"),
    ],
)
def test_an_unusable_file_is_refused_with_its_name_and_the_reason(tmp_path, content, message):
    path = tmp_path / "data.json"
    path.write_bytes(content)
    with pytest.raises(DatasetError) as info:
        load_dataset_file(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_a_file_saved_with_a_byte_order_mark_loads(tmp_path):
    path = tmp_path / "data.json"
    path.write_text('{"people": [{"id": "p1", "email": "A@B.com"}]}', encoding="utf-8-sig")
    dataset, _ = load_dataset_file(path)
    assert [(p.id, p.email) for p in dataset.people] == [("p1", "a@b.com")] and not dataset.invalid
