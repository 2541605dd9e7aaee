"""The neutral generated world that fills both sandbox CRMs, and its deterministic generator.

Plain stdlib dataclasses, independent of either CRM's wire format: each backend renders its own share
(`in_salesforce`, `salesforce_kind`, `in_hubspot`, an event's `channel`) in its native objects. All
timestamps are timezone-aware UTC. `generate_world(size, seed, now)` is deterministic for a seed: the
same draws, placed relative to `now`.

The world: a semiconductor vendor (Voltaris) selling power, motor-control and sensing parts to
accounts in seven segments (automotive power, industrial motor control, IoT/wearables, data center
power, medical, factory automation, renewables/energy) across NA, EMEA and APAC, plus accounts
clearly outside the profile (retail, consulting, universities), competitors, partners and
distributors. The sales team is a fixed roster (`ROSTER`, the same for every seed and size, so a
playbook can name its reps): fifteen reps in NA, EMEA and APAC, each covering a group of segments
in their region or, for inside sales, all of them; two have left the company (inactive) but still
own some of their old accounts.

Problems planted on purpose (what data-quality rules and robust scoring must cope with):
- messy titles ("Sr. HW Eng.", "Principal Engineer – Power", "Buyer II") and odd ones no taxonomy
  knows ("Chief Electron Herder", "n/a"); missing titles, countries, first names, company links;
- personal email domains (gmail.com, qq.com…), competitor domains, students at universities;
- unsubscribes and hard bounces (with their events), partner-owned people;
- duplicates: about 1% of people share an email with another record, about 1% of accounts share
  a domain with another account (a subsidiary entered twice); about 0.5% invalid emails
  ("jane.doe@", "mark at company.com") from size small up (the tiny world, for quick functional
  tests, has none, so that every record it holds loads);
- the same person in both CRMs (a Salesforce Lead or Contact and a HubSpot contact, same email);
  companies in both are matched by domain;
- noise intent: some students and poor-fit people request evaluation kits too;
- link scanners: at about 12% of companies a mail gateway opens each marketing email a corporate
  recipient gets and clicks every link of it, 2–20 s apart, on delivery (`_link_scanners`).

The hidden propensity (never stored in the world): each person has a fit in [0, 1], the product of
segment (data center and automotive power highest, out-of-profile near zero), role (design
engineers and engineering managers highest, procurement and product managers next, students and
unrelated roles near zero), region (NA > EMEA > APAC, mildly) and company size (mid-size and large
best), halved for personal email domains and zero at competitors. A person becomes an evaluator
with probability 0.04 + 0.36·fit; an evaluator's deep requests (reference designs, evaluation kits,
samples, contact sales, demo requests) cluster in the six weeks after an evaluation start. An
opportunity follows 20–60 days after that start with probability 0.08 + 0.75·fit·depth (depth =
deep requests / 3, capped at 1); it is won with probability 0.15 + 0.65·fit once closed (60–200
days after creation, if that is already past). Leads that reach an opportunity are converted.
So fit, and recent evaluation-stage intent above all, carry real signal about outcomes; broad
webinars and page views carry little.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal

CustomerType = Literal["prospect", "customer", "partner", "distributor", "competitor"]
Channel = Literal["salesforce", "hubspot"]
EventKind = Literal[
    "page_view", "form_fill", "asset_download", "eval_kit_request", "sample_request", "demo_request",
    "contact_sales", "webinar_registered", "webinar_attended", "trade_show_scan", "workshop_attended",
    "partner_referral", "email_open", "email_click", "unsubscribe", "hard_bounce", "sales_call",
    "sales_email", "meeting",
]
SIZES: dict[str, int] = {"tiny": 50, "small": 2_000, "medium": 20_000, "large": 100_000}


@dataclass(slots=True)
class Rep:
    """A sales rep (a Salesforce User, a HubSpot owner) with a territory: a region and the segments
    covered there (none: inside sales, every segment of the region)."""

    key: str
    email: str
    first_name: str
    last_name: str
    time_zone: str  # IANA name, e.g. America/Chicago
    region: str  # NA | EMEA | APAC
    active: bool
    segments: tuple[str, ...] = ()


@dataclass(slots=True)
class Company:
    key: str
    name: str
    domain: str | None
    website: str | None
    industry: str | None
    segment: str | None
    application: str | None
    device_type: str | None
    process: str | None
    region: str | None
    country: str | None
    employees: int | None
    annual_revenue: float | None
    customer_type: CustomerType
    owner_rep: str | None  # Rep.key
    in_salesforce: bool
    in_hubspot: bool
    created_at: datetime
    modified_at: datetime


@dataclass(slots=True)
class Human:
    """One person. With `salesforce_kind` set and `in_hubspot` true, the same person is in both CRMs
    (same email)."""

    key: str
    email: str | None
    first_name: str | None
    last_name: str | None
    title: str | None
    department: str | None
    country: str | None
    company_key: str | None
    salesforce_kind: Literal["lead", "contact"] | None
    in_hubspot: bool
    lead_source: str | None
    lead_status: str | None  # Salesforce Lead Status, e.g. Open - Not Contacted
    lifecycle_stage: str | None  # HubSpot lifecyclestage, e.g. marketingqualifiedlead
    owner_rep: str | None  # Rep.key
    unsubscribed: bool
    bounced: bool
    partner_owned: bool
    converted: bool  # a Lead later converted to a Contact (salesforce_kind is then "contact")
    created_at: datetime
    modified_at: datetime


@dataclass(slots=True)
class Campaign:
    key: str
    name: str
    type: Literal["webinar", "trade_show", "workshop", "partner_referral", "email"]
    topic: str
    breadth: Literal["narrow", "broad"]
    start_date: date


@dataclass(slots=True)
class Asset:
    key: str
    name: str
    type: Literal["datasheet", "application_note", "reference_design", "evaluation_kit", "sample",
                  "webinar", "workshop", "trade_show"]
    url: str
    form_name: str | None
    product_family: str
    segment: str | None
    stage: Literal["learn", "evaluate", "validate", "buy"]


@dataclass(slots=True)
class Event:
    key: str
    human_key: str
    kind: EventKind
    occurred_at: datetime
    url: str | None
    form_name: str | None
    campaign_key: str | None
    asset_key: str | None
    duration_seconds: float | None
    channel: Channel  # which CRM records it


@dataclass(slots=True)
class Deal:
    key: str
    company_key: str
    name: str
    stage: str  # Salesforce-style stage name, e.g. Qualification, Closed Won
    amount: float | None
    close_date: date
    created_at: datetime
    is_closed: bool
    is_won: bool
    owner_rep: str | None
    contact_keys: tuple[str, ...]
    channel: Channel


@dataclass(slots=True)
class World:
    seed: int
    size: str
    generated_at: datetime
    reps: list[Rep] = field(default_factory=list)
    companies: list[Company] = field(default_factory=list)
    humans: list[Human] = field(default_factory=list)
    campaigns: list[Campaign] = field(default_factory=list)
    assets: list[Asset] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)


def generate_world(size: str, seed: int, now: datetime | None = None) -> World:
    """A deterministic world of `size` (tiny|small|medium|large) for `seed`, placed relative to `now`
    (default: the current time)."""
    return generate(size, seed, now)


# ---------------------------------------------------------------------------------------------------
# The generator
# ---------------------------------------------------------------------------------------------------

VENDOR_SITE = "https://www.voltaris-semi.com"
MONTHS_OF_ACTIVITY = 18
_DAY = 86_400.0
_SPAN = MONTHS_OF_ACTIVITY * 30.4 * _DAY

REGIONS: dict[str, tuple[tuple[str, str], ...]] = {  # region: (country, email/web TLD)
    "NA": (("US", "com"), ("US", "com"), ("US", "com"), ("CA", "ca"), ("MX", "com.mx")),
    "EMEA": (("DE", "de"), ("DE", "de"), ("FR", "fr"), ("GB", "co.uk"), ("IT", "it"), ("SE", "se"),
             ("NL", "nl"), ("CH", "ch"), ("IL", "co.il")),
    "APAC": (("JP", "co.jp"), ("CN", "cn"), ("CN", "com.cn"), ("KR", "co.kr"), ("TW", "com.tw"),
             ("IN", "in"), ("SG", "sg")),
}
REGION_WEIGHTS = {"NA": 0.42, "EMEA": 0.33, "APAC": 0.25}
REGION_FIT = {"NA": 1.0, "EMEA": 0.9, "APAC": 0.8}

# segment: (weight among accounts, fit, industry, applications, device types, processes)
SEGMENTS: dict[str, tuple[float, float, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "automotive power": (0.17, 1.0, "Automotive",
                         ("EV traction inverter", "onboard charger", "DC-DC converter", "battery management"),
                         ("SiC MOSFET", "gate driver", "current sensor"), ("SiC", "BCD 180nm")),
    "industrial motor control": (0.16, 0.9, "Industrial Machinery",
                                 ("servo drive", "variable frequency drive", "BLDC motor controller"),
                                 ("IGBT module", "gate driver", "motor-control MCU"),
                                 ("Si IGBT", "40nm CMOS")),
    "data center power": (0.12, 1.0, "Data Center / Cloud",
                          ("server PSU", "48V bus converter", "AI accelerator VRM"),
                          ("GaN FET", "multiphase controller", "PMIC"), ("GaN", "BCD 130nm")),
    "renewables/energy": (0.11, 0.8, "Energy",
                          ("solar string inverter", "energy storage system", "EV fast charger"),
                          ("SiC MOSFET", "IGBT module", "isolated gate driver"), ("SiC", "Si IGBT")),
    "factory automation": (0.12, 0.7, "Industrial Automation",
                           ("PLC I/O module", "robot joint drive", "machine vision"),
                           ("isolated gate driver", "motor-control MCU", "current sensor"),
                           ("40nm CMOS", "BCD 180nm")),
    "medical": (0.08, 0.6, "Medical Devices",
                ("patient monitor", "portable ultrasound", "infusion pump"),
                ("PMIC", "low-power MCU", "current sensor"), ("40nm CMOS", "BCD 180nm")),
    "IoT/wearables": (0.10, 0.5, "Consumer Electronics",
                      ("wearable fitness tracker", "smart meter", "wireless earbuds"),
                      ("PMIC", "low-power MCU"), ("22nm CMOS", "40nm CMOS")),
}
OUTSIDE_PROFILE: dict[str, tuple[float, str]] = {  # industry: (weight among accounts, fit)
    "Retail": (0.05, 0.05), "Management Consulting": (0.04, 0.08), "Higher Education": (0.05, 0.02),
}
PRODUCT_FAMILIES: dict[str, tuple[str, tuple[str, ...]]] = {  # family: (url slug, segments)
    "VoltEdge SiC MOSFETs": ("voltedge-sic", ("automotive power", "renewables/energy")),
    "GaNPulse FETs": ("ganpulse-gan", ("data center power", "IoT/wearables")),
    "DriveCore gate drivers": ("drivecore-gate-drivers", ("industrial motor control", "automotive power",
                                                            "renewables/energy")),
    "MotionMCU": ("motion-mcu", ("industrial motor control", "factory automation")),
    "PowerSense current sensors": ("powersense", ("factory automation", "automotive power", "medical")),
    "NanoPMIC": ("nano-pmic", ("IoT/wearables", "medical")),
}
# The sales team. Segment groups: mobility and energy, industrial, compute and devices; no segments
# means inside sales for the whole region. Two reps have left (inactive) and still own old accounts.
_MOBILITY = ("automotive power", "renewables/energy")
_INDUSTRIAL = ("industrial motor control", "factory automation")
_COMPUTE = ("data center power", "IoT/wearables", "medical")
ROSTER: tuple[tuple[str, str, str, str, bool, tuple[str, ...]], ...] = (
    # first name, last name, time zone, region, active, segments
    ("Rachel", "Kim", "America/Los_Angeles", "NA", True, _MOBILITY),
    ("Emily", "Hart", "America/Toronto", "NA", True, _MOBILITY),
    ("Marcus", "Webb", "America/Chicago", "NA", True, _INDUSTRIAL),
    ("Greg", "Olsen", "America/Chicago", "NA", False, _INDUSTRIAL),
    ("Daniel", "Ortiz", "America/New_York", "NA", True, _COMPUTE),
    ("Jordan", "Reyes", "America/New_York", "NA", True, ()),
    ("Katrin", "Vogel", "Europe/Berlin", "EMEA", True, _MOBILITY),
    ("Luca", "Bianchi", "Europe/Rome", "EMEA", True, _INDUSTRIAL),
    ("Anders", "Lund", "Europe/Stockholm", "EMEA", False, _INDUSTRIAL),
    ("Sophie", "Martin", "Europe/Paris", "EMEA", True, _COMPUTE),
    ("Oliver", "Bennett", "Europe/London", "EMEA", True, ()),
    ("Kenji", "Watanabe", "Asia/Tokyo", "APAC", True, _MOBILITY),
    ("Lina", "Zhou", "Asia/Shanghai", "APAC", True, _INDUSTRIAL),
    ("Priya", "Raman", "Asia/Singapore", "APAC", True, _COMPUTE),
    ("Minseo", "Park", "Asia/Seoul", "APAC", True, ()),
)
COMPETITORS = ("Helix Power Semiconductor", "Semitron Devices", "Ampera Microsystems", "Northgate Silicon")
PARTNERS = ("Arrowhead Components", "Mouser-Lane Distribution", "DigiParts Asia", "Avantis Design Partners")

FIRST_NAMES = (
    "James", "Maria", "Wei", "Anna", "Hiroshi", "Priya", "Lukas", "Sofia", "Chen", "Olivia", "Rahul",
    "Emma", "Kenji", "Laura", "Ahmed", "Julia", "Min-jun", "Sarah", "Mateo", "Ingrid", "David", "Yuki",
    "Thomas", "Elena", "Arjun", "Claire", "Jonas", "Mei", "Carlos", "Fatima", "Michael", "Hannah",
    "Tobias", "Aisha", "Daniel", "Sven", "Li", "Rebecca", "Omar", "Nina", "Robert", "Ji-woo", "Pierre",
    "Camille", "Ravi", "Katarina", "Kevin", "Sakura", "Marco", "Lena", "John", "Jennifer", "Alex", "Noa",
)
LAST_NAMES = (
    "Smith", "Müller", "Wang", "Garcia", "Tanaka", "Patel", "Schmidt", "Rossi", "Li", "Johnson", "Kumar",
    "Martin", "Suzuki", "Dubois", "Kim", "Nguyen", "Fischer", "Lopez", "Andersson", "Brown", "Sato",
    "Weber", "Chen", "Novak", "Cohen", "Singh", "Meyer", "Park", "Bernard", "Zhang", "Wilson", "Ito",
    "Becker", "Silva", "Jansen", "Lee", "O'Brien", "Hoffmann", "Yamamoto", "Kowalski", "Taylor", "Liu",
    "Schneider", "Moreau", "Gupta", "Larsen", "Davis", "Huang", "Wagner", "Fernández",
)
NAME_PARTS = (
    ("Kestrel", "Aurora", "Vector", "Nordic", "Pioneer", "Summit", "Quantum", "Titan", "Harbor", "Zenith",
     "Falcon", "Orion", "Cobalt", "Granite", "Meridian", "Atlas", "Sierra", "Polar", "Helios", "Apex",
     "Borealis", "Cascade", "Delta", "Evergreen", "Ferro", "Gemini", "Ironwood", "Juno", "Keystone", "Lumen"),
    ("Drives", "Motion", "Power", "Energy", "Mobility", "Systems", "Robotics", "Medical", "Electric",
     "Automation", "Controls", "Dynamics", "Devices", "Electronics", "Technologies", "Instruments"),
    ("Inc.", "GmbH", "AG", "Ltd", "Corp.", "Co., Ltd.", "SA", "AB", "LLC", "KK", ""),
)
RETAIL_NAMES = ("Fresh", "Value", "Urban", "Home", "Style", "Market", "Corner", "Green")
CONSULTING_NAMES = ("Strategy", "Advisory", "Partners", "Insight", "Growth", "Bridge")
UNIVERSITIES = ("Institute of Technology", "Technical University", "State University", "Polytechnic")
PERSONAL_DOMAINS = ("gmail.com", "gmail.com", "gmail.com", "yahoo.com", "outlook.com", "hotmail.com",
                    "qq.com", "163.com", "web.de", "gmx.de")

# role: (weight among people at in-profile accounts, fit, departments, titles)
ROLES: dict[str, tuple[float, float, tuple[str, ...], tuple[str, ...]]] = {
    "design_engineer": (0.32, 1.0, ("Engineering", "R&D", "Hardware"), (
        "Sr. HW Eng.", "Hardware Engineer", "Principal Engineer – Power", "Power Electronics Engineer",
        "Design Engineer II", "Staff Engineer, Motor Control", "Sr Design Eng", "Electrical Engineer",
        "R&D Engineer", "Systems Architect", "Lead Hardware Design Engineer", "Analog Design Engineer",
        "Power Supply Design Engineer", "Embedded Systems Engineer")),
    "engineering_manager": (0.12, 0.9, ("Engineering", "R&D"), (
        "Engineering Manager", "Director of Engineering", "Dir. HW Engineering", "VP Engineering",
        "Head of Power Electronics", "R&D Manager", "CTO")),
    "product_manager": (0.08, 0.75, ("Product Management", "Marketing"), (
        "Product Manager", "Sr. Product Mgr", "Product Line Manager", "Technical Product Manager")),
    "procurement": (0.13, 0.7, ("Purchasing", "Supply Chain", "Procurement"), (
        "Buyer II", "Purchasing Manager", "Commodity Manager – Semiconductors", "Strategic Sourcing Lead",
        "VP Supply Chain", "Procurement Specialist", "Sr. Buyer", "Component Engineer")),
    "quality": (0.07, 0.5, ("Quality",), (
        "Quality Engineer", "Supplier Quality Engineer", "Reliability Engineer", "QA Manager")),
    "executive": (0.05, 0.6, ("Executive", "Management"),
                  ("CEO", "COO", "General Manager", "Managing Director")),
    "unrelated": (0.15, 0.08, ("Marketing", "Sales", "HR", "Finance", "Operations"), (
        "Marketing Coordinator", "Sales Associate", "HR Generalist", "Office Manager", "Accountant",
        "Consultant", "Intern")),
    "odd": (0.08, 0.35, ("", "Other"), (
        "Chief Electron Herder", "Ninja of Circuits", "n/a", "-", "???", "Tinkerer", "Self", "Wizard",
        "Tech Lead (acting)", "Engr")),
}
STUDENT_TITLES = ("Student", "PhD Candidate", "Graduate Student", "Research Assistant", "Professor")

LEAD_SOURCES = ("Web", "Web", "Webinar", "Trade Show", "Partner Referral", "Purchased List", "Other")
OPEN_STAGES = ("Qualification", "Needs Analysis", "Proposal/Price Quote", "Negotiation/Review")
LOW_INTENT_PAGES = ("/careers", "/about", "/blog/company-news", "/investors", "/contact", "/")
_DEEP_KINDS = ("eval_kit_request", "sample_request", "contact_sales", "demo_request")


class _Draw:
    """A seeded random source with the few draws the generator needs, bound for speed."""

    def __init__(self, seed: int) -> None:
        import random

        self.rng = random.Random(seed)
        self.random = rnd = self.rng.random
        # indexing by random() is several times faster than Random.choice, and as deterministic
        self.choice: Callable[[Sequence[Any]], Any] = lambda seq: seq[int(rnd() * len(seq))]
        self.randint = self.rng.randint
        self.uniform = self.rng.uniform
        self.lognorm = self.rng.lognormvariate

    def weighted(self, options: dict[str, float]) -> str:
        return self.rng.choices(tuple(options), weights=tuple(options.values()))[0]


@functools.lru_cache(maxsize=4096)
def _slug(text: str) -> str:
    """ASCII letters and digits only: `Müller-Lane` → `mullerlane`."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _size_fit(employees: int | None) -> float:
    if employees is None:
        return 0.6
    if employees < 50:
        return 0.35
    if employees < 500:
        return 0.8
    if employees <= 10_000:
        return 1.0
    return 0.9


