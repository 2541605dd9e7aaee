"""The connectors' one token paginator (connectors/paging.py): every page in order, the last one known
as such, and a token handed out twice never followed."""

from __future__ import annotations

import logging

import pytest

from leadloop.connectors.paging import OnRepeat, PagingLoopError, TokenPaginator


def chain(*tokens: str | None, on_repeat: OnRepeat = "raise") -> tuple[list[str | None], TokenPaginator[int]]:
    """A read whose page n (0-based) answers n and points at `tokens[n]`; also the tokens asked for."""
    asked: list[str | None] = []

    def fetch(token: str | None) -> int:
        asked.append(token)
        return len(asked) - 1

    pages = TokenPaginator(fetch, lambda page: tokens[page], endpoint="GET /things", on_repeat=on_repeat)
    return asked, pages


def test_pages_are_read_in_order_following_each_token_until_there_is_none():
    asked, pages = chain("a", "b", None)
    assert list(pages) == [0, 1, 2]
    assert asked == [None, "a", "b"]


def test_a_single_page_read_asks_once_and_is_finished_at_once():
    asked, pages = chain(None)
    assert [(page, pages.finished) for page in pages] == [(0, True)]
    assert asked == [None]


def test_finished_is_true_while_the_last_page_is_handed_out_and_not_before():
    _, pages = chain("a", "b", None)
    assert [pages.finished for _ in pages] == [False, False, True]


def test_a_token_handed_out_twice_raises_after_the_page_that_gave_it():
    asked, pages = chain("a", "b", "a")
    seen: list[int] = []
    with pytest.raises(PagingLoopError, match="GET /things repeated paging cursor 'a'"):
        seen.extend(pages)
    assert seen == [0, 1, 2]
    assert asked == [None, "a", "b"]


def test_a_token_repeated_at_once_is_a_loop_too():
    _, pages = chain("a", "a")
    with pytest.raises(PagingLoopError):
        list(pages)


def test_a_read_that_stops_on_a_loop_ends_with_the_page_that_gave_it_as_the_last(caplog):
    asked, pages = chain("a", "b", "a", on_repeat="stop")
    with caplog.at_level(logging.WARNING, logger="leadloop.connectors"):
        read = [(page, pages.finished) for page in pages]
    assert read == [(0, False), (1, False), (2, True)]
    assert asked == [None, "a", "b"]
    assert "repeated paging cursor 'a'" in caplog.text


def test_stopping_early_asks_for_no_further_page():
    asked, pages = chain("a", "b", None)
    for page in pages:
        if page == 1:
            break
    assert asked == [None, "a"]
