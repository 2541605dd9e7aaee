"""The HubSpot connector: `hubspot_client` builds the client, `HubSpotSource` pulls, `HubSpotSink`
writes, `HubSpotSetup` (or the `setup` module's `check`/`setup`) backs `leadloop crm check|setup`.
Importing it masks emails in the connectors' and the sync's logs (connectors/redaction.py)."""

from leadloop.connectors.hubspot.client import HubSpotClient, hubspot_client
from leadloop.connectors.hubspot.setup import HubSpotSetup
from leadloop.connectors.hubspot.sink import HubSpotSink
from leadloop.connectors.hubspot.source import HubSpotSource
from leadloop.connectors.redaction import install_email_masking

install_email_masking()

__all__ = ["HubSpotClient", "HubSpotSetup", "HubSpotSink", "HubSpotSource", "hubspot_client"]
