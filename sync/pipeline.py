"""The imperative shell of a sync: each function does one I/O step or one pure call.

The flows wrap these as Prefect tasks and only sequence them; the CLI and the tests can call them
directly. Decisions (scores, owners, tasks, what to write) come from the pure packages; this module
moves data between the CRMs, the store and those packages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Mapping as Map
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any

import orjson

from leadloop.connectors.concurrency import PullsStopped
from leadloop.connectors.mapping import Mapping, load_mapping
from leadloop.connectors.settings import ConnectionSettings, load_connection
from leadloop.crm.activity_columns import ActivityColumns
from leadloop.crm.batch import build_many
from leadloop.crm.dataset import RECORD_TYPES, Dataset
from leadloop.crm.identity import IdentityResult, identity_key, repoint_activities, resolve_identity
from leadloop.crm.ports import CallCounter, CrmSink, CrmSource, ReadProgress, family_of
from leadloop.crm.records import Activity, Asset, Crm, Person
from leadloop.playbook.load import load_playbook_and_text
from leadloop.playbook.model import Playbook
from leadloop.routing.engine import route_all
from leadloop.routing.model import OpenTask, RoutingResult
from leadloop.routing.owners import OwnerDirectory
from leadloop.routing.state import AssignmentState
from leadloop.scoring.due import due_times
from leadloop.scoring.engine import ScoringResult, prepare, score_dataset, score_prepared
from leadloop.scoring.partition import activity_home, merge_results, partition_people
from leadloop.scoring.scorecard import AccountScore, Escalation, Reason, ReasonKind, ScoreCard
from leadloop.store.db import open_store
from leadloop.store.facade import Store
from leadloop.sync.live import PlaybookChoice, choose_playbook

log = logging.getLogger("leadloop.sync")

Progress = Callable[[str, int, int | None], None]  # (step, done, total)
_progress: Progress | None = None


def set_progress(reporter: Progress | None) -> None:
    """Let a terminal show progress of long steps (the CLI sets a rich progress bar)."""
    global _progress
    _progress = reporter


def report_progress(step: str, done: int, total: int | None = None) -> None:
    if _progress is not None:
        _progress(step, done, total)


@dataclass(slots=True)
class Runtime:
    """What one run works with: settings, the playbook and its mapping, the store, the connectors."""

    settings: ConnectionSettings
    playbook: Playbook
    mapping: Mapping
    store: Store
    sources: dict[Crm, CrmSource] = field(default_factory=dict)
    sinks: dict[Crm, CrmSink] = field(default_factory=dict)
    counters: dict[Crm, CallCounter] = field(default_factory=dict)
    choice: PlaybookChoice | None = None  # which playbook, and whether it is live, a preview or made live
    stopping: threading.Event = field(default_factory=threading.Event)  # the run is stopping: pulls end

    def api_calls(self) -> dict[str, dict[str, int]]:
        return {crm.value: dict(sorted(c.calls.items())) for crm, c in self.counters.items()}

    def close(self) -> None:
        self.store.close()


def open_runtime(connection: str | ConnectionSettings | None, playbook_path: str | None,
                 store_url: str | None, *, kind: str = "hourly_sync", activate: bool = False) -> Runtime:
    """Load the settings (unless given: a connection block's), open the store, choose the playbook (the
    live one unless `playbook_path` names another: `sync.live`) and build one client per configured
    CRM. `connection`: settings, a connection file, or None for the environment."""
    settings = connection if isinstance(connection, ConnectionSettings) else load_connection(connection)
    # a playbook that cannot be read says so before the store is opened (and created)
    loaded = load_playbook_and_text(playbook_path) if playbook_path is not None else None
    store = open_store(store_url or settings.store_url)
    try:
        choice = choose_playbook(store, playbook_path, kind=kind, activate=activate, loaded=loaded)
        mapping = load_mapping(choice.playbook.mapping)
    except BaseException:
        store.close()
        raise
    runtime = Runtime(settings, choice.playbook, mapping, store, choice=choice)
    ca = settings.ca_cert
    if settings.salesforce is not None:
        from leadloop.connectors.salesforce.client import salesforce_client
        from leadloop.connectors.salesforce.sink import SalesforceSink
        from leadloop.connectors.salesforce.source import SalesforceSource

        counter = runtime.counters[Crm.SALESFORCE] = CallCounter()
        client = salesforce_client(settings.salesforce, ca, counter=counter)
        client.stopping = runtime.stopping
        bulk = settings.salesforce.bulk_threshold
        runtime.sources[Crm.SALESFORCE] = SalesforceSource(client, mapping.salesforce, bulk_threshold=bulk)
        runtime.sinks[Crm.SALESFORCE] = SalesforceSink(client, mapping.salesforce, bulk_threshold=bulk)
    if settings.hubspot is not None:
        from leadloop.connectors.hubspot.client import hubspot_client
        from leadloop.connectors.hubspot.sink import HubSpotSink
        from leadloop.connectors.hubspot.source import HubSpotSource

        counter = runtime.counters[Crm.HUBSPOT] = CallCounter()
        client = hubspot_client(settings.hubspot, ca, counter=counter)
        client.stopping = runtime.stopping
        runtime.sources[Crm.HUBSPOT] = HubSpotSource(
            client, mapping.hubspot,
            archived_interval=timedelta(minutes=settings.hubspot.archived_check_minutes))
        known = {key: row.crm_task_id for key, row in store.task_ledger(Crm.HUBSPOT.value).items()
                 if row.crm_task_id}
        runtime.sinks[Crm.HUBSPOT] = HubSpotSink(client, mapping.hubspot, known_tasks=known)
    return runtime


# -- pull ------------------------------------------------------------------------------------------------


# the suffix of the cursor row that remembers when a stream's deletions were last checked
DELETIONS_CHECKED = "#deletions-checked"
# A long pull logs where it is every this many pages: 20,000 records of a Salesforce query, 1,000 of a
# HubSpot listing (their largest pages), a line every few seconds; or sooner once this many seconds
# have passed since its last line, for pages that come slowly under rate limits.
PAGES_PER_PROGRESS_LINE = 10
SECONDS_PER_PROGRESS_LINE = 15.0


@dataclass(slots=True)
class PullStats:
    crm: str
    stream: str
    records: int = 0
    deleted: int = 0
    rejected: int = 0
    pages: int = 0
    cursor: datetime | None = None


def pull_stream(runtime: Runtime, crm: Crm, stream: str) -> PullStats:
    """Pull one stream from its cursor and store it a few pages at a time (`PulledBatch`). A cursor
    is committed with the pages it covers and never before, so a run that dies here loses nothing:
    the next one re-reads from the last cursor committed."""
    from leadloop.connectors.concurrency import stream_slots

    source = runtime.sources[crm]
    with stream_slots(source):  # streams pulled at once wait here for their source to take them
        if runtime.stopping.is_set():  # the run stopped while this stream waited its turn
            raise PullsStopped(f"pull {crm.value} {stream}: not started, the run is stopping")
        return _pull_stream(runtime, source, crm, stream)


def _pull_stream(runtime: Runtime, source: CrmSource, crm: Crm, stream: str) -> PullStats:
    store = runtime.store
    since = store.get_cursor(crm.value, stream)
    checked_key = f"{stream}{DELETIONS_CHECKED}"
    checked = store.get_cursor(crm.value, checked_key)
    stats = PullStats(crm.value, stream)
    lines = ProgressLines()
    batch = PulledBatch(store, crm.value, stream, checked_key, stats)
    for page in _stored_if_the_read_fails(source.pull(stream, since, deletions_checked=checked), batch):
        if page.deleted or page.rejected:
            # tombstones and quarantine act on what is stored: everything before them first
            batch.flush()
            store.upsert_snapshots(crm.value, stream, page.records, cursor=page.cursor)
            if page.deleted:
                store.tombstone(crm.value, stream, page.deleted)
            if page.rejected:
                store.quarantine_rejected(crm.value, stream, page.rejected)
            batch.add(page.records, page.cursor, page.deletions_checked, stored=True, whole=page.whole)
        else:
            batch.add(page.records, page.cursor, page.deletions_checked, whole=page.whole)
        stats.pages += 1
        stats.records += len(page.records)
        stats.deleted += len(page.deleted)
        stats.rejected += len(page.rejected)
        progress = page.progress
        report_progress(f"pull {crm.value} {stream}", *(progress or (stats.records, None)))
        if lines.due(stats.pages):
            log.info("%s", progress_line(stats, progress))
        if runtime.stopping.is_set():  # what was read is stored with its cursor; nothing more is read
            batch.flush()
            raise PullsStopped(f"pull {crm.value} {stream}: stopped after {stats.pages} pages, "
                               "the run is stopping")
    batch.flush()
    cursor = stats.cursor or since
    log.info("pulled %s %s: %d records in %d pages (%d deleted, %d rejected), cursor at %s", crm.value,
             stream, stats.records, stats.pages, stats.deleted, stats.rejected,
             cursor.isoformat() if cursor else "the beginning")
    return stats


# Pulled pages are committed together once this many records or pages wait, or this many seconds
# after the first of them arrived: one SQLite commit per page was 18% of a full HubSpot pull, while
# 2,000 records (20 list pages, 10 searches, two email-event pages) are a few MB held and a few
# seconds re-read at most if the run dies.
RECORDS_PER_COMMIT = 2_000
PAGES_PER_COMMIT = 20
SECONDS_PER_COMMIT = 5.0


class PulledBatch:
    """The pages of one stream pulled but not yet stored, the cursors they carry and the records
    they read whole (`PulledPage.whole`): `flush` stores them, drops what the records read whole no
    longer give and moves the cursors in one transaction (`Store.store_pages`)."""

    def __init__(self, store: Store, crm: str, stream: str, checked_key: str, stats: PullStats, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store, self.crm, self.stream, self.checked_key = store, crm, stream, checked_key
        self.stats = stats
        self.clock = clock
        self.pages: list[tuple[Sequence[Any], datetime | None]] = []
        self.cursors: dict[str, datetime] = {}
        self.whole: dict[str, set[str]] = {}  # a record read whole → the ids it gives now
        self.records = 0
        self.since = 0.0

    def add(self, records: Sequence[Any], cursor: datetime | None, deletions_checked: datetime | None,
            *, stored: bool = False, whole: Sequence[str] = ()) -> None:
        """A pulled page; `stored` when its records were stored already (only its cursors and what it
        read whole wait)."""
        if not self.pages and not self.cursors and not self.whole:
            self.since = self.clock()
        if not stored:
            self.pages.append((records, cursor))
            self.records += len(records)
        if whole:  # the page's reading of each is the latest: it replaces an earlier page's
            given: dict[str, set[str]] = {family: set() for family in whole}
            for record in records:
                given.get(family_of(record.id), set()).add(record.id)
            self.whole.update(given)
        if cursor is not None:
            self.cursors[self.stream] = max(cursor, self.cursors.get(self.stream, cursor))
        if deletions_checked is not None:
            self.cursors[self.checked_key] = deletions_checked
        if (self.records >= RECORDS_PER_COMMIT or len(self.pages) >= PAGES_PER_COMMIT
                or self.clock() - self.since >= SECONDS_PER_COMMIT):
            self.flush()

    def flush(self) -> None:
        if not self.pages and not self.cursors and not self.whole:
            return
        _stored, moved = self.store.store_pages(self.crm, self.stream, self.pages, self.cursors,
                                                whole=self.whole)
        if self.stream in moved:
            self.stats.cursor = moved[self.stream]
        self.pages, self.cursors, self.whole, self.records = [], {}, {}, 0


def _stored_if_the_read_fails(pages: Iterable[Any], batch: PulledBatch) -> Iterable[Any]:
    """`pages`; when reading them fails, the pages already read are stored (with their cursors)
    before the failure is raised, so a retry does not read them again. A failure to store is not
    caught here: its pages and their cursors stay unstored together."""
    try:
        yield from pages
    except Exception:
        batch.flush()
        raise


def pull_streams(runtime: Runtime, streams: Sequence[tuple[Crm, str]],
                 pull: Callable[[Runtime, Crm, str], PullStats] | None = None) -> list[PullStats]:
    """`pull_stream` for each (CRM, stream), all at once, each on a thread of its own (as many as
    each source takes at once: `connectors.concurrency.stream_slots`): a stream's pages follow one
    another by the CRM's token, so streams side by side are what keeps the calls a CRM lets fly busy
    (its client bounds them, and its rate). Returns the stats in the order given, once every pull
    has ended; the first pull that failed raises then, the others having stored (and moved their
    cursors over) what they read."""
    from concurrent.futures import ThreadPoolExecutor, wait

    pull = pull or pull_stream
    if len(streams) <= 1:
        return [pull(runtime, crm, stream) for crm, stream in streams]
    with ThreadPoolExecutor(max_workers=len(streams), thread_name_prefix="leadloop-pull") as pool:
        futures = [pool.submit(pull, runtime, crm, stream) for crm, stream in streams]
        try:
            wait(futures)
        except BaseException:  # Ctrl-C, SIGTERM: the other streams end at their next call or page
            stop_pulls(runtime, lambda: wait(futures, timeout=STOP_GRACE_SECONDS))
            raise
    return [future.result() for future in futures]


# How long a stopped run waits for the streams still pulling to store what they read and end before
# it closes the store under them: a call in flight finishes (or times out) first.
STOP_GRACE_SECONDS = 2.5


def stop_pulls(runtime: Runtime, wait_for_them: Callable[[], Any]) -> None:
    """The run is stopping (Ctrl-C, SIGTERM, a cancel): tell the streams still pulling, and give them
    a moment (`wait_for_them`, bounded by `STOP_GRACE_SECONDS`) to store what they read and end,
    so the run is recorded and its store closed after them. A second interruption cuts the wait."""
    runtime.stopping.set()
    with contextlib.suppress(BaseException):  # a second interruption: the first is the one raised
        wait_for_them()


def progress_line(stats: PullStats, progress: ReadProgress | None) -> str:
    """Where a pull stands: `pull salesforce Contact: 4,000 of 12,345 (32%) in 2 pages so far` when the
    CRM announced a total, else `pull hubspot owners: 1,000 records in 10 pages so far`."""
    pages = f"{stats.pages:,} page{'s' if stats.pages != 1 else ''} so far"
    if progress is None:
        return f"pull {stats.crm} {stats.stream}: {stats.records:,} records in {pages}"
    read, total = progress
    # a record created during the pull can take the count past the total the CRM announced
    percent = min(100, read * 100 // total) if total else 100
    return f"pull {stats.crm} {stats.stream}: {read:,} of {total:,} ({percent}%) in {pages}"


class ProgressLines:
    """When a pull logs its next progress line: `PAGES_PER_PROGRESS_LINE` pages or
    `SECONDS_PER_PROGRESS_LINE` seconds after its last one, whichever comes first."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.pages_then, self.then = 0, clock()

    def due(self, pages: int) -> bool:
        now = self.clock()
        if pages - self.pages_then < PAGES_PER_PROGRESS_LINE and now - self.then < SECONDS_PER_PROGRESS_LINE:
            return False
        self.pages_then, self.then = pages, now
        return True


