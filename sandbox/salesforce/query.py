"""SOQL evaluation: resolves a parsed query against the org's schema (field paths, literal types) and
runs it over the org's rows, rendering records as the REST API returns them.

https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_comparisonoperators.htm
https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_dateformats.htm
Text comparisons are case-insensitive as in Salesforce; `!=` and `NOT IN` match null values; date
literals are ranges in UTC (the sandbox org's time zone). A filter or sort on SystemModstamp uses the
org's modstamp index instead of a scan. Given the user's `Access`, a field they cannot read is not
there for them (INVALID_FIELD, "No such column"), nor is an object they may not see (INVALID_TYPE).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from leadloop.sandbox.salesforce.ids import normalize_id
from leadloop.sandbox.salesforce.org import Org, Table, parse_datetime, sf_datetime
from leadloop.sandbox.salesforce.schema import (
    NAME_OBJECT_FIELDS,
    NUMBER_TYPES,
    STRING_TYPES,
    FieldDef,
    ObjectDef,
)
from leadloop.sandbox.salesforce.soql import (
    BoolOp,
    Compare,
    Condition,
    FieldPath,
    InList,
    Not,
    Query,
    SoqlError,
    Value,
)

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.security import Access

Row = dict[str, Any]
Getter = Callable[[Row], Any]
Predicate = Callable[[Row], bool]

_TYPE_NAMES = {
    "int": "integer",
    "double": "double",
    "currency": "currency",
    "percent": "percent",
    "date": "date",
    "datetime": "dateTime",
    "boolean": "boolean",
    "id": "id",
    "reference": "id",
}


@dataclass(slots=True)
class Resolved:
    """A field path resolved to its final field and a function reading it from a row."""

    path: list[str]  # canonical names, e.g. ["Account", "Name"]
    fdef: FieldDef | None  # None for a field of a polymorphic relationship (the Name object)
    type: str
    getter: Getter
    refs: list[str] = field(default_factory=list)  # the reference fields followed, e.g. ["AccountId"]


@dataclass(slots=True)
class _Node:
    """The shape of the rendered records: fields and nested parent relationships, in SELECT order."""

    children: dict[str, str | _Node] = field(default_factory=dict)  # key -> field name or sub-node
    ref_field: str = ""  # the reference field this relationship follows


@dataclass(slots=True)
class Compiled:
    query: Query
    obj: ObjectDef
    select: list[Resolved]
    shape: _Node
    predicate: Predicate | None
    order: list[tuple[Getter, bool, bool]]  # getter, descending, nulls first
    index_bounds: tuple[str | None, bool, str | None, bool] | None
    index_ordered: bool


def compile_query(org: Org, query: Query, now: datetime, access: Access | None = None) -> Compiled:
    """A query checked against the org's schema (as `access`'s user sees it, when given), ready to run;
    SoqlError when Salesforce would refuse it."""
    obj = org.object(query.object_name)
    if obj is None or (access is not None and not access.sees_object(obj)):
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{query.object_name}' is not supported. If you are "
            "attempting to use a custom object, be sure to append the '__c' after the entity name. "
            "Please reference your WSDL or the describe call for the appropriate names.",
            query.text,
            query.object_pos,
        )
    resolver = _Resolver(org, obj, query.text, access)
    select = [resolver.resolve(path) for path in query.fields]
    seen: set[str] = set()
    shape = _Node()
    for path, resolved in zip(query.fields, select, strict=True):
        key = ".".join(resolved.path).lower()
        if key in seen:
            raise SoqlError("MALFORMED_QUERY", f"duplicate field selected: {path.dotted}", query.text, None)
        seen.add(key)
        node = shape
        for ref_name, ref_field in zip(resolved.path[:-1], resolved.refs, strict=True):
            child = node.children.get(ref_name)
            if not isinstance(child, _Node):
                child = _Node(ref_field=ref_field)
                node.children[ref_name] = child
            node = child
        node.children[resolved.path[-1]] = resolved.path[-1]
    predicate = _Filter(resolver, now).condition(query.where) if query.where is not None else None
    order = []
    for item in query.order_by:
        resolved = resolver.resolve(item.path)
        if resolved.fdef is not None and not resolved.fdef.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{resolved.fdef.name}' can not be sorted in a query call",
                query.text,
                item.path.pos,
            )
        nulls_first = (not item.descending) if item.nulls_first is None else item.nulls_first
        order.append((_sort_key(resolved), item.descending, nulls_first))
    ordered_by_stamp = [
        item
        for item in query.order_by
        if not item.descending and [p.lower() for p in item.path.parts] in (["systemmodstamp"], ["id"])
    ]
    index_ordered = (
        len(ordered_by_stamp) == len(query.order_by)
        and bool(query.order_by)
        and query.order_by[0].path.parts[-1].lower() == "systemmodstamp"
        and len(query.order_by[0].path.parts) == 1
        and all(
            item.nulls_first is not False or item.path.parts[-1].lower() == "systemmodstamp"
            for item in query.order_by
        )
    )
    return Compiled(
        query, obj, select, shape, predicate, order, _index_bounds(query.where, now), index_ordered
    )


def execute(org: Org, compiled: Compiled, include_deleted: bool) -> list[Row]:
    """The matching rows, ordered, after OFFSET and LIMIT."""
    table = org.table(compiled.obj.name)
    query = compiled.query
    bounds = compiled.index_bounds
    candidates: Iterable[Row]
    if bounds is not None or compiled.index_ordered:
        ids = table.range(*bounds) if bounds is not None else iter(table.order)
        if compiled.index_ordered or not compiled.order:
            candidates = (table.rows[record_id] for record_id in ids)
        else:
            candidates = [table.rows[record_id] for record_id in ids]
    else:
        candidates = table.rows.values()
    predicate = compiled.predicate
    presorted = compiled.index_ordered or not compiled.order
    wanted = None if query.limit is None else query.limit + (query.offset or 0)
    rows: list[Row] = []
    for row in candidates:
        if (include_deleted or not row.get("IsDeleted")) and (predicate is None or predicate(row)):
            rows.append(row)
            if presorted and wanted is not None and len(rows) >= wanted:
                break
    if not presorted:
        _sort(rows, compiled.order)
    start = query.offset or 0
    end = None if query.limit is None else start + query.limit
    return rows[start:end] if start or end is not None else rows


def _sort(rows: list[Row], order: list[tuple[Getter, bool, bool]]) -> None:
    for getter, descending, nulls_first in reversed(order):
        null_rank = 0 if nulls_first != descending else 2

        def key(row: Row, getter: Getter = getter, null_rank: int = null_rank) -> tuple[Any, ...]:
            value = getter(row)
            return (null_rank,) if value is None else (1, value)

        rows.sort(key=key, reverse=descending)


def _sort_key(resolved: Resolved) -> Getter:
    getter = resolved.getter
    if resolved.type in STRING_TYPES or resolved.type == "textarea":
        return lambda row: None if (value := getter(row)) is None else value.casefold()
    return getter


class Renderer:
    """Turns rows into the REST API's JSON records for one compiled query."""

    def __init__(self, org: Org, compiled: Compiled, version: str) -> None:
        self.org = org
        self.prefix = f"/services/data/v{version}/sobjects/"
        self.type_name = compiled.obj.name
        booleans = {fdef.name for fdef in compiled.obj.fields.values() if fdef.type == "boolean"}
        self.fields: list[tuple[str, Any, _Node | None]] = []  # key, null value, relationship node
        for key, child in compiled.shape.children.items():
            if isinstance(child, str):
                self.fields.append((key, False if key in booleans else None, None))
            else:
                self.fields.append((key, None, child))

    def render(self, row: Row) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {"type": self.type_name, "url": self.prefix + self.type_name + "/" + row["Id"]}
        }
        for key, null, node in self.fields:
            if node is None:
                value = row.get(key)
                out[key] = null if value is None else value
            else:
                parent_id = row.get(node.ref_field)
                found = self.org.find(parent_id) if parent_id else None
                out[key] = None if found is None else self._render_parent(found[1], found[0], node)
        return out

    def _render_parent(self, row: Row, table: Table, node: _Node) -> dict[str, Any]:
        obj = table.obj
        out: dict[str, Any] = {
            "attributes": {"type": obj.name, "url": self.prefix + obj.name + "/" + row["Id"]}
        }
        for key, child in node.children.items():
            if isinstance(child, str):
                fdef = obj.field(child)
                if fdef is None:  # a Name-object field of a polymorphic parent
                    out[key] = obj.name if key == "Type" else None
                    continue
                value = row.get(fdef.name)
                out[key] = (False if fdef.type == "boolean" else None) if value is None else value
                continue
            parent_id = row.get(child.ref_field)
            found = self.org.find(parent_id) if parent_id else None
            out[key] = None if found is None else self._render_parent(found[1], found[0], child)
        return out


