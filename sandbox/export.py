"""The sandbox world as leadloop's canonical dataset (the JSON format of `crm/dataset.py`: accounts,
people, activities, opportunities, campaigns, assets), for `leadloop sandbox export`.

Plain dicts with the same keys as the canonical records; the sandbox imports nothing of the project.
Ids are the world's keys (`p-000001`, `co-00001`…); owners are reps' emails. When the backends say
which CRM id each world key got, those fill `salesforce_*_id` / `hubspot_id`. Planted problems stay
in (invalid emails, duplicates): the dataset loader reports what it cannot load. Whether a lead was
converted is in `attributes.converted`, with the Salesforce lead status and CRM presence.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from leadloop.sandbox.world import REGIONS, World

_COUNTRY_REGION = {country: region for region, pairs in REGIONS.items() for country, _ in pairs}
# Which CRM ids the backends may report (world key → CRM id), by kind.
ID_KINDS = ("salesforce_account", "salesforce_lead", "salesforce_contact", "salesforce_opportunity",
            "hubspot_company", "hubspot_contact", "hubspot_deal")


def _iso(value: datetime | date | None) -> str | None:
    return value.isoformat() if value is not None else None


def world_to_dataset(world: World, crm_ids: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """The canonical dataset dict of `world`; `crm_ids` maps an `ID_KINDS` name to {world key: CRM id}."""
    ids = {kind: (crm_ids or {}).get(kind, {}) for kind in ID_KINDS}
    rep_email = {rep.key: rep.email for rep in world.reps}
    companies = {c.key: c for c in world.companies}
    campaign_names = {c.key: c.name for c in world.campaigns}

    accounts = [{
        "id": c.key, "name": c.name, "website": c.website, "domain": c.domain, "industry": c.industry,
        "segment": c.segment, "application": c.application, "device_type": c.device_type,
        "process": c.process, "region": c.region, "country": c.country, "employees": c.employees,
        "annual_revenue": c.annual_revenue, "customer_type": c.customer_type,
        "owner_id": rep_email.get(c.owner_rep or ""), "salesforce_id": ids["salesforce_account"].get(c.key),
        "hubspot_id": ids["hubspot_company"].get(c.key), "updated_at": _iso(c.modified_at),
    } for c in world.companies]

    people = []
    for h in world.humans:
        company = companies.get(h.company_key or "")
        attributes = {"in_salesforce": h.salesforce_kind or "no", "in_hubspot": str(h.in_hubspot).lower(),
                      "converted": str(h.converted).lower()}
        if h.lead_status:
            attributes["lead_status"] = h.lead_status
        people.append({
            "id": h.key, "email": h.email, "first_name": h.first_name, "last_name": h.last_name,
            "title": h.title, "department": h.department, "country": h.country,
            "region": (company.region if company else None) or _COUNTRY_REGION.get(h.country or ""),
            "account_id": h.company_key, "company_name": company.name if company else None,
            "lead_source": h.lead_source, "lifecycle_status": h.lifecycle_stage or h.lead_status,
            "owner_id": rep_email.get(h.owner_rep or ""), "unsubscribed": h.unsubscribed,
            "bounced": h.bounced, "partner_owned": h.partner_owned,
            "salesforce_lead_id": ids["salesforce_lead"].get(h.key),
            "salesforce_contact_id": ids["salesforce_contact"].get(h.key),
            "hubspot_id": ids["hubspot_contact"].get(h.key), "attributes": attributes,
            "created_at": _iso(h.created_at), "updated_at": _iso(h.modified_at),
        })

    activities = [{
        "id": e.key, "person_id": e.human_key, "kind": e.kind, "occurred_at": _iso(e.occurred_at),
        "url": e.url, "form_name": e.form_name, "campaign_id": e.campaign_key,
        "campaign_name": campaign_names.get(e.campaign_key or ""), "asset_id": e.asset_key,
        "duration_seconds": e.duration_seconds, "source": e.channel,
    } for e in world.events]

    opportunities = [{
        "id": d.key, "account_id": d.company_key, "name": d.name, "stage": d.stage, "is_closed": d.is_closed,
        "is_won": d.is_won, "amount": d.amount, "close_date": _iso(d.close_date),
        "created_at": _iso(d.created_at), "owner_id": rep_email.get(d.owner_rep or ""),
        "contact_ids": list(d.contact_keys), "salesforce_id": ids["salesforce_opportunity"].get(d.key),
        "hubspot_id": ids["hubspot_deal"].get(d.key),
    } for d in world.deals]

    campaigns = [{"id": c.key, "name": c.name, "type": c.type, "topic": c.topic,
                  "start_date": _iso(c.start_date)} for c in world.campaigns]
    assets = [{"id": a.key, "name": a.name, "type": a.type, "product_family": a.product_family,
               "segment": a.segment, "stage": a.stage, "url": a.url} for a in world.assets]

    return {
        "description": f"leadloop sandbox world, size {world.size}, seed {world.seed}",
        "generated_at": _iso(world.generated_at),
        "accounts": accounts, "people": people, "activities": activities,
        "opportunities": opportunities, "campaigns": campaigns, "assets": assets,
    }
