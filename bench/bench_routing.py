"""Benchmark: route 100,000 scored people (target ≤ 3 s on the 2-core reference machine).

Builds synthetic ScoreCards, people, accounts, opportunities and assets directly (no scoring, no
I/O), then times `route_all` alone: median of several runs, each from a fresh assignment state.

    .venv/bin/python bench/bench_routing.py [--people 100000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from leadloop.crm.records import Account, Asset, CustomerType, Opportunity, Person
from leadloop.playbook.routing import RoutingSection
from leadloop.routing import Action, AssignmentState, route_all
from leadloop.scoring.scorecard import Escalation, Reason, ReasonKind, ScoreCard

NOW = datetime(2025, 6, 11, 10, 0, tzinfo=UTC)
REGIONS = ("EMEA", "Americas", "APAC")
SEGMENTS = ("automotive", "industrial", "consumer", "datacenter")
STAGES = ("learn", "evaluate", "validate", "buy")


def routing_section() -> RoutingSection:
    reps = [{"email": f"rep{i:02d}@vendor.com", "name": f"Rep {i}", "weight": 1 + i % 3,
             "time_zone": ("Europe/Berlin", "America/Chicago", "Asia/Taipei")[i % 3],
             "daily_cap": 400, "weekly_cap": 1500} for i in range(30)]
    pools = [{"name": region, "reps": [r["email"] for j, r in enumerate(reps) if j % 3 == k], "why": "region"}
             for k, region in enumerate(REGIONS)]
    return RoutingSection.model_validate({
        "actions": [{"tier": "Sales priority", "do": "assign", "sla": "day", "why": "ready"},
                    {"tier": "Nurture", "do": "nurture", "why": "educate"},
                    {"tier": "Unqualified for now", "do": "none", "why": "not yet"}],
        "slas": {"day": {"business_days": 1, "why": "warm"},
                 "evk": {"business_hours": 4, "priority": "high", "why": "hot"}},
        "holidays": [{"date": "2025-12-25", "name": "Christmas"}],
        "reps": reps,
        "queues": [{"id": "queue", "name": "Queue", "why": "overflow"}],
        "pools": pools,
        "territories": [{"name": r, "region": [r], "pool": r, "why": "region"} for r in REGIONS],
        "default_pool": "EMEA",
        "fallback_owner": "queue",
        "stages": {s: {"next_step": f"next step at {s}", "questions": ["Q1?", "Q2?"], "why": "guide"}
                   for s in STAGES},
        "nurture": {"tracks": [{"name": f"{s}-track", "segment": [s], "why": "segment"} for s in SEGMENTS]},
    })


def build(n_people: int, seed: int = 7):
    rng = random.Random(seed)
    n_accounts = max(1, n_people // 5)
    accounts = {
        f"a{i}": Account(id=f"a{i}", name=f"Account {i}", region=rng.choice(REGIONS),
                         segment=rng.choice(SEGMENTS),
                         customer_type=CustomerType.CUSTOMER if rng.random() < 0.1 else CustomerType.PROSPECT,
                         owner_id=f"rep{rng.randrange(30):02d}@vendor.com" if rng.random() < 0.2 else None)
        for i in range(n_accounts)
    }
    opportunities = [Opportunity(id=f"o{i}", account_id=f"a{rng.randrange(n_accounts)}",
                                 owner_id=f"rep{rng.randrange(30):02d}@vendor.com",
                                 is_closed=rng.random() < 0.5)
                     for i in range(n_accounts // 10)]
    assets = [Asset(id=f"as{i}", name=f"Asset {i}", type="application_note", segment=rng.choice(SEGMENTS),
                    stage=rng.choice(STAGES)) for i in range(200)]
    people, cards = {}, []
    when = NOW - timedelta(days=3)
    for i in range(n_people):
        pid = f"p{i:06d}"
        account_id = f"a{rng.randrange(n_accounts)}"
        people[pid] = Person(id=pid, first_name="Pat", last_name=f"N{i}", account_id=account_id,
                             region=rng.choice(REGIONS), unsubscribed=rng.random() < 0.05,
                             salesforce_lead_id=f"00Q{i}", title="Sr. HW Eng.")
        roll = rng.random()
        tier = "Sales priority" if roll < 0.15 else "Nurture" if roll < 0.55 else "Unqualified for now"
        reasons = tuple(Reason(ReasonKind.INTENT, f"r{k}", rng.randint(1, 30), f"+{k} did thing {k}", when,
                               f"as{rng.randrange(200)}") for k in range(4))
        cards.append(ScoreCard(
            person_id=pid, account_id=account_id, model_version="m", scored_at=NOW, profile="power",
            fit=rng.uniform(0, 100), intent=rng.uniform(0, 100), account_fit=50, account_intent=20,
            score=rng.uniform(0, 100), tier=tier, stage=rng.choice(STAGES), role="engineering",
            escalation=Escalation("evk", "evk", "asked for an EVK") if rng.random() < 0.03 else None,
            disqualified="student" if rng.random() < 0.02 else None, reasons=reasons,
        ))
    return cards, people, accounts, opportunities, assets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rules = routing_section()
    cards, people, accounts, opportunities, assets = build(args.people)
    timings, cpu = [], []
    result = None
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = route_all(cards, people=people, accounts=accounts, opportunities=opportunities,
                           assets=assets, section=rules, state=AssignmentState(), now=NOW)
        timings.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    assert result is not None
    actions = Counter(d.action.value for d in result.decisions)
    tasks = sum(1 for d in result.decisions if d.task is not None)
    owners = len({d.owner for d in result.decisions if d.action is Action.ASSIGN})
    median = statistics.median(timings)
    print(f"routed {len(result.decisions):,} people in {median:.2f} s wall, median of {args.runs} runs "
          f"(min {min(timings):.2f} s, max {max(timings):.2f} s; CPU median {statistics.median(cpu):.2f} s)"
          f" = {len(result.decisions) / median:,.0f} people/s")
    print(f"machine load average while running: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"actions {dict(actions)}; tasks {tasks:,}; distinct owners {owners}; "
          f"suppressions {dict((k.value, v) for k, v in result.report.counts.items())}")
    print("target ≤ 3 s:", "met" if median <= 3 else "MISSED")


if __name__ == "__main__":
    main()
