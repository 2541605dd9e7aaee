"""`SalesforceSource`: incremental pulls of the declared streams, as pages of canonical records.

Each pull is one `queryAll` (deleted rows included) ordered by `SystemModstamp, Id` and read at up to
2,000 rows per page through the query locator. It starts an overlap window (default 5 minutes)
before the saved cursor, so a row that shared the cursor's timestamp, or that committed late, is
read again rather than lost; the store de-duplicates by id. Each page's cursor is the highest
`SystemModstamp` actually seen so far; once the query is read through, a last empty page may carry
its horizon instead (Salesforce's clock when the query began, see `connectors.clock`): a row that
commits late does so within the overlap, so the next run need not re-read the newest rows again and
again in a quiet org. When the session is renewed mid-pull the query is issued again from that
cursor, skipping the rows already given at it.

The query asks for every mapped field without describing the object first (one call per object per
run rather than two); only when the org answers INVALID_FIELD does the source describe the object and
ask again without the missing fields (logged, as `crm check` reports them).

A first pull (no cursor) of a stream whose query counts more rows than `bulk_threshold` (the first
REST page's `totalSize`, so smaller streams pay no extra call) goes through a Bulk API 2.0 query
job instead (see bulk.py); its cursor, the highest `SystemModstamp` of the whole job, comes with the
last page only, because Bulk API rows are unordered.

Every page says how far the pull has come (`PulledPage.progress`): the rows read so far of the
query's `totalSize`. A resumed query counts only the rows left, so the pull's total is the rows read
before the resumption plus that count.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from simple_salesforce.format import format_soql

from leadloop.connectors import clock
from leadloop.connectors.mapping import CrmMapping
from leadloop.connectors.salesforce.bulk import DEFAULT_BULK_THRESHOLD, BulkApi
from leadloop.connectors.salesforce.client import MAX_QUERY_BATCH, QueryInterrupted, SalesforceClient
from leadloop.connectors.salesforce.records import canonical_id, map_row
from leadloop.connectors.salesforce.retry import SalesforceCallError
from leadloop.connectors.salesforce.streams import (
    STREAMS,
    STREAMS_BY_NAME,
    SalesforceStream,
    existing_fields,
    wanted_fields,
)
from leadloop.crm.ports import CrmSource, PulledPage, ReadProgress
from leadloop.crm.records import Crm

log = logging.getLogger("leadloop.connectors.salesforce")

DEFAULT_OVERLAP = timedelta(minutes=5)
MAX_RESUMES = 5


class UnknownStreamError(KeyError):
    """A stream name this source does not declare."""


def build_bulk_query(stream: SalesforceStream, fields: Sequence[str]) -> str:
    """A whole stream for a Bulk API 2.0 query job (no ORDER BY: Bulk API 2.0 advises against it)."""
    return format_soql("SELECT {:literal} FROM {:literal}", ", ".join(fields), stream.crm_object)


def build_query(stream: SalesforceStream, fields: Sequence[str], since: datetime | None) -> str:
    """The incremental SOQL of one stream (format_soql quotes the datetime literal)."""
    select = ", ".join(fields)
    order = f"ORDER BY {stream.cursor_field} ASC, {stream.primary_key} ASC"
    if since is None:
        return format_soql("SELECT {:literal} FROM {:literal} {:literal}", select, stream.crm_object, order)
    return format_soql("SELECT {:literal} FROM {:literal} WHERE {:literal} >= {} {:literal}",
                       select, stream.crm_object, stream.cursor_field, since, order)


class SalesforceSource(CrmSource):
    crm = Crm.SALESFORCE

    def __init__(self, client: SalesforceClient, mapping: CrmMapping, *, page_size: int = MAX_QUERY_BATCH,
                 overlap: timedelta = DEFAULT_OVERLAP, streams: Sequence[str] | None = None,
                 bulk_threshold: int | None = DEFAULT_BULK_THRESHOLD, bulk: BulkApi | None = None) -> None:
        if not 200 <= page_size <= MAX_QUERY_BATCH:
            raise ValueError("Salesforce query pages hold 200 to 2,000 rows")
        self.client = client
        self.bulk_threshold = bulk_threshold  # None: never Bulk API
        self.bulk = bulk or BulkApi(client)
        self.mapping = mapping
        self.page_size = page_size
        self.overlap = overlap
        self._streams = tuple(streams) if streams is not None else tuple(s.name for s in STREAMS)
        self._fields: dict[str, list[str]] = {}

    def streams(self) -> Sequence[str]:
        return self._streams

    def fields_for(self, stream: SalesforceStream) -> list[str]:
        """The fields to query: every wanted field until the org refuses one (`crm check` makes sure
        it will not), then those its describe shows (one describe per object per source). Asking
        first saves a describe per object on every run."""
        return self._fields.get(stream.name) or wanted_fields(stream, self.mapping.read)

    def _described_fields(self, stream: SalesforceStream) -> list[str]:
        describe = self.client.describe(stream.crm_object)
        self._fields[stream.name] = existing_fields(wanted_fields(stream, self.mapping.read), describe,
                                                    stream.crm_object)
        return self._fields[stream.name]

    def pull(self, stream: str, since: datetime | None, *,
             deletions_checked: datetime | None = None) -> Iterator[PulledPage]:
        # deletions come with every incremental query (queryAll, IsDeleted): nothing to check apart
        try:
            spec = STREAMS_BY_NAME[stream]
        except KeyError:
            raise UnknownStreamError(f"no Salesforce stream named {stream!r}") from None
        fields = self.fields_for(spec)
        start = since - self.overlap if since is not None else None
        highest: datetime | None = None
        given_at_highest: set[str] = set()  # ids already given whose cursor equals `highest`
        resumes = 0
        resumed_at: datetime | None = None
        began: datetime | None = None  # the horizon of the first answer (see connectors.clock)
        read = 0  # rows handed out by every query of this pull
        progress: ReadProgress | None = None
        while True:
            soql = build_query(spec, fields, start)
            totals: list[int] = []
            read_before = read
            try:
                pages = self.client.query_pages(soql, include_deleted=spec.include_deleted,
                                                batch_size=self.page_size,
                                                endpoint=f"query:{spec.crm_object}", on_total=totals.append)
                for rows in pages:
                    began = began or clock.horizon(self.client.server_time)
                    if start is None and self._bulk_sized(totals):
                        pages.close()
                        yield from self._bulk_pull(spec, fields, totals[0])
                        return
                    read += len(rows)
                    progress = ReadProgress(read, read_before + totals[0]) if totals else None
                    page, highest = self._page(spec, rows, highest, given_at_highest, resumed_at, progress)
                    yield page
                if began is not None and (highest is None or began > highest):
                    yield PulledPage(stream=spec.name, records=(), cursor=began, progress=progress)
                return
            except SalesforceCallError as error:
                if error.code != "INVALID_FIELD" or spec.name in self._fields:
                    raise
                fields = self._described_fields(spec)  # a mapped field this org lacks: ask without it
                continue
            except QueryInterrupted as interruption:
                resumes += 1
                if resumes > MAX_RESUMES:
                    raise
                log.warning("salesforce %s pull interrupted (%s); resuming from %s", stream, interruption,
                            highest.isoformat() if highest else "the start")
                # format_soql drops milliseconds, which only widens `>=`: repeats are skipped by id.
                start = resumed_at = highest if highest is not None else start

    def _bulk_sized(self, totals: list[int]) -> bool:
        return self.bulk_threshold is not None and bool(totals) and totals[0] > self.bulk_threshold

    def _bulk_pull(self, spec: SalesforceStream, fields: Sequence[str], total: int) -> Iterator[PulledPage]:
        log.info("salesforce %s: %d rows on a first pull, above %d: reading them with a Bulk API 2.0 job",
                 spec.name, total, self.bulk_threshold)
        highest: datetime | None = None
        soql = build_bulk_query(spec, fields)
        pages = self.bulk.query(spec.crm_object, soql, include_deleted=spec.include_deleted)
        read = 0
        for rows, last in pages:
            read += len(rows)
            page, highest = self._page(spec, rows, highest, set(), None, ReadProgress(read, total))
            # unordered rows: only the whole job's highest value is a cursor that loses nothing
            yield dataclasses.replace(page, cursor=highest if last else None)

    def _page(self, spec: SalesforceStream, rows: list[dict[str, Any]], highest: datetime | None,
              given_at_highest: set[str], resumed_at: datetime | None,
              progress: ReadProgress | None) -> tuple[PulledPage, datetime | None]:
        records: list[Any] = []
        deleted: list[str] = []
        rejected: list[tuple[str, str]] = []
        for row in rows:
            mapped = map_row(spec.crm_object, row, self.mapping.read, self.mapping.task_key)
            cursor = mapped.cursor
            key = str(row.get(spec.primary_key))
            if resumed_at is not None and cursor is not None and cursor <= resumed_at and (
                    cursor < resumed_at or key in given_at_highest):
                continue  # given before the query was resumed
            if cursor is not None and (highest is None or cursor > highest):
                highest = cursor
                given_at_highest.clear()
            if cursor is not None and cursor == highest:
                given_at_highest.add(key)
            if mapped.deleted:
                deleted.append(mapped.deleted)
            elif mapped.rejected:
                rejected.append((canonical_id(spec.crm_object, key), mapped.rejected))
                log.warning("salesforce %s %s rejected: %s", spec.crm_object, key, mapped.rejected)
            elif mapped.record is not None:
                records.append(mapped.record)
        return PulledPage(stream=spec.name, records=records, cursor=highest, deleted=deleted,
                          rejected=rejected, progress=progress), highest
