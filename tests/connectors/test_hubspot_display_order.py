"""HubSpot: `crm setup` puts leadloop's property group first and, in it, the tier, score and reasons
first (HubSpot lists both by ascending `displayOrder`, its default -1 last); an install from before
gets reordered once; `crm check` says what is out of order. Through hubspot-api-client against an
empty sandbox."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hubspot import HubSpot

from leadloop.connectors.hubspot.setup import GROUP, check, setup
from leadloop.connectors.mapping import load_mapping
from leadloop.connectors.settings import ConnectionSettings
from leadloop.sandbox.server import running_sandbox

MAPPING = load_mapping()


@pytest.fixture
def portal() -> Iterator[tuple[ConnectionSettings, HubSpot]]:
    with running_sandbox(empty=True) as handle:
        connection = {k: v for k, v in handle.connection.items() if k != "salesforce"}
        hubspot = connection["hubspot"]
        client = HubSpot(access_token=hubspot["access_token"], host=hubspot["host"],
                         ssl_ca_cert=str(handle.ca_path))
        yield ConnectionSettings(**connection), client


def order_in_group(client: HubSpot, object_type: str) -> list[str]:
    """The group's properties as HubSpot lists them: by displayOrder, -1 last."""
    everything = client.crm.properties.core_api.get_all(object_type).results
    properties = [p for p in everything if p.group_name == GROUP]
    return [p.name for p in sorted(properties, key=lambda p: (p.display_order < 0, p.display_order, p.name))]


def test_setup_puts_tier_score_and_reasons_first_in_a_group_that_comes_first(portal):
    settings, client = portal
    setup(settings, MAPPING)

    assert order_in_group(client, "contacts")[:3] == ["ll_tier", "ll_score", "ll_reasons"]
    assert order_in_group(client, "companies")[0] == "ll_account_tier"
    groups = client.crm.properties.groups_api.get_all("contacts").results
    first = min(groups, key=lambda g: (g.display_order < 0, g.display_order))
    assert {g.name: g.display_order for g in groups}[GROUP] == 0 and first.display_order == 0
    assert [i for i in check(settings, MAPPING) if "comes first" in i.what and not i.ok] == []
    assert setup(settings, MAPPING) == []  # nothing left to do


def test_an_install_from_before_is_reordered_once_and_check_says_what_is_out_of_order(portal):
    settings, client = portal
    setup(settings, MAPPING)
    for name in ("ll_tier", "ll_score", "ll_reasons"):  # as the earlier setup left them
        client.crm.properties.core_api.update("contacts", name, {"displayOrder": -1})
    client.crm.properties.groups_api.update("contacts", GROUP, {"displayOrder": -1})

    item = next(i for i in check(settings, MAPPING) if i.what.startswith("contacts: group"))
    assert not item.ok and "group leadloop, ll_tier, ll_score, ll_reasons" in (item.fix or "")

    actions = setup(settings, MAPPING)
    assert actions == ["put property group leadloop first on contacts",
                       "set contacts.ll_tier to display position 1",
                       "set contacts.ll_score to display position 2",
                       "set contacts.ll_reasons to display position 3"]
    assert order_in_group(client, "contacts")[:3] == ["ll_tier", "ll_score", "ll_reasons"]
    assert setup(settings, MAPPING) == []