def roster() -> list[Rep]:
    """The sales team: a fresh copy of the fixed roster (the world's records are mutable)."""
    return [Rep(f"rep-{i + 1:03d}", f"{first.lower()}.{last.lower()}@voltaris-semi.com", first, last, zone,
                region, active, segments)
            for i, (first, last, zone, region, active, segments) in enumerate(ROSTER)]


def _company_identity(draw: _Draw, index: int, kind: str, region: str, tld: str
                      ) -> tuple[str, str, str, str, float]:
    """(name, stem for the domain, tld, customer type, segment/industry fit) of the index-th company."""
    special = [*((n, "competitor") for n in COMPETITORS), *((n, "partner") for n in PARTNERS[:2]),
               *((n, "distributor") for n in PARTNERS[2:])]
    if index < len(special):
        name, customer_type = special[index]
        return name, name, tld, customer_type, 0.3 if customer_type == "partner" else 0.0
    if kind in SEGMENTS:
        stem = f"{draw.choice(NAME_PARTS[0])} {draw.choice(NAME_PARTS[1])}"
        name = f"{stem} {draw.choice(NAME_PARTS[2])}".strip()
        return name, stem, tld, "customer" if draw.random() < 0.12 else "prospect", SEGMENTS[kind][1]
    fit = OUTSIDE_PROFILE[kind][1]
    if kind == "Retail":
        name = f"{draw.choice(RETAIL_NAMES)} {draw.choice(('Mart', 'Goods', 'Outlet', 'Stores'))}"
    elif kind == "Management Consulting":
        name = f"{draw.choice(NAME_PARTS[0])} {draw.choice(CONSULTING_NAMES)}"
    else:
        name = f"{draw.choice(NAME_PARTS[0])} {draw.choice(UNIVERSITIES)}"
        tld = "edu" if region == "NA" else "ac.uk" if tld == "co.uk" else tld
    return name, name, tld, "prospect", fit


