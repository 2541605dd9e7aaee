"""Pausing Python's cyclic garbage collector around batch work.

Loading, merging, scoring and routing each create millions of small acyclic objects (records,
reasons, decisions, tuples) next to a large live heap of records. Every automatic collection of the
oldest generation rescans that whole heap and finds nothing to free; at 100,000 people that was a
third of routing's time and most of re-pointing two million activities. Reference counting still
frees everything a batch drops; the collector is switched back on afterwards, if it was on.

Switching it back on alone leaves every object the batch kept in the youngest generation, and the
first allocation afterwards triggers a collection that traverses all of them (at 100,000 people: the
scorecards, about a million reasons and their lists) to find no cycle. So before switching back on,
whatever is tracked goes straight to the oldest generation (`gc.freeze()` then `gc.unfreeze()`: two
list splices, no traversal), where the next full collection sees it as it would have anyway. A cycle
that became garbage during the batch is freed by that full collection instead of a young one. When the
caller has frozen objects itself (`gc.get_freeze_count()`), nothing is moved: unfreezing would undo it.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            if gc.get_freeze_count() == 0:
                gc.freeze()
                gc.unfreeze()
            gc.enable()
