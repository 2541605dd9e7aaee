"""Keyset windows over HubSpot's search API: every page is a fresh search that starts where the last one
ended, so no read depends on an offset.

Why not offset paging (`after=200, 400, ...`): HubSpot caps a query at 10,000 results (a 400 beyond
it), and an offset shifts when a record modified during the pull moves to the end of the ascending
order: the record that slides into the gap is skipped, for good if it is older than the overlap.
Instead each window is "cursor ≥ T" sorted ascending (only one sort is allowed per search), and the
next window starts at the last cursor value seen. The records at exactly T are read again and
de-duplicated by id. When a whole page shares one cursor value, a window cannot move forward by
time, so it narrows to that instant and walks it by `hs_object_id` (cursor = T and id > last id,
sorted by id), then continues with "cursor > T". No query ever pages past its first page, so the
10,000-result cap is never reached, however many records share a timestamp, and no full re-list is
ever needed.

Docs: https://developers.hubspot.com/docs/api/crm/search (one sort; 200 per page; 10,000 cap)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Mode = Literal["from", "after", "tie"]


@dataclass(frozen=True, slots=True)
class Window:
    """`from`: cursor ≥ ms; `after`: cursor > ms; `tie`: cursor = ms and hs_object_id > after_id."""

    ms: int
    mode: Mode = "from"
    after_id: int = 0


@dataclass(frozen=True, slots=True)
class Seen:
    """One search result reduced to what windowing needs."""

    id: int
    ms: int


def search_body(window: Window, cursor_property: str, properties: Sequence[str], limit: int,
                primary_key: str = "hs_object_id") -> dict[str, Any]:
    """The search request body for one window (datetime filter values as epoch-millisecond strings)."""
    if window.mode == "tie":
        filters = [{"propertyName": cursor_property, "operator": "EQ", "value": str(window.ms)},
                   {"propertyName": primary_key, "operator": "GT", "value": str(window.after_id)}]
        sort = primary_key
    else:
        operator = "GTE" if window.mode == "from" else "GT"
        filters = [{"propertyName": cursor_property, "operator": operator, "value": str(window.ms)}]
        sort = cursor_property
    return {
        "filterGroups": [{"filters": filters}],
        "sorts": [{"propertyName": sort, "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": limit,
        "after": "0",
    }


def next_window(window: Window, page: Sequence[Seen], limit: int) -> Window | None:
    """The window after `page` (the results of `window`, in the order HubSpot returned them), or None
    when the window is exhausted."""
    full = len(page) >= limit
    if window.mode == "tie":
        if full:
            return Window(window.ms, "tie", max(s.id for s in page))
        return Window(window.ms, "after")
    if not full:
        return None
    first, last = page[0].ms, page[-1].ms
    if first == last:
        return Window(last, "tie", 0)  # a whole page at one instant: walk it by id
    return Window(last, "from")
