"""CRM search: `POST /crm/v3/objects/{objectType}/search` with filter groups, operators, one sort, free-text
query, 200 results per page, the 10,000-result cap and eventual consistency (recent writes are not yet
indexed).

https://developers.hubspot.com/docs/api/crm/search
"""

from __future__ import annotations

import fnmatch
import re
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot import schema
from leadloop.sandbox.hubspot.errors import json_response, validation_error
from leadloop.sandbox.hubspot.objects import BASE, render, resolve_type
from leadloop.sandbox.hubspot.portal import Portal, body_json
from leadloop.sandbox.hubspot.store import Record, Store, iso_ms, parse_datetime_ms

MAX_LIMIT = 200
RESULT_CAP = 10_000
MAX_GROUPS, MAX_FILTERS_PER_GROUP, MAX_FILTERS = 5, 10, 25
OPERATORS = {
    "EQ",
    "NEQ",
    "LT",
    "LTE",
    "GT",
    "GTE",
    "BETWEEN",
    "IN",
    "NOT_IN",
    "HAS_PROPERTY",
    "NOT_HAS_PROPERTY",
    "CONTAINS_TOKEN",
    "NOT_CONTAINS_TOKEN",
}
_TOKEN_SPLIT = re.compile(r"[^0-9a-z]+")
QUERY_PROPERTIES = {
    "contacts": ("firstname", "lastname", "email", "phone", "company"),
    "companies": ("name", "domain", "website", "phone"),
    "deals": ("dealname",),
    "tasks": ("hs_task_subject",),
}

Predicate = Callable[[dict[str, str | None]], bool]
RecordPredicate = Callable[[Record], bool]
_CACHE_SIZE = 32


def _typed(kind: str, value: Any) -> Any:
    """A filter value in the comparable form of the property type (ISO strings compare in time order)."""
    if value is None:
        return None
    if kind == "number":
        try:
            return float(value)
        except (TypeError, ValueError):
            raise validation_error(f"{value} is not a valid number") from None
    if kind in ("datetime", "date"):
        ms = parse_datetime_ms(value)
        try:
            rendered = iso_ms(ms) if ms is not None else None
        except OverflowError:  # past year 9999
            rendered = None
        if rendered is None:
            raise validation_error(f"{value} is not a valid datetime (epoch milliseconds or ISO-8601)")
        return rendered if kind == "datetime" else rendered[:10]
    return str(value).lower()  # strings (and "true"/"false") compare case-insensitively


def _stored(kind: str, raw: str | None) -> Any:
    if raw is None:
        return None
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return None
    if kind in ("datetime", "date"):
        return raw
    return raw.lower()


def _token_match(raw: str, pattern: str) -> bool:
    """CONTAINS_TOKEN: the pattern is one of the value's words or word pieces (`*` is a wildcard)."""
    text = raw.lower()
    tokens = [*text.split(), *(t for t in _TOKEN_SPLIT.split(text) if t)]
    if "*" in pattern:
        return fnmatch.fnmatchcase(text, pattern) or any(fnmatch.fnmatchcase(t, pattern) for t in tokens)
    return pattern == text or pattern in tokens


def compile_filter(store: Store, object_name: str, spec: Any) -> RecordPredicate:
    if not isinstance(spec, dict):
        raise validation_error("Each filter must be an object")
    name, operator = spec.get("propertyName"), str(spec.get("operator", "")).upper()
    if operator not in OPERATORS:
        raise validation_error(
            f"Invalid operator {spec.get('operator')!r}. Valid operators are: {', '.join(sorted(OPERATORS))}"
        )
    if isinstance(name, str) and name.startswith("associations."):
        return _association_filter(store, object_name, name, operator, spec)
    on_props = _property_filter(store, object_name, name, operator, spec)
    return lambda record: on_props(record.props)


