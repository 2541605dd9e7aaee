"""`leadloop crm check|setup` for Salesforce: verify the org has what leadloop reads and owns, create
the owned custom fields that are missing, and give them field-level security.

`check` signs in, describes each pulled object once, and reports every mapped read field, every owned
field (present, and readable and editable by the integration user) and the task key (`LL_Key__c`, an
external id); an owned field that exists but is hidden from the integration user (no field-level
security) is named as such. With reps in the settings (`salesforce.rep_usernames`, `rep_group`) it
also reports, per rep, the owned fields they cannot read. `setup` creates the missing owned fields
through the Tooling API (`POST tooling/sobjects/CustomField`), then leadloop's permission sets, their
assignments and the reps' list view (`connectors.salesforce.access`); it can also write a deployable
metadata folder (`package.xml`, `objects/<Object>/fields/<Field>.field-meta.xml`, the permission sets
and the list view) for admins who deploy by change set or the Salesforce CLI. `SalesforceSetup`
offers both on the `CrmSetup` port (`crm.ports`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from simple_salesforce.format import format_soql

from leadloop.connectors.checks import CheckItem
from leadloop.connectors.mapping import CrmMapping, Mapping
from leadloop.connectors.salesforce.access import (
    LIST_VIEW,
    LIST_VIEW_LABEL,
    PRIORITY_TIER,
    READ_SET,
    SYNC_SET,
    check_reps,
    grants,
    setup_access,
)
from leadloop.connectors.salesforce.client import AuthenticationError, SalesforceClient, salesforce_client
from leadloop.connectors.salesforce.retry import SalesforceCallError
from leadloop.connectors.salesforce.streams import STREAMS
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.ports import CrmSetup
from leadloop.crm.records import Crm

log = logging.getLogger("leadloop.connectors.salesforce")

CRM = "salesforce"
PERSON_OBJECTS = ("Lead", "Contact")
FIX_OWNED = "run `leadloop crm setup`, or deploy the metadata folder it writes with your change set"
FIX_FLS = "grant the integration user read/edit on it (field-level security, e.g. a permission set)"
FIX_HIDDEN = (f"it exists but the integration user cannot see it (no field-level security): run "
              f"`leadloop crm setup` (permission set {SYNC_SET.name}), or assign {SYNC_SET.name} to the "
              "integration user in Setup")


@dataclass(frozen=True, slots=True)
class FieldSpec:
    label: str
    type: str  # Metadata API CustomField type
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    visible_lines: int | None = None
    external_id: bool = False
    unique: bool = False
    description: str = ""

    def metadata(self) -> dict[str, Any]:
        data: dict[str, Any] = {"label": self.label, "type": self.type, "required": False,
                                "description": self.description}
        for key, value in (("length", self.length), ("precision", self.precision), ("scale", self.scale),
                           ("visibleLines", self.visible_lines)):
            if value is not None:
                data[key] = value
        if self.external_id:
            data["externalId"] = True
        if self.unique:
            data["unique"] = True
        return data


_SCORE = {"type": "Number", "precision": 6, "scale": 1}
OWNED_SPECS: dict[str, FieldSpec] = {
    "fit_score": FieldSpec("LL Fit Score", **_SCORE, description="How well the person matches the ICP"),
    "intent_score": FieldSpec("LL Intent Score", **_SCORE, description="Recent buying signals, decayed"),
    "score": FieldSpec("LL Score", **_SCORE, description="Blended leadloop score"),
    "tier": FieldSpec("LL Tier", "Text", length=20, description="leadloop tier"),
    "reasons": FieldSpec("LL Reasons", "LongTextArea", length=32768, visible_lines=5,
                         description="Why this score: the top reasons, for reps"),
    "model_version": FieldSpec("LL Model Version", "Text", length=40, description="Playbook model version"),
    "scored_at": FieldSpec("LL Scored At", "DateTime", description="When leadloop last scored this record"),
    "nurture_track": FieldSpec("LL Nurture Track", "Text", length=80, description="leadloop nurture track"),
    # Percent, not Number: a rep reads "45.0%" in layouts, list views and reports (and filters on
    # "Likelihood ≥ 30%"), where a Number shows a bare 45.0 or 0.450 that needs explaining. Salesforce
    # stores a Percent as percentage points (45.0 means 45%); up to 100.0 with one decimal.
    "likelihood": FieldSpec("LL Likelihood", "Percent", precision=4, scale=1,
                            description="Share of people at this score who had an opportunity within "
                                        "the playbook's calibration horizon, learned from outcomes"),
    "account_fit": FieldSpec("LL Account Fit", **_SCORE, description="Account fit score"),
    "account_intent": FieldSpec("LL Account Intent", **_SCORE, description="Account intent score"),
    "account_tier": FieldSpec("LL Account Tier", "Text", length=20, description="leadloop account tier"),
    "buying_roles": FieldSpec("LL Buying Roles", "Text", length=255,
                              description="Buying-committee roles engaged at the account"),
}
TASK_KEY_SPEC = FieldSpec("LL Key", "Text", length=80, external_id=True, unique=True,
                          description="leadloop's idempotency key for the tasks it creates")


def owned_fields(mapping: CrmMapping) -> list[tuple[str, str, FieldSpec]]:
    """(object, CRM field, spec) for every field leadloop owns in Salesforce."""
    fields: list[tuple[str, str, FieldSpec]] = []
    for sobject in PERSON_OBJECTS:
        fields += [(sobject, crm, OWNED_SPECS[logical]) for logical, crm in mapping.owned_person.items()]
    fields += [("Account", crm, OWNED_SPECS[logical]) for logical, crm in mapping.owned_account.items()]
    fields.append(("Task", mapping.task_key, TASK_KEY_SPEC))
    return fields


def _describe_fields(client: SalesforceClient, sobject: str) -> dict[str, dict[str, Any]] | None:
    try:
        describe = client.describe(sobject)
    except SalesforceCallError as error:
        if error.status in (400, 404):
            return None
        raise
    return {f["name"]: f for f in describe.get("fields", ())}


def existing_custom_fields(client: SalesforceClient, objects: list[str]) -> set[str] | None:
    """`Object.Field__c` of every custom field of `objects`, whatever its field-level security (the
    Tooling API lists them all); None when this user may not query the Tooling API."""
    soql = format_soql("SELECT DeveloperName, TableEnumOrId FROM CustomField "
                       "WHERE TableEnumOrId IN {objects}", objects=sorted(set(objects)))
    try:
        answer = client.request("GET", "tooling/query/", "tooling:query", params={"q": soql})
    except SalesforceCallError as error:
        if error.retriable:
            raise
        return None
    return {f"{r['TableEnumOrId']}.{r['DeveloperName']}__c".lower() for r in answer.get("records", ())}


def _client(settings: ConnectionSettings) -> SalesforceClient:
    if settings.salesforce is None:
        raise AuthenticationError("no Salesforce connection is configured")
    return salesforce_client(settings.salesforce, settings.ca_cert)


def check(settings: ConnectionSettings, mapping: Mapping) -> list[CheckItem]:
    """One item per thing checked; the failed ones carry how to fix them."""
    crm_mapping = mapping.salesforce
    try:
        client = _client(settings)
        client.request("GET", "limits/", "limits")
    except (AuthenticationError, SalesforceCallError) as error:
        return [CheckItem(CRM, "credentials accepted", False,
                          f"check the salesforce section of the connection file ({error})")]
    items = [CheckItem(CRM, f"credentials accepted ({client.instance_url})", True)]
    described: dict[str, dict[str, dict[str, Any]] | None] = {}
    for sobject in dict.fromkeys([s.crm_object for s in STREAMS] + ["Task"]):
        described[sobject] = fields = _describe_fields(client, sobject)
        readable = fields is not None
        items.append(CheckItem(CRM, f"{sobject} object is readable", readable,
                               None if readable else "give the integration user read access to it"))
    for sobject, read in crm_mapping.read.items():
        fields = described.get(sobject) or _describe_fields(client, sobject) or {}
        for canonical, crm_field in read.items():
            ok = crm_field in fields
            fix = (f"create the field in Salesforce, or change mapping.salesforce.read.{sobject}.{canonical} "
                   f"in the playbook ({FIX_FLS} if it exists)")
            items.append(CheckItem(CRM, f"{sobject}.{crm_field} exists (read as {canonical})", ok,
                                   None if ok else fix))
    owned = owned_fields(crm_mapping)
    hidden: set[str] | None = None
    for sobject, crm_field, spec in owned:
        field = (described.get(sobject) or {}).get(crm_field)
        if field is None:
            if hidden is None:
                hidden = existing_custom_fields(client, [o for o, _, _ in owned]) or set()
            exists = f"{sobject}.{crm_field}".lower() in hidden
            items.append(CheckItem(CRM, f"{sobject}.{crm_field} exists and is writable", False,
                                   FIX_HIDDEN if exists else f"{FIX_OWNED}; if it exists, {FIX_FLS}"))
            continue
        writable = bool(field.get("updateable", True))
        items.append(CheckItem(CRM, f"{sobject}.{crm_field} exists and is writable", writable,
                               None if writable else f"the integration user can read it but not edit it: "
                               f"{FIX_FLS} ({SYNC_SET.name} grants edit)"))
        if spec.external_id:
            is_key = bool(field.get("externalId"))
            items.append(CheckItem(CRM, f"{sobject}.{crm_field} is an external id (idempotent task upsert)",
                                   is_key, None if is_key else "mark the field External ID (and Unique)"))
    items += _check_task_fields(described.get("Task") or {})
    assert settings.salesforce is not None
    items += check_reps(client, settings.salesforce, [(o, f) for o, f, _ in owned])
    return items


# The standard Task fields a routed lead's task is created with, and what each carries.
TASK_FIELDS = {"OwnerId": "the rep", "WhoId": "the lead or contact", "WhatId": "the account",
               "Subject": "the subject", "Description": "the handoff note", "ActivityDate": "the due day",
               "Priority": "the priority", "Status": "the status",
               "ReminderDateTime": "the exact SLA time, as a reminder", "IsReminderSet": "the reminder"}


def _check_task_fields(fields: dict[str, dict[str, Any]]) -> list[CheckItem]:
    """The standard Task fields leadloop creates tasks with, each present and creatable for the
    integration user: a field it may not set makes Salesforce refuse every task (reminders, for one,
    can be hidden from a profile)."""
    if not fields:
        return []  # Task could not be described: its readability item already says so
    items = []
    for name, carries in TASK_FIELDS.items():
        ok = bool(fields.get(name, {}).get("createable"))
        items.append(CheckItem(CRM, f"Task.{name} can be set on a new task ({carries})", ok,
                               None if ok else f"give the integration user edit access to Task.{name} "
                               "(Setup → Object Manager → Task → Fields → Set Field-Level Security)"))
    return items


def setup(settings: ConnectionSettings, mapping: Mapping, metadata_dir: Path | None = None,
          top_tier: str = PRIORITY_TIER) -> list[str]:
    """Create the owned fields that are missing and give them field-level security (permission sets,
    assignments, the reps' list view); returns the actions taken, one line each (none when everything
    was there)."""
    crm_mapping = mapping.salesforce
    actions: list[str] = []
    if metadata_dir is not None:
        paths = write_metadata(crm_mapping, metadata_dir, with_access=True, top_tier=top_tier)
        actions.append(f"wrote {len(paths)} files of deployable metadata to {metadata_dir}")
    client = _client(settings)
    owned = owned_fields(crm_mapping)
    existing = existing_custom_fields(client, [o for o, _, _ in owned])
    for sobject, crm_field, spec in owned:
        if existing is not None:
            if f"{sobject}.{crm_field}".lower() in existing:
                continue
        elif crm_field in (_describe_fields(client, sobject) or {}):
            continue
        body = {"FullName": f"{sobject}.{crm_field}", "Metadata": spec.metadata()}
        try:
            client.tooling("POST", "sobjects/CustomField/", "tooling:CustomField", json=body)
        except SalesforceCallError as error:
            if error.code != "DUPLICATE_DEVELOPER_NAME":
                raise
            continue  # it exists, hidden by field-level security, which setup_access grants
        actions.append(f"created {sobject}.{crm_field} ({spec.type})")
    assert settings.salesforce is not None
    actions += setup_access(client, settings.salesforce, crm_mapping, [(o, f) for o, f, _ in owned], top_tier)
    return actions


class SalesforceSetup(CrmSetup):
    """`check` and `setup` of one Salesforce connection and mapping, on the port; with `metadata_dir`,
    `setup` also writes the deployable metadata folder there."""

    crm = Crm.SALESFORCE

    def __init__(self, settings: ConnectionSettings, mapping: Mapping, *,
                 metadata_dir: Path | None = None, top_tier: str = PRIORITY_TIER) -> None:
        self.settings = settings
        self.mapping = mapping
        self.metadata_dir = metadata_dir
        self.top_tier = top_tier

    def check(self) -> list[CheckItem]:
        return check(self.settings, self.mapping)  # this module's check

    def setup(self) -> list[str]:
        return setup(self.settings, self.mapping, self.metadata_dir, self.top_tier)  # this module's setup


def _field_xml(crm_field: str, spec: FieldSpec) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">',
             f"    <fullName>{escape(crm_field)}</fullName>"]
    for key, value in spec.metadata().items():
        text = str(value).lower() if isinstance(value, bool) else escape(str(value))
        lines.append(f"    <{key}>{text}</{key}>")
    lines.append("</CustomField>")
    return "\n".join(lines) + "\n"


def _permission_set_xml(label: str, description: str, fields: dict[str, bool]) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<PermissionSet xmlns="http://soap.sforce.com/2006/04/metadata">',
             f"    <description>{escape(description)}</description>"]
    for name, edit in fields.items():
        lines += ["    <fieldPermissions>", f"        <editable>{str(edit).lower()}</editable>",
                  f"        <field>{escape(name)}</field>", "        <readable>true</readable>",
                  "    </fieldPermissions>"]
    lines += ["    <hasActivationRequired>false</hasActivationRequired>",
              f"    <label>{escape(label)}</label>", "</PermissionSet>"]
    return "\n".join(lines) + "\n"


def _list_view_xml(mapping: CrmMapping, top_tier: str) -> str:
    # ListView metadata names standard columns by their own tokens (FULL_NAME, LEAD.COMPANY), custom
    # fields by API name; it has no sort order (that is each user's preference).
    columns = ["FULL_NAME", "LEAD.COMPANY", "LEAD.TITLE", mapping.person_field("tier"),
               mapping.person_field("score"), mapping.person_field("scored_at")]
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<ListView xmlns="http://soap.sforce.com/2006/04/metadata">',
             f"    <fullName>{LIST_VIEW}</fullName>"]
    lines += [f"    <columns>{escape(c)}</columns>" for c in columns]
    lines += ["    <filterScope>Mine</filterScope>", "    <filters>",
              f"        <field>{escape(mapping.person_field('tier'))}</field>",
              "        <operation>equals</operation>", f"        <value>{escape(top_tier)}</value>",
              "    </filters>", f"    <label>{escape(LIST_VIEW_LABEL)}</label>", "</ListView>"]
    return "\n".join(lines) + "\n"


def write_metadata(mapping: CrmMapping, folder: Path, api_version: str = "59.0", *, with_access: bool = False,
                   top_tier: str = PRIORITY_TIER) -> list[Path]:
    """Write `package.xml` and one `.field-meta.xml` per owned field; `with_access` adds leadloop's two
    permission sets and the Lead list view. Returns the files written."""
    written: list[Path] = []
    types: dict[str, list[str]] = {"CustomField": []}
    owned = owned_fields(mapping)
    for sobject, crm_field, spec in owned:
        path = folder / "objects" / sobject / "fields" / f"{crm_field}.field-meta.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_field_xml(crm_field, spec), encoding="utf-8")
        written.append(path)
        types["CustomField"].append(f"{sobject}.{crm_field}")
    if with_access:
        wanted = grants([(o, f) for o, f, _ in owned])
        for spec in (SYNC_SET, READ_SET):
            path = folder / "permissionsets" / f"{spec.name}.permissionset-meta.xml"
            path.parent.mkdir(parents=True, exist_ok=True)
            xml = _permission_set_xml(spec.label, spec.description, wanted[spec.name])
            path.write_text(xml, encoding="utf-8")
            written.append(path)
            types.setdefault("PermissionSet", []).append(spec.name)
        path = folder / "objects" / "Lead" / "listViews" / f"{LIST_VIEW}.listView-meta.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_list_view_xml(mapping, top_tier), encoding="utf-8")
        written.append(path)
        types["ListView"] = [f"Lead.{LIST_VIEW}"]
    package = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<Package xmlns="http://soap.sforce.com/2006/04/metadata">']
    for kind, members in types.items():
        package += ["    <types>", *[f"        <members>{escape(m)}</members>" for m in members],
                    f"        <name>{kind}</name>", "    </types>"]
    package += [f"    <version>{api_version}</version>", "</Package>"]
    (folder / "package.xml").write_text("\n".join(package) + "\n", encoding="utf-8")
    written.append(folder / "package.xml")
    return written
