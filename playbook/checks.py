"""Path-precise playbook problems: YAML reading with line numbers, pydantic errors translated into
`intent.rules[3].points: must be a number (line 88)`, and the cross-reference checks the models
alone cannot make (asset types, stages, groups, tiers, lists, field names, pattern lists too large
together, a `\b` that can never match next to a letter beyond ASCII, non-buying account types)."""

from __future__ import annotations

import difflib
import re
import string
import types
import typing
import unicodedata
from collections.abc import Iterator
from typing import Any

import re2
import yaml
from pydantic import BaseModel

from leadloop.crm.records import Account, Person
from leadloop.playbook.model import NON_BUYING_TYPES, Condition, FitRule, Playbook, PlaybookError
from leadloop.playbook.patterns import compile_patterns
from leadloop.playbook.routing import routing_problems

PERSON_FIELDS = frozenset(Person.__dataclass_fields__) | {"role", "seniority"}
ACCOUNT_FIELDS = frozenset(Account.__dataclass_fields__)
_SAYS_PLACEHOLDERS = {"asset", "count", "window"}


_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available: ~10x faster


class _UniqueKeyLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key] + 1})", key_node.start_mark
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """The parsed data and its node tree (for line numbers); YAML errors become PlaybookError."""
    try:
        root = yaml.compose(text, Loader=_BaseLoader)
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "somewhere"
        problem = getattr(error, "problem", None) or str(error)
        raise PlaybookError(source, [f"(YAML) {where}: {problem}"]) from None
    return data, root


def format_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += ("." if path else "") + str(part)
    return path or "(top level)"


