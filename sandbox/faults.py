"""Fault injection: what `POST /_sandbox/faults` configures and how each fault is decided.

The body is one rule or `{"rules": [rule, ...]}`; posting replaces every rule, `{}` or `DELETE`
clears them (and revives sessions a rule expired). A rule applies to calls matching its optional
`crm` and `endpoint` (a substring of `METHOD /path` or of the normalized route name). Its counters
(every N calls) count matching calls only, from the moment it was posted. The 5xx ratio draws from a
random generator seeded by the rule's `seed`, so a run is reproducible.

Transport-level faults are decided here and applied by the core's middleware; record rejection
and search lag are consulted by the backends through the `Faults` seam.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Rejection(BaseModel):
    """Reject records of `object` in batch writes whose `field` equals `value`, or whose id is `id`."""

    model_config = ConfigDict(extra="forbid")
    object: str
    field: str | None = None
    value: Any = None
    id: str | None = None
    message: str = "Rejected by a validation rule of the sandbox"

    @model_validator(mode="after")
    def _needs_a_match(self) -> Rejection:
        if self.field is None and self.id is None:
            raise ValueError("a rejection needs 'field' (with 'value') or 'id'")
        return self

    def matches(self, object_name: str, record: dict[str, Any]) -> bool:
        if object_name.lower() != self.object.lower():
            return False
        if self.id is not None and self.id not in {str(record.get(k)) for k in ("Id", "id")}:
            return False
        if self.field is not None:
            properties = record.get("properties")
            properties = properties if isinstance(properties, dict) else {}
            if self.field in record:
                value = record[self.field]
            elif self.field in properties:
                value = properties[self.field]
            else:
                return False
            return value == self.value or str(value) == str(self.value)
        return True


class FaultRule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    crm: Literal["salesforce", "hubspot"] | None = None
    endpoint: str | None = None
    latency_ms: float = Field(0, ge=0)
    jitter_ms: float = Field(0, ge=0)
    status_429_every: int | None = Field(None, ge=1)
    retry_after: float | None = Field(None, ge=0)
    error_5xx_ratio: float = Field(0, ge=0, le=1)
    error_5xx_status: int = Field(503, ge=500, le=599)
    drop_connection_every: int | None = Field(None, ge=1)
    slow_response_ms: float = Field(0, ge=0)
    # the call is carried out at once and its answer held back: a client that gives up meanwhile
    # sees a timeout although the CRM completed the write
    answer_late_ms: float = Field(0, ge=0)
    session_expire_after: int | None = Field(None, ge=0)
    reject: list[Rejection] = Field(default_factory=list)
    search_lag_seconds: float = Field(0, ge=0)
    seed: int = 0

    def applies(self, crm: str, endpoint_texts: tuple[str, ...]) -> bool:
        if self.crm is not None and self.crm != crm:
            return False
        return self.endpoint is None or any(self.endpoint in text for text in endpoint_texts)


class FaultConfigError(ValueError):
    """The faults body is not valid; the message says which field and why."""


def parse_rules(body: Any) -> list[FaultRule]:
    if body is None or body == {}:
        return []
    if not isinstance(body, dict):
        raise FaultConfigError("the faults body must be a JSON object (one rule, or {'rules': [...]})")
    raw = body["rules"] if set(body) == {"rules"} else [body]
    if not isinstance(raw, list):
        raise FaultConfigError("'rules' must be a list of rule objects")
    rules = []
    for index, item in enumerate(raw):
        try:
            rules.append(FaultRule.model_validate(item))
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(rule)'}: {e['msg']}" for e in error.errors()
            )
            raise FaultConfigError(f"rule {index}: {problems}") from None
    return rules


@dataclass(slots=True)
class TransportDecision:
    """What the middleware does to one call."""

    delay_seconds: float = 0.0
    answer_delay_seconds: float = 0.0
    status_429: bool = False
    retry_after: float | None = None
    status_5xx: int | None = None
    drop_connection: bool = False
    expire_sessions: bool = False
    expire_crm: str | None = None  # None: every CRM's tokens


@dataclass(slots=True)
class _ActiveRule:
    rule: FaultRule
    rng: random.Random
    calls: int = 0
    expired: bool = False


@dataclass(slots=True)
class FaultInjector:
    """The rules in force (implements the `Faults` seam)."""

    _rules: list[_ActiveRule] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, rules: list[FaultRule]) -> None:
        with self._lock:
            self._rules = [_ActiveRule(rule, random.Random(rule.seed)) for rule in rules]

    def clear(self) -> None:
        self.configure([])

    @property
    def active(self) -> bool:
        return bool(self._rules)

    @property
    def scoped_by_endpoint(self) -> bool:
        return any(r.rule.endpoint is not None for r in self._rules)

    def describe(self) -> list[dict[str, Any]]:
        return [r.rule.model_dump(exclude_defaults=True) | {"calls_seen": r.calls} for r in self._rules]

    def decide(self, crm: str, endpoint_texts: tuple[str, ...]) -> TransportDecision:
        decision = TransportDecision()
        with self._lock:
            for active in self._rules:
                rule = active.rule
                if not rule.applies(crm, endpoint_texts):
                    continue
                active.calls += 1
                n = active.calls
                if rule.session_expire_after is not None and not active.expired \
                        and n > rule.session_expire_after:
                    active.expired = True
                    decision.expire_sessions = True
                    decision.expire_crm = rule.crm
                delay = rule.latency_ms
                if rule.jitter_ms:
                    delay += active.rng.uniform(0, rule.jitter_ms)
                decision.delay_seconds += (delay + rule.slow_response_ms) / 1000
                decision.answer_delay_seconds += rule.answer_late_ms / 1000
                if rule.status_429_every and n % rule.status_429_every == 0:
                    decision.status_429 = True
                    decision.retry_after = rule.retry_after
                if rule.error_5xx_ratio and active.rng.random() < rule.error_5xx_ratio:
                    decision.status_5xx = rule.error_5xx_status
                if rule.drop_connection_every and n % rule.drop_connection_every == 0:
                    decision.drop_connection = True
        return decision

    def rejection(self, crm: str, object_name: str, record: dict[str, Any]) -> str | None:
        for active in self._rules:
            if active.rule.crm not in (None, crm):
                continue
            for rejection in active.rule.reject:
                if rejection.matches(object_name, record):
                    return rejection.message
        return None

    def search_lag_seconds(self, crm: str) -> float:
        lags = [a.rule.search_lag_seconds for a in self._rules if a.rule.crm in (None, crm)]
        return max(lags, default=0.0)
