"""`leadloop crm check` and `leadloop crm setup` for HubSpot.

`check` verifies that the access token works, that each object leadloop reads is reachable, that every
mapped property exists, that every owned property exists in the property group `leadloop` and is
writable (`ll_key` on tasks included), and that the group and its properties are in leadloop's display
order. Each finding is one CheckItem with the fix when it fails. `setup` creates the group `leadloop`
on contacts, companies and tasks and every missing owned property in it (409 = it already exists,
which is fine), moves an owned property that lives in another group into `leadloop`, and sets the
display order: the group first among property groups (`displayOrder` 0), and in it tier, score and
reasons first (1, 2, 3). HubSpot lists groups and properties by ascending `displayOrder`, -1 (its
default) after every other value. It never touches a property or group leadloop does not own.
`HubSpotSetup` offers both on the `CrmSetup` port (`crm.ports`).

What the public API cannot do, and an admin does by hand (README, "What a rep sees"): put properties
on the record's "About" card (record customization), and create saved views of the contacts index
page; no public endpoint writes either.

Docs: https://developers.hubspot.com/docs/api/crm/properties
"""

from __future__ import annotations

from typing import Any

from leadloop.connectors.checks import CheckItem
from leadloop.connectors.hubspot.client import HubSpotClient, hubspot_client
from leadloop.connectors.hubspot.retry import HubSpotError
from leadloop.connectors.mapping import CrmMapping, Mapping
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.ports import CrmSetup
from leadloop.crm.records import Crm

GROUP = "leadloop"
GROUP_LABEL = "leadloop scoring"
READ_OBJECTS = ("contacts", "companies", "deals", "tasks", "calls", "emails", "meetings")

# (type, fieldType, label) of each owned property, by leadloop's logical name.
PROPERTY_SHAPES: dict[str, tuple[str, str, str]] = {
    "fit_score": ("number", "number", "leadloop fit score"),
    "intent_score": ("number", "number", "leadloop intent score"),
    "score": ("number", "number", "leadloop score"),
    "tier": ("string", "text", "leadloop tier"),
    "reasons": ("string", "textarea", "leadloop reasons"),
    "model_version": ("string", "text", "leadloop model version"),
    "scored_at": ("datetime", "date", "leadloop scored at"),
    "nurture_track": ("string", "text", "leadloop nurture track"),
    "likelihood": ("number", "number", "leadloop likelihood"),
    "account_fit": ("number", "number", "leadloop account fit"),
    "account_intent": ("number", "number", "leadloop account intent"),
    "account_tier": ("string", "text", "leadloop account tier"),
    "buying_roles": ("string", "textarea", "leadloop buying roles"),
    "task_key": ("string", "text", "leadloop task key"),
}
# How HubSpot shows a number property's value; the likelihood is percentage points (45.1 → "45.1%"),
# the same number Salesforce's Percent field stores.
NUMBER_DISPLAY_HINTS: dict[str, str] = {"likelihood": "percentage"}
SETUP_FIX = "run `leadloop crm setup` (creates leadloop's properties in group `leadloop`)"
GROUP_DISPLAY_ORDER = 0
# Each owned property's place in its group: what a rep reads first comes first.
DISPLAY_ORDER: dict[str, int] = {
    "tier": 1, "score": 2, "reasons": 3, "likelihood": 4, "fit_score": 5, "intent_score": 6,
    "nurture_track": 7, "scored_at": 8, "model_version": 9,
    "account_tier": 1, "account_fit": 2, "account_intent": 3, "buying_roles": 4,
    "task_key": 1,
}


def owned_properties(mapping: CrmMapping) -> dict[str, dict[str, str]]:
    """object type → {property name: logical name} of everything leadloop writes."""
    return {
        "contacts": {crm: logical for logical, crm in mapping.owned_person.items()},
        "companies": {crm: logical for logical, crm in mapping.owned_account.items()},
        "tasks": {mapping.task_key: "task_key"},
    }


def _client(settings: ConnectionSettings) -> HubSpotClient:
    if settings.hubspot is None:
        raise ValueError("the connection settings have no hubspot section")
    return hubspot_client(settings.hubspot, settings.ca_cert)