def _parse_path(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for chunk in path.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        for index in filter(None, rest.replace("]", "").split("[")):
            parts.append(int(index))
    return parts


def locate(root: yaml.Node | None, path: str) -> str:
    """` (line N)` of the deepest node of `path` that exists in the YAML, or ''."""
    node, line = root, None
    for part in _parse_path(path):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            match = next((v for k, v in node.value if k.value == part), None)
            if match is None:
                break
            node = match
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            break
        line = node.start_mark.line + 1
    return f" (line {line})" if line else ""


def _unwrap(annotation: Any) -> list[Any]:
    """The model classes an annotation may hold (through Optional, list, dict, Annotated)."""
    found: list[Any] = []
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (list, dict, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found.extend(_unwrap(arg))
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
    return found


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for cls in current:
            for name, info in cls.model_fields.items():
                if part in (name, info.alias):
                    nxt.extend(_unwrap(info.annotation))
        if not nxt:
            return []
        current = nxt
    return sorted({info.alias or name for cls in current for name, info in cls.model_fields.items()})


_MESSAGES = {
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "int_from_float": "must be a whole number",
    "finite_number": "must be a finite number",
    "missing": "is required",
    "string_type": "must be text",
    "bool_type": "must be true or false",
    "list_type": "must be a list",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
}


def translate_error(item: Any, root: yaml.Node | None, model: type[BaseModel]) -> str:
    """One pydantic error as `path: message (line N)`."""
    loc = tuple(item["loc"])
    kind = item["type"]
    message = _MESSAGES.get(kind)
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        message = "unknown key" + (f" (did you mean '{close[0]}'?)" if close else "")
        if allowed and not close:
            message += f"; expected one of: {', '.join(allowed)}"
    elif message is None:
        message = str(item["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if message.startswith("points: ") and kind == "value_error":  # raised by a rule for its own key
        loc, message = (*loc, "points"), message.removeprefix("points: ")
    path = format_path(loc)
    return f"{path}: {message}{locate(root, path)}"


def _conditions(playbook: Playbook) -> Iterator[tuple[str, Condition, str]]:
    """Every condition with its path and the record kind it may test ('account', 'person', 'any')."""
    for i, profile in enumerate(playbook.profiles):
        for j, cond in enumerate(profile.applies_when):
            yield f"profiles[{i}].applies_when[{j}]", cond, "account"
        for j, rule in enumerate(profile.fit):
            yield f"profiles[{i}].fit[{j}]", rule, "account"
    for j, rule in enumerate(playbook.contact_fit.rules):
        yield f"contact_fit.rules[{j}]", rule, "person"
    for i, negative in enumerate(playbook.negatives):
        for j, cond in enumerate(negative.when):
            yield f"negatives[{i}].when[{j}]", cond, "any"
    for i, disqualifier in enumerate(playbook.disqualifiers):
        for j, cond in enumerate(disqualifier.when):
            yield f"disqualifiers[{i}].when[{j}]", cond, "any"


def _pattern_lists(playbook: Playbook) -> Iterator[tuple[str, list[str]]]:
    """Every list of patterns that scoring compiles into one regex, with its path."""
    for i, role in enumerate(playbook.personas.roles):
        yield f"personas.roles[{i}].patterns", role.patterns
    for i, level in enumerate(playbook.personas.seniority):
        yield f"personas.seniority[{i}].patterns", level.patterns
    for i, asset in enumerate(playbook.assets):
        for name in ("urls", "forms", "campaigns"):
            yield f"assets[{i}].match.{name}", getattr(asset.match, name)
    if playbook.non_buying is not None:
        yield "non_buying.universities.email_domains", playbook.non_buying.universities.email_domains


def _check_field(path: str, cond: Condition, allowed: str) -> Iterator[tuple[str, str]]:
    record, _, name = cond.field.partition(".")
    if record not in ("person", "account") or not name:
        yield f"{path}.field", f"must be person.<field> or account.<field>, not {cond.field!r}"
        return
    if allowed != "any" and record != allowed:
        yield f"{path}.field", f"must be an {allowed} field here ({allowed}.<field>), not {cond.field!r}"
        return
    known = PERSON_FIELDS if record == "person" else ACCOUNT_FIELDS
    if name.startswith("attributes.") and len(name) > len("attributes."):
        return
    if name not in known:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean '{record}.{close[0]}'?)" if close else ""
        yield f"{path}.field", f"unknown field {cond.field!r}{hint}"
    numeric = {"employees", "annual_revenue"}
    if (cond.min is not None or cond.max is not None or (isinstance(cond, FitRule) and cond.bands)) and (
        name not in numeric and not name.startswith("attributes.")
    ):
        yield f"{path}.field", f"min/max and bands need a numeric field ({', '.join(sorted(numeric))})"


def _check_says(path: str, says: str | None) -> Iterator[tuple[str, str]]:
    if says is None:
        return
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(says) if name is not None}
    except ValueError as error:
        yield path, f"not a valid sentence template ({error})"
        return
    unknown = names - _SAYS_PLACEHOLDERS
    if unknown:
        yield path, f"unknown placeholder(s) {sorted(unknown)}; use {{asset}}, {{count}} or {{window}}"


Problem = tuple[str, str]  # (path in the playbook, message)


def check_references(pb: Playbook) -> list[Problem]:
    """Cross-reference problems as (path, message); empty when the playbook is coherent."""
    roles = {r.role for r in pb.personas.roles} | {pb.personas.unknown_role}
    tiers = [t.name for t in pb.tiers]
    return [*_duplicate_ids(pb), *_condition_problems(pb, roles), *_pattern_problems(pb),
            *_catalog_problems(pb), *_intent_problems(pb, tiers), *_tier_problems(pb, tiers, roles),
            *_blend_problems(pb), *_routing_references(pb, tiers), *_non_buying_problems(pb)]


def _unknown(path: str, values: list[str] | None, known: set[str], what: str) -> Iterator[Problem]:
    """Each value not among `known`, with the closest known one as a hint."""
    for value in values or []:
        if value not in known:
            close = difflib.get_close_matches(value, sorted(known), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {sorted(known)}"
            yield path, f"unknown {what} {value!r}{hint}"


def _duplicate_ids(pb: Playbook) -> Iterator[Problem]:
    seen_ids: dict[str, str] = {}
    for section, rules in (
        ("profiles", pb.profiles),
        ("contact_fit.rules", pb.contact_fit.rules),
        ("assets", pb.assets),
        ("intent.groups", pb.intent.groups),
        ("intent.rules", pb.intent.rules),
        ("intent.depth", pb.intent.depth),
        ("negatives", pb.negatives),
        ("disqualifiers", pb.disqualifiers),
        ("escalations", pb.escalations),
    ):
        for i, rule in enumerate(rules):
            if rule.id in seen_ids:
                yield f"{section}[{i}].id", f"duplicate id {rule.id!r} (also {seen_ids[rule.id]})"
            seen_ids.setdefault(rule.id, f"{section}[{i}]")


def _condition_problems(pb: Playbook, roles: set[str]) -> Iterator[Problem]:
    for path, cond, record in _conditions(pb):
        yield from _check_field(path, cond, record)
        if cond.in_list is not None and cond.in_list not in pb.lists:
            yield f"{path}.in_list", f"no list named {cond.in_list!r} under 'lists'"
        if cond.field == "person.role" and cond.in_:
            for value in sorted(set(cond.in_) - roles):
                yield f"{path}.in", f"unknown role {value!r}; personas define {sorted(roles)}"


# `\b` next to a letter, mark or digit beyond ASCII: RE2's \b sees only ASCII word characters, so
# between a space and "é" or "엔" there is no boundary, and `\bingénieur` matches, `\bélectronique`
# never does.
_WIDE_BOUNDARY = re.compile(r"\\b([^\x00-\x7f])|([^\x00-\x7f])\\b")


def _boundary_problems(path: str, patterns: list[str]) -> Iterator[Problem]:
    for k, pattern in enumerate(patterns):
        for found in _WIDE_BOUNDARY.finditer(pattern):
            letter = found.group(1) or found.group(2)
            if unicodedata.category(letter)[0] in "LMN":
                yield (f"{path}[{k}]", f"/{pattern}/: \\b next to {letter!r} finds no word boundary (the "
                       "matcher's \\b knows only ASCII letters and digits); leave that \\b out")
                break


def _pattern_problems(pb: Playbook) -> Iterator[Problem]:
    for path, patterns in _pattern_lists(pb):
        yield from _boundary_problems(path, patterns)
        # Each pattern compiled alone when the models were validated; only their sum can be too big.
        if len(patterns) > 1:
            try:
                compile_patterns(patterns)
            except re2.error:
                yield path, "these patterns together are too large for the linear-time matcher; shorten them"


def _catalog_problems(pb: Playbook) -> Iterator[Problem]:
    for i, asset in enumerate(pb.assets):
        if asset.stage not in pb.stages:
            yield f"assets[{i}].stage", f"unknown stage {asset.stage!r}; stages are {pb.stages}"


def _intent_problems(pb: Playbook, tiers: list[str]) -> Iterator[Problem]:
    stages = set(pb.stages)
    asset_types = {a.type for a in pb.assets}
    families = {a.product_family for a in pb.assets if a.product_family}
    groups = {g.id for g in pb.intent.groups}
    for i, rule in enumerate(pb.intent.rules):
        path = f"intent.rules[{i}]"
        yield from _unknown(f"{path}.asset_types", rule.asset_types, asset_types, "asset type")
        yield from _unknown(f"{path}.stages", rule.stages, stages, "stage")
        yield from _unknown(f"{path}.product_families", rule.product_families, families, "product family")
        if rule.group is not None and rule.group not in groups:
            yield f"{path}.group", f"no intent group {rule.group!r} under intent.groups"
        if rule.stage is not None and rule.stage not in stages:
            yield f"{path}.stage", f"unknown stage {rule.stage!r}; stages are {pb.stages}"
        yield from _check_says(f"{path}.says", rule.says)
    for i, depth in enumerate(pb.intent.depth):
        path = f"intent.depth[{i}]"
        yield from _unknown(f"{path}.asset_types", depth.asset_types, asset_types, "asset type")
        if depth.group is not None and depth.group not in groups:
            yield f"{path}.group", f"no intent group {depth.group!r} under intent.groups"
        yield from _check_says(f"{path}.says", depth.says)
    for i, negative in enumerate(pb.negatives):
        yield from _check_says(f"negatives[{i}].says", negative.says)
    for i, escalation in enumerate(pb.escalations):
        yield from _unknown(f"escalations[{i}].asset_types", escalation.asset_types, asset_types,
                            "asset type")
        if escalation.tier is not None and escalation.tier not in tiers:
            yield f"escalations[{i}].tier", f"unknown tier {escalation.tier!r}; tiers are {tiers}"


def _tier_problems(pb: Playbook, tiers: list[str], roles: set[str]) -> Iterator[Problem]:
    if len(set(tiers)) != len(tiers):
        yield "tiers", "tier names must be unique"
    if pb.tiers[-1].has_thresholds:
        yield (f"tiers[{len(pb.tiers) - 1}]",
               "the last tier is the catch-all: it takes no min_score/min_fit/min_intent")
    if pb.disqualified_tier is not None:
        if pb.disqualified_tier not in tiers:
            yield "disqualified_tier", f"unknown tier {pb.disqualified_tier!r}; tiers are {tiers}"
        elif pb.disqualified_tier == tiers[0]:
            yield "disqualified_tier", "disqualified people can never be in the top tier"
    last_account_tier = pb.account.tiers[-1]
    if last_account_tier.min_fit is not None or last_account_tier.min_intent is not None:
        yield (f"account.tiers[{len(pb.account.tiers) - 1}]",
               "the last account tier is the catch-all: no thresholds")
    if pb.account.committee is not None:
        yield from _unknown("account.committee.roles", pb.account.committee.roles, roles, "role")


def _blend_problems(pb: Playbook) -> Iterator[Problem]:
    weights = pb.blend.contact_fit + pb.blend.account_fit + pb.blend.contact_intent + pb.blend.account_intent
    if abs(weights - 1.0) > 1e-6:
        yield "blend", f"the four weights must add up to 1 (they add up to {weights:g})"
    if pb.grid is not None:
        for axis in ("fit", "intent"):
            bands = getattr(pb.grid, axis)
            if bands[-1].min != 0:
                yield f"grid.{axis}[{len(bands) - 1}].min", "the last band must start at 0"
            if [b.min for b in bands] != sorted((b.min for b in bands), reverse=True):
                yield f"grid.{axis}", "bands must be listed from the highest min down"


def _routing_references(pb: Playbook, tiers: list[str]) -> Iterator[Problem]:
    if pb.routing is None:
        return
    names = [p.id for p in pb.profiles] + [p.name for p in pb.profiles]
    roles = [r.role for r in pb.personas.roles] + [pb.personas.unknown_role]
    committee = pb.account.committee.roles if pb.account.committee is not None else ()
    for line in routing_problems(pb.routing, tiers, names, [e.sla for e in pb.escalations], pb.stages,
                                 account_tiers=[t.name for t in pb.account.tiers], roles=roles,
                                 committee_roles=committee):
        where, _, message = line.partition(": ")
        yield where, message


def _non_buying_problems(pb: Playbook) -> Iterator[Problem]:
    """Each non-buying account type must be one leadloop can tell, and listed once."""
    if pb.non_buying is None:
        return
    allowed = ", ".join(NON_BUYING_TYPES)
    seen: dict[str, int] = {}
    for i, entry in enumerate(pb.non_buying.accounts):
        path = f"non_buying.accounts[{i}].type"
        if entry.type not in NON_BUYING_TYPES:
            close = difflib.get_close_matches(entry.type, list(NON_BUYING_TYPES), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            yield path, f"unknown non-buying account type {entry.type!r}{hint}; allowed types: {allowed}"
        elif entry.type in seen:
            yield path, f"{entry.type!r} is listed twice (also non_buying.accounts[{seen[entry.type]}])"
        seen.setdefault(entry.type, i)
