"""The contract every CRM connector passes against the sandbox: what a test harness must offer.

`tests/connectors/test_contract.py` runs the same tests against each harness (`harness_salesforce.py`,
`harness_hubspot.py`). A harness module exposes `make_harness(sandbox) -> ConnectorHarness`, where
`sandbox` is the session fixture of `conftest.py`. It drives the CRM *around* the connector (creating,
changing and deleting records as a user would, through the official client or the sandbox's admin
API) so the tests can watch what the connector's source and sink make of it.

Conventions:
- `crm id` is the CRM's raw id (Salesforce 18-char id, HubSpot numeric string).
- Fields passed to `create_person` / `update_person` use canonical names (`first_name`,
  `last_name`, `title`, `company_name`, `country`); the harness maps them to its CRM.
- `canonical_person_id(crm_id)` is the Person.id the source gives that record
  (`sf-lead:<id>`, `hs-contact:<id>`).
- `person_stream` / `person_object_type` name the stream the created people are pulled from and
  the `FieldUpdate.object_type` used to write them (always `person`).
- `reject_writes(crm_ids, message)` makes the CRM reject batch writes to those records until
  `clear_faults()`; `faults(**rule)` posts one sandbox fault rule scoped to this CRM (and to
  `endpoint` if given) and clears it on exit.
- `set_identical_timestamps(crm_ids)` gives the records one identical cursor value (by whatever
  means the CRM allows); it returns False when the harness cannot, and the tie test is skipped.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from leadloop.crm.ports import CrmSetup, CrmSink, CrmSource
from leadloop.crm.records import Crm


class ConnectorHarness(Protocol):
    crm: Crm
    person_stream: str  # e.g. "Lead" or "contacts"
    page_size: int  # the largest page the source asks for (for tests that cross page boundaries)
    renews_sessions: bool  # True when the connector logs in again after the sandbox expires its session
    mapping: Any  # the connector's CrmMapping (owned field names for the allowlist comparison)

    def make_source(self, **options: Any) -> CrmSource:
        """A fresh source; options (e.g. `page_size=200`, `overlap_minutes=0`) tune it for a test."""

    def make_sink(self) -> CrmSink: ...

    def make_setup(self) -> CrmSetup:
        """The connector's `crm check|setup` for the sandbox (the harness has run its setup once)."""

    def create_person(self, email: str, **fields: Any) -> str:
        """Create a person (a Salesforce Lead, a HubSpot contact); returns its crm id."""

    def create_people(self, emails: Sequence[str]) -> list[str]:
        """Create many people at once (batched); returns their crm ids in order."""

    def update_person(self, crm_id: str, **fields: Any) -> None: ...

    def delete_person(self, crm_id: str) -> None: ...

    def convert_lead(self, crm_id: str) -> str | None:
        """Convert a Lead to a Contact; returns the Contact's canonical person id, or None when the
        CRM has no leads (the test is then skipped)."""

    def canonical_person_id(self, crm_id: str) -> str: ...

    def read_owned_field(self, crm_id: str, logical_field: str) -> Any:
        """The current value in the CRM of one owned person field, e.g. `score`."""

    def read_person_snapshot(self, crm_id: str) -> dict[str, Any]:
        """Every field of the record as the CRM returns it (for byte-for-byte comparisons)."""

    def owner_id(self) -> str:
        """A valid owner (user) id to assign tasks to."""

    def count_tasks_with_key(self, key: str) -> int: ...

    def set_identical_timestamps(self, crm_ids: Sequence[str]) -> bool: ...

    def reject_writes(self, crm_ids: Sequence[str], message: str = "Rejected by a validation rule") -> None:
        ...

    def faults(self, **rule: Any) -> AbstractContextManager[None]: ...

    def clear_faults(self) -> None: ...

    def api_calls(self) -> dict[str, int]:
        """Calls to this CRM by endpoint since the last `reset_stats()` (from the sandbox's stats)."""

    def reset_stats(self) -> None: ...


def unique_emails(prefix: str, n: int) -> Iterator[str]:
    """Emails no other test uses, so tests can share one sandbox."""
    import uuid

    tag = uuid.uuid4().hex[:10]
    for i in range(n):
        yield f"{prefix}.{tag}.{i}@contract-test.example.com"
