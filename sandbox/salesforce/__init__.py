"""The sandbox's Salesforce: REST API (v59.0+), SOQL, sObject Collections, Tooling, limits and Bulk API
2.0, over an in-memory org filled from the generated world.

https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/intro_rest.htm
"""

from leadloop.sandbox.salesforce.backend import (
    DEFAULT_PASSWORD,
    DEFAULT_SECURITY_TOKEN,
    DEFAULT_USERNAME,
    SalesforceBackend,
)

__all__ = ["DEFAULT_PASSWORD", "DEFAULT_SECURITY_TOKEN", "DEFAULT_USERNAME", "SalesforceBackend"]
