"""Pulling at once stays within HubSpot's limits and keeps every promise a one-at-a-time pull made:
threads sharing the limiter never exceed its budget, the client never has more calls in flight than
it allows, the pages handed on keep the order of their inputs, a pull that fails or is killed
midway leaves each cursor where the pages committed with it end, and the sandbox's HubSpot pulled
stream by stream at once gives the same store as pulled one call at a time."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from leadloop.connectors.concurrency import PullsStopped, in_order
from leadloop.connectors.hubspot.client import HubSpotClient
from leadloop.connectors.hubspot.ratelimit import RateLimiter, RateLimits
from leadloop.connectors.hubspot.retry import RetryPolicy
from leadloop.crm.ports import CrmSource, PulledPage
from leadloop.crm.records import Account, Crm
from leadloop.store.db import open_store
from leadloop.store.facade import Store
from leadloop.sync import pipeline
from leadloop.sync.pipeline import Runtime, pull_stream

# -- the limiter and the client under threads ------------------------------------------------------------


class SharedFakeClock:
    """A clock that never moves: every moment the limiter gives is its reservation."""

    def __call__(self) -> float:
        return 0.0

    def sleep(self, seconds: float) -> None:
        pass


@pytest.fixture(autouse=True)
def threads_switch_often() -> Iterator[None]:
    """Switch threads every microsecond, so that code which races does race here."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


def reservations(limits: RateLimits, threads: int, calls: int, search: bool) -> list[float]:
    """The moments the limiter gave `threads` threads of `calls` calls each (now + wait)."""
    clock = SharedFakeClock()
    limiter = RateLimiter(limits, clock=clock, sleep=clock.sleep)
    given: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        for _ in range(calls):
            wait = limiter.acquire(search=search)
            with lock:
                given.append(wait)

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sorted(given)


def test_threads_sharing_the_limiter_are_given_at_most_the_burst_in_any_window():
    limits = RateLimits(burst=12, burst_margin=2, burst_interval=1.0, window_margin=0.0)
    moments = reservations(limits, threads=8, calls=50, search=False)
    assert len(moments) == 400
    budget = limits.burst - limits.burst_margin
    for i in range(len(moments) - budget):
        assert moments[i + budget] - moments[i] >= limits.burst_interval - 1e-9, i
    # and no slower than the budget: 400 calls at 10 a window start in the 40th window
    assert moments[-1] == pytest.approx(39.0)


def test_threads_sharing_the_limiter_are_given_at_most_the_search_limit_each_second():
    limits = RateLimits(burst=190, burst_margin=10, search_per_second=5, window_margin=0.0)
    moments = reservations(limits, threads=8, calls=25, search=True)
    for i in range(len(moments) - 5):
        assert moments[i + 5] - moments[i] >= 1.0 - 1e-9, i


