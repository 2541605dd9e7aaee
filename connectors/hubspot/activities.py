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

The reads that do not depend on each other go at once, as many as the client lets fly
(`concurrency.in_order`), and are handed on in the order a one-at-a-time read would give: each form's
submissions, each marketing event's breakdown, each batch of emails, and the web analytics events by
spans of time. Those are read ascending by a token no one can ask ahead of, so past the first page the
rest of the events up to the horizon is cut into spans read side by side; a page's cursor still never
passes an event that an earlier, unread span could hold. The email events, newest first by an offset,
are read a page ahead instead (`concurrency.read_ahead`).

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

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from leadloop.connectors import clock
from leadloop.connectors.concurrency import all_in_order, in_order, read_ahead
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
# Spans of time the web analytics events past their first page are read in, per call in flight: the
# spans cannot be sized by their events (the API announces no total), so many small ones keep a busy
# stretch of time from leaving one thread reading alone at the end.
PAGE_VIEW_SPANS = 8
PAGES_PER_SPAN = 10
# A span is cut again only when it holds several times what a span was meant to: every cut costs a
# last page seldom full, which at the rate limit is time too.
DENSE_SPAN = 4
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T = TypeVar("T")


def _ms(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds() * 1000)


def _next_after(body: dict[str, Any]) -> str | None:
    return ((body.get("paging") or {}).get("next") or {}).get("after")


