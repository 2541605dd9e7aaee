"""The sandbox org's data: one table of plain-dict rows per object, keyed by 18-character id, with a
sorted index on SystemModstamp and indexes on external-id fields; field validation on every write.

https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/system_fields.htm
Rows are sparse (absent key = null) and hold values in their wire form: datetimes as
`YYYY-MM-DDTHH:MM:SS.000+0000` strings (which sort like the instants they name), dates as
`YYYY-MM-DD`, so queries and responses never convert. Deleted rows stay with `IsDeleted` true, as in
the recycle bin, for `queryAll`.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from leadloop.sandbox.salesforce import security
from leadloop.sandbox.salesforce.errors import RecordError
from leadloop.sandbox.salesforce.ids import id_number, make_id, normalize_id
from leadloop.sandbox.salesforce.schema import (
    NUMBER_TYPES,
    RESPONDED_STATUSES,
    STRING_TYPES,
    FieldDef,
    ObjectDef,
    standard_objects,
)

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATETIME = re.compile(r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:?\d{2})?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
API_USER_NUMBER = 1


def sf_datetime(value: datetime, milliseconds: bool = False) -> str:
    """A timestamp in Salesforce's wire form, in UTC (system timestamps have whole seconds)."""
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    millis = f"{value.microsecond // 1000:03d}" if milliseconds else "000"
    return f"{value.isoformat(timespec='seconds')[:19]}.{millis}+0000"


def parse_datetime(text: str) -> datetime | None:
    """A client-supplied dateTime (ISO 8601 with `Z`, an offset, or none meaning UTC), or None."""
    match = _DATETIME.match(text.strip())
    if not match:
        return None
    day, clock, fraction, zone = match.groups()
    zone = zone or "+00:00"
    if zone == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        return datetime.fromisoformat(f"{day}T{clock}{(fraction or '')[:7]}{zone}")
    except ValueError:
        return None


@dataclass(slots=True)
class Table:
    obj: ObjectDef
    rows: dict[str, dict[str, Any]] = field(default_factory=dict)
    stamps: list[str] = field(default_factory=list)  # SystemModstamp of `order[i]`, ascending
    order: list[str] = field(default_factory=list)  # ids sorted by (SystemModstamp, Id)
    external: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # field -> key -> ids
    counter: int = 0

    def index_remove(self, stamp: str, record_id: str) -> None:
        lo = bisect_left(self.stamps, stamp)
        hi = bisect_right(self.stamps, stamp, lo)
        position = bisect_left(self.order, record_id, lo, hi)
        if position < hi and self.order[position] == record_id:
            del self.order[position]
            del self.stamps[position]

    def index_add(self, stamp: str, record_id: str) -> None:
        lo = bisect_left(self.stamps, stamp)
        hi = bisect_right(self.stamps, stamp, lo)
        position = bisect_left(self.order, record_id, lo, hi)
        self.stamps.insert(position, stamp)
        self.order.insert(position, record_id)

    def rebuild_index(self) -> None:
        pairs = sorted((row["SystemModstamp"], record_id) for record_id, row in self.rows.items())
        self.stamps = [stamp for stamp, _ in pairs]
        self.order = [record_id for _, record_id in pairs]
        for name in self.external:
            self.external[name] = {}
        for record_id, row in self.rows.items():
            self._external_add(record_id, row)

    def _external_add(self, record_id: str, row: dict[str, Any]) -> None:
        if row.get("IsDeleted"):
            return
        for name, index in self.external.items():
            value = row.get(name)
            if value is not None:
                index.setdefault(external_key(value), []).append(record_id)

    def _external_remove(self, record_id: str, row: dict[str, Any]) -> None:
        for name, index in self.external.items():
            value = row.get(name)
            if value is None:
                continue
            ids = index.get(external_key(value))
            if ids and record_id in ids:
                ids.remove(record_id)
                if not ids:
                    del index[external_key(value)]

    def range(self, lo: str | None, lo_inclusive: bool, hi: str | None, hi_inclusive: bool) -> Iterator[str]:
        """Ids whose SystemModstamp lies in the range, in (SystemModstamp, Id) order."""
        start = 0 if lo is None else (bisect_left if lo_inclusive else bisect_right)(self.stamps, lo)
        end = (
            len(self.stamps)
            if hi is None
            else (bisect_right if hi_inclusive else bisect_left)(self.stamps, hi)
        )
        return iter(self.order[start:end])


