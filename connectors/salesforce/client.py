"""The one factory that builds leadloop's Salesforce client, and the client itself.

`SalesforceClient` wraps `simple_salesforce.Salesforce` (which owns URLs, headers and error types)
with what a sync needs around every call: TLS through an injected `requests.Session` (environment CA
variables ignored, verification always on), retries for retriable failures only, call counting by
endpoint, `Sforce-Limit-Info` tracking, and session renewal. Authentication: a session id + instance
URL, or the OAuth username-password or JWT-bearer flow against `{auth_url}/services/oauth2/token`.

When a session expires the client logs in again (when it has credentials) and repeats the call. A
query locator belongs to the session that opened it, so an expiry in the middle of paging raises
`QueryInterrupted` instead: the caller resumes the query from the last cursor value it saw. Salesforce
answers a wrong session id and an expired one alike (401 INVALID_SESSION_ID); the client tells them
apart by whether any call of its own succeeded before, and says "rejected" or "expired" accordingly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import certifi
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError

from leadloop.connectors.clock import server_date
from leadloop.connectors.concurrency import PullsStopped
from leadloop.connectors.paging import TokenPaginator
from leadloop.connectors.retry import retry_after_seconds, until_stopped
from leadloop.connectors.salesforce.retry import (
    ApiUsage,
    RetryPolicy,
    SalesforceCallError,
    SessionExpiredError,
    call_with_retries,
    error_from_body,
    parse_limit_info,
)
from leadloop.connectors.settings import SalesforceSettings
from leadloop.crm.ports import CallCounter

log = logging.getLogger("leadloop.connectors.salesforce")

MAX_QUERY_BATCH = 2000  # the most rows Salesforce returns per query page
JWT_LIFETIME_SECONDS = 180


class AuthenticationError(RuntimeError):
    """Salesforce refused the credentials, or a session ended and could not be renewed; the message
    names the flow, never a secret."""


class QueryInterrupted(RuntimeError):
    """The session was renewed while paging a query; its locator is gone, resume from the cursor."""


Authenticator = Callable[[requests.Session], tuple[str, str]]  # → (access token, instance URL)


def _token_request(session: requests.Session, url: str, data: dict[str, str], flow: str,
                   timeout: tuple[float, float]) -> tuple[str, str]:
    try:
        response = session.post(url, data=data, timeout=timeout)
    except requests.RequestException as error:
        raise AuthenticationError(f"cannot reach {url} for the Salesforce {flow} login: "
                                  f"{type(error).__name__}") from None
    if response.status_code != 200:
        try:
            body = response.json()
        except ValueError:
            body = response.text
        code, message = error_from_body(body)
        raise AuthenticationError(f"the Salesforce {flow} login at {url} was refused: {response.status_code} "
                                  f"{code or ''} {message}".strip())
    body = response.json()
    return body["access_token"], body.get("instance_url") or url.split("/services/", 1)[0]


def _jwt_audience(auth_url: str) -> str:
    """Salesforce wants its own login host as the audience, or the custom login URL elsewhere."""
    if "test.salesforce.com" in auth_url or ".sandbox.my.salesforce.com" in auth_url:
        return "https://test.salesforce.com"
    if auth_url.endswith(".salesforce.com"):
        return "https://login.salesforce.com"
    return auth_url


def _sign_jwt(claims: dict[str, Any], private_key_pem: bytes) -> str:
    import jwt  # PyJWT, with cryptography for RS256

    return jwt.encode(claims, private_key_pem, algorithm="RS256")


def authenticator_for(settings: SalesforceSettings, timeout: tuple[float, float]) -> Authenticator | None:
    """The login flow the settings allow, or None when only a session id was given."""
    url = f"{settings.auth_url}/services/oauth2/token"
    if settings.username and settings.consumer_key and settings.private_key_file:
        key_file: Path = settings.private_key_file
        username, consumer_key = settings.username, settings.consumer_key
        audience = _jwt_audience(settings.auth_url)

        def jwt_bearer(session: requests.Session) -> tuple[str, str]:
            claims = {"iss": consumer_key, "sub": username, "aud": audience,
                      "exp": int(time.time()) + JWT_LIFETIME_SECONDS}
            try:
                pem = key_file.read_bytes()
            except OSError as error:
                raise AuthenticationError(
                    f"cannot read the private key file {key_file} of the Salesforce JWT bearer flow: "
                    f"{error.strerror}") from None
            assertion = _sign_jwt(claims, pem)
            data = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
            return _token_request(session, url, data, "JWT bearer", timeout)

        return jwt_bearer
    if settings.username and settings.password:
        username = settings.username
        password, token = settings.password, settings.security_token
        client_id, client_secret = settings.consumer_key, settings.consumer_secret

        def username_password(session: requests.Session) -> tuple[str, str]:
            data = {"grant_type": "password", "username": username,
                    "password": password.get_secret_value() + (token.get_secret_value() if token else "")}
            if client_id:
                data["client_id"] = client_id
            if client_secret:
                data["client_secret"] = client_secret.get_secret_value()
            return _token_request(session, url, data, "username-password", timeout)

        return username_password
    return None


class SalesforceClient:
    """One authenticated connection to one org. Not thread-safe: one per flow task."""

    def __init__(self, session: requests.Session, instance_url: str, session_id: str, api_version: str,
                 authenticator: Authenticator | None = None, counter: CallCounter | None = None,
                 policy: RetryPolicy | None = None) -> None:
        self.session = session
        self.api_version = api_version
        self.counter = counter if counter is not None else CallCounter()
        self.policy = policy or RetryPolicy()
        self.usage: ApiUsage | None = None
        # the run is stopping (Ctrl-C, SIGTERM, a cancel): no call is sent after it is set, and the
        # waits between attempts and between a bulk job's polls end at once
        self.stopping = threading.Event()
        self._authenticator = authenticator
        self._describes: dict[str, dict[str, Any]] = {}
        self._last_headers: Any = None
        self._accepted = False  # has Salesforce answered any call of this client yet?
        self._connect(instance_url, session_id)
        session.hooks["response"].append(self._observe)

    def __repr__(self) -> str:
        return f"SalesforceClient(instance_url={self.instance_url!r}, api_version={self.api_version!r})"

    def _connect(self, instance_url: str, session_id: str) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.sf = Salesforce(instance_url=self.instance_url, session_id=session_id, version=self.api_version,
                             session=self.session)

    @property
    def base_url(self) -> str:
        return self.sf.base_url

    @property
    def server_time(self) -> datetime | None:
        """Salesforce's clock (its `Date` header, whole seconds) on the last answer received."""
        return server_date(self._last_headers)

    @property
    def can_renew(self) -> bool:
        return self._authenticator is not None

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_headers = response.headers
        usage = parse_limit_info(response.headers.get("Sforce-Limit-Info"))
        if usage is not None:
            if usage.fraction >= 0.9 and (self.usage is None or self.usage.fraction < 0.9):
                log.warning("salesforce API usage at %d/%d of the org's 24-hour allocation", usage.used,
                            usage.limit)
            self.usage = usage

    def renew_session(self) -> None:
        """Log in again with the configured credentials; raises AuthenticationError without them, or
        when the login is refused. A session that never worked was rejected, not expired: the
        message says which, since the fix differs (correct the settings, or start a new session)."""
        if self._authenticator is None:
            if not self._accepted:
                raise AuthenticationError(
                    "Salesforce rejected the configured session id (401 INVALID_SESSION_ID on the first "
                    "call): it is wrong or no longer valid, and no credentials are configured to log in "
                    "instead; give a valid session_id, or username + password, or the JWT bearer settings")
            raise AuthenticationError(
                "the Salesforce session expired and no credentials are configured to renew it; give a new "
                "session_id, or username + password, or the JWT bearer settings")
        try:
            token, instance_url = self._authenticator(self.session)
        except AuthenticationError as error:
            if self._accepted:
                raise AuthenticationError(f"the Salesforce session expired and logging in again failed: "
                                          f"{error}") from None
            raise
        self.counter.add("oauth2/token")
        self._connect(instance_url, token)
        log.info("salesforce session renewed")

    def wait(self, seconds: float) -> None:
        """Wait `seconds` (a bulk job's next poll), less when the run stops; the next call then raises
        `PullsStopped`."""
        until_stopped(self.policy, self.stopping).sleep(seconds)

    def _attempt(self, endpoint: str, fn: Callable[[], Any]) -> Any:
        if self.stopping.is_set():
            raise PullsStopped(f"{endpoint}: not sent, the run is stopping")
        self.counter.add(endpoint)
        self._last_headers = None
        try:
            answer = fn()
        except SalesforceError as error:
            code, message = error_from_body(error.content)
            headers = self._last_headers
            if error.status == 401 and code in (None, "INVALID_SESSION_ID"):
                raise SessionExpiredError(endpoint, 401, code, message) from None
            raise SalesforceCallError(endpoint, error.status, code, message,
                                      retry_after_seconds(headers)) from None
        except requests.RequestException as error:
            raise SalesforceCallError(endpoint, None, type(error).__name__, "no response") from error
        self._accepted = True
        return answer

    def _call(self, endpoint: str, fn: Callable[[], Any], *, renew: bool = True) -> Any:
        policy = until_stopped(self.policy, self.stopping)
        try:
            return call_with_retries(lambda: self._attempt(endpoint, fn), endpoint, policy)
        except SessionExpiredError:
            if not renew:
                raise
            self.renew_session()
            return call_with_retries(lambda: self._attempt(endpoint, fn), endpoint, policy)

    def request(self, method: str, path: str, endpoint: str, *, params: dict[str, Any] | None = None,
                json: Any = None) -> Any:
        """A REST call on `{base_url}{path}`; the parsed JSON body, or None for 204."""
        kwargs: dict[str, Any] = {"timeout": self.policy.timeout}
        if json is not None:
            kwargs["json"] = json
        return self._call(endpoint, lambda: self.sf.restful(path, params=params, method=method, **kwargs))

    def tooling(self, method: str, path: str, endpoint: str, json: Any = None) -> Any:
        return self.request(method, f"tooling/{path}", endpoint, json=json)

    def userinfo(self) -> dict[str, Any]:
        """Who this session belongs to (OpenID Connect UserInfo: `user_id`, `preferred_username`, ...)."""
        return self._call("oauth2/userinfo", lambda: self.sf.oauth2("userinfo"))  # type: ignore[no-any-return]

    def ui_api(self, method: str, path: str, endpoint: str, *, json: Any = None,
               min_version: str = "61.0") -> Any:
        """A User Interface API call, at `min_version` when the configured API version is older (list
        views can be created from 61.0 on)."""
        kwargs: dict[str, Any] = {"timeout": self.policy.timeout}
        if json is not None:
            kwargs["json"] = json

        def call() -> Any:
            sf = self.sf
            if float(self.api_version) < float(min_version):
                sf = Salesforce(instance_url=self.instance_url, session_id=self.sf.session_id,
                                version=min_version, session=self.session)
            return sf.restful(f"ui-api/{path}", method=method, **kwargs)

        return self._call(endpoint, call)

    def describe(self, sobject: str) -> dict[str, Any]:
        """The sObject's describe, fetched once per client."""
        if sobject not in self._describes:
            self._describes[sobject] = self.request(
                "GET", f"sobjects/{sobject}/describe/", f"describe:{sobject}")
        return self._describes[sobject]

    def query_pages(self, soql: str, *, include_deleted: bool, batch_size: int = MAX_QUERY_BATCH,
                    endpoint: str = "query", on_total: Callable[[int], None] | None = None,
                    ) -> Iterator[list[dict[str, Any]]]:
        """Each page of records of a SOQL query, following `nextRecordsUrl` until done.

        An expired session on the first page is renewed and the page asked again; on a later page
        it is renewed and QueryInterrupted raised (the locator died with the old session).
        `on_total`, when given, hears the query's `totalSize` before the first page is yielded.
        """
        headers = {"Sforce-Query-Options": f"batchSize={batch_size}"}
        timeout = self.policy.timeout

        def fetch(next_url: str | None) -> dict[str, Any]:
            if next_url is None:
                first = self._call(endpoint, lambda: self.sf.query(soql, include_deleted=include_deleted,
                                                                   headers=headers, timeout=timeout))
                if on_total is not None:
                    on_total(int(first.get("totalSize") or 0))
                return first
            try:
                return self._call(endpoint, lambda: self.sf.query_more(
                    next_url, identifier_is_url=True, headers=headers, timeout=timeout), renew=False)
            except SessionExpiredError:
                self.renew_session()
                raise QueryInterrupted(f"{endpoint}: session renewed while paging") from None
            except SalesforceCallError as error:
                if error.code == "INVALID_QUERY_LOCATOR":
                    raise QueryInterrupted(f"{endpoint}: query locator expired") from None
                raise

        for result in TokenPaginator(fetch, _next_records_url, endpoint=endpoint):
            yield result["records"]


