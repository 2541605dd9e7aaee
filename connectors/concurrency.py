"""Independent reads of one pull made at once, their answers handed on in the order they were asked.

A pull whose pages follow each other by a token cannot ask for page two before page one has
answered; what it can do at once is the reads that do not depend on each other: each form's
submissions, each marketing event's attendance, each span of time of the web analytics events, each
batch of emails looked up. `in_order` runs such reads on a few threads and yields their results in
the order of their inputs, so a caller that moves a cursor as it goes sees exactly the sequence a
one-at-a-time read would have given it. At most `workers` reads are started ahead of the one being
handed out, which bounds both the threads and the answers held in memory. A token-chained read
itself can still travel while its caller works on the page before (`read_ahead`).

The client still bounds the calls in flight and the rate (a thread here only waits its turn there),
so `workers` is about keeping enough reads queued, not about how hard HubSpot is asked.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class PullsStopped(Exception):
    """The run is stopping (Ctrl-C, SIGTERM, a cancel in Prefect): a stream pulled beside others ends
    at its next call or page instead of reading on to its end. What it read is stored first."""


def in_order(read: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`read(item)` for each item, up to `workers` at once, yielded in the items' order. A read that
    raises raises here when its turn comes; the reads started after it are cancelled or awaited, so
    no thread outlives the loop."""
    if workers <= 1:
        for item in items:
            yield read(item)
        return
    pending: deque[Future[R]] = deque()
    source = iter(items)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="leadloop-read") as pool:
        try:
            for item in source:
                pending.append(pool.submit(read, item))
                if len(pending) >= workers:
                    break
            while pending:
                result = pending.popleft().result()
                for item in source:
                    pending.append(pool.submit(read, item))
                    break
                yield result
        finally:
            for future in pending:
                future.cancel()


def all_in_order(read: Callable[[T], R], items: Iterable[T], workers: int) -> list[R]:
    """`in_order` read through: every result, in the items' order."""
    return list(in_order(read, items, workers))


_stream_slots: weakref.WeakKeyDictionary[object, threading.Semaphore] = weakref.WeakKeyDictionary()
_stream_slots_lock = threading.Lock()


def stream_slots(source: object) -> threading.Semaphore:
    """The slots a source's pulls take, one per stream being pulled: `source.streams_at_once` of
    them, or one when the source does not say (a client that keeps per-call state, such as the clock
    of the last answer, must serve one stream at a time). One set per source object."""
    with _stream_slots_lock:
        slots = _stream_slots.get(source)
        if slots is None:
            slots = _stream_slots[source] = threading.BoundedSemaphore(
                max(1, int(getattr(source, "streams_at_once", 1))))
        return slots


_DONE = object()


def read_ahead(pages: Iterable[T], depth: int = 1) -> Iterator[T]:
    """`pages` as they come, read up to `depth` ahead on a thread of their own: the next page of a
    token-chained read travels while the caller stores or resolves the one handed out. A failure
    to read raises here in its turn; a caller that stops early stops the reading too."""
    if depth < 1:
        yield from pages
        return
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for page in pages:
                if not put((page, None)):
                    return
        except BaseException as error:  # handed to the caller, who raises it
            put((None, error))
            return
        put((_DONE, None))

    reader = threading.Thread(target=produce, name="leadloop-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            page, error = ready.get()
            if error is not None:
                raise error
            if page is _DONE:
                return
            yield page
    finally:
        stop.set()
        reader.join()