def _companies(draw: _Draw, n: int, reps: list[Rep], now: datetime, fits: dict[str, float]
               ) -> list[Company]:
    # Account owners: the region's reps for the account's segment (inactive ones included: their
    # accounts wait for reassignment), else the region's inside sales.
    owners: dict[tuple[str, str | None], list[Rep]] = {}
    for rep in reps:
        for segment in rep.segments or (None,):
            owners.setdefault((rep.region, segment), []).append(rep)
    kind_weights = {name: spec[0] for name, spec in SEGMENTS.items()}
    kind_weights |= {name: spec[0] for name, spec in OUTSIDE_PROFILE.items()}
    companies: list[Company] = []
    used_domains: set[str] = set()
    for i in range(n):
        region = draw.weighted(REGION_WEIGHTS)
        country, tld = draw.choice(REGIONS[region])
        kind = draw.weighted(kind_weights)
        name, stem, tld, customer_type, fit = _company_identity(draw, i, kind, region, tld)
        segment = application = device_type = process = None
        industry = {"competitor": "Semiconductors", "partner": "Electronics Distribution",
                    "distributor": "Electronics Distribution"}.get(customer_type)
        if industry is None and kind in SEGMENTS:
            _, _, industry, applications, devices, processes = SEGMENTS[kind]
            segment, application = kind, draw.choice(applications)
            device_type, process = draw.choice(devices), draw.choice(processes)
        elif industry is None:
            industry = kind
        domain = base = f"{_slug(stem)}.{tld}"
        suffix = 2
        while domain in used_domains:
            domain = base.replace(".", f"{suffix}.", 1)
            suffix += 1
        used_domains.add(domain)
        if companies and draw.random() < 0.01:  # a subsidiary entered twice: same domain, another name
            twin = draw.choice(companies)
            if twin.domain:
                region_word = draw.choice(("Europe", "Americas", "Asia", "Holding"))
                domain, name = twin.domain, f"{twin.name.split(' ')[0]} {region_word}"
        employees = None if draw.random() < 0.08 else int(min(200_000, max(3, draw.lognorm(5.5, 1.6))))
        revenue = None
        if employees is not None and draw.random() < 0.75:
            revenue = round(employees * draw.uniform(1.2e5, 4e5), -3)
        website = None if draw.random() < 0.05 else f"https://www.{domain}"
        in_sf = draw.random() < 0.85
        in_hs = (not in_sf) or draw.random() < 0.8
        created = now - timedelta(seconds=draw.uniform(0.1, 3.0) * _SPAN)
        modified = created + (now - created) * draw.random()
        key = f"co-{i + 1:05d}"
        companies.append(Company(
            key, name, domain, website, industry, segment, application, device_type, process, region,
            None if draw.random() < 0.04 else country, employees, revenue,
            customer_type,  # type: ignore[arg-type]
            draw.choice(owners.get((region, segment)) or owners[(region, None)]).key, in_sf, in_hs, created,
            modified,
        ))
        fits[key] = fit * REGION_FIT[region] * _size_fit(employees)
    return companies