class _Resolver:
    def __init__(self, org: Org, obj: ObjectDef, text: str, access: Access | None = None) -> None:
        self.org = org
        self.obj = obj
        self.text = text
        self.access = access

    def _hidden(self, obj: ObjectDef, fdef: FieldDef) -> bool:
        return self.access is not None and not self.access.can_read(obj, fdef)

    def resolve(self, path: FieldPath) -> Resolved:
        obj: ObjectDef | None = self.obj
        refs: list[str] = []
        canonical: list[str] = []
        parts = path.parts
        for position, part in enumerate(parts[:-1]):
            if obj is None:  # beyond a polymorphic relationship only the Name object's fields exist
                self._bad_relationship(part, path)
            relationship = obj.relationships.get(part.lower())
            if relationship is None or self._hidden(obj, relationship):
                self._bad_relationship(part, path)
            refs.append(relationship.name)
            canonical.append(relationship.relationship_name or part)
            targets = relationship.reference_to
            obj = self.org.object(targets[0]) if len(targets) == 1 else None
            if obj is not None and self.access is not None and not self.access.sees_object(obj):
                self._bad_relationship(part, path)
            if obj is None and position != len(parts) - 2:
                self._bad_relationship(parts[position + 1], path)
        last = parts[-1]
        if obj is None:  # polymorphic: Who.Name, What.Type...
            matches = [name for name in NAME_OBJECT_FIELDS if name.lower() == last.lower()]
            if not matches:
                raise SoqlError(
                    "INVALID_FIELD",
                    f"No such column '{last}' on entity 'Name'. If you are attempting "
                    "to use a custom field, be sure to append the '__c' after the custom field name. "
                    "Please reference your WSDL or the describe call for the appropriate names.",
                    self.text,
                    path.pos,
                )
            name = matches[0]
            canonical.append(name)
            return Resolved(
                canonical,
                None,
                "id" if name == "Id" else "string",
                self._getter(refs, name, polymorphic=True),
                refs,
            )
        fdef = obj.field(last)
        if fdef is None or self._hidden(obj, fdef):
            raise SoqlError(
                "INVALID_FIELD",
                f"No such column '{last}' on entity '{obj.name}'. If you are "
                "attempting to use a custom field, be sure to append the '__c' after the custom field "
                "name. Please reference your WSDL or the describe call for the appropriate names.",
                self.text,
                path.pos,
            )
        canonical.append(fdef.name)
        default = fdef.default if fdef.type == "boolean" else None
        return Resolved(canonical, fdef, fdef.type, self._getter(refs, fdef.name, default=default), refs)

    def _bad_relationship(self, part: str, path: FieldPath) -> None:
        raise SoqlError(
            "INVALID_FIELD",
            f"Didn't understand relationship '{part}' in field path. If you are "
            "attempting to use a custom relationship, be sure to append the '__r' after the custom "
            "relationship name. Please reference your WSDL or the describe call for the appropriate "
            "names.",
            self.text,
            path.pos,
        )

    def _getter(self, refs: list[str], name: str, default: Any = None, polymorphic: bool = False) -> Getter:
        if not refs:
            return (
                (lambda row: row.get(name, default)) if default is not None else (lambda row: row.get(name))
            )
        find = self.org.find

        def getter(row: Row) -> Any:
            table = None
            for ref in refs:
                parent_id = row.get(ref)
                if parent_id is None:
                    return None
                found = find(parent_id)
                if found is None:
                    return None
                table, row = found
            if polymorphic and table is not None:
                if name == "Type":
                    return table.obj.name
                fdef = table.obj.field(name)
                return row.get(fdef.name) if fdef else None
            return row.get(name, default)

        return getter


