"""leadloop's connection to the CRMs and its state store as a Prefect block, which deployments name
(`connection: "production"`) instead of holding credentials.

A `LeadloopConnection` keeps the Salesforce and HubSpot settings (their secrets as `SecretStr`,
which Prefect keeps out of its API answers and its UI), the CA certificate that signs a private
CRM's TLS certificate (the PEM itself, or a path on the worker) and the state store's URL (a secret:
it may hold a password). A flow run's parameters hold only the block's name: the run reads the block
when it opens its runtime (`connection_settings`). `leadloop connect` saves one.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr, ValidationError, model_validator

from leadloop.connectors.settings import (
    DEFAULT_STORE_URL,
    ConnectionFileError,
    ConnectionSettings,
    HubSpotSettings,
    SalesforceSettings,
    load_connection,
)
from leadloop.flows.options import RunOptions

PEM_BEGIN = "-----BEGIN CERTIFICATE-----"


class ConnectionBlockError(ConnectionFileError):
    """A connection block that is missing or cannot be used; the message says which and what to do."""


class LeadloopConnection(Block):
    """How leadloop reaches Salesforce, HubSpot and its state store."""

    _block_type_name = "leadloop connection"
    _block_type_slug = "leadloop-connection"
    _description = ("leadloop's CRM connection: Salesforce and HubSpot settings, the CA certificate of a "
                    "private CRM, and the state store URL. Deployments name it in `options.connection`.")

    salesforce: SalesforceSettings | None = Field(
        None, description="Salesforce: instance URL + session id, username + password (+ security token), "
                          "or username + consumer key + private key file (JWT bearer flow).")
    hubspot: HubSpotSettings | None = Field(None, description="HubSpot: a private app's access token.")
    ca_cert: str | None = Field(
        None, description="The CA certificate (PEM) that signs the CRMs' TLS certificates, or its path on "
                          "the worker; empty for the public Salesforce and HubSpot.")
    store_url: SecretStr | None = Field(
        None, description="leadloop's state store URL, password included (default: the worker's "
                          "LEADLOOP_STORE_URL, else a SQLite file in its working directory).")

    @model_validator(mode="after")
    def _some_crm(self) -> LeadloopConnection:
        if self.salesforce is None and self.hubspot is None:
            raise ValueError("configure salesforce, hubspot or both")
        return self

    def __repr_args__(self) -> list[tuple[str | None, Any]]:  # Block's own, without the PEM's bulk
        return [(key, f"<PEM, {len(value)} characters>" if key == "ca_cert" and value and PEM_BEGIN in value
                 else value) for key, value in super().__repr_args__()]

    @classmethod
    def from_settings(cls, settings: ConnectionSettings, store_url: str | None = None) -> LeadloopConnection:
        """The block for these settings. The CA certificate is kept as its PEM, so that a worker on
        another machine needs no file; the store URL only when one is given or set apart from the
        default (a block without one lets each worker use its own)."""
        ca = None
        if settings.ca_cert is not None:
            text = settings.ca_cert.read_text(encoding="utf-8", errors="replace")
            ca = text if PEM_BEGIN in text else str(settings.ca_cert.resolve())
        url = store_url or (settings.store_url if settings.store_url != DEFAULT_STORE_URL else None)
        return cls(salesforce=settings.salesforce, hubspot=settings.hubspot, ca_cert=ca,
                   store_url=SecretStr(url) if url else None)

    def connection_settings(self, name: str = "(unsaved)") -> ConnectionSettings:
        """The settings a run opens its runtime with, from this block alone: the worker's LEADLOOP_
        environment adds nothing to them (the store URL aside, when the block has none)."""
        store_url = (self.store_url.get_secret_value() if self.store_url is not None
                     else os.environ.get("LEADLOOP_STORE_URL") or DEFAULT_STORE_URL)
        # Not ConnectionSettings(...): as a BaseSettings it would merge the worker's LEADLOOP_ variables
        # into the block's sections. Its parts are validated already: the block's own models, the CA here.
        return ConnectionSettings.model_construct(salesforce=self.salesforce, hubspot=self.hubspot,
                                                  ca_cert=self._ca_file(name), store_url=store_url)

    def safe_summary(self) -> dict[str, str | None]:
        """What may be shown: endpoints and where the CA comes from, never a secret."""
        ca = self.ca_cert
        return {
            "salesforce": self.salesforce.auth_url if self.salesforce else None,
            "hubspot": self.hubspot.host if self.hubspot else None,
            "ca_cert": None if ca is None else "PEM in the block" if PEM_BEGIN in ca else ca,
            "store_url": "set (secret)" if self.store_url is not None else None,
        }

    def _ca_file(self, name: str) -> Path | None:
        if self.ca_cert is None:
            return None
        if PEM_BEGIN in self.ca_cert:
            return _pem_file(self.ca_cert)
        path = Path(self.ca_cert).expanduser()
        if not path.is_file():
            raise ConnectionBlockError(
                f"the leadloop connection block {name!r} names the CA file {path}, which does not exist on "
                f"this worker; save the certificate itself in the block: leadloop connect --name {name} "
                "--overwrite ...")
        return path


def _pem_file(pem: str) -> Path:
    """A file holding `pem`, for the HTTP clients, which read a CA from a path. A certificate is
    public; the folder is the user's own (a shared temporary folder would let another user plant
    a CA), named by content so that every run reuses one file."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "leadloop" / "ca"
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = cache / f"{hashlib.sha256(pem.encode()).hexdigest()[:24]}.pem"
    if not path.is_file() or path.read_text(encoding="utf-8") != pem:
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(pem, encoding="utf-8")
        partial.replace(path)
    return path


def server_description() -> str:
    """Where blocks are kept, for messages: the Prefect server's URL, or its local database."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return f"the Prefect server at {url}" if url else "Prefect's local database (PREFECT_API_URL is not set)"


def load_connection_block(name: str) -> LeadloopConnection:
    """The saved block `name`. Raises ConnectionBlockError saying what is wrong and what to do, when
    it does not exist, cannot be read or the Prefect server does not answer; never with a secret."""
    import httpx
    from prefect.exceptions import ObjectNotFound

    try:
        return LeadloopConnection.load(name)
    except ValidationError as error:  # its message would show the values: fields and reasons only
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: "
                             f"{e['msg'].removeprefix('Value error, ')}" for e in error.errors())
        raise ConnectionBlockError(
            f"the leadloop connection block {name!r} is not usable ({problems}); save it again: "
            f"leadloop connect --name {name} --overwrite ...") from None
    except ValueError as error:
        if not isinstance(error.__cause__, ObjectNotFound):
            raise
        raise ConnectionBlockError(
            f"there is no leadloop connection block named {name!r} on {server_description()}. Save one "
            f"with `leadloop connect --name {name}` (from --connection-file FILE, --from-env or prompts), or "
            "name an existing one (`prefect block ls` lists them).") from None
    except httpx.HTTPError as error:
        raise ConnectionBlockError(
            f"cannot read the leadloop connection block {name!r}: {server_description()} does not "
            f"answer ({type(error).__name__}); start it (make serve) or set PREFECT_API_URL") from None


def connection_settings(options: RunOptions) -> ConnectionSettings:
    """The run's connection: the named block's when `options.connection` is set, else the connection
    file's, else the LEADLOOP_ environment's. Raises ConnectionFileError (ConnectionBlockError for a
    block) with what to do."""
    if options.connection is None:
        return load_connection(options.connection_file)
    return load_connection_block(options.connection).connection_settings(options.connection)