def _association_filter(
    store: Store, object_name: str, name: str, operator: str, spec: dict[str, Any]
) -> RecordPredicate:
    """The `associations.{objectType}` pseudo-property: records associated with the given record ids."""
    to_type = schema.object_type(name.split(".", 1)[1])
    if to_type is None or operator not in ("EQ", "IN"):
        raise validation_error(
            f"{name} supports EQ and IN on the ids of associated {name.split('.', 1)[1]} records"
        )
    raw = spec.get("values") if operator == "IN" else [spec.get("value")]
    try:
        wanted = {int(v) for v in raw or []}
    except (TypeError, ValueError):
        raise validation_error(f"{name} values are record ids") from None
    links = store.associations.get((object_name, to_type), {})
    return lambda record: not wanted.isdisjoint(links.get(record.id, ()))


def _property_filter(
    store: Store, object_name: str, name: Any, operator: str, spec: dict[str, Any]
) -> Predicate:
    definition = store.properties[object_name].get(name or "")
    if definition is None:
        raise validation_error(
            f'Property "{name}" does not exist on {object_name}', sub_category="PROPERTY_DOESNT_EXIST"
        )
    kind = definition.type
    if operator == "HAS_PROPERTY":
        return lambda p: p.get(name) is not None
    if operator == "NOT_HAS_PROPERTY":
        return lambda p: p.get(name) is None
    if operator in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
        token = str(spec.get("value", "")).lower()
        if operator == "CONTAINS_TOKEN":
            return lambda p: p.get(name) is not None and _token_match(p[name], token)
        return lambda p: p.get(name) is None or not _token_match(p[name], token)
    if operator in ("IN", "NOT_IN"):
        values = spec.get("values")
        if not isinstance(values, list):
            raise validation_error(f"{operator} requires 'values' (a list)")
        wanted = {_typed(kind, v) for v in values}
        if operator == "IN":
            return lambda p: _stored(kind, p.get(name)) in wanted
        return lambda p: _stored(kind, p.get(name)) not in wanted
    if "value" not in spec:
        raise validation_error(f"{operator} requires 'value'")
    value = _typed(kind, spec["value"])
    if operator == "BETWEEN":
        high = _typed(kind, spec.get("highValue"))
        if high is None:
            raise validation_error("BETWEEN requires 'highValue'")

        def between(p: dict[str, str | None]) -> bool:
            v = _stored(kind, p.get(name))
            return v is not None and value <= v <= high

        return between
    if operator == "EQ":
        return lambda p: _stored(kind, p.get(name)) == value
    if operator == "NEQ":
        return lambda p: _stored(kind, p.get(name)) != value
    compare = {
        "LT": lambda a: a < value,
        "LTE": lambda a: a <= value,
        "GT": lambda a: a > value,
        "GTE": lambda a: a >= value,
    }[operator]

    def ordered(p: dict[str, str | None]) -> bool:
        v = _stored(kind, p.get(name))
        return v is not None and compare(v)

    return ordered


def compile_groups(store: Store, object_name: str, groups: Any) -> RecordPredicate | None:
    if not groups:
        return None
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise validation_error(f"Too many filter groups: at most {MAX_GROUPS} are allowed")
    total = sum(len(g.get("filters") or []) for g in groups if isinstance(g, dict))
    if total > MAX_FILTERS:
        raise validation_error(
            f"Too many filters: at most {MAX_FILTERS} across all filter groups are allowed"
        )
    compiled: list[list[RecordPredicate]] = []
    for group in groups:
        filters = group.get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation_error("Each filter group needs a 'filters' list")
        if len(filters) > MAX_FILTERS_PER_GROUP:
            raise validation_error(
                f"Too many filters in a group: at most {MAX_FILTERS_PER_GROUP} are allowed"
            )
        compiled.append([compile_filter(store, object_name, f) for f in filters])
    return lambda record: any(all(f(record) for f in group) for group in compiled)


