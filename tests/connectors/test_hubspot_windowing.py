"""Keyset search windows: every record is read once a pull ends, whatever the ties, the result cap or
records modified mid-pull, and no query pages past its first page."""

from __future__ import annotations

from typing import Any

import pytest

from leadloop.connectors.hubspot.windowing import Seen, Window, next_window, search_body


class FakeSearch:
    """HubSpot's search semantics over (id, ms) rows: one filter group, one sort, a result cap."""

    def __init__(self, rows: dict[int, int], cap: int = 10_000) -> None:
        self.rows = rows
        self.cap = cap
        self.calls = 0

    def __call__(self, body: dict[str, Any]) -> list[Seen]:
        self.calls += 1
        assert int(body["after"]) < self.cap, "paged past the result cap"
        filters = body["filterGroups"][0]["filters"]
        matches = [Seen(i, ms) for i, ms in self.rows.items() if all(_ok(f, i, ms) for f in filters)]
        sort = body["sorts"][0]["propertyName"]
        matches.sort(key=(lambda s: s.id) if sort == "hs_object_id" else (lambda s: (s.ms, -s.id)))
        return matches[int(body["after"]):int(body["after"]) + body["limit"]]


def _ok(spec: dict[str, Any], record_id: int, ms: int) -> bool:
    value = record_id if spec["propertyName"] == "hs_object_id" else ms
    wanted = int(spec["value"])
    return {"GTE": value >= wanted, "GT": value > wanted, "EQ": value == wanted}[spec["operator"]]


def read_all(search: FakeSearch, start: int, limit: int, between_pages: Any = None) -> dict[int, int]:
    window: Window | None = Window(start)
    got: dict[int, int] = {}
    while window is not None:
        page = search(search_body(window, "lastmodifieddate", ["email"], limit))
        for seen in page:
            got[seen.id] = max(got.get(seen.id, -1), seen.ms)
        window = next_window(window, page, limit)
        if between_pages:
            between_pages()
            between_pages = None
    return got


def test_a_window_reads_every_record_in_ascending_pages():
    rows = {i: 1000 + i * 7 for i in range(1, 1001)}
    assert read_all(FakeSearch(rows), 0, 200) == rows


def test_more_ties_than_a_page_at_one_instant_are_walked_by_id():
    rows = {i: 5000 for i in range(1, 451)} | {i: 4000 + i for i in range(451, 600)}
    assert read_all(FakeSearch(rows), 0, 200) == rows


def test_more_ties_than_the_result_cap_are_read_without_paging_past_it():
    rows = {i: 7000 for i in range(1, 1201)} | {i: 6000 + i for i in range(1201, 1300)}
    search = FakeSearch(rows, cap=300)
    assert read_all(search, 0, 200) == rows


def test_more_results_than_the_cap_are_read_in_windows_narrowed_by_time():
    rows = {i: i for i in range(1, 3001)}
    search = FakeSearch(rows, cap=400)
    assert read_all(search, 0, 200) == rows
    assert search.calls <= 3000 / 199 + 2  # one re-read per boundary at most


def test_a_record_modified_between_pages_is_read_in_its_new_version_and_nothing_is_skipped():
    rows = {i: 100 + i for i in range(1, 601)}
    search = FakeSearch(rows)

    def modify() -> None:
        rows[3] = 10_000  # moves from the first page to the end of the order

    got = read_all(search, 0, 200, between_pages=modify)
    assert got.keys() == rows.keys()
    assert got[3] == 10_000


def test_a_short_page_ends_the_window():
    assert next_window(Window(0), [Seen(1, 5), Seen(2, 6)], 200) is None


def test_a_full_page_moves_the_window_to_its_last_value_inclusive():
    page = [Seen(i, 10 + i) for i in range(3)]
    assert next_window(Window(0), page, 3) == Window(12, "from")


def test_a_page_of_one_instant_narrows_to_that_instant_and_then_moves_past_it():
    page = [Seen(i, 42) for i in (5, 9, 7)]
    tie = next_window(Window(40), page, 3)
    assert tie == Window(42, "tie", 0)
    assert next_window(tie, [Seen(5, 42), Seen(7, 42), Seen(9, 42)], 3) == Window(42, "tie", 9)
    assert next_window(Window(42, "tie", 9), [Seen(11, 42)], 3) == Window(42, "after")


@pytest.mark.parametrize("mode,operators,sort", [
    ("from", ["GTE"], "lastmodifieddate"), ("after", ["GT"], "lastmodifieddate"),
    ("tie", ["EQ", "GT"], "hs_object_id")])
def test_search_bodies_use_one_sort_epoch_milliseconds_and_the_first_page_only(mode, operators, sort):
    body = search_body(Window(1714521600000, mode, 7), "lastmodifieddate", ["email"], 200)
    filters = body["filterGroups"][0]["filters"]
    assert [f["operator"] for f in filters] == operators
    assert filters[0]["value"] == "1714521600000"
    assert body["sorts"] == [{"propertyName": sort, "direction": "ASCENDING"}]
    assert body["after"] == "0" and body["limit"] == 200
