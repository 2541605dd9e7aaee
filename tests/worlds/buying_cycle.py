"""A Voltaris CRM drawn from a latent buying-cycle model, written from the two source articles (B2B lead
scoring for long-cycle semiconductor and industrial sales) and not from the sandbox's generator.

What happens in this world, none of which the CRM records directly:

- Accounts run design programs. How often depends on the market they are really in (data center and
  automotive power most, then energy and motor control, automation, medical and IoT; telecom and
  aerospace too, which the playbook has no profile for; retail or consulting almost never), on their
  size, on whether they already buy from us, and on a momentum no field shows. The CRM's firmographics
  are what sales typed in: often missing, sometimes stale.
- A program moves through research → evaluation → validation → purchase over months. It can stall
  after any phase (no budget, lost to a competitor); only programs that reach purchase create an
  opportunity, a few days into purchase, with the committee members who took part as contact roles.
  A fifth of programs run offline (through a distributor's FAE or an existing relationship) and
  leave little digital trace.
- The buying committee engages by phase, as the articles describe: engineers read application pages,
  datasheets and app notes while researching, reference designs and workshops while evaluating, and
  request evaluation kits and samples to validate; product managers follow the roadmap side, quality
  joins at validation, procurement asks for quotes and sales once timelines and pricing come up,
  executives appear near the purchase.
- Everyone else browses: engineers researching without a program, people reading newsletters and
  company pages, hobbyists with personal addresses who request samples.
- What a real CRM also holds: students and professors at universities, competitors' engineers,
  distributors' and design partners' field engineers (who engage more than anyone and never buy for
  themselves; half are partner-owned records), email-security link scanners that open the mail and
  click every link within seconds of delivery, privacy proxies that open every mail on delivery,
  leads with no account id whose email domain is an account's, titles in German, French, Japanese,
  Korean and Chinese, people who left (their mail bounces) and people who unsubscribe.
- Customers also place orders nobody saw coming online (opportunities without a program).

`generate(seed)` is deterministic and takes about a second for 6,000 people. The `Truth` beside the
dataset is what the generator knows and the CRM does not: which people are on which program, who is
a channel engineer, which activities a machine made, which account a domain-only lead belongs to.
"""

# ruff: noqa: E501  (the catalog and behaviour tables read best one entry per line)
from __future__ import annotations

import math
import random
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