def _campaigns_and_assets(draw: _Draw, n_campaigns: int, now: datetime
                          ) -> tuple[list[Campaign], list[Asset]]:
    topics = {
        "narrow": ("SiC MOSFET gate drive for 800 V traction inverters", "GaN in 48 V server power stages",
                   "Field-oriented control on MotionMCU", "Isolated current sensing for servo drives",
                   "Low-Iq PMIC design for wearables", "Bidirectional SiC for energy storage"),
        "broad": ("Power electronics trends", "Electrification 101", "Voltaris product update",
                  "Sustainability in semiconductors", "Industry 4.0 outlook"),
    }
    shows = ("electronica", "APEC", "PCIM Europe", "embedded world", "SPS", "Sensors Converge")
    campaigns: list[Campaign] = []
    kinds = ("webinar", "webinar", "webinar", "trade_show", "workshop", "partner_referral", "email")
    for i in range(n_campaigns):
        kind = kinds[i % len(kinds)]
        start = (now - timedelta(seconds=draw.uniform(0.0, 1.0) * _SPAN)).date()
        if kind == "webinar":
            breadth = "narrow" if draw.random() < 0.55 else "broad"
            topic = draw.choice(topics[breadth])
            name = f"Webinar: {topic} ({start:%b %Y})"
        elif kind == "trade_show":
            breadth, topic = "broad", draw.choice(shows)
            name = f"{topic} {start:%Y} booth"
        elif kind == "workshop":
            breadth, topic = "narrow", draw.choice(topics["narrow"])
            name = f"Hands-on workshop: {topic}"
        elif kind == "partner_referral":
            breadth, topic = "narrow", draw.choice(PARTNERS)
            name = f"Partner referrals – {topic} ({start:%Y})"
        else:
            breadth, topic = "broad", "newsletter"
            name = f"Voltaris newsletter {start:%B %Y}"
        campaigns.append(Campaign(f"cmp-{i + 1:03d}", name, kind, topic, breadth, start))  # type: ignore[arg-type]

    assets: list[Asset] = []
    for family, (slug, segments) in PRODUCT_FAMILIES.items():
        seg = segments[0]
        for type_, stage, form, title in (
            ("datasheet", "learn", None, f"{family} datasheet"),
            ("application_note", "learn", "App note download", f"{family}: application note"),
            ("reference_design", "evaluate", "Reference design download", f"{family} reference design"),
            ("evaluation_kit", "evaluate", "Evaluation kit request", f"{family} evaluation kit"),
            ("sample", "validate", "Sample request", f"{family} engineering samples"),
            ("sample", "buy", "Request a quote", f"{family} volume pricing"),
        ):
            n = len(assets) + 1
            assets.append(Asset(f"as-{n:03d}", title, type_, f"{VENDOR_SITE}/products/{slug}/{type_.replace('_', '-')}",  # type: ignore[arg-type]  # noqa: E501
                                form, family, seg, stage))  # type: ignore[arg-type]
    for campaign in campaigns:
        if campaign.type in ("webinar", "workshop", "trade_show"):
            n = len(assets) + 1
            assets.append(Asset(f"as-{n:03d}", campaign.name, campaign.type,
                                f"{VENDOR_SITE}/events/{campaign.key}",
                                "Webinar registration" if campaign.type == "webinar" else None,
                                "Voltaris portfolio", None, "learn"))
    return campaigns, assets


