"""`leadloop crm check|setup` for Salesforce: verify the org has what leadloop reads and owns, and
create the owned custom fields that are missing.

`check` signs in, describes each pulled object once, and reports every mapped read field, every owned
field (present and updateable) and the task key (`LL_Key__c`, an external id). `setup` creates the
missing owned fields through the Tooling API (`POST tooling/sobjects/CustomField`), and can also
write a deployable metadata folder (`package.xml` + `objects/<Object>/fields/<Field>.field-meta.xml`)
for admins who deploy by change set or the Salesforce CLI. In a real org a new field is visible to
the integration user only once field-level security grants it (a permission set); `check` says so.
`SalesforceSetup` offers both on the `CrmSetup` port (`crm.ports`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from leadloop.connectors.checks import CheckItem
from leadloop.connectors.mapping import CrmMapping, Mapping
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
    for sobject, crm_field, spec in owned_fields(crm_mapping):
        field = (described.get(sobject) or {}).get(crm_field)
        if field is None:
            items.append(CheckItem(CRM, f"{sobject}.{crm_field} exists and is writable", False,
                                   f"{FIX_OWNED}; if it exists, {FIX_FLS}"))
            continue
        writable = bool(field.get("updateable", True))
        items.append(CheckItem(CRM, f"{sobject}.{crm_field} exists and is writable", writable,
                               None if writable else FIX_FLS))
        if spec.external_id:
            is_key = bool(field.get("externalId"))
            items.append(CheckItem(CRM, f"{sobject}.{crm_field} is an external id (idempotent task upsert)",
                                   is_key, None if is_key else "mark the field External ID (and Unique)"))
    return items


def setup(settings: ConnectionSettings, mapping: Mapping, metadata_dir: Path | None = None) -> list[str]:
    """Create the owned fields that are missing; returns the actions taken, one line each."""
    crm_mapping = mapping.salesforce
    actions: list[str] = []
    if metadata_dir is not None:
        paths = write_metadata(crm_mapping, metadata_dir)
        actions.append(f"wrote {len(paths)} files of deployable metadata to {metadata_dir}")
    client = _client(settings)
    for sobject, crm_field, spec in owned_fields(crm_mapping):
        fields = _describe_fields(client, sobject) or {}
        if crm_field in fields:
            continue
        body = {"FullName": f"{sobject}.{crm_field}", "Metadata": spec.metadata()}
        try:
            client.tooling("POST", "sobjects/CustomField/", "tooling:CustomField", json=body)
        except SalesforceCallError as error:
            if error.code != "DUPLICATE_DEVELOPER_NAME":
                raise
            actions.append(f"{sobject}.{crm_field} already exists (not yet visible: {FIX_FLS})")
            continue
        actions.append(f"created {sobject}.{crm_field} ({spec.type})")
    return actions


class SalesforceSetup(CrmSetup):
    """`check` and `setup` of one Salesforce connection and mapping, on the port; with `metadata_dir`,
    `setup` also writes the deployable metadata folder there."""

    crm = Crm.SALESFORCE

    def __init__(self, settings: ConnectionSettings, mapping: Mapping, *,
                 metadata_dir: Path | None = None) -> None:
        self.settings = settings
        self.mapping = mapping
        self.metadata_dir = metadata_dir

    def check(self) -> list[CheckItem]:
        return check(self.settings, self.mapping)  # this module's check

    def setup(self) -> list[str]:
        return setup(self.settings, self.mapping, self.metadata_dir)  # this module's setup


def _field_xml(crm_field: str, spec: FieldSpec) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">',
             f"    <fullName>{escape(crm_field)}</fullName>"]
    for key, value in spec.metadata().items():
        text = str(value).lower() if isinstance(value, bool) else escape(str(value))
        lines.append(f"    <{key}>{text}</{key}>")
    lines.append("</CustomField>")
    return "\n".join(lines) + "\n"


def write_metadata(mapping: CrmMapping, folder: Path, api_version: str = "59.0") -> list[Path]:
    """Write `package.xml` and one `.field-meta.xml` per owned field; returns the files written."""
    written: list[Path] = []
    members: list[str] = []
    for sobject, crm_field, spec in owned_fields(mapping):
        path = folder / "objects" / sobject / "fields" / f"{crm_field}.field-meta.xml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_field_xml(crm_field, spec), encoding="utf-8")
        written.append(path)
        members.append(f"{sobject}.{crm_field}")
    package = ['<?xml version="1.0" encoding="UTF-8"?>',
               '<Package xmlns="http://soap.sforce.com/2006/04/metadata">', "    <types>"]
    package += [f"        <members>{escape(m)}</members>" for m in members]
    package += ["        <name>CustomField</name>", "    </types>", f"    <version>{api_version}</version>",
                "</Package>"]
    (folder / "package.xml").write_text("\n".join(package) + "\n", encoding="utf-8")
    written.append(folder / "package.xml")
    return written
