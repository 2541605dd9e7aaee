"""HubSpot's standard object types, their standard properties and the HUBSPOT_DEFINED association types.

Object type ids: https://developers.hubspot.com/docs/api/crm/understanding-the-crm (objectTypeId table)
Properties: https://developers.hubspot.com/docs/api/crm/properties
Association type ids: https://developers.hubspot.com/docs/api/crm/associations/associations-v4
(the "association type id values" tables).
"""

from __future__ import annotations

from dataclasses import dataclass

OBJECT_TYPE_IDS: dict[str, str] = {
    "contacts": "0-1",
    "companies": "0-2",
    "deals": "0-3",
    "tasks": "0-27",
    "notes": "0-46",
    "meetings": "0-47",
    "calls": "0-48",
    "emails": "0-49",
}
_ALIASES = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "task": "tasks",
    "note": "notes",
    "meeting": "meetings",
    "call": "calls",
    "email": "emails",
}
ENGAGEMENTS = ("tasks", "notes", "meetings", "calls", "emails")


def object_type(name: str) -> str | None:
    """The canonical plural name for a path segment (`contacts`, `contact`, `0-1`), or None."""
    lowered = name.lower()
    if lowered in OBJECT_TYPE_IDS:
        return lowered
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    for plural, type_id in OBJECT_TYPE_IDS.items():
        if type_id == name:
            return plural
    return None


def modified_property(object_name: str) -> str:
    """Contacts keep `lastmodifieddate`; every other object `hs_lastmodifieddate`."""
    return "lastmodifieddate" if object_name == "contacts" else "hs_lastmodifieddate"


DEFAULT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "contacts": ("firstname", "lastname", "email", "createdate", "lastmodifieddate", "hs_object_id"),
    "companies": ("name", "domain", "createdate", "hs_lastmodifieddate", "hs_object_id"),
    "deals": (
        "dealname",
        "amount",
        "closedate",
        "pipeline",
        "dealstage",
        "createdate",
        "hs_lastmodifieddate",
        "hs_object_id",
    ),
}
ENGAGEMENT_DEFAULT_PROPERTIES = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")


def default_properties(object_name: str) -> tuple[str, ...]:
    return DEFAULT_PROPERTIES.get(object_name, ENGAGEMENT_DEFAULT_PROPERTIES)


@dataclass(slots=True)
class PropertyDef:
    """One property definition, as the Properties API describes it."""

    name: str
    label: str
    type: str  # string | number | date | datetime | enumeration | bool | phone_number
    field_type: str
    group: str
    options: tuple[str, ...] = ()
    hubspot_defined: bool = True
    read_only: bool = False
    unique: bool = False
    description: str = ""
    created_at: str = "2019-08-06T02:41:52.000Z"
    display_order: int = -1
    number_display_hint: str | None = None  # number properties: how the app shows the value

    def to_json(self, owner_options: list[tuple[str, str]] | None = None) -> dict:
        """The Properties API form; `hubspot_owner_id` lists the portal's owners as its options."""
        body = {
            "name": self.name,
            "label": self.label,
            "type": self.type,
            "fieldType": self.field_type,
            "description": self.description,
            "groupName": self.group,
            "options": [
                {"label": label, "value": value, "displayOrder": i, "hidden": False}
                for i, (value, label) in enumerate(
                    owner_options
                    if owner_options is not None and self.name == "hubspot_owner_id"
                    else [(o, o.replace("_", " ").title() if o.isupper() else o) for o in self.options]
                )
            ],
            "displayOrder": self.display_order,
            "calculated": False,
            "externalOptions": False,
            "hasUniqueValue": self.unique,
            "hidden": False,
            "hubspotDefined": self.hubspot_defined,
            "modificationMetadata": {
                "archivable": not self.hubspot_defined,
                "readOnlyDefinition": self.hubspot_defined,
                "readOnlyValue": self.read_only,
            },
            "formField": False,
            "createdAt": self.created_at,
            "updatedAt": self.created_at,
            "archived": False,
        }
        if self.number_display_hint is not None:
            body["numberDisplayHint"] = self.number_display_hint
        return body


