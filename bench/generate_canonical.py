"""Seeded generator of canonical records at scale (accounts, people, activities) for benchmarks.

The data looks like a power-semiconductor vendor's CRM: automotive and industrial accounts (and
some that fit no profile), messy titles, personal and competitor email domains, and activity
streams skewed towards a few heavy researchers, with URLs (and tracking query strings), forms and
campaigns the example playbooks recognize, plus some they do not.

    .venv/bin/python bench/generate_canonical.py --people 1000 --accounts 200 --activities 20000 --out d.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from pydantic import TypeAdapter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from leadloop.crm.dataset import Dataset, dataset_to_dict
from leadloop.crm.records import Account, Activity, Person

REFERENCE_TIME = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SITE = "https://www.northwind-semi.com"

INDUSTRIES = {
    "Automotive": ["BMS", "ADAS", "EV powertrain", "Body electronics", "Infotainment"],
    "Electric Vehicles": ["EV powertrain", "BMS"],
    "Automotive Electronics": ["Infotainment", "ADAS", "Body electronics"],
    "Motor Drives": ["Servo drives", "Motor drives"],
    "Robotics": ["Robotics", "Servo drives"],
    "Industrial Automation": ["Motor drives", "Robotics", "PLC I/O"],
    "HVAC": ["HVAC compressors"],
    "Energy": ["Solar inverters", "Grid storage"],
    "Consumer": ["Toys", "Consumer audio", "Wearables"],
    "Medical": ["Imaging", "Patient monitoring"],
}
DEVICE_TYPES = [
    "PMIC",
    "DC-DC converter",
    "LDO",
    "Power stage",
    "Gate driver",
    "SiC MOSFET",
    "IGBT module",
    "Inverter",
    "MCU",
    None,
]
PROCESSES = ["AEC-Q100", "IATF 16949", "IEC 61800", "UL 508C", "IEC 60747", None, None]
PACKAGES = ["QFN", "WLCSP", "HTSSOP", "SOIC-16W", "LGA", "BGA", None]
REGIONS = {
    "EMEA": ["Germany", "France", "Italy", "Sweden"],
    "Americas": ["United States", "Mexico", "Brazil"],
    "APAC": ["Japan", "China", "South Korea", "Taiwan", "India"],
}
TITLES = [
    "Sr. HW Eng.",
    "Principal Engineer – Power",
    "Hardware Engineer",
    "Power Electronics Engineer",
    "Senior Application Engineer",
    "Staff Engineer, Power",
    "Electrical Design Engineer",
    "Firmware Engineer",
    "Lead Hardware Engineer",
    "Director of R&D",
    "VP Engineering",
    "HW Design Engineer",
    "Systems Architect",
    "Buyer II",
    "Purchasing Manager",
    "Sr. Mgr, Global Sourcing",
    "VP Supply Chain",
    "Commodity Manager",
    "Supplier Quality Engineer",
    "QA Manager",
    "Reliability Engineer",
    "Product Line Manager",
    "Product Manager, Cobots",
    "Program Manager",
    "CTO",
    "Founder & CEO",
    "General Manager",
    "PhD Student",
    "Engineering Intern",
    "Marketing Coordinator",
    "Consultant",
    "Wizard of Light Bulb Moments",
    "Analyst",
    None,
]
PERSONAL = ["gmail.com", "outlook.com", "yahoo.com", "qq.com", "web.de"]

# (kind, weight, url/form/campaign choices) — most point at catalog assets, some at nothing known.
PAGES = [
    "/applications/automotive/bms",
    "/applications/automotive/48v",
    "/applications/automotive/infotainment",
    "/applications/motor-control/servo",
    "/applications/industrial/robotics",
    "/products/pmic-77",
    "/products/gd-40",
    "/products/ldo-series",
    "/docs/ds/pmic-77.pdf",
    "/docs/ds/gd-40.pdf",
    "/docs/an/an-112.pdf",
    "/docs/an/an-230.pdf",
    "/pricing/pmic-77",
    "/availability/gd-40",
    "/blog/why-sic-now",
    "/careers/open-positions",
    "/about",
    "/reference-designs/rd-4812",
]
DOWNLOADS = [
    "/docs/ds/pmic-77.pdf",
    "/docs/ds/gd-40.pdf",
    "/docs/an/an-112.pdf",
    "/docs/an/an-230.pdf",
    "/reference-designs/rd-4812",
    "/reference-designs/rd-sic3",
    "/docs/brochure-2026.pdf",
]
WEBINARS = [
    "ASIL-D power for ADAS domain controllers",
    "SiC gate-drive design pitfalls",
    "Northwind Live: 2027 roadmap webinar",
]
CAMPAIGN_MAIL = [
    "Engineering newsletter October",
    "Engineering newsletter September",
    "GD-40 launch",
    "Q4 availability update",
]
KINDS: list[tuple[str, float, str, list[str]]] = [
    ("page_view", 0.55, "url", PAGES),
    ("email_open", 0.14, "campaign_name", CAMPAIGN_MAIL),
    ("email_click", 0.06, "url", ["/applications/automotive/bms", "/products/gd-40", "/pricing/pmic-77"]),
    ("asset_download", 0.11, "url", DOWNLOADS),
    ("webinar_registered", 0.03, "campaign_name", WEBINARS),
    ("webinar_attended", 0.02, "campaign_name", WEBINARS),
    (
        "trade_show_scan",
        0.015,
        "campaign_name",
        ["electronica 2026", "PCIM Europe 2026", "embedded world 2026"],
    ),
    ("form_fill", 0.02, "form_name", ["AN-112 download", "RD-4812 download", "Press kit request"]),
    ("workshop_attended", 0.005, "campaign_name", ["BMS workshop Munich", "SiC design workshop Tokyo"]),
    ("eval_kit_request", 0.005, "form_name", ["EVK-7710 request", "EVK-GD40 evaluation board request"]),
    ("sample_request", 0.005, "form_name", ["PMIC-77 sample request", "GD-40 sample request"]),
    ("demo_request", 0.003, "form_name", ["Demo request"]),
    ("contact_sales", 0.003, "form_name", ["Contact sales", "Request a quote"]),
    ("partner_referral", 0.002, "campaign_name", ["Distributor referral: Arrowpoint"]),
    ("unsubscribe", 0.003, "campaign_name", CAMPAIGN_MAIL),
    ("hard_bounce", 0.001, "campaign_name", CAMPAIGN_MAIL),
    ("sales_call", 0.012, "campaign_name", [""]),
]

_ADAPTERS = {cls: TypeAdapter(list[cls]) for cls in (Account, Person, Activity)}


def _validated(cls: type, rows: list[dict], chunk: int = 100_000) -> list:
    out: list = []
    for start in range(0, len(rows), chunk):
        out.extend(_ADAPTERS[cls].validate_python(rows[start : start + chunk]))
    return out


def generate_accounts(rng: np.random.Generator, n: int, prefix: str = "") -> list[Account]:
    industries = list(INDUSTRIES)
    weights = np.array([14, 6, 6, 10, 8, 10, 6, 8, 16, 16], dtype=float)
    picks = rng.choice(len(industries), size=n, p=weights / weights.sum())
    regions = list(REGIONS)
    rows = []
    for i in range(n):
        industry = industries[picks[i]]
        region = regions[rng.integers(len(regions))]
        rows.append(
            {
                "id": f"{prefix}acc-{i:06d}",
                "name": f"Account {i:06d}",
                "website": f"https://www.{prefix}account{i:06d}.com",
                "industry": industry,
                "application": INDUSTRIES[industry][rng.integers(len(INDUSTRIES[industry]))],
                "device_type": DEVICE_TYPES[rng.integers(len(DEVICE_TYPES))],
                "process": PROCESSES[rng.integers(len(PROCESSES))],
                "package": PACKAGES[rng.integers(len(PACKAGES))],
                "region": region,
                "country": REGIONS[region][rng.integers(len(REGIONS[region]))],
                "employees": int(rng.lognormal(6.0, 1.6)),
                "customer_type": ["prospect", "prospect", "prospect", "customer", "partner", "competitor"][
                    rng.integers(6)
                ]
                if rng.random() < 0.5
                else "prospect",
            }
        )
    return _validated(Account, rows)


def generate_people(
    rng: np.random.Generator, n: int, accounts: list[Account], prefix: str = ""
) -> list[Person]:
    account_of = rng.integers(len(accounts), size=n) if accounts else np.zeros(n, dtype=np.int64)
    rows = []
    for i in range(n):
        has_account = bool(accounts) and rng.random() < 0.9
        account = accounts[account_of[i]] if has_account else None
        domain = account.domain if account else f"lead{i % 997}.example.com"
        if rng.random() < 0.06:
            domain = PERSONAL[rng.integers(len(PERSONAL))]
        rows.append(
            {
                "id": f"{prefix}p-{i:07d}",
                "email": f"{prefix}person{i}@{domain}",
                "first_name": "Pat",
                "last_name": f"Person{i}",
                "title": TITLES[rng.integers(len(TITLES))],
                "country": account.country if account else "Germany",
                "account_id": account.id if account else None,
                "unsubscribed": bool(rng.random() < 0.02),
                "bounced": bool(rng.random() < 0.01),
                "partner_owned": bool(rng.random() < 0.01),
            }
        )
    return _validated(Person, rows)


def generate_activities(
    rng: np.random.Generator, n: int, people: list[Person], now: datetime = REFERENCE_TIME, prefix: str = ""
) -> list[Activity]:
    # A few heavy researchers and a long tail: person index drawn from a Zipf-like distribution.
    weights = 1.0 / np.arange(1, len(people) + 1) ** 0.6
    owner = rng.choice(len(people), size=n, p=weights / weights.sum())
    owner = rng.permutation(len(people))[owner]
    kind_weights = np.array([k[1] for k in KINDS])
    kinds = rng.choice(len(KINDS), size=n, p=kind_weights / kind_weights.sum())
    seconds_ago = (rng.exponential(60 * 86400, size=n) + rng.random(size=n) * 3600).astype(np.int64)
    choice = rng.integers(1 << 30, size=n)
    tracked = rng.random(size=n) < 0.05
    durations = rng.exponential(90, size=n)
    out: list[Activity] = []
    chunk = 100_000
    for start in range(0, n, chunk):
        rows = []
        for i in range(start, min(n, start + chunk)):
            kind, _, field, values = KINDS[kinds[i]]
            value = values[choice[i] % len(values)] or None
            row = {
                "id": f"{prefix}act-{i:08d}",
                "person_id": people[owner[i]].id,
                "kind": kind,
                "occurred_at": now - timedelta(seconds=int(seconds_ago[i])),
            }
            if field == "url" and value:
                value = SITE + value + (f"?utm_source=mail&utm_id={choice[i] % 5000}" if tracked[i] else "")
                if kind == "page_view":
                    row["duration_seconds"] = float(round(durations[i], 1))
            if value:
                row[field] = value
            rows.append(row)
        out.extend(_ADAPTERS[Activity].validate_python(rows))
    return out


def generate(
    people: int, accounts: int, activities: int, seed: int = 7, now: datetime = REFERENCE_TIME,
    prefix: str = "",
) -> Dataset:
    """A seeded dataset: the same arguments always give the same records. `prefix` starts every id
    (and domain and email), so that datasets generated apart can be scored as one world."""
    rng = np.random.default_rng(seed)
    account_records = generate_accounts(rng, accounts, prefix)
    people_records = generate_people(rng, people, account_records, prefix)
    activity_records = generate_activities(rng, activities, people_records, now, prefix)
    return Dataset(accounts=account_records, people=people_records, activities=activity_records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--activities", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True, help="dataset JSON file to write")
    args = parser.parse_args()
    started = time.perf_counter()
    dataset = generate(args.people, args.accounts, args.activities, args.seed)
    data = {"generated_at": REFERENCE_TIME.isoformat(), **dataset_to_dict(dataset)}
    args.out.write_text(json.dumps(data), encoding="utf-8")
    print(
        f"wrote {args.out}: {len(dataset.people)} people, {len(dataset.accounts)} accounts, "
        f"{len(dataset.activities)} activities in {time.perf_counter() - started:.1f} s"
    )


if __name__ == "__main__":
    main()
