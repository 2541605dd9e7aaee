"""Who may see and change what in the sandbox org: profiles, permission sets, field-level security,
and the user each request runs as.

https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_fieldpermissions.htm
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_permissionsetassignment.htm
https://developer.salesforce.com/docs/atlas.en-us.securityImplGuide.meta/securityImplGuide/admin_fls.htm

The model, as in Salesforce:
- Every user has one profile. A profile's permissions live in a permission set it owns
  (`IsOwnedByProfile`), assigned to its users like any other (a `PermissionSetAssignment` row); a
  user's access is the union of their permission sets.
- Field-level security: a permissionable field (`FieldDef.permissionable`) is readable only when one
  of the user's permission sets has a FieldPermissions row with PermissionsRead for it, editable only
  with PermissionsEdit. Administrators too: "View All Data" and "Modify All Data" open every record,
  not every field. A field the user cannot read does not exist for them: SOQL answers INVALID_FIELD
  ("No such column"), describe leaves it out, a write naming it answers INVALID_FIELD; a field they
  can read but not edit is neither createable nor updateable in describe, and a write answers
  INVALID_FIELD_FOR_INSERT_UPDATE.
- The org starts with two profiles: System Administrator (the integration user's) and Standard User
  (the generated world's reps), each with Read (and Edit where the field is writable) on every
  permissionable field the org has when it is created, as Setup grants when an admin creates a field
  and keeps its default "Visible" for every profile. A custom field created later through the Tooling
  API (or the Metadata API) gets no field permissions: nobody sees it until a permission set grants it.
- Permissions, profiles and assignments are setup objects: a user sees them only with "View Setup and
  Configuration" (API 49.0 and later); to anyone else they are not there (INVALID_TYPE, NOT_FOUND).

Not modelled: object permissions (every profile reads and edits every object), sharing (every user sees
every record), permission set groups, muting permission sets, licences.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from leadloop.sandbox.salesforce.errors import RecordError
from leadloop.sandbox.salesforce.ids import make_id
from leadloop.sandbox.salesforce.schema import SYSTEM_PERMISSIONS, FieldDef, ObjectDef

if TYPE_CHECKING:
    from leadloop.sandbox.salesforce.org import Org

SYSTEM_ADMINISTRATOR = "System Administrator"
STANDARD_USER = "Standard User"
# The system permissions each starting profile holds.
PROFILES: dict[str, frozenset[str]] = {
    SYSTEM_ADMINISTRATOR: frozenset(SYSTEM_PERMISSIONS),
    STANDARD_USER: frozenset({"ApiEnabled"}),
}
# The tables whose rows decide a user's access: a write to any of them recomputes it.
SECURITY_TABLES = frozenset(
    {"user", "profile", "permissionset", "fieldpermissions", "permissionsetassignment"}
)

# The user the current request runs as (the owner of its session); None means the integration user.
CALLER: ContextVar[str | None] = ContextVar("sandbox_salesforce_caller", default=None)


@contextmanager
def acting_as(user_id: str | None) -> Iterator[None]:
    """Run the block as `user_id` (a Bulk API job's rows run as the user who created the job)."""
    token = CALLER.set(user_id)
    try:
        yield
    finally:
        CALLER.reset(token)


def field_security_applies(obj: ObjectDef, fdef: FieldDef) -> bool:
    return obj.field_security and fdef.permissionable


@dataclass(frozen=True, slots=True)
class Access:
    """What one user may see and change: fields as `Object.Field`, and system permissions by name
    (`ViewSetup`, `ModifyAllData`, ...)."""

    user_id: str
    readable: frozenset[str]
    editable: frozenset[str]
    permissions: frozenset[str]

    def sees_object(self, obj: ObjectDef) -> bool:
        return not obj.setup_entity or "ViewSetup" in self.permissions

    def can_read(self, obj: ObjectDef, fdef: FieldDef) -> bool:
        return not field_security_applies(obj, fdef) or f"{obj.name}.{fdef.name}" in self.readable

    def can_edit(self, obj: ObjectDef, fdef: FieldDef) -> bool:
        return not field_security_applies(obj, fdef) or f"{obj.name}.{fdef.name}" in self.editable


def compute_access(org: Org, user_id: str) -> Access:
    """The union of the user's permission sets: their profile's and those assigned to them."""
    user = org.table("User").rows.get(user_id) or {}
    sets = {
        row["PermissionSetId"]
        for row in org.table("PermissionSetAssignment").rows.values()
        if row.get("AssigneeId") == user_id and not row.get("IsDeleted")
    }
    profile = user.get("ProfileId")
    permission_sets = org.table("PermissionSet").rows
    for record_id, row in permission_sets.items():
        if profile and row.get("IsOwnedByProfile") and row.get("ProfileId") == profile:
            sets.add(record_id)
    permissions = {
        name
        for record_id in sets
        for name in SYSTEM_PERMISSIONS
        if (permission_sets.get(record_id) or {}).get(f"Permissions{name}")
    }
    readable: set[str] = set()
    editable: set[str] = set()
    for row in org.table("FieldPermissions").rows.values():
        if row.get("ParentId") in sets and not row.get("IsDeleted"):
            if row.get("PermissionsRead"):
                readable.add(row["Field"])
            if row.get("PermissionsEdit"):
                editable.add(row["Field"])
    return Access(user_id, frozenset(readable), frozenset(editable), frozenset(permissions))


# -- the org's starting profiles -----------------------------------------------------------------------
def seed_profiles(org: Org) -> dict[str, str]:
    """The two starting profiles, their permission sets and field permissions; returns profile name →
    profile id."""
    stamp = org.stamp()
    system = {"CreatedDate": stamp, "LastModifiedDate": stamp, "SystemModstamp": stamp}
    profiles: dict[str, str] = {}
    profile_rows, set_rows, field_rows = [], [], []
    for number, (name, permissions) in enumerate(PROFILES.items(), start=1):
        profile_id = make_id("00e", number)
        set_id = make_id("0PS", number)
        profiles[name] = profile_id
        profile_rows.append({"Id": profile_id, "Name": name, "UserType": "Standard", **system})
        set_rows.append({
            "Id": set_id, "Name": f"X{profile_id}", "Label": name, "IsOwnedByProfile": True,
            "ProfileId": profile_id, **{f"Permissions{p}": p in permissions for p in SYSTEM_PERMISSIONS},
            **system,
        })
        for obj in org.objects.values():
            for fdef in obj.fields.values():
                if field_security_applies(obj, fdef):
                    field_rows.append({
                        "Id": make_id("01k", len(field_rows) + 1), "ParentId": set_id,
                        "SobjectType": obj.name, "Field": f"{obj.name}.{fdef.name}", "PermissionsRead": True,
                        "PermissionsEdit": fdef.createable or fdef.updateable, **system,
                    })
    org.load_rows("Profile", profile_rows)
    org.load_rows("PermissionSet", set_rows)
    org.load_rows("FieldPermissions", field_rows)
    return profiles


def profile_assignments(org: Org, users: list[dict[str, Any]]) -> None:
    """Give each user the assignment of their profile's permission set (Salesforce keeps one per user),
    replacing the one of a profile they no longer have."""
    owned = {
        row.get("ProfileId"): record_id
        for record_id, row in org.table("PermissionSet").rows.items()
        if row.get("IsOwnedByProfile")
    }
    profile_sets = set(owned.values())
    table = org.table("PermissionSetAssignment")
    for user in users:
        wanted = owned.get(user.get("ProfileId"))
        has_wanted = False
        for record_id, row in list(table.rows.items()):
            if row.get("AssigneeId") != user["Id"] or row["PermissionSetId"] not in profile_sets:
                continue
            if row["PermissionSetId"] == wanted:
                has_wanted = True
            else:
                del table.rows[record_id]
        if wanted is not None and not has_wanted:
            org.insert("PermissionSetAssignment", {"AssigneeId": user["Id"], "PermissionSetId": wanted})
    table.rebuild_index()


# -- rules on writes to the permission objects -------------------------------------------------------------
_DUPLICATE = "duplicate value found: <unknown> duplicates value on record with id: <unknown>"


def validate(org: Org, obj: ObjectDef, row: dict[str, Any], own_id: str | None) -> None:
    """Refuse what Salesforce refuses on a permission object's row; puts field names in their
    canonical form. `row` is the whole row after the write."""
    if obj.name == "FieldPermissions":
        _validate_field_permissions(org, row, own_id)
    elif obj.name == "PermissionSetAssignment":
        for record_id, other in org.table("PermissionSetAssignment").rows.items():
            if (record_id != own_id and not other.get("IsDeleted")
                    and other.get("AssigneeId") == row.get("AssigneeId")
                    and other.get("PermissionSetId") == row.get("PermissionSetId")):
                raise RecordError(
                    "DUPLICATE_VALUE",
                    f"Duplicate PermissionSetAssignment. Assignee: {row.get('AssigneeId')}; "
                    f"Permission Set: {row.get('PermissionSetId')}",
                    [],
                )
    elif obj.name == "PermissionSet":
        name = str(row.get("Name") or "").lower()
        for record_id, other in org.table("PermissionSet").rows.items():
            if record_id != own_id and str(other.get("Name") or "").lower() == name:
                raise RecordError(
                    "DUPLICATE_VALUE",
                    f"duplicate value found: Name duplicates value on record with id: {record_id}",
                    ["Name"],
                )


def _validate_field_permissions(org: Org, row: dict[str, Any], own_id: str | None) -> None:
    value = str(row.get("Field") or "")
    object_name, _, field_name = value.partition(".")
    target = org.object(object_name)
    fdef = target.field(field_name) if target is not None else None
    if target is not None and fdef is None:  # API 50.0+: a lookup may be named without its "Id"
        fdef = target.field(field_name + "Id")
        fdef = fdef if fdef is not None and fdef.type == "reference" else None
    if target is None or fdef is None or not field_security_applies(target, fdef):
        raise RecordError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"Field Name: bad value for restricted picklist field: {value}",
            ["Field"],
        )
    if str(row.get("SobjectType") or "").lower() != target.name.lower():
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"Field {value} does not belong to SobjectType {row.get('SobjectType')}",
            ["SobjectType"],
        )
    row["SobjectType"], row["Field"] = target.name, f"{target.name}.{fdef.name}"
    if row.get("PermissionsEdit") and not row.get("PermissionsRead"):
        # Salesforce's docs: PermissionsEdit "requires PermissionsRead for the same field to be true".
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION", "Permission Edit Field depends on permission(s): Read Field",
            ["PermissionsEdit"],
        )
    if not fdef.createable and not fdef.updateable and row.get("PermissionsEdit"):
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION", f"{row['Field']} is not editable: grant PermissionsRead only",
            ["PermissionsEdit"],
        )
    for record_id, other in org.table("FieldPermissions").rows.items():
        same = other.get("ParentId") == row.get("ParentId") and other.get("Field") == row["Field"]
        if same and record_id != own_id and not other.get("IsDeleted"):
            raise RecordError("DUPLICATE_VALUE", _DUPLICATE, [])
