"""Run the sandbox: uvicorn over HTTPS (a local trustme CA) on loopback, in a background thread.

`running_sandbox(...)` is the in-process context manager for the demo and the tests;
`start_sandbox(...)` returns the same handle for callers that manage its lifetime (the CLI).
Once the server answers, the connection file (mode 0600, written atomically) and the CA PEM beside
it are in place. With a data directory, the CA and the CRM state survive restarts. Everything holding
a token, a key or personal data is created 0600 in directories created 0700 (`sandbox.files`).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
import uvicorn

from leadloop.sandbox import persist
from leadloop.sandbox.app import Context, SandboxCore, create_app
from leadloop.sandbox.contract import Backend
from leadloop.sandbox.files import make_private_dir, write_private
from leadloop.sandbox.world import SIZES

LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
CA_CERT_NAME = "ca.pem"
CA_KEY_NAME = "ca-key.pem"


class SandboxConfigError(ValueError):
    """The sandbox cannot start with these settings; the message says why."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _certificate_authority(data_dir: Path | None) -> trustme.CA:
    """The data directory's CA when it has one (so clients keep trusting a restarted sandbox)."""
    if data_dir is not None:
        cert, key = data_dir / CA_CERT_NAME, data_dir / CA_KEY_NAME
        if cert.exists() and key.exists():
            return trustme.CA.from_pem(cert.read_bytes(), key.read_bytes())
    ca = trustme.CA(organization_name="leadloop sandbox")
    if data_dir is not None:
        write_private(data_dir / CA_KEY_NAME, ca.private_key_pem.bytes())
        write_private(data_dir / CA_CERT_NAME, ca.cert_pem.bytes())
    return ca


@dataclass(slots=True)
class SandboxHandle:
    """A running sandbox. `connection` is the connection-file dict (it holds tokens: never logged)."""

    base_url: str
    admin_url: str
    ca_path: Path
    connection_file: Path | None
    core: SandboxCore
    connection: dict[str, Any] = field(repr=False)
    _server: uvicorn.Server = field(repr=False)
    _thread: threading.Thread = field(repr=False)
    _scratch: Path = field(repr=False)

    def stop(self) -> None:
        """Stop serving; with a data directory, save the state first."""
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=0.5)
        if self._thread.is_alive():
            # Idle keep-alive TLS connections would hold a graceful shutdown for the TLS close timeout.
            self._server.force_exit = True
            self._thread.join(timeout=10)
        if self.core.data_dir is not None:
            self.core.persist()
        shutil.rmtree(self._scratch, ignore_errors=True)

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def session(self) -> Any:
        """A `requests` session that trusts this sandbox's CA, and only it: no CA bundle or proxy from
        the environment (REQUESTS_CA_BUNDLE would override `verify`)."""
        import requests

        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca_path)
        return session

    def salesforce(self) -> Any:
        """simple-salesforce, signed in as the connection file's user: the sandbox as a script or a
        report reads it."""
        from simple_salesforce import Salesforce

        conn = self.connection["salesforce"]
        return Salesforce(instance_url=conn["instance_url"], session_id=conn["session_id"],
                          session=self.session(), version=conn.get("api_version", "59.0"))

    def hubspot(self) -> Any:
        """hubspot-api-client with the connection file's private-app token."""
        from hubspot import HubSpot

        return HubSpot(access_token=self.connection["hubspot"]["access_token"], host=self.base_url,
                       ssl_ca_cert=str(self.ca_path))


def _connection(core: SandboxCore, base_url: str, ca_path: Path) -> dict[str, Any]:
    names = {b.name for b in core.backends}
    connection: dict[str, Any] = {}
    if "salesforce" in names:
        connection["salesforce"] = {
            "instance_url": base_url,
            "session_id": core.sessions.first_token("salesforce"),
            "api_version": "59.0",
            **core.sessions.credentials("salesforce"),
        }
    if "hubspot" in names:
        connection["hubspot"] = {"host": base_url, "access_token": core.sessions.first_token("hubspot")}
    connection["ca_cert"] = str(ca_path)
    connection["sandbox_admin_url"] = f"{base_url}/_sandbox"
    return connection