def sort_key(store: Store, object_name: str, sorts: Any) -> tuple[Callable[[Record], Any], bool] | None:
    """The key and direction of the one sort HubSpot allows (object form or "-prop" string form)."""
    if not sorts:
        return None
    if not isinstance(sorts, list) or len(sorts) > 1:
        raise validation_error("Only one sort is allowed per search request")
    spec = sorts[0]
    if isinstance(spec, str):
        descending = spec.startswith("-")
        name = spec.lstrip("-")
    elif isinstance(spec, dict):
        name = spec.get("propertyName", "")
        descending = str(spec.get("direction", "ASCENDING")).upper() == "DESCENDING"
    else:
        raise validation_error("Invalid sort")
    definition = store.properties[object_name].get(name)
    if definition is None:
        raise validation_error(f'Property "{name}" does not exist on {object_name}')
    kind = definition.type

    def key(record: Record) -> Any:
        v = _stored(kind, record.props.get(name))
        # Records without a value sort last in either direction; ties are broken by id.
        return (
            (v is None, v if v is not None else 0, record.id)
            if not descending
            else (v is not None, v if v is not None else 0, record.id)
        )

    return key, descending


def _query_predicate(object_name: str, query: Any) -> Predicate | None:
    if not query:
        return None
    if len(str(query)) > 3000:
        raise validation_error("query must be at most 3000 characters")
    needle = str(query).lower()
    names = QUERY_PROPERTIES.get(object_name, ())
    return lambda p: any(needle in (p.get(n) or "").lower() for n in names)


def _matches(portal: Portal, store: Store, object_name: str, body: dict[str, Any]) -> list[Record]:
    """Every visible match in result order. Pages of one query reuse the list while the table is unchanged
    (HubSpot's own paging is an offset into one result set, so a query runs once per set of pages)."""
    predicate = compile_groups(store, object_name, body.get("filterGroups"))
    free_text = _query_predicate(object_name, body.get("query"))
    ordering = sort_key(store, object_name, body.get("sorts"))
    table = store.table(object_name)
    now = portal.ctx.now().timestamp()
    key = (
        object_name,
        orjson.dumps(
            [body.get("filterGroups"), body.get("sorts"), body.get("query")], option=orjson.OPT_SORT_KEYS
        ),
    )
    cache: OrderedDict[Any, tuple[tuple[int, int], float, list[Record]]] = store.search_cache
    version = (table.version, store.associations_version)
    cached = cache.get(key)
    if cached is not None:
        cached_version, computed_at, matches = cached
        # Still right when nothing was written since and nothing was waiting to become visible then.
        if cached_version == version and table.max_indexed_at <= computed_at <= now:
            cache.move_to_end(key)
            return matches
    matches = [
        r
        for r in table.records.values()
        if not r.archived
        and r.indexed_at <= now
        and (predicate is None or predicate(r))
        and (free_text is None or free_text(r.props))
    ]
    if ordering is not None:
        sort_by, descending = ordering
        matches.sort(key=sort_by, reverse=descending)
    else:
        matches.sort(key=lambda r: r.id)
    cache[key] = (version, now, matches)
    while len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return matches


def add_routes(router: APIRouter, portal: Portal) -> None:
    @router.post(BASE + "/{object_type}/search")
    async def search(request: Request, object_type: str) -> Response:
        object_name = resolve_type(object_type)
        store = portal.store
        body = await body_json(request)
        if not isinstance(body, dict):
            raise validation_error("Invalid input JSON: expected an object")
        try:
            limit = int(body.get("limit") or 10)
            after = int(body.get("after") or 0)
        except (TypeError, ValueError):
            raise validation_error("limit and after must be integers") from None
        if limit < 1 or limit > MAX_LIMIT:
            raise validation_error(f"limit must be between 1 and {MAX_LIMIT}, was {limit}")
        if after >= RESULT_CAP:
            raise validation_error(
                f"The search endpoints are limited to {RESULT_CAP} total results for any "
                f"given query; after={after} is beyond that."
            )
        matches = _matches(portal, store, object_name, body)
        page = matches[after : min(after + limit, RESULT_CAP)]
        props = body.get("properties") or None
        result: dict[str, Any] = {
            "total": len(matches),
            "results": [render(store, object_name, r, props) for r in page],
        }
        if after + limit < len(matches):
            result["paging"] = {"next": {"after": str(after + limit)}}
        portal.read(f"POST {BASE}/{object_name}/search", len(page))
        return json_response(result)
