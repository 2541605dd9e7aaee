"""The HubSpot portal's state: records by object type, property definitions, associations, owners and the
activity sources, with the write rules HubSpot applies (string values, maintained timestamps, unique emails).

Object model: https://developers.hubspot.com/docs/api/crm/understanding-the-crm
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from leadloop.sandbox.hubspot import schema
from leadloop.sandbox.hubspot.errors import HubSpotError, property_errors, property_problem

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def valid_email(value: str) -> bool:
    """HubSpot refuses contact emails that are not shaped like addresses (INVALID_EMAIL)."""
    return bool(_EMAIL_RE.match(value))


def to_ms(moment: datetime) -> int:
    """Epoch milliseconds (a naive datetime is UTC), floored exactly: through a float timestamp, a
    moment such as 0001-01-01T00:00:00.123Z would come back a millisecond off."""
    return ((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - _EPOCH) // _MS


def iso_ms(ms: int) -> str:
    """HubSpot's datetime rendering: ISO-8601 with a four-digit year, milliseconds and `Z`
    (`0001-01-01T00:00:00.000Z`; strftime's `%Y` would drop the zeros of years before 1000).
    OverflowError outside years 1 to 9999."""
    m = _EPOCH + timedelta(milliseconds=ms)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}Z"
    )


def parse_datetime_ms(value: Any) -> int | None:
    """Epoch ms from an epoch-ms number/string, an ISO datetime or a date; None when unreadable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return int(value)
    if not isinstance(value, str) or not value:
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        if _DATE_RE.match(text):
            return to_ms(datetime.combine(date.fromisoformat(text), datetime.min.time(), UTC))
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_ms(moment)


def format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


class Record:
    """One CRM object. Property values are strings or None, as HubSpot returns them."""

    __slots__ = ("archived", "archived_ms", "created_ms", "id", "indexed_at", "props", "updated_ms")

    def __init__(
        self,
        id_: int,
        props: dict[str, str | None],
        created_ms: int,
        updated_ms: int,
        indexed_at: float = 0.0,
    ) -> None:
        self.id = id_
        self.props = props
        self.created_ms = created_ms
        self.updated_ms = updated_ms
        self.archived = False
        self.archived_ms: int | None = None
        self.indexed_at = indexed_at  # epoch seconds when the search index caught up with the last write

    def dump(self) -> list[Any]:
        return [
            self.id,
            self.props,
            self.created_ms,
            self.updated_ms,
            self.archived,
            self.archived_ms,
            self.indexed_at,
        ]

    @classmethod
    def load(cls, row: list[Any]) -> Record:
        record = cls(row[0], row[1], row[2], row[3], row[6])
        record.archived, record.archived_ms = row[4], row[5]
        return record


@dataclass(slots=True)
class Table:
    """The records of one object type, indexed by id (ids only grow, so `order` stays sorted)."""

    name: str
    records: dict[int, Record] = field(default_factory=dict)
    order: list[int] = field(default_factory=list)
    by_email: dict[str, int] = field(default_factory=dict)
    version: int = 0  # bumped on every write, so cached search results know when they are stale
    max_indexed_at: float = 0.0  # the latest time a written record becomes visible to search
    unique: dict[str, dict[str, int]] = field(default_factory=dict)  # property -> value -> id, built on use

    def touched(self, record: Record) -> None:
        self.version += 1
        for name, index in self.unique.items():
            value = record.props.get(name)
            if value:
                index[value] = record.id
        if record.indexed_at > self.max_indexed_at:
            self.max_indexed_at = record.indexed_at

    def add(self, record: Record) -> None:
        self.touched(record)
        self.records[record.id] = record
        if self.order and record.id < self.order[-1]:
            bisect.insort(self.order, record.id)
        else:
            self.order.append(record.id)
        email = record.props.get("email") if self.name == "contacts" else None
        if email:
            self.by_email[email.lower()] = record.id

    def page(self, after: int, limit: int, archived: bool) -> tuple[list[Record], int | None]:
        """Up to `limit` records with id ≥ `after` in id order, and the next cursor (or None)."""
        start = bisect.bisect_left(self.order, after)
        out: list[Record] = []
        order, records = self.order, self.records
        i = start
        while i < len(order) and len(out) < limit:
            record = records[order[i]]
            if record.archived == archived:
                out.append(record)
            i += 1
        while i < len(order) and records[order[i]].archived != archived:
            i += 1
        return out, (order[i] if i < len(order) else None)


class Store:
    """Everything one sandbox HubSpot portal holds."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.reset()

    def reset(self) -> None:
        self.tables = {name: Table(name) for name in schema.OBJECT_TYPE_IDS}
        self.properties = schema.standard_properties()
        self.groups = schema.standard_groups()
        # (from type, to type) -> from id -> to id -> association type ids
        self.associations: dict[tuple[str, str], dict[int, dict[int, set[int]]]] = {}
        self.owners: dict[str, dict[str, Any]] = {}
        # user id -> what the settings users API keeps beyond the user's owner: its role (hubspot.users)
        self.users: dict[str, dict[str, Any]] = {}
        # email (lower case) -> subscription id -> SUBSCRIBED / NOT_SUBSCRIBED (hubspot.subscriptions)
        self.subscription_statuses: dict[str, dict[str, str]] = {}
        self.forms: dict[str, dict[str, Any]] = {}
        # Activities are compact tuples (see sandbox.hubspot.activity for their fields), sorted by time.
        self.submissions: dict[str, list[Any]] = {}  # form guid -> newest first
        self.web_events: list[Any] = []
        self.email_events: list[Any] = []
        self.email_campaigns: dict[str, dict[str, Any]] = {}
        self.marketing_events: dict[str, dict[str, Any]] = {}  # objectId -> event
        self.participations: dict[str, list[Any]] = {}  # objectId -> participations
        self._web_index: dict[int, list[int]] | None = None
        self.search_cache: OrderedDict[Any, Any] = OrderedDict()  # see sandbox.hubspot.search
        self.next_id = 1001
        self.associations_version = 0  # bumped on every association change (search results depend on it)

    def web_index(self) -> dict[int, list[int]]:
        """Positions in `web_events` by contact id (built on first use)."""
        if self._web_index is None:
            index: dict[int, list[int]] = {}
            for position, row in enumerate(self.web_events):
                index.setdefault(row[1], []).append(position)
            self._web_index = index
        return self._web_index

    # ---- activity recorded through the API, one row at a time (the loader sorts its bulk once) ---
    def add_web_event(self, row: Any) -> None:
        bisect.insort(self.web_events, row, key=lambda r: r[0])
        self._web_index = None  # positions moved

    def add_email_event(self, row: Any) -> None:
        bisect.insort(self.email_events, row, key=lambda r: r[0])

    def add_submission(self, form_guid: str, row: Any) -> None:
        bisect.insort(self.submissions.setdefault(form_guid, []), row, key=lambda r: -r[0])  # newest first

    def add_participation(self, object_id: str, row: Any) -> None:
        bisect.insort(self.participations.setdefault(object_id, []), row, key=lambda r: r[2])

    # ---- ids and clock -------------------------------------------------------------------------
    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def now_ms(self) -> int:
        return to_ms(self.now())

    def table(self, object_name: str) -> Table:
        return self.tables[object_name]

    def get(self, object_name: str, id_: int | str, archived: bool = False) -> Record | None:
        try:
            record = self.tables[object_name].records.get(int(id_))
        except (TypeError, ValueError):
            return None
        if record is None or record.archived != archived:
            return None
        return record

    def find_by(self, object_name: str, id_property: str | None, value: str) -> Record | None:
        """The live record whose `id_property` (default: record id) equals `value`."""
        if not id_property or id_property == "hs_object_id":
            return self.get(object_name, value)
        table = self.tables[object_name]
        if object_name == "contacts" and id_property == "email":
            found = table.by_email.get(str(value).lower())
            return self.get(object_name, found) if found is not None else None
        definition = self.properties[object_name].get(id_property)
        if definition is None or not definition.unique:
            raise HubSpotError(
                400, "VALIDATION_ERROR", f"{id_property} is not a unique property of {object_name}"
            )
        index = table.unique.get(id_property)
        if index is None:
            index = table.unique[id_property] = {
                r.props[id_property]: r.id for r in table.records.values() if r.props.get(id_property)
            }
        found = index.get(value)
        record = table.records.get(found) if found is not None else None
        # The index may hold a value the record has since changed: check before answering.
        if record is None or record.archived or record.props.get(id_property) != value:
            return None
        return record

    # ---- property values ------------------------------------------------------------------------
    def owner_ids(self) -> set[str]:
        return set(self.owners)

    def normalize(
        self, object_name: str, values: dict[str, Any], creating: bool = False
    ) -> dict[str, str | None]:
        """HubSpot's string form of each written value; 400 VALIDATION_ERROR listing every bad one."""
        definitions = self.properties[object_name]
        out: dict[str, str | None] = {}
        problems: list[dict[str, Any]] = []
        if creating and object_name in schema.ENGAGEMENTS and values.get("hs_timestamp") in (None, ""):
            # Activities need their timestamp: https://developers.hubspot.com/docs/api/crm/tasks
            problems.append(property_problem("hs_timestamp", "REQUIRED_FIELD", "hs_timestamp is required"))
        for name, raw in values.items():
            definition = definitions.get(name)
            if definition is None:
                problems.append(
                    property_problem(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            try:
                out[name] = self._coerce(definition, raw)
            except ValueError as exc:
                problems.append(property_problem(name, exc.args[1], exc.args[0]))
        if problems:
            raise property_errors(problems)
        return out

    def _coerce(self, definition: schema.PropertyDef, raw: Any) -> str | None:
        if raw is None or raw == "":
            return None
        kind = definition.type
        if kind == "bool":
            text = str(raw).lower() if not isinstance(raw, bool) else ("true" if raw else "false")
            if text not in ("true", "false"):
                raise ValueError(
                    f"{raw} was not a valid boolean option. Valid options are: [true, false]",
                    "INVALID_BOOLEAN",
                )
            return text
        if kind == "number":
            try:
                return format_number(float(raw))
            except (TypeError, ValueError):
                raise ValueError(f"{raw} was not a valid number.", "INVALID_INTEGER") from None
        if kind in ("datetime", "date"):
            ms = parse_datetime_ms(raw)
            try:
                rendered = iso_ms(ms) if ms is not None else None
            except OverflowError:  # past year 9999
                rendered = None
            if rendered is None:
                raise ValueError(
                    f"{raw} was not a valid long. Please provide a datetime in epoch milliseconds "
                    "or ISO-8601 format.",
                    "INVALID_DATE",
                )
            return rendered if kind == "datetime" else rendered[:10]
        text = str(raw) if not isinstance(raw, bool) else ("true" if raw else "false")
        if definition.name == "email" and not valid_email(text):
            raise ValueError(f"Email address {text} is invalid", "INVALID_EMAIL")
        if kind == "enumeration":
            options = self.owner_ids() if definition.name == "hubspot_owner_id" else set(definition.options)
            chosen = [v for v in text.split(";") if v] if definition.field_type == "checkbox" else [text]
            bad = [v for v in chosen if v not in options]
            if bad:
                allowed = ", ".join(sorted(options))
                raise ValueError(
                    f"{bad[0]} was not one of the allowed options: [{allowed}]", "INVALID_OPTION"
                )
        return text

    # ---- writes ---------------------------------------------------------------------------------
    def _stamp(self, object_name: str, record: Record, now_ms: int, lag_seconds: float) -> None:
        record.updated_ms = now_ms
        modified = iso_ms(now_ms)
        record.props[schema.modified_property(object_name)] = modified
        record.indexed_at = now_ms / 1000 + lag_seconds
        self.tables[object_name].touched(record)
        if object_name == "deals":
            stage = record.props.get("dealstage")
            won, lost = stage == "closedwon", stage == "closedlost"
            record.props["hs_is_closed_won"] = "true" if won else "false"
            record.props["hs_is_closed_lost"] = "true" if lost else "false"
            record.props["hs_is_closed"] = "true" if won or lost else "false"

    def create(
        self,
        object_name: str,
        values: dict[str, str | None],
        lag_seconds: float = 0.0,
        now_ms: int | None = None,
    ) -> Record:
        """A new record from already-normalized values (409 CONFLICT on a duplicate contact email)."""
        now_ms = self.now_ms() if now_ms is None else now_ms
        table = self.tables[object_name]
        email = values.get("email") if object_name == "contacts" else None
        if email and email.lower() in table.by_email:
            existing = table.by_email[email.lower()]
            if self.get(object_name, existing) is not None:
                raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {existing}")
        record_id = self.new_id()
        props = {k: v for k, v in values.items() if v is not None}
        given = parse_datetime_ms(props.get("createdate"))
        created = now_ms if given is None else given  # (1970-01-01, 0 ms, is a date like any other)
        props["createdate"] = iso_ms(created)
        props["hs_object_id"] = str(record_id)
        if object_name in schema.ENGAGEMENTS:
            props["hs_createdate"] = props["createdate"]
        record = Record(record_id, props, created, now_ms)
        self._stamp(object_name, record, now_ms, lag_seconds)
        table.add(record)
        if object_name == "contacts" and props.get("associatedcompanyid"):
            self._set_primary_company(record, props["associatedcompanyid"])
        return record

    def update(
        self, object_name: str, record: Record, values: dict[str, str | None], lag_seconds: float = 0.0
    ) -> Record:
        table = self.tables[object_name]
        if object_name == "contacts" and "email" in values:
            new_email = (values["email"] or "").lower()
            old_email = (record.props.get("email") or "").lower()
            if new_email and new_email != old_email:
                other = table.by_email.get(new_email)
                if other is not None and other != record.id and self.get(object_name, other) is not None:
                    raise HubSpotError(409, "CONFLICT", f"Contact already exists. Existing ID: {other}")
                table.by_email.pop(old_email, None)
                table.by_email[new_email] = record.id
        for name, value in values.items():
            if name in (
                "hs_object_id",
                "createdate",
                "hs_createdate",
                "lastmodifieddate",
                "hs_lastmodifieddate",
            ):
                continue
            if value is None:
                record.props.pop(name, None)
            else:
                record.props[name] = value
        self._stamp(object_name, record, self.now_ms(), lag_seconds)
        if object_name == "contacts" and values.get("associatedcompanyid"):
            self._set_primary_company(record, values["associatedcompanyid"])
        return record

    def archive(self, object_name: str, record: Record) -> None:
        record.archived = True
        record.archived_ms = self.now_ms()
        self.tables[object_name].touched(record)
        if object_name == "contacts" and record.props.get("email"):
            self.tables[object_name].by_email.pop(record.props["email"].lower(), None)

    def _set_primary_company(self, contact: Record, company_id: str) -> None:
        company = self.get("companies", company_id)
        if company is None:
            return
        for other, types in list(
            self.associations.get(("contacts", "companies"), {}).get(contact.id, {}).items()
        ):
            if 1 in types and other != company.id:
                self.disassociate("contacts", contact.id, "companies", other, {1})
        self.associate("contacts", contact.id, "companies", company.id, {1, 279})

    # ---- associations ---------------------------------------------------------------------------
    def associate(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: Iterable[int]
    ) -> None:
        self.associations_version += 1
        forward = self.associations.setdefault((from_type, to_type), {}).setdefault(from_id, {})
        backward = self.associations.setdefault((to_type, from_type), {}).setdefault(to_id, {})
        type_ids = set(type_ids)
        for type_id in type_ids:
            forward.setdefault(to_id, set()).add(type_id)
            backward.setdefault(from_id, set()).add(
                schema.ASSOCIATION_TYPES[type_id].inverse_id
                if type_id in schema.ASSOCIATION_TYPES
                else type_id
            )
        primary = _primary_company_link(from_type, from_id, to_type, to_id, type_ids)
        if primary is not None:
            self._primary_company_associated(*primary)

    def disassociate(
        self, from_type: str, from_id: int, to_type: str, to_id: int, type_ids: set[int] | None = None
    ) -> None:
        self.associations_version += 1
        forward = self.associations.get((from_type, to_type), {}).get(from_id, {})
        backward = self.associations.get((to_type, from_type), {}).get(to_id, {})
        removed = set(forward.get(to_id, ())) if type_ids is None else type_ids
        primary = _primary_company_link(from_type, from_id, to_type, to_id, removed)
        if primary is not None:
            self._primary_company_dissociated(*primary)
        if type_ids is None:
            forward.pop(to_id, None)
            backward.pop(from_id, None)
            return
        inverse = {schema.ASSOCIATION_TYPES[t].inverse_id for t in type_ids if t in schema.ASSOCIATION_TYPES}
        forward.get(to_id, set()).difference_update(type_ids)
        backward.get(from_id, set()).difference_update(inverse)
        if not forward.get(to_id, True):
            forward.pop(to_id, None)
        if not backward.get(from_id, True):
            backward.pop(from_id, None)

    # HubSpot keeps a contact's primary company twice: as the "Primary" association (type 1, its inverse
    # 2) and in the contact property `associatedcompanyid`. Setting the property moves the association
    # (`_set_primary_company`); these keep the property in step when the association is made or removed
    # through the associations API, or inline when a record is created.
    def _primary_company_associated(self, contact_id: int, company_id: int) -> None:
        contact = self.get("contacts", contact_id)
        if contact is None or contact.props.get("associatedcompanyid") == str(company_id):
            return
        contact.props["associatedcompanyid"] = str(company_id)
        linked = self.associations.get(("contacts", "companies"), {}).get(contact_id, {})
        for other, types in list(linked.items()):
            if 1 in types and other != company_id:  # one primary company at a time
                self.disassociate("contacts", contact_id, "companies", other, {1})
        self._stamp("contacts", contact, self.now_ms(), 0.0)

    def _primary_company_dissociated(self, contact_id: int, company_id: int) -> None:
        contact = self.get("contacts", contact_id)
        if contact is None or contact.props.get("associatedcompanyid") != str(company_id):
            return
        contact.props.pop("associatedcompanyid", None)
        self._stamp("contacts", contact, self.now_ms(), 0.0)

    def associated(self, from_type: str, from_id: int, to_type: str) -> dict[int, set[int]]:
        """Live associated ids (with their type ids) of one record, in id order."""
        found = self.associations.get((from_type, to_type), {}).get(from_id, {})
        table = self.tables[to_type].records
        return {
            to_id: types
            for to_id, types in sorted(found.items())
            if to_id in table and not table[to_id].archived
        }

    # ---- persistence ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "next_id": self.next_id,
            "records": {name: [r.dump() for r in t.records.values()] for name, t in self.tables.items()},
            "custom_properties": {
                name: [_dump_def(p) for p in props.values() if not p.hubspot_defined]
                for name, props in self.properties.items()
            },
            "groups": self.groups,
            "associations": [
                [f, t, a, b, sorted(types)]
                for (f, t), by_from in self.associations.items()
                for a, tos in by_from.items()
                for b, types in tos.items()
            ],
            "owners": self.owners,
            "users": self.users,
            "subscription_statuses": self.subscription_statuses,
            "forms": self.forms,
            "submissions": self.submissions,
            "web_events": self.web_events,
            "email_events": self.email_events,
            "email_campaigns": self.email_campaigns,
            "marketing_events": self.marketing_events,
            "participations": self.participations,
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        self.next_id = data["next_id"]
        for name, rows in data["records"].items():
            for row in rows:
                self.tables[name].add(Record.load(row))
        for name, defs in data.get("custom_properties", {}).items():
            for d in defs:
                self.properties[name][d["name"]] = schema.PropertyDef(**{**d, "options": tuple(d["options"])})
        self.groups = data.get("groups", self.groups)
        for f, t, a, b, types in data.get("associations", []):
            self.associations.setdefault((f, t), {}).setdefault(a, {})[b] = set(types)
        for key in (
            "owners",
            "users",
            "subscription_statuses",
            "forms",
            "submissions",
            "web_events",
            "email_events",
            "email_campaigns",
            "marketing_events",
            "participations",
        ):
            setattr(self, key, data.get(key, getattr(self, key)))


def _primary_company_link(
    from_type: str, from_id: int, to_type: str, to_id: int, type_ids: set[int]
) -> tuple[int, int] | None:
    """(contact id, company id) when these association types include the contact's primary company."""
    if (from_type, to_type) == ("contacts", "companies") and 1 in type_ids:
        return from_id, to_id
    if (from_type, to_type) == ("companies", "contacts") and 2 in type_ids:
        return to_id, from_id
    return None


def _dump_def(definition: schema.PropertyDef) -> dict[str, Any]:
    return {slot: getattr(definition, slot) for slot in definition.__slots__}