class _Filter:
    def __init__(self, resolver: _Resolver, now: datetime) -> None:
        self.resolver = resolver
        self.text = resolver.text
        self.today = now.date()

    def condition(self, node: Condition) -> Predicate:
        if isinstance(node, BoolOp):
            parts = [self.condition(item) for item in node.items]
            if node.op == "AND":
                return lambda row: all(part(row) for part in parts)
            return lambda row: any(part(row) for part in parts)
        if isinstance(node, Not):
            inner = self.condition(node.item)
            return lambda row: not inner(row)
        if isinstance(node, InList):
            return self.in_list(node)
        return self.compare(node)

    def _field(self, path: FieldPath) -> Resolved:
        resolved = self.resolver.resolve(path)
        if resolved.fdef is not None and not resolved.fdef.filterable:
            raise SoqlError(
                "INVALID_FIELD",
                f"field '{resolved.fdef.name}' can not be filtered in a query call",
                self.text,
                path.pos,
            )
        return resolved

    def in_list(self, node: InList) -> Predicate:
        resolved = self._field(node.path)
        if resolved.type == "boolean":
            self._error(node.path, "invalid operator on boolean field")
        values = set()
        for value in node.values:
            literal = self.literal(resolved, value)
            if isinstance(literal, tuple):
                self._error(node.path, "date literal ranges are not allowed in an IN list")
            values.add(literal)
        norm = _normalizer(resolved.type)
        getter = resolved.getter
        if node.negated:
            return lambda row: (value := getter(row)) is None or norm(value) not in values
        return lambda row: (value := getter(row)) is not None and norm(value) in values

    def compare(self, node: Compare) -> Predicate:
        resolved = self._field(node.path)
        getter = resolved.getter
        op = node.op
        if op == "LIKE":
            if resolved.type not in STRING_TYPES and resolved.type != "textarea":
                self._error(
                    node.path, f"invalid operator on {_TYPE_NAMES.get(resolved.type, resolved.type)} field"
                )
            if node.value.kind != "string":
                self._type_error(resolved, node.value)
            pattern = _like_regex(node.value.value)
            return lambda row: (value := getter(row)) is not None and pattern.fullmatch(value) is not None
        literal = self.literal(resolved, node.value)
        if resolved.type == "boolean" and op not in ("=", "!="):
            self._error(node.path, "invalid operator on boolean field")
        if literal is None:
            if op == "=":
                return lambda row: getter(row) is None
            if op == "!=":
                return lambda row: getter(row) is not None
            self._error(node.path, "invalid operator on null value")
        if isinstance(literal, tuple):
            return _range_predicate(getter, op, literal)
        norm = _normalizer(resolved.type)
        if op == "=":
            return lambda row: (value := getter(row)) is not None and norm(value) == literal
        if op == "!=":
            return lambda row: (value := getter(row)) is None or norm(value) != literal
        compare = {
            "<": lambda a, b: a < b,
            ">": lambda a, b: a > b,
            "<=": lambda a, b: a <= b,
            ">=": lambda a, b: a >= b,
        }[op]
        return lambda row: (value := getter(row)) is not None and compare(norm(value), literal)

    def literal(self, resolved: Resolved, value: Value) -> Any:
        """The literal in the stored form of the field (casefolded text, 18-char id...), a (start, end)
        range for a date literal, or None for NULL."""
        kind = resolved.type
        if value.kind == "null":
            return None
        if kind in STRING_TYPES or kind == "textarea":
            if value.kind != "string":
                self._type_error(resolved, value)
            return value.value.casefold()
        if kind in ("id", "reference"):
            if value.kind != "string":
                self._type_error(resolved, value)
            record_id = normalize_id(value.value)
            if record_id is None:
                raise SoqlError(
                    "INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {value.value}", self.text, value.pos
                )
            return record_id
        if kind == "boolean":
            if value.kind != "boolean":
                self._type_error(resolved, value)
            return value.value
        if kind in NUMBER_TYPES:
            if value.kind != "number":
                self._type_error(resolved, value)
            return value.value
        if kind in ("date", "datetime"):
            if value.kind == "date_literal":
                start, end = _date_literal_range(value.value, self.today)
                if kind == "date":
                    return (start.isoformat(), end.isoformat())
                return (f"{start.isoformat()}T00:00:00.000+0000", f"{end.isoformat()}T00:00:00.000+0000")
            if kind == "date" and value.kind == "date":
                return value.value
            if kind == "datetime" and value.kind == "datetime":
                parsed = parse_datetime(value.value)
                if parsed is None:
                    self._type_error(resolved, value)
                return sf_datetime(parsed, milliseconds=True)  # type: ignore[arg-type]
            self._type_error(resolved, value)
        self._type_error(resolved, value)
        return None

    def _type_error(self, resolved: Resolved, value: Value) -> None:
        name = ".".join(resolved.path)
        if resolved.type in STRING_TYPES or resolved.type == "textarea":
            detail = (
                f"value of filter criterion for field '{name}' must be of type string and should be enclosed "
                "in quotes"
            )
        else:
            quoted = "should not be enclosed in quotes"
            detail = (
                f"value of filter criterion for field '{name}' must be of type "
                f"{_TYPE_NAMES.get(resolved.type, resolved.type)} and {quoted}"
            )
        raise SoqlError("INVALID_FIELD", detail, self.text, value.pos)

    def _error(self, path: FieldPath, detail: str) -> None:
        raise SoqlError("INVALID_FIELD", detail, self.text, path.pos)


