"""What leadloop pulls from HubSpot, declared once per stream as a `connectors.streams.Stream`: the
object, its cursor property, the properties read besides the mapped ones, the associations it needs,
and which canonical records it becomes.

Contacts keep `lastmodifieddate`; every other CRM object `hs_lastmodifieddate`. Search results carry
no associations, so incremental pulls read the ones a stream needs through the associations v4 batch
API; contacts need none (`associatedcompanyid` names their primary company).

Owners and the activity sources outside the CRM objects (`activities.ACTIVITY_STREAMS`) are pulled by
code of their own, each through the API that documents it, and are declared by name only.

Docs: https://developers.hubspot.com/docs/api/crm/search ("Contacts use lastmodifieddate"),
https://developers.hubspot.com/docs/api/crm/associations/associations-v4
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from leadloop.connectors.hubspot.records import CROSS_IDS_ACCOUNT, CROSS_IDS_PERSON
from leadloop.connectors.streams import Stream, by_name

Produces = Literal["person", "account", "opportunity", "activity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HubSpotStream(Stream):
    """A CRM object pulled by list (first run) and search (incremental), with archived → tombstones."""

    cursor_field: str = "hs_lastmodifieddate"
    primary_key: str = "hs_object_id"
    produces: Produces
    id_prefix: str  # canonical ids (`hs-contact:<id>`) of its tombstones and rejected records
    associations: tuple[str, ...] = ()  # needed on every record (read inline on list, v4 on search)


OBJECT_STREAMS: tuple[HubSpotStream, ...] = (
    HubSpotStream(name="companies", crm_object="companies", produces="account", id_prefix="hs-company",
                  fields=("hs_lastmodifieddate", "website", "type", *CROSS_IDS_ACCOUNT)),
    HubSpotStream(name="contacts", crm_object="contacts", produces="person", id_prefix="hs-contact",
                  cursor_field="lastmodifieddate",
                  fields=("lastmodifieddate", "createdate", "associatedcompanyid", "hs_lead_status",
                          *CROSS_IDS_PERSON)),
    HubSpotStream(name="deals", crm_object="deals", produces="opportunity", id_prefix="hs-deal",
                  associations=("companies", "contacts"),
                  fields=("hs_lastmodifieddate", "dealname", "dealstage", "pipeline", "amount", "closedate",
                          "createdate", "hs_is_closed", "hs_is_closed_won", "hubspot_owner_id")),
    HubSpotStream(name="calls", crm_object="calls", produces="activity", id_prefix="hs-call",
                  associations=("contacts",),
                  fields=("hs_lastmodifieddate", "hs_timestamp", "hs_call_duration", "hs_call_title",
                          "hs_call_status")),
    HubSpotStream(name="emails", crm_object="emails", produces="activity", id_prefix="hs-sales-email",
                  associations=("contacts",),
                  fields=("hs_lastmodifieddate", "hs_timestamp", "hs_email_subject", "hs_email_direction")),
    HubSpotStream(name="meetings", crm_object="meetings", produces="activity", id_prefix="hs-meeting",
                  associations=("contacts",),
                  fields=("hs_lastmodifieddate", "hs_timestamp", "hs_meeting_title", "hs_meeting_start_time",
                          "hs_meeting_end_time", "hs_meeting_outcome")),
    HubSpotStream(name="tasks", crm_object="tasks", produces="activity", id_prefix="hs-task",
                  associations=("contacts",),
                  fields=("hs_lastmodifieddate", "hs_timestamp", "hs_task_type", "hs_task_status",
                          "hs_task_subject", "hubspot_owner_id")),
)
STREAMS_BY_NAME: dict[str, HubSpotStream] = by_name(OBJECT_STREAMS)
OWNERS = "owners"
