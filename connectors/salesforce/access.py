"""Who sees leadloop's fields in Salesforce: its permission sets, who holds them, and the list view reps
open. Part of `leadloop crm setup` and `crm check` (`connectors.salesforce.setup`).

Salesforce shows a new custom field to nobody, administrators included, until field-level security
grants it: a FieldPermissions row on a permission set (or profile) the user holds. "View All Data"
and "Modify All Data" open records, not fields. So setup creates, the way managed integrations ship
their access:
- permission set `Leadloop_Sync`: Read and Edit on every owned field (`Task.LL_Key__c` too), assigned
  to the integration user (the user the connection signs in as, from the UserInfo endpoint);
- permission set `Leadloop_Scores_Read`: Read only, on the owned fields of Lead, Contact and Account,
  assigned to the reps of `salesforce.rep_usernames` and to the users in the public group
  `salesforce.rep_group` (Salesforce assigns permission sets to users, not to groups: the group's
  members are read when setup runs; run it again after the group changes);
- the Lead list view "My Sales-priority leads" (my leads in the top tier), through the User Interface
  API (`POST ui-api/list-info/Lead`, API 61.0 and later). Its sort order is each user's own
  preference in Salesforce, not part of the view.
Each step reads first and writes only what is missing or different: a second run changes nothing.

https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm
https://developer.salesforce.com/docs/atlas.en-us.uiapi.meta/uiapi/ui_api_resources_lists_object_post.htm
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from simple_salesforce.format import format_soql

from leadloop.connectors.checks import CheckItem
from leadloop.connectors.mapping import CrmMapping
from leadloop.connectors.salesforce.client import SalesforceClient
from leadloop.connectors.salesforce.retry import SalesforceCallError
from leadloop.connectors.settings import SalesforceSettings

CRM = "salesforce"
REP_OBJECTS = ("Lead", "Contact", "Account")
PRIORITY_TIER = "Sales priority"  # the top tier of the shipped playbooks: the list view's filter
LIST_VIEW = "LL_My_Sales_Priority_Leads"
LIST_VIEW_LABEL = "My Sales-priority leads"
COLLECTION_SIZE = 200  # sObject Collections take at most 200 records a call


@dataclass(frozen=True, slots=True)
class PermissionSetSpec:
    name: str
    label: str
    description: str


SYNC_SET = PermissionSetSpec(
    "Leadloop_Sync", "leadloop sync",
    "Read and edit on leadloop's fields. For the leadloop integration user only.")
READ_SET = PermissionSetSpec(
    "Leadloop_Scores_Read", "leadloop scores (read)",
    "Read-only access to leadloop's scores, tiers and reasons on leads, contacts and accounts. For reps.")
FIX_REP = (f"run `leadloop crm setup` (assigns permission set {READ_SET.name} to the reps in the settings), "
           f"or assign {READ_SET.name} to them in Setup > Users")


def grants(fields: Iterable[tuple[str, str]]) -> dict[str, dict[str, bool]]:
    """Permission set name → {`Object.Field`: whether it may edit} for leadloop's owned fields."""
    owned = [f"{sobject}.{field}" for sobject, field in fields]
    return {
        SYNC_SET.name: dict.fromkeys(owned, True),
        READ_SET.name: {name: False for name in owned if name.split(".")[0] in REP_OBJECTS},
    }


def _query(client: SalesforceClient, soql: str, endpoint: str) -> list[dict[str, Any]]:
    return [record for page in client.query_pages(soql, include_deleted=False, endpoint=endpoint)
            for record in page]


def _create(client: SalesforceClient, sobject: str, records: list[dict[str, Any]]) -> None:
    """Create records through sObject Collections; raises when Salesforce refuses any of them."""
    _send(client, "POST", "create", sobject, records)


def _update(client: SalesforceClient, sobject: str, records: list[dict[str, Any]]) -> None:
    """Update records (each with its Id) through sObject Collections; raises like `_create`."""
    _send(client, "PATCH", "update", sobject, records)


def _send(client: SalesforceClient, method: str, verb: str, sobject: str,
          records: list[dict[str, Any]]) -> None:
    for start in range(0, len(records), COLLECTION_SIZE):
        batch = [{"attributes": {"type": sobject}, **r} for r in records[start:start + COLLECTION_SIZE]]
        results = client.request(method, "composite/sobjects", f"composite:{verb}:{sobject}",
                                 json={"allOrNone": False, "records": batch})
        _raise_failures(sobject, batch, results)


def _raise_failures(sobject: str, batch: list[dict[str, Any]], results: Any) -> None:
    failed = [(record, result) for record, result in zip(batch, results or [], strict=False)
              if not result.get("success")]
    if failed:
        record, result = failed[0]
        error = (result.get("errors") or [{}])[0]
        shown = {k: v for k, v in record.items() if k != "attributes"}
        raise RuntimeError(f"Salesforce refused {len(failed)} {sobject} record(s), e.g. {shown}: "
                           f"{error.get('statusCode')} {error.get('message')}")


