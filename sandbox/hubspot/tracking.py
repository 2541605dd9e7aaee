"""Activity that only HubSpot itself records, so no third-party API creates it: page views (HubSpot's
tracking code on the customer's website) and marketing email events (HubSpot's own email sending:
opens, clicks, hard bounces, unsubscribes from all email). The sandbox admin API records them
(`POST /_sandbox/hubspot/page-views`, `POST /_sandbox/hubspot/email-events`, loopback only), so that
tests and demos can make every activity leadloop scores; they are then read through HubSpot's APIs
(`GET /events/v3/events/`, `GET /email/public/v1/events`) like the seeded ones.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.activity import EMAIL_APP_ID, EMAIL_APP_NAME
from leadloop.sandbox.hubspot.errors import json_response
from leadloop.sandbox.hubspot.portal import Portal
from leadloop.sandbox.hubspot.store import Record, Store, iso_ms, parse_datetime_ms

EMAIL_TYPES = ("OPEN", "CLICK", "BOUNCE", "STATUSCHANGE")
SOURCES = (
    "ORGANIC_SEARCH",
    "PAID_SEARCH",
    "EMAIL_MARKETING",
    "SOCIAL_MEDIA",
    "REFERRALS",
    "OTHER_CAMPAIGNS",
    "DIRECT_TRAFFIC",
    "OFFLINE",
    "PAID_SOCIAL",
)
SANDBOX_EMAIL = "Sandbox email"


def log_page_view(
    store: Store,
    contact: Record,
    url: str,
    when: int,
    *,
    title: str | None = None,
    referrer: str = "",
    source: str = "DIRECT_TRAFFIC",
) -> str:
    event_id = f"pv-{uuid.uuid4()}"
    page_title = title or url.rstrip("/").rsplit("/", 1)[-1].replace("-", " ").title() or "Home"
    store.add_web_event((when, contact.id, event_id, url, page_title, referrer, source))
    return event_id


def email_campaign(store: Store, campaign_id: Any) -> int:
    """An existing email campaign's id, or (None) the sandbox's own campaign, made on first use."""
    if campaign_id is not None:
        if str(campaign_id) not in store.email_campaigns:
            raise LookupError(f"email campaign {campaign_id} does not exist")
        return int(campaign_id)
    for campaign in store.email_campaigns.values():
        if campaign["name"] == SANDBOX_EMAIL:
            return int(campaign["id"])
    new_id = 300_000_000 + len(store.email_campaigns) + 1
    while str(new_id) in store.email_campaigns:
        new_id += 1
    store.email_campaigns[str(new_id)] = {
        "id": new_id,
        "appId": EMAIL_APP_ID,
        "appName": EMAIL_APP_NAME,
        "contentId": new_id + 1000,
        "name": SANDBOX_EMAIL,
        "subject": SANDBOX_EMAIL,
        "type": "BATCH_EMAIL",
        "lastUpdatedTime": store.now_ms(),
        "counters": {},
    }
    return new_id


def log_email_event(
    store: Store,
    recipient: str,
    kind: str,
    when: int,
    *,
    campaign_id: int | None,
    url: str | None = None,
    detail: dict[str, Any] | None = None,
) -> str:
    event_id = str(uuid.uuid4())
    store.add_email_event((when, event_id, recipient, kind, campaign_id, url, detail))
    return event_id


def log_unsubscribe(store: Store, recipient: str, subscription_id: str) -> str:
    """A recipient unsubscribed from one subscription type (not from all email)."""
    detail = {
        "source": "SOURCE_HUBSPOT_CUSTOMER",
        "portalSubscriptionStatus": "SUBSCRIBED",
        "subscriptions": [{"id": int(subscription_id), "status": "UNSUBSCRIBED"}],
    }
    return log_email_event(store, recipient, "STATUSCHANGE", store.now_ms(), campaign_id=None, detail=detail)


# What HubSpot writes on the contact when its own email sending sees these events.
_CONTACT_EFFECTS = {
    "BOUNCE": {
        "hs_email_hard_bounce_reason_enum": "UNKNOWN_USER",
        "hs_email_bad_address": "true",
        "hs_email_hard_bounce_reason": "550 5.1.1 The email account does not exist",
    },
    "STATUSCHANGE": {"hs_email_optout": "true"},
}


def _bad(message: str, status: int = 400) -> Response:
    return json_response({"error": message}, status)


def _contact(store: Store, body: dict[str, Any]) -> Record | None:
    if body.get("contactId") is not None:
        return store.get("contacts", body["contactId"])
    email = body.get("email") or body.get("recipient")
    return store.find_by("contacts", "email", str(email)) if email else None


def _when(store: Store, body: dict[str, Any]) -> int | None:
    raw = body.get("occurredAt")
    return store.now_ms() if raw in (None, "") else parse_datetime_ms(raw)


async def _body(request: Request) -> dict[str, Any] | None:
    try:
        body = await request.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def admin_router(portal: Portal) -> APIRouter:
    """Mounted by the core under `/_sandbox/hubspot` (sandbox.contract: `admin_router`)."""
    router = APIRouter()

    @router.post("/page-views")
    async def page_view(request: Request) -> Response:
        """{"contactId" or "email", "url", optional "title", "referrer", "source", "occurredAt"}."""
        store = portal.store
        body = await _body(request)
        if body is None or not isinstance(body.get("url"), str) or not body["url"]:
            return _bad('the body must be {"email" or "contactId", "url", ...}')
        contact = _contact(store, body)
        if contact is None:
            return _bad("no such contact: page views are recorded for a contact (email or contactId)", 404)
        when = _when(store, body)
        if when is None:
            return _bad("occurredAt must be an ISO-8601 datetime or epoch milliseconds")
        source = str(body.get("source") or "DIRECT_TRAFFIC")
        if source not in SOURCES:
            return _bad(f"source must be one of {', '.join(SOURCES)}")
        event_id = log_page_view(
            store,
            contact,
            body["url"],
            when,
            title=body.get("title"),
            referrer=str(body.get("referrer") or ""),
            source=source,
        )
        return json_response(
            {
                "id": event_id,
                "objectId": str(contact.id),
                "eventType": "e_visited_page",
                "occurredAt": iso_ms(when),
            },
            201,
        )

    @router.post("/email-events")
    async def email_event(request: Request) -> Response:
        """{"email", "type" (OPEN, CLICK, BOUNCE, STATUSCHANGE), optional "url" (CLICK), "campaignId",
        "occurredAt"}. BOUNCE (hard) and STATUSCHANGE (unsubscribed from all email) also change the
        contact, as HubSpot does."""
        store = portal.store
        body = await _body(request)
        kind = str((body or {}).get("type") or "").upper()
        if body is None or kind not in EMAIL_TYPES:
            return _bad(f'the body must be {{"email", "type": one of {", ".join(EMAIL_TYPES)}, ...}}')
        contact = _contact(store, body)
        if contact is None or not contact.props.get("email"):
            return _bad("no such contact: marketing email goes to a contact's email address", 404)
        if kind == "CLICK" and not body.get("url"):
            return _bad("a CLICK needs the url clicked")
        when = _when(store, body)
        if when is None:
            return _bad("occurredAt must be an ISO-8601 datetime or epoch milliseconds")
        try:
            campaign = email_campaign(store, body.get("campaignId"))
        except LookupError as missing:
            return _bad(str(missing), 404)
        event_id = log_email_event(
            store,
            contact.props["email"],
            kind,
            when,
            campaign_id=campaign,
            url=body.get("url") if kind == "CLICK" else None,
        )
        if kind in _CONTACT_EFFECTS:
            store.update("contacts", contact, _CONTACT_EFFECTS[kind], portal.lag())
        return json_response(
            {
                "id": event_id,
                "type": kind,
                "recipient": contact.props["email"],
                "emailCampaignId": campaign,
                "created": when,
            },
            201,
        )

    return router
