"""Activity sources outside the CRM objects: form submissions, page views, marketing email events and
marketing event attendance, each through its documented HubSpot API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from connectors.hubspot.client import HubSpotClient
from crm.ports import PulledPage

ACTIVITY_STREAMS: tuple[str, ...] = ()


class ActivityPuller:
    def __init__(self, client: HubSpotClient, *, overlap: timedelta) -> None:
        self.client = client
        self.overlap = overlap

    def pull(self, stream: str, since: datetime | None) -> Iterator[PulledPage]:
        raise KeyError(stream)
