"""Token paging, written once for both CRMs (the Singer SDK's `BaseAPIPaginator` is the model): ask
for a page, read the token of the next one from the answer, follow it until there is none, and never
follow a token already followed.

Every token-chained read goes through it: Salesforce's `nextRecordsUrl` (REST queries) and
`Sforce-Locator` (Bulk API 2.0 results), HubSpot's `paging.next.after` (lists, owners, the marketing
APIs, the task-key search) and its email events' `offset`. HubSpot's incremental search is not token
paging and stays apart (`connectors.hubspot.windowing`): each page is a fresh keyset search from the
last cursor value seen, because an `after` offset shifts when a record changes during the read and
stops at 10,000 results. Salesforce's resumption after a renewed session is no paging either: the
query is issued again from the last cursor value (`connectors.salesforce.source`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Generic, Literal, TypeVar

log = logging.getLogger("leadloop.connectors")

R = TypeVar("R")

OnRepeat = Literal["raise", "stop"]


class PagingLoopError(RuntimeError):
    """The CRM handed back a paging token it had already given: following it would never end."""


class TokenPaginator(Generic[R]):
    """The answers of one token-chained read, in order: `fetch(None)` first, then `fetch(token)` for
    each token `next_token(answer)` gives, until it gives None.

    A token given twice is a loop: `on_repeat="raise"` raises PagingLoopError once the answer that
    gave it has been handed out; `"stop"` ends the read there with a warning, as HubSpot's owner,
    marketing and page-view reads always did. `finished` is True while the answer just handed out is
    the last one.
    """

    def __init__(self, fetch: Callable[[str | None], R], next_token: Callable[[R], str | None], *,
                 endpoint: str, on_repeat: OnRepeat = "raise") -> None:
        self._fetch = fetch
        self._next_token = next_token
        self.endpoint = endpoint
        self.on_repeat = on_repeat
        self.finished = False

    def __iter__(self) -> Iterator[R]:
        token: str | None = None
        followed: set[str] = set()
        while True:
            answer = self._fetch(token)
            following = self._next_token(answer)
            repeated = following is not None and following in followed
            self.finished = following is None or (repeated and self.on_repeat == "stop")
            yield answer
            if repeated:
                if self.on_repeat == "raise":
                    raise PagingLoopError(f"{self.endpoint} repeated paging cursor {following!r}")
                log.warning("%s repeated paging cursor %r; reading no further", self.endpoint, following)
            if self.finished or following is None:
                return
            followed.add(following)
            token = following