LIFECYCLE_STAGES = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
LEAD_STATUSES = (
    "NEW",
    "OPEN",
    "IN_PROGRESS",
    "OPEN_DEAL",
    "UNQUALIFIED",
    "ATTEMPTED_TO_CONTACT",
    "CONNECTED",
    "BAD_TIMING",
)
BOUNCE_REASONS = ("UNKNOWN_USER", "MAILBOX_FULL", "POLICY", "DOMAIN", "SPAM", "OTHER")
DEAL_STAGES = (
    "appointmentscheduled",
    "qualifiedtobuy",
    "presentationscheduled",
    "decisionmakerboughtin",
    "contractsent",
    "closedwon",
    "closedlost",
)
COMPANY_TYPES = ("PROSPECT", "PARTNER", "RESELLER", "VENDOR", "OTHER")


def _p(
    name: str, label: str, type_: str = "string", field: str = "text", group: str = "", **kw
) -> PropertyDef:
    return PropertyDef(name, label, type_, field, group, **kw)


def _system(
    group: str, created: str = "createdate", modified: str = "hs_lastmodifieddate"
) -> list[PropertyDef]:
    return [
        _p("hs_object_id", "Record ID", "number", "number", group, read_only=True, unique=True),
        _p(created, "Create Date", "datetime", "date", group, read_only=True),
        _p(modified, "Last Modified Date", "datetime", "date", group, read_only=True),
        _p("hubspot_owner_id", "Owner", "enumeration", "select", group),
    ]


def _engagement(group: str, extra: list[PropertyDef]) -> list[PropertyDef]:
    return [
        *_system(group),
        _p("hs_createdate", "Created at", "datetime", "date", group, read_only=True),
        _p("hs_timestamp", "Activity date", "datetime", "date", group),
        *extra,
    ]