# -- identity and scoring ----------------------------------------------------------------------------------


def load_and_resolve(store: Store, people_per_partition: int | None = None, *, activities: bool = True
                     ) -> tuple[Dataset, IdentityResult]:
    """The stored per-CRM records and their merge into canonical people and accounts.

    With `people_per_partition`, the activities are read only when the canonical people fit one
    partition; otherwise they stay in the store and each partition reads its own when it is scored
    (`stored_partitions`), so a sync never holds every activity at once. Without `activities` they
    stay in the store whatever the size (`score_from_store` reads them as columns)."""
    raw = store.load_records(skip=("activities",))
    identity = resolve_identity(raw.people, raw.accounts, (), raw.opportunities)
    if activities and (people_per_partition is None
                       or partitions_for(identity.people, people_per_partition) == 1):
        loaded = store.load_records(skip=_ALL_BUT_ACTIVITIES)
        raw.activities = loaded.activities
        raw.invalid.extend(loaded.invalid)
        # nothing else holds the records just loaded, so they are re-pointed in place
        identity.activities = repoint_activities(raw.activities, identity.person_links)
    return raw, identity


_ALL_BUT_ACTIVITIES = tuple(kind for kind in RECORD_TYPES if kind != "activities")


def save_identity(store: Store, identity: IdentityResult, through: datetime | None = None,
                  keys: Map[str, str] | None = None) -> None:
    """The links, conflicts and canonical records of a merge of the snapshots stored up to `through`
    (`Store.stored_through` before they were read), which the next hourly run can keep; `keys`: what
    identity read of each record (`identity_keys`)."""
    store.save_identity(identity.links, identity.conflicts, through=through, keys=keys, records={
        "people": identity.people, "accounts": identity.accounts, "opportunities": identity.opportunities})


