"""crm.heap: batch work runs with the cycle collector paused, and what it keeps skips the young collection."""

from __future__ import annotations

import gc
import weakref

import pytest

from leadloop.crm.heap import cycle_collection_paused


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def _in_generation(obj: object, generation: int) -> bool:
    return any(o is obj for o in gc.get_objects(generation=generation))


@pytest.fixture(autouse=True)
def collector_on():
    assert gc.isenabled()
    yield
    gc.enable()


def test_what_a_batch_keeps_goes_to_the_oldest_generation_untraversed():
    with cycle_collection_paused():
        kept = [Node() for _ in range(20_000)]
        assert not gc.isenabled()
    assert gc.isenabled()
    assert _in_generation(kept[0], 2) and _in_generation(kept[-1], 2)
    assert not _in_generation(kept[len(kept) // 2], 0)


def test_a_cycle_dropped_during_the_batch_is_freed_by_the_next_full_collection():
    with cycle_collection_paused():
        a, b = Node(), Node()
        a.other, b.other = b, a
        gone = weakref.ref(a)
        del a, b
    assert gone() is not None  # waiting in the oldest generation
    gc.collect()
    assert gone() is None


def test_objects_the_caller_froze_stay_frozen():
    marker = Node()
    gc.freeze()
    try:
        with cycle_collection_paused():
            kept = [Node() for _ in range(1000)]
        assert not any(_in_generation(marker, g) for g in range(3))  # still in the permanent generation
        assert not _in_generation(kept[0], 2)  # nothing was moved
    finally:
        gc.unfreeze()


def test_a_paused_collector_stays_paused():
    gc.disable()
    with cycle_collection_paused():
        kept = [Node() for _ in range(1000)]
    assert not gc.isenabled()
    assert _in_generation(kept[0], 0)
