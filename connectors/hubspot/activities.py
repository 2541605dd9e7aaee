"""The activity sources outside the CRM objects, each through the HubSpot API that documents it:

- `form_submissions`: the forms (`GET /marketing/v3/forms`) and each form's submissions
  (`GET /form-integrations/v1/submissions/forms/{formGuid}`, 50 per page, newest first);
- `page_views`: web analytics events (`GET /events/v3/events?eventType=e_visited_page`, 100 per page,
  `occurredAfter`, ascending);
- `email_events`: marketing email events (`GET /email/public/v1/events`, 1,000 per page,
  `startTimestamp`, newest first);
- `event_attendance`: marketing events (`GET /marketing/v3/marketing-events`) and their participant
  states (`GET /marketing/v3/marketing-events/participations/{id}/breakdown`).

Submissions and email events name a person by email only: the contact ids come from one batch read
of contacts by `idProperty=email` per 100 new emails (remembered for the run).

Sources read newest first cannot hand out a cursor page by page (a run stopped halfway would skip
the older rest), so their pages carry none and a last empty page carries the highest value seen, or
the source's horizon when that is later (HubSpot's clock when the source was first asked, as for the
CRM objects: see `source`). Each source re-reads the overlap window before its cursor; ids keep
re-reads harmless. A marketing event touched since then is read whole, since attendance is often
recorded after the event took place.

Docs: https://developers.hubspot.com/docs/api-reference/legacy/forms-v1/submissions/get-form-integrations-v1-submissions-forms-form_guid,
https://developers.hubspot.com/docs/guides/api/analytics-and-events/event-analytics,
https://developers.hubspot.com/docs/api-reference/legacy/email-analytics-v1/guide,
https://developers.hubspot.com/docs/api-reference/legacy/marketing/marketing-events/participant-state/get-breakdown-externalId
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from leadloop.connectors import clock
from leadloop.connectors.hubspot.client import BATCH_MAX, HubSpotClient
from leadloop.connectors.hubspot.records import (
    BadRecord,
    activity_from_email_event,
    activity_from_page_view,
    activity_from_participation,
    activity_from_submission,
    parse_datetime,
    submission_email,
)
from leadloop.connectors.paging import TokenPaginator
from leadloop.crm.ports import PulledPage
from leadloop.crm.records import Activity

log = logging.getLogger("leadloop.connectors.hubspot")

FORM_SUBMISSIONS, PAGE_VIEWS, EMAIL_EVENTS, EVENT_ATTENDANCE = (
    "form_submissions", "page_views", "email_events", "event_attendance")
ACTIVITY_STREAMS: tuple[str, ...] = (FORM_SUBMISSIONS, PAGE_VIEWS, EMAIL_EVENTS, EVENT_ATTENDANCE)
SUBMISSIONS_PAGE_MAX = 50
EVENTS_PAGE_MAX = 100
EMAIL_EVENTS_PAGE_MAX = 1000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def _ms(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds() * 1000)


def _next_after(body: dict[str, Any]) -> str | None:
    return ((body.get("paging") or {}).get("next") or {}).get("after")


class ActivityPuller:
    """Pulls the four activity sources; `HubSpotSource` delegates their streams here."""

    def __init__(self, client: HubSpotClient, *, overlap: timedelta) -> None:
        self.client = client
        self.overlap = overlap
        self._contact_by_email: dict[str, str | None] = {}

    def pull(self, stream: str, since: datetime | None) -> Iterator[PulledPage]:
        start = since - self.overlap if since is not None else None
        pullers: dict[str, Callable[[datetime | None], Iterator[PulledPage]]] = {
            FORM_SUBMISSIONS: self._submissions, PAGE_VIEWS: self._page_views,
            EMAIL_EVENTS: self._email_events, EVENT_ATTENDANCE: self._attendance,
        }
        yield from pullers[stream](start)

    # -- contacts by email ---------------------------------------------------------------------------

    def contact_ids(self, emails: Iterable[str]) -> dict[str, str | None]:
        """email → contact id (None when no contact has it), batch-read 100 emails per call."""
        wanted = [e for e in dict.fromkeys(e.lower() for e in emails if e) if e not in self._contact_by_email]
        endpoint = "POST /crm/v3/objects/contacts/batch/read"
        for start in range(0, len(wanted), BATCH_MAX):
            chunk = wanted[start:start + BATCH_MAX]
            body = {"idProperty": "email", "properties": ["email"], "inputs": [{"id": e} for e in chunk]}
            answer = self.client.call(endpoint, self.client.batch.read_with_http_info, "contacts", body)
            for email in chunk:
                self._contact_by_email[email] = None
            for item in answer.results or []:
                email = str((item.properties or {}).get("email") or "").lower()
                if email:
                    self._contact_by_email[email] = str(item.id)
        return {e.lower(): self._contact_by_email.get(e.lower()) for e in emails if e}

    # -- form submissions ----------------------------------------------------------------------------

    def _listed(self, path: str, endpoint: str) -> TokenPaginator[dict[str, Any]]:
        """The pages of a v3 list endpoint, 100 per page, following `after`."""

        def fetch(after: str | None) -> dict[str, Any]:
            query = [("limit", 100)] + ([("after", after)] if after else [])
            return self.client.request("GET", path, query=query, endpoint=endpoint)

        return TokenPaginator(fetch, _next_after, endpoint=endpoint, on_repeat="stop")

    def _forms(self) -> list[tuple[str, str | None]]:
        pages = self._listed("/marketing/v3/forms/", "GET /marketing/v3/forms")
        return [(str(f["id"]), f.get("name")) for body in pages for f in body.get("results") or []]

    def _horizon(self) -> datetime | None:
        """HubSpot's clock on the answer just received, less the Date header's precision: once a
        source has been read through, anything older than this minus the overlap was there to read."""
        return clock.horizon(self.client.server_time)

    def _submissions(self, start: datetime | None) -> Iterator[PulledPage]:
        """Each form's submissions newest first. Their emails are resolved to contacts 100 at a time
        across pages and forms (a page holds 50 submissions, often fewer new emails)."""
        highest: datetime | None = None
        forms = self._forms()
        horizon = self._horizon()
        pending: list[tuple[dict[str, Any], str | None]] = []
        for form_id, form_name in forms:
            for body in self._form_submissions(form_id):
                rows = body.get("results") or []
                fresh = [r for r in rows if start is None or _submitted(r) >= start]
                highest = _max(highest, (_submitted(r) for r in rows))
                pending.extend((row, form_name) for row in fresh)
                ready, pending = self._resolved(pending, _submitter, final=False)
                if ready:
                    yield self._submission_page(ready)
                if len(fresh) < len(rows):  # newest first: the rest is older
                    break
        ready, _ = self._resolved(pending, _submitter, final=True)
        if ready:
            yield self._submission_page(ready)
        yield PulledPage(stream=FORM_SUBMISSIONS, records=(), cursor=_later(highest, horizon))

    def _form_submissions(self, form_id: str) -> TokenPaginator[dict[str, Any]]:
        endpoint = "GET /form-integrations/v1/submissions/forms/{formGuid}"

        def fetch(after: str | None) -> dict[str, Any]:
            query = [("limit", SUBMISSIONS_PAGE_MAX)] + ([("after", after)] if after else [])
            return self.client.request("GET", f"/form-integrations/v1/submissions/forms/{form_id}",
                                       query=query, endpoint=endpoint)

        return TokenPaginator(fetch, _next_after, endpoint=endpoint, on_repeat="stop")

    def _resolved(self, pending: list[T], email_of: Callable[[T], str | None], *, final: bool
                  ) -> tuple[list[T], list[T]]:
        """Look up the pending rows' unknown emails in full batches of 100 (all of them when `final`);
        returns the rows whose contact is now known (or that name none) and those still waiting."""
        known = self._contact_by_email
        unknown = list(dict.fromkeys(e for e in map(email_of, pending) if e and e not in known))
        if not final:
            unknown = unknown[:len(unknown) - len(unknown) % BATCH_MAX]
        if unknown:
            self.contact_ids(unknown)
        ready: list[T] = []
        waiting: list[T] = []
        for item in pending:
            email = email_of(item)
            (ready if not email or email in self._contact_by_email else waiting).append(item)
        return ready, waiting

    def _submission_page(self, rows: Sequence[tuple[dict[str, Any], str | None]]) -> PulledPage:
        contacts = self.contact_ids([e for e in (submission_email(r) for r, _ in rows) if e])
        records: list[Activity] = []
        rejected: list[tuple[str, str]] = []
        for row, form_name in rows:
            email = submission_email(row)
            contact = contacts.get(email) if email else None
            if contact is None:
                continue  # not (or no longer) a contact: nothing to score
            try:
                activity = activity_from_submission(row, form_name, contact)
            except BadRecord as problem:
                rejected.append((f"hs-form:{row.get('conversionId')}", str(problem)))
                continue
            if activity is not None:
                records.append(activity)
        return PulledPage(stream=FORM_SUBMISSIONS, records=records, cursor=None, rejected=rejected)

    # -- page views ----------------------------------------------------------------------------------

    def _page_views(self, start: datetime | None) -> Iterator[PulledPage]:
        highest: datetime | None = None
        horizon: datetime | None = None
        endpoint = "GET /events/v3/events"

        def fetch(after: str | None) -> dict[str, Any]:
            query: list[tuple[str, Any]] = [("eventType", "e_visited_page"), ("objectType", "contact"),
                                            ("limit", EVENTS_PAGE_MAX), ("sort", "ASCENDING")]
            if start is not None:
                query.append(("occurredAfter", _iso(start)))
            if after:
                query.append(("after", after))
            return self.client.request("GET", "/events/v3/events/", query=query, endpoint=endpoint)

        pages = TokenPaginator(fetch, _next_after, endpoint=endpoint, on_repeat="stop")
        for body in pages:
            horizon = horizon or self._horizon()
            records: list[Activity] = []
            rejected: list[tuple[str, str]] = []
            for event in body.get("results") or []:
                try:
                    activity = activity_from_page_view(event)
                except BadRecord as problem:
                    rejected.append((f"hs-pageview:{event.get('id')}", str(problem)))
                    continue
                records.append(activity)
                highest = _max(highest, [activity.occurred_at])
            cursor = _later(highest, horizon if pages.finished else None)
            yield PulledPage(stream=PAGE_VIEWS, records=records, cursor=cursor, rejected=rejected)

    # -- marketing email events ----------------------------------------------------------------------

    def _email_events(self, start: datetime | None) -> Iterator[PulledPage]:
        """Marketing email events, newest first; recipients resolved to contacts 100 at a time
        across pages, as for form submissions."""
        highest: datetime | None = None
        horizon: datetime | None = None
        pending: list[dict[str, Any]] = []
        endpoint = "GET /email/public/v1/events"

        def fetch(offset: str | None) -> dict[str, Any]:
            query: list[tuple[str, Any]] = [("limit", EMAIL_EVENTS_PAGE_MAX)]
            if start is not None:
                query.append(("startTimestamp", _ms(start)))
            if offset:
                query.append(("offset", offset))
            return self.client.request("GET", "/email/public/v1/events", query=query, endpoint=endpoint)

        for body in TokenPaginator(fetch, _next_offset, endpoint=endpoint, on_repeat="stop"):
            horizon = horizon or self._horizon()
            pending.extend(body.get("events") or [])
            ready, pending = self._resolved(pending, _recipient, final=False)
            page, highest = self._email_page(ready, highest)
            if page is not None:
                yield page
        ready, _ = self._resolved(pending, _recipient, final=True)
        page, highest = self._email_page(ready, highest)
        if page is not None:
            yield page
        yield PulledPage(stream=EMAIL_EVENTS, records=(), cursor=_later(highest, horizon))

    def _email_page(self, events: Sequence[dict[str, Any]], highest: datetime | None
                    ) -> tuple[PulledPage | None, datetime | None]:
        contacts = self.contact_ids([e for e in map(_recipient, events) if e])
        records: list[Activity] = []
        rejected: list[tuple[str, str]] = []
        for event in events:
            recipient = _recipient(event)
            contact = contacts.get(recipient) if recipient else None
            try:
                moment = parse_datetime(str(event.get("created")), "created")
                highest = _max(highest, [moment] if moment else [])
                activity = activity_from_email_event(event, contact) if contact else None
            except BadRecord as problem:
                rejected.append((f"hs-email:{event.get('id')}", str(problem)))
                continue
            if activity is not None:
                records.append(activity)
        if records or rejected:
            return PulledPage(stream=EMAIL_EVENTS, records=records, cursor=None, rejected=rejected), highest
        return None, highest

    # -- marketing event attendance ------------------------------------------------------------------

    def _marketing_events(self) -> list[dict[str, Any]]:
        pages = self._listed("/marketing/v3/marketing-events/", "GET /marketing/v3/marketing-events")
        return [event for body in pages for event in body.get("results") or []]

    def _attendance(self, start: datetime | None) -> Iterator[PulledPage]:
        highest: datetime | None = None
        events = self._marketing_events()
        horizon = self._horizon()
        for event in events:
            if start is not None and not _touched_since(event, start):
                continue  # HubSpot moves updatedAt when attendance is recorded
            breakdown = self._listed(
                f"/marketing/v3/marketing-events/participations/{event['objectId']}/breakdown",
                "GET /marketing/v3/marketing-events/participations/{id}/breakdown")
            for body in breakdown:
                records: list[Activity] = []
                rejected: list[tuple[str, str]] = []
                for row in body.get("results") or []:
                    try:
                        activity = activity_from_participation(row, event.get("eventType"))
                    except BadRecord as problem:
                        rejected.append((f"hs-mevent:{row.get('id')}", str(problem)))
                        continue
                    if activity is not None:  # the event was touched: all of it (attendance is
                        records.append(activity)  # often recorded after the event took place)
                        highest = _max(highest, [activity.occurred_at])
                if records or rejected:
                    yield PulledPage(stream=EVENT_ATTENDANCE, records=records, cursor=None,
                                     rejected=rejected)
        yield PulledPage(stream=EVENT_ATTENDANCE, records=(), cursor=_later(highest, horizon))


def _next_offset(body: dict[str, Any]) -> str | None:
    """The email events API's token: `offset`, while `hasMore`."""
    following = body.get("offset")
    return str(following) if body.get("hasMore") and following else None


def _submitter(item: tuple[dict[str, Any], str | None]) -> str | None:
    return submission_email(item[0])


def _recipient(event: dict[str, Any]) -> str | None:
    return str(event.get("recipient") or "").strip().lower() or None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _submitted(row: dict[str, Any]) -> datetime:
    return parse_datetime(str(row.get("submittedAt")), "submittedAt") or _EPOCH


def _touched_since(event: dict[str, Any], start: datetime) -> bool:
    for name in ("updatedAt", "endDateTime"):
        try:
            moment = parse_datetime(event.get(name), name)
        except BadRecord:
            continue
        if moment is not None and moment >= start:
            return True
    return False


def _later(first: datetime | None, second: datetime | None) -> datetime | None:
    return _max(first, [second] if second is not None else [])


def _max(current: datetime | None, moments: Iterable[datetime]) -> datetime | None:
    for moment in moments:
        if current is None or moment > current:
            current = moment
    return current
