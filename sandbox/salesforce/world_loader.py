"""Renders the neutral generated world (`sandbox.world.World`) into the sandbox org's Salesforce
objects: Users from reps; Accounts; Leads and Contacts (a converted Lead points at its Contact);
Opportunities with their contact roles; Campaigns and CampaignMembers; Tasks and Events.

https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_task.htm
https://developer.salesforce.com/docs/atlas.en-us.object_reference.meta/object_reference/sforce_api_objects_campaignmember.htm

Only the world's Salesforce share is rendered (`in_salesforce`, `salesforce_kind`, and events and
deals whose channel is "salesforce"). Marketing-automation activity is logged the way such tools
log it in Salesforce, as completed Tasks whose Subject names the action:
`Form fill: <form>` (with `Request <asset>` for evaluation kits, samples, demos and quotes),
`Download: <asset>`, `Email: Unsubscribed`, `Email: Hard bounce`; the Description carries
`URL:`, `Asset:`, `Asset type:` and `Form:` lines. Sales activity: Tasks `Call: …` (TaskSubtype Call,
CallDurationInSeconds) and `Email: …` (TaskSubtype Email), Events for meetings.
Campaign responses become CampaignMember statuses: Registered, Attended, Visited Booth, Referred.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from leadloop.sandbox.salesforce.org import Org, sf_datetime
from leadloop.sandbox.salesforce.security import STANDARD_USER

_ACCOUNT_TYPES = {
    "prospect": "Prospect",
    "customer": "Customer - Direct",
    "partner": "Technology Partner",
    "distributor": "Distributor",
    "competitor": "Competitor",
}
_CAMPAIGN_TYPES = {
    "webinar": "Webinar",
    "trade_show": "Trade Show",
    "workshop": "Workshop",
    "partner_referral": "Partners",
    "email": "Email",
}
# The CampaignMember status each campaign response leaves, and how far along it is.
_MEMBER_STATUS = {
    "webinar_registered": ("Registered", 1),
    "webinar_attended": ("Attended", 3),
    "trade_show_scan": ("Visited Booth", 3),
    "workshop_attended": ("Attended", 3),
    "partner_referral": ("Referred", 2),
}
_STAGE_PROBABILITY = {
    "Prospecting": 10.0,
    "Qualification": 10.0,
    "Needs Analysis": 20.0,
    "Value Proposition": 50.0,
    "Id. Decision Makers": 60.0,
    "Perception Analysis": 70.0,
    "Proposal/Price Quote": 75.0,
    "Negotiation/Review": 90.0,
    "Closed Won": 100.0,
    "Closed Lost": 0.0,
}
_REQUEST_KINDS = {"eval_kit_request", "sample_request", "demo_request", "contact_sales"}
NOT_PROVIDED = "[not provided]"  # what Salesforce's web-to-lead writes into a missing required field


def _stamp(value: datetime) -> str:
    return sf_datetime(value)


def _day(value: date) -> str:
    return value.isoformat()


def load_world(org: Org, world: Any) -> None:
    """Add the world's Salesforce share to the org (normally an empty one)."""
    _Loader(org, world).run()


