"""The CRM's own clock, as its answers state it (the HTTP `Date` header).

Both sources end a completed read on its **horizon**: the CRM's clock when the read began, less
`HORIZON_MARGIN` for the header's whole seconds. Whatever was changed before the horizon minus the
overlap window was visible to that read, so the next run's overlap need not reach further back than
that (see `connectors.hubspot.source` and `connectors.salesforce.source`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

HORIZON_MARGIN = timedelta(seconds=2)  # a Date header has whole seconds; the answer was computed before it


def server_date(headers: Any) -> datetime | None:
    """The `Date` header of an answer as an aware datetime, or None when absent or unreadable."""
    value = headers.get("Date") if headers is not None else None
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(str(value))
    except (TypeError, ValueError):
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def horizon(answered: datetime | None) -> datetime | None:
    return answered - HORIZON_MARGIN if answered is not None else None
