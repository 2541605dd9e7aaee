"""Typed parameters of the flows: what the Prefect UI shows as the run form, and the CLI fills in."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from leadloop import playbooks
from leadloop.store.db import split_password

DEFAULT_PLAYBOOK = playbooks.DEFAULT

# A Prefect block's name: lowercase letters, digits and dashes.
BLOCK_NAME = r"^[a-z0-9][a-z0-9-]*$"

# A URL with `user:password@`, as SQLAlchemy reads one. In the JSON schema, so that the Prefect UI and
# server refuse such a parameter before a flow run (whose parameters they keep and show) is created.
_NO_PASSWORD = r"^(?![\w+]+://[^:/]*:[^@]+@)"


class RunOptions(BaseModel):
    """What every flow takes: where the CRMs and the store are, the playbook, the moment to score at."""

    # a refused value is not echoed back: it may be a URL with a password
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    connection: str | None = Field(
        None, description="Name of a leadloop connection block (`leadloop connect --name NAME` saves one), "
                          "which keeps the CRMs' settings and the store URL; only the name is a parameter.",
        json_schema_extra={"pattern": BLOCK_NAME},
    )
    connection_file: str | None = Field(
        None, description="Connection file (JSON), instead of a block; without either, the LEADLOOP_ "
                          "environment variables are used."
    )
    playbook: str | None = Field(
        None, description="Playbook: empty for the live one (the store keeps which is live; a store's first "
                          f"run makes {DEFAULT_PLAYBOOK!r} live), else a shipped name (semiconductor, "
                          "industrial) or a YAML file. A sync refuses any other than the live one.",
    )
    store_url: str | None = Field(
        None, description="State store URL without a password (default: the connection block's, else "
                          "LEADLOOP_STORE_URL, else SQLite); "
                          "the password comes from LEADLOOP_STORE_PASSWORD.",
        json_schema_extra={"pattern": _NO_PASSWORD},
    )
    at: datetime | None = Field(None, description="Score as of this moment (default: now). For backfills.")

    @field_validator("store_url")
    @classmethod
    def _no_password(cls, url: str | None) -> str | None:
        """Prefect keeps a run's parameters and shows them in its UI and API: no password among them."""
        if url is not None and split_password(url)[1] is not None:
            raise ValueError("the store URL carries a password: put the password in LEADLOOP_STORE_PASSWORD "
                             "or a Prefect Secret block, not in the URL")
        return url

    @field_validator("connection")
    @classmethod
    def _block_name(cls, name: str | None) -> str | None:
        if name is not None and not re.match(BLOCK_NAME, name):
            raise ValueError("a connection block's name has only lowercase letters, digits and dashes")
        return name

    @model_validator(mode="after")
    def _one_connection(self) -> RunOptions:
        if self.connection is not None and self.connection_file is not None:
            raise ValueError("give a connection block (connection) or a connection file (connection_file), "
                             "not both")
        return self


class SyncOptions(RunOptions):
    dry_run: bool = Field(False, description="Compute everything, write nothing to the CRMs.")
    min_change: float = Field(
        5.0, description="A decaying score is rewritten only when its tier changes or it moves this much."
    )
    people_per_partition: int = Field(
        50_000, ge=100,
        description="Above this many people, scoring runs in account partitions of about this size, each a "
                    "task run reading its own activities from the store.",
    )
    rescore_everyone: bool = Field(
        False, description="Hourly sync: rescore everyone, not only the people whose records changed or "
                           "whose score came due (a new playbook, mapping or min_change does so by itself).",
    )


class RescoreScope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["all", "accounts", "emails", "profile", "segment"] = "all"
    values: list[str] = Field(
        default_factory=list, description="Account ids, emails, a profile or segment."
    )


class RescoreOptions(SyncOptions):
    scope: RescoreScope = Field(default_factory=RescoreScope)
    reason: str = Field("", description="Why this rescore was started; kept with the run record.")
    activate: bool = Field(
        False, description="Make this playbook the live one: later syncs score with it. Without it, a "
                           "rescore with a playbook other than the live one is a preview and writes nothing.",
    )


class DataQualityOptions(RunOptions):
    steward_tasks: bool = Field(False, description="Create a data-steward task per finding class.")


class ModelReviewOptions(RunOptions):
    candidate_playbook: str | None = Field(
        None, description="A playbook to compare before rollout."
    )
    lookback_days: int = Field(
        120, ge=7, description="Score as of N days ago, then see what happened."
    )
    reports_dir: str = Field("reports", description="Where the HTML report is written.")
    people_per_partition: int = Field(
        50_000, ge=100,
        description="Above this many people, each playbook is scored in account partitions of about this "
                    "size, each reading its own activities from the store.",
    )
