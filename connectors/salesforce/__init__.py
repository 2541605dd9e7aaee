"""The Salesforce connector: `salesforce_client` builds the client, `SalesforceSource` pulls,
`SalesforceSink` writes, `SalesforceSetup` (or the `setup` module's `check`/`setup`) backs `leadloop
crm check|setup`. Importing it masks emails in the connectors' and the sync's logs
(connectors/redaction.py)."""

from leadloop.connectors.redaction import install_email_masking
from leadloop.connectors.salesforce.client import SalesforceClient, salesforce_client
from leadloop.connectors.salesforce.setup import SalesforceSetup
from leadloop.connectors.salesforce.sink import SalesforceSink
from leadloop.connectors.salesforce.source import SalesforceSource

install_email_masking()

__all__ = ["SalesforceClient", "SalesforceSetup", "SalesforceSink", "SalesforceSource", "salesforce_client"]