class _Loader:
    def __init__(self, org: Org, world: Any) -> None:
        self.org = org
        self.world = world
        self.users: dict[str, str] = {}
        self.accounts: dict[str, str] = {}
        self.people: dict[str, tuple[str, str]] = {}  # human key -> (object, id) of the live record
        self.converted_leads: dict[str, str] = {}  # human key -> id of the converted Lead
        self.account_of: dict[str, str | None] = {}
        self.campaigns: dict[str, str] = {}
        self.assets = {asset.key: asset for asset in world.assets}
        self.companies = {company.key: company for company in world.companies}
        self.humans = {human.key: human for human in world.humans}
        self.origin = world.generated_at - timedelta(days=3 * 365)

    def owner(self, rep_key: str | None) -> str:
        return self.users.get(rep_key or "", self.org.api_user_id)

    def run(self) -> None:
        self.load_users()
        self.load_accounts()
        opportunities = self.load_people_and_opportunities()
        self.load_campaigns()
        self.load_events(opportunities)

    def load_users(self) -> None:
        rows = []
        stamp = _stamp(self.origin)
        for rep in self.world.reps:
            record_id = self.org.new_id("User")
            self.users[rep.key] = record_id
            rows.append(
                {
                    "Id": record_id,
                    "Username": rep.email,
                    "FirstName": rep.first_name,
                    "LastName": rep.last_name,
                    "Email": rep.email,
                    "IsActive": rep.active,
                    "Alias": (rep.first_name[:1] + rep.last_name[:4]).lower(),
                    "TimeZoneSidKey": rep.time_zone,
                    "Title": "Account Executive",
                    "Department": "Sales",
                    "Region__c": rep.region,
                    "ProfileId": self.org.profiles.get(STANDARD_USER),
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                }
            )
        self.org.load_rows("User", rows)

    def load_accounts(self) -> None:
        rows = []
        for company in self.world.companies:
            if not company.in_salesforce:
                continue
            record_id = self.org.new_id("Account")
            self.accounts[company.key] = record_id
            modified = _stamp(company.modified_at)
            row = {
                "Id": record_id,
                "Name": company.name,
                "Website": company.website,
                "Industry": company.industry,
                "Type": _ACCOUNT_TYPES.get(company.customer_type, "Other"),
                "BillingCountry": company.country,
                "NumberOfEmployees": company.employees,
                "AnnualRevenue": company.annual_revenue,
                "OwnerId": self.owner(company.owner_rep),
                "Application_Segment__c": company.segment,
                "Application__c": company.application,
                "Device_Type__c": company.device_type,
                "Process_Node__c": company.process,
                "Region__c": company.region,
                "CreatedDate": _stamp(company.created_at),
                "LastModifiedDate": modified,
                "SystemModstamp": modified,
            }
            rows.append({key: value for key, value in row.items() if value is not None})
        self.org.load_rows("Account", rows)

    def load_people_and_opportunities(self) -> dict[str, str]:
        """Leads, Contacts, Opportunities and contact roles; returns deal key -> Opportunity id."""
        deals_by_human: dict[str, Any] = {}
        for deal in self.world.deals:
            if deal.channel == "salesforce" and deal.contact_keys:
                deals_by_human.setdefault(deal.contact_keys[0], deal)
        leads: list[dict[str, Any]] = []
        contacts: list[dict[str, Any]] = []
        conversions: list[tuple[dict[str, Any], Any]] = []
        for human in self.world.humans:
            if human.salesforce_kind is None:
                continue
            company = self.companies.get(human.company_key or "")
            common = {
                "FirstName": human.first_name,
                "LastName": human.last_name or NOT_PROVIDED,
                "Title": human.title,
                "Email": human.email,
                "LeadSource": human.lead_source,
                "HasOptedOutOfEmail": human.unsubscribed,
                "OwnerId": self.owner(human.owner_rep),
                "Partner_Owned__c": human.partner_owned,
            }
            if human.bounced:
                common["EmailBouncedReason"] = (
                    f"550 5.1.1 <{human.email}>: Recipient address rejected: User unknown"
                )
                common["EmailBouncedDate"] = _stamp(human.modified_at)
            lead_fields = {
                "Company": company.name if company else NOT_PROVIDED,
                "Country": human.country,
                "Industry": company.industry if company else None,
                "Website": company.website if company else None,
                "NumberOfEmployees": company.employees if company else None,
                "Status": human.lead_status or "Open - Not Contacted",
            }
            if human.salesforce_kind == "lead":
                record_id = self.org.new_id("Lead")
                self.people[human.key] = ("Lead", record_id)
                modified = _stamp(human.modified_at)
                leads.append(
                    _clean(
                        {
                            "Id": record_id,
                            **common,
                            **lead_fields,
                            "CreatedDate": _stamp(human.created_at),
                            "LastModifiedDate": modified,
                            "SystemModstamp": modified,
                        }
                    )
                )
                continue
            record_id = self.org.new_id("Contact")
            account_id = self.accounts.get(human.company_key or "")
            self.people[human.key] = ("Contact", record_id)
            self.account_of[human.key] = account_id
            created = human.created_at
            deal = deals_by_human.get(human.key)
            if human.converted:
                converted_at = deal.created_at if deal else human.modified_at
                lead_id = self.org.new_id("Lead")
                self.converted_leads[human.key] = lead_id
                lead = _clean(
                    {
                        "Id": lead_id,
                        **common,
                        **lead_fields,
                        "Status": "Closed - Converted",
                        "IsConverted": True,
                        "ConvertedDate": _day(converted_at.date()),
                        "ConvertedContactId": record_id,
                        "ConvertedAccountId": account_id,
                        "CreatedDate": _stamp(created),
                        "LastModifiedDate": _stamp(converted_at),
                        "SystemModstamp": _stamp(converted_at),
                    }
                )
                leads.append(lead)
                conversions.append((lead, deal))
                created = converted_at
            modified = _stamp(max(human.modified_at, created))
            contacts.append(
                _clean(
                    {
                        "Id": record_id,
                        **common,
                        "AccountId": account_id,
                        "Department": human.department,
                        "MailingCountry": human.country,
                        "CreatedDate": _stamp(created),
                        "LastModifiedDate": modified,
                        "SystemModstamp": modified,
                    }
                )
            )
        self.org.load_rows("Contact", contacts)
        opportunities = self.load_opportunities()
        for lead, deal in conversions:
            if deal is not None and deal.key in opportunities:
                lead["ConvertedOpportunityId"] = opportunities[deal.key]
        self.org.load_rows("Lead", leads)
        return opportunities

    def load_opportunities(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        rows: list[dict[str, Any]] = []
        roles: list[dict[str, Any]] = []
        now = self.world.generated_at
        for deal in self.world.deals:
            if deal.channel != "salesforce":
                continue
            record_id = self.org.new_id("Opportunity")
            ids[deal.key] = record_id
            if deal.is_closed:
                closed_at = datetime.combine(deal.close_date, datetime.min.time(), UTC) + timedelta(hours=17)
                modified = min(now, max(deal.created_at, closed_at))
            else:
                modified = deal.created_at
            rows.append(
                _clean(
                    {
                        "Id": record_id,
                        "AccountId": self.accounts.get(deal.company_key),
                        "Name": deal.name,
                        "StageName": deal.stage,
                        "Amount": deal.amount,
                        "CloseDate": _day(deal.close_date),
                        "Probability": _STAGE_PROBABILITY.get(deal.stage),
                        "OwnerId": self.owner(deal.owner_rep),
                        "Type": "New Customer",
                        "CreatedDate": _stamp(deal.created_at),
                        "LastModifiedDate": _stamp(modified),
                        "SystemModstamp": _stamp(modified),
                    }
                )
            )
            primary = True
            for human_key in deal.contact_keys:
                person = self.people.get(human_key)
                if person is None or person[0] != "Contact":
                    continue
                department = (self.humans[human_key].department or "").lower()
                role = (
                    "Economic Buyer"
                    if "purchas" in department or "procure" in department
                    else "Technical Buyer"
                    if "engineer" in department or "r&d" in department
                    else "Evaluator"
                )
                stamp = _stamp(deal.created_at)
                roles.append(
                    {
                        "Id": self.org.new_id("OpportunityContactRole"),
                        "OpportunityId": record_id,
                        "ContactId": person[1],
                        "Role": role,
                        "IsPrimary": primary,
                        "CreatedDate": stamp,
                        "LastModifiedDate": stamp,
                        "SystemModstamp": stamp,
                    }
                )
                primary = False
        self.org.load_rows("Opportunity", rows)
        self.org.load_rows("OpportunityContactRole", roles)
        return ids

    def load_campaigns(self) -> None:
        rows = []
        today = self.world.generated_at.date()
        for campaign in self.world.campaigns:
            record_id = self.org.new_id("Campaign")
            self.campaigns[campaign.key] = record_id
            created = datetime.combine(campaign.start_date, datetime.min.time(), UTC) - timedelta(days=30)
            created = min(created, self.world.generated_at)
            stamp = _stamp(created)
            rows.append(
                {
                    "Id": record_id,
                    "Name": campaign.name,
                    "Type": _CAMPAIGN_TYPES.get(campaign.type, "Other"),
                    "Status": "Completed" if campaign.start_date < today else "Planned",
                    "StartDate": _day(campaign.start_date),
                    "EndDate": _day(campaign.start_date),
                    "IsActive": campaign.start_date >= today - timedelta(days=90),
                    "Description": campaign.topic,
                    "Topic__c": campaign.topic,
                    "Audience_Breadth__c": campaign.breadth,
                    "OwnerId": self.org.api_user_id,
                    "CreatedDate": stamp,
                    "LastModifiedDate": stamp,
                    "SystemModstamp": stamp,
                }
            )
        self.org.load_rows("Campaign", rows)

    def load_events(self, opportunities: dict[str, str]) -> None:
        members: dict[tuple[str, str], dict[str, Any]] = {}
        progress: dict[tuple[str, str], int] = {}
        tasks: list[dict[str, Any]] = []
        meetings: list[dict[str, Any]] = []
        for event in self.world.events:
            if event.channel != "salesforce":
                continue
            person = self.people.get(event.human_key)
            if person is None:
                continue
            human = self.humans[event.human_key]
            stamp = _stamp(event.occurred_at)
            if event.kind in _MEMBER_STATUS and event.campaign_key in self.campaigns:
                key = (event.campaign_key, event.human_key)
                status, rank = _MEMBER_STATUS[event.kind]
                member = members.get(key)
                if member is None:
                    member = {
                        "Id": "",
                        "CampaignId": self.campaigns[event.campaign_key],
                        "CreatedDate": stamp,
                    }
                    if person[0] == "Contact":
                        member["ContactId"] = person[1]
                        if event.human_key in self.converted_leads:
                            member["LeadId"] = self.converted_leads[event.human_key]
                    else:
                        member["LeadId"] = person[1]
                    members[key] = member
                    progress[key] = 0
                if rank >= progress[key]:
                    member["Status"] = status
                    progress[key] = rank
                if rank >= 2 and "FirstRespondedDate" not in member:
                    member["FirstRespondedDate"] = stamp[:10]
                member["LastModifiedDate"] = member["SystemModstamp"] = max(
                    stamp, member.get("SystemModstamp", "")
                )
                continue
            base = {
                "WhoId": person[1],
                "OwnerId": self.owner(human.owner_rep),
                "CreatedDate": stamp,
                "LastModifiedDate": stamp,
                "SystemModstamp": stamp,
            }
            account_id = self.account_of.get(event.human_key) if person[0] == "Contact" else None
            if account_id:
                base["WhatId"] = account_id
            if event.kind == "meeting":
                minutes = max(15, round((event.duration_seconds or 1800) / 60))
                end = event.occurred_at + timedelta(minutes=minutes)
                meetings.append(
                    {
                        "Id": self.org.new_id("Event"),
                        **base,
                        "Subject": "Meeting: product review",
                        "Type": "Meeting",
                        "StartDateTime": stamp,
                        "EndDateTime": _stamp(end),
                        "DurationInMinutes": minutes,
                        "Description": self.description(event),
                    }
                )
                continue
            tasks.append(_clean({"Id": self.org.new_id("Task"), **base, **self.task_fields(event)}))
        member_rows = []
        for member in members.values():
            member["Id"] = self.org.new_id("CampaignMember")
            member_rows.append(member)
        self.org.load_rows("CampaignMember", member_rows)
        self.org.load_rows("Task", tasks)
        self.org.load_rows("Event", meetings)

    def task_fields(self, event: Any) -> dict[str, Any]:
        asset = self.assets.get(event.asset_key or "")
        asset_name = asset.name if asset else None
        day = event.occurred_at.date().isoformat()
        fields: dict[str, Any] = {
            "Status": "Completed",
            "Priority": "Normal",
            "ActivityDate": day,
            "Description": self.description(event),
            "Type": "Other",
        }
        kind = event.kind
        if kind == "sales_call":
            fields.update(
                Subject="Call: follow-up",
                Type="Call",
                TaskSubtype="Call",
                CallDurationInSeconds=round(event.duration_seconds or 0) or None,
            )
        elif kind == "sales_email":
            fields.update(Subject="Email: follow-up", Type="Email", TaskSubtype="Email")
        elif kind == "unsubscribe":
            fields.update(Subject="Email: Unsubscribed", Type="Email")
        elif kind == "hard_bounce":
            fields.update(Subject="Email: Hard bounce", Type="Email")
        elif kind in _REQUEST_KINDS:
            wanted = {"demo_request": "a demo", "contact_sales": "a call from sales"}.get(
                kind, asset_name or "samples"
            )
            fields["Subject"] = f"Form fill: Request {wanted}"
        elif kind == "asset_download":
            fields["Subject"] = f"Download: {asset_name or event.form_name or 'content'}"
        elif kind == "form_fill":
            fields["Subject"] = f"Form fill: {event.form_name or asset_name or 'web form'}"
        else:
            fields["Subject"] = (
                f"{kind.replace('_', ' ').capitalize()}: {asset_name or event.form_name or ''}".strip()
            )
        return fields

    def description(self, event: Any) -> str:
        asset = self.assets.get(event.asset_key or "")
        lines = []
        if event.url:
            lines.append(f"URL: {event.url}")
        if asset:
            lines.append(f"Asset: {asset.name}")
            lines.append(f"Asset type: {asset.type}")
        if event.form_name:
            lines.append(f"Form: {event.form_name}")
        if event.duration_seconds:
            lines.append(f"Duration (s): {round(event.duration_seconds)}")
        return "\n".join(lines)


def _clean(row: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in row.items() if value is not None}