def standard_properties() -> dict[str, dict[str, PropertyDef]]:
    """Fresh definitions for every object type (mutable: created properties are added to them)."""
    ci, co, dl = "contactinformation", "companyinformation", "dealinformation"
    sf = "salesforceinformation"
    contacts = [
        *_system(ci, modified="lastmodifieddate"),
        _p("email", "Email", field="text", group=ci, unique=True),
        _p("firstname", "First Name", group=ci),
        _p("lastname", "Last Name", group=ci),
        _p("jobtitle", "Job Title", group=ci),
        _p("company", "Company Name", group=ci),
        _p("country", "Country/Region", group=ci),
        _p("industry", "Industry", group=ci),
        _p("phone", "Phone Number", "string", "phonenumber", ci),
        _p("website", "Website URL", group=ci),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", ci, options=LIFECYCLE_STAGES),
        _p(
            "hs_lead_status", "Lead Status", "enumeration", "radio", "sales_properties", options=LEAD_STATUSES
        ),
        _p("hs_email_optout", "Unsubscribed from all email", "bool", "booleancheckbox", "emailinformation"),
        _p(
            "hs_email_hard_bounce_reason_enum",
            "Email hard bounce reason",
            "enumeration",
            "radio",
            "emailinformation",
            options=BOUNCE_REASONS,
            read_only=True,
        ),
        _p(
            "hs_email_hard_bounce_reason",
            "Email hard bounce reason (text)",
            group="emailinformation",
            read_only=True,
        ),
        _p(
            "hs_email_bad_address",
            "Invalid email address",
            "bool",
            "booleancheckbox",
            "emailinformation",
            read_only=True,
        ),
        _p(
            "hs_email_bounce",
            "Marketing emails bounced",
            "number",
            "number",
            "emailinformation",
            read_only=True,
        ),
        _p("associatedcompanyid", "Primary Associated Company ID", "number", "number", ci),
        _p(
            "num_associated_deals",
            "Number of Associated Deals",
            "number",
            "number",
            "deal_information",
            read_only=True,
        ),
        _p(
            "hs_analytics_source",
            "Original Source",
            "enumeration",
            "select",
            "analyticsinformation",
            options=(
                "ORGANIC_SEARCH",
                "PAID_SEARCH",
                "EMAIL_MARKETING",
                "SOCIAL_MEDIA",
                "REFERRALS",
                "OTHER_CAMPAIGNS",
                "DIRECT_TRAFFIC",
                "OFFLINE",
                "PAID_SOCIAL",
            ),
            read_only=True,
        ),
        _p("salesforceleadid", "Salesforce Lead ID", group=sf),
        _p("salesforcecontactid", "Salesforce Contact ID", group=sf),
        _p("salesforceaccountid", "Salesforce Account ID", group=sf),
        _p("salesforceownerid", "Salesforce Owner ID", group=sf),
        _p("salesforcelastsynctime", "Last Salesforce Sync Time", "datetime", "date", sf),
    ]
    companies = [
        *_system(co),
        _p("name", "Company name", group=co),
        _p("domain", "Company Domain Name", group=co),
        _p("website", "Website URL", group=co),
        _p("industry", "Industry", group=co),
        _p("numberofemployees", "Number of Employees", "number", "number", co),
        _p("annualrevenue", "Annual Revenue", "number", "number", co),
        _p("country", "Country/Region", group=co),
        _p("city", "City", group=co),
        _p("type", "Type", "enumeration", "select", co, options=COMPANY_TYPES),
        _p("lifecyclestage", "Lifecycle Stage", "enumeration", "radio", co, options=LIFECYCLE_STAGES),
        _p("description", "Description", "string", "textarea", co),
        _p("salesforceaccountid", "Salesforce Account ID", group=sf),
        # Custom properties a semiconductor/industrial portal keeps for its ideal-customer profile.
        _p("segment", "Market segment", group="company_profile", hubspot_defined=False),
        _p("application", "Application", group="company_profile", hubspot_defined=False),
        _p("device_type", "Device type", group="company_profile", hubspot_defined=False),
        _p("process", "Process", group="company_profile", hubspot_defined=False),
        _p("region", "Region", group="company_profile", hubspot_defined=False),
        _p(
            "customer_type",
            "Customer type",
            "enumeration",
            "select",
            "company_profile",
            hubspot_defined=False,
            options=("prospect", "customer", "partner", "distributor", "competitor"),
        ),
    ]
    deals = [
        *_system(dl),
        _p("dealname", "Deal Name", group=dl),
        _p("amount", "Amount", "number", "number", dl),
        _p("dealstage", "Deal Stage", "enumeration", "radio", dl, options=DEAL_STAGES),
        _p("pipeline", "Pipeline", "enumeration", "select", dl, options=("default",)),
        _p("closedate", "Close Date", "datetime", "date", dl),
        _p("dealtype", "Deal Type", group=dl),
        _p("hs_is_closed", "Is Deal Closed?", "bool", "booleancheckbox", dl, read_only=True),
        _p("hs_is_closed_won", "Is Closed Won", "bool", "booleancheckbox", dl, read_only=True),
        _p("hs_is_closed_lost", "Is Closed Lost", "bool", "booleancheckbox", dl, read_only=True),
    ]
    tasks = _engagement(
        "task",
        [
            _p("hs_task_subject", "Task Title", group="task"),
            _p("hs_task_body", "Notes", "string", "html", "task"),
            _p(
                "hs_task_status",
                "Task Status",
                "enumeration",
                "select",
                "task",
                options=("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
            ),
            _p(
                "hs_task_priority",
                "Priority",
                "enumeration",
                "select",
                "task",
                options=("NONE", "LOW", "MEDIUM", "HIGH"),
            ),
            _p(
                "hs_task_type",
                "Task Type",
                "enumeration",
                "select",
                "task",
                options=("EMAIL", "CALL", "TODO"),
            ),
            _p("hs_task_completion_date", "Completed at", "datetime", "date", "task", read_only=True),
        ],
    )
    notes = _engagement("note", [_p("hs_note_body", "Note body", "string", "html", "note")])
    calls = _engagement(
        "call",
        [
            _p("hs_call_title", "Call Title", group="call"),
            _p("hs_call_body", "Call notes", "string", "html", "call"),
            _p(
                "hs_call_direction",
                "Call direction",
                "enumeration",
                "select",
                "call",
                options=("INBOUND", "OUTBOUND"),
            ),
            _p("hs_call_duration", "Call duration", "number", "number", "call"),
            _p(
                "hs_call_status",
                "Call status",
                "enumeration",
                "select",
                "call",
                options=(
                    "BUSY",
                    "CALLING_CRM_USER",
                    "CANCELED",
                    "COMPLETED",
                    "CONNECTING",
                    "FAILED",
                    "IN_PROGRESS",
                    "NO_ANSWER",
                    "QUEUED",
                    "RINGING",
                ),
            ),
            _p("hs_call_disposition", "Call outcome", group="call"),
        ],
    )
    emails = _engagement(
        "email",
        [
            _p("hs_email_subject", "Email subject", group="email"),
            _p("hs_email_text", "Email body", group="email"),
            _p(
                "hs_email_direction",
                "Email direction",
                "enumeration",
                "select",
                "email",
                options=("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL"),
            ),
            _p(
                "hs_email_status",
                "Email send status",
                "enumeration",
                "select",
                "email",
                options=("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT"),
            ),
        ],
    )
    meetings = _engagement(
        "meeting",
        [
            _p("hs_meeting_title", "Meeting name", group="meeting"),
            _p("hs_meeting_body", "Meeting description", "string", "html", "meeting"),
            _p("hs_meeting_start_time", "Start time", "datetime", "date", "meeting"),
            _p("hs_meeting_end_time", "End time", "datetime", "date", "meeting"),
            _p(
                "hs_meeting_outcome",
                "Meeting outcome",
                "enumeration",
                "select",
                "meeting",
                options=("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED"),
            ),
        ],
    )
    by_type = {
        "contacts": contacts,
        "companies": companies,
        "deals": deals,
        "tasks": tasks,
        "notes": notes,
        "calls": calls,
        "emails": emails,
        "meetings": meetings,
    }
    return {name: {p.name: p for p in props} for name, props in by_type.items()}


def standard_groups() -> dict[str, dict[str, dict]]:
    """Property groups per object type ({name: {name, label, displayOrder, archived}})."""
    out: dict[str, dict[str, dict]] = {}
    for object_name, props in standard_properties().items():
        names = sorted({p.group for p in props.values()})
        out[object_name] = {
            n: {"name": n, "label": n.replace("_", " ").title(), "displayOrder": i, "archived": False}
            for i, n in enumerate(names)
        }
    return out


@dataclass(frozen=True, slots=True)
class AssociationType:
    """One HUBSPOT_DEFINED association type, with its inverse and v3 name."""

    from_type: str
    to_type: str
    type_id: int
    inverse_id: int
    label: str | None
    v3_name: str


def _pairs() -> list[tuple[str, str, int, int, str | None]]:
    # (from, to, id, inverse id, label) -- unlabeled defaults and the "Primary" labels.
    rows = [
        ("contacts", "companies", 279, 280, None),
        ("contacts", "companies", 1, 2, "Primary"),
        ("deals", "contacts", 3, 4, None),
        ("deals", "companies", 341, 342, None),
        ("deals", "companies", 5, 6, "Primary"),
    ]
    engagement_ids = {  # engagement -> (to contact, to company, to deal); inverses are id - 1
        "tasks": (204, 192, 216),
        "notes": (202, 190, 214),
        "calls": (194, 182, 206),
        "emails": (198, 186, 210),
        "meetings": (200, 188, 212),
    }
    for engagement, (to_contact, to_company, to_deal) in engagement_ids.items():
        rows += [
            (engagement, "contacts", to_contact, to_contact - 1, None),
            (engagement, "companies", to_company, to_company - 1, None),
            (engagement, "deals", to_deal, to_deal - 1, None),
        ]
    return rows


def _singular(name: str) -> str:
    return {"companies": "company"}.get(name, name[:-1])


def association_types() -> dict[int, AssociationType]:
    """All association types by type id, both directions."""
    out: dict[int, AssociationType] = {}
    for from_type, to_type, type_id, inverse_id, label in _pairs():
        base = f"{_singular(from_type)}_to_{_singular(to_type)}"
        back = f"{_singular(to_type)}_to_{_singular(from_type)}"
        unlabeled = label is None and any(r[0] == from_type and r[1] == to_type and r[4] for r in _pairs())
        out[type_id] = AssociationType(
            from_type, to_type, type_id, inverse_id, label, base + ("_unlabeled" if unlabeled else "")
        )
        out[inverse_id] = AssociationType(
            to_type, from_type, inverse_id, type_id, label, back + ("_unlabeled" if unlabeled else "")
        )
    return out


ASSOCIATION_TYPES = association_types()
# The type HubSpot uses for a "default" (unlabeled) association between two object types.
DEFAULT_ASSOCIATION: dict[tuple[str, str], int] = {
    (t.from_type, t.to_type): t.type_id for t in ASSOCIATION_TYPES.values() if t.label is None
}
PRIMARY_ASSOCIATION: dict[tuple[str, str], int] = {
    (t.from_type, t.to_type): t.type_id for t in ASSOCIATION_TYPES.values() if t.label == "Primary"
}
