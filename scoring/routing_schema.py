"""Schema of the playbook's `routing:` section (owned by routing; lives here because the playbook
schema as a whole is scoring's, and scoring must not import routing)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RoutingSection(BaseModel):
    """Placeholder until the routing section is specified; accepts anything."""

    model_config = ConfigDict(extra="allow", frozen=True)
