"""Email subscription preferences (communication preferences v3): the subscription types, a contact's
statuses, and subscribe / unsubscribe, as an app with the `communication_preferences.write` scope
calls them (a preference centre, a consent tool).

An unsubscribe is also logged as a `STATUSCHANGE` marketing email event (`GET /email/public/v1/events`,
sandbox.hubspot.activity), which leadloop pulls as an unsubscribe. Which source HubSpot's legacy email
events API gives a change made through this API is not documented; the sandbox says
`SOURCE_HUBSPOT_CUSTOMER` (a change the customer made).

https://developers.hubspot.com/docs/api/marketing-api/subscriptions-preferences
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.errors import json_response, not_found, validation_error
from leadloop.sandbox.hubspot.portal import Portal, body_json
from leadloop.sandbox.hubspot.store import Store, valid_email
from leadloop.sandbox.hubspot.tracking import log_unsubscribe

BASE = "/communication-preferences/v3"
_STAMP = "2019-08-06T02:41:52.000Z"
# The two subscription types every portal starts with. Id 1 is the one the seeded email events name.
DEFINITIONS = (
    {
        "id": "1",
        "name": "Marketing Information",
        "description": "Marketing offers and updates.",
        "purpose": "Marketing",
        "communicationMethod": "Email",
        "isActive": True,
        "isDefault": True,
        "isInternal": False,
        "createdAt": _STAMP,
        "updatedAt": _STAMP,
    },
    {
        "id": "2",
        "name": "One to One",
        "description": "One to one emails.",
        "purpose": "Sales",
        "communicationMethod": "Email",
        "isActive": True,
        "isDefault": True,
        "isInternal": True,
        "createdAt": _STAMP,
        "updatedAt": _STAMP,
    },
)
_BY_ID = {d["id"]: d for d in DEFINITIONS}
LEGAL_BASES = frozenset(
    {
        "LEGITIMATE_INTEREST_PQL",
        "LEGITIMATE_INTEREST_CLIENT",
        "PERFORMANCE_OF_CONTRACT",
        "CONSENT_WITH_NOTICE",
        "NON_GDPR",
        "PROCESS_AND_STORE",
        "LEGITIMATE_INTEREST_OTHER",
    }
)


def status_of(store: Store, email: str, subscription_id: str) -> tuple[str, str]:
    """(status, sourceOfStatus): a contact opted out of all email is NOT_SUBSCRIBED portal-wide."""
    contact = store.find_by("contacts", "email", email)
    if contact is not None and contact.props.get("hs_email_optout") == "true":
        return "NOT_SUBSCRIBED", "PORTAL_WIDE_STATUS"
    return store.subscription_statuses.get(email.lower(), {}).get(
        subscription_id, "SUBSCRIBED"
    ), "SUBSCRIPTION_STATUS"


def render_status(
    store: Store, email: str, subscription_id: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    definition = _BY_ID[subscription_id]
    status, source = status_of(store, email, subscription_id)
    out: dict[str, Any] = {
        "id": subscription_id,
        "name": definition["name"],
        "description": definition["description"],
        "status": status,
        "sourceOfStatus": source,
    }
    for name in ("legalBasis", "legalBasisExplanation"):
        if body and body.get(name):
            out[name] = body[name]
    return out


def _request(body: Any) -> tuple[str, str]:
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected {emailAddress, subscriptionId}")
    email, subscription_id = (
        str(body.get("emailAddress") or "").strip(),
        str(body.get("subscriptionId") or ""),
    )
    if not valid_email(email):
        raise validation_error(f"Email address {email} is invalid", context={"emailAddress": [email]})
    if subscription_id not in _BY_ID:
        raise not_found(f"Subscription {subscription_id} does not exist", ids=[subscription_id])
    basis = body.get("legalBasis")
    if basis is not None and basis not in LEGAL_BASES:
        raise validation_error(f"legalBasis must be one of {', '.join(sorted(LEGAL_BASES))}")
    return email, subscription_id


def add_routes(router: APIRouter, portal: Portal) -> None:
    @router.get(BASE + "/definitions")
    async def definitions() -> Response:
        return json_response({"subscriptionDefinitions": list(DEFINITIONS)})

    @router.get(BASE + "/status/email/{email_address}")
    async def statuses(email_address: str) -> Response:
        store = portal.store
        return json_response(
            {
                "recipient": email_address,
                "subscriptionStatuses": [render_status(store, email_address, d["id"]) for d in DEFINITIONS],
            }
        )

    @router.post(BASE + "/subscribe")
    async def subscribe(request: Request) -> Response:
        store = portal.store
        body = await body_json(request)
        email, subscription_id = _request(body)
        if status_of(store, email, subscription_id)[0] == "SUBSCRIBED":
            raise validation_error(f"{email} is already subscribed to subscription {subscription_id}")
        store.subscription_statuses.setdefault(email.lower(), {})[subscription_id] = "SUBSCRIBED"
        portal.written(f"POST {BASE}/subscribe", 1)
        return json_response(render_status(store, email, subscription_id, body))

    @router.post(BASE + "/unsubscribe")
    async def unsubscribe(request: Request) -> Response:
        store = portal.store
        body = await body_json(request)
        email, subscription_id = _request(body)
        if status_of(store, email, subscription_id)[0] == "NOT_SUBSCRIBED":
            raise validation_error(f"{email} is already unsubscribed from subscription {subscription_id}")
        store.subscription_statuses.setdefault(email.lower(), {})[subscription_id] = "NOT_SUBSCRIBED"
        log_unsubscribe(store, email, subscription_id)
        portal.written(f"POST {BASE}/unsubscribe", 1)
        return json_response(render_status(store, email, subscription_id, body))