def identity_keys(raw: Dataset) -> dict[str, str]:
    """Record id → what identity reads of it (`crm.identity.identity_key`), for the merged people and
    accounts of `raw`."""
    return {record.id: identity_key(record) for kind in (raw.people, raw.accounts) for record in kind}


def release_pulled(raw: Dataset) -> None:
    """Drop the per-CRM people, accounts, activities and opportunities once identity has made the
    canonical ones (`merged_dataset` keeps only the other kinds of `raw`): at 2 million activities
    the pulled copies are most of a sync's memory, and nothing after identity reads them."""
    raw.people, raw.accounts, raw.activities, raw.opportunities = [], [], [], []


def merged_dataset(raw: Dataset, identity: IdentityResult) -> Dataset:
    return Dataset(
        accounts=identity.accounts, people=identity.people, activities=identity.activities,
        opportunities=identity.opportunities, campaigns=raw.campaigns, assets=raw.assets,
        owners=raw.owners, contact_roles=raw.contact_roles,
    )


def score(playbook: Playbook, dataset: Dataset, now: datetime) -> ScoringResult:
    return score_dataset(playbook, dataset, now)


PEOPLE_PER_PARTITION = 50_000  # scoring splits larger datasets into account partitions of about this size
PARTITIONS_AT_ONCE = 1  # partitions read and scored at once (see score_from_store)