def _next_records_url(result: dict[str, Any]) -> str | None:
    """The locator URL of a query's next page, None once it is done."""
    if result.get("done", True):
        return None
    return result.get("nextRecordsUrl") or None


def _http_session(ca_cert: str | Path | None) -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment would override verify
    session.verify = str(ca_cert) if ca_cert else certifi.where()
    return session


def salesforce_client(
    settings: SalesforceSettings, ca_cert: str | Path | None = None, *,
    counter: CallCounter | None = None, policy: RetryPolicy | None = None,
) -> SalesforceClient:
    """A connected client: with the given session id, or after logging in with the configured flow."""
    policy = policy or RetryPolicy()
    session = _http_session(ca_cert)
    authenticator = authenticator_for(settings, policy.timeout)
    if settings.session_id is not None and settings.instance_url is not None:
        token, instance_url = settings.session_id.get_secret_value(), settings.instance_url
    elif authenticator is not None:
        token, instance_url = authenticator(session)
        (counter := counter if counter is not None else CallCounter()).add("oauth2/token")
    else:  # pragma: no cover - SalesforceSettings validation rules this out
        raise AuthenticationError("no way to authenticate to Salesforce is configured")
    return SalesforceClient(session, instance_url, token, settings.api_version, authenticator, counter,
                            policy)
