"""The Salesforce side of the contract suite: drives the sandbox org around `SalesforceSource` and
`SalesforceSink` as a Salesforce user would (simple-salesforce over HTTPS, the sandbox admin API).

Salesforce has no REST call that converts a Lead (it is Apex / SOAP `convertLead`), so
`convert_lead` creates the Contact through the API and then marks the Lead converted inside the
in-process sandbox, as Salesforce's conversion would.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql

from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.client import salesforce_client
from leadloop.connectors.salesforce.retry import RetryPolicy
from leadloop.connectors.salesforce.setup import SalesforceSetup
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.salesforce.source import SalesforceSource
from leadloop.connectors.settings import ConnectionSettings
from leadloop.crm.records import Crm

SandboxFixture = Any  # conftest's fixture object: .connection, .ca_path, .admin_get/.admin_post, .handle

FIELDS = {"first_name": "FirstName", "last_name": "LastName", "title": "Title", "company_name": "Company",
          "country": "Country"}
AUDIT_FIELDS = {"SystemModstamp", "LastModifiedDate", "LastModifiedById", "attributes"}
FAST = RetryPolicy(attempts=8, initial_wait=0.02, max_wait=0.3, max_retry_after=1.0, timeout=(5, 30))


class SalesforceHarness:
    crm = Crm.SALESFORCE
    person_stream = "Lead"
    page_size = 200  # Salesforce's smallest query batch, so a few hundred records span pages
    renews_sessions = True

    def __init__(self, sandbox: SandboxFixture) -> None:
        self.sandbox = sandbox
        self.settings = ConnectionSettings(**sandbox.connection)
        self.mapping = load_mapping().salesforce
        conn = sandbox.connection["salesforce"]
        session = requests.Session()
        session.trust_env, session.verify = False, sandbox.ca_path
        self.sf = Salesforce(instance_url=conn["instance_url"], session_id=conn["session_id"],
                             session=session, version=conn["api_version"])
        self.make_setup().setup()  # the owned fields and LL_Key__c, once per session

    def client(self):
        return salesforce_client(self.settings.salesforce, self.settings.ca_cert, policy=FAST)

    def make_source(self, **options: Any) -> SalesforceSource:
        return SalesforceSource(self.client(), self.mapping, page_size=options.get("page_size", 2000),
                                overlap=timedelta(minutes=options.get("overlap_minutes", 5)),
                                streams=options.get("streams"))

    def make_sink(self) -> SalesforceSink:
        return SalesforceSink(self.client(), self.mapping)

    def make_setup(self) -> SalesforceSetup:
        return SalesforceSetup(self.settings, load_mapping())

    def _values(self, fields: dict[str, Any]) -> dict[str, Any]:
        return {FIELDS[k]: v for k, v in fields.items()}

    def create_person(self, email: str, **fields: Any) -> str:
        values = {"LastName": "Contract", "Company": "Contract Test Co", "Email": email}
        values.update(self._values(fields))
        return self.sf.Lead.create(values)["id"]

    def create_people(self, emails: Sequence[str]) -> list[str]:
        ids: list[str] = []
        for start in range(0, len(emails), 200):
            records = [{"attributes": {"type": "Lead"}, "LastName": "Contract", "Company": "Contract Test Co",
                        "Email": email} for email in emails[start:start + 200]]
            answer = self.sf.restful("composite/sobjects", method="POST",
                                     json={"allOrNone": True, "records": records})
            ids += [item["id"] for item in answer]
        return ids

    def update_person(self, crm_id: str, **fields: Any) -> None:
        self.sf.Lead.update(crm_id, self._values(fields))

    def delete_person(self, crm_id: str) -> None:
        self.sf.Lead.delete(crm_id)

    def _org(self) -> Any:
        backend = next(b for b in self.sandbox.handle.core.backends if b.name == "salesforce")
        return backend.org

    def convert_lead(self, crm_id: str) -> str | None:
        lead = self.sf.Lead.get(crm_id)
        contact_id = self.sf.Contact.create({"LastName": lead["LastName"], "Email": lead["Email"]})["id"]
        self._org().update("Lead", crm_id, {"IsConverted": True, "ConvertedContactId": contact_id,
                                            "ConvertedDate": date.today().isoformat(),
                                            "Status": "Closed - Converted"})
        return f"sf-contact:{contact_id}"

    def canonical_person_id(self, crm_id: str) -> str:
        return f"sf-lead:{crm_id}"

    def read_owned_field(self, crm_id: str, logical_field: str) -> Any:
        field = self.mapping.person_field(logical_field)
        return self.sf.Lead.get(crm_id)[field]

    def read_person_snapshot(self, crm_id: str) -> dict[str, Any]:
        row = self.sf.Lead.get(crm_id)
        return {k: v for k, v in row.items() if k not in AUDIT_FIELDS}

    def owned_person_fields(self) -> set[str]:
        return set(self.mapping.owned_person.values())

    def owner_id(self) -> str:
        return self.sf.query("SELECT Id FROM User WHERE IsActive = true LIMIT 1")["records"][0]["Id"]

    def count_tasks_with_key(self, key: str) -> int:
        soql = format_soql("SELECT Id FROM Task WHERE {:literal} = {}", self.mapping.task_key, key)
        return self.sf.query(soql)["totalSize"]

    def set_identical_timestamps(self, crm_ids: Sequence[str]) -> bool:
        """Touch all records in one update within one second (system timestamps have whole seconds)."""
        org = self._org()
        for _ in range(3):
            time.sleep(1.02 - time.time() % 1)  # just after a second starts
            for crm_id in crm_ids:
                org.update("Lead", crm_id, {})
            stamps = {org.live_row("Lead", crm_id)["SystemModstamp"] for crm_id in crm_ids}
            if len(stamps) == 1:
                return True
        return False

    def reject_writes(self, crm_ids: Sequence[str], message: str = "Rejected by a validation rule") -> None:
        rules = [{"object": "Lead", "id": crm_id, "message": message} for crm_id in crm_ids]
        self.sandbox.admin_post("faults", {"crm": "salesforce", "reject": rules})

    @contextmanager
    def faults(self, **rule: Any) -> Iterator[None]:
        self.sandbox.admin_post("faults", {"crm": "salesforce", **rule})
        try:
            yield
        finally:
            self.clear_faults()

    def clear_faults(self) -> None:
        self.sandbox.reset_faults()

    def api_calls(self) -> dict[str, int]:
        return self.sandbox.admin_get("stats")["by_endpoint"].get("salesforce", {})

    def reset_stats(self) -> None:
        self.sandbox.admin_post("stats/reset")


def make_harness(sandbox: SandboxFixture) -> SalesforceHarness:
    return SalesforceHarness(sandbox)
