"""Declarative field mapping: which CRM field feeds which canonical field, and which CRM fields
leadloop owns and may write (the write allowlist).

Defaults follow ARCHITECTURE.md; a playbook's `mapping:` section overrides any of them, e.g. to read
an application segment from a custom field or to rename an owned field. Anything outside the owned
fields can never be written: `assert_writable` raises before a request is built.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

# leadloop's logical names for what it writes; connectors translate them through the mapping.
PERSON_FIELDS = (
    "fit_score", "intent_score", "score", "tier", "reasons", "model_version", "scored_at", "nurture_track",
    "likelihood",
)
ACCOUNT_FIELDS = ("account_fit", "account_intent", "account_tier", "buying_roles")


class CrmMapping(BaseModel):
    """One CRM's mapping. `read[object][canonical_field] = crm_field`; `owned_*[logical] = crm_field`."""

    model_config = ConfigDict(extra="forbid")

    read: dict[str, dict[str, str]] = Field(default_factory=dict)
    owned_person: dict[str, str]
    owned_account: dict[str, str]
    task_key: str

    def person_field(self, logical: str) -> str:
        return self.owned_person[logical]

    def account_field(self, logical: str) -> str:
        return self.owned_account[logical]

    def allowlist(self, object_kind: str) -> frozenset[str]:
        """The CRM field names leadloop may write on `person`, `account` or `task` records."""
        if object_kind == "person":
            return frozenset(self.owned_person.values())
        if object_kind == "account":
            return frozenset(self.owned_account.values())
        if object_kind == "task":
            return frozenset({self.task_key})
        return frozenset()


class Mapping(BaseModel):
    model_config = ConfigDict(extra="forbid")

    salesforce: CrmMapping
    hubspot: CrmMapping


class ForbiddenFieldError(PermissionError):
    """An attempt to write a field outside leadloop's owned fields; raised before any request."""


class MappingError(ValueError):
    """The playbook's mapping section is not valid; the message names the path."""


class CrmNotSetUp(RuntimeError):
    """The CRM answered that a field leadloop writes or searches by does not exist (or, in Salesforce,
    that the task key is no external id): every record's write would fail the same way, so the run
    stops at the first such answer instead of failing each batch. `leadloop crm setup` creates them."""

    def __init__(self, crm: str, endpoint: str, detail: str) -> None:
        self.crm, self.endpoint, self.detail = crm, endpoint, detail
        super().__init__(f"{crm} lacks fields leadloop writes ({endpoint}): {detail}")


_SF_PERSON = {
    "fit_score": "LL_Fit_Score__c", "intent_score": "LL_Intent_Score__c", "score": "LL_Score__c",
    "tier": "LL_Tier__c", "reasons": "LL_Reasons__c", "model_version": "LL_Model_Version__c",
    "scored_at": "LL_Scored_At__c", "nurture_track": "LL_Nurture_Track__c",
    "likelihood": "LL_Likelihood__c",
}
_SF_ACCOUNT = {
    "account_fit": "LL_Account_Fit__c", "account_intent": "LL_Account_Intent__c",
    "account_tier": "LL_Account_Tier__c", "buying_roles": "LL_Buying_Roles__c",
}
_HS_PERSON = {logical: "ll_" + logical for logical in PERSON_FIELDS}
_HS_ACCOUNT = {logical: "ll_" + logical for logical in ACCOUNT_FIELDS}

DEFAULT_MAPPING: dict[str, Any] = {
    "salesforce": {
        "read": {
            "Account": {
                "name": "Name", "website": "Website", "industry": "Industry", "country": "BillingCountry",
                "employees": "NumberOfEmployees", "annual_revenue": "AnnualRevenue",
                "customer_type": "Type", "owner_id": "OwnerId", "segment": "Application_Segment__c",
                "application": "Application__c", "device_type": "Device_Type__c",
                "process": "Process_Node__c", "region": "Region__c",
            },
            "Lead": {
                "email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title",
                "company_name": "Company", "country": "Country", "lead_source": "LeadSource",
                "lifecycle_status": "Status", "owner_id": "OwnerId", "unsubscribed": "HasOptedOutOfEmail",
                "bounced": "EmailBouncedReason", "partner_owned": "Partner_Owned__c",
            },
            "Contact": {
                "email": "Email", "first_name": "FirstName", "last_name": "LastName", "title": "Title",
                "department": "Department", "country": "MailingCountry", "lead_source": "LeadSource",
                "account_id": "AccountId", "owner_id": "OwnerId", "unsubscribed": "HasOptedOutOfEmail",
                "bounced": "EmailBouncedReason",
            },
        },
        "owned_person": _SF_PERSON,
        "owned_account": _SF_ACCOUNT,
        "task_key": "LL_Key__c",
    },
    "hubspot": {
        "read": {
            "companies": {
                "name": "name", "domain": "domain", "industry": "industry", "country": "country",
                "employees": "numberofemployees", "annual_revenue": "annualrevenue",
                "owner_id": "hubspot_owner_id", "segment": "segment", "application": "application",
                "device_type": "device_type", "process": "process", "region": "region",
            },
            "contacts": {
                "email": "email", "first_name": "firstname", "last_name": "lastname", "title": "jobtitle",
                "company_name": "company", "country": "country", "lifecycle_status": "lifecyclestage",
                "owner_id": "hubspot_owner_id", "unsubscribed": "hs_email_optout",
                "bounced": "hs_email_hard_bounce_reason_enum", "lead_source": "hs_analytics_source",
            },
        },
        "owned_person": _HS_PERSON,
        "owned_account": _HS_ACCOUNT,
        "task_key": "ll_key",
    },
}


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_mapping(override: dict[str, Any] | None = None) -> Mapping:
    """The default mapping with a playbook's `mapping:` section merged over it."""
    data = _merge(DEFAULT_MAPPING, override or {})
    try:
        mapping = Mapping.model_validate(data)
    except ValidationError as error:
        problems = [
            "mapping." + ".".join(str(p) for p in item["loc"]) + ": " + item["msg"] for item in error.errors()
        ]
        raise MappingError("; ".join(problems)) from None
    for crm_name in ("salesforce", "hubspot"):
        crm_mapping: CrmMapping = getattr(mapping, crm_name)
        missing = [f for f in PERSON_FIELDS if f not in crm_mapping.owned_person]
        missing += [f for f in ACCOUNT_FIELDS if f not in crm_mapping.owned_account]
        if missing:
            raise MappingError(f"mapping.{crm_name}: owned fields missing a CRM name: {', '.join(missing)}")
    return mapping


def assert_writable(mapping: CrmMapping, object_kind: str, fields: set[str] | frozenset[str]) -> None:
    """Raise ForbiddenFieldError when any of `fields` is outside the allowlist for `object_kind`."""
    outside = set(fields) - mapping.allowlist(object_kind)
    if outside:
        raise ForbiddenFieldError(
            f"refusing to write {sorted(outside)} on {object_kind} records: leadloop only writes its "
            f"owned fields {sorted(mapping.allowlist(object_kind))}"
        )
