"""How marketing events and their attendance reach HubSpot: the app that runs the event (a webinar
platform, a badge scanner's integration) creates the event and records who registered, attended or
cancelled, in the shapes the official client (hubspot-api-client 12) sends:

- `POST /marketing/v3/marketing-events/events`: create an event (`externalAccountId`, `externalEventId`);
- `POST /marketing/v3/marketing-events/attendance/{externalEventId}/{subscriberState}/create` and
  `.../email-create` (`?externalAccountId=`), and the same by HubSpot's id,
  `POST /marketing/v3/marketing-events/{objectId}/attendance/{subscriberState}/create` and `.../email-create`:
  record participations by contact id (`vid`) or by email (a missing contact is created);
- the older `POST /marketing/v3/marketing-events/events/{externalEventId}/{subscriberState}/upsert` and
  `.../email-upsert` (`?externalAccountId=`, answered with 204).

`subscriberState` is `register`, `attend` or `cancel`. Each participation is listed by the
participant-state breakdowns (sandbox.hubspot.activity), which leadloop pulls, and moves the event's
`updatedAt`, as HubSpot does when attendance is recorded.

https://developers.hubspot.com/docs/api/marketing/marketing-events
https://developers.hubspot.com/docs/api-reference/marketing-marketing-events-v3/attendance-subscriber-state-changes
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from leadloop.sandbox.hubspot.activity import P_CONTACT, P_ID, P_STATE
from leadloop.sandbox.hubspot.errors import (
    HubSpotError,
    batch_error,
    json_response,
    not_found,
    validation_error,
)
from leadloop.sandbox.hubspot.portal import Portal, body_json, inputs_of
from leadloop.sandbox.hubspot.store import Record, Store, iso_ms, parse_datetime_ms, valid_email

BASE = "/marketing/v3/marketing-events"
STATES = {"register": "REGISTERED", "attend": "ATTENDED", "cancel": "CANCELLED"}
COUNTERS = {"REGISTERED": "registrants", "ATTENDED": "attendees", "CANCELLED": "cancellations"}
_REQUIRED = ("externalAccountId", "externalEventId", "eventName", "eventOrganizer")
_OPTIONAL_TEXT = ("eventType", "eventDescription", "eventUrl")
APP_INFO = {"id": "1024", "name": "Sandbox events"}


def _moment(value: Any, name: str) -> int | None:
    if value in (None, ""):
        return None
    ms = parse_datetime_ms(value)
    if ms is None:
        raise validation_error(f"{name} must be an ISO-8601 datetime, was {value!r}")
    return ms


def _status(event: dict[str, Any], now_ms: int) -> str:
    if event["eventCancelled"]:
        return "CANCELLED"
    end = parse_datetime_ms(event.get("endDateTime"))
    return "PAST" if end is not None and end < now_ms else "UPCOMING"


def create_event(store: Store, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise validation_error("Invalid input JSON: expected a marketing event object")
    missing = [name for name in _REQUIRED if not isinstance(body.get(name), str) or not body[name]]
    if missing:
        raise validation_error(
            f"Missing required field(s): {', '.join(missing)}", context={"missing": missing}
        )
    for event in store.marketing_events.values():
        if (event["externalAccountId"], event["externalEventId"]) == (
            body["externalAccountId"],
            body["externalEventId"],
        ):
            raise HubSpotError(
                409,
                "CONFLICT",
                f"A marketing event with externalEventId "
                f"{body['externalEventId']} already exists for externalAccountId "
                f"{body['externalAccountId']}",
            )
    start, end = (
        _moment(body.get("startDateTime"), "startDateTime"),
        _moment(body.get("endDateTime"), "endDateTime"),
    )
    custom = body.get("customProperties") or []
    if not isinstance(custom, list) or not all(isinstance(p, dict) and p.get("name") for p in custom):
        raise validation_error("customProperties must be a list of {name, value}")
    now_ms = store.now_ms()
    object_id = str(store.new_id())
    event: dict[str, Any] = {
        "objectId": object_id,
        "externalAccountId": body["externalAccountId"],
        "externalEventId": body["externalEventId"],
        "eventName": body["eventName"],
        "eventOrganizer": body["eventOrganizer"],
        **{name: str(body[name]) for name in _OPTIONAL_TEXT if body.get(name) is not None},
        "eventCancelled": bool(body.get("eventCancelled", False)),
        "eventCompleted": bool(body.get("eventCompleted", end is not None and end < now_ms)),
        "startDateTime": iso_ms(start) if start is not None else None,
        "endDateTime": iso_ms(end) if end is not None else None,
        "createdAt": iso_ms(now_ms),
        "updatedAt": iso_ms(now_ms),
        "registrants": 0,
        "attendees": 0,
        "cancellations": 0,
        "noShows": 0,
        "customProperties": [{"name": p["name"], "value": str(p.get("value") or "")} for p in custom],
        "appInfo": APP_INFO,
    }
    event["eventStatus"] = _status(event, now_ms)
    store.marketing_events[object_id] = event
    store.participations[object_id] = []
    return event


def created_view(event: dict[str, Any]) -> dict[str, Any]:
    """What create answers (MarketingEventDefaultResponse): the event without its counters."""
    names = (
        "eventName",
        "eventType",
        "startDateTime",
        "endDateTime",
        "eventOrganizer",
        "eventDescription",
        "eventUrl",
        "eventCancelled",
        "eventCompleted",
        "customProperties",
        "objectId",
    )
    return {name: event[name] for name in names if event.get(name) is not None}


def by_external_id(store: Store, external_event_id: str, external_account_id: str | None) -> dict[str, Any]:
    for event in store.marketing_events.values():
        if event["externalEventId"] == external_event_id and external_account_id in (
            None,
            "",
            event["externalAccountId"],
        ):
            return event
    raise not_found(f"Marketing event {external_event_id} not found", ids=[external_event_id])


def by_object_id(store: Store, object_id: str) -> dict[str, Any]:
    event = store.marketing_events.get(object_id)
    if event is None:
        raise not_found(f"Marketing event {object_id} not found", ids=[object_id])
    return event


def _attendance_figures(
    event: dict[str, Any], state: str, properties: dict[str, Any]
) -> tuple[int | None, str | None]:
    """(seconds attended, percentage of the event) from an `attend`'s `joinedAt` and `leftAt`."""
    if state != "ATTENDED":
        return None, None
    joined = _moment(properties.get("joinedAt"), "joinedAt")
    left = _moment(properties.get("leftAt"), "leftAt")
    if joined is None or left is None or left < joined:
        return None, None
    seconds = (left - joined) // 1000
    start, end = parse_datetime_ms(event.get("startDateTime")), parse_datetime_ms(event.get("endDateTime"))
    if start is None or end is None or end <= start:
        return seconds, None
    return seconds, str(min(100, round(100 * seconds * 1000 / (end - start))))


