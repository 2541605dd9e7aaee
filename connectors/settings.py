"""Typed connection settings: the connection file of ARCHITECTURE.md and `LEADLOOP_` variables.

Secrets are `SecretStr`, so they never show in reprs, logs or error messages. A missing CRM section
means leadloop runs with the other CRM alone.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_STORE_URL = "sqlite:///.leadloop/state.db"


class ConnectionFileError(ValueError):
    """The connection file or the environment cannot give usable settings; the message says where."""


def _https(url: str) -> str:
    url = url.rstrip("/")
    if not url.startswith("https://"):
        raise ValueError(f"must be an https:// URL (got {url[:60]!r}); leadloop never talks in clear")
    return url


class SalesforceSettings(BaseModel):
    """One of three ways in: a session id + instance URL; username + password + security token; or the
    OAuth JWT bearer flow of a connected app (consumer key + private key)."""

    model_config = ConfigDict(extra="forbid")

    instance_url: str | None = None
    session_id: SecretStr | None = None
    api_version: str = "59.0"
    login_url: str | None = None  # where to (re-)authenticate; defaults to instance_url
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    consumer_secret: SecretStr | None = None
    private_key_file: Path | None = None
    bulk_threshold: int = 10_000
    # Reps who get read access to leadloop's fields from `crm setup` (permission set
    # Leadloop_Scores_Read), and whom `crm check` verifies: usernames, and/or the users of a public
    # group (its API name) at the time setup runs.
    rep_usernames: list[str] = Field(default_factory=list)
    rep_group: str | None = None

    _validate_urls = field_validator("instance_url", "login_url")(
        lambda v: None if v is None else _https(v)
    )

    @model_validator(mode="after")
    def _one_way_in(self) -> SalesforceSettings:
        has_session = self.instance_url is not None and self.session_id is not None
        has_password = self.username is not None and self.password is not None
        has_jwt = self.username is not None and self.consumer_key is not None and self.private_key_file
        if not (has_session or has_password or has_jwt):
            raise ValueError(
                "give instance_url + session_id, or username + password (+ security_token), "
                "or username + consumer_key + private_key_file"
            )
        if self.instance_url is None and self.login_url is None:
            raise ValueError("give instance_url or login_url")
        return self

    @property
    def auth_url(self) -> str:
        return self.login_url or self.instance_url or "https://login.salesforce.com"


class HubSpotSettings(BaseModel):
    """A private app's access token."""

    model_config = ConfigDict(extra="forbid")

    host: str = "https://api.hubapi.com"
    access_token: SecretStr
    # HubSpot cannot list "archived since": deletions cost a listing per object, made at most this often
    archived_check_minutes: int = Field(360, ge=0)
    # HubSpot calls in flight at once, all under the one rate limiter: at 100 ms a call one at a time
    # reaches 10 calls/s, below the 16 the limiter allows (180 per 11 s); 5 keeps the limiter the
    # bound up to ~250 ms of latency, and stays within urllib3's pool of connections per host
    concurrent_calls: int = Field(5, ge=1, le=10)

    _validate_host = field_validator("host")(_https)


class ConnectionSettings(BaseSettings):
    """Everything leadloop needs to reach the CRMs and its state store."""

    model_config = SettingsConfigDict(env_prefix="LEADLOOP_", env_nested_delimiter="__", extra="forbid")

    salesforce: SalesforceSettings | None = None
    hubspot: HubSpotSettings | None = None
    ca_cert: Path | None = None
    sandbox_admin_url: str | None = None
    # may carry a password (from a connection file or block): kept out of reprs and tracebacks' locals
    store_url: str = Field(DEFAULT_STORE_URL, repr=False)

    @field_validator("ca_cert")
    @classmethod
    def _ca_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"CA file {value} does not exist")
        return value

    def safe_summary(self) -> dict[str, Any]:
        """What may be shown or logged: endpoints, never secrets."""
        return {
            "salesforce": self.salesforce.auth_url if self.salesforce else None,
            "hubspot": self.hubspot.host if self.hubspot else None,
            "ca_cert": str(self.ca_cert) if self.ca_cert else None,
        }


def _describe(error: ValidationError, source: str) -> str:
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  {where}: {item['msg'].removeprefix('Value error, ')}")
    return f"{source} is not usable:\n" + "\n".join(lines)


def load_connection(connection_file: str | Path | None = None, **overrides: Any) -> ConnectionSettings:
    """Settings from a connection file (when given) overlaid on `LEADLOOP_` environment variables.

    Raises ConnectionFileError with the file, the field and what is wrong; never echoes secret values.
    """
    data: dict[str, Any] = {}
    source = "the LEADLOOP_ environment"
    if connection_file is not None:
        path = Path(connection_file)
        source = f"connection file {path}"
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConnectionFileError(f"{source} does not exist") from None
        except json.JSONDecodeError as error:
            where = f"line {error.lineno}: {error.msg}"
            raise ConnectionFileError(f"{source} is not valid JSON ({where})") from None
        if not isinstance(data, dict):
            raise ConnectionFileError(f"{source} must hold a JSON object")
        ca = data.get("ca_cert")
        if isinstance(ca, str) and not Path(ca).is_absolute():
            data["ca_cert"] = str((path.parent / ca).resolve())
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = ConnectionSettings(**data)
    except ValidationError as error:
        raise ConnectionFileError(_describe(error, source)) from None
    if settings.salesforce is None and settings.hubspot is None:
        raise ConnectionFileError(f"{source} configures neither salesforce nor hubspot")
    return settings
