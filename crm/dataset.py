"""The canonical JSON dataset: accounts, people, activities, opportunities, campaigns and assets.

`load_dataset` validates record by record: a bad record is skipped and reported with the reason
(record kind, index, id and field), the rest load. `dataset_json_schema` documents the format.

A file is first validated whole by pydantic's JSON parser, straight from its bytes into records: no
Python dict per record in between, so it loads about 1.7x faster and holds far less memory on the way.
Only when that fails (a bad record, an unknown key, not JSON) is it read again record by record, which
finds and reports each problem and loads the rest; both ways give the same records.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from leadloop.crm.records import Account, Activity, Asset, Campaign, ContactRole, Opportunity, Owner, Person

RECORD_TYPES: dict[str, type] = {
    "accounts": Account,
    "people": Person,
    "activities": Activity,
    "opportunities": Opportunity,
    "campaigns": Campaign,
    "assets": Asset,
    "owners": Owner,
    "contact_roles": ContactRole,
}
_ADAPTERS = {name: TypeAdapter(cls) for name, cls in RECORD_TYPES.items()}
_EXTRAS = ("$schema", "generated_at", "description")  # top-level keys a dataset file may also carry
_WHOLE_FILE = TypeAdapter(
    with_config(ConfigDict(extra="forbid"))(
        TypedDict(  # type: ignore[operator]
            "DatasetFile", {**{kind: list[cls] for kind, cls in RECORD_TYPES.items()},
                            **{key: Any for key in _EXTRAS}}, total=False,
        )
    )
)


@dataclass(frozen=True, slots=True)
class InvalidRecord:
    """A record that could not be loaded, and why (safe to show: no secrets in datasets)."""

    kind: str
    index: int
    record_id: str | None
    problems: tuple[str, ...]

    def __str__(self) -> str:
        who = f"{self.kind}[{self.index}]" + (f" (id {self.record_id})" if self.record_id else "")
        return f"{who}: " + "; ".join(self.problems)


@dataclass(slots=True)
class Dataset:
    accounts: list[Account] = field(default_factory=list)
    people: list[Person] = field(default_factory=list)
    activities: list[Activity] = field(default_factory=list)
    opportunities: list[Opportunity] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    owners: list[Owner] = field(default_factory=list)
    contact_roles: list[ContactRole] = field(default_factory=list)
    invalid: list[InvalidRecord] = field(default_factory=list)


class DatasetError(ValueError):
    """The dataset file as a whole cannot be read (not JSON, not an object)."""


def describe_validation_error(error: ValidationError) -> tuple[str, ...]:
    """`email: not an email address: 'x'` style lines, one per problem."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(record)"
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {message}")
    return tuple(lines)


def validate_records(kind: str, raw: Iterable[Any]) -> tuple[list[Any], list[InvalidRecord]]:
    adapter = _ADAPTERS[kind]
    good: list[Any] = []
    bad: list[InvalidRecord] = []
    for index, item in enumerate(raw):
        record_id = item.get("id") if isinstance(item, dict) else None
        if not isinstance(item, dict):
            bad.append(InvalidRecord(kind, index, None, ("(record): must be a JSON object",)))
            continue
        try:
            good.append(adapter.validate_python(item))
        except ValidationError as error:
            bad.append(
                InvalidRecord(kind, index, str(record_id)[:80] if record_id else None,
                              describe_validation_error(error))
            )
    return good, bad


def validate_payloads(kind: str, payloads: Iterable[tuple[str, str | bytes]],
                      ) -> tuple[list[Any], list[InvalidRecord]]:
    """Like `validate_records`, for records stored as JSON text under their ids: each is parsed and
    validated in one step by pydantic's JSON parser, about twice as fast as `json.loads` then
    validating the dict, and a payload that is not JSON at all is reported like any invalid record."""
    adapter = _ADAPTERS[kind]
    good: list[Any] = []
    bad: list[InvalidRecord] = []
    for index, (record_id, payload) in enumerate(payloads):
        try:
            good.append(adapter.validate_json(payload))
        except ValidationError as error:
            bad.append(InvalidRecord(kind, index, record_id[:80], describe_validation_error(error)))
    return good, bad


def dataset_from_dict(data: Any) -> Dataset:
    if not isinstance(data, dict):
        raise DatasetError("the dataset must be a JSON object with lists such as 'people'")
    unknown = sorted(set(data) - set(RECORD_TYPES) - set(_EXTRAS))
    if unknown:
        raise DatasetError(
            f"unknown top-level keys {unknown}; expected some of {sorted(RECORD_TYPES)}"
        )
    dataset = Dataset()
    for kind in RECORD_TYPES:
        raw = data.get(kind, [])
        if not isinstance(raw, list):
            raise DatasetError(f"'{kind}' must be a list of records")
        good, bad = validate_records(kind, raw)
        setattr(dataset, kind, good)
        dataset.invalid.extend(bad)
    return dataset


def load_dataset(path: str | Path) -> Dataset:
    """Read a dataset file; raises DatasetError when the file as a whole is unusable."""
    return load_dataset_file(path)[0]


def load_dataset_file(path: str | Path) -> tuple[Dataset, dict[str, Any]]:
    """A dataset file's records and its other top-level values (`generated_at`, `description`);
    raises DatasetError, naming the file, when the file as a whole is unusable."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise DatasetError(f"cannot read {path}: {error.strerror or error}") from None
    data = data.removeprefix(codecs.BOM_UTF8)  # as some editors and spreadsheet exports save UTF-8
    try:
        whole = _WHOLE_FILE.validate_json(data)
    except ValidationError:
        pass  # read it again record by record: that says what is wrong where, and keeps the rest
    else:
        dataset = Dataset(**{kind: whole.get(kind, []) for kind in RECORD_TYPES})
        return dataset, _extras_of(whole)
    try:
        parsed = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not UTF-8 text (byte {error.start})") from None
    except json.JSONDecodeError as error:
        raise DatasetError(f"{path} is not valid JSON (line {error.lineno}: {error.msg})") from None
    try:
        dataset = dataset_from_dict(parsed)
    except DatasetError as error:
        raise DatasetError(f"{path}: {error}") from None
    return dataset, _extras_of(parsed)


def _extras_of(top: dict[str, Any]) -> dict[str, Any]:
    return {key: top[key] for key in _EXTRAS if key in top}


def dataset_to_dict(dataset: Dataset) -> dict[str, list[Any]]:
    return {
        kind: [_ADAPTERS[kind].dump_python(r, mode="json") for r in getattr(dataset, kind)]
        for kind in RECORD_TYPES
    }


def dataset_json_schema() -> dict[str, Any]:
    """The JSON Schema of the dataset format (what `leadloop score --schema` prints)."""
    properties = {}
    defs: dict[str, Any] = {}
    for kind, cls in RECORD_TYPES.items():
        schema = TypeAdapter(list[cls]).json_schema(ref_template="#/$defs/{model}")
        defs.update(schema.pop("$defs", {}))
        properties[kind] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "leadloop canonical dataset",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
        "$defs": defs,
    }