def record(
    store: Store, event: dict[str, Any], state: str, contact: Record, when: int, properties: dict[str, Any]
) -> None:
    """One participation; a contact already in that state keeps one row, at its latest time."""
    object_id = event["objectId"]
    rows = store.participations.setdefault(object_id, [])
    previous = next((r for r in rows if r[P_CONTACT] == contact.id and r[P_STATE] == state), None)
    if previous is not None:
        rows.remove(previous)
    else:
        event[COUNTERS[state]] += 1
    duration, percent = _attendance_figures(event, state, properties)
    row_id = previous[P_ID] if previous is not None else f"mp-{store.new_id()}"
    store.add_participation(object_id, (contact.id, state, when, duration, percent, row_id))
    now_ms = store.now_ms()
    event["updatedAt"] = iso_ms(now_ms)
    event["eventStatus"] = _status(event, now_ms)


def _state(subscriber_state: str) -> str:
    state = STATES.get(subscriber_state.lower())
    if state is None:
        raise validation_error(
            f"subscriberState must be one of {', '.join(STATES)}, was {subscriber_state!r}",
            context={"subscriberState": [subscriber_state]},
        )
    return state


def _input_time(item: dict[str, Any]) -> int:
    if item.get("interactionDateTime") in (None, ""):
        raise validation_error("interactionDateTime is required (epoch milliseconds) on every input")
    return _moment(item["interactionDateTime"], "interactionDateTime") or 0


class Attendance:
    """Records a batch of participations by contact id or by email; answers HubSpot's batch response."""

    def __init__(self, portal: Portal) -> None:
        self.portal = portal

    def by_contact_id(
        self, event: dict[str, Any], state: str, body: Any
    ) -> tuple[list[dict[str, Any]], list]:
        store = self.portal.store
        results, errors = [], []
        for item in inputs_of(body):
            when = _input_time(item)
            contact = store.get("contacts", item.get("vid")) if item.get("vid") is not None else None
            if contact is None:
                errors.append(
                    batch_error(
                        "OBJECT_NOT_FOUND",
                        f"Contact {item.get('vid')} does not exist",
                        {"vid": [str(item.get("vid"))]},
                    )
                )
                continue
            record(store, event, state, contact, when, item.get("properties") or {})
            results.append({"vid": contact.id, "interactionDateTime": when})
        return results, errors

    def by_email(self, event: dict[str, Any], state: str, body: Any) -> tuple[list[dict[str, Any]], list]:
        """As by contact id; a missing contact is created with `contactProperties` (which never
        change an existing contact)."""
        store = self.portal.store
        results, errors = [], []
        for item in inputs_of(body):
            when = _input_time(item)
            email = str(item.get("email") or "").strip()
            if not valid_email(email):
                errors.append(
                    batch_error("VALIDATION_ERROR", f"Email address {email} is invalid", {"email": [email]})
                )
                continue
            contact = store.find_by("contacts", "email", email)
            if contact is None:
                try:
                    values = store.normalize(
                        "contacts", {**(item.get("contactProperties") or {}), "email": email}, creating=True
                    )
                except HubSpotError as problem:
                    errors.append(batch_error(problem.category, problem.message, {"email": [email]}))
                    continue
                contact = store.create("contacts", values, self.portal.lag())
            record(store, event, state, contact, when, item.get("properties") or {})
            results.append({"vid": contact.id, "email": email})
        return results, errors

    def answer(
        self, results: list[dict[str, Any]], errors: list[dict[str, Any]], started: int, endpoint: str
    ) -> Response:
        store = self.portal.store
        self.portal.written(endpoint, len(results))
        body: dict[str, Any] = {"status": "COMPLETE", "results": results}
        if errors:
            body.update({"numErrors": len(errors), "errors": errors})
        body.update(
            {
                "requestedAt": iso_ms(started),
                "startedAt": iso_ms(started),
                "completedAt": iso_ms(store.now_ms()),
            }
        )
        return json_response(body, 207 if errors else 200)


