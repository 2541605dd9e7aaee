"""The sandbox's HubSpot CRM: CRM v3 objects, batch, search, associations v4, properties, owners, the
activity sources (forms, web analytics events, email events, marketing events) and HubSpot's rate limits.

https://developers.hubspot.com/docs/api/overview
"""

from leadloop.sandbox.hubspot.backend import HubSpotBackend

__all__ = ["HubSpotBackend"]