def _properties(client: HubSpotClient, object_type: str) -> dict[str, Any]:
    answer = client.call(f"GET /crm/v3/properties/{object_type}", client.properties.get_all_with_http_info,
                         object_type)
    return {p.name: p for p in answer.results or []}


def _groups(client: HubSpotClient, object_type: str) -> dict[str, Any]:
    answer = client.call(f"GET /crm/v3/properties/{object_type}/groups",
                         client.property_groups.get_all_with_http_info, object_type)
    return {g.name: g for g in answer.results or []}


def _out_of_order(group: Any, existing: dict[str, Any], names: dict[str, str]) -> list[str]:
    """What is not in leadloop's display order: the group, and the owned properties by name."""
    wrong = [] if group is not None and group.display_order == GROUP_DISPLAY_ORDER else [f"group {GROUP}"]
    return wrong + [name for name in _in_display_order(names) if name in existing
                    and existing[name].display_order != DISPLAY_ORDER.get(names[name], -1)]


def _in_display_order(names: dict[str, str]) -> list[str]:
    """Property names (of {name: logical name}) in leadloop's display order."""
    return sorted(names, key=lambda name: DISPLAY_ORDER.get(names[name], 99))


def _writable(prop: Any) -> bool:
    metadata = getattr(prop, "modification_metadata", None)
    read_only = bool(getattr(metadata, "read_only_value", False)) if metadata is not None else False
    return not read_only and not bool(getattr(prop, "calculated", False))


def check(settings: ConnectionSettings, mapping: Mapping) -> list[CheckItem]:
    client = _client(settings)
    crm = mapping.hubspot
    items: list[CheckItem] = []
    try:
        client.call("GET /crm/v3/owners", client.owners.get_page_with_http_info, limit=1)
    except HubSpotError as error:
        if error.status in (401, 403):
            return [CheckItem("hubspot", "the access token is accepted", False,
                              f"HubSpot answered {error.status} {error.category or ''}: give a valid "
                              "private-app access token (connection file `hubspot.access_token` or "
                              "LEADLOOP_HUBSPOT__ACCESS_TOKEN) with the crm.objects and crm.schemas scopes")]
        raise
    items.append(CheckItem("hubspot", "the access token is accepted", True))
    for object_type in READ_OBJECTS:
        try:
            client.call(f"GET /crm/v3/objects/{object_type}", client.objects.get_page_with_http_info,
                        object_type, limit=1)
            items.append(CheckItem("hubspot", f"{object_type} are readable", True))
        except HubSpotError as error:
            if error.retriable:
                raise
            items.append(CheckItem("hubspot", f"{object_type} are readable", False,
                                   f"HubSpot answered {error.status} {error.category or ''}: grant the "
                                   f"private app the read scope for {object_type}"))
    owned = owned_properties(crm)
    for object_type in sorted(set(crm.read) | set(owned)):
        existing = _properties(client, object_type)
        for canonical, name in sorted(crm.read.get(object_type, {}).items()):
            items.append(CheckItem(
                "hubspot", f"{object_type}.{name} exists (read as {canonical})", name in existing,
                None if name in existing else
                f"create the property {name!r} on {object_type} in HubSpot, or map {canonical!r} to another "
                f"property in the playbook's `mapping.hubspot.read.{object_type}`"))
        for name in sorted(owned.get(object_type, {})):
            prop = existing.get(name)
            what = f"{object_type}.{name} exists in group {GROUP} and is writable"
            if prop is None:
                items.append(CheckItem("hubspot", what, False, f"missing; {SETUP_FIX}"))
            elif getattr(prop, "group_name", None) != GROUP:
                items.append(CheckItem("hubspot", what, False,
                                       f"it is in group {prop.group_name!r}; {SETUP_FIX} to move it"))
            elif not _writable(prop):
                items.append(CheckItem("hubspot", what, False,
                                       "it is read-only or calculated: delete it in HubSpot, then run "
                                       "`leadloop crm setup`"))
            else:
                items.append(CheckItem("hubspot", what, True))
        if object_type in ("contacts", "companies"):
            items.append(_display_order_item(client, object_type, existing, owned[object_type]))
    return items