# -- permission sets and field permissions ------------------------------------------------------------
def permission_set_ids(client: SalesforceClient) -> dict[str, str]:
    soql = format_soql("SELECT Id, Name FROM PermissionSet WHERE Name IN {names}",
                       names=[SYNC_SET.name, READ_SET.name])
    return {r["Name"]: r["Id"] for r in _query(client, soql, "query:PermissionSet")}


def _ensure_permission_sets(client: SalesforceClient) -> tuple[dict[str, str], list[str]]:
    ids = permission_set_ids(client)
    missing = [spec for spec in (SYNC_SET, READ_SET) if spec.name not in ids]
    if missing:
        _create(client, "PermissionSet", [{"Name": s.name, "Label": s.label, "Description": s.description}
                                          for s in missing])
        ids = permission_set_ids(client)
    return ids, [f"added permission set {spec.name} ({spec.label})" for spec in missing]


def field_permissions(client: SalesforceClient, set_ids: Iterable[str]) -> list[dict[str, Any]]:
    ids = sorted(set(set_ids))
    if not ids:
        return []
    soql = format_soql("SELECT Id, ParentId, Field, PermissionsRead, PermissionsEdit FROM FieldPermissions "
                       "WHERE ParentId IN {ids}", ids=ids)
    return _query(client, soql, "query:FieldPermissions")


def _grant_fields(client: SalesforceClient, set_ids: dict[str, str],
                  wanted: dict[str, dict[str, bool]]) -> list[str]:
    rows = field_permissions(client, set_ids.values())
    existing = {(row["ParentId"], row["Field"].lower()): row for row in rows}
    actions: list[str] = []
    for set_name, fields in wanted.items():
        parent = set_ids[set_name]
        create, update = [], []
        for field, edit in fields.items():
            row = existing.get((parent, field.lower()))
            if row is None:
                create.append({"ParentId": parent, "SobjectType": field.split(".")[0], "Field": field,
                               "PermissionsRead": True, "PermissionsEdit": edit})
            elif not row["PermissionsRead"] or bool(row["PermissionsEdit"]) != edit:
                update.append({"id": row["Id"], "PermissionsRead": True, "PermissionsEdit": edit})
        _create(client, "FieldPermissions", create)
        _update(client, "FieldPermissions", update)
        access = "read and edit" if set_name == SYNC_SET.name else "read"
        if create:
            actions.append(f"granted {set_name} {access} on {len(create)} fields")
        if update:
            actions.append(f"set {set_name} back to {access} on {len(update)} fields")
    return actions


# -- who holds them ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Reps:
    """The reps the settings name: found users (id → username), and what could not be found."""

    users: dict[str, str]
    problems: list[str]


def find_reps(client: SalesforceClient, settings: SalesforceSettings) -> Reps:
    users: dict[str, str] = {}
    problems: list[str] = []
    wanted = [name for name in settings.rep_usernames if name.strip()]
    if wanted:
        soql = format_soql("SELECT Id, Username, IsActive FROM User WHERE Username IN {names}", names=wanted)
        found = {r["Username"].lower(): r for r in _query(client, soql, "query:User")}
        for name in wanted:
            row = found.get(name.lower())
            if row is None or not row.get("IsActive"):
                problems.append(f"no active Salesforce user has the username {name}")
            else:
                users[row["Id"]] = row["Username"]
    if settings.rep_group:
        soql = format_soql("SELECT Id FROM Group WHERE DeveloperName = {name} AND Type = 'Regular'",
                           name=settings.rep_group)
        groups = _query(client, soql, "query:Group")
        if not groups:
            problems.append(f"no public group has the API name {settings.rep_group}")
        else:
            soql = format_soql("SELECT UserOrGroupId FROM GroupMember WHERE GroupId = {id}",
                               id=groups[0]["Id"])
            # members may be groups too (not expanded): only users are assigned
            member_ids = [r["UserOrGroupId"] for r in _query(client, soql, "query:GroupMember")
                          if str(r["UserOrGroupId"]).startswith("005")]
            if member_ids:
                soql = format_soql("SELECT Id, Username FROM User WHERE Id IN {ids} AND IsActive = true",
                                   ids=member_ids)
                users.update({r["Id"]: r["Username"] for r in _query(client, soql, "query:User")})
    return Reps(users, problems)


def assignments(client: SalesforceClient, set_ids: Iterable[str]) -> set[tuple[str, str]]:
    ids = sorted(set(set_ids))
    if not ids:
        return set()
    soql = format_soql("SELECT AssigneeId, PermissionSetId FROM PermissionSetAssignment "
                       "WHERE PermissionSetId IN {ids}", ids=ids)
    rows = _query(client, soql, "query:PermissionSetAssignment")
    return {(r["AssigneeId"], r["PermissionSetId"]) for r in rows}


