"""`HubSpotSource`: pulls of the declared HubSpot streams, as pages of canonical records.

First run (no cursor): one search finds the newest cursor value T0, then the list endpoint reads every
record at 100 per page with its associations, then a catch-up search from T0 picks up whatever
changed while the list was read (anything older was in the list; anything the lagging index had not
shown yet is re-read by the next run's overlap). List pages carry no cursor (a run interrupted mid-list
starts over); the catch-up's pages carry the highest value seen, at least T0.

Incremental (a cursor): keyset search windows (see `windowing`) from the cursor minus an overlap
window (default 10 minutes, because HubSpot's search index lags behind writes), 200 per page, sorted
ascending; each re-read is de-duplicated by id and cursor value. Every page's cursor is the highest
value actually seen, except that a completed search may end on its **horizon**: HubSpot's own clock
(the `Date` header of the search's first answer, less 2 s for its whole-second precision). Whatever
was modified before the horizon minus the lag the overlap allows for was already in the index when
the search ran, so the next run's overlap, measured from the horizon, re-reads only what the index
could have hidden, not everything the previous run wrote back (a run's own write-back would
otherwise be re-read by every run for as long as it stays within the overlap).

HubSpot has no way to ask for "archived since T" (search never returns archived records), so
tombstones cost a list call of their own (`archived=true`). They are checked at most once per
`archived_interval` (default 6 hours, the connection file's `archived_check_minutes`), measured on
HubSpot's clock from the moment given as `deletions_checked` (the store keeps it; the last page of a
check carries the new one). A first run's full list counts as a check. Between checks a deleted
record can still be scored; a write to it is refused by HubSpot and reported, and the next check
tombstones it. The streams read with associations (deals, calls, emails, meetings, tasks) are also
listed again whole at each check: HubSpot moves an association (a call logged against the wrong
contact, moved to the right one) without changing the record's modification time, so only a new
read finds it. An engagement gives one activity per contact, and every page that reads one says so
(`PulledPage.whole`): the store then drops the activities of contacts it no longer names, and a
deleted engagement's tombstone takes all of them.

Pages say how far a pull has come (`PulledPage.progress`): the records read so far of the first
search's `total`. List endpoints announce no total, but a first run's search for the newest value
counts every record in the index, which is what the list then reads; the archived check and the
owners say nothing.

Its streams may be pulled at once (`streams_at_once`, when the client lets more than one call fly):
the client bounds the calls in flight and the rate for all of them, and keeps the clock of each
thread's last answer apart, which is what each stream's horizon is read from. A listing reads its
next page while the page before is stored (`concurrency.read_ahead`), each page with the clock of
its own answer.

Docs: https://developers.hubspot.com/docs/api/crm/search, https://developers.hubspot.com/docs/api/crm/contacts
(list, `archived`), https://developers.hubspot.com/docs/api/crm/associations/associations-v4 (batch read),
https://developers.hubspot.com/docs/api/crm/owners
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from leadloop.connectors import clock
from leadloop.connectors.concurrency import read_ahead
from leadloop.connectors.hubspot.activities import ACTIVITY_STREAMS, ActivityPuller
from leadloop.connectors.hubspot.client import (
    ASSOCIATIONS_BATCH_MAX,
    LIST_PAGE_MAX,
    SEARCH_PAGE_MAX,
    HubSpotClient,
    next_after,
)
from leadloop.connectors.hubspot.records import (
    BadRecord,
    RawObject,
    account_from_company,
    activities_from_engagement,
    cursor_value,
    opportunity_from_deal,
    owner_from_hubspot,
    person_from_contact,
    raw_object,
    with_associations,
)
from leadloop.connectors.hubspot.streams import OBJECT_STREAMS, OWNERS, STREAMS_BY_NAME, HubSpotStream
from leadloop.connectors.hubspot.windowing import Seen, Window, next_window, search_body
from leadloop.connectors.mapping import CrmMapping
from leadloop.connectors.paging import TokenPaginator
from leadloop.crm.ports import CrmSource, PulledPage, ReadProgress
from leadloop.crm.records import Crm

log = logging.getLogger("leadloop.connectors.hubspot")

DEFAULT_OVERLAP = timedelta(minutes=10)
DEFAULT_ARCHIVED_INTERVAL = timedelta(hours=6)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class UnknownStreamError(KeyError):
    """A stream name this source does not declare."""


def to_ms(moment: datetime) -> int:
    return int((moment - _EPOCH).total_seconds() * 1000)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)


class HubSpotSource(CrmSource):
    crm = Crm.HUBSPOT

    def __init__(self, client: HubSpotClient, mapping: CrmMapping, *, overlap: timedelta = DEFAULT_OVERLAP,
                 page_size: int = SEARCH_PAGE_MAX, list_page_size: int = LIST_PAGE_MAX,
                 streams: Sequence[str] | None = None, detect_archived: bool = True,
                 archived_interval: timedelta = DEFAULT_ARCHIVED_INTERVAL) -> None:
        if not 1 <= page_size <= SEARCH_PAGE_MAX or not 1 <= list_page_size <= LIST_PAGE_MAX:
            raise ValueError("HubSpot pages hold at most 200 search results and 100 listed records")
        self.client = client
        self.mapping = mapping
        self.overlap = overlap
        self.page_size = page_size
        self.list_page_size = list_page_size
        self.detect_archived = detect_archived
        self.archived_interval = archived_interval
        self.activities = ActivityPuller(client, overlap=overlap)
        # the client bounds the calls in flight and the rate, and keeps the clock of each thread's
        # last answer apart: with more than one call in flight every stream may be pulled at once
        concurrent = getattr(client, "concurrent_calls", 1)
        declared = [OWNERS, *(s.name for s in OBJECT_STREAMS), *ACTIVITY_STREAMS]
        self._streams = tuple(streams) if streams is not None else tuple(declared)
        unknown = [s for s in self._streams if s not in declared]
        if unknown:
            raise UnknownStreamError(f"no HubSpot stream named {', '.join(map(repr, unknown))}")
        self.streams_at_once = len(self._streams) if concurrent > 1 else 1

    def __repr__(self) -> str:
        return f"HubSpotSource({self.client!r}, streams={len(self._streams)})"

    def streams(self) -> Sequence[str]:
        return self._streams

    def pull(self, stream: str, since: datetime | None, *,
             deletions_checked: datetime | None = None) -> Iterator[PulledPage]:
        if stream == OWNERS:
            yield from self._owners()
        elif stream in STREAMS_BY_NAME:
            yield from self._objects(STREAMS_BY_NAME[stream], since, deletions_checked)
        elif stream in ACTIVITY_STREAMS:
            yield from self.activities.pull(stream, since)
        else:
            raise UnknownStreamError(f"no HubSpot stream named {stream!r}")

    # -- CRM objects ---------------------------------------------------------------------------------

    def properties_for(self, spec: HubSpotStream) -> list[str]:
        mapped = self.mapping.read.get(spec.crm_object, {}).values()
        return list(dict.fromkeys([*mapped, *spec.fields, spec.cursor_field]))

    def _objects(self, spec: HubSpotStream, since: datetime | None,
                 deletions_checked: datetime | None) -> Iterator[PulledPage]:
        seen: dict[str, int] = {}
        if since is None:
            newest, total = self._newest(spec)
            listed_from: datetime | None = None
            for raws, answered_at in self._list(spec, archived=False, properties=self.properties_for(spec),
                                                associations=spec.associations):
                listed_from = listed_from or answered_at
                for raw in raws:
                    moment = cursor_value(raw, spec.cursor_field)
                    seen[raw.id] = to_ms(moment) if moment is not None else -1
                progress = ReadProgress(len(seen), total) if total is not None else None
                yield self._page(spec, raws, None, progress)  # no cursor until the whole list is stored
            start = to_ms(newest) if newest is not None else 0
            yield from self._search(spec, Window(start), seen, floor=newest, total=total)
            if listed_from is not None:  # anything archived before the list began was never listed
                yield PulledPage(stream=spec.name, records=(), cursor=None, deletions_checked=listed_from)
            return
        start = since - self.overlap
        yield from self._search(spec, Window(to_ms(start)), seen, floor=None, total=None)
        if self.detect_archived and self._archived_due(deletions_checked):
            if spec.associations:
                yield from self._relisted(spec)
            yield from self._archived(spec, (deletions_checked or since) - self.overlap)

    def _horizon(self) -> datetime | None:
        """HubSpot's clock on the answer just received, less the Date header's precision."""
        return clock.horizon(self.client.server_time)

    def _newest(self, spec: HubSpotStream) -> tuple[datetime | None, int | None]:
        """The highest cursor value the search index knows now (one search, newest first), and how
        many records it holds (the search's `total`, as it has no filter)."""
        body = {"sorts": [{"propertyName": spec.cursor_field, "direction": "DESCENDING"}],
                "properties": [spec.cursor_field], "limit": 1, "after": "0"}
        response = self.client.call(f"POST /crm/v3/objects/{spec.crm_object}/search",
                                    self.client.search.do_search_with_http_info, spec.crm_object, body,
                                    search=True)
        newest = next((cursor_value(raw_object(m), spec.cursor_field) for m in response.results or []), None)
        return newest, getattr(response, "total", None)

    def _list(self, spec: HubSpotStream, *, archived: bool, properties: list[str],
              associations: Sequence[str] = ()) -> Iterator[tuple[list[RawObject], datetime | None]]:
        """Every record of the object (or every archived one), 100 per page, following `after`;
        each page with HubSpot's clock when it answered (less its precision: `_horizon`)."""
        endpoint = f"GET /crm/v3/objects/{spec.crm_object}"

        def fetch(after: str | None) -> Any:
            kwargs: dict[str, Any] = {"limit": self.list_page_size, "archived": archived,
                                      "properties": properties}
            if associations:
                kwargs["associations"] = list(associations)
            if after is not None:
                kwargs["after"] = after
            return self.client.call(endpoint, self.client.objects.get_page_with_http_info,
                                    spec.crm_object, **kwargs)

        def answered() -> Iterator[tuple[list[RawObject], datetime | None]]:
            for response in TokenPaginator(fetch, next_after, endpoint=endpoint):
                yield [raw_object(m) for m in response.results or []], self._horizon()

        # the next page travels while this one is stored
        yield from read_ahead(answered(), depth=1 if self.activities.workers > 1 else 0)

    def _search(self, spec: HubSpotStream, window: Window | None, seen: dict[str, int],
                floor: datetime | None, total: int | None) -> Iterator[PulledPage]:
        """Pages of keyset windows from `window` on. `total` (a first run's count of every record,
        else the first answer's `total`) and the records in `seen` measure the pages' progress."""
        highest = floor
        horizon: datetime | None = None
        properties = self.properties_for(spec)
        endpoint = f"POST /crm/v3/objects/{spec.crm_object}/search"
        yielded = False
        while window is not None:
            body = search_body(window, spec.cursor_field, properties, self.page_size, spec.primary_key)
            response = self.client.call(endpoint, self.client.search.do_search_with_http_info,
                                        spec.crm_object, body, search=True)
            if horizon is None:  # the first answer: the index as it stood when the search began
                horizon = self._horizon()
                total = total if total is not None else getattr(response, "total", None)
            raws = [raw_object(m) for m in response.results or []]
            page_seen: list[Seen] = []
            fresh: list[RawObject] = []
            for raw in raws:
                moment = cursor_value(raw, spec.cursor_field)
                ms = to_ms(moment) if moment is not None else -1
                page_seen.append(Seen(int(raw.id), ms))
                if seen.get(raw.id, -2) >= ms:
                    continue  # this very version was given already
                seen[raw.id] = ms
                fresh.append(raw)
                if moment is not None and (highest is None or moment > highest):
                    highest = moment
            window = next_window(window, page_seen, self.page_size)
            if fresh and spec.associations:
                fresh = self._with_associations(spec, fresh)
            progress = ReadProgress(len(seen), total) if total is not None else None
            if window is None and horizon is not None and (highest is None or horizon > highest):
                # the search is complete: the next run may measure its overlap from the horizon
                yield self._page(spec, fresh, horizon, progress)
                return
            if fresh or (window is None and not yielded and highest is not None):
                yield self._page(spec, fresh, highest, progress)
                yielded = True

    def _with_associations(self, spec: HubSpotStream, raws: list[RawObject]) -> list[RawObject]:
        found: dict[str, dict[str, tuple[str, ...]]] = {raw.id: {} for raw in raws}
        for to_type in spec.associations:
            for linked in self.read_associations(spec.crm_object, to_type, [raw.id for raw in raws]).items():
                found[linked[0]][to_type] = linked[1]
        return [with_associations(raw, found[raw.id]) for raw in raws]

    def read_associations(self, from_type: str, to_type: str, ids: Sequence[str]
                          ) -> dict[str, tuple[str, ...]]:
        """from id → associated ids, through the associations v4 batch read (≤ 1,000 ids per call).
        Ids without associations come back as errors in a 207 and are simply absent."""
        out: dict[str, tuple[str, ...]] = {}
        endpoint = f"POST /crm/v4/associations/{from_type}/{to_type}/batch/read"
        for start in range(0, len(ids), ASSOCIATIONS_BATCH_MAX):
            chunk = ids[start:start + ASSOCIATIONS_BATCH_MAX]
            body = {"inputs": [{"id": i} for i in chunk]}
            response = self.client.call(endpoint, self.client.associations.get_page_with_http_info,
                                        from_type, to_type, body)
            for item in response.results or []:
                origin = str(item._from.id)
                out[origin] = tuple(dict.fromkeys(str(t.to_object_id) for t in item.to or []))
        return out

    def _archived_due(self, checked: datetime | None) -> bool:
        if checked is None:
            return True
        now = self.client.server_time  # the search just made answered on HubSpot's clock
        return now is None or now - checked >= self.archived_interval

    def _relisted(self, spec: HubSpotStream) -> Iterator[PulledPage]:
        """Every live record of a stream read with its associations, listed again (pages without a
        cursor): HubSpot moves an association (a call to another contact, a deal to another company)
        without touching the record's modification time, so no search finds the move. A record
        listed as it is stored is no change to the store."""
        for raws, _answered in self._list(spec, archived=False, properties=self.properties_for(spec),
                                          associations=spec.associations):
            yield self._page(spec, raws, None)

    def _archived(self, spec: HubSpotStream, since: datetime) -> Iterator[PulledPage]:
        """Tombstones for the records archived since `since`, then the moment the check began."""
        checked: datetime | None = None
        for raws, answered_at in self._list(spec, archived=True, properties=[spec.cursor_field]):
            checked = checked or answered_at
            gone = [f"{spec.id_prefix}:{raw.id}" for raw in raws
                    if raw.archived_at is None or raw.archived_at >= since]
            if gone:  # an engagement's activity of each contact goes with it
                yield PulledPage(stream=spec.name, records=(), cursor=None, deleted=gone,
                                 whole=gone if spec.produces == "activity" else ())
        if checked is not None:
            yield PulledPage(stream=spec.name, records=(), cursor=None, deletions_checked=checked)

    def _page(self, spec: HubSpotStream, raws: Iterable[RawObject], cursor: datetime | None,
              progress: ReadProgress | None = None) -> PulledPage:
        records: list[Any] = []
        rejected: list[tuple[str, str]] = []
        whole: list[str] = []  # engagements: their activities here are all they have now
        read = self.mapping.read.get(spec.crm_object, {})
        for raw in raws:
            try:
                if spec.produces == "person":
                    records.append(person_from_contact(raw, read))
                elif spec.produces == "account":
                    records.append(account_from_company(raw, read))
                elif spec.produces == "opportunity":
                    records.append(opportunity_from_deal(raw))
                else:
                    records.extend(activities_from_engagement(raw, spec.crm_object))
                    whole.append(f"{spec.id_prefix}:{raw.id}")
            except BadRecord as problem:
                rejected.append((f"{spec.id_prefix}:{raw.id}", str(problem)))
                log.warning("hubspot %s %s rejected: %s", spec.crm_object, raw.id, problem)
        return PulledPage(stream=spec.name, records=records, cursor=cursor, rejected=rejected,
                          progress=progress, whole=whole)

    # -- owners --------------------------------------------------------------------------------------

    def _owners(self) -> Iterator[PulledPage]:
        endpoint = "GET /crm/v3/owners"

        def fetch(after: str | None) -> Any:
            kwargs: dict[str, Any] = {"limit": LIST_PAGE_MAX, "archived": False}
            if after is not None:
                kwargs["after"] = after
            return self.client.call(endpoint, self.client.owners.get_page_with_http_info, **kwargs)

        for response in TokenPaginator(fetch, next_after, endpoint=endpoint, on_repeat="stop"):
            records, rejected = [], []
            for model in response.results or []:
                try:
                    records.append(owner_from_hubspot(model))
                except BadRecord as problem:
                    rejected.append((f"hs-owner:{model.id}", str(problem)))
            yield PulledPage(stream=OWNERS, records=records, cursor=None, rejected=rejected)
