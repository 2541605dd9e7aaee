"""The sandbox org's objects and fields: standard objects, the custom fields the generated world uses,
and fields added at run time through the Tooling API; rendered as Salesforce's describe results.

https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_list.htm
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_sobject_describe.htm
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STRING_TYPES = frozenset(
    {"string", "textarea", "email", "url", "phone", "picklist", "multipicklist", "combobox"}
)
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent"})
ID_TYPES = frozenset({"id", "reference"})


@dataclass(slots=True)
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int = 0
    custom: bool = False
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False  # must be given on create (not nillable and no default)
    external_id: bool = False
    unique: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    default: Any = None
    precision: int = 0
    scale: int = 0
    derived: bool = False  # computed by the org (Name, IsClosed, HasResponded...)
    durable_id: str | None = None  # the Tooling API id of a custom field

    def __post_init__(self) -> None:
        if not self.label:
            self.label = _label(self.name)
        if self.type == "boolean":
            self.nillable = False
            if self.default is None:
                self.default = False

    @property
    def filterable(self) -> bool:
        return not (self.type == "textarea" and self.length > 255)

    @property
    def permissionable(self) -> bool:
        """Whether field-level security applies (a FieldPermissions row may name it). The id, the
        audit fields, required fields and fields the org computes are always visible to a user who
        can read the object; every other field, standard or custom, needs Read through a profile or
        permission set."""
        if self.type == "id" or self.derived or self.required or self.name in AUDIT_FIELDS:
            return False
        return self.nillable or self.type == "boolean"

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "length": self.length,
            "custom": self.custom,
            "createable": self.createable,
            "updateable": self.updateable,
            "nillable": self.nillable,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.external_id or self.type == "id" or self.name in ("Email", "Name"),
            "filterable": self.filterable,
            "sortable": self.filterable,
            "calculated": self.derived,
            "defaultedOnCreate": self.default is not None,
            "defaultValue": self.default,
            "precision": self.precision,
            "scale": self.scale,
            "digits": 9 if self.type == "int" else 0,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default,
                    "label": value,
                    "value": value,
                    "validFor": None,
                }
                for value in self.picklist
            ],
            "restrictedPicklist": self.restricted,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "permissionable": self.permissionable,
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


def _label(name: str) -> str:
    base = name[:-3] if name.endswith("__c") else name
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    words: list[str] = []
    for part in base.replace("_", " ").split():
        current = ""
        for i, char in enumerate(part):
            if char.isupper() and current and not (part[i - 1].isupper()):
                words.append(current)
                current = char
            else:
                current += char
        words.append(current)
    return " ".join(words)


@dataclass(slots=True)
class ObjectDef:
    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    by_lower: dict[str, FieldDef] = field(default_factory=dict)
    relationships: dict[str, FieldDef] = field(default_factory=dict)  # lower-case relationship name -> field
    name_field: str = "Name"
    setup_entity: bool = False  # permissions, profiles: visible only with "View Setup and Configuration"
    field_security: bool = True  # whether field-level security applies to its fields

    def add(self, fdef: FieldDef) -> None:
        self.fields[fdef.name] = fdef
        self.by_lower[fdef.name.lower()] = fdef
        if fdef.relationship_name:
            self.relationships[fdef.relationship_name.lower()] = fdef

    def field(self, name: str) -> FieldDef | None:
        return self.by_lower.get(name.lower())

    def describe_summary(self, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": False,
            "customSetting": False,
            "createable": True,
            "updateable": True,
            "deletable": True,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "layoutable": True,
            "replicateable": True,
            "triggerable": True,
            "undeletable": True,
            "mergeable": self.name in ("Account", "Contact", "Lead"),
            "activateable": False,
            "feedEnabled": False,
            "deprecatedAndHidden": False,
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }

    def describe(self, version: str, children: list[dict[str, Any]]) -> dict[str, Any]:
        result = self.describe_summary(version)
        result["fields"] = [
            {**fdef.describe(), "permissionable": fdef.permissionable and self.field_security}
            for fdef in self.fields.values()
        ]
        result["childRelationships"] = children
        result["recordTypeInfos"] = []
        result["nameField"] = self.name_field
        return result


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    if type_ in ("string", "email", "phone", "url", "picklist", "combobox") and "length" not in kw:
        kw["length"] = {"email": 80, "phone": 40}.get(type_, 255)
    if type_ == "textarea" and "length" not in kw:
        kw["length"] = 32000
    if type_ == "id":
        kw.update(length=18, createable=False, updateable=False, nillable=False)
    if type_ == "reference" and "length" not in kw:
        kw["length"] = 18
    if kw.pop("ro", False):
        kw.update(createable=False, updateable=False)
    if kw.get("required"):
        kw["nillable"] = False
    if name.endswith("__c"):
        kw["custom"] = True
    return FieldDef(name, type_, **kw)


def _ref(name: str, targets: tuple[str, ...], relationship: str, **kw: Any) -> FieldDef:
    return _f(name, "reference", reference_to=targets, relationship_name=relationship or None, **kw)


AUDIT_FIELDS = frozenset(
    {"IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"}
)
# The objects that hold who may see what. Field-level security does not apply to them; a user sees
# them only with the "View Setup and Configuration" permission (API 49.0 and later).
SETUP_OBJECTS = frozenset({"Profile", "PermissionSet", "FieldPermissions", "PermissionSetAssignment"})
# The system permissions a PermissionSet row carries (each a `Permissions<Name>` boolean field).
SYSTEM_PERMISSIONS = (
    "ApiEnabled",
    "ViewSetup",
    "ViewAllData",
    "ModifyAllData",
    "CustomizeApplication",
    "ModifyMetadata",
    "AssignPermissionSets",
    "ManageProfilesPermissionsets",
    "ManageUsers",
)


def _system_fields() -> list[FieldDef]:
    return [
        _f("Id", "id", label="Record ID"),
        _f("IsDeleted", "boolean", label="Deleted", ro=True),
        _f("CreatedDate", "datetime", ro=True, nillable=False),
        _ref("CreatedById", ("User",), "CreatedBy", ro=True, nillable=False),
        _f("LastModifiedDate", "datetime", ro=True, nillable=False),
        _ref("LastModifiedById", ("User",), "LastModifiedBy", ro=True, nillable=False),
        _f("SystemModstamp", "datetime", label="System Modstamp", ro=True, nillable=False),
    ]


def _owner() -> FieldDef:
    # OwnerId is polymorphic (User or Group) in Salesforce; the sandbox org has no queues.
    return _ref("OwnerId", ("User",), "Owner", label="Owner ID", nillable=False)


INDUSTRIES = (
    "Agriculture",
    "Apparel",
    "Banking",
    "Biotechnology",
    "Chemicals",
    "Communications",
    "Construction",
    "Consulting",
    "Education",
    "Electronics",
    "Energy",
    "Engineering",
    "Entertainment",
    "Environmental",
    "Finance",
    "Food & Beverage",
    "Government",
    "Healthcare",
    "Hospitality",
    "Insurance",
    "Machinery",
    "Manufacturing",
    "Media",
    "Not For Profit",
    "Recreation",
    "Retail",
    "Shipping",
    "Technology",
    "Telecommunications",
    "Transportation",
    "Utilities",
    "Other",
)
LEAD_SOURCES = (
    "Web",
    "Phone Inquiry",
    "Partner Referral",
    "Purchased List",
    "Trade Show",
    "Webinar",
    "Workshop",
    "Email",
    "Advertisement",
    "Employee Referral",
    "Other",
)
LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Nurturing",
    "Closed - Converted",
    "Closed - Not Converted",
)
OPPORTUNITY_STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Value Proposition",
    "Id. Decision Makers",
    "Perception Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
CAMPAIGN_MEMBER_STATUSES = (
    "Sent",
    "Registered",
    "Responded",
    "Attended",
    "Visited Booth",
    "Referred",
    "No Show",
)
RESPONDED_STATUSES = frozenset({"responded", "attended", "visited booth", "referred"})
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")


def standard_objects() -> dict[str, ObjectDef]:
    """The objects of a fresh sandbox org (keyed by lower-case name), with their standard fields."""
    specs: dict[str, tuple[str, str, str, list[FieldDef]]] = {
        "User": (
            "005",
            "User",
            "Users",
            [
                _f("Username", "string", length=80, required=True, unique=True),
                _f("FirstName", "string", length=40),
                _f("LastName", "string", length=80, required=True),
                _f("Name", "string", length=121, ro=True, derived=True, label="Full Name"),
                _f("Email", "email", length=128, required=True),
                _f("Alias", "string", length=8),
                _f("Title", "string", length=80),
                _f("Department", "string", length=80),
                _f("IsActive", "boolean", label="Active", default=True),
                _f("TimeZoneSidKey", "picklist", length=40, label="Time Zone", default="America/Los_Angeles"),
                _ref("ProfileId", ("Profile",), "Profile", required=True, label="Profile ID"),
                _f("Region__c", "picklist", label="Sales Region"),
            ],
        ),
        "Profile": (
            "00e",
            "Profile",
            "Profiles",
            [
                _f("Name", "string", required=True),
                _f("UserType", "picklist", length=40, picklist=("Standard",), default="Standard"),
                _f("Description", "string"),
            ],
        ),
        "PermissionSet": (
            "0PS",
            "Permission Set",
            "Permission Sets",
            [
                _f("Name", "string", length=80, required=True, unique=True, label="Name"),
                _f("Label", "string", length=80, required=True),
                _f("Description", "string"),
                _f("NamespacePrefix", "string", length=15, ro=True),
                _f("IsOwnedByProfile", "boolean", ro=True),
                _ref("ProfileId", ("Profile",), "Profile", ro=True, label="Profile ID"),
                *[_f(f"Permissions{name}", "boolean") for name in SYSTEM_PERMISSIONS],
            ],
        ),
        "FieldPermissions": (
            "01k",
            "Field Permissions",
            "Field Permissions",
            [
                _ref("ParentId", ("PermissionSet",), "Parent", required=True, updateable=False,
                     label="Parent ID"),
                _f("SobjectType", "picklist", length=40, required=True, updateable=False),
                _f("Field", "picklist", length=80, required=True, updateable=False),
                _f("PermissionsRead", "boolean", label="Read Field"),
                _f("PermissionsEdit", "boolean", label="Edit Field"),
            ],
        ),
        "PermissionSetAssignment": (
            "0Pa",
            "Permission Set Assignment",
            "Permission Set Assignments",
            [
                _ref("AssigneeId", ("User",), "Assignee", required=True, updateable=False,
                     label="Assignee ID"),
                _ref(
                    "PermissionSetId", ("PermissionSet",), "PermissionSet", required=True, updateable=False,
                    label="Permission Set ID",
                ),
            ],
        ),
        "Group": (
            "00G",
            "Group",
            "Groups",
            [
                _f("Name", "string", length=40, required=True),
                _f("DeveloperName", "string", length=80, unique=True, label="Developer Name"),
                _f("Type", "picklist", length=40, picklist=("Regular", "Queue"), nillable=False,
                   default="Regular"),
            ],
        ),
        "GroupMember": (
            "011",
            "Group Member",
            "Group Members",
            [
                _ref("GroupId", ("Group",), "Group", required=True, updateable=False, label="Group ID"),
                _ref("UserOrGroupId", ("User", "Group"), "", required=True, updateable=False,
                     label="User/Group ID"),
            ],
        ),
        "ListView": (
            "00B",
            "List View",
            "List Views",
            [
                _f("Name", "string", length=40, ro=True, label="View Name"),
                _f("DeveloperName", "string", length=80, ro=True, label="View Unique Name"),
                _f("SobjectType", "picklist", length=40, ro=True),
            ],
        ),
        "Account": (
            "001",
            "Account",
            "Accounts",
            [
                _f("Name", "string", label="Account Name", required=True),
                _f(
                    "Type",
                    "picklist",
                    label="Account Type",
                    length=40,
                    picklist=(
                        "Prospect",
                        "Customer - Direct",
                        "Customer - Channel",
                        "Channel Partner / Reseller",
                        "Distributor",
                        "Technology Partner",
                        "Competitor",
                        "Other",
                    ),
                ),
                _f("Industry", "picklist", length=40, picklist=INDUSTRIES),
                _f("Website", "url"),
                _f("Phone", "phone"),
                _f("BillingCountry", "string", length=80),
                _f("BillingState", "string", length=80),
                _f("BillingCity", "string", length=40),
                _f("NumberOfEmployees", "int", label="Employees"),
                _f("AnnualRevenue", "currency", precision=18, scale=0),
                _f("Description", "textarea", label="Account Description"),
                _ref("ParentId", ("Account",), "Parent", label="Parent Account ID"),
                _owner(),
                _f("Application_Segment__c", "picklist", label="Application Segment"),
                _f("Application__c", "string", label="Application"),
                _f("Device_Type__c", "picklist", label="Device Type"),
                _f("Process_Node__c", "picklist", label="Process Node / Package"),
                _f("Region__c", "picklist", label="Sales Region"),
            ],
        ),
        "Contact": (
            "003",
            "Contact",
            "Contacts",
            [
                _ref("AccountId", ("Account",), "Account", label="Account ID"),
                _f("FirstName", "string", length=40),
                _f("LastName", "string", length=80, required=True),
                _f("Name", "string", length=121, ro=True, derived=True, label="Full Name"),
                _f("Title", "string", length=128),
                _f("Department", "string", length=80),
                _f("Email", "email"),
                _f("Phone", "phone"),
                _f("MailingCountry", "string", length=80),
                _f("LeadSource", "picklist", length=40, picklist=LEAD_SOURCES),
                _f("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
                _f("EmailBouncedReason", "string"),
                _f("EmailBouncedDate", "datetime"),
                _f("Description", "textarea", label="Contact Description"),
                _owner(),
                _f("Partner_Owned__c", "boolean", label="Partner Owned"),
                _f("HubSpot_Contact_Id__c", "string", length=32, label="HubSpot Contact ID"),
            ],
        ),
        "Lead": (
            "00Q",
            "Lead",
            "Leads",
            [
                _f("FirstName", "string", length=40),
                _f("LastName", "string", length=80, required=True),
                _f("Name", "string", length=121, ro=True, derived=True, label="Full Name"),
                _f("Title", "string", length=128),
                _f("Company", "string", required=True),
                _f("Email", "email"),
                _f("Phone", "phone"),
                _f("Website", "url"),
                _f("Country", "string", length=80),
                _f("Industry", "picklist", length=40, picklist=INDUSTRIES),
                _f("LeadSource", "picklist", length=40, picklist=LEAD_SOURCES),
                _f(
                    "Status",
                    "picklist",
                    length=40,
                    picklist=LEAD_STATUSES,
                    label="Lead Status",
                    nillable=False,
                    default="Open - Not Contacted",
                ),
                _f("Rating", "picklist", length=40, picklist=("Hot", "Warm", "Cold")),
                _f("NumberOfEmployees", "int", label="Employees"),
                _f("AnnualRevenue", "currency", precision=18, scale=0),
                _f("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
                _f("EmailBouncedReason", "string"),
                _f("EmailBouncedDate", "datetime"),
                _f("Description", "textarea"),
                _f("IsConverted", "boolean", label="Converted", ro=True),
                _f("ConvertedDate", "date", ro=True),
                _ref("ConvertedAccountId", ("Account",), "ConvertedAccount", ro=True),
                _ref("ConvertedContactId", ("Contact",), "ConvertedContact", ro=True),
                _ref("ConvertedOpportunityId", ("Opportunity",), "ConvertedOpportunity", ro=True),
                _owner(),
                _f("Partner_Owned__c", "boolean", label="Partner Owned"),
                _f("HubSpot_Contact_Id__c", "string", length=32, label="HubSpot Contact ID"),
            ],
        ),
        "Opportunity": (
            "006",
            "Opportunity",
            "Opportunities",
            [
                _ref("AccountId", ("Account",), "Account", label="Account ID"),
                _f("Name", "string", label="Opportunity Name", length=120, required=True),
                _f(
                    "StageName",
                    "picklist",
                    label="Stage",
                    length=40,
                    picklist=OPPORTUNITY_STAGES,
                    required=True,
                ),
                _f("Amount", "currency", precision=18, scale=2),
                _f("Probability", "percent", precision=3, scale=0),
                _f("CloseDate", "date", required=True),
                _f(
                    "Type",
                    "picklist",
                    length=40,
                    picklist=(
                        "New Customer",
                        "Existing Customer - Upgrade",
                        "Existing Customer - Replacement",
                    ),
                ),
                _f("LeadSource", "picklist", length=40, picklist=LEAD_SOURCES),
                _f("IsClosed", "boolean", label="Closed", ro=True, derived=True),
                _f("IsWon", "boolean", label="Won", ro=True, derived=True),
                _f("Description", "textarea"),
                _ref("CampaignId", ("Campaign",), "Campaign", label="Campaign ID"),
                _owner(),
            ],
        ),
        "OpportunityContactRole": (
            "00K",
            "Opportunity Contact Role",
            "Opportunity Contact Role",
            [
                _ref("OpportunityId", ("Opportunity",), "Opportunity", required=True, label="Opportunity ID"),
                _ref("ContactId", ("Contact",), "Contact", required=True, label="Contact ID"),
                _f(
                    "Role",
                    "picklist",
                    length=40,
                    picklist=(
                        "Business User",
                        "Decision Maker",
                        "Economic Buyer",
                        "Economic Decision Maker",
                        "Evaluator",
                        "Executive Sponsor",
                        "Influencer",
                        "Technical Buyer",
                        "Other",
                    ),
                ),
                _f("IsPrimary", "boolean", label="Primary"),
            ],
        ),
        "Campaign": (
            "701",
            "Campaign",
            "Campaigns",
            [
                _f("Name", "string", label="Campaign Name", length=80, required=True),
                _f(
                    "Type",
                    "picklist",
                    length=40,
                    picklist=(
                        "Conference",
                        "Webinar",
                        "Trade Show",
                        "Workshop",
                        "Partners",
                        "Referral Program",
                        "Email",
                        "Advertisement",
                        "Direct Mail",
                        "Other",
                    ),
                ),
                _f(
                    "Status",
                    "picklist",
                    length=40,
                    picklist=("Planned", "In Progress", "Completed", "Aborted"),
                ),
                _f("StartDate", "date"),
                _f("EndDate", "date"),
                _f("IsActive", "boolean", label="Active"),
                _f("Description", "textarea"),
                _owner(),
                _f("Topic__c", "string", label="Topic"),
                _f("Audience_Breadth__c", "picklist", label="Audience Breadth", picklist=("narrow", "broad")),
            ],
        ),
        "CampaignMember": (
            "00v",
            "Campaign Member",
            "Campaign Members",
            [
                _ref(
                    "CampaignId",
                    ("Campaign",),
                    "Campaign",
                    required=True,
                    label="Campaign ID",
                    updateable=False,
                ),
                _ref("LeadId", ("Lead",), "Lead", label="Lead ID", updateable=False),
                _ref("ContactId", ("Contact",), "Contact", label="Contact ID", updateable=False),
                _f("Status", "picklist", length=40, picklist=CAMPAIGN_MEMBER_STATUSES, default="Sent"),
                _f("HasResponded", "boolean", label="Responded", ro=True, derived=True),
                _f("FirstRespondedDate", "date", ro=True, derived=True),
                _f("Type", "picklist", length=40, picklist=("Lead", "Contact"), ro=True, derived=True),
            ],
        ),
        "Task": (
            "00T",
            "Task",
            "Tasks",
            [
                _ref("WhoId", ("Contact", "Lead"), "Who", label="Name ID"),
                _ref("WhatId", ("Account", "Opportunity", "Campaign"), "What", label="Related To ID"),
                _ref("AccountId", ("Account",), "Account", ro=True, derived=True, label="Account ID"),
                _f("Subject", "combobox"),
                _f("Description", "textarea"),
                _f("ActivityDate", "date", label="Due Date Only"),
                _f(
                    "Status",
                    "picklist",
                    length=40,
                    picklist=TASK_STATUSES,
                    nillable=False,
                    default="Not Started",
                ),
                _f(
                    "Priority",
                    "picklist",
                    length=40,
                    picklist=("High", "Normal", "Low"),
                    nillable=False,
                    default="Normal",
                ),
                _f("IsClosed", "boolean", label="Closed", ro=True, derived=True),
                _f("IsHighPriority", "boolean", label="High Priority", ro=True, derived=True),
                _f("Type", "picklist", length=40, picklist=("Call", "Email", "Meeting", "Form", "Other")),
                _f(
                    "TaskSubtype",
                    "picklist",
                    length=40,
                    picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
                    updateable=False,
                ),
                _f("CallDurationInSeconds", "int", label="Call Duration"),
                _f("IsReminderSet", "boolean", label="Reminder Set"),
                _f("ReminderDateTime", "datetime", label="Reminder Date/Time"),
                _f("CompletedDateTime", "datetime", ro=True, derived=True),
                _owner(),
            ],
        ),
        "Event": (
            "00U",
            "Event",
            "Events",
            [
                _ref("WhoId", ("Contact", "Lead"), "Who", label="Name ID"),
                _ref("WhatId", ("Account", "Opportunity", "Campaign"), "What", label="Related To ID"),
                _ref("AccountId", ("Account",), "Account", ro=True, derived=True, label="Account ID"),
                _f("Subject", "combobox"),
                _f("Description", "textarea"),
                _f("Location", "string"),
                _f("StartDateTime", "datetime"),
                _f("EndDateTime", "datetime"),
                _f("ActivityDateTime", "datetime", label="Due Date Time"),
                _f("ActivityDate", "date", label="Due Date Only"),
                _f("DurationInMinutes", "int", label="Duration"),
                _f("Type", "picklist", length=40, picklist=("Call", "Email", "Meeting", "Other")),
                _f("EventSubtype", "picklist", length=40, picklist=("Event",), updateable=False),
                _owner(),
            ],
        ),
    }
    objects: dict[str, ObjectDef] = {}
    for name, (prefix, label, plural, fields) in specs.items():
        obj = ObjectDef(name, prefix, label, plural)
        for fdef in _system_fields()[:1] + fields + _system_fields()[1:]:
            if fdef.type == "picklist" and fdef.custom and not fdef.picklist:
                fdef.restricted = False
            obj.add(fdef)
        if name in ("Task", "Event"):
            obj.name_field = "Subject"
        if name in ("CampaignMember", "OpportunityContactRole", "FieldPermissions", "PermissionSetAssignment",
                    "GroupMember"):
            obj.name_field = "Id"
        obj.setup_entity = name in SETUP_OBJECTS
        obj.field_security = name not in SETUP_OBJECTS | {"Group", "GroupMember", "ListView"}
        objects[name.lower()] = obj
    return objects


# The fields polymorphic relationships (Task.Who, Task.What) expose, Salesforce's `Name` object.
NAME_OBJECT_FIELDS = (
    "Id",
    "Name",
    "Type",
    "Email",
    "FirstName",
    "LastName",
    "Title",
    "Phone",
    "Alias",
    "Username",
    "IsActive",
)

TOOLING_TYPES: dict[str, str] = {
    "Text": "string",
    "TextArea": "textarea",
    "LongTextArea": "textarea",
    "Html": "textarea",
    "Number": "double",
    "Currency": "currency",
    "Percent": "percent",
    "Checkbox": "boolean",
    "Date": "date",
    "DateTime": "datetime",
    "Picklist": "picklist",
    "MultiselectPicklist": "multipicklist",
    "Email": "email",
    "Url": "url",
    "Phone": "phone",
}