class _WorldBuilder:
    """Builds people, their events and the outcomes; one instance per generation."""

    def __init__(self, draw: _Draw, now: datetime, world: World, company_fit: dict[str, float]) -> None:
        self.draw = draw
        self.now = now
        self.world = world
        self.company_fit = company_fit
        self.companies_by_kind: dict[str, list[Company]] = {}
        for company in world.companies:
            bucket = "competitor" if company.customer_type == "competitor" else (
                "university" if company.industry == "Higher Education" else "other")
            self.companies_by_kind.setdefault(bucket, []).append(company)
        self.fit_companies = [c for c in world.companies if c.customer_type != "competitor"]
        self.company_by_key = {c.key: c for c in world.companies}
        self.reps_by_region: dict[str, list[Rep]] = {}
        for rep in world.reps:
            if rep.active:
                self.reps_by_region.setdefault(rep.region, []).append(rep)
        self.webinars = [c for c in world.campaigns if c.type == "webinar"]
        self.shows = [c for c in world.campaigns if c.type == "trade_show"]
        self.workshops = [c for c in world.campaigns if c.type == "workshop"]
        self.referrals = [c for c in world.campaigns if c.type == "partner_referral"]
        self.emails = [c for c in world.campaigns if c.type == "email"]
        self.assets_by_stage: dict[str, list[Asset]] = {}
        for asset in world.assets:
            if asset.product_family != "Voltaris portfolio":
                self.assets_by_stage.setdefault(asset.stage, []).append(asset)
        self.product_pages = [f"{VENDOR_SITE}/products/{slug}" for slug, _ in PRODUCT_FAMILIES.values()]
        self.app_pages = [f"{VENDOR_SITE}/applications/{_slug(seg)}" for seg in SEGMENTS]
        self.low_pages = [f"{VENDOR_SITE}{p}" for p in LOW_INTENT_PAGES]
        self.role_weights = {role: spec[0] for role, spec in ROLES.items()}
        self.used_emails: list[str] = []
        self.n_events = 0
        self.latest = now
        self.plant_invalid_emails = world.size != "tiny"

    # -- people ----------------------------------------------------------------------------------

    def person(self, index: int) -> tuple[Human, float]:
        draw = self.draw
        key = f"p-{index + 1:06d}"
        r = draw.random()
        company: Company | None
        if r < 0.04:
            role = "student"
            company = draw.choice(self.companies_by_kind.get("university") or self.fit_companies)
        elif r < 0.06 and self.companies_by_kind.get("competitor"):
            role = draw.weighted(self.role_weights)
            company = draw.choice(self.companies_by_kind["competitor"])
        elif r < 0.11:
            company, role = None, draw.weighted(self.role_weights)  # an individual with no company link
        else:
            company, role = draw.choice(self.fit_companies), draw.weighted(self.role_weights)
        first: str | None = draw.choice(FIRST_NAMES)
        last = draw.choice(LAST_NAMES)
        if role == "student":
            title, department, role_fit = draw.choice(STUDENT_TITLES), "Academia", 0.0
        else:
            _, role_fit, departments, titles = ROLES[role]
            title, department = draw.choice(titles), draw.choice(departments) or None
        if draw.random() < 0.07:
            title = None
        local = draw.choice((f"{_slug(first)}.{_slug(last)}", f"{_slug(first)[0]}{_slug(last)}",
                             f"{_slug(first)}{_slug(last)[:1]}"))
        personal = company is None or draw.random() < 0.06
        domain = draw.choice(PERSONAL_DOMAINS) if personal or not company.domain else company.domain
        email: str | None = f"{local}{draw.randint(1, 99) if personal else ''}@{domain}"
        if draw.random() < 0.005 and self.plant_invalid_emails:  # planted invalid addresses
            email = draw.choice((f"{local}@", f"{local} at {domain}", f"{local}@{domain.split('.')[0]}",
                                 f"{local}@@{domain}"))
        elif self.used_emails and draw.random() < 0.01:  # planted duplicate: same email, another record
            email = draw.choice(self.used_emails)
        elif draw.random() < 0.02:
            email = None
        if email and draw.random() < 0.2:
            self.used_emails.append(email)
        if draw.random() < 0.02:
            first = None
        region = company.region if company and company.region else draw.weighted(REGION_WEIGHTS)
        country = company.country if company else draw.choice(REGIONS[region])[0]
        if draw.random() < 0.05:
            country = None

        fit = role_fit * (self.company_fit[company.key] if company else 0.5 * REGION_FIT[region] * 0.8)
        if personal:
            fit *= 0.5
        if company and company.customer_type == "competitor":
            fit = 0.0

        in_both = draw.random()
        can_be_contact = company is not None and company.in_salesforce
        if in_both < 0.5:
            sf_kind: str | None = "contact" if can_be_contact and draw.random() < 0.55 else "lead"
            in_hubspot = True
        elif in_both < 0.78:
            sf_kind, in_hubspot = ("contact" if can_be_contact and draw.random() < 0.5 else "lead"), False
        else:
            sf_kind, in_hubspot = None, True
        owner_pool = self.reps_by_region.get(region) or self.world.reps
        owner = company.owner_rep if company and draw.random() < 0.85 else draw.choice(owner_pool).key
        created = self.now - timedelta(seconds=draw.uniform(0.05, 1.4) * _SPAN)
        human = Human(
            key=key, email=email, first_name=first, last_name=last, title=title, department=department,
            country=country, company_key=company.key if company else None,
            salesforce_kind=sf_kind,  # type: ignore[arg-type]
            in_hubspot=in_hubspot, lead_source=None if draw.random() < 0.1 else draw.choice(LEAD_SOURCES),
            lead_status="Open - Not Contacted" if sf_kind == "lead" else None,
            lifecycle_stage="lead" if in_hubspot else None, owner_rep=owner,
            unsubscribed=draw.random() < 0.04, bounced=email is not None and draw.random() < 0.02,
            partner_owned=draw.random() < 0.03, converted=False, created_at=created, modified_at=created,
        )
        return human, fit

    # -- events ----------------------------------------------------------------------------------

    def add_event(self, human: Human, kind: str, at: datetime, channel: str, url: str | None = None,
                  form: str | None = None, campaign: str | None = None, asset: str | None = None,
                  duration: float | None = None) -> None:
        self.n_events += 1
        if at > self.latest:
            self.latest = at
        self.world.events.append(Event(f"ev-{self.n_events:07d}", human.key, kind, at, url, form,  # type: ignore[arg-type]
                                       campaign, asset, duration, channel))  # type: ignore[arg-type]

    def activity(self, human: Human, fit: float, scale: float) -> tuple[float | None, int]:
        """Generate a person's events; returns (evaluation start as seconds before now, deep requests)."""
        draw, now = self.draw, self.now
        age = min((now - human.created_at).total_seconds(), _SPAN)  # 18 months of activity at most
        web = "hubspot" if human.in_hubspot else None
        marketing = "hubspot" if human.in_hubspot else "salesforce"
        campaign_channel = "salesforce" if human.salesforce_kind else "hubspot"
        add = self.add_event

        now_ts = now.timestamp()
        fromtimestamp = datetime.fromtimestamp

        def at(seconds: float) -> datetime:
            return fromtimestamp(now_ts - seconds, UTC)


        # background engagement: page views and marketing email, weakly related to fit
        n_views = int(draw.lognorm(1.2, 0.9) * scale * (0.6 + fit)) if web else 0
        for _ in range(n_views):
            when = draw.random() * age
            r = draw.random()
            pages = self.product_pages if r < 0.45 else self.app_pages if r < 0.75 else self.low_pages
            url = draw.choice(pages)
            add(human, "page_view", at(seconds=when), web, url=url, duration=round(draw.uniform(3, 400), 1))
        if human.in_hubspot and self.emails and human.email:
            for _ in range(int(draw.lognorm(0.8, 0.8) * scale)):
                campaign = draw.choice(self.emails)
                when = draw.random() * age
                add(human, "email_open", at(seconds=when), "hubspot", campaign=campaign.key)
                if draw.random() < 0.25:
                    add(human, "email_click", at(seconds=when - 60), "hubspot", campaign=campaign.key,
                        url=draw.choice(self.product_pages))
        if draw.random() < 0.25 * scale:
            asset = draw.choice(self.assets_by_stage["learn"])
            add(human, "asset_download", at(seconds=draw.random() * age), marketing, url=asset.url,
                form=asset.form_name, asset=asset.key)
        if draw.random() < 0.1:
            add(human, "form_fill", at(seconds=draw.random() * age), marketing,
                url=f"{VENDOR_SITE}/newsletter", form="Newsletter signup")
        if self.webinars and draw.random() < 0.3:
            webinar = draw.choice(self.webinars)
            when = max(60.0, (now.date() - webinar.start_date).days * _DAY)
            if when < age:
                channel = "hubspot" if human.in_hubspot and draw.random() < 0.5 else campaign_channel
                add(human, "webinar_registered", at(seconds=when + 7 * _DAY), channel, campaign=webinar.key,
                    form="Webinar registration")
                if draw.random() < 0.55:
                    add(human, "webinar_attended", at(seconds=when), channel, campaign=webinar.key,
                        duration=round(draw.uniform(300, 3600)))
        if self.shows and draw.random() < 0.12:
            show = draw.choice(self.shows)
            when = max(60.0, (now.date() - show.start_date).days * _DAY)
            add(human, "trade_show_scan", at(seconds=when), campaign_channel, campaign=show.key)
        if human.partner_owned and self.referrals:
            add(human, "partner_referral", at(seconds=draw.random() * age), campaign_channel,
                campaign=draw.choice(self.referrals).key)
        if human.unsubscribed:
            add(human, "unsubscribe", at(seconds=draw.random() * age), marketing)
        if human.bounced:
            add(human, "hard_bounce", at(seconds=draw.random() * age), marketing)

        # evaluation: the intent that carries signal
        deep = 0
        eval_start: float | None = None
        noise_request = draw.random() < 0.03  # students and tyre-kickers ask for kits too
        if draw.random() < 0.04 + 0.36 * fit or noise_request:
            eval_start = draw.random() * min(age, _SPAN)
            if self.workshops and draw.random() < 0.3:
                workshop = draw.choice(self.workshops)
                add(human, "workshop_attended", at(seconds=eval_start), campaign_channel,
                    campaign=workshop.key,
                    duration=round(draw.uniform(3600, 14400)))
            n_deep = 1 if noise_request and fit < 0.2 else 1 + int(draw.random() * 4 * (0.4 + fit))
            for _ in range(n_deep):
                when = max(30.0, eval_start - draw.uniform(0, 42 * _DAY))
                r = draw.random()
                if r < 0.3:
                    asset = draw.choice(self.assets_by_stage["evaluate"])
                    kind = "eval_kit_request" if asset.type == "evaluation_kit" else "asset_download"
                elif r < 0.6:
                    asset = draw.choice(self.assets_by_stage["validate"] + self.assets_by_stage["buy"])
                    kind = "sample_request"
                else:
                    asset = None
                    kind = "contact_sales" if r < 0.85 else "demo_request"
                if asset is not None:
                    add(human, kind, at(seconds=when), marketing, url=asset.url, form=asset.form_name,
                        asset=asset.key)
                else:
                    form = "Contact sales" if kind == "contact_sales" else "Request a demo"
                    add(human, kind, at(seconds=when), marketing, url=f"{VENDOR_SITE}/contact-sales",
                        form=form)
                deep += 1
                for _ in range(draw.randint(1, 4) if web else 0):
                    around = max(10.0, when - draw.uniform(-3 * _DAY, 3 * _DAY))
                    add(human, "page_view", at(seconds=around), web, url=draw.choice(self.product_pages),
                        duration=round(draw.uniform(20, 600), 1))
        return eval_start, deep

    def sales_touch(self, human: Human, start_before_now: float, days: int) -> None:
        draw = self.draw
        channel = "salesforce" if human.salesforce_kind else "hubspot"
        for _ in range(draw.randint(1, 4)):
            when = max(60.0, start_before_now - draw.uniform(1, days) * _DAY)
            kind = draw.choice(("sales_call", "sales_email", "sales_email", "meeting"))
            self.add_event(human, kind, self.now - timedelta(seconds=when), channel,
                           duration=round(draw.uniform(300, 3600)) if kind != "sales_email" else None)


