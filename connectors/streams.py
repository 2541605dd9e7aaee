"""What a pulled CRM object is, declared the same way for Salesforce and HubSpot (as the Singer SDK's
streams and dlt's resources declare theirs): the stream's name, the CRM's object, the cursor field it
is read by, its primary key, and the fields asked for besides those the mapping reads.

`name` is the key the store keeps the stream's cursor under, and sources pull streams in the order
they are declared: a renamed stream would be pulled from scratch by every existing store. What only
one CRM needs is added by a small subclass beside that CRM's declarations
(`connectors.salesforce.streams.SalesforceStream`, `connectors.hubspot.streams.HubSpotStream`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar


@dataclass(frozen=True, slots=True, kw_only=True)
class Stream:
    """One CRM object pulled incrementally: read ascending by `cursor_field`, the highest value seen
    kept as the cursor, re-reads told apart by `primary_key`."""

    name: str  # the store's key for this stream's cursor: never renamed
    crm_object: str  # Salesforce's sObject (`Lead`), HubSpot's object type (`contacts`)
    cursor_field: str  # `SystemModstamp`, `lastmodifieddate`, `hs_lastmodifieddate`
    primary_key: str  # `Id`, `hs_object_id`: de-duplicates re-reads, orders rows at one cursor value
    fields: tuple[str, ...] = ()  # asked for on every pull, besides the mapping's read fields


S = TypeVar("S", bound=Stream)


def by_name(streams: Iterable[S]) -> dict[str, S]:
    """The streams by name, in their declared order."""
    return {stream.name: stream for stream in streams}
