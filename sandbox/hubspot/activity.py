"""The activity sources leadloop's intent rules read, each through the HubSpot API that documents it:

- form submissions: `GET /form-integrations/v1/submissions/forms/{formGuid}` (newest first, ≤ 50 a page),
  https://developers.hubspot.com/docs/api-reference/legacy/forms-v1/submissions/get-form-integrations-v1-submissions-forms-form_guid
  and the forms they belong to: `GET /marketing/v3/forms/`,
  https://developers.hubspot.com/docs/api-reference/legacy/marketing/forms/get-forms
- page views: `GET /events/v3/events/` with `eventType=e_visited_page`, `occurredAfter`, `occurredBefore`,
  https://developers.hubspot.com/docs/guides/api/analytics-and-events/event-analytics
- marketing email engagement: `GET /email/public/v1/events` (`startTimestamp`, `endTimestamp`, `offset`),
  https://developers.hubspot.com/docs/api-reference/legacy/email-analytics-v1/guide
- marketing event attendance: `GET /marketing/v3/marketing-events/` and the participant-state breakdowns
  `GET /marketing/v3/marketing-events/participations/{marketingEventId}/breakdown`,
  https://developers.hubspot.com/docs/api-reference/legacy/marketing/marketing-events/participant-state/get-breakdown-externalId
"""

from __future__ import annotations

import bisect
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.errors import json_response, not_found, validation_error
from leadloop.sandbox.hubspot.portal import Portal, query_int, query_list
from leadloop.sandbox.hubspot.store import Store, iso_ms, parse_datetime_ms

PORTAL_ID = 1000001
EMAIL_APP_ID, EMAIL_APP_NAME = 113, "BatchEmail"
# Positions in the compact tuples the store keeps (a large world holds millions of activities).
W_MS, W_CONTACT, W_ID, W_URL, W_TITLE, W_REFERRER, W_SOURCE = range(7)
E_MS, E_ID, E_RECIPIENT, E_TYPE, E_CAMPAIGN, E_URL = range(6)
E_DETAIL = 6  # optional: fields that replace the rendered defaults (a subscription change's source)
S_MS, S_ID, S_PAGE, S_VALUES = range(4)
P_CONTACT, P_STATE, P_MS, P_DURATION, P_PERCENT, P_ID = range(6)


def _cursor(raw: str | None) -> int:
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise validation_error(f"Invalid paging cursor: {raw}") from None
    if value < 0:
        raise validation_error(f"Invalid paging cursor: {raw}")
    return value


