"""`leadloop crm check|setup` on Salesforce: a fresh org lacks leadloop's fields and check names each
one; setup creates them (Tooling API) and check then passes; the metadata folder deploys the same."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from simple_salesforce import Salesforce
from typer.testing import CliRunner

from leadloop.cli.app import app
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.salesforce.setup import owned_fields, write_metadata
from leadloop.sandbox.server import running_sandbox

NS = "{http://soap.sforce.com/2006/04/metadata}"


def _add_customer_field(connection: dict, full_name: str) -> None:
    """A custom field the customer's org has (the default mapping reads it), made as an admin would."""
    session = requests.Session()
    session.trust_env, session.verify = False, connection["ca_cert"]
    sf_conn = connection["salesforce"]
    sf = Salesforce(instance_url=sf_conn["instance_url"], session_id=sf_conn["session_id"], session=session,
                    version=sf_conn["api_version"])
    sf.toolingexecute("sobjects/CustomField/", method="POST", data={
        "FullName": full_name, "Metadata": {"label": "Package", "type": "Text", "length": 80}})


@pytest.fixture(scope="module")
def fresh_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A sandbox of its own (the shared one gets the fields), with a Salesforce-only connection file."""
    folder = tmp_path_factory.mktemp("fresh-org")
    with running_sandbox(size="tiny", seed=11) as handle:
        connection = {k: v for k, v in handle.connection.items() if k != "hubspot"}
        _add_customer_field(connection, "Account.Package__c")
        path = folder / "connection.json"
        path.write_text(json.dumps(connection), encoding="utf-8")
        yield path


def test_check_names_each_missing_owned_field_then_setup_creates_them_and_check_passes(fresh_org, tmp_path):
    runner = CliRunner()
    before = runner.invoke(app, ["crm", "check", "--connection-file", str(fresh_org)])
    assert before.exit_code == 1, before.output
    missing = [f"{obj}.{field}" for obj, field, _ in owned_fields(load_mapping().salesforce)]
    for name in missing:
        assert name in before.output and "leadloop crm setup" in before.output

    setup = runner.invoke(app, ["crm", "setup", "--connection-file", str(fresh_org),
                                "--metadata-dir", str(tmp_path / "metadata")])
    assert setup.exit_code == 0, setup.output
    assert setup.output.count("salesforce: created ") == len(missing)

    after = runner.invoke(app, ["crm", "check", "--connection-file", str(fresh_org)])
    assert after.exit_code == 0, after.output
    assert "MISSING" not in after.output
    assert "Task.LL_Key__c is an external id" in after.output

    again = runner.invoke(app, ["crm", "setup", "--connection-file", str(fresh_org)])
    assert "nothing to do" in again.output


def test_bad_input_exits_2_with_the_reason_and_no_traceback(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    result = CliRunner().invoke(app, ["crm", "check", "--connection-file", str(broken)])
    assert result.exit_code == 2
    assert "not valid JSON" in result.output and "Traceback" not in result.output


def test_the_metadata_folder_holds_a_package_and_one_field_file_per_owned_field(tmp_path):
    mapping = load_mapping().salesforce
    written = write_metadata(mapping, tmp_path)
    package = ET.parse(tmp_path / "package.xml").getroot()
    members = [m.text for m in package.iter(f"{NS}members")]
    assert members == [f"{obj}.{field}" for obj, field, _ in owned_fields(mapping)]
    assert package.find(f"{NS}types/{NS}name").text == "CustomField"
    key = ET.parse(tmp_path / "objects" / "Task" / "fields" / "LL_Key__c.field-meta.xml").getroot()
    assert key.find(f"{NS}externalId").text == "true" and key.find(f"{NS}unique").text == "true"
    reasons = ET.parse(tmp_path / "objects" / "Lead" / "fields" / "LL_Reasons__c.field-meta.xml").getroot()
    assert reasons.find(f"{NS}type").text == "LongTextArea" and reasons.find(f"{NS}visibleLines").text == "5"
    assert len(written) == len(members) + 1
