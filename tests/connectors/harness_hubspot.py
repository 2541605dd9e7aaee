"""The HubSpot side of the contract suite: drives the sandbox portal around `HubSpotSource` and
`HubSpotSink` as a HubSpot user would (hubspot-api-client over HTTPS, the sandbox admin API).

HubSpot offers no way to set `lastmodifieddate`, so `set_identical_timestamps` stamps the records
inside the in-process sandbox, as a bulk import landing in one millisecond would. Private-app tokens
do not expire, so the session-expiry fault does not apply to HubSpot and its test is skipped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from hubspot import HubSpot
from hubspot.crm.objects.exceptions import ApiException

from leadloop.connectors.hubspot.client import HubSpotClient, hubspot_client
from leadloop.connectors.hubspot.retry import RetryPolicy
from leadloop.connectors.hubspot.setup import HubSpotSetup
from leadloop.connectors.hubspot.sink import HubSpotSink
from leadloop.connectors.hubspot.source import HubSpotSource
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.records import Crm

SandboxFixture = Any  # conftest's fixture object: .connection, .ca_path, .admin_get/.admin_post, .handle

FIELDS = {"first_name": "firstname", "last_name": "lastname", "title": "jobtitle", "company_name": "company",
          "country": "country"}
AUDIT_PROPERTIES = {"lastmodifieddate", "hs_lastmodifieddate", "updatedAt"}
FAST = RetryPolicy(attempts=8, initial_wait=0.02, max_wait=0.3, max_retry_after=1.0, timeout=(5, 30))


class HubSpotHarness:
    crm = Crm.HUBSPOT
    person_stream = "contacts"
    page_size = 200  # HubSpot's search page

    def __init__(self, sandbox: SandboxFixture) -> None:
        self.sandbox = sandbox
        self.settings = ConnectionSettings(**sandbox.connection)
        self.mapping = load_mapping().hubspot
        conn = sandbox.connection["hubspot"]
        self.hs = HubSpot(access_token=conn["access_token"], host=conn["host"], ssl_ca_cert=sandbox.ca_path)
        self.contacts = self.hs.crm.contacts
        self.make_setup().setup()  # the owned properties and ll_key, once per session
        self._property_names: list[str] | None = None

    def client(self) -> HubSpotClient:
        return hubspot_client(self.settings.hubspot, self.settings.ca_cert, policy=FAST)

    def make_source(self, **options: Any) -> HubSpotSource:
        return HubSpotSource(self.client(), self.mapping, page_size=options.get("page_size", 200),
                             overlap=timedelta(minutes=options.get("overlap_minutes", 10)),
                             streams=options.get("streams"))

    def make_sink(self) -> HubSpotSink:
        return HubSpotSink(self.client(), self.mapping)

    def make_setup(self) -> HubSpotSetup:
        return HubSpotSetup(self.settings, load_mapping())

    def _values(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {FIELDS[k]: v for k, v in fields.items()}

    def create_person(self, email: str, **fields: Any) -> str:
        values = {"email": email, "lastname": "Contract", "company": "Contract Test Co",
                  **self._values(fields)}
        return str(self.contacts.basic_api.create({"properties": values}).id)

    def create_people(self, emails: Sequence[str]) -> list[str]:
        ids: list[str] = []
        batch = self.contacts.batch_api
        for start in range(0, len(emails), 100):
            chunk = emails[start:start + 100]
            inputs = [{"properties": {"email": e, "lastname": "Contract"}} for e in chunk]
            answer = batch.create({"inputs": inputs})
            by_email = {r.properties["email"]: str(r.id) for r in answer.results}
            ids += [by_email[e] for e in chunk]
        return ids

    def update_person(self, crm_id: str, **fields: Any) -> None:
        self.contacts.basic_api.update(crm_id, {"properties": self._values(fields)})

    def delete_person(self, crm_id: str) -> None:
        self.contacts.basic_api.archive(crm_id)

    def convert_lead(self, crm_id: str) -> str | None:
        return None  # HubSpot has no leads to convert

    def canonical_person_id(self, crm_id: str) -> str:
        return f"hs-contact:{crm_id}"

    def read_owned_field(self, crm_id: str, logical_field: str) -> Any:
        name = self.mapping.person_field(logical_field)
        return self.contacts.basic_api.get_by_id(crm_id, properties=[name]).properties.get(name)

    def read_person_snapshot(self, crm_id: str) -> dict[str, Any]:
        if self._property_names is None:
            props = self.hs.crm.properties.core_api.get_all("contacts").results
            self._property_names = sorted(p.name for p in props)
        record = self.contacts.basic_api.get_by_id(crm_id, properties=self._property_names)
        return {k: v for k, v in (record.properties or {}).items() if k not in AUDIT_PROPERTIES}

    def owner_id(self) -> str:
        return str(self.hs.crm.owners.owners_api.get_page(limit=1).results[0].id)

    def count_tasks_with_key(self, key: str) -> int:
        body = {"filterGroups": [{"filters": [{"propertyName": self.mapping.task_key, "operator": "EQ",
                                               "value": key}]}], "limit": 10}
        for _ in range(10):
            try:
                return int(self.hs.crm.objects.search_api.do_search("tasks", body).total)
            except ApiException as error:
                # this check shares HubSpot's 5 searches/second with the connector under test
                if error.status != 429:
                    raise
                time.sleep(1.0)
        raise AssertionError("HubSpot search stayed rate-limited for 10 s")

    def _store(self) -> Any:
        backend = next(b for b in self.sandbox.handle.core.backends if b.name == "hubspot")
        return backend.store

    def set_identical_timestamps(self, crm_ids: Sequence[str]) -> bool:
        from leadloop.sandbox.hubspot.store import iso_ms

        store = self._store()
        moment = store.now_ms()
        for crm_id in crm_ids:
            record = store.get("contacts", crm_id)
            record.props["lastmodifieddate"] = iso_ms(moment)
            record.updated_ms = moment
        return True

    def reject_writes(self, crm_ids: Sequence[str], message: str = "Rejected by a validation rule") -> None:
        rules = [{"object": "contacts", "id": crm_id, "message": message} for crm_id in crm_ids]
        self.sandbox.admin_post("faults", {"crm": "hubspot", "reject": rules})

    @contextmanager
    def faults(self, **rule: Any) -> Iterator[None]:
        if "session_expire_after" in rule:
            pytest.skip("HubSpot private-app access tokens do not expire")
        self.sandbox.admin_post("faults", {"crm": "hubspot", **rule})
        try:
            yield
        finally:
            self.clear_faults()

    def clear_faults(self) -> None:
        self.sandbox.reset_faults()

    def api_calls(self) -> dict[str, int]:
        return self.sandbox.admin_get("stats")["by_endpoint"].get("hubspot", {})

    def reset_stats(self) -> None:
        self.sandbox.admin_post("stats/reset")


def make_harness(sandbox: SandboxFixture) -> HubSpotHarness:
    return HubSpotHarness(sandbox)
