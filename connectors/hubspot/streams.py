"""What leadloop pulls from HubSpot, declared once per stream: the object, its cursor property, the
associations it needs, and which canonical records it becomes.

Contacts keep `lastmodifieddate`; every other CRM object `hs_lastmodifieddate`. Search results carry
no associations, so incremental pulls read the ones a stream needs through the associations v4 batch
API; contacts need none (`associatedcompanyid` names their primary company).

Docs: https://developers.hubspot.com/docs/api/crm/search ("Contacts use lastmodifieddate"),
https://developers.hubspot.com/docs/api/crm/associations/associations-v4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Produces = Literal["person", "account", "opportunity", "activity"]


@dataclass(frozen=True, slots=True)
class ObjectStream:
    """A CRM object pulled by list (first run) and search (incremental), with archived → tombstones."""

    name: str
    object_type: str
    cursor_property: str
    produces: Produces
    associations: tuple[str, ...] = ()  # needed on every record (read inline on list, v4 on search)
    tombstone_prefix: str = ""


OBJECT_STREAMS: tuple[ObjectStream, ...] = (
    ObjectStream("companies", "companies", "hs_lastmodifieddate", "account", (), "hs-company"),
    ObjectStream("contacts", "contacts", "lastmodifieddate", "person", (), "hs-contact"),
    ObjectStream("deals", "deals", "hs_lastmodifieddate", "opportunity", ("companies", "contacts"),
                 "hs-deal"),
    ObjectStream("calls", "calls", "hs_lastmodifieddate", "activity", ("contacts",), "hs-call"),
    ObjectStream("emails", "emails", "hs_lastmodifieddate", "activity", ("contacts",), "hs-sales-email"),
    ObjectStream("meetings", "meetings", "hs_lastmodifieddate", "activity", ("contacts",), "hs-meeting"),
    ObjectStream("tasks", "tasks", "hs_lastmodifieddate", "activity", ("contacts",), "hs-task"),
)
STREAMS_BY_NAME = {s.name: s for s in OBJECT_STREAMS}
OWNERS = "owners"
