"""Pausing Python's cyclic garbage collector around batch work.

Loading, merging, scoring and routing each create millions of small acyclic objects (records,
reasons, decisions, tuples) next to a large live heap of records. Every automatic collection of the
oldest generation rescans that whole heap and finds nothing to free; at 100,000 people that was a
third of routing's time and most of re-pointing two million activities. Reference counting still
frees everything a batch drops; the collector is switched back on afterwards, if it was on.
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
            gc.enable()
