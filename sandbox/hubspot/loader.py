"""Render the neutral generated world (sandbox.world) as a HubSpot portal: owners from reps, companies,
contacts, deals, sales engagements, and the native activity sources (form submissions, page-view events,
marketing email events, marketing-event attendance).

Object and property conventions: https://developers.hubspot.com/docs/api/crm/understanding-the-crm
"""

from __future__ import annotations

import functools
import gc
import uuid
from datetime import UTC, datetime, time, timedelta
from typing import Any

from leadloop.sandbox.hubspot import schema
from leadloop.sandbox.hubspot.salesforce_ids import salesforce_ids
from leadloop.sandbox.hubspot.store import Record, Store, iso_ms, to_ms, valid_email

_NAMESPACE = uuid.UUID("6f1c9a52-4d0e-4b7e-9a55-8c2f1f7d2a10")
OWNER_ID_BASE, USER_ID_BASE = 64_492_900, 9_586_500
EXTERNAL_ACCOUNT_ID = "sandbox-events"
_SUBMISSION_TAG = "5b1e-4c0a-9f00"  # the constant middle of the sandbox's conversion ids (UUID-shaped)

LEAD_STATUS = {  # Salesforce Lead Status -> HubSpot hs_lead_status
    "Open - Not Contacted": "NEW",
    "Working - Contacted": "IN_PROGRESS",
    "Closed - Converted": "CONNECTED",
    "Closed - Not Converted": "UNQUALIFIED",
    "Nurturing": "BAD_TIMING",
}
LEAD_SOURCE = {  # lead source -> hs_analytics_source
    "Web": "ORGANIC_SEARCH",
    "Webinar": "OTHER_CAMPAIGNS",
    "Trade Show": "OFFLINE",
    "Partner Referral": "REFERRALS",
    "Purchased List": "OFFLINE",
    "Other": "OTHER_CAMPAIGNS",
}
DEAL_STAGE = {
    "Prospecting": "appointmentscheduled",
    "Qualification": "qualifiedtobuy",
    "Needs Analysis": "presentationscheduled",
    "Proposal/Price Quote": "decisionmakerboughtin",
    "Negotiation/Review": "contractsent",
    "Closed Won": "closedwon",
    "Closed Lost": "closedlost",
}
COMPANY_TYPE = {
    "prospect": "PROSPECT",
    "customer": "OTHER",
    "partner": "PARTNER",
    "distributor": "RESELLER",
    "competitor": "OTHER",
}
FORM_KINDS = {
    "form_fill",
    "asset_download",
    "eval_kit_request",
    "sample_request",
    "demo_request",
    "contact_sales",
    "partner_referral",
}
DEFAULT_FORMS = {
    "form_fill": "Contact us",
    "asset_download": "Content download",
    "eval_kit_request": "Evaluation kit request",
    "sample_request": "Sample request",
    "demo_request": "Request a demo",
    "contact_sales": "Contact sales",
    "partner_referral": "Partner referral",
    "webinar_registered": "Webinar registration",
}
EMAIL_TYPES = {
    "email_open": "OPEN",
    "email_click": "CLICK",
    "unsubscribe": "STATUSCHANGE",
    "hard_bounce": "BOUNCE",
}
ATTENDANCE = {
    "webinar_registered": "REGISTERED",
    "webinar_attended": "ATTENDED",
    "trade_show_scan": "ATTENDED",
    "workshop_attended": "ATTENDED",
}
MARKETING_EVENT_TYPES = {"webinar": "WEBINAR", "trade_show": "CONFERENCE", "workshop": "WORKSHOP"}
REFERRERS = ("https://www.google.com/", "https://www.linkedin.com/", "", "https://www.bing.com/")
SOURCES = ("ORGANIC_SEARCH", "SOCIAL_MEDIA", "DIRECT_TRAFFIC", "ORGANIC_SEARCH")


@functools.cache
def _guid(text: str) -> str:
    return str(uuid.uuid5(_NAMESPACE, text))


def _iso(moment: datetime | None) -> str | None:
    return iso_ms(to_ms(moment)) if moment is not None else None


def _num(value: float | None) -> str | None:
    if value is None:
        return None
    return str(int(value)) if float(value).is_integer() else f"{value:.2f}"