class CountingApi:
    """A `*_with_http_info` method that records how many calls are in it at once."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.lock = threading.Lock()

    def __call__(self, *_args: Any, **_kwargs: Any) -> tuple[Any, int, dict[str, str]]:
        with self.lock:
            self.in_flight += 1
            self.most = max(self.most, self.in_flight)
        time.sleep(0.01)
        with self.lock:
            self.in_flight -= 1
        return {}, 200, {}


class FakeOfficial:
    """Just enough of `hubspot.HubSpot` for `HubSpotClient` to be built around it."""

    class _Apis:
        def __getattr__(self, _name: str) -> Any:
            return self

    def __init__(self) -> None:
        self.crm = self._Apis()
        self.events = self._Apis()


def test_the_client_never_has_more_calls_in_flight_than_it_allows():
    api = CountingApi()
    client = HubSpotClient(FakeOfficial(), "https://api.example.test",  # type: ignore[arg-type]
                           limiter=RateLimiter(RateLimits(burst=1000, burst_margin=10)),
                           policy=RetryPolicy(), concurrent_calls=3)
    pool = [threading.Thread(target=lambda: [client.call("GET /x", api) for _ in range(5)])
            for _ in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert api.most == 3
    assert client.counter.calls == {"GET /x": 40}  # no count lost between threads


def test_a_call_waiting_out_the_rate_window_is_not_sent_once_the_run_stops():
    """A stop reaches the calls queued behind the limiter at once, not after the window they wait
    for (up to 11 s of it, which a cancelled run used to sit through)."""
    api = CountingApi()
    client = HubSpotClient(FakeOfficial(), "https://api.example.test",  # type: ignore[arg-type]
                           limiter=RateLimiter(RateLimits(burst=2, burst_margin=1, burst_interval=60.0)),
                           policy=RetryPolicy(), concurrent_calls=2)
    client.call("GET /x", api)  # the window's one call: the next waits a minute
    outcome: list[BaseException | None] = []

    def second() -> None:
        try:
            client.call("GET /x", api)
            outcome.append(None)
        except BaseException as error:
            outcome.append(error)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.2)
    stopped = time.monotonic()
    client.stopping.set()
    thread.join(timeout=30)
    assert time.monotonic() - stopped < 2
    assert len(outcome) == 1 and isinstance(outcome[0], PullsStopped), outcome
    assert client.counter.calls == {"GET /x": 1}  # the waiting call was never sent


def test_a_retry_waiting_its_backoff_ends_once_the_run_stops():
    attempts: list[float] = []

    def failing(*_args: Any, **_kwargs: Any) -> Any:
        attempts.append(time.monotonic())
        raise ConnectionError("the connection dropped")

    client = HubSpotClient(FakeOfficial(), "https://api.example.test",  # type: ignore[arg-type]
                           policy=RetryPolicy(attempts=5, initial_wait=30.0, max_wait=30.0, jitter=0.0))
    threading.Timer(0.3, client.stopping.set).start()
    started = time.monotonic()
    with pytest.raises(PullsStopped):
        client.call("GET /x", failing)
    assert time.monotonic() - started < 5
    assert len(attempts) == 1


def test_streams_queued_behind_their_source_do_not_start_once_the_run_stops(runtime):
    runtime.sources[Crm.HUBSPOT] = ScriptedSource(pages=3)
    runtime.stopping.set()
    with pytest.raises(PullsStopped, match="not started"):
        pull_stream(runtime, Crm.HUBSPOT, "companies")
    assert runtime.store.get_cursor("hubspot", "companies") is None


def test_reads_made_at_once_are_handed_on_in_the_order_asked():
    def read(n: int) -> int:
        time.sleep(0.001 * (10 - n % 10))  # the later ones answer first
        return n * n

    assert list(in_order(read, range(25), workers=4)) == [n * n for n in range(25)]


def test_a_read_that_fails_raises_in_its_turn_after_the_reads_before_it():
    def read(n: int) -> int:
        if n == 3:
            raise RuntimeError("read 3 broke")
        return n

    got: list[int] = []
    with pytest.raises(RuntimeError, match="read 3 broke"):
        for value in in_order(read, range(10), workers=4):
            got.append(value)
    assert got == [0, 1, 2]


# -- a pull that dies midway ---------------------------------------------------------------------------

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)


def account(n: int, at: datetime, name: str | None = None) -> Account:
    return Account(id=f"hs-company:{n}", name=name or f"Acme {n}", hubspot_id=str(n), updated_at=at)


class ScriptedSource(CrmSource):
    """Pages of ten accounts, each page's cursor its newest record; raises after `fail_after` pages."""

    crm = Crm.HUBSPOT

    def __init__(self, pages: int, fail_after: int | None = None) -> None:
        self.pages = pages
        self.fail_after = fail_after

    def streams(self) -> Sequence[str]:
        return ["companies"]

    def pull(self, stream: str, since: datetime | None, *,
             deletions_checked: datetime | None = None) -> Iterator[PulledPage]:
        for page in range(self.pages):
            if page == self.fail_after:
                raise ConnectionError("the connection dropped")
            stamp = T0 + timedelta(minutes=page)
            records = [account(page * 10 + i, stamp) for i in range(10)]
            yield PulledPage(stream=stream, records=records, cursor=stamp)


def page_end(page: int) -> datetime:
    return T0 + timedelta(minutes=page)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    store = open_store(f"sqlite:///{tmp_path / 'state.db'}")
    yield Runtime(settings=None, playbook=None, mapping=None, store=store)  # type: ignore[arg-type]
    store.close()


def stored_ids(store: Store) -> set[str]:
    return {a.id for a in store.load_records().accounts}


def test_pages_are_committed_several_at_a_time_with_their_cursor(runtime, monkeypatch):
    monkeypatch.setattr(pipeline, "PAGES_PER_COMMIT", 3)
    commits: list[tuple[int, datetime | None]] = []
    store_pages = runtime.store.store_pages

    def counted(crm: str, stream: str, pages: Any, cursors: Any = None, now: Any = None, **more: Any) -> Any:
        pages = list(pages)
        commits.append((len(pages), (cursors or {}).get("companies")))
        return store_pages(crm, stream, pages, cursors, now, **more)

    monkeypatch.setattr(runtime.store, "store_pages", counted)
    runtime.sources[Crm.HUBSPOT] = ScriptedSource(pages=7)
    stats = pull_stream(runtime, Crm.HUBSPOT, "companies")
    assert commits == [(3, page_end(2)), (3, page_end(5)), (1, page_end(6))]
    assert stats.cursor == page_end(6) and stats.records == 70
    assert len(stored_ids(runtime.store)) == 70


def test_a_pull_whose_source_fails_midway_stores_what_it_read_and_its_cursor_covers_no_more(
        runtime, monkeypatch):
    monkeypatch.setattr(pipeline, "PAGES_PER_COMMIT", 3)
    runtime.sources[Crm.HUBSPOT] = ScriptedSource(pages=9, fail_after=5)
    with pytest.raises(ConnectionError):
        pull_stream(runtime, Crm.HUBSPOT, "companies")
    assert runtime.store.get_cursor("hubspot", "companies") == page_end(4)
    assert stored_ids(runtime.store) == {f"hs-company:{n}" for n in range(50)}


