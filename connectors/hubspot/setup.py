"""`leadloop crm check` and `leadloop crm setup` for HubSpot.

`check` verifies that the access token works, that each object leadloop reads is reachable, that every
mapped property exists, and that every owned property exists in the property group `leadloop` and is
writable (`ll_key` on tasks included). Each finding is one CheckItem with the fix when it fails.
`setup` creates the group `leadloop` on contacts, companies and tasks and every missing owned
property in it (409 = it already exists, which is fine), and moves an owned property that lives in
another group into `leadloop`. It never touches a property leadloop does not own. `HubSpotSetup`
offers both on the `CrmSetup` port (`crm.ports`).

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
    "account_fit": ("number", "number", "leadloop account fit"),
    "account_intent": ("number", "number", "leadloop account intent"),
    "account_tier": ("string", "text", "leadloop account tier"),
    "buying_roles": ("string", "textarea", "leadloop buying roles"),
    "task_key": ("string", "text", "leadloop task key"),
}
SETUP_FIX = "run `leadloop crm setup` (creates leadloop's properties in group `leadloop`)"


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
    return items


def setup(settings: ConnectionSettings, mapping: Mapping) -> list[str]:
    """Create what `check` finds missing; returns the actions taken, one line each."""
    client = _client(settings)
    actions: list[str] = []
    for object_type, names in owned_properties(mapping.hubspot).items():
        existing = _properties(client, object_type)
        todo = [n for n in names if n not in existing or getattr(existing[n], "group_name", None) != GROUP]
        if not todo:
            continue
        if _create_group(client, object_type):
            actions.append(f"created property group {GROUP} on {object_type}")
        for name in todo:
            if name in existing:
                client.call(f"PATCH /crm/v3/properties/{object_type}/{{name}}",
                            client.properties.update_with_http_info, object_type, name, {"groupName": GROUP})
                actions.append(f"moved {object_type}.{name} into group {GROUP}")
            elif _create_property(client, object_type, name, names[name]):
                actions.append(f"created {object_type}.{name}")
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
    body = {"name": GROUP, "label": GROUP_LABEL, "displayOrder": -1}
    try:
        client.call(f"POST /crm/v3/properties/{object_type}/groups",
                    client.property_groups.create_with_http_info, object_type, body)
    except HubSpotError as error:
        if error.status == 409:
            return False
        raise
    return True


def _create_property(client: HubSpotClient, object_type: str, name: str, logical: str) -> bool:
    kind, field_type, label = PROPERTY_SHAPES.get(logical, ("string", "text", f"leadloop {logical}"))
    body = {"name": name, "label": label, "type": kind, "fieldType": field_type, "groupName": GROUP,
            "description": "Written by leadloop; do not edit by hand.", "formField": False}
    try:
        client.call(f"POST /crm/v3/properties/{object_type}", client.properties.create_with_http_info,
                    object_type, body)
    except HubSpotError as error:
        if error.status == 409:
            return False
        raise
    return True