def _time_param(request: Request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    ms = parse_datetime_ms(raw)
    if ms is None:
        raise validation_error(f"{name} must be an ISO-8601 datetime or epoch milliseconds, was {raw!r}")
    return ms


def _paging(portal: Portal, request: Request, after: int | None) -> dict[str, Any]:
    if after is None:
        return {}
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"] + [("after", str(after))]
    query = "&".join(f"{k}={v}" for k, v in params)
    return {
        "paging": {"next": {"after": str(after), "link": f"{portal.ctx.base_url}{request.url.path}?{query}"}}
    }


def render_web_event(row: Any) -> dict[str, Any]:
    return {
        "objectType": "CONTACT",
        "objectId": str(row[W_CONTACT]),
        "eventType": "e_visited_page",
        "occurredAt": iso_ms(row[W_MS]),
        "id": row[W_ID],
        "properties": {
            "hs_url": row[W_URL],
            "hs_title": row[W_TITLE],
            "hs_referrer": row[W_REFERRER],
            "hs_session_source": row[W_SOURCE],
            "hs_page_content_type": "STANDARD_PAGE",
        },
    }


def render_email_event(row: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "appId": EMAIL_APP_ID,
        "appName": EMAIL_APP_NAME,
        "created": row[E_MS],
        "emailCampaignId": row[E_CAMPAIGN],
        "id": row[E_ID],
        "portalId": PORTAL_ID,
        "recipient": row[E_RECIPIENT],
        "type": row[E_TYPE],
        "filteredEvent": False,
        "sentBy": {"id": f"{row[E_CAMPAIGN]}-send", "created": row[E_MS]},
    }
    if row[E_CAMPAIGN] is None:  # a subscription change made outside any email
        del event["emailCampaignId"], event["sentBy"]
    kind = row[E_TYPE]
    if kind == "CLICK":
        event["url"] = row[E_URL]
    if kind in ("OPEN", "CLICK"):
        event["browser"] = {
            "name": "Microsoft Outlook 16",
            "family": "Microsoft Outlook",
            "type": "Email Client",
        }
        event["deviceType"] = "COMPUTER"
    if kind == "BOUNCE":
        event.update(
            {
                "category": "HARD_BOUNCE",
                "status": "5.1.1",
                "response": "550 5.1.1 The email account that you tried to reach does not exist.",
            }
        )
    if kind == "STATUSCHANGE":
        event.update(
            {
                "source": "SOURCE_RECIPIENT",
                "portalSubscriptionStatus": "UNSUBSCRIBED",
                "subscriptions": [{"id": 1, "status": "UNSUBSCRIBED"}],
            }
        )
    if len(row) > E_DETAIL and row[E_DETAIL]:
        event.update(row[E_DETAIL])
    return event


def render_participation(store: Store, event: dict[str, Any], row: Any) -> dict[str, Any]:
    contact = store.tables["contacts"].records.get(row[P_CONTACT])
    props = contact.props if contact is not None else {}
    properties: dict[str, Any] = {"attendanceState": row[P_STATE], "occurredAt": row[P_MS]}
    if row[P_DURATION] is not None:
        properties["attendanceDurationSeconds"] = row[P_DURATION]
    if row[P_PERCENT] is not None:
        properties["attendancePercentage"] = row[P_PERCENT]
    return {
        "associations": {
            "contact": {
                "contactId": str(row[P_CONTACT]),
                "email": props.get("email"),
                "firstname": props.get("firstname"),
                "lastname": props.get("lastname"),
            },
            "marketingEvent": {
                "marketingEventId": event["objectId"],
                "name": event["eventName"],
                "externalAccountId": event["externalAccountId"],
                "externalEventId": event["externalEventId"],
            },
        },
        "createdAt": iso_ms(row[P_MS]),
        "id": row[P_ID],
        "properties": properties,
    }


def _participation_page(portal: Portal, request: Request, rows: list[tuple[dict[str, Any], Any]]) -> Response:
    state = (request.query_params.get("state") or "").upper()
    if state:
        rows = [r for r in rows if r[1][P_STATE] == state]
    limit = query_int(request, "limit", 10, 100)
    after = _cursor(request.query_params.get("after"))
    page = rows[after : after + limit]
    body: dict[str, Any] = {
        "total": len(rows),
        "results": [render_participation(portal.store, event, row) for event, row in page],
    }
    body.update(_paging(portal, request, after + limit if after + limit < len(rows) else None))
    portal.read("GET /marketing/v3/marketing-events/participations", len(page))
    return json_response(body)


def add_routes(router: APIRouter, portal: Portal) -> None:
    # ---- forms and their submissions ------------------------------------------------------------
    @router.get("/marketing/v3/forms")
    @router.get("/marketing/v3/forms/")
    async def list_forms(request: Request) -> Response:
        archived = (request.query_params.get("archived") or "false").lower() == "true"
        types = set(query_list(request, "formTypes")) or {"hubspot"}
        forms = [
            f
            for f in portal.store.forms.values()
            if f["archived"] == archived and (f["formType"] in types or "all" in types)
        ]
        limit = query_int(request, "limit", 20, 500)
        after = _cursor(request.query_params.get("after"))
        body: dict[str, Any] = {"results": forms[after : after + limit]}
        body.update(_paging(portal, request, after + limit if after + limit < len(forms) else None))
        return json_response(body)

    @router.get("/marketing/v3/forms/{form_id}")
    async def get_form(form_id: str) -> Response:
        form = portal.store.forms.get(form_id)
        if form is None:
            raise not_found(f"Form {form_id} not found", ids=[form_id])
        return json_response(form)

    @router.get("/form-integrations/v1/submissions/forms/{form_guid}")
    async def list_submissions(request: Request, form_guid: str) -> Response:
        store = portal.store
        if form_guid not in store.forms:
            raise not_found(f"Form {form_guid} not found", ids=[form_guid])
        rows = store.submissions.get(form_guid, [])
        limit = query_int(request, "limit", 20, 50)
        after = _cursor(request.query_params.get("after"))
        page = rows[after : after + limit]
        body: dict[str, Any] = {
            "results": [
                {
                    "conversionId": row[S_ID],
                    "submittedAt": row[S_MS],
                    "pageUrl": row[S_PAGE],
                    "values": [{"name": n, "value": v, "objectTypeId": "0-1"} for n, v in row[S_VALUES]],
                }
                for row in page
            ]
        }
        body.update(_paging(portal, request, after + limit if after + limit < len(rows) else None))
        portal.read("GET /form-integrations/v1/submissions/forms/{formGuid}", len(page))
        return json_response(body)

    # ---- web analytics events --------------------------------------------------------------------
    @router.get("/events/v3/events")
    @router.get("/events/v3/events/")
    async def list_events(request: Request) -> Response:
        store = portal.store
        params = request.query_params
        event_type = params.get("eventType")
        object_type = (params.get("objectType") or "").lower()
        object_id = params.get("objectId")
        email = params.get("objectProperty.email")
        if object_id and not object_type:
            raise validation_error("objectId requires objectType")
        if object_type and object_type not in ("contact", "contacts", "0-1"):
            rows: list[Any] = []
        elif event_type and event_type != "e_visited_page":
            rows = []
        else:
            rows = store.web_events
            contact_id = None
            if object_id:
                contact_id = int(object_id) if object_id.isdigit() else -1
            elif email:
                record = store.find_by("contacts", "email", email)
                contact_id = record.id if record else -1
            low, high = _time_param(request, "occurredAfter"), _time_param(request, "occurredBefore")
            if contact_id is not None:
                rows = [store.web_events[i] for i in store.web_index().get(contact_id, [])]
            start = bisect.bisect_right(rows, low, key=lambda r: r[W_MS]) if low is not None else 0
            end = bisect.bisect_left(rows, high, key=lambda r: r[W_MS]) if high is not None else len(rows)
            rows = rows[start:end] if (start, end) != (0, len(rows)) else rows
        sort = (params.get("sort") or "DESCENDING").upper()
        descending = sort in ("DESCENDING", "-OCCURREDAT")
        limit = query_int(request, "limit", 100, 100)
        after = _cursor(params.get("after"))
        if descending:
            top = len(rows) - after
            page = [rows[i] for i in range(top - 1, max(top - 1 - limit, -1), -1)]
        else:
            page = rows[after : after + limit]
        body: dict[str, Any] = {"results": [render_web_event(r) for r in page]}
        body.update(_paging(portal, request, after + limit if after + limit < len(rows) else None))
        portal.read("GET /events/v3/events", len(page))
        return json_response(body)

    @router.get("/events/v3/events/event-types")
    async def event_types() -> Response:
        return json_response({"eventTypes": ["e_visited_page"]})

    # ---- marketing email events (legacy email analytics) ----------------------------------------
    @router.get("/email/public/v1/events")
    async def email_events(request: Request) -> Response:
        store = portal.store
        params = request.query_params
        start, end = params.get("startTimestamp"), params.get("endTimestamp")
        try:
            low = int(start) if start else None
            high = int(end) if end else None
        except ValueError:
            raise validation_error("startTimestamp and endTimestamp are epoch milliseconds") from None
        rows = store.email_events
        lo = bisect.bisect_left(rows, low, key=lambda r: r[E_MS]) if low is not None else 0
        hi = bisect.bisect_right(rows, high, key=lambda r: r[E_MS]) if high is not None else len(rows)
        event_type, recipient = params.get("eventType"), (params.get("recipient") or "").lower()
        campaign = params.get("campaignId")
        limit = query_int(request, "limit", 1000, 1000)
        offset = _cursor(params.get("offset"))
        # Newest first: walk down from the end of the window, skipping what the filters exclude.
        position, page = hi - 1 - offset, []
        while position >= lo and len(page) < limit:
            row = rows[position]
            position -= 1
            if event_type and row[E_TYPE] != event_type.upper():
                continue
            if recipient and row[E_RECIPIENT].lower() != recipient:
                continue
            if campaign and str(row[E_CAMPAIGN]) != campaign:
                continue
            page.append(row)
        consumed = hi - 1 - position
        has_more = position >= lo
        portal.read("GET /email/public/v1/events", len(page))
        return json_response(
            {"hasMore": has_more, "offset": str(consumed), "events": [render_email_event(r) for r in page]}
        )

    @router.get("/email/public/v1/campaigns/by-id")
    async def email_campaigns(request: Request) -> Response:
        campaigns = list(portal.store.email_campaigns.values())
        limit = query_int(request, "limit", 250, 1000)
        offset = _cursor(request.query_params.get("offset"))
        page = campaigns[offset : offset + limit]
        return json_response(
            {
                "campaigns": [
                    {
                        "id": c["id"],
                        "appId": EMAIL_APP_ID,
                        "appName": EMAIL_APP_NAME,
                        "lastUpdatedTime": c["lastUpdatedTime"],
                    }
                    for c in page
                ],
                "hasMore": offset + limit < len(campaigns),
                "offset": str(offset + len(page)),
            }
        )

    @router.get("/email/public/v1/campaigns/{campaign_id}")
    async def email_campaign(campaign_id: str) -> Response:
        campaign = portal.store.email_campaigns.get(campaign_id)
        if campaign is None:
            raise not_found(f"Email campaign {campaign_id} not found", ids=[campaign_id])
        return json_response(campaign)

    # ---- marketing events and attendance ----------------------------------------------------------
    @router.get("/marketing/v3/marketing-events")
    @router.get("/marketing/v3/marketing-events/")
    async def list_marketing_events(request: Request) -> Response:
        events = list(portal.store.marketing_events.values())
        limit = query_int(request, "limit", 10, 100)
        after = _cursor(request.query_params.get("after"))
        body: dict[str, Any] = {"results": events[after : after + limit]}
        body.update(_paging(portal, request, after + limit if after + limit < len(events) else None))
        portal.read("GET /marketing/v3/marketing-events", len(body["results"]))
        return json_response(body)

    @router.get("/marketing/v3/marketing-events/participations/contacts/{contact_identifier}/breakdown")
    async def contact_participations(request: Request, contact_identifier: str) -> Response:
        store = portal.store
        record = (
            store.find_by("contacts", "email", contact_identifier)
            if "@" in contact_identifier
            else store.get("contacts", contact_identifier)
        )
        if record is None:
            raise not_found(f"Contact {contact_identifier} not found", ids=[contact_identifier])
        rows = [
            (store.marketing_events[object_id], row)
            for object_id, rows in store.participations.items()
            for row in rows
            if row[P_CONTACT] == record.id
        ]
        rows.sort(key=lambda pair: pair[1][P_MS])
        return _participation_page(portal, request, rows)

    @router.get(
        "/marketing/v3/marketing-events/participations/{external_account_id}/{external_event_id}/breakdown"
    )
    async def external_participations(
        request: Request, external_account_id: str, external_event_id: str
    ) -> Response:
        store = portal.store
        for event in store.marketing_events.values():
            if (event["externalAccountId"], event["externalEventId"]) == (
                external_account_id,
                external_event_id,
            ):
                return _marketing_event_page(portal, request, event)
        raise not_found(f"Marketing event {external_event_id} not found", ids=[external_event_id])

    @router.get("/marketing/v3/marketing-events/participations/{marketing_event_id}/breakdown")
    async def event_participations(request: Request, marketing_event_id: str) -> Response:
        event = portal.store.marketing_events.get(marketing_event_id)
        if event is None:
            raise not_found(f"Marketing event {marketing_event_id} not found", ids=[marketing_event_id])
        return _marketing_event_page(portal, request, event)

    @router.get("/marketing/v3/marketing-events/participations/{marketing_event_id}")
    async def event_counters(marketing_event_id: str) -> Response:
        event = portal.store.marketing_events.get(marketing_event_id)
        if event is None:
            raise not_found(f"Marketing event {marketing_event_id} not found", ids=[marketing_event_id])
        return json_response(
            {
                "attended": event["attendees"],
                "registered": event["registrants"],
                "cancelled": event["cancellations"],
                "noShows": event["noShows"],
            }
        )

    @router.get("/marketing/v3/marketing-events/{object_id}")
    async def get_marketing_event(object_id: str) -> Response:
        event = portal.store.marketing_events.get(object_id)
        if event is None:
            raise not_found(f"Marketing event {object_id} not found", ids=[object_id])
        return json_response(event)


def _marketing_event_page(portal: Portal, request: Request, event: dict[str, Any]) -> Response:
    store = portal.store
    rows = list(store.participations.get(event["objectId"], []))
    contact = request.query_params.get("contactIdentifier")
    if contact:
        record = (
            store.find_by("contacts", "email", contact) if "@" in contact else store.get("contacts", contact)
        )
        rows = [r for r in rows if record is not None and r[P_CONTACT] == record.id]
    return _participation_page(portal, request, [(event, r) for r in rows])
