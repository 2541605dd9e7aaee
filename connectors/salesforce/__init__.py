"""The Salesforce connector: `salesforce_client` builds the client, `SalesforceSource` pulls,
`SalesforceSink` writes, `check`/`setup` back `leadloop crm check|setup`."""

from connectors.salesforce.client import SalesforceClient, salesforce_client
from connectors.salesforce.sink import SalesforceSink
from connectors.salesforce.source import SalesforceSource

__all__ = ["SalesforceClient", "SalesforceSink", "SalesforceSource", "salesforce_client"]