def start_sandbox(size: str = "tiny", seed: int = 7, empty: bool = False, data_dir: str | Path | None = None,
                  connection_file: str | Path | None = None, host: str = "127.0.0.1", port: int = 0,
                  allow_remote: bool = False,
                  backend_factories: Sequence[Callable[[Context], Backend]] | None = None) -> SandboxHandle:
    """Start a sandbox in a background thread; returns once it serves HTTPS requests.
    `backend_factories` replaces the CRM backends (tests of the core use stand-ins)."""
    if size not in SIZES:
        raise SandboxConfigError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    if not _is_loopback(host) and not allow_remote:
        raise SandboxConfigError(
            f"refusing to listen on {host}: the sandbox binds to loopback only unless --allow-remote is given"
        )
    data_path = Path(data_dir) if data_dir is not None else None
    connection_path = Path(connection_file) if connection_file is not None else None
    if data_path is not None:
        make_private_dir(data_path)

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle off only for sockets whose proto says TCP, and Nagle
    # with delayed ACKs costs 40 ms per response written in two parts.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise SandboxConfigError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    bound_port = sock.getsockname()[1]
    url_host = "127.0.0.1" if host in ("0.0.0.0", "localhost") else host
    base_url = f"https://[{url_host}]:{bound_port}" if ":" in url_host else f"https://{url_host}:{bound_port}"

    scratch = Path(tempfile.mkdtemp(prefix="leadloop-sandbox-"))
    try:
        ca = _certificate_authority(data_path)
        identities = list(dict.fromkeys([*LOOPBACK_NAMES, host]))
        leaf = ca.issue_cert(*identities)
        write_private(scratch / "server.pem", leaf.private_key_and_cert_chain_pem.bytes())
        if connection_path is not None:
            ca_path = connection_path.parent / CA_CERT_NAME
        elif data_path is not None:
            ca_path = data_path / CA_CERT_NAME
        else:
            ca_path = scratch / CA_CERT_NAME
        if not (ca_path.exists() and ca_path.read_bytes() == ca.cert_pem.bytes()):
            make_private_dir(ca_path.parent)  # the connection file's directory too
            ca.cert_pem.write_to_path(str(ca_path))  # a certificate: public, unlike what sits beside it

        core = SandboxCore(base_url, data_path, backend_factories)
        try:
            state = persist.load_state(data_path) if data_path is not None else None
        except persist.StateError as error:
            raise SandboxConfigError(str(error)) from None
        if state is not None:
            core.restore(state)
        elif not empty:
            core.seed(size, seed)

        config = uvicorn.Config(
            create_app(core), ssl_certfile=str(scratch / "server.pem"), log_level="warning",
            access_log=False, lifespan="off", timeout_keep_alive=60, server_header=False,
            date_header=False,  # the middleware sends the sandbox clock's Date
        )
        config.load()
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="sandbox-server",
                                  daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise SandboxConfigError(f"the sandbox server did not start on {host}:{bound_port}")
            time.sleep(0.01)
    except BaseException:
        sock.close()
        shutil.rmtree(scratch, ignore_errors=True)
        raise

    # absolute: a connection file's relative paths are read against the file's own folder, so a
    # relative path from the working directory would point elsewhere
    ca_path = ca_path.resolve()
    connection = _connection(core, base_url, ca_path)
    if connection_path is not None:
        write_private(connection_path, json.dumps(connection, indent=2).encode())
    return SandboxHandle(base_url=base_url, admin_url=f"{base_url}/_sandbox", ca_path=ca_path,
                         connection_file=connection_path, core=core, connection=connection,
                         _server=server, _thread=thread, _scratch=scratch)


@contextlib.contextmanager
def running_sandbox(size: str = "tiny", seed: int = 7, empty: bool = False,
                    data_dir: str | Path | None = None, connection_file: str | Path | None = None,
                    host: str = "127.0.0.1", port: int = 0, allow_remote: bool = False,
                    backend_factories: Sequence[Callable[[Context], Backend]] | None = None,
                    ) -> Iterator[SandboxHandle]:
    """A sandbox serving on a free loopback port for the duration of the `with` block."""
    handle = start_sandbox(size=size, seed=seed, empty=empty, data_dir=data_dir,
                           connection_file=connection_file, host=host, port=port, allow_remote=allow_remote,
                           backend_factories=backend_factories)
    try:
        yield handle
    finally:
        handle.stop()
