"""The ports every connector implements: a source to pull from, a sink to write to, and the setup that
readies the CRM for both (`leadloop crm check|setup`).

Declared once here; each CRM package in `connectors/` implements them, and one contract test suite
runs against every implementation.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from leadloop.crm.changes import FieldUpdate, TaskUpsert
from leadloop.crm.records import Crm


class ReadProgress(NamedTuple):
    """How far one pull has come: the rows the CRM has handed out so far, of the `total` it announced
    for the whole read (Salesforce's `totalSize`, a HubSpot search's `total`). Rows, not records: a
    HubSpot call with three contacts is one row and three activities."""

    read: int
    total: int


@dataclass(frozen=True, slots=True)
class PulledPage:
    """One page of one pulled stream, already mapped to canonical records.

    `cursor` is the highest cursor value actually seen on this page (or a completed search's
    horizon, see the HubSpot source); it may be stored only after the records are stored. `deleted`
    lists CRM ids that became tombstones (deleted or merged). `deletions_checked` (a source whose
    deletions are not part of its incremental read) says every deletion made before that moment is
    in this page's `deleted` or an earlier page's; store it once they are stored. `progress` is where
    the read stands, when the CRM announced a total (HubSpot's list endpoints announce none).

    `whole` names records read whole that may give several canonical records, ids `X` and `X:…`
    (a HubSpot call gives one activity per contact: `hs-call:1`, `hs-call:1:502`, …): this page's
    records of `X` are all there are now, so a stored one it lacks is gone (its contact was removed
    from the call). A deleted `X` in `deleted` and `whole` takes all of its records with it.
    """

    stream: str
    records: Sequence[Any]
    cursor: datetime | None
    deleted: Sequence[str] = ()
    rejected: Sequence[tuple[str, str]] = ()  # (crm id, reason) for records that failed mapping
    deletions_checked: datetime | None = None
    progress: ReadProgress | None = None
    whole: Sequence[str] = ()


def family_of(record_id: str) -> str:
    """The record a canonical record comes from (`PulledPage.whole`): `hs-call:1:502` → `hs-call:1`."""
    return ":".join(record_id.split(":", 2)[:2])


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What the CRM said about one change: success with its CRM id, or the CRM's own reason."""

    key: str
    ok: bool
    crm_id: str | None = None
    error: str | None = None
    retriable: bool = False
    unknown: bool = False  # the call may have reached the CRM (a timeout): confirm by key, never resend
    call_failed: bool = False  # the whole call failed (an outage), not this record's own values


@dataclass(slots=True)
class CallCounter:
    """API calls made, by endpoint name, for run records and benchmarks."""

    calls: dict[str, int] = field(default_factory=dict)

    def add(self, endpoint: str, n: int = 1) -> None:
        self.calls[endpoint] = self.calls.get(endpoint, 0) + n

    @property
    def total(self) -> int:
        return sum(self.calls.values())


class CrmSource(ABC):
    """Pulls canonical records from one CRM, incrementally by each stream's cursor."""

    crm: Crm

    @abstractmethod
    def streams(self) -> Sequence[str]:
        """The stream names this source can pull, in dependency order."""

    @abstractmethod
    def pull(self, stream: str, since: datetime | None, *,
             deletions_checked: datetime | None = None) -> Iterator[PulledPage]:
        """Pages of `stream` changed at or after `since` (everything when None), ascending.
        `deletions_checked` is the last `PulledPage.deletions_checked` stored for the stream."""


class CrmSink(ABC):
    """Writes leadloop's owned fields and tasks into one CRM, in batches."""

    crm: Crm

    @abstractmethod
    def write_fields(self, updates: Sequence[FieldUpdate]) -> list[WriteResult]:
        """Apply field updates; one result per (record, field) in the input order."""

    @abstractmethod
    def upsert_tasks(self, tasks: Sequence[TaskUpsert]) -> list[WriteResult]:
        """Create or update tasks by their key; one result per task in the input order."""


@dataclass(frozen=True, slots=True)
class CheckItem:
    """One line of `leadloop crm check`: what was checked in which CRM, whether it holds, and how to fix
    it when it does not."""

    crm: str
    what: str  # e.g. "Lead.LL_Score__c exists and is writable"
    ok: bool
    fix: str | None = None  # e.g. "run `leadloop crm setup`, or deploy metadata/ with your change set"


class CrmSetup(ABC):
    """Readies one CRM for leadloop: reports what it lacks, and creates the fields leadloop owns.
    Built with the connection and the field mapping it checks against."""

    crm: Crm

    @abstractmethod
    def check(self) -> list[CheckItem]:
        """One item per thing checked (credentials, objects, mapped and owned fields); the failed
        ones say how to fix them."""

    @abstractmethod
    def setup(self) -> list[str]:
        """Create the owned fields the CRM lacks; returns the actions taken, one line each (none when
        everything was there)."""
