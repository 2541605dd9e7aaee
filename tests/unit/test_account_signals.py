"""Account signals: a fact about the account itself (an existing customer) counts as account intent
before anyone there engages, is worded on the account and on its people's account-intent line, keeps
every card's lines adding up to its score, and is a weight the model review's learner can move.

Scored with the shipped semiconductor playbook on small hand-built datasets (issue #21: a person
converts when their account gets an opportunity, and customers place repeat orders).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Person
from leadloop.playbook.load import load_playbook, parse_playbook
from leadloop.playbook.model import PlaybookError
from leadloop.scoring.engine import score_dataset
from leadloop.scoring.learn import _features, _learnable
from leadloop.scoring.scorecard import ReasonKind

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[2] / "playbooks" / "semiconductor.yaml"


def _account(account_id: str, customer_type: str) -> Account:
    return Account(id=account_id, name=f"Voltra {account_id}", industry="Automotive",
                   segment="automotive power", application="EV traction inverter", region="EMEA",
                   employees=2_000, customer_type=customer_type, domain=f"{account_id}.example")


def _person(person_id: str, account_id: str) -> Person:
    return Person(id=person_id, account_id=account_id, email=f"{person_id}@{account_id}.example",
                  title="Senior Power Electronics Engineer", country="DE")


def _scored(points: float | None = None):
    text = SHIPPED.read_text(encoding="utf-8")
    playbook = load_playbook(SHIPPED)
    if points is not None:
        data = yaml.safe_load(text)
        data["account"]["signals"][0]["points"] = points
        playbook = parse_playbook(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), source="changed")
    dataset = Dataset(accounts=[_account("cust", "customer"), _account("pros", "prospect")],
                      people=[_person("p-cust", "cust"), _person("p-pros", "pros")])
    return playbook, score_dataset(playbook, dataset, NOW)


def test_an_existing_customer_is_warm_before_anyone_engages():
    playbook, result = _scored()
    points = playbook.account.signals[0].points
    customer, prospect = result.cards["p-cust"], result.cards["p-pros"]
    assert result.accounts["cust"].intent == points and result.accounts["pros"].intent == 0
    assert customer.account_intent == points and prospect.account_intent == 0
    line = next(r for r in customer.reasons if r.rule == "account_intent")
    assert line.contribution == pytest.approx(playbook.blend.account_intent * points)
    assert not any(r.rule == "account_intent" for r in prospect.reasons)
    assert line.text.endswith("; existing customer")
    assert any(r.rule == "existing_customer" and r.text == f"+{points:g} existing customer"
               for r in result.accounts["cust"].reasons)
    for card in (customer, prospect):  # the signal's own line on the card adds nothing: the lines still sum
        assert sum(r.contribution for r in card.reasons) == pytest.approx(card.score, abs=0.15)


def test_the_learner_sees_what_the_signal_gave_each_person():
    playbook, result = _scored(points=12)
    weights = _learnable(playbook)
    column = next(j for j, w in enumerate(weights) if w.rule == "existing_customer")
    assert weights[column].where == "account signal" and weights[column].current == 12
    features = _features([result.cards["p-cust"], result.cards["p-pros"]], weights, playbook)
    assert features[:, column].tolist() == pytest.approx([playbook.blend.account_intent * 12, 0.0])


def test_an_account_signal_looks_at_the_account_only():
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    data["account"]["signals"][0]["when"] = [{"field": "person.country", "in": ["DE"]}]
    with pytest.raises(PlaybookError, match=r"'person\.country' is not an account field"):
        parse_playbook(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), source="bad.yaml")


def test_a_playbook_without_signals_keeps_its_model_version():
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    del data["account"]["signals"]
    without = parse_playbook(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), source="a")
    data["account"]["signals"] = []
    empty = parse_playbook(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), source="b")
    assert without.model_version == empty.model_version != load_playbook(SHIPPED).model_version
    alone = Dataset(accounts=[_account("cust", "customer")], people=[_person("p", "cust")])
    card = score_dataset(without, alone, NOW).cards["p"]
    assert card.account_intent == 0
    assert not any(r.kind == ReasonKind.ACCOUNT and r.rule == "existing_customer" for r in card.reasons)


def test_the_review_sees_an_account_as_a_customer_only_from_its_first_win():
    from datetime import date, timedelta

    from leadloop.crm.records import Opportunity
    from leadloop.flows.model_review import customers_then

    cutoff = NOW - timedelta(days=120)
    accounts = [_account("won-since", "customer"), _account("won-before", "customer"),
                _account("no-record", "customer"), _account("prospect", "prospect")]
    opportunities = [
        Opportunity(id="o1",
                    account_id="won-since", is_closed=True, is_won=True, close_date=date(2026, 9, 1),
                    created_at=NOW - timedelta(days=100)),
        Opportunity(id="o2",
                    account_id="won-before", is_closed=True, is_won=True, close_date=date(2026, 3, 1),
                    created_at=NOW - timedelta(days=300)),
        Opportunity(id="o3",
                    account_id="won-before", is_closed=True, is_won=True, close_date=date(2026, 9, 1),
                    created_at=NOW - timedelta(days=100)),
    ]
    then = {a.id: a.customer_type for a in customers_then(accounts, opportunities, cutoff)}
    # the win being predicted must not make its account a customer at the cut-off
    assert then == {"won-since": "prospect", "won-before": "customer", "no-record": "customer",
                    "prospect": "prospect"}