import numpy as np

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import (
    Account,
    Activity,
    ActivityKind,
    Campaign,
    ContactRole,
    CustomerType,
    Opportunity,
    Owner,
    Person,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
HISTORY_DAYS = 520  # activities start this long before `now`: a year of scoring history before any cutoff
SITE = "https://www.voltaris-semi.com"
PHASES = ("research", "evaluation", "validation", "purchase")
# days each phase lasts (uniform between the bounds): long-cycle industrial design-ins
PHASE_DAYS = {"research": (30, 120), "evaluation": (30, 100), "validation": (40, 120), "purchase": (30, 90)}
# chance a program stops after each phase (no budget, design cancelled, lost to a competitor)
STALLS_AFTER = {"research": 0.40, "evaluation": 0.30, "validation": 0.20}
OFFLINE_SHARE = 0.2  # programs run through a distributor's FAE or an existing relationship
OFFLINE_ENGAGEMENT = 0.25

_DAY = timedelta(days=1)
_WEEK_SECONDS = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Market:
    segment: str
    industries: tuple[str, ...]
    applications: tuple[str, ...]
    device_types: tuple[str, ...]
    process: str | None
    families: tuple[str, ...]  # product-family URL slugs on voltaris-semi.com
    page: str  # /applications/<page>
    webinar: str | None
    workshop: str | None
    programs_per_year: float  # latent demand of a mid-size prospect
    share: float  # of the regular accounts


MARKETS = (
    Market("automotive power", ("Automotive", "Automotive Electronics", "Electric Vehicles"),
           ("EV traction inverter", "onboard charger", "DC-DC converter", "battery management"),
           ("SiC MOSFET", "gate driver", "current sensor"), "SiC", ("voltedge-sic", "drivecore-gate-drivers"),
           "automotive", "SiC gate drive for 800 V traction inverters", "800 V traction inverter gate drive",
           0.40, 0.17),
    Market("data center power", ("Data Center / Cloud", "Data Center", "Cloud Computing"),
           ("server PSU", "48V bus converter", "AI accelerator VRM"), ("GaN FET", "multiphase controller", "PMIC"),
           "GaN", ("ganpulse-gan",), "data-center", "GaN in 48 V server power stages", "GaN in 48 V server power",
           0.45, 0.12),
    Market("renewables/energy", ("Energy", "Renewable Energy", "Utilities"),
           ("solar string inverter", "energy storage system", "EV fast charger"),
           ("SiC MOSFET", "IGBT module", "isolated gate driver"), "SiC", ("voltedge-sic", "drivecore-gate-drivers"),
           "renewables", "Bidirectional SiC for energy storage", "bidirectional SiC converters", 0.32, 0.11),
    Market("industrial motor control", ("Industrial Machinery", "Motor Drives", "HVAC"),
           ("servo drive", "variable frequency drive", "BLDC motor controller"),
           ("gate driver", "motor-control MCU", "IGBT module"), "Si IGBT", ("drivecore-gate-drivers", "motion-mcu"),
           "industrial-motor-control", "Field-oriented control with MotionMCU", "field-oriented control hands-on",
           0.30, 0.14),
    Market("factory automation", ("Industrial Automation", "Robotics"),
           ("robot joint drive", "PLC I/O module", "machine vision"),
           ("isolated gate driver", "motor-control MCU", "current sensor"), None, ("powersense", "motion-mcu"),
           "factory-automation", "Isolated current sensing for servo drives", "isolated current sensing lab",
           0.22, 0.11),
    Market("medical", ("Medical Devices",), ("patient monitor", "portable ultrasound", "infusion pump"),
           ("PMIC", "current sensor"), None, ("nano-pmic", "powersense"), "medical",
           "Low-Iq PMIC design for wearables", "low-Iq PMIC design", 0.18, 0.07),
    Market("IoT/wearables", ("Consumer Electronics",), ("wearable fitness tracker", "smart meter"),
           ("PMIC", "current sensor"), None, ("nano-pmic",), "iot", "Low-Iq PMIC design for wearables",
           "low-Iq PMIC design", 0.18, 0.08),
    # markets the playbook has no profile for: they still design power stages
    Market("telecom power", ("Telecommunications",), ("5G base station PSU", "rectifier module"),
           ("GaN FET", "PMIC"), "GaN", ("ganpulse-gan",), "data-center", None, None, 0.15, 0.07),
    Market("aerospace power", ("Aerospace & Defense",), ("more-electric aircraft converter",),
           ("SiC MOSFET", "gate driver"), "SiC", ("voltedge-sic",), "automotive", None, None, 0.08, 0.04),
    # nobody there designs a board our parts go on, or not one we serve
    Market("none", ("Retail", "Management Consulting", "Financial Services", "Real Estate"),
           ("Crypto mining", "Vaping devices", "Toys"), (), None, ("voltedge-sic", "ganpulse-gan"), "iot",
           None, None, 0.01, 0.09),
)
_PROFILED = {m.segment for m in MARKETS[:7]}
FAMILIES = ("voltedge-sic", "ganpulse-gan", "drivecore-gate-drivers", "motion-mcu", "powersense", "nano-pmic")
FAMILY_NAMES = {"voltedge-sic": "VoltEdge", "ganpulse-gan": "GaNPulse", "drivecore-gate-drivers": "DriveCore",
                "motion-mcu": "MotionMCU", "powersense": "PowerSense", "nano-pmic": "NanoPMIC"}

COUNTRIES = {  # region → (country, weight)
    "NA": (("US", 0.8), ("CA", 0.15), ("MX", 0.05)),
    "EMEA": (("DE", 0.35), ("FR", 0.15), ("GB", 0.15), ("IT", 0.1), ("SE", 0.08), ("NL", 0.07), ("CH", 0.05),
             ("PL", 0.05)),
    "APAC": (("JP", 0.25), ("KR", 0.2), ("CN", 0.3), ("TW", 0.15), ("SG", 0.05), ("IN", 0.05)),
}
REGION_SHARE = (("NA", 0.38), ("EMEA", 0.34), ("APAC", 0.28))
TLD = {"DE": "de", "FR": "fr", "GB": "co.uk", "IT": "it", "SE": "se", "NL": "nl", "CH": "ch", "PL": "pl",
       "JP": "co.jp", "KR": "co.kr", "CN": "com.cn", "TW": "com.tw", "SG": "com.sg", "IN": "in"}
LANGUAGE = {"DE": "de", "CH": "de", "FR": "fr", "JP": "ja", "KR": "ko", "CN": "zh", "TW": "zh"}
LOCAL_TITLE_SHARE = {"de": 0.4, "fr": 0.4, "ja": 0.65, "ko": 0.65, "zh": 0.6}

# Latent roles of people at companies. `channel_fae` and the academic roles exist only at their accounts.
ROLE_MIX = (("engineering", 0.42), ("product_management", 0.09), ("quality", 0.07), ("procurement", 0.08),
            ("executive", 0.06), ("non_technical", 0.16), ("unknown", 0.12))

ENGLISH_TITLES = {
    "engineering": ("Hardware Engineer", "Power Electronics Engineer", "Electrical Engineer", "Design Engineer",
                    "Sr. HW Eng.", "Senior Hardware Engineer", "Principal Power Engineer", "Staff Engineer",
                    "Firmware Engineer", "Systems Architect", "Applications Engineer", "R&D Engineer",
                    "Test Engineer", "Lead Design Engineer", "Engineering Manager", "Director of Engineering",
                    "Head of Hardware", "Power Supply Designer", "Electronics Engineer II"),
    "product_management": ("Product Manager", "Senior Product Manager", "Program Manager", "Product Line Manager",
                           "Technical Product Owner"),
    "quality": ("Quality Engineer", "Supplier Quality Engineer", "Reliability Engineer", "Quality Manager", "SQE"),
    "procurement": ("Buyer", "Senior Buyer", "Purchasing Manager", "Commodity Manager",
                    "Strategic Sourcing Manager", "Supply Chain Manager", "Component Engineer"),
    "executive": ("CEO", "CTO", "COO", "VP Operations", "General Manager", "Managing Director", "President",
                  "Vice President, R&D"),
    "non_technical": ("Marketing Manager", "Sales Manager", "HR Business Partner", "Recruiter", "Accountant",
                      "Office Manager", "Finance Director", "Marketing Coordinator", "Inside Sales Rep"),
    "unknown": ("Chief Electron Herder", "n/a", "Specialist", "Associate", "Team Lead", "Analyst",
                "Member of Technical Staff", "Technician"),
}
# Common titles in the languages of our APAC and European accounts, by what the person does.
LOCAL_TITLES = {
    "de": {"engineer": ("Entwicklungsingenieur", "Elektronikingenieur", "Ingenieur Leistungselektronik",
                        "Hardware-Entwickler"),
           "product_manager": ("Produktmanager", "Produktmanagerin"),
           "buyer": ("Einkäufer", "Strategischer Einkäufer", "Einkäuferin"),
           "director": ("Entwicklungsleiter", "Leiter Entwicklung", "Direktor Technik"),
           "quality": ("Qualitätsingenieur",)},
    "fr": {"engineer": ("Ingénieur électronique", "Ingénieur R&D", "Ingénieur en électronique de puissance",
                        "Ingénieur conception"),
           "product_manager": ("Chef de produit", "Responsable produit"),
           "buyer": ("Acheteur", "Acheteuse composants", "Acheteur électronique"),
           "director": ("Directeur technique", "Directeur R&D", "Directrice de l'ingénierie"),
           "quality": ("Ingénieur qualité",)},
    "ja": {"engineer": ("ハードウェアエンジニア", "回路設計エンジニア", "電源設計エンジニア", "開発エンジニア"),
           "product_manager": ("プロダクトマネージャー", "製品マネージャー"),
           "buyer": ("購買担当", "購買担当者", "バイヤー"),
           "director": ("技術部長", "開発部長", "技術本部長"),
           "quality": ("品質保証エンジニア",)},
    "ko": {"engineer": ("하드웨어 엔지니어", "전력전자 엔지니어", "회로 설계 엔지니어", "개발 엔지니어"),
           "product_manager": ("제품 관리자", "프로덕트 매니저"),
           "buyer": ("구매 담당자", "구매 담당", "바이어"),
           "director": ("기술 이사", "연구소장", "개발 이사"),
           "quality": ("품질 엔지니어",)},
    "zh": {"engineer": ("硬件工程师", "电源工程师", "电子工程师", "研发工程师"),
           "product_manager": ("产品经理", "高级产品经理"),
           "buyer": ("采购经理", "采购员", "采购工程师"),
           "director": ("技术总监", "研发总监", "工程总监"),
           "quality": ("质量工程师",)},
}
_LOCAL_KIND = {"engineering": "engineer", "product_management": "product_manager", "procurement": "buyer",
               "quality": "quality"}
DEPARTMENTS = {"engineering": ("Engineering", "R&D", "Hardware", "Power Electronics", "Design"),
               "product_management": ("Product Management", "Marketing"), "quality": ("Quality",),
               "procurement": ("Purchasing", "Supply Chain"), "executive": ("Management",),
               "non_technical": ("Marketing", "Sales", "HR", "Finance")}

FIRST = {"en": ("James", "Mary", "Robert", "Linda", "Michael", "Sarah", "David", "Emily", "Daniel", "Laura",
                "Kevin", "Anna", "Brian", "Megan", "Jason", "Rachel", "Eric", "Nicole", "Ryan", "Olivia"),
         "de": ("Lukas", "Anna", "Felix", "Julia", "Jonas", "Lena", "Tobias", "Katrin", "Stefan", "Miriam"),
         "fr": ("Julien", "Camille", "Nicolas", "Chloé", "Antoine", "Manon", "Pierre", "Léa", "Thomas", "Inès"),
         "ja": ("Hiroshi", "Yuki", "Takeshi", "Aiko", "Kenta", "Mai", "Daisuke", "Haruka", "Shota", "Emi"),
         "ko": ("Minjun", "Seoyeon", "Jihoon", "Jiwoo", "Hyunwoo", "Soyeon", "Dongho", "Yuna", "Jaehyun", "Eunji"),
         "zh": ("Wei", "Fang", "Lei", "Jing", "Hao", "Min", "Jun", "Yan", "Tao", "Li")}
LAST = {"en": ("Smith", "Johnson", "Brown", "Miller", "Davis", "Garcia", "Wilson", "Taylor", "Clark", "Lewis",
               "Walker", "Young", "Allen", "King", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill"),
        "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Wagner", "Becker", "Hoffmann", "Koch", "Vogel"),
        "fr": ("Martin", "Bernard", "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "Simon", "Michel", "Roux"),
        "ja": ("Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe", "Ito", "Yamamoto", "Nakamura", "Kobayashi",
               "Kato"),
        "ko": ("Kim", "Lee", "Park", "Choi", "Jung", "Kang", "Cho", "Yoon", "Jang", "Lim"),
        "zh": ("Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou")}
NAME_PREFIXES = ("Voltra", "Kestrel", "Ardent", "Borealis", "Cobalt", "Dynamo", "Everline", "Fulcrum", "Granite",
                 "Helios", "Ionic", "Juniper", "Krypton", "Lumen", "Meridian", "Nexus", "Orion", "Polaris",
                 "Quantum", "Radiant", "Sierra", "Tandem", "Umbra", "Vector", "Westwind", "Xenon", "Yardley",
                 "Zenith", "Aurora", "Beacon", "Cascade", "Delta", "Ember", "Falcon", "Galena", "Harbor",
                 "Iris", "Jetstream", "Keystone", "Lodestar", "Magnetar", "Northwind", "Onyx", "Pinnacle",
                 "Quasar", "Redwood", "Summit", "Titan", "Unity", "Vantage")
NAME_NOUNS = {"automotive power": ("Automotive", "Mobility", "EV Systems", "Drivetrain"),
              "data center power": ("Cloud", "Compute", "Datacenter Systems", "Hyperscale"),
              "renewables/energy": ("Energy", "Solar", "Grid Systems", "Power Storage"),
              "industrial motor control": ("Drives", "Motion", "Machinery", "HVAC Systems"),
              "factory automation": ("Robotics", "Automation", "Controls"),
              "medical": ("Medical", "Health Devices", "Diagnostics"),
              "IoT/wearables": ("Devices", "Wearables", "Smart Home"),
              "telecom power": ("Telecom", "Networks", "Radio Systems"),
              "aerospace power": ("Aerospace", "Avionics", "Defense Systems"),
              "none": ("Retail Group", "Consulting", "Capital", "Properties", "Mining", "Vapor", "Toys")}
PERSONAL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "gmx.de", "qq.com", "163.com",
                    "icloud.com")

# The email-security gateways of some companies open every message and follow every link on delivery.
SCANNER_ACCOUNT_SHARE = 0.07
PRIVACY_PROXY_SHARE = 0.20  # mail apps that fetch every message (and its tracking pixel) on delivery
EMAIL_EVERY_DAYS = 21

# What each committee member does per week in each phase (`once_*`: chance of doing it once in the
# phase; `booth`: chance per trade show that falls in the phase; `long_read`: a product or datasheet
# page read for 10–30 minutes).
ENGAGEMENT: dict[tuple[str, str], dict[str, float]] = {
    ("lead_engineer", "research"): dict(app_page=0.8, product_page=0.5, datasheet=0.2, app_note=0.15, webinar=0.06,
                                        broad_webinar=0.02, booth=0.15),
    ("lead_engineer", "evaluation"): dict(app_page=0.4, product_page=0.9, long_read=0.3, datasheet=0.25,
                                          app_note=0.2, ref_design=0.15, workshop=0.04, webinar=0.05, booth=0.25),
    ("lead_engineer", "validation"): dict(product_page=0.6, long_read=0.2, datasheet=0.15, app_note=0.1,
                                          once_evk=0.65, once_samples=0.5, once_contact_sales=0.1),
    ("lead_engineer", "purchase"): dict(product_page=0.2, datasheet=0.05),
    ("product_management", "research"): dict(app_page=0.2, webinar=0.03, broad_webinar=0.02),
    ("product_management", "evaluation"): dict(app_page=0.3, product_page=0.3, ref_design=0.03, webinar=0.03,
                                               booth=0.1),
    ("product_management", "validation"): dict(product_page=0.2, once_samples=0.1),
    ("product_management", "purchase"): dict(product_page=0.1, once_demo=0.15),
    ("quality", "validation"): dict(product_page=0.3, datasheet=0.2, app_note=0.05),
    ("quality", "purchase"): dict(product_page=0.1, datasheet=0.1),
    ("procurement", "validation"): dict(product_page=0.1, once_quote=0.25),
    ("procurement", "purchase"): dict(product_page=0.3, once_quote=0.6, once_contact_sales=0.3),
    ("executive", "evaluation"): dict(app_page=0.05, broad_webinar=0.02),
    ("executive", "purchase"): dict(app_page=0.1, once_demo=0.1),
}
SUPPORTING_ENGINEER = 0.45  # a second or third engineer does this share of what the lead engineer does
CONTACT_ROLE = {"lead_engineer": "Technical Buyer", "engineering": "Evaluator", "product_management": "Influencer",
                "quality": "Evaluator", "procurement": "Economic Buyer", "executive": "Decision Maker"}

# Whoever is not on a program: engineers researching without one, channel and competitor engineers, academics.
RESEARCHER = dict(app_page=0.5, product_page=0.4, datasheet=0.15, app_note=0.12, webinar=0.05, booth=0.1)
CHANNEL_FAE = dict(product_page=0.8, long_read=0.2, datasheet=0.3, app_note=0.2, ref_design=0.08, webinar=0.06,
                   workshop=0.03, evk=0.02, samples=0.03, booth=0.4)
CHANNEL_STAFF = dict(product_page=0.3, datasheet=0.05, webinar=0.03, broad_webinar=0.02, booth=0.3)
COMPETITOR = dict(product_page=0.4, datasheet=0.3, app_note=0.2, ref_design=0.05, webinar=0.05, evk=0.01,
                  booth=0.3)
STUDENT = dict(product_page=0.2, datasheet=0.15, app_note=0.15, webinar=0.04, samples=0.01)
PROFESSOR = dict(datasheet=0.05, app_note=0.03, webinar=0.03, workshop=0.01)
HOBBYIST = dict(product_page=0.1, datasheet=0.05, samples=0.005)

TRADE_SHOWS = (("APEC 2025", date(2025, 3, 16)), ("PCIM Europe 2025", date(2025, 5, 6)),
               ("SPS 2025", date(2025, 11, 25)), ("embedded world 2026", date(2026, 3, 10)),
               ("APEC 2026", date(2026, 3, 22)), ("PCIM Europe 2026", date(2026, 6, 9)),
               ("electronica 2026", date(2026, 11, 10)))
BROAD_WEBINARS = ("Power electronics trends 2026", "Electrification 101", "Voltaris product update",
                  "Sustainability in semiconductors", "Industry 4.0 outlook")

REPS = {  # region → reps of the shipped playbook who own accounts there
    "NA": ("rachel.kim", "emily.hart", "marcus.webb", "greg.olsen", "daniel.ortiz", "jordan.reyes"),
    "EMEA": ("katrin.vogel", "luca.bianchi", "anders.lund", "sophie.martin", "oliver.bennett"),
    "APAC": ("kenji.watanabe", "lina.zhou", "priya.raman", "minseo.park"),
}


@dataclass(slots=True)
class Program:
    """A design program at an account: when each phase starts, where it stalled, who is on it."""

    id: str
    account_id: str
    family: str
    phase_starts: dict[str, datetime]
    ends: datetime  # stalled, or the purchase phase ended
    stalled_after: str | None
    offline: bool
    committee: dict[str, str] = field(default_factory=dict)  # person id → committee role
    opportunity_id: str | None = None

    def phase_at(self, moment: datetime) -> str | None:
        """The phase running at `moment`, None before it started or after it ended."""
        if moment >= self.ends:
            return None
        current = None
        for phase in PHASES:
            start = self.phase_starts.get(phase)
            if start is not None and start <= moment:
                current = phase
        return current


@dataclass(frozen=True, slots=True)
class Truth:
    """What the generator knows and the CRM does not."""

    programs: tuple[Program, ...]
    role_of: dict[str, str]  # person id → what they really do (engineering, channel_fae, student, …)
    channel_engineers: frozenset[str]  # distributors' and design partners' field engineers
    disqualified: frozenset[str]  # students, academics, competitors' staff, partner-owned records
    behind_scanner: frozenset[str]  # people whose mail passes a link-clicking security gateway
    machine_activities: frozenset[str]  # ids of opens and clicks made by scanners and privacy proxies
    domain_only: dict[str, str]  # person id → the account their email domain belongs to (no account id)
    local_titles: dict[str, tuple[str, str]]  # person id → (language, engineer|product_manager|buyer|director|…)

    def buyers_at(self, moment: datetime, phases: Sequence[str] = ("evaluation", "validation")) -> set[str]:
        """Committee members of programs in one of `phases` at `moment` that run online."""
        return {person for program in self.programs if not program.offline
                and program.phase_at(moment) in phases for person in program.committee}


@dataclass(slots=True)
class World:
    seed: int
    now: datetime
    dataset: Dataset
    truth: Truth

    def as_of(self, cutoff: datetime) -> Dataset:
        """The CRM as it stood at `cutoff` (what the model review scores): the people and activities
        that existed by then and the opportunities already created."""
        return Dataset(
            accounts=self.dataset.accounts,
            people=[p for p in self.dataset.people if p.created_at is None or p.created_at <= cutoff],
            activities=[a for a in self.dataset.activities if a.occurred_at <= cutoff],
            opportunities=[o for o in self.dataset.opportunities if o.created_at is None or o.created_at <= cutoff],
            campaigns=self.dataset.campaigns, owners=self.dataset.owners,
            contact_roles=self.dataset.contact_roles,
        )

    def without_activities(self, ids: Iterable[str]) -> Dataset:
        drop = set(ids)
        d = self.dataset
        return Dataset(accounts=d.accounts, people=d.people,
                       activities=[a for a in d.activities if a.id not in drop],
                       opportunities=d.opportunities, campaigns=d.campaigns, owners=d.owners,
                       contact_roles=d.contact_roles)


@dataclass(slots=True)
class _Person:
    id: str
    role: str  # latent
    language: str
    account_id: str | None  # the company they work for (even when the CRM record has no account id)
    email: str
    first: str
    last: str
    title: str | None
    department: str | None
    country: str | None
    region: str | None
    crm_account: bool = True  # False: a lead with no account id
    partner_owned: bool = False
    distributor_registered: bool = False
    created_at: datetime | None = None
    left_at: datetime | None = None
    proxy: bool = False
    subscribed: bool = True
    curiosity: float = 0.02
    local_kind: str | None = None
    lead_source: str | None = None


@dataclass(slots=True)
class _Account:
    record: Account
    market: Market
    kind: str  # regular, distributor, partner, competitor, university
    people: list[_Person] = field(default_factory=list)
    scanner: bool = False
    rate: float = 0.0


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


class _Generator:
    def __init__(self, seed: int, people: int, now: datetime) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)  # Poisson and multinomial counts
        self.r = random.Random(seed)  # every other draw: much faster one at a time
        self.now = now
        self.start = now - timedelta(days=HISTORY_DAYS)
        self.target_people = people
        self.accounts: list[_Account] = []
        self.people: list[_Person] = []
        self.unattached: list[_Person] = []
        self.raw: list[tuple] = []  # (person_id, kind, moment, url, form, campaign_id, seconds, source, machine)
        self.campaigns: dict[str, Campaign] = {}
        self.programs: list[Program] = []
        self.opportunities: list[Opportunity] = []
        self.contact_roles: list[ContactRole] = []
        self.domains: set[str] = set()
        self.owners = [Owner(id=f"own-{rep}", email=f"{rep}@voltaris-semi.com",
                             name=rep.replace(".", " ").title(), active=rep not in ("greg.olsen", "anders.lund"))
                       for reps in REPS.values() for rep in reps]

    # ---- small draws -------------------------------------------------------------------------------
    def pick(self, options: Sequence):
        return options[self.r.randrange(len(options))]

    def weighted(self, pairs: Sequence[tuple]):
        return self.r.choices(pairs, weights=[w for _, w in pairs])[0][0]

    def chance(self, p: float) -> bool:
        return bool(self.r.random() < p)

    def between(self, lo: datetime, hi: datetime) -> datetime:
        return lo + (hi - lo) * float(self.r.random())

    # ---- accounts and people -----------------------------------------------------------------------
    def _domain(self, name: str, country: str | None, tld: str | None = None) -> str:
        base = _slug(name)
        suffix = tld or TLD.get(country or "", "com")
        domain = f"{base}.{suffix}"
        n = 2
        while domain in self.domains:
            domain = f"{base}{n}.{suffix}"
            n += 1
        self.domains.add(domain)
        return domain

    def _account(self, index: int, market: Market, kind: str, name: str | None = None,
                 customer_type: CustomerType = CustomerType.PROSPECT, industry: str | None = None,
                 domain: str | None = None) -> _Account:
        region = self.weighted(REGION_SHARE)
        country = self.weighted(COUNTRIES[region])
        name = name or f"{self.pick(NAME_PREFIXES)} {self.pick(NAME_NOUNS[market.segment])}"
        domain = domain or self._domain(name, country)
        employees = int(math.exp(self.r.gauss(6.3, 1.7)))
        fields: dict = dict(
            id=f"s{self.seed}-acc{index:04d}", name=name, website=f"https://www.{domain}",
            industry=industry or self.pick(market.industries), region=region, country=country,
            customer_type=customer_type, owner_id=f"own-{self.pick(REPS[region])}",
            salesforce_id=f"001{self.seed:03d}{index:09d}",
        )
        if kind == "regular":
            # what sales typed in: usually the real market, sometimes missing or stale
            segment = market.segment if market.segment in _PROFILED or market.segment == "none" else None
            if segment == "none":
                segment = None
            if self.chance(0.06):
                segment = self.pick(MARKETS[:7]).segment
            fields.update(
                segment=segment if self.chance(0.88) else None,
                application=self.pick(market.applications) if self.chance(0.8) else None,
                device_type=self.pick(market.device_types) if market.device_types and self.chance(0.7) else None,
                process=market.process if market.process and self.chance(0.55) else None,
                employees=employees if self.chance(0.9) else None,
            )
        else:
            fields.update(employees=employees)
        record = Account(**fields)
        account = _Account(record, market, kind)
        if kind == "regular":
            size = (0.35 if employees < 50 else 0.8 if employees < 500 else 1.2 if employees < 10_000 else 1.5)
            customer = 1.4 if customer_type is CustomerType.CUSTOMER else 1.0
            momentum = math.exp(self.r.gauss(0.0, 0.6))  # no field shows it
            account.rate = market.programs_per_year * size * customer * momentum
            account.scanner = self.chance(SCANNER_ACCOUNT_SHARE + (0.08 if employees >= 5000 else 0.0))
        return account

    def _person(self, account: _Account | None, role: str, *, email_domain: str | None = None,
                title: str | None = None, language: str | None = None) -> _Person:
        index = len(self.people)
        country = account.record.country if account else self.pick(("US", "DE", "GB", "IN", "CN", "FR", "JP"))
        region = account.record.region if account else None
        language = language or LANGUAGE.get(country or "", "en")
        names = language if language in FIRST else "en"
        first, last = self.pick(FIRST[names]), self.pick(LAST[names])
        local_kind = None
        if title is None:
            title, local_kind = self._title(role, language)
        domain = email_domain or (account.record.domain if account else self.pick(PERSONAL_DOMAINS))
        if account is not None and email_domain is None and self.chance(0.05):
            domain = self.pick(PERSONAL_DOMAINS)  # signed up with a private address
        local = _slug(f"{first}.{last}").replace("-", ".") or "contact"
        person = _Person(
            id=f"s{self.seed}-p{index:05d}", role=role, language=language,
            account_id=account.record.id if account else None, email=f"{local}{index}@{domain}",
            first=first, last=last, title=title,
            department=self.pick(DEPARTMENTS[role]) if role in DEPARTMENTS and self.chance(0.5) else None,
            country=country if self.chance(0.9) else None, region=region, local_kind=local_kind,
            created_at=self.between(self.start - timedelta(days=700), self.now),
            proxy=self.chance(PRIVACY_PROXY_SHARE), subscribed=self.chance(0.6),
            curiosity=math.exp(self.r.gauss(math.log(0.015), 1.0)),
            lead_source=self.pick(("Web", "Trade Show", "Webinar", "Purchased List", "Partner Referral", None)),
        )
        if self.chance(0.06):
            person.left_at = self.between(self.start, self.now + timedelta(days=200))
        self.people.append(person)
        if account is not None:
            account.people.append(person)
        return person

    def _title(self, role: str, language: str) -> tuple[str | None, str | None]:
        if role not in ENGLISH_TITLES:
            return None, None  # channel, academic and hobbyist titles are given where they are made
        local = LOCAL_TITLES.get(language)
        if local and self.chance(LOCAL_TITLE_SHARE[language]):
            if role == "executive" or (role == "engineering" and self.chance(0.12)):
                return self.pick(local["director"]), "director"
            kind = _LOCAL_KIND.get(role)
            if kind:
                return self.pick(local[kind]), kind
        if role == "unknown" and self.chance(0.3):
            return None, None
        return self.pick(ENGLISH_TITLES[role]), None

    def build_population(self) -> None:
        regular = max(20, self.target_people // 11)
        index = 0
        markets = [(m, m.share) for m in MARKETS]
        for _ in range(regular):
            market = self.weighted(markets)
            # customers are companies that design our kind of parts in; a retailer is never one
            buys = market.programs_per_year >= 0.1
            customer = CustomerType.CUSTOMER if buys and self.chance(0.14) else CustomerType.PROSPECT
            self.accounts.append(self._account(index, market, "regular", customer_type=customer))
            index += 1
        channel = (("Kestrel Components", "distributor"), ("Pacific Rim Electronics", "distributor"),
                   ("Nordic Parts Supply", "distributor"), ("Atlas Distribution", "distributor"),
                   ("Brightline Design Services", "partner"), ("Ohmic Engineering Partners", "partner"))
        for name, kind in channel:
            ctype = CustomerType.DISTRIBUTOR if kind == "distributor" else CustomerType.PARTNER
            industry = "Electronics Distribution" if kind == "distributor" else "Engineering Services"
            self.accounts.append(self._account(index, MARKETS[-1], kind, name=name, customer_type=ctype,
                                               industry=industry))
            index += 1
        for name, domain, ctype in (("Helix Power Semiconductor", "helixpowersemiconductor.com",
                                     CustomerType.COMPETITOR),
                                    ("Semitron Devices", "semitrondevices.com", CustomerType.COMPETITOR),
                                    ("Ampera Microsystems", "amperamicrosystems.com", CustomerType.PROSPECT),
                                    ("Northgate Silicon", "northgatesilicon.com", CustomerType.COMPETITOR)):
            self.domains.add(domain)
            self.accounts.append(self._account(index, MARKETS[-1], "competitor", name=name, customer_type=ctype,
                                               industry="Semiconductors", domain=domain))
            index += 1
        for name, domain in (("Technical University of Aachen", "tu-aachen.de"), ("Ecole Polytechnique Lyon",
                             "polytech-lyon.fr"), ("Kanto Institute of Technology", "kanto-tech.ac.jp"),
                             ("Hanbit University", "hanbit.ac.kr"), ("Eastern Tech University", "etu.edu.cn"),
                             ("Midwest State University", "midweststate.edu")):
            self.domains.add(domain)
            self.accounts.append(self._account(index, MARKETS[-1], "university", name=name,
                                               customer_type=CustomerType.OTHER, industry="Higher Education",
                                               domain=domain))
            index += 1

        # people: most at regular accounts (bigger companies have more contacts in the CRM)
        special = [a for a in self.accounts if a.kind != "regular"]
        special_people = int(self.target_people * 0.08)
        unattached = int(self.target_people * 0.06)
        at_regular = self.target_people - special_people - unattached
        regulars = [a for a in self.accounts if a.kind == "regular"]
        weights = np.array([np.log10(max(a.record.employees or 100, 10)) ** 2 for a in regulars])
        counts = self.rng.multinomial(at_regular, weights / weights.sum())
        for account, n in zip(regulars, counts, strict=True):
            for _ in range(int(n)):
                self._person(account, self.weighted(ROLE_MIX))
        for k in range(special_people):
            account = special[k % len(special)]
            self._person(account, self._special_role(account), language=None)
        for _ in range(unattached):
            role = self.weighted((("hobbyist", 0.5), ("engineering", 0.3), ("unknown", 0.2)))
            title = (self.pick(("Electronics hobbyist", "Freelance Hardware Engineer", "Consultant", "Maker"))
                     if role == "hobbyist" else None)
            person = self._person(None, role, title=title, language="en")
            if role != "hobbyist":
                person.title, person.local_kind = self._title(role, "en")
            self.unattached.append(person)

        # leads nobody converted: no account id, but their company address is the account's domain
        for account in regulars:
            for person in account.people:
                if person.email.endswith("@" + (account.record.domain or "-")) and self.chance(0.05):
                    person.crm_account = False

    def _special_role(self, account: _Account) -> str:
        if account.kind in ("distributor", "partner"):
            return self.weighted((("channel_fae", 0.55), ("channel_staff", 0.45)))
        if account.kind == "competitor":
            return self.weighted((("engineering", 0.6), ("product_management", 0.2), ("non_technical", 0.2)))
        return self.weighted((("student", 0.6), ("academic", 0.25), ("lab_engineer", 0.15)))

    def finish_special_people(self) -> None:
        for account in self.accounts:
            for person in account.people:
                if person.role == "channel_fae":
                    person.title = self.pick(("Field Application Engineer", "FAE", "Senior FAE",
                                              "Field Applications Engineer, Power", "Sales Engineer"))
                    person.partner_owned = self.chance(0.5)
                elif person.role == "channel_staff":
                    person.title = self.pick(("Account Manager", "Product Marketing Manager", "Sales Engineer",
                                              "Line Card Manager", "Inside Sales"))
                    person.partner_owned = self.chance(0.5)
                elif person.role == "student":
                    person.title = self.pick(("PhD Student", "Graduate Student", "Research Intern",
                                              "Master's Student", "Undergrad Research Assistant"))
                elif person.role == "academic":
                    person.title = self.pick(("Professor of Power Electronics", "Postdoc", "Lecturer",
                                              "Associate Professor"))
                elif person.role == "lab_engineer":
                    person.title = "Lab Engineer"
                person.local_kind = None if person.role in ("channel_fae", "channel_staff", "student",
                                                            "academic", "lab_engineer") else person.local_kind

    # ---- activity ----------------------------------------------------------------------------------
    def add(self, person: _Person, kind: ActivityKind, moment: datetime, *, url: str | None = None,
            form: str | None = None, campaign: str | None = None, seconds: float | None = None,
            source: str = "web", machine: bool = False) -> None:
        if moment > self.now or moment < self.start:
            return
        if person.left_at is not None and moment >= person.left_at:
            return
        self.raw.append((person.id, kind, moment, url, form, campaign, seconds, source, machine))

    def campaign(self, key: str, name: str, type_: str, start: date, topic: str | None = None) -> str:
        if key not in self.campaigns:
            self.campaigns[key] = Campaign(id=f"s{self.seed}-cmp-{_slug(key)}", name=name, type=type_,
                                           topic=topic, start_date=start)
        return self.campaigns[key].id

    def _product(self, family: str, page: str | None = None) -> str:
        return f"{SITE}/products/{family}" + (f"/{page}" if page else "")

    def do(self, person: _Person, action: str, moment: datetime, family: str, market: Market) -> None:
        """One action of a person at a moment, as the CRM records it."""
        fam = FAMILY_NAMES[family]
        if action == "app_page":
            self.add(person, ActivityKind.PAGE_VIEW, moment, url=f"{SITE}/applications/{market.page}",
                     seconds=float(self.r.uniform(20, 240)))
        elif action in ("product_page", "long_read"):
            page = self.pick((None, None, "datasheet", "application-note", "reference-design"))
            seconds = float(self.r.uniform(600, 1800) if action == "long_read" else self.r.uniform(15, 300))
            self.add(person, ActivityKind.PAGE_VIEW, moment, url=self._product(family, page), seconds=seconds)
        elif action == "company_page":
            self.add(person, ActivityKind.PAGE_VIEW, moment,
                     url=SITE + self.pick(("/", "/careers", "/about", "/investors", "/blog/gan-vs-sic")),
                     seconds=float(self.r.uniform(10, 120)))
        elif action == "datasheet":
            self.add(person, ActivityKind.ASSET_DOWNLOAD, moment, url=self._product(family, "datasheet"),
                     form="Datasheet download")
        elif action == "app_note":
            self.add(person, ActivityKind.ASSET_DOWNLOAD, moment, url=self._product(family, "application-note"),
                     form="App note download")
        elif action == "ref_design":
            self.add(person, ActivityKind.ASSET_DOWNLOAD, moment, url=self._product(family, "reference-design"),
                     form="Reference design download")
        elif action == "evk":
            self.add(person, ActivityKind.EVAL_KIT_REQUEST, moment, url=self._product(family, "evaluation-kit"),
                     form=f"{fam} evaluation kit request")
        elif action == "samples":
            self.add(person, ActivityKind.SAMPLE_REQUEST, moment, url=self._product(family, "sample"),
                     form=f"{fam} samples request")
        elif action == "quote":
            self.add(person, ActivityKind.FORM_FILL, moment, url=self._product(family, "sample"),
                     form="Request a quote")
        elif action == "contact_sales":
            self.add(person, ActivityKind.CONTACT_SALES, moment, url=f"{SITE}/contact-sales", form="Contact sales")
        elif action == "demo":
            self.add(person, ActivityKind.DEMO_REQUEST, moment, url=f"{SITE}/request-demo", form="Request a demo")
        elif action in ("webinar", "broad_webinar"):
            topic = market.webinar if action == "webinar" and market.webinar else self.pick(BROAD_WEBINARS)
            held = moment.date()
            key = f"webinar {topic} {held:%Y-%m}"
            cid = self.campaign(key, f"Webinar: {topic} ({held:%b %Y})", "Webinar", held.replace(day=1), topic)
            self.add(person, ActivityKind.WEBINAR_REGISTERED, moment - timedelta(days=float(self.r.uniform(2, 14))),
                     campaign=cid, source="webinar")
            if self.chance(0.55):
                self.add(person, ActivityKind.WEBINAR_ATTENDED, moment, campaign=cid, source="webinar")
        elif action == "workshop":
            if market.workshop is None:
                return
            held = moment.date()
            key = f"workshop {market.workshop} {held:%Y-%m}"
            cid = self.campaign(key, f"Workshop: {market.workshop} ({held:%b %Y})", "Workshop", held.replace(day=1),
                                market.workshop)
            self.add(person, ActivityKind.WORKSHOP_ATTENDED, moment, campaign=cid, source="event")
        elif action == "newsletter":
            self.add(person, ActivityKind.FORM_FILL, moment, url=f"{SITE}/newsletter", form="Newsletter signup")
        elif action == "referral":
            cid = self.campaign("distributor referral", "Distributor referral program", "Partner",
                                self.start.date(), None)
            self.add(person, ActivityKind.PARTNER_REFERRAL, moment, campaign=cid, source="partner")
        else:  # pragma: no cover - a typo in the tables above
            raise ValueError(action)

    def engage(self, person: _Person, lo: datetime, hi: datetime, rates: dict[str, float], family: str | Sequence[str],
               market: Market, scale: float = 1.0) -> int:
        """Activities of `person` between lo and hi at `rates` (per week, or once/per-show chances)."""
        lo, hi = max(lo, self.start), min(hi, self.now)
        if hi <= lo:
            return 0
        weeks = (hi - lo).total_seconds() / _WEEK_SECONDS
        families = (family,) if isinstance(family, str) else tuple(family)
        done = 0
        for action, rate in rates.items():
            if action == "booth":
                for show, day in TRADE_SHOWS:
                    moment = datetime(day.year, day.month, day.day, 10, tzinfo=UTC)
                    if lo <= moment <= hi and self.chance(rate * min(1.0, scale * 1.5)):
                        cid = self.campaign(show, show, "Trade Show", day, None)
                        self.add(person, ActivityKind.TRADE_SHOW_SCAN,
                                 moment + timedelta(hours=float(self.r.uniform(0, 56))), campaign=cid,
                                 source="event")
                        done += 1
                continue
            if action.startswith("once_"):
                if self.chance(rate * min(1.0, scale)):
                    self.do(person, action[5:], self.between(lo, hi), self.pick(families), market)
                    done += 1
                continue
            for _ in range(int(self.rng.poisson(rate * scale * weeks))):
                self.do(person, action, self.between(lo, hi), self.pick(families), market)
                done += 1
        return done

    def run_programs(self) -> None:
        span_start = self.start - timedelta(days=340)  # programs already running when history starts
        years = (self.now - span_start).days / 365.0
        for account in self.accounts:
            if account.kind != "regular" or account.rate <= 0:
                continue
            for _ in range(int(self.rng.poisson(account.rate * years))):
                self._program(account, self.between(span_start, self.now))

    def _program(self, account: _Account, started: datetime) -> None:
        starts: dict[str, datetime] = {}
        moment = started
        stalled = None
        for phase in PHASES:
            starts[phase] = moment
            lo, hi = PHASE_DAYS[phase]
            length = timedelta(days=float(self.r.uniform(lo, hi)))
            if phase in STALLS_AFTER and self.chance(STALLS_AFTER[phase]):
                stalled = phase
                moment += length * float(self.r.uniform(0.4, 1.0))
                break
            moment += length
        program = Program(id=f"s{self.seed}-prog{len(self.programs):04d}", account_id=account.record.id,
                          family=self.pick(account.market.families), phase_starts=starts, ends=moment,
                          stalled_after=stalled, offline=self.chance(OFFLINE_SHARE))
        self.programs.append(program)
        self._committee(program, account)
        scale = OFFLINE_ENGAGEMENT if program.offline else 1.0
        engaged: set[str] = set()
        for person_id, member in program.committee.items():
            person = self._by_id[person_id]
            phases = [phase for phase in PHASES if phase in starts]
            for k, phase in enumerate(phases):
                rates = ENGAGEMENT.get((member if member != "engineering" else "lead_engineer", phase))
                if not rates:
                    continue
                share = SUPPORTING_ENGINEER if member == "engineering" else 1.0
                end = starts[phases[k + 1]] if k + 1 < len(phases) else program.ends
                if self.engage(person, starts[phase], end, rates, program.family, account.market,
                               scale * share):
                    engaged.add(person_id)
            # a distributor's FAE found the design and referred it, often registering the deal
            if (member == "lead_engineer" and account.record.region == "APAC" and "evaluation" in starts
                    and self.chance(0.25)):
                self.do(person, "referral", self.between(starts["evaluation"], program.ends), program.family,
                        account.market)
                person.distributor_registered = self.chance(0.5)
        if stalled is None and "purchase" in starts:
            self._opportunity(account, program, engaged)

    def _committee(self, program: Program, account: _Account) -> None:
        by_role: dict[str, list[_Person]] = defaultdict(list)
        for person in account.people:
            by_role[person.role].append(person)
        engineers = by_role["engineering"]
        if not engineers:  # someone still evaluates: whoever reads the datasheets
            engineers = by_role["product_management"] or by_role["unknown"] or account.people[:1]
        if not engineers:
            return
        order = self.r.sample(range(len(engineers)), len(engineers))
        count = min(len(engineers), 1 + int(self.rng.poisson(0.8)))
        for k, i in enumerate(order[:count]):
            program.committee[engineers[int(i)].id] = "lead_engineer" if k == 0 else "engineering"
        for role, p in (("product_management", 0.7), ("quality", 0.6), ("procurement", 0.9), ("executive", 0.4)):
            if by_role[role] and self.chance(p):
                program.committee.setdefault(self.pick(by_role[role]).id, role)

    def _opportunity(self, account: _Account, program: Program, engaged: set[str]) -> None:
        created = program.phase_starts["purchase"] + timedelta(days=float(self.r.uniform(3, 30)))
        if created > self.now:
            return
        oid = f"s{self.seed}-opp{len(self.opportunities):04d}"
        program.opportunity_id = oid
        members = [p for p in program.committee if p in engaged or program.committee[p] == "procurement"]
        self._add_opportunity(oid, account, created, members, program.committee,
                              f"{account.record.name} — {FAMILY_NAMES[program.family]} design-in")

    def _add_opportunity(self, oid: str, account: _Account, created: datetime, members: list[str],
                         roles: dict[str, str], name: str) -> None:
        close = (created + timedelta(days=float(self.r.uniform(45, 160)))).date()
        closed = close < self.now.date()
        won = closed and self.chance(0.6)
        stage = ("Closed Won" if won else "Closed Lost") if closed else self.pick(
            ("Qualification", "Technical Evaluation", "Proposal"))
        self.opportunities.append(Opportunity(
            id=oid, account_id=account.record.id, name=name, stage=stage, is_closed=closed, is_won=won,
            amount=float(round(self.r.lognormvariate(11.5, 1.0), -2)), close_date=close, created_at=created,
            owner_id=account.record.owner_id, contact_ids=tuple(members),
            salesforce_id=f"006{oid[-8:]}"))
        for k, person_id in enumerate(members):
            self.contact_roles.append(ContactRole(id=f"{oid}-ocr{k}", opportunity_id=oid, person_id=person_id,
                                                  role=CONTACT_ROLE.get(roles.get(person_id, ""), "Other"),
                                                  is_primary=roles.get(person_id) == "lead_engineer"))

    def repeat_orders(self) -> None:
        """Customers order again without anything online announcing it."""
        years = HISTORY_DAYS / 365.0
        for account in self.accounts:
            if account.kind != "regular" or account.record.customer_type is not CustomerType.CUSTOMER:
                continue
            for _ in range(int(self.rng.poisson(0.25 * years))):
                buyers = [p.id for p in account.people if p.role == "procurement"][:1]
                oid = f"s{self.seed}-opp{len(self.opportunities):04d}"
                self._add_opportunity(oid, account, self.between(self.start, self.now), buyers,
                                      dict.fromkeys(buyers, "procurement"), f"{account.record.name} — repeat order")

    def browse(self) -> None:
        """Everyone outside programs: background reading, researchers, channel, competitors, academics."""
        market_of = {a.record.id: a.market for a in self.accounts}
        whole = (self.start, self.now)
        for person in self.people:
            market = market_of.get(person.account_id or "", self.pick(MARKETS[:7]))
            families = market.families
            self.engage(person, *whole, dict(company_page=person.curiosity, product_page=person.curiosity * 0.6,
                                             app_page=person.curiosity * 0.4, broad_webinar=0.006, booth=0.02),
                        families, market)
            if self.chance(0.12):
                self.do(person, "newsletter", self.between(*whole), families[0], market)
            role = person.role
            if role in ("engineering", "product_management", "unknown") and person.account_id and self.chance(0.15):
                for _ in range(1 + int(self.chance(0.3))):  # researching, with no program behind it
                    lo = self.between(self.start - timedelta(days=60), self.now)
                    hi = lo + timedelta(days=float(self.r.uniform(20, 90)))
                    rates = dict(RESEARCHER)
                    if self.chance(0.3):
                        rates.update(ref_design=0.1, long_read=0.2)
                    if self.chance(0.08):
                        rates.update(once_samples=0.6, once_evk=0.3)
                    self.engage(person, lo, hi, rates, self.pick(families), market, 0.7)
            elif role == "channel_fae":
                self.engage(person, *whole, CHANNEL_FAE, FAMILIES, self.pick(MARKETS[:7]))
            elif role == "channel_staff":
                self.engage(person, *whole, CHANNEL_STAFF, FAMILIES, self.pick(MARKETS[:7]))
            elif market.segment == "none" and person.account_id in self._competitors:
                self.engage(person, *whole, COMPETITOR, FAMILIES, self.pick(MARKETS[:7]))
            elif role in ("student", "lab_engineer"):
                self.engage(person, *whole, STUDENT, FAMILIES, self.pick(MARKETS[:7]))
            elif role == "academic":
                self.engage(person, *whole, PROFESSOR, FAMILIES, self.pick(MARKETS[:7]))
            elif role == "hobbyist":
                self.engage(person, *whole, HOBBYIST, FAMILIES, self.pick(MARKETS[:7]))

    def email(self) -> None:
        """A campaign email every three weeks to everyone subscribed: people open and click some; privacy
        proxies open every one on delivery; security gateways open it and follow every link within seconds."""
        scanned = {p.id for a in self.accounts if a.scanner for p in a.people}
        self.behind_scanner = scanned
        active_phase: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
        for program in self.programs:
            if not program.offline:
                for person_id in program.committee:
                    active_phase[person_id].append((program.phase_starts["research"], program.ends))
        unsubscribed: set[str] = set()
        bounced: set[str] = set()
        send = self.start + timedelta(days=3, hours=14)
        number = 0
        while send <= self.now:
            number += 1
            newsletter = number % 2 == 1
            market = MARKETS[number % 7]
            if newsletter:
                name = f"Voltaris engineering newsletter {send:%B %Y}"
            else:
                name = f"Invitation: {market.webinar} webinar"
            cid = self.campaign(f"email {number}", name, "Email", send.date(), None)
            links = [f"{SITE}/products/{self.pick(FAMILIES)}", f"{SITE}/applications/{market.page}",
                     f"{SITE}/blog/{_slug(name)}"] + ([f"{SITE}/events/{_slug(name)}"] if not newsletter else [])
            for person in self.people:
                if not person.subscribed or person.id in unsubscribed or person.id in bounced:
                    continue
                if person.left_at is not None and person.left_at <= send:
                    bounced.add(person.id)
                    self.raw.append((person.id, ActivityKind.HARD_BOUNCE, send + timedelta(seconds=40), None, None,
                                     cid, None, "email", False))
                    continue
                delivered = send + timedelta(seconds=float(self.r.uniform(0, 900)))
                if person.id in scanned:
                    self.add(person, ActivityKind.EMAIL_OPEN, delivered + timedelta(seconds=float(
                        self.r.uniform(1, 8))), campaign=cid, source="email", machine=True)
                    for link in links:
                        self.add(person, ActivityKind.EMAIL_CLICK, delivered + timedelta(seconds=float(
                            self.r.uniform(2, 25))), url=link, campaign=cid, source="email", machine=True)
                if person.proxy:
                    self.add(person, ActivityKind.EMAIL_OPEN, delivered + timedelta(seconds=float(
                        self.r.uniform(20, 600))), campaign=cid, source="email", machine=True)
                active = any(lo <= send <= hi for lo, hi in active_phase.get(person.id, ()))
                if self.chance(0.32 if active else 0.16):
                    opened = delivered + timedelta(hours=float(self.r.lognormvariate(1.2, 1.3)))
                    if not person.proxy:
                        self.add(person, ActivityKind.EMAIL_OPEN, opened, campaign=cid, source="email")
                    if self.chance(0.3 if active else 0.12):
                        self.add(person, ActivityKind.EMAIL_CLICK,
                                 opened + timedelta(seconds=float(self.r.uniform(10, 900))),
                                 url=self.pick(links), campaign=cid, source="email")
                    if self.chance(0.006):
                        unsubscribed.add(person.id)
                        self.add(person, ActivityKind.UNSUBSCRIBE, opened + timedelta(minutes=2), campaign=cid,
                                 source="email")
            send += timedelta(days=EMAIL_EVERY_DAYS)
        self.unsubscribed, self.bounced = unsubscribed, bounced

    # ---- records -----------------------------------------------------------------------------------
    def build(self) -> World:
        self.build_population()
        self.finish_special_people()
        self._by_id = {p.id: p for p in self.people}
        self._by_account = {a.record.id: a for a in self.accounts}
        self._competitors = {a.record.id for a in self.accounts if a.kind == "competitor"}
        self.run_programs()
        self.repeat_orders()
        self.browse()
        self.email()

        self.raw.sort(key=lambda r: (r[2], r[0], r[1].value, r[3] or ""))
        first_seen: dict[str, datetime] = {}
        activities = []
        machine = []
        names = {c.id: c.name for c in self.campaigns.values()}
        for n, (person_id, kind, moment, url, form, cid, seconds, source, is_machine) in enumerate(self.raw):
            aid = f"s{self.seed}-a{n:06d}"
            activities.append(Activity(id=aid, person_id=person_id, kind=kind, occurred_at=moment, url=url,
                                       form_name=form, campaign_id=cid, campaign_name=names.get(cid or ""),
                                       duration_seconds=seconds, source=source))
            first_seen.setdefault(person_id, moment)
            if is_machine:
                machine.append(aid)

        people = []
        domain_only: dict[str, str] = {}
        local_titles: dict[str, tuple[str, str]] = {}
        for p in self.people:
            created = p.created_at
            if p.id in first_seen and (created is None or created > first_seen[p.id]):
                created = first_seen[p.id] - timedelta(hours=float(self.r.uniform(0.1, 48)))
            account = p.account_id if p.crm_account else None
            if p.account_id and not p.crm_account:
                domain_only[p.id] = p.account_id
            if p.local_kind:
                local_titles[p.id] = (p.language, p.local_kind)
            people.append(Person(
                id=p.id, email=p.email, first_name=p.first, last_name=p.last, title=p.title,
                department=p.department, country=p.country, region=p.region, account_id=account,
                company_name=None if account or not p.account_id or self.chance(0.5)
                else self._by_account[p.account_id].record.name, lead_source=p.lead_source,
                unsubscribed=p.id in self.unsubscribed, bounced=p.id in self.bounced,
                partner_owned=p.partner_owned, distributor_registered=p.distributor_registered,
                salesforce_contact_id=f"003{p.id[-9:]}" if account else None,
                salesforce_lead_id=None if account else f"00Q{p.id[-9:]}",
                created_at=created, updated_at=self.now - timedelta(days=1),
            ))
        by_account = self._by_account
        disqualified = frozenset(
            p.id for p in self.people
            if p.role in ("student", "academic") or p.partner_owned
            or (p.account_id and by_account[p.account_id].kind == "competitor"))
        truth = Truth(
            programs=tuple(self.programs),
            role_of={p.id: p.role for p in self.people},
            channel_engineers=frozenset(p.id for p in self.people if p.role == "channel_fae"),
            disqualified=disqualified,
            behind_scanner=frozenset(self.behind_scanner),
            machine_activities=frozenset(machine),
            domain_only=domain_only,
            local_titles=local_titles,
        )
        dataset = Dataset(accounts=[a.record for a in self.accounts], people=people, activities=activities,
                          opportunities=self.opportunities, campaigns=list(self.campaigns.values()),
                          owners=self.owners, contact_roles=self.contact_roles)
        return World(seed=self.seed, now=self.now, dataset=dataset, truth=truth)


def generate(seed: int, people: int = 6000, now: datetime = NOW) -> World:
    """A CRM of about `people` people as it stands at `now`, with two years of activity, drawn from the
    latent buying-cycle model above; the same seed gives the same world."""
    return _Generator(seed, people, now).build()