def test_a_pull_killed_while_committing_leaves_the_cursor_where_the_committed_pages_end(
        runtime, monkeypatch):
    """A commit that never happens (the process killed in it, the disk full) takes its pages and
    their cursor with it: the cursor stays at the end of the last pages committed."""
    monkeypatch.setattr(pipeline, "PAGES_PER_COMMIT", 3)
    store_pages = runtime.store.store_pages
    calls = []

    def dies_on_the_second_commit(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as the process's end: nothing of this commit is written
        return store_pages(*args, **kwargs)

    monkeypatch.setattr(runtime.store, "store_pages", dies_on_the_second_commit)
    runtime.sources[Crm.HUBSPOT] = ScriptedSource(pages=9)
    with pytest.raises(KeyboardInterrupt):
        pull_stream(runtime, Crm.HUBSPOT, "companies")
    assert runtime.store.get_cursor("hubspot", "companies") == page_end(2)
    assert stored_ids(runtime.store) == {f"hs-company:{n}" for n in range(30)}
    # the next run re-reads from there and ends where a run that never died would
    monkeypatch.setattr(runtime.store, "store_pages", store_pages)
    pull_stream(runtime, Crm.HUBSPOT, "companies")
    assert runtime.store.get_cursor("hubspot", "companies") == page_end(8)
    assert len(stored_ids(runtime.store)) == 90


def test_within_a_commit_an_older_version_of_a_record_never_replaces_a_newer_one(runtime):
    newer, older = account(1, T0 + timedelta(hours=1)), account(1, T0, name="Acme (a lagging index)")
    stored, _cursors = runtime.store.store_pages("hubspot", "companies", [([newer], None), ([older], None)])
    assert stored == 1
    [kept] = runtime.store.load_records().accounts
    assert (kept.name, kept.updated_at) == ("Acme 1", T0 + timedelta(hours=1))


# -- against the sandbox: at once and one at a time give the same store ---------------------------------


def pulled_store(handle: Any, store_url: str, concurrent_calls: int) -> dict[str, Any]:
    """Every HubSpot stream pulled into a fresh store: its snapshots by (stream, id) and its cursors."""
    from sqlalchemy import select

    from leadloop.connectors.settings import load_connection
    from leadloop.store.tables import SNAPSHOTS

    settings = load_connection(handle.connection_file)
    hubspot = settings.hubspot.model_copy(update={"concurrent_calls": concurrent_calls})
    settings = settings.model_copy(update={"salesforce": None, "hubspot": hubspot})
    runtime = pipeline.open_runtime(settings, None, store_url)
    try:
        source = runtime.sources[Crm.HUBSPOT]
        stats = pipeline.pull_streams(runtime, [(Crm.HUBSPOT, s) for s in source.streams()])
        with runtime.store.engine.connect() as conn:
            rows = conn.execute(select(SNAPSHOTS.c.stream, SNAPSHOTS.c.record_id, SNAPSHOTS.c.payload,
                                       SNAPSHOTS.c.deleted, SNAPSHOTS.c.quarantine_reason)).all()
        return {"snapshots": {(r.stream, r.record_id): (r.payload, r.deleted, r.quarantine_reason)
                              for r in rows},
                "cursors": set(runtime.store.cursors()), "calls": runtime.api_calls()["hubspot"],
                "pages": {s.stream: s.pages for s in stats},
                "quarantined": {(q.stream, q.crm_id) for q in runtime.store.quarantined()}}
    finally:
        runtime.close()


def test_the_sandbox_pulled_at_once_gives_the_store_pulled_one_call_at_a_time(tmp_path: Path):
    from leadloop.sandbox.server import running_sandbox

    with running_sandbox(size="small", seed=5, connection_file=tmp_path / "connection.json") as handle:
        one = pulled_store(handle, f"sqlite:///{tmp_path / 'one.db'}", concurrent_calls=1)
        many = pulled_store(handle, f"sqlite:///{tmp_path / 'many.db'}", concurrent_calls=5)
    # a world with enough page views to be read in spans at once, and forms and events to fan out
    assert one["pages"]["page_views"] > 100
    assert one["calls"]["GET /form-integrations/v1/submissions/forms/{formGuid}"] > 10
    assert len(one["snapshots"]) > 30_000
    assert many["snapshots"] == one["snapshots"]
    assert many["cursors"] == one["cursors"]
    assert many["quarantined"] == one["quarantined"]
    # the spans cost a few calls more than one token-chained read (each span's last page)
    page_views = "GET /events/v3/events"
    assert one["calls"][page_views] < many["calls"][page_views] <= one["calls"][page_views] * 1.1
