"""The HubSpot connector: `hubspot_client` builds the client, `HubSpotSource` pulls, `HubSpotSink`
writes, `check`/`setup` back `leadloop crm check|setup`."""

from connectors.hubspot.client import HubSpotClient, hubspot_client
from connectors.hubspot.sink import HubSpotSink
from connectors.hubspot.source import HubSpotSource

__all__ = ["HubSpotClient", "HubSpotSink", "HubSpotSource", "hubspot_client"]