def partitions_for(people: Dataset | Sequence[Person],
                   people_per_partition: int = PEOPLE_PER_PARTITION) -> int:
    count = len(people.people if isinstance(people, Dataset) else people)
    return max(1, -(-count // max(1, people_per_partition)))


@dataclass(frozen=True, slots=True)
class StoredPartition:
    """One account partition whose activities are still in the store: its accounts and people, the
    CRM person ids whose activities belong to it, and the activities stored under two streams
    (settled on their newest payload once for all partitions, so none is read into two)."""

    index: int
    dataset: Dataset  # without activities
    persons: frozenset[str | None]
    settled: tuple[Activity, ...]
    skip: frozenset[str]
    until: datetime | None = None  # only the activities that happened by then (a look back)
    every: bool = False  # the only partition: it reads every stored activity (`persons` is empty)
    due: bool = False  # also say when each card is next due (`scoring.due`), for the hourly sync


def stored_partitions(store: Store, dataset: Dataset, links: Map[str, str], parts: int, *,
                      until: datetime | None = None, due: bool = False,
                      persons: frozenset[str] | None = None) -> list[StoredPartition]:
    """`dataset` (canonical, its activities left in the store) split as `partition_dataset` would
    split it with every activity loaded: each stored activity's person is mapped through `links` (the
    people's identity links) to the partition that person's activities go to. One partition reads
    every activity in one pass over the store, which settles those stored twice as it goes, or, given
    `persons` (the CRM ids of a part of the people: an hourly run's), only theirs."""
    if parts == 1 and persons is not None:
        return [StoredPartition(0, dataset, frozenset(persons), (), frozenset(), until, due=due)]
    if parts == 1:  # the whole dataset, as a one-pass score takes it
        return [StoredPartition(0, dataset, frozenset(), (), frozenset(), until, every=True, due=due)]
    persons, twice = store.activity_persons()
    pieces, home = partition_people(dataset, parts)
    wanted: list[set[str | None]] = [set() for _ in range(parts)]
    for person in persons:
        if person is None:  # no person: such a payload does not validate; read it once
            wanted[0].add(None)
            continue
        canonical = links.get(person, person)
        wanted[activity_home(canonical, home, parts)].add(person)
    settled: list[list[Activity]] = [[] for _ in range(parts)]
    if twice:
        activities, _invalid = store.load_activities(ids=twice)
        for activity in repoint_activities(activities, links):
            settled[activity_home(activity.person_id, home, parts)].append(activity)
    skip = frozenset(twice)
    return [StoredPartition(i, pieces[i], frozenset(wanted[i]), tuple(settled[i]), skip, until, due=due)
            for i in range(parts)]


def score_stored_partition(playbook: Playbook, store: Store, partition: StoredPartition,
                           links: Map[str, str], now: datetime) -> tuple[ScoringResult, list[Activity]]:
    """Read one partition's activities (those up to its `until`, when set), score the partition, and
    let its activities go, keeping for routing only one activity per person and asset (all routing
    reads of them: which assets a person already had). Returns the result and those activities.

    The activities are read as columns (`Store.load_activity_columns`): scoring needs no record per
    activity, and routing gets records of only the rows it reads."""
    columns, _invalid = store.load_activity_columns(partition.persons, skip=partition.skip,
                                                    every=partition.every)
    columns = columns.repointed(links)
    if partition.settled:
        columns = ActivityColumns.concat([columns, ActivityColumns.from_records(partition.settled)])
        columns = columns.in_id_order()
    if partition.until is not None:
        columns = columns.until(partition.until)
    if partition.due:  # the due probes score the same people again: what does not depend on the moment, once
        prepared = prepare(playbook, partition.dataset, columns)
        result = score_prepared(prepared, now)
        result.due = due_times(playbook, partition.dataset, columns, now, result, prepared=prepared)
        del prepared
    else:
        result = score_dataset(playbook, partition.dataset, now, activity_columns=columns)
    return result, columns.records(columns.first_per_person_and_asset())


StoredRun = Callable[[Sequence[StoredPartition]], Iterable[tuple[ScoringResult, list[Activity]]]]


def score_from_store(playbook: Playbook, store: Store, dataset: Dataset, links: Map[str, str], now: datetime,
                     parts: int, run: StoredRun | None = None, *, until: datetime | None = None,
                     due: bool = False, persons: frozenset[str] | None = None) -> ScoringResult:
    """`dataset`, its activities still in the store, scored in `parts` partitions that each read
    their own activities: the result of loading them all and scoring in one pass. `run` maps the
    partitions to `score_stored_partition`'s results (as task runs, in a flow); by default one after
    the other. `dataset.activities` is set to what routing needs of them (`assets_had`). With `until`,
    only the activities that happened by then are scored (the model review's look back).

    One partition at a time (`PARTITIONS_AT_ONCE`): at 100,000 people in two partitions, two task
    threads at once took 67.9 s and peaked at 1,863 MB, one at a time 52.7 s and 1,306 MB: the
    threads share one interpreter lock, so running together only overlaps their memory.

    With `due`, each card also says when it is next due (`ScoringResult.due`); `persons` (CRM person
    ids) restricts the read to those people's activities where `dataset` holds only them."""
    partitions = stored_partitions(store, dataset, links, parts, until=until, due=due, persons=persons)
    if run is None:
        outcomes: Iterable[tuple[ScoringResult, list[Activity]]] = (
            score_stored_partition(playbook, store, p, links, now) for p in partitions)
    else:
        outcomes = run(partitions)
    results, had = [], []
    for result, assets in outcomes:
        results.append(result)
        had.extend(assets)
    dataset.activities = had
    return merge_results(results)


def assets_had(activities: Iterable[Activity]) -> list[Activity]:
    """One activity per (person, asset) pair, in the order given."""
    seen: set[tuple[str, str]] = set()
    kept = []
    for activity in activities:
        if activity.asset_id and (pair := (activity.person_id, activity.asset_id)) not in seen:
            seen.add(pair)
            kept.append(activity)
    return kept


def score_partitions(playbook: Playbook, dataset: Dataset, now: datetime, people_per_partition: int,
                     store: Store, links: Map[str, str]) -> ScoringResult:
    """`flows.tasks.score_partitions` without Prefect: the partitions read their activities from
    `store` one after the other (one partition in one pass over the store)."""
    parts = partitions_for(dataset, people_per_partition)
    return score_from_store(playbook, store, dataset, links, now, parts)


def _moment(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


_CARD_FIELDS = [(f.name, f.default) for f in dataclasses.fields(ScoreCard) if f.name != "reasons"]
_REQUIRED = dataclasses.MISSING


def scorecards_from_stored(stored: Map[str, str | dict[str, Any]], *, reasons: bool = True
                           ) -> dict[str, ScoreCard]:
    """ScoreCards back from the store's JSON (text or already decoded), keyed like `stored`;
    with `reasons=False`, without their reasons (`last_scores`).

    Built column by column (`crm.batch.build_many`): an incremental sync at 100,000 people
    reads ~1 million stored reasons, and a frozen dataclass's `__init__` per reason was most of
    the time. Fields a card was stored without take their defaults."""
    datas = [orjson.loads(v) if isinstance(v, str | bytes) else v for v in stored.values()]
    rows = [r for data in datas for r in data.get("reasons", ())] if reasons else []
    lines = build_many(Reason, len(rows), {
        "kind": list(map(ReasonKind, map(itemgetter("kind"), rows))),
        "rule": list(map(itemgetter("rule"), rows)),
        "points": list(map(float, map(itemgetter("points"), rows))),
        "text": list(map(itemgetter("text"), rows)),
        "occurred_at": [_moment(r.get("occurred_at")) for r in rows],
        "asset": [r.get("asset") for r in rows],
        "why": [r.get("why") for r in rows],
        "contribution": [float(r.get("contribution", 0.0)) for r in rows],  # 0 in cards stored before it
    })
    per_card: list[tuple[Reason, ...]] = []
    start = 0
    for data in datas:
        end = start + len(data.get("reasons", ())) if reasons else start
        per_card.append(tuple(lines[start:end]))
        start = end
    columns: dict[str, list[Any]] = {  # a required field missing from a stored card is a KeyError
        name: [data[name] if default is _REQUIRED else data.get(name, default) for data in datas]
        for name, default in _CARD_FIELDS}
    columns["scored_at"] = [_moment(data["scored_at"]) for data in datas]
    columns["escalation"] = [Escalation(**e) if (e := data.get("escalation")) else None for data in datas]
    columns["reasons"] = per_card
    return dict(zip(stored, build_many(ScoreCard, len(datas), columns), strict=True))


def previous_cards(store: Store) -> dict[str, ScoreCard]:
    return scorecards_from_stored(store.latest_scorecards_json())


def last_scores(store: Store) -> dict[str, ScoreCard]:
    """The last stored card of everyone, as a sync compares with it: without the reasons, which
    nothing that compares reads (what changed is tier, scores, stage, disqualification and
    escalation: `changed_cards`, routing's triggers, the tier moves). Rebuilding every stored
    reason line was most of reading the last cards."""
    return scorecards_from_stored(store.latest_scorecards_json(), reasons=False)


def changed_cards(result: ScoringResult, previous: dict[str, ScoreCard]) -> list[ScoreCard]:
    """Cards that differ from the last stored one in anything a person would notice (not decay noise
    below a whole point): those are appended to the score history."""

    def key(card: ScoreCard) -> tuple[Any, ...]:
        return (card.model_version, card.tier, round(card.score), round(card.fit), round(card.intent),
                card.stage, card.disqualified, card.escalation.rule if card.escalation else None)

    return [c for pid, c in sorted(result.cards.items())
            if pid not in previous or key(previous[pid]) != key(c)]


def save_scores(store: Store, run_id: str, cards: Sequence[ScoreCard], accounts: Iterable[AccountScore],
                now: datetime) -> int:
    saved = store.save_scorecards(run_id, cards)
    store.save_account_scores(run_id, accounts, now)
    return saved


# -- routing ------------------------------------------------------------------------------------------------


def owner_directory(dataset: Dataset) -> OwnerDirectory:
    """Rep email → owner id in each CRM, from the pulled Salesforce users and HubSpot owners."""
    entries: dict[str, dict[Crm, str]] = {}
    for owner in dataset.owners:
        if not owner.email:
            continue
        crm = Crm.SALESFORCE if owner.id.startswith("sf-") else Crm.HUBSPOT
        entries.setdefault(owner.email, {})[crm] = owner.crm_id or owner.id.split(":", 1)[-1]
    return OwnerDirectory(entries)


def open_tasks(store: Store) -> list[OpenTask]:
    tasks: dict[str, OpenTask] = {}
    for crm in Crm:
        for key, row in store.task_ledger(crm.value).items():
            if row.status == "open" and row.person_id and key not in tasks:
                due = row.due if isinstance(row.due, date) else row.created_at.date()
                tasks[key] = OpenTask(row.person_id, key, row.owner or "", row.created_at, due)
    return list(tasks.values())


def catalog_assets(playbook: Playbook, assets: Iterable[Asset]) -> list[Asset]:
    """The playbook's asset catalog as canonical assets, plus the assets the CRMs know."""
    by_id = {a.id: a for a in assets}
    for item in playbook.assets:
        by_id.setdefault(item.id, Asset(id=item.id, name=item.name, type=item.type,
                                        product_family=item.product_family, segment=item.segment,
                                        stage=item.stage))
    return list(by_id.values())


def routing_directory(playbook: Playbook, dataset: Dataset) -> OwnerDirectory:
    """The reps' and queues' CRM ids from the playbook, completed by the CRM users pulled by email."""
    pulled = owner_directory(dataset)
    if playbook.routing is None:
        return pulled
    return OwnerDirectory.from_section(playbook.routing, pulled.entries())


def route(playbook: Playbook, dataset: Dataset, scoring: ScoringResult, previous: dict[str, ScoreCard],
          tasks: Sequence[OpenTask], state: AssignmentState, now: datetime) -> RoutingResult | None:
    """Routing decisions for every scored person (and every account whose buying committee meets the
    playbook's committee condition), or None when the playbook has no routing section."""
    if playbook.routing is None:
        return None
    return route_all(
        scoring.cards.values(), people={p.id: p for p in dataset.people}, section=playbook.routing,
        state=state, now=now, accounts={a.id: a for a in dataset.accounts}, previous=previous,
        opportunities=dataset.opportunities, activities=dataset.activities, open_tasks=tasks,
        assets=catalog_assets(playbook, dataset.assets), directory=routing_directory(playbook, dataset),
        profile_segments={p.id: p.segments for p in playbook.profiles}, account_scores=scoring.accounts,
        committee_roles=playbook.account.committee.roles if playbook.account.committee is not None else (),
    )


def utc_now() -> datetime:
    return datetime.now(UTC)


def tier_changes(result: ScoringResult, previous: dict[str, ScoreCard]) -> Counter[tuple[str, str]]:
    """(old tier, new tier) → people, for the people whose tier moved (new people count from '')."""
    moves: Counter[tuple[str, str]] = Counter()
    for pid, card in result.cards.items():
        old = previous[pid].tier if pid in previous else ""
        if old != card.tier:
            moves[(old, card.tier)] += 1
    return moves