def external_key(value: Any) -> str:
    # Text external ids match case-insensitively (Salesforce's default for External ID fields).
    return value.lower() if isinstance(value, str) else str(value)


class Org:
    """All records of the sandbox org, and the rules every write goes through."""

    def __init__(
        self,
        now: Callable[[], datetime],
        username: str,
        schema: Callable[[], dict[str, ObjectDef]] = standard_objects,
    ) -> None:
        self.now = now
        self.username = username
        self.schema = schema
        self.reset()

    # -- schema ----------------------------------------------------------------------------------
    def reset(self) -> None:
        self.objects: dict[str, ObjectDef] = self.schema()
        self.tables: dict[str, Table] = {name: Table(obj) for name, obj in self.objects.items()}
        self.by_prefix: dict[str, Table] = {table.obj.key_prefix: table for table in self.tables.values()}
        self.custom_fields: list[tuple[str, FieldDef]] = []  # (object name, field) added through Tooling
        self.api_user_id = make_id("005", API_USER_NUMBER)
        self.security_version = 0
        self._access: dict[str, tuple[int, security.Access]] = {}
        self.profiles: dict[str, str] = {}  # profile name -> id
        if "user" not in self.tables:
            return
        self.tables["user"].counter = API_USER_NUMBER
        if "profile" in self.tables:
            self.profiles = security.seed_profiles(self)
        stamp = self.stamp()
        self.load_rows(
            "User",
            [
                {
                    "Id": self.api_user_id,
                    "Username": self.username,
                    "FirstName": "Integration",
                    "LastName": "User",
                    "Email": self.username,
                    "Alias": "integ",
                    "IsActive": True,
                    "TimeZoneSidKey": "America/Los_Angeles",
                    "ProfileId": self.profiles.get(security.SYSTEM_ADMINISTRATOR),
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                }
            ],
        )

    # -- who is asking ---------------------------------------------------------------------------
    def current_user(self) -> str:
        """The user the current request runs as (the integration user outside a request)."""
        return security.CALLER.get() or self.api_user_id

    def access(self, user_id: str | None = None) -> security.Access:
        """What `user_id` (by default the current user) may see and change; recomputed after any
        write to users, profiles, permission sets, field permissions or assignments."""
        user_id = user_id or self.current_user()
        cached = self._access.get(user_id)
        if cached is None or cached[0] != self.security_version:
            cached = (self.security_version, security.compute_access(self, user_id))
            self._access[user_id] = cached
        return cached[1]

    def _security_changed(self, table: Table) -> None:
        if table.obj.name.lower() in security.SECURITY_TABLES:
            self.security_version += 1

    def object(self, name: str) -> ObjectDef | None:
        return self.objects.get(name.lower())

    def table(self, name: str) -> Table:
        return self.tables[name.lower()]

    def add_custom_field(self, object_name: str, fdef: FieldDef) -> None:
        obj = self.objects[object_name.lower()]
        fdef.custom = True
        obj.add(fdef)
        self.security_version += 1
        self.custom_fields.append((obj.name, fdef))
        if fdef.external_id or fdef.unique:
            table = self.tables[obj.name.lower()]
            table.external[fdef.name] = {}
            for record_id, row in table.rows.items():
                value = row.get(fdef.name)
                if value is not None and not row.get("IsDeleted"):
                    table.external[fdef.name].setdefault(external_key(value), []).append(record_id)

    # -- reading ---------------------------------------------------------------------------------
    def stamp(self) -> str:
        return sf_datetime(self.now())

    def find(self, record_id: str) -> tuple[Table, dict[str, Any]] | None:
        """The table and row of an id of any object (deleted rows included), or None."""
        table = self.by_prefix.get(record_id[:3])
        if table is None:
            return None
        row = table.rows.get(record_id)
        return None if row is None else (table, row)

    def lookup_external(self, object_name: str, field_name: str, value: Any) -> list[str]:
        table = self.table(object_name)
        if field_name == "Id":
            record_id = normalize_id(str(value))
            row = table.rows.get(record_id or "")
            return [record_id] if record_id and row is not None and not row.get("IsDeleted") else []
        return list(table.external.get(field_name, {}).get(external_key(value), []))

    # -- writing ---------------------------------------------------------------------------------
    def new_id(self, object_name: str) -> str:
        table = self.table(object_name)
        table.counter += 1
        return make_id(table.obj.key_prefix, table.counter)

    def load_rows(self, object_name: str, rows: list[dict[str, Any]]) -> None:
        """Add complete, trusted rows (from the world generator or a snapshot); call `finish_load`."""
        table = self.table(object_name)
        for row in rows:
            row.setdefault("IsDeleted", False)
            row.setdefault("CreatedById", self.api_user_id)
            row.setdefault("LastModifiedById", self.api_user_id)
            self._derive(table.obj.name, row, None)
            table.rows[row["Id"]] = row
        table.counter = max([table.counter, *(id_number(row["Id"]) for row in rows)])
        self.finish_load(object_name)
        self._security_changed(table)
        if table.obj.name == "User" and "permissionsetassignment" in self.tables:
            security.profile_assignments(self, rows)

    def finish_load(self, object_name: str) -> None:
        self.table(object_name).rebuild_index()

    def prepare_create(self, object_name: str, values: dict[str, Any]) -> dict[str, Any]:
        """The row `values` would create (without Id), or a RecordError saying why not."""
        obj = self.table(object_name).obj
        row: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            fdef = obj.field(name)
            if fdef is None:
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", [name]
                )
            if fdef.name == "Id":
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
                )
            if not fdef.createable:
                raise not_writable(fdef, "create")
            coerced = self.coerce(obj, fdef, value)
            if coerced is not None:
                row[fdef.name] = coerced
        for fdef in obj.fields.values():
            if fdef.name not in row and fdef.default is not None and fdef.createable:
                row[fdef.name] = fdef.default
        missing = [f.name for f in obj.fields.values() if f.required and row.get(f.name) is None]
        if obj.name == "CampaignMember" and not (row.get("LeadId") or row.get("ContactId")):
            missing.append("LeadId or ContactId")
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )
        if "OwnerId" in obj.fields and "OwnerId" not in row:
            row["OwnerId"] = self.current_user()
        self._check_unique(obj, row, None)
        if obj.setup_entity:
            security.validate(self, obj, row, None)
        return row

    def insert(self, object_name: str, row: dict[str, Any], record_id: str | None = None) -> str:
        """Commit a row made by `prepare_create`; returns its new id."""
        table = self.table(object_name)
        self._check_unique(table.obj, row, None)
        if table.obj.setup_entity:
            security.validate(self, table.obj, row, None)
        record_id = record_id or self.new_id(object_name)
        stamp = self.stamp()
        author = self.current_user()
        row.update(
            Id=record_id,
            IsDeleted=False,
            CreatedDate=stamp,
            CreatedById=author,
            LastModifiedDate=stamp,
            LastModifiedById=author,
            SystemModstamp=stamp,
        )
        for fdef in table.obj.fields.values():
            if fdef.type == "boolean" and fdef.name not in row:
                row[fdef.name] = fdef.default
        self._derive(table.obj.name, row, None)
        table.rows[record_id] = row
        table.index_add(stamp, record_id)
        table._external_add(record_id, row)
        self._after_write(table, row, None)
        return record_id

    def _after_write(self, table: Table, row: dict[str, Any], previous: dict[str, Any] | None) -> None:
        self._security_changed(table)
        name = table.obj.name
        if name == "User" and (previous is None or previous.get("ProfileId") != row.get("ProfileId")):
            security.profile_assignments(self, [row])
        elif name == "FieldPermissions" and not row.get("PermissionsRead"):
            # "A FieldPermissions record must have at minimum PermissionsRead set to true, or it will be
            # deleted" (the object reference).
            table.index_remove(row["SystemModstamp"], row["Id"])
            del table.rows[row["Id"]]

    def live_row(self, object_name: str, record_id: str) -> dict[str, Any]:
        table = self.table(object_name)
        normalized = normalize_id(record_id)
        row = table.rows.get(normalized or "")
        if normalized is None or row is None or not normalized.startswith(table.obj.key_prefix):
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY" if normalized else "MALFORMED_ID",
                "invalid cross reference id"
                if normalized
                else f"{table.obj.label} ID: id value of incorrect type: {record_id}",
                [] if normalized else ["Id"],
            )
        if row.get("IsDeleted"):
            raise RecordError("ENTITY_IS_DELETED", "entity is deleted", [])
        return row

    def prepare_update(self, object_name: str, record_id: str, values: dict[str, Any]) -> dict[str, Any]:
        """The changes `values` would make to a record, or a RecordError saying why not."""
        obj = self.table(object_name).obj
        row = self.live_row(object_name, record_id)
        changes: dict[str, Any] = {}
        for name, value in values.items():
            if name == "attributes":
                continue
            fdef = obj.field(name)
            if fdef is None:
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", [name]
                )
            if fdef.name == "Id":
                continue
            if not fdef.updateable:
                raise not_writable(fdef, "update")
            coerced = self.coerce(obj, fdef, value)
            if coerced is None and (fdef.required or not fdef.nillable):
                raise RecordError(
                    "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{fdef.name}]", [fdef.name]
                )
            changes[fdef.name] = coerced
        self._check_unique(obj, {**row, **changes}, row["Id"])
        if obj.setup_entity:
            security.validate(self, obj, {**row, **changes}, row["Id"])
        return changes

    def update(self, object_name: str, record_id: str, changes: dict[str, Any]) -> None:
        """Commit changes made by `prepare_update` (the modstamps move even when no value changes)."""
        table = self.table(object_name)
        row = self.live_row(object_name, record_id)
        self._check_unique(table.obj, {**row, **changes}, row["Id"])
        table._external_remove(row["Id"], row)
        previous = dict(row)
        for name, value in changes.items():
            if value is None:
                row.pop(name, None)
            else:
                row[name] = value
        self._touch(table, row)
        self._derive(table.obj.name, row, previous)
        table._external_add(row["Id"], row)
        self._after_write(table, row, previous)

    def delete(self, object_name: str, record_id: str) -> None:
        table = self.table(object_name)
        row = self.live_row(object_name, record_id)
        table._external_remove(row["Id"], row)
        row["IsDeleted"] = True
        self._touch(table, row)
        self._security_changed(table)

    def _touch(self, table: Table, row: dict[str, Any]) -> None:
        stamp = self.stamp()
        table.index_remove(row["SystemModstamp"], row["Id"])
        row["LastModifiedDate"] = row["SystemModstamp"] = stamp
        row["LastModifiedById"] = self.current_user()
        table.index_add(stamp, row["Id"])

    def _check_unique(self, obj: ObjectDef, row: dict[str, Any], own_id: str | None) -> None:
        table = self.tables[obj.name.lower()]
        for name, index in table.external.items():
            fdef = obj.fields[name]
            value = row.get(name)
            if value is None or not fdef.unique:
                continue
            others = [other for other in index.get(external_key(value), []) if other != own_id]
            if others:
                raise RecordError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: {name} duplicates value on record with id: {others[0]}",
                    [],
                )

    # -- values ----------------------------------------------------------------------------------
    def coerce(self, obj: ObjectDef, fdef: FieldDef, value: Any) -> Any:
        """`value` as stored for `fdef` (None for null), or a RecordError in Salesforce's words."""
        kind = fdef.type
        if value is None or (value == "" and kind != "boolean"):
            return None
        if kind in STRING_TYPES or kind == "textarea":
            if isinstance(value, (bool, dict | list)):
                raise _parse_error(value, "String")
            text = str(value)
            if fdef.length and len(text) > fdef.length:
                raise RecordError(
                    "STRING_TOO_LONG",
                    f"{fdef.label}: data value too large: {text[:80]} (max length={fdef.length})",
                    [fdef.name],
                )
            if kind == "email" and not _EMAIL.match(text):
                raise RecordError(
                    "INVALID_EMAIL_ADDRESS", f"{fdef.label}: invalid email address: {text}", [fdef.name]
                )
            if kind == "picklist" and fdef.restricted and text not in fdef.picklist:
                raise RecordError(
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"{fdef.label}: bad value for restricted picklist field: {text}",
                    [fdef.name],
                )
            return text
        if kind == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise _parse_error(value, "boolean")
        if kind in NUMBER_TYPES:
            if isinstance(value, bool):
                raise _parse_error(value, "double")
            try:
                number = float(value) if isinstance(value, str) else value
            except ValueError:
                raise _parse_error(value, "double") from None
            if not isinstance(number, int | float):
                raise _parse_error(value, "double")
            if kind == "int":
                if float(number) != int(number):
                    raise _parse_error(value, "int")
                return int(number)
            return float(number)
        if kind == "date":
            text = str(value)
            if _DATE.match(text):
                try:
                    date.fromisoformat(text)
                    return text
                except ValueError:
                    pass
            parsed = parse_datetime(text)
            if parsed is None:
                raise _parse_error(value, "Date")
            return parsed.date().isoformat()
        if kind == "datetime":
            parsed = parse_datetime(str(value))
            if parsed is None:
                if _DATE.match(str(value)):
                    return f"{value}T00:00:00.000+0000"
                raise _parse_error(value, "Datetime")
            return sf_datetime(parsed, milliseconds=True)
        if kind in ("reference", "id"):
            record_id = normalize_id(str(value))
            target = self.by_prefix.get((record_id or "")[:3])
            if record_id is None or target is None or target.obj.name not in fdef.reference_to:
                raise RecordError(
                    "MALFORMED_ID" if record_id is None else "FIELD_INTEGRITY_EXCEPTION",
                    f"{fdef.label}: id value of incorrect type: {value}",
                    [fdef.name],
                )
            found = target.rows.get(record_id)
            if found is None or found.get("IsDeleted"):
                raise RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
            return record_id
        return value

    # -- fields the org computes -----------------------------------------------------------------
    def _derive(self, object_name: str, row: dict[str, Any], previous: dict[str, Any] | None) -> None:
        if object_name in ("Lead", "Contact", "User"):
            name = " ".join(part for part in (row.get("FirstName"), row.get("LastName")) if part)
            row["Name"] = name
        elif object_name == "Opportunity":
            stage = (row.get("StageName") or "").lower()
            row["IsClosed"] = stage in ("closed won", "closed lost")
            row["IsWon"] = stage == "closed won"
        elif object_name == "CampaignMember":
            responded = (row.get("Status") or "").lower() in RESPONDED_STATUSES
            row["HasResponded"] = responded
            if responded and not row.get("FirstRespondedDate"):
                row["FirstRespondedDate"] = (row.get("LastModifiedDate") or self.stamp())[:10]
            row["Type"] = "Contact" if row.get("ContactId") else "Lead"
        elif object_name in ("Task", "Event"):
            what = row.get("WhatId") or ""
            if what.startswith("001"):
                row["AccountId"] = what
            else:
                who = self.find(row.get("WhoId") or "")
                account = who[1].get("AccountId") if who and who[0].obj.name == "Contact" else None
                if account:
                    row["AccountId"] = account
                else:
                    row.pop("AccountId", None)
            if object_name == "Task":
                closed = row.get("Status") == "Completed"
                row["IsClosed"] = closed
                row["IsHighPriority"] = row.get("Priority") == "High"
                row.setdefault("TaskSubtype", "Task")
                if closed and not row.get("CompletedDateTime"):
                    row["CompletedDateTime"] = row.get("LastModifiedDate")
                elif not closed:
                    row.pop("CompletedDateTime", None)
            else:
                row.setdefault("EventSubtype", "Event")
                if row.get("StartDateTime"):
                    row["ActivityDateTime"] = row["StartDateTime"]
                    row["ActivityDate"] = row["StartDateTime"][:10]

    # -- persistence -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "custom_fields": [{"object": name, **asdict(fdef)} for name, fdef in self.custom_fields],
            "tables": {
                table.obj.name: {"counter": table.counter, "rows": list(table.rows.values())}
                for table in self.tables.values()
            },
        }

    def restore(self, data: dict[str, Any]) -> None:
        self.reset()
        for spec in data.get("custom_fields", []):
            spec = dict(spec)
            object_name = spec.pop("object")
            for key in ("picklist", "reference_to"):
                spec[key] = tuple(spec.get(key) or ())
            self.add_custom_field(object_name, FieldDef(**spec))
        for name, content in data.get("tables", {}).items():
            table = self.table(name)
            table.rows = {}
            for row in content["rows"]:
                table.rows[row["Id"]] = row
            table.counter = content.get("counter", 0)
            table.rebuild_index()
        self.security_version += 1
        users = self.tables.get("user")
        if users is not None and self.profiles:  # a snapshot from before profiles existed
            lacking = [row for row in users.rows.values() if not row.get("ProfileId")]
            for row in lacking:
                admin = row["Id"] == self.api_user_id
                profile = security.SYSTEM_ADMINISTRATOR if admin else security.STANDARD_USER
                row["ProfileId"] = self.profiles[profile]
            if lacking:
                security.profile_assignments(self, lacking)


def not_writable(fdef: FieldDef, action: str) -> RecordError:
    return RecordError(
        "INVALID_FIELD_FOR_INSERT_UPDATE",
        f"Unable to create/update fields: {fdef.name}. Please check the security settings of "
        "this field and verify that it is read/write for your profile or permission set.",
        [fdef.name],
    )


def _parse_error(value: Any, java_type: str) -> RecordError:
    shown = "VALUE_STRING" if isinstance(value, str) else type(value).__name__.upper()
    return RecordError(
        "JSON_PARSER_ERROR",
        f"Cannot deserialize instance of {java_type} from {shown} value "
        f"{value} or request may be missing a required field",
        [],
    )