class ActivityPuller:
    """Pulls the four activity sources; `HubSpotSource` delegates their streams here."""

    def __init__(self, client: HubSpotClient, *, overlap: timedelta, workers: int | None = None) -> None:
        self.client = client
        self.overlap = overlap
        self.workers = workers if workers is not None else getattr(client, "concurrent_calls", 1)
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

        def read(chunk: list[str]) -> Any:
            body = {"idProperty": "email", "properties": ["email"], "inputs": [{"id": e} for e in chunk]}
            return self.client.call(endpoint, self.client.batch.read_with_http_info, "contacts", body)

        chunks = [wanted[start:start + BATCH_MAX] for start in range(0, len(wanted), BATCH_MAX)]
        for chunk, answer in zip(chunks, all_in_order(read, chunks, self.workers), strict=True):
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

        def read_form(form: tuple[str, str | None]) -> list[dict[str, Any]]:
            bodies = []
            for body in self._form_submissions(form[0]):
                bodies.append(body)
                rows = body.get("results") or []
                if start is not None and any(_submitted(r) < start for r in rows):
                    break  # newest first: the rest is older
            return bodies

        for (_form_id, form_name), bodies in zip(forms, in_order(read_form, forms, self.workers),
                                                 strict=True):
            for body in bodies:
                rows = body.get("results") or []
                fresh = [r for r in rows if start is None or _submitted(r) >= start]
                highest = _max(highest, (_submitted(r) for r in rows))
                pending.extend((row, form_name) for row in fresh)
                ready, pending = self._resolved(pending, _submitter, final=False)
                if ready:
                    yield self._submission_page(ready)
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
        """Ascending from `start`: the first page here, then the rest (`_page_view_rest`)."""
        highest: datetime | None = None
        first = self._page_view_pages(start, None)
        pages = iter(first)
        body = next(pages)
        horizon = self._horizon()
        records, rejected = _page_view_records(body)
        highest = _max(highest, (a.occurred_at for a in records))
        if first.finished:
            yield PulledPage(stream=PAGE_VIEWS, records=records, cursor=_later(highest, horizon),
                             rejected=rejected)
            return
        yield PulledPage(stream=PAGE_VIEWS, records=records, cursor=highest, rejected=rejected)
        for views, bad in self._page_view_rest(first, pages, records, None, horizon):
            highest = _max(highest, (a.occurred_at for a in views))
            # every earlier span has been handed out whole: nothing older can still come
            if views or bad:
                yield PulledPage(stream=PAGE_VIEWS, records=views, cursor=highest, rejected=bad)
        yield PulledPage(stream=PAGE_VIEWS, records=(), cursor=_later(highest, horizon))

    def _page_view_rest(self, paginator: TokenPaginator[dict[str, Any]], pages: Iterator[dict[str, Any]],
                        first: Sequence[Activity], high: datetime | None, horizon: datetime | None,
                        ) -> Iterator[tuple[list[Activity], list[tuple[str, str]]]]:
        """The pages after `first` of a read up to `high` (None: open-ended), in order. When the
        stretch of time the first page covers says the rest holds many pages, the rest is cut into
        spans read side by side (`_page_view_span`), each of which is cut again if it turns out
        dense: a burst of visits then never leaves one thread reading it alone."""
        end = high or horizon
        per_span = PAGES_PER_SPAN if high is None else PAGES_PER_SPAN * DENSE_SPAN
        count = 1 if paginator.finished or end is None else self._page_view_span_count(first, end, per_span)
        if count <= 1:
            return (_page_view_records(body) for body in pages)
        spans = _spans(max(a.occurred_at for a in first), end, count, high)  # type: ignore[arg-type]
        return itertools.chain.from_iterable(
            in_order(lambda span: self._page_view_span(span, horizon), spans, self.workers))

    def _page_view_span_count(self, first: Sequence[Activity], horizon: datetime | None,
                              per_span: int = PAGES_PER_SPAN) -> int:
        """How many spans to read the rest of the page views in: the first page's stretch of time
        says how many pages the rest may hold, and each span should hold `per_span` of them (a
        span's last page is seldom full); at most `PAGE_VIEW_SPANS` per call in flight."""
        if self.workers <= 1 or horizon is None or len(first) < EVENTS_PAGE_MAX:
            return 1
        moments = [a.occurred_at for a in first]
        covered, rest = max(moments) - min(moments), horizon - max(moments)
        if rest <= timedelta(0):
            return 1
        pages = rest / max(covered, timedelta(milliseconds=1))
        return max(1, min(PAGE_VIEW_SPANS * self.workers, int(pages // per_span)))

    def _page_view_pages(self, low: datetime | None, high: datetime | None) -> TokenPaginator[dict[str, Any]]:
        """The pages of page views after `low` and before `high` (either open), ascending."""
        endpoint = "GET /events/v3/events"

        def fetch(after: str | None) -> dict[str, Any]:
            query: list[tuple[str, Any]] = [("eventType", "e_visited_page"), ("objectType", "contact"),
                                            ("limit", EVENTS_PAGE_MAX), ("sort", "ASCENDING")]
            if low is not None:
                query.append(("occurredAfter", _iso(low)))
            if high is not None:
                query.append(("occurredBefore", _iso(high)))
            if after:
                query.append(("after", after))
            return self.client.request("GET", "/events/v3/events/", query=query, endpoint=endpoint)

        return TokenPaginator(fetch, _next_after, endpoint=endpoint, on_repeat="stop")

    def _page_view_span(self, span: tuple[datetime, datetime | None], horizon: datetime | None
                        ) -> list[tuple[list[Activity], list[tuple[str, str]]]]:
        """One span's page views, page by page. `occurredAfter` is exclusive: the span asks from a
        millisecond before its start, so an event at a boundary is read (by both spans at worst,
        which its id makes harmless), never by neither."""
        low, high = span
        paginator = self._page_view_pages(low - timedelta(milliseconds=1), high)
        pages = iter(paginator)
        first = _page_view_records(next(pages))
        return [first, *self._page_view_rest(paginator, pages, first[0], high, horizon)]

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

        def answered() -> Iterator[tuple[dict[str, Any], datetime | None]]:
            for body in TokenPaginator(fetch, _next_offset, endpoint=endpoint, on_repeat="stop"):
                yield body, self._horizon()  # on the thread that read it

        # the next page travels while this one's recipients are looked up and its events stored
        for body, answered_at in read_ahead(answered(), depth=1 if self.workers > 1 else 0):
            horizon = horizon or answered_at
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
        # HubSpot moves updatedAt when attendance is recorded
        touched = [e for e in events if start is None or _touched_since(e, start)]

        def breakdown(event: dict[str, Any]) -> list[dict[str, Any]]:
            return list(self._listed(
                f"/marketing/v3/marketing-events/participations/{event['objectId']}/breakdown",
                "GET /marketing/v3/marketing-events/participations/{id}/breakdown"))

        for event, bodies in zip(touched, in_order(breakdown, touched, self.workers), strict=True):
            for body in bodies:
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


def _page_view_records(body: dict[str, Any]) -> tuple[list[Activity], list[tuple[str, str]]]:
    records: list[Activity] = []
    rejected: list[tuple[str, str]] = []
    for event in body.get("results") or []:
        try:
            records.append(activity_from_page_view(event))
        except BadRecord as problem:
            rejected.append((f"hs-pageview:{event.get('id')}", str(problem)))
    return records, rejected


def _spans(start: datetime, end: datetime, count: int, last_high: datetime | None
           ) -> list[tuple[datetime, datetime | None]]:
    """`count` equal spans of time from `start` to `end`, the last one up to `last_high` (None:
    open-ended)."""
    step = (end - start) / count
    edges = [start + step * i for i in range(count)]
    return [(low, edges[i + 1] if i + 1 < count else last_high) for i, low in enumerate(edges)]


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
