"""Pure routing: tier → action, owner assignment, suppression, SLA due dates, handoff notes, nurture.

Inputs in, decisions out: no I/O, no clock (`now` is a parameter), no CRM calls.
"""

from leadloop.routing.crm_changes import (
    TASKS_IN,
    RoutedChanges,
    TaskPlacement,
    person_records,
    to_crm_changes,
)
from leadloop.routing.engine import PersonContext, Router, open_opportunity, route_all, route_person, task_key
from leadloop.routing.model import (
    Action,
    Decision,
    OpenTask,
    PlannedTask,
    RoutingResult,
    Suppression,
    SuppressionKind,
    SuppressionReport,
    TaskKind,
)
from leadloop.routing.owners import OwnerDirectory
from leadloop.routing.state import AssignmentState

__all__ = [
    "TASKS_IN",
    "Action",
    "AssignmentState",
    "Decision",
    "OpenTask",
    "OwnerDirectory",
    "PersonContext",
    "PlannedTask",
    "RoutedChanges",
    "Router",
    "RoutingResult",
    "Suppression",
    "SuppressionKind",
    "SuppressionReport",
    "TaskKind",
    "TaskPlacement",
    "open_opportunity",
    "person_records",
    "route_all",
    "route_person",
    "task_key",
    "to_crm_changes",
]