class _Loader:
    def __init__(self, store: Store, world: Any) -> None:
        self.store = store
        self.world = world
        self.owner_of: dict[str, str] = {}
        self.company_id: dict[str, int] = {}
        self.contact_id: dict[str, int] = {}
        self.email_of: dict[int, str] = {}  # contact id -> its (valid) email
        self.human: dict[str, Any] = {h.key: h for h in world.humans}
        self.campaign: dict[str, Any] = {c.key: c for c in world.campaigns}
        self.asset: dict[str, Any] = {a.key: a for a in world.assets}
        self.sf = salesforce_ids(world)

    def add(
        self, object_name: str, props: dict[str, str | None], created: datetime, modified: datetime
    ) -> Record:
        store = self.store
        record_id = store.new_id()
        created_ms, modified_ms = to_ms(created), to_ms(max(modified, created))
        clean = {k: v for k, v in props.items() if v is not None}
        clean["hs_object_id"] = str(record_id)
        clean["createdate"] = iso_ms(created_ms)
        clean[schema.modified_property(object_name)] = iso_ms(modified_ms)
        if object_name in schema.ENGAGEMENTS:
            clean["hs_createdate"] = clean["createdate"]
        record = Record(record_id, clean, created_ms, modified_ms)
        store.tables[object_name].add(record)
        return record

    def owners(self) -> None:
        created = iso_ms(to_ms(self.world.generated_at - timedelta(days=3 * 365)))
        regions = sorted({r.region for r in self.world.reps})
        for index, rep in enumerate(self.world.reps):
            owner_id = str(OWNER_ID_BASE + index)
            self.owner_of[rep.key] = owner_id
            self.store.owners[owner_id] = {
                "id": owner_id,
                "email": rep.email,
                "firstName": rep.first_name,
                "lastName": rep.last_name,
                "userId": USER_ID_BASE + index,
                "userIdIncludingInactive": USER_ID_BASE + index,
                "type": "PERSON",
                "createdAt": created,
                "updatedAt": created,
                "archived": not rep.active,
                "teams": [{"id": str(regions.index(rep.region) + 1), "name": rep.region, "primary": True}],
            }

    def companies(self) -> None:
        for company in self.world.companies:
            if not company.in_hubspot:
                continue
            record = self.add(
                "companies",
                {
                    "name": company.name,
                    "domain": company.domain,
                    "website": company.website,
                    "industry": company.industry,
                    "numberofemployees": _num(company.employees),
                    "annualrevenue": _num(company.annual_revenue),
                    "country": company.country,
                    "hubspot_owner_id": self.owner_of.get(company.owner_rep or ""),
                    "type": COMPANY_TYPE.get(company.customer_type),
                    "lifecyclestage": "customer" if company.customer_type == "customer" else "lead",
                    "segment": company.segment,
                    "application": company.application,
                    "device_type": company.device_type,
                    "process": company.process,
                    "region": company.region,
                    "customer_type": company.customer_type,
                },
                company.created_at,
                company.modified_at,
            )
            self.company_id[company.key] = record.id

    def contacts(self) -> None:
        store = self.store
        by_email = store.tables["contacts"].by_email
        company_names = {c.key: c.name for c in self.world.companies}
        for human in self.world.humans:
            if not human.in_hubspot or (human.email and human.email.lower() in by_email):
                continue
            company_id = self.company_id.get(human.company_key or "")
            props: dict[str, str | None] = {
                # HubSpot refuses malformed addresses, so a contact the world gives one has no email here.
                "email": human.email if human.email and valid_email(human.email) else None,
                "firstname": human.first_name,
                "lastname": human.last_name,
                "jobtitle": human.title,
                "country": human.country,
                "company": company_names.get(human.company_key or ""),
                "lifecyclestage": human.lifecycle_stage
                if human.lifecycle_stage in schema.LIFECYCLE_STAGES
                else None,
                "hs_lead_status": LEAD_STATUS.get(human.lead_status or ""),
                "hubspot_owner_id": self.owner_of.get(human.owner_rep or ""),
                "hs_email_optout": "true" if human.unsubscribed else None,
                "hs_analytics_source": LEAD_SOURCE.get(human.lead_source or ""),
                "associatedcompanyid": str(company_id) if company_id else None,
            }
            in_salesforce = human.key in self.sf.contacts or human.key in self.sf.leads
            if in_salesforce:  # what HubSpot's Salesforce integration keeps on a synced contact
                props.update(
                    {
                        "salesforcecontactid": self.sf.contacts.get(human.key),
                        "salesforceleadid": self.sf.leads.get(human.key),
                        "salesforceaccountid": self.sf.accounts.get(human.company_key or "")
                        if human.key in self.sf.contacts
                        else None,
                        "salesforceownerid": self.sf.users.get(human.owner_rep or ""),
                        "salesforcelastsynctime": _iso(human.modified_at),
                    }
                )
            if human.bounced:
                props.update(
                    {
                        "hs_email_hard_bounce_reason_enum": "UNKNOWN_USER",
                        "hs_email_bad_address": "true",
                        "hs_email_bounce": "1",
                        "hs_email_hard_bounce_reason": "550 5.1.1 The email account does not exist",
                    }
                )
            record = self.add("contacts", props, human.created_at, human.modified_at)
            self.contact_id[human.key] = record.id
            if props["email"]:
                self.email_of[record.id] = props["email"]
            if company_id:
                store.associate("contacts", record.id, "companies", company_id, (1, 279))

    def deals(self) -> None:
        store = self.store
        for deal in self.world.deals:
            if deal.channel != "hubspot":
                continue
            close = datetime.combine(deal.close_date, time(17, 0), UTC)
            modified = close if deal.is_closed else deal.created_at
            record = self.add(
                "deals",
                {
                    "dealname": deal.name,
                    "amount": _num(deal.amount),
                    "pipeline": "default",
                    "dealstage": DEAL_STAGE.get(
                        deal.stage,
                        "closedwon" if deal.is_won else "closedlost" if deal.is_closed else "qualifiedtobuy",
                    ),
                    "closedate": _iso(close),
                    "hubspot_owner_id": self.owner_of.get(deal.owner_rep or ""),
                    "hs_is_closed": "true" if deal.is_closed else "false",
                    "hs_is_closed_won": "true" if deal.is_won else "false",
                    "hs_is_closed_lost": "true" if deal.is_closed and not deal.is_won else "false",
                },
                deal.created_at,
                modified,
            )
            company_id = self.company_id.get(deal.company_key)
            if company_id:
                store.associate("deals", record.id, "companies", company_id, (5, 341))
            for key in deal.contact_keys:
                if key in self.contact_id:
                    store.associate("deals", record.id, "contacts", self.contact_id[key], (3,))

    def form(self, name: str, created_ms: int) -> str:
        guid = _guid("form:" + name)
        if guid not in self.store.forms:
            created = iso_ms(created_ms)
            field_names = (
                ("email", "Email", "email"),
                ("firstname", "First name", "single_line_text"),
                ("lastname", "Last name", "single_line_text"),
                ("company", "Company name", "single_line_text"),
                ("jobtitle", "Job title", "single_line_text"),
            )
            self.store.forms[guid] = {
                "id": guid,
                "name": name,
                "createdAt": created,
                "updatedAt": created,
                "archived": False,
                "formType": "hubspot",
                "fieldGroups": [
                    {
                        "groupType": "default_group",
                        "richTextType": "text",
                        "fields": [
                            {
                                "objectTypeId": "0-1",
                                "name": n,
                                "label": label,
                                "required": n == "email",
                                "hidden": False,
                                "fieldType": kind,
                            }
                        ],
                    }
                    for n, label, kind in field_names
                ],
                "configuration": {
                    "language": "en",
                    "cloneable": True,
                    "editable": True,
                    "archivable": True,
                    "recaptchaEnabled": False,
                    "notifyContactOwner": False,
                    "notifyRecipients": [],
                    "createNewContactForNewEmail": False,
                    "prePopulateKnownValues": True,
                    "allowLinkToResetKnownValues": False,
                    "postSubmitAction": {"type": "thank_you", "value": "Thanks for submitting the form."},
                    "lifecycleStages": [],
                },
                "displayOptions": {
                    "renderRawHtml": False,
                    "theme": "default_style",
                    "submitButtonText": "Submit",
                },
                "legalConsentOptions": {"type": "none"},
            }
            self.store.submissions[guid] = []
        return guid

    def marketing_event(self, campaign: Any) -> str:
        store = self.store
        key = "me:" + campaign.key
        existing = store.marketing_events.get(self._me_ids.get(key, ""))
        if existing is not None:
            return existing["objectId"]
        object_id = str(store.new_id())
        self._me_ids[key] = object_id
        start = datetime.combine(campaign.start_date, time(15, 0), UTC)
        end = start + (
            timedelta(days=3)
            if campaign.type == "trade_show"
            else timedelta(hours=1)
            if campaign.type == "webinar"
            else timedelta(hours=4)
        )
        now = self.world.generated_at
        store.marketing_events[object_id] = {
            "objectId": object_id,
            "externalAccountId": EXTERNAL_ACCOUNT_ID,
            "externalEventId": campaign.key,
            "eventName": campaign.name,
            "eventType": MARKETING_EVENT_TYPES.get(campaign.type, "EVENT"),
            "eventDescription": f"{campaign.topic} ({campaign.breadth} audience)",
            "eventOrganizer": "Marketing",
            "eventUrl": f"https://events.example.com/{campaign.key}",
            "eventCancelled": False,
            "eventCompleted": end < now,
            "eventStatus": "PAST" if end < now else "UPCOMING",
            "startDateTime": _iso(start),
            "endDateTime": _iso(end),
            "createdAt": _iso(start - timedelta(days=30)),
            "updatedAt": _iso(min(end, now)),
            "registrants": 0,
            "attendees": 0,
            "cancellations": 0,
            "noShows": 0,
            "customProperties": [],
            "appInfo": {"id": "1024", "name": "Sandbox events"},
        }
        store.participations[object_id] = []
        return object_id

    def email_campaign(self, campaign_key: str | None) -> int:
        key = campaign_key or "newsletter"
        campaign_id = self._email_ids.get(key)
        if campaign_id is None:
            campaign_id = 300_000_000 + len(self._email_ids) + 1
            self._email_ids[key] = campaign_id
            campaign = self.campaign.get(key)
            name = campaign.name if campaign else "Monthly newsletter"
            self.store.email_campaigns[str(campaign_id)] = {
                "id": campaign_id,
                "appId": 113,
                "appName": "BatchEmail",
                "contentId": campaign_id + 1000,
                "name": name,
                "subject": name,
                "type": "BATCH_EMAIL",
                "lastUpdatedTime": to_ms(self.world.generated_at),
                "counters": {},
            }
        return campaign_id

    def events(self) -> None:
        store = self.store
        self._me_ids: dict[str, str] = {}
        self._conversions = 0
        self._email_ids: dict[str, int] = {}
        web, email, sales = store.web_events, store.email_events, []
        for event in self.world.events:
            if event.channel != "hubspot":
                continue
            contact_id = self.contact_id.get(event.human_key)
            if contact_id is None:
                continue
            kind = event.kind
            ms = int(event.occurred_at.timestamp() * 1000)
            if kind == "page_view":
                n = len(web)
                web.append(
                    (
                        ms,
                        contact_id,
                        f"pv-{event.key}",
                        event.url,
                        _title(event.url),
                        REFERRERS[n % 4],
                        SOURCES[n % 4],
                    )
                )
            elif kind in EMAIL_TYPES:
                recipient = self.email_of.get(contact_id)
                if recipient is None:  # HubSpot sends marketing email only to valid addresses
                    continue
                email.append(
                    (
                        ms,
                        f"ev-{event.key}",
                        recipient,
                        EMAIL_TYPES[kind],
                        self.email_campaign(event.campaign_key),
                        event.url,
                    )
                )
            elif kind in ATTENDANCE and event.campaign_key in self.campaign:
                object_id = self.marketing_event(self.campaign[event.campaign_key])
                state = ATTENDANCE[kind]
                duration = int(event.duration_seconds) if event.duration_seconds else None
                percent = (
                    f"{min(100, round(100 * duration / 3600))}"
                    if duration and kind == "webinar_attended"
                    else None
                )
                store.participations[object_id].append(
                    (contact_id, state, ms, duration, percent, f"mp-{event.key}")
                )
                counters = store.marketing_events[object_id]
                counters["attendees" if state == "ATTENDED" else "registrants"] += 1
                if kind == "webinar_registered":
                    self._submission(event, ms, contact_id)
            elif kind in FORM_KINDS:
                self._submission(event, ms, contact_id)
            elif kind in ("sales_call", "sales_email", "meeting"):
                sales.append((event, ms, contact_id))
        web.sort(key=lambda r: r[0])
        email.sort(key=lambda r: r[0])
        for submissions in store.submissions.values():
            submissions.sort(key=lambda r: -r[0])
        for rows in store.participations.values():
            rows.sort(key=lambda r: r[2])
        for event, _ms, contact_id in sorted(sales, key=lambda s: s[1]):
            self._engagement(event, contact_id)

    def _submission(self, event: Any, ms: int, contact_id: int) -> None:
        asset = self.asset.get(event.asset_key or "")
        name = event.form_name or (asset.form_name if asset else None) or DEFAULT_FORMS[event.kind]
        recipient = self.email_of.get(contact_id)
        if recipient is None:  # HubSpot forms require a valid email address
            return
        guid = self.form(name, ms)
        human = self.human[event.human_key]
        company = self.store.tables["contacts"].records[contact_id].props.get("company")
        values = [
            (n, v)
            for n, v in (
                ("email", recipient),
                ("firstname", human.first_name),
                ("lastname", human.last_name),
                ("company", company),
                ("jobtitle", human.title),
            )
            if v
        ]
        page = event.url or (asset.url if asset else None) or "https://www.example.com/contact"
        self._conversions += 1
        conversion_id = f"{self._conversions:08x}-{_SUBMISSION_TAG}-{ms % 0x1000000000000:012x}"
        self.store.submissions[guid].append((ms, conversion_id, page, values))

    def _engagement(self, event: Any, contact_id: int) -> None:
        store = self.store
        human = self.human[event.human_key]
        owner = self.owner_of.get(human.owner_rep or "")
        when = _iso(event.occurred_at)
        if event.kind == "sales_call":
            object_name, props = (
                "calls",
                {
                    "hs_timestamp": when,
                    "hs_call_title": "Call with " + (human.first_name or "contact"),
                    "hs_call_body": "Discussed requirements and next steps.",
                    "hs_call_direction": "OUTBOUND",
                    "hs_call_status": "COMPLETED",
                    "hs_call_duration": str(int((event.duration_seconds or 600) * 1000)),
                },
            )
        elif event.kind == "sales_email":
            object_name, props = (
                "emails",
                {
                    "hs_timestamp": when,
                    "hs_email_subject": "Following up",
                    "hs_email_direction": "EMAIL",
                    "hs_email_status": "SENT",
                    "hs_email_text": "Thanks for your interest; happy to help.",
                },
            )
        else:
            end = event.occurred_at + timedelta(seconds=event.duration_seconds or 1800)
            object_name, props = (
                "meetings",
                {
                    "hs_timestamp": when,
                    "hs_meeting_title": "Technical review",
                    "hs_meeting_start_time": when,
                    "hs_meeting_end_time": _iso(end),
                    "hs_meeting_outcome": "COMPLETED",
                    "hs_meeting_body": "Reviewed the design requirements.",
                },
            )
        props["hubspot_owner_id"] = owner
        record = self.add(object_name, props, event.occurred_at, event.occurred_at)
        store.associate(
            object_name,
            record.id,
            "contacts",
            contact_id,
            (schema.DEFAULT_ASSOCIATION[(object_name, "contacts")],),
        )
        company = self.company_id.get(human.company_key or "")
        if company:
            store.associate(
                object_name,
                record.id,
                "companies",
                company,
                (schema.DEFAULT_ASSOCIATION[(object_name, "companies")],),
            )


@functools.cache
def _title(url: str | None) -> str:
    if not url:
        return "Home"
    path = url.split("://", 1)[-1].split("/", 1)[-1].strip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    return last.replace("-", " ").replace("_", " ").title() or "Home"


def load_world(store: Store, world: Any) -> None:
    """Fill an empty store from `world` (its HubSpot share)."""
    loader = _Loader(store, world)
    # Millions of small tuples would trigger the cyclic garbage collector over and over; none are cyclic.
    collecting = gc.isenabled()
    gc.disable()
    try:
        loader.owners()
        loader.companies()
        loader.contacts()
        loader.deals()
        loader.events()
    finally:
        if collecting:
            gc.enable()