def _assign(client: SalesforceClient, set_ids: dict[str, str], integration_user: dict[str, Any],
            reps: Reps) -> list[str]:
    held = assignments(client, set_ids.values())
    integration_name = integration_user.get("preferred_username") or "the integration user"
    wanted = [(integration_user["user_id"], integration_name, SYNC_SET.name)]
    wanted += [(user_id, username, READ_SET.name) for user_id, username in sorted(reps.users.items())]
    todo = [(user_id, username, name) for user_id, username, name in wanted
            if (user_id, set_ids[name]) not in held]
    _create(client, "PermissionSetAssignment",
            [{"AssigneeId": user_id, "PermissionSetId": set_ids[name]} for user_id, _, name in todo])
    return [f"assigned {name} to {username}" for _, username, name in todo]


# -- the list view -------------------------------------------------------------------------------------
def _ensure_list_view(client: SalesforceClient, mapping: CrmMapping, top_tier: str) -> list[str]:
    soql = format_soql("SELECT Id FROM ListView WHERE SobjectType = 'Lead' AND DeveloperName = {name}",
                       name=LIST_VIEW)
    try:
        if _query(client, soql, "query:ListView"):
            return []
        tier, score = mapping.person_field("tier"), mapping.person_field("score")
        client.ui_api("POST", "list-info/Lead", "ui-api:list-info", json={
            "listViewApiName": LIST_VIEW,
            "label": LIST_VIEW_LABEL,
            "displayColumns": ["Name", "Company", "Title", tier, score, mapping.person_field("scored_at")],
            "filteredByInfo": [{"fieldApiName": tier, "operandLabels": [top_tier], "operator": "Equals"}],
            "scope": {"apiName": "mine"},
            "visibility": "Public",
        })
    except SalesforceCallError as error:
        if error.retriable:
            raise
        return [f"list view {LIST_VIEW_LABEL!r} not created ({error.status} {error.code or ''}): create it "
                "by hand (README, What a rep sees)"]
    return [f"added Lead list view {LIST_VIEW_LABEL!r} (my leads, {tier} = {top_tier})"]


def setup_access(client: SalesforceClient, settings: SalesforceSettings, mapping: CrmMapping,
                 fields: list[tuple[str, str]], top_tier: str = PRIORITY_TIER) -> list[str]:
    """Permission sets, their field permissions and assignments, and the list view; the actions taken."""
    set_ids, actions = _ensure_permission_sets(client)
    actions += _grant_fields(client, set_ids, grants(fields))
    reps = find_reps(client, settings)
    actions += [f"skipped: {problem}" for problem in reps.problems]
    actions += _assign(client, set_ids, client.userinfo(), reps)
    actions += _ensure_list_view(client, mapping, top_tier)
    return actions


# -- check -------------------------------------------------------------------------------------------------
def check_reps(client: SalesforceClient, settings: SalesforceSettings,
               fields: list[tuple[str, str]]) -> list[CheckItem]:
    """One item per configured rep: can they read every owned Lead, Contact and Account field? (None
    when no reps are configured.)"""
    if not settings.rep_usernames and not settings.rep_group:
        return []
    try:
        reps = find_reps(client, settings)
        readable = _readable_by(client, list(reps.users))
    except SalesforceCallError as error:
        if error.retriable:
            raise
        return [CheckItem(CRM, "reps can read leadloop's fields", False,
                          f"could not be checked ({error.status} {error.code or ''}): check with a "
                          "connection whose user has View Setup and Configuration")]
    wanted = list(grants(fields)[READ_SET.name])
    items = [CheckItem(CRM, problem[0].upper() + problem[1:], False,
                       "correct salesforce.rep_usernames / rep_group in the connection settings")
             for problem in reps.problems]
    for user_id, username in sorted(reps.users.items(), key=lambda item: item[1]):
        missing = [name for name in wanted if name.lower() not in readable.get(user_id, set())]
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        items.append(CheckItem(CRM, f"rep {username} can read leadloop's fields on {', '.join(REP_OBJECTS)}",
                               not missing, f"cannot read {shown}: {FIX_REP}" if missing else None))
    return items


def _readable_by(client: SalesforceClient, user_ids: list[str]) -> dict[str, set[str]]:
    """User id → the fields (`object.field`, lower case) their permission sets, profile's included, let
    them read."""
    if not user_ids:
        return {}
    soql = format_soql("SELECT AssigneeId, PermissionSetId FROM PermissionSetAssignment "
                       "WHERE AssigneeId IN {ids}", ids=user_ids)
    sets_of: dict[str, set[str]] = {}
    for row in _query(client, soql, "query:PermissionSetAssignment"):
        sets_of.setdefault(row["AssigneeId"], set()).add(row["PermissionSetId"])
    by_set: dict[str, set[str]] = {}
    for row in field_permissions(client, {s for sets in sets_of.values() for s in sets}):
        if row["PermissionsRead"]:
            by_set.setdefault(row["ParentId"], set()).add(row["Field"].lower())
    return {user: set().union(*(by_set.get(s, set()) for s in sets)) for user, sets in sets_of.items()}
