"""Builders shared by the scoring tests (no tests here): records at a fixed time, bundled playbooks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count
from pathlib import Path
from typing import Any

from test_scoring_fixture import NORTHWIND_YAML

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Activity, Person
from leadloop.playbook.load import load_playbook, parse_playbook
from leadloop.playbook.model import Playbook
from leadloop.scoring.engine import ScoringResult, score_dataset

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SITE = "https://www.northwind-semi.com"
_ids = count()


@cache
def semiconductor() -> Playbook:
    """The pinned Northwind semiconductor playbook (test_scoring_fixture), not the bundled example."""
    return parse_playbook(NORTHWIND_YAML, source="northwind")


@cache
def industrial() -> Playbook:
    return load_playbook(PLAYBOOKS / "industrial.yaml")


def auto_account(account_id: str = "acc-auto", **fields: Any) -> Account:
    """An automotive tier-1 that fits the automotive power profile well."""
    values = dict(
        name="Voltra Automotive",
        industry="Automotive",
        application="BMS",
        device_type="PMIC",
        process="AEC-Q100",
        package="QFN",
        region="EMEA",
        country="Germany",
        employees=12000,
    )
    values.update(fields)
    return Account(id=account_id, **values)


def motor_account(account_id: str = "acc-motor", **fields: Any) -> Account:
    values = dict(
        name="SunMotion Drives",
        industry="Motor Drives",
        application="Servo drives",
        device_type="Gate driver",
        process="IEC 61800",
        package="SOIC-16W",
        region="EMEA",
        employees=850,
    )
    values.update(fields)
    return Account(id=account_id, **values)


def engineer(person_id: str = "p1", account_id: str | None = "acc-auto", **fields: Any) -> Person:
    values = dict(
        email=f"{person_id}@voltra-auto.de",
        first_name="Anna",
        last_name="Keller",
        title="Sr. HW Eng.",
        department="Power Electronics Engineering",
        country="Germany",
    )
    values.update(fields)
    return Person(id=person_id, account_id=account_id, **values)


def activity(person_id: str, kind: str, days_ago: float, **fields: Any) -> Activity:
    return Activity(
        id=f"a{next(_ids)}",
        person_id=person_id,
        kind=kind,
        occurred_at=NOW - timedelta(days=days_ago),
        **fields,
    )


def committee() -> list[Person]:
    """Three people at the automotive account in three buying roles: engineering, procurement, quality."""
    return [
        engineer("p1"),
        engineer("p2", title="Buyer II"),
        engineer("p3", title="Supplier Quality Engineer"),
    ]


def evk_request(person_id: str = "p1", days_ago: float = 2) -> Activity:
    return activity(person_id, "eval_kit_request", days_ago, form_name="EVK-7710 request")


def datasheet_download(person_id: str = "p1", days_ago: float = 2) -> Activity:
    return activity(person_id, "asset_download", days_ago, url=f"{SITE}/docs/ds/pmic-77.pdf")


def page_view(
    person_id: str = "p1", days_ago: float = 2, path: str = "/applications/automotive/bms", **fields: Any
) -> Activity:
    return activity(person_id, "page_view", days_ago, url=SITE + path, **fields)


def score(
    people: list[Person],
    activities: list[Activity] = (),
    accounts: list[Account] = (),
    playbook: Playbook | None = None,
    now: datetime = NOW,
) -> ScoringResult:
    dataset = Dataset(accounts=list(accounts), people=list(people), activities=list(activities))
    return score_dataset(playbook or semiconductor(), dataset, now)


def card(people, activities=(), accounts=(), person_id: str = "p1", **kwargs: Any):
    return score(people, activities, accounts, **kwargs).cards[person_id]


def texts(card_) -> list[str]:
    return [r.text for r in card_.reasons]