def add_routes(router: APIRouter, portal: Portal) -> None:
    attendance = Attendance(portal)

    @router.post(BASE + "/events")
    async def create(request: Request) -> Response:
        event = create_event(portal.store, await body_json(request))
        portal.written("POST /marketing/v3/marketing-events/events", 1)
        return json_response(created_view(event))

    async def recorded(
        request: Request, event: dict[str, Any], subscriber_state: str, by_email: bool, endpoint: str
    ) -> Response:
        state = _state(subscriber_state)
        body = await body_json(request)
        started = portal.store.now_ms()
        results, errors = (attendance.by_email if by_email else attendance.by_contact_id)(event, state, body)
        return attendance.answer(results, errors, started, endpoint)

    def external(request: Request, external_event_id: str) -> dict[str, Any]:
        return by_external_id(portal.store, external_event_id, request.query_params.get("externalAccountId"))

    @router.post(BASE + "/attendance/{external_event_id}/{subscriber_state}/create")
    async def create_by_external_id(
        request: Request, external_event_id: str, subscriber_state: str
    ) -> Response:
        return await recorded(
            request,
            external(request, external_event_id),
            subscriber_state,
            False,
            f"POST {BASE}/attendance/{{externalEventId}}/{{subscriberState}}/create",
        )

    @router.post(BASE + "/attendance/{external_event_id}/{subscriber_state}/email-create")
    async def email_create_by_external_id(
        request: Request, external_event_id: str, subscriber_state: str
    ) -> Response:
        return await recorded(
            request,
            external(request, external_event_id),
            subscriber_state,
            True,
            f"POST {BASE}/attendance/{{externalEventId}}/{{subscriberState}}/email-create",
        )

    @router.post(BASE + "/{object_id}/attendance/{subscriber_state}/create")
    async def create_by_object_id(request: Request, object_id: str, subscriber_state: str) -> Response:
        return await recorded(
            request,
            by_object_id(portal.store, object_id),
            subscriber_state,
            False,
            f"POST {BASE}/{{objectId}}/attendance/{{subscriberState}}/create",
        )

    @router.post(BASE + "/{object_id}/attendance/{subscriber_state}/email-create")
    async def email_create_by_object_id(request: Request, object_id: str, subscriber_state: str) -> Response:
        return await recorded(
            request,
            by_object_id(portal.store, object_id),
            subscriber_state,
            True,
            f"POST {BASE}/{{objectId}}/attendance/{{subscriberState}}/email-create",
        )

    async def upserted(
        request: Request, external_event_id: str, subscriber_state: str, by_email: bool
    ) -> Response:
        account = request.query_params.get("externalAccountId")
        if not account:
            raise validation_error("externalAccountId is required", context={"externalAccountId": []})
        event = by_external_id(portal.store, external_event_id, account)
        state = _state(subscriber_state)
        body = await body_json(request)
        _results, errors = (attendance.by_email if by_email else attendance.by_contact_id)(event, state, body)
        if errors:
            raise HubSpotError(400, errors[0]["category"], errors[0]["message"], context=errors[0]["context"])
        portal.written(f"POST {BASE}/events/{{externalEventId}}/{{subscriberState}}/upsert", len(_results))
        return Response(status_code=204)

    @router.post(BASE + "/events/{external_event_id}/{subscriber_state}/upsert")
    async def upsert_by_contact_id(
        request: Request, external_event_id: str, subscriber_state: str
    ) -> Response:
        return await upserted(request, external_event_id, subscriber_state, False)

    @router.post(BASE + "/events/{external_event_id}/{subscriber_state}/email-upsert")
    async def upsert_by_email(request: Request, external_event_id: str, subscriber_state: str) -> Response:
        return await upserted(request, external_event_id, subscriber_state, True)
