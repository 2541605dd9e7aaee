"""Pure routing: tier → action, owner assignment, suppression, SLA due dates, handoff notes, nurture,
and account tasks for buying committees nobody was routed for.

Inputs in, decisions out: no I/O, no clock (`now` is a parameter), no CRM calls.
"""

from leadloop.routing.committee import committee_key
from leadloop.routing.crm_changes import (
    TASKS_IN,
    RoutedChanges,
    TaskPlacement,
    account_records,
    account_task_changes,
    person_records,
    to_crm_changes,
)
from leadloop.routing.engine import PersonContext, Router, open_opportunity, route_all, route_person, task_key
from leadloop.routing.model import (
    AccountDecision,
    Action,
    CommitteeMember,
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
    "AccountDecision",
    "Action",
    "AssignmentState",
    "CommitteeMember",
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
    "account_records",
    "account_task_changes",
    "committee_key",
    "open_opportunity",
    "person_records",
    "route_all",
    "route_person",
    "task_key",
    "to_crm_changes",
]
