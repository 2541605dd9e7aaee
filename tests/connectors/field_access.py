"""What an admin does after creating a custom field through the Tooling API, since Salesforce (and the
sandbox) shows a new field to nobody: grant field-level security on it to the System Administrator
profile, the sandbox integration user's."""

from __future__ import annotations

from typing import Any


def grant_field_access(sf: Any, *fields: str, edit: bool = True) -> None:
    """Read (and Edit) on each `Object.Field__c` for the System Administrator profile."""
    parent = sf.query(
        "SELECT Id FROM PermissionSet WHERE IsOwnedByProfile = true AND Profile.Name = 'System Administrator'"
    )["records"][0]["Id"]
    for full_name in fields:
        sf.FieldPermissions.create({"ParentId": parent, "SobjectType": full_name.split(".")[0],
                                    "Field": full_name, "PermissionsRead": True, "PermissionsEdit": edit})