def _display_order_item(client: HubSpotClient, object_type: str, existing: dict[str, Any],
                        names: dict[str, str]) -> CheckItem:
    first = _in_display_order(names)[:3]
    wrong = _out_of_order(_groups(client, object_type).get(GROUP), existing, names)
    fix = f"out of order: {', '.join(wrong)}; run `leadloop crm setup` (sets displayOrder)"
    return CheckItem("hubspot", f"{object_type}: group {GROUP} comes first, and in it {', '.join(first)}",
                     not wrong, fix if wrong else None)


def setup(settings: ConnectionSettings, mapping: Mapping) -> list[str]:
    """Create what `check` finds missing and set the display order; returns the actions taken, one line
    each (none when everything was in place)."""
    client = _client(settings)
    actions: list[str] = []
    for object_type, names in owned_properties(mapping.hubspot).items():
        existing = _properties(client, object_type)
        group = _groups(client, object_type).get(GROUP)
        if group is None:
            if _create_group(client, object_type):
                actions.append(f"created property group {GROUP} on {object_type}")
        elif group.display_order != GROUP_DISPLAY_ORDER:
            client.call(f"PATCH /crm/v3/properties/{object_type}/groups/{{name}}",
                        client.property_groups.update_with_http_info, object_type, GROUP,
                        {"displayOrder": GROUP_DISPLAY_ORDER})
            actions.append(f"put property group {GROUP} first on {object_type}")
        for name in _in_display_order(names):
            logical = names[name]
            order = DISPLAY_ORDER.get(logical, -1)
            prop = existing.get(name)
            if prop is None:
                if _create_property(client, object_type, name, logical, order):
                    actions.append(f"created {object_type}.{name}")
                continue
            changes: dict[str, Any] = {}
            if getattr(prop, "group_name", None) != GROUP:
                changes["groupName"] = GROUP
            if prop.display_order != order:
                changes["displayOrder"] = order
            if not changes:
                continue
            client.call(f"PATCH /crm/v3/properties/{object_type}/{{name}}",
                        client.properties.update_with_http_info, object_type, name, changes)
            if "groupName" in changes:
                actions.append(f"moved {object_type}.{name} into group {GROUP}")
            else:
                actions.append(f"set {object_type}.{name} to display position {order}")
    return actions


class HubSpotSetup(CrmSetup):
    """`check` and `setup` of one HubSpot connection and mapping, on the port."""

    crm = Crm.HUBSPOT

    def __init__(self, settings: ConnectionSettings, mapping: Mapping) -> None:
        self.settings = settings
        self.mapping = mapping

    def check(self) -> list[CheckItem]:
        return check(self.settings, self.mapping)  # this module's check

    def setup(self) -> list[str]:
        return setup(self.settings, self.mapping)  # this module's setup


def _create_group(client: HubSpotClient, object_type: str) -> bool:
    body = {"name": GROUP, "label": GROUP_LABEL, "displayOrder": GROUP_DISPLAY_ORDER}
    try:
        client.call(f"POST /crm/v3/properties/{object_type}/groups",
                    client.property_groups.create_with_http_info, object_type, body)
    except HubSpotError as error:
        if error.status == 409:
            return False
        raise
    return True


def _create_property(client: HubSpotClient, object_type: str, name: str, logical: str, order: int) -> bool:
    kind, field_type, label = PROPERTY_SHAPES.get(logical, ("string", "text", f"leadloop {logical}"))
    body = {"name": name, "label": label, "type": kind, "fieldType": field_type, "groupName": GROUP,
            "description": "Written by leadloop; do not edit by hand.", "formField": False,
            "displayOrder": order}
    if logical in NUMBER_DISPLAY_HINTS:
        body["numberDisplayHint"] = NUMBER_DISPLAY_HINTS[logical]
    try:
        client.call(f"POST /crm/v3/properties/{object_type}", client.properties.create_with_http_info,
                    object_type, body)
    except HubSpotError as error:
        if error.status == 409:
            return False
        raise
    return True