def _normalizer(kind: str) -> Callable[[Any], Any]:
    if kind in STRING_TYPES or kind == "textarea":
        return lambda value: value.casefold()
    return lambda value: value


def _range_predicate(getter: Getter, op: str, bounds: tuple[str, str]) -> Predicate:
    start, end = bounds
    if op == "=":
        return lambda row: (value := getter(row)) is not None and start <= value < end
    if op == "!=":
        return lambda row: (value := getter(row)) is None or not (start <= value < end)
    if op == "<":
        return lambda row: (value := getter(row)) is not None and value < start
    if op == "<=":
        return lambda row: (value := getter(row)) is not None and value < end
    if op == ">":
        return lambda row: (value := getter(row)) is not None and value >= end
    return lambda row: (value := getter(row)) is not None and value >= start


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _month_start(day: date, shift: int) -> date:
    month = day.year * 12 + day.month - 1 + shift
    return date(month // 12, month % 12 + 1, 1)


def _date_literal_range(literal: tuple[str, int | None], today: date) -> tuple[date, date]:
    """[start, end) of a SOQL date literal; weeks start on Sunday (the en_US locale)."""
    word, n = literal
    n = n or 0
    day = timedelta(days=1)
    week_start = today - timedelta(days=(today.weekday() + 1) % 7)
    month_start = _month_start(today, 0)
    year_start = date(today.year, 1, 1)
    ranges: dict[str, tuple[date, date]] = {
        "TODAY": (today, today + day),
        "YESTERDAY": (today - day, today),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "THIS_WEEK": (week_start, week_start + 7 * day),
        "LAST_WEEK": (week_start - 7 * day, week_start),
        "NEXT_WEEK": (week_start + 7 * day, week_start + 14 * day),
        "LAST_N_WEEKS": (week_start - 7 * n * day, week_start),
        "NEXT_N_WEEKS": (week_start + 7 * day, week_start + 7 * (n + 1) * day),
        "THIS_MONTH": (month_start, _month_start(today, 1)),
        "LAST_MONTH": (_month_start(today, -1), month_start),
        "NEXT_MONTH": (_month_start(today, 1), _month_start(today, 2)),
        "LAST_N_MONTHS": (_month_start(today, -n), month_start),
        "NEXT_N_MONTHS": (_month_start(today, 1), _month_start(today, n + 1)),
        "THIS_YEAR": (year_start, date(today.year + 1, 1, 1)),
        "LAST_YEAR": (date(today.year - 1, 1, 1), year_start),
        "NEXT_YEAR": (date(today.year + 1, 1, 1), date(today.year + 2, 1, 1)),
        "LAST_N_YEARS": (date(today.year - n, 1, 1), year_start),
        "NEXT_N_YEARS": (date(today.year + 1, 1, 1), date(today.year + n + 1, 1, 1)),
    }
    return ranges[word]


def _index_bounds(where: Condition | None, now: datetime) -> tuple[str | None, bool, str | None, bool] | None:
    """Bounds on SystemModstamp implied by the top-level AND of the WHERE clause, or None. The full
    predicate still runs on every candidate, so the bounds only need to contain the answer."""
    if where is None:
        return None
    items = where.items if isinstance(where, BoolOp) and where.op == "AND" else [where]
    lo: tuple[str, bool] | None = None  # (value, inclusive)
    hi: tuple[str, bool] | None = None
    for item in items:
        if not (isinstance(item, Compare) and [p.lower() for p in item.path.parts] == ["systemmodstamp"]):
            continue
        value = item.value
        if value.kind == "datetime":
            parsed = parse_datetime(value.value)
            if parsed is None:
                continue
            stamp = sf_datetime(parsed, milliseconds=True)
            bounds = {
                ">": ((stamp, False), None),
                ">=": ((stamp, True), None),
                "<": (None, (stamp, False)),
                "<=": (None, (stamp, True)),
                "=": ((stamp, True), (stamp, True)),
            }
        elif value.kind == "date_literal":
            first, after = _date_literal_range(value.value, now.date())
            start, end = f"{first.isoformat()}T00:00:00.000+0000", f"{after.isoformat()}T00:00:00.000+0000"
            bounds = {
                ">": ((end, True), None),
                ">=": ((start, True), None),
                "<": (None, (start, False)),
                "<=": (None, (end, False)),
                "=": ((start, True), (end, False)),
            }
        else:
            continue
        new_lo, new_hi = bounds.get(item.op, (None, None))
        if new_lo is not None and (lo is None or new_lo[0] > lo[0] or (new_lo[0] == lo[0] and not new_lo[1])):
            lo = new_lo
        if new_hi is not None and (hi is None or new_hi[0] < hi[0] or (new_hi[0] == hi[0] and not new_hi[1])):
            hi = new_hi
    if lo is None and hi is None:
        return None
    return (lo[0] if lo else None, lo[1] if lo else True, hi[0] if hi else None, hi[1] if hi else True)