def generate(size: str, seed: int, now: datetime | None = None) -> World:
    if size not in SIZES:
        raise ValueError(f"unknown size {size!r}; expected one of {', '.join(SIZES)}")
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    draw = _Draw(seed)
    n_people = SIZES[size]
    world = World(seed=seed, size=size, generated_at=now)
    world.reps = roster()
    company_fit: dict[str, float] = {}
    world.companies = _companies(draw, max(12, n_people // 5), world.reps, now, company_fit)
    world.campaigns, world.assets = _campaigns_and_assets(draw, max(8, min(120, n_people // 200 + 8)), now)
    builder = _WorldBuilder(draw, now, world, company_fit)
    scale = 3.0  # about 20 events per person on average
    by_company: dict[str, list[Human]] = {}
    outcomes: list[tuple[Human, float, float, int]] = []
    for index in range(n_people):
        human, fit = builder.person(index)
        world.humans.append(human)
        builder.latest = human.created_at
        eval_start, deep = builder.activity(human, fit, scale)
        human.modified_at = min(now, builder.latest)
        if human.company_key:
            by_company.setdefault(human.company_key, []).append(human)
        if eval_start is not None:
            outcomes.append((human, fit, eval_start, deep))
        if human.in_hubspot and eval_start is not None:
            human.lifecycle_stage = "marketingqualifiedlead"

    for human, fit, eval_start, deep in outcomes:
        _outcome(builder, human, fit, eval_start, deep, by_company)
    for company in world.companies:
        if company.customer_type == "customer":
            _past_win(builder, company, by_company.get(company.key, []))
    _link_scanners(builder, seed)
    return world


def _outcome(builder: _WorldBuilder, human: Human, fit: float, eval_start: float, deep: int,
             by_company: dict[str, list[Human]]) -> None:
    draw, now, world = builder.draw, builder.now, builder.world
    depth = min(1.0, deep / 3)
    if draw.random() < 0.5:
        builder.sales_touch(human, eval_start, 14)
        if human.salesforce_kind == "lead":
            human.lead_status = "Working - Contacted"
        if human.in_hubspot:
            human.lifecycle_stage = "salesqualifiedlead"
    if human.company_key is None or draw.random() >= 0.08 + 0.75 * fit * depth:
        if human.salesforce_kind == "lead" and eval_start > 120 * _DAY and draw.random() < 0.5:
            human.lead_status = "Closed - Not Converted"
        return
    created_before_now = eval_start - draw.uniform(20, 60) * _DAY
    if created_before_now <= 0:
        return  # the opportunity would come after today: this evaluation is still live
    company = builder.company_by_key[human.company_key]
    created = now - timedelta(seconds=created_before_now)
    close_after = draw.uniform(60, 200) * _DAY
    is_closed = close_after < created_before_now
    is_won = is_closed and draw.random() < 0.15 + 0.65 * fit
    if is_closed:
        stage, close = ("Closed Won" if is_won else "Closed Lost"), created + timedelta(seconds=close_after)
    else:
        stage, close = draw.choice(OPEN_STAGES), (created + timedelta(seconds=close_after))
    colleagues = [h for h in by_company.get(company.key, ()) if h is not human and h.salesforce_kind]
    contacts = (human.key, *(h.key for h in colleagues[: draw.randint(0, 2)]))
    amount = None if draw.random() < 0.05 else round(
        draw.lognorm(10.5, 0.9) * (1 + (company.employees or 100) / 5000), -2)
    channel = "salesforce" if company.in_salesforce else "hubspot"
    deal = Deal(f"dl-{len(world.deals) + 1:05d}", company.key,
                f"{company.name} – {company.application or 'components'} {created:%Y-%m}", stage, amount,
                close.date(), created, is_closed, is_won, company.owner_rep, contacts, channel)  # type: ignore[arg-type]
    world.deals.append(deal)
    builder.sales_touch(human, created_before_now, 30)
    if human.salesforce_kind == "lead":
        human.converted = True
        human.lead_status = "Closed - Converted"
        if company.in_salesforce:
            human.salesforce_kind = "contact"
    if human.in_hubspot:
        human.lifecycle_stage = "customer" if is_won else "opportunity"
    if is_won and company.customer_type == "prospect":
        company.customer_type = "customer"
    stamp = min(now, max(human.modified_at, created))
    human.modified_at = stamp
    company.modified_at = min(now, max(company.modified_at, created))


# A share of companies whose mail gateway follows every link of incoming mail (Safe Links, Proofpoint,
# Mimecast…), and how the sweep looks: the render's open, then each link 2–20 s after the one before.
SCANNED_COMPANY_SHARE = 0.12
SCANNER_STEP_SECONDS = (2.0, 20.0)


def _link_scanners(builder: _WorldBuilder, seed: int) -> None:
    """Link-scanner sweeps at the companies behind a scanning gateway: for each marketing email a
    corporate recipient there opened, one sweep on delivery (two minutes to three days before their
    first open of it): an open, then every link of the email, each 2–20 s after the one before.

    Drawn last and from their own random stream, so every other draw of the world is unchanged;
    the events are appended after all the others, so no other event's key changes either."""
    import random

    world = builder.world
    rng = random.Random(f"link-scanners:{seed}")
    pages = builder.product_pages + builder.app_pages
    links = {c.key: rng.sample(pages, rng.randint(3, 5)) for c in builder.emails}
    scanned = {c.key: c.domain for c in world.companies if rng.random() < SCANNED_COMPANY_SHARE and c.domain}
    first_open: dict[tuple[str, str], datetime] = {}
    for event in world.events:
        if event.kind == "email_open" and event.campaign_key in links:
            key = (event.human_key, event.campaign_key)
            if key not in first_open or event.occurred_at < first_open[key]:
                first_open[key] = event.occurred_at
    humans = {h.key: h for h in world.humans}
    for (human_key, campaign_key), opened in sorted(first_open.items()):
        human = humans[human_key]
        domain = scanned.get(human.company_key or "")
        if domain is None or not (human.email or "").endswith(f"@{domain}"):
            continue
        at = opened - timedelta(seconds=rng.uniform(120, 3 * _DAY))
        if at < human.created_at:
            continue
        builder.add_event(human, "email_open", at, "hubspot", campaign=campaign_key)
        for url in links[campaign_key]:
            at += timedelta(seconds=round(rng.uniform(*SCANNER_STEP_SECONDS), 3))
            builder.add_event(human, "email_click", at, "hubspot", campaign=campaign_key, url=url)


def _past_win(builder: _WorldBuilder, company: Company, people: list[Human]) -> None:
    """An existing customer's earlier business, before the window of activity."""
    draw, now, world = builder.draw, builder.now, builder.world
    if any(d.company_key == company.key for d in world.deals):
        return
    created = now - timedelta(seconds=_SPAN + draw.uniform(30, 300) * _DAY)
    contacts = tuple(h.key for h in people if h.salesforce_kind == "contact")[:2]
    world.deals.append(Deal(
        f"dl-{len(world.deals) + 1:05d}", company.key, f"{company.name} – design win {created:%Y}",
        "Closed Won",
        round(draw.lognorm(11, 0.8), -2), (created + timedelta(days=draw.randint(60, 200))).date(), created,
        True, True, company.owner_rep, contacts, "salesforce" if company.in_salesforce else "hubspot",
    ))
