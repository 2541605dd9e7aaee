"""Signals mean what they say: a disqualified person's score is held at the bottom of the tier they
drop to, with the disqualifier first and the lines still adding up; accounts that do not buy for
their own designs (distributors, partners, competitors, universities) disqualify their people; and
job titles in German, French, Japanese, Korean and Chinese find their role and seniority.

Scored with the shipped playbooks on small hand-built datasets (issue #21, part A).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache
from itertools import count
from pathlib import Path

import pytest
import yaml

from leadloop.crm.dataset import Dataset
from leadloop.crm.records import Account, Activity, Person
from leadloop.playbook.compiled import classify_title
from leadloop.playbook.docs import playbook_markdown
from leadloop.playbook.load import load_playbook, parse_playbook
from leadloop.playbook.model import Playbook, PlaybookError
from leadloop.playbook.personas import normalize_title
from leadloop.playbook.wording import signed
from leadloop.scoring.engine import ScoringResult, disqualified_ceiling, score_dataset
from leadloop.scoring.scorecard import ReasonKind, ScoreCard
from leadloop.store.writeplan import desired_person_fields

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PLAYBOOKS = Path(__file__).resolve().parents[2] / "playbooks"
SITE = "https://www.voltaris-semi.com"
_ids = count()


@cache
def shipped(name: str) -> Playbook:
    return load_playbook(PLAYBOOKS / f"{name}.yaml")


def changed(name: str, edit) -> Playbook:
    """A shipped playbook with its YAML data changed by `edit(data)`."""
    data = yaml.safe_load((PLAYBOOKS / f"{name}.yaml").read_text(encoding="utf-8"))
    edit(data)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    return parse_playbook(text, source=f"{name} (changed)")


def inverter_maker(account_id: str = "acc-1", **fields) -> Account:
    """An automotive account that fits the automotive power profile well."""
    values = dict(name="Voltra Automotive", industry="Automotive", segment="automotive power",
                  application="EV traction inverter", device_type="SiC MOSFET", process="SiC", region="EMEA",
                  country="DE", employees=12_000, domain="voltra-auto.de")
    values.update(fields)
    return Account(id=account_id, **values)


def engineer(person_id: str = "p1", account_id: str | None = "acc-1", **fields) -> Person:
    values = dict(email=f"{person_id}@voltra-auto.de", first_name="Anna", last_name="Keller",
                  title="Senior Power Electronics Engineer", country="DE")
    values.update(fields)
    return Person(id=person_id, account_id=account_id, **values)


def act(person_id: str, kind: str, days_ago: float, **fields) -> Activity:
    return Activity(id=f"a{next(_ids)}", person_id=person_id, kind=kind,
                    occurred_at=NOW - timedelta(days=days_ago), **fields)


def evaluating(person_id: str = "p1") -> list[Activity]:
    """What an engineer in a live evaluation does: kit, samples, reference design, many visits."""
    acts = [
        act(person_id, "eval_kit_request", 3, url=f"{SITE}/products/voltedge-sic/evaluation-kit"),
        act(person_id, "sample_request", 5, url=f"{SITE}/products/voltedge-sic/sample"),
        act(person_id, "asset_download", 6, url=f"{SITE}/products/voltedge-sic/reference-design"),
        act(person_id, "asset_download", 8, url=f"{SITE}/products/voltedge-sic/datasheet"),
    ]
    acts += [act(person_id, "page_view", 1 + k, url=f"{SITE}/products/voltedge-sic", duration_seconds=240)
             for k in range(8)]
    return acts


def scored(people, activities=(), accounts=(), playbook: Playbook | None = None) -> ScoringResult:
    dataset = Dataset(accounts=list(accounts), people=list(people), activities=list(activities))
    return score_dataset(playbook or shipped("semiconductor"), dataset, NOW)


def one(people, activities=(), accounts=(), playbook: Playbook | None = None, person_id="p1") -> ScoreCard:
    return scored(people, activities, accounts, playbook).cards[person_id]


def adds_up(card: ScoreCard) -> bool:
    # fit, intent and the score are each rounded to one decimal before they are blended and written
    return abs(sum(r.contribution for r in card.reasons) - card.score) <= 0.1


# -- the disqualified ceiling -------------------------------------------------------------------


def test_a_partner_owned_engineer_in_a_live_evaluation_is_held_at_the_bottom_of_the_lowest_tier():
    playbook = shipped("semiconductor")
    free = one([engineer()], evaluating(), [inverter_maker()])
    owned = one([engineer(partner_owned=True)], evaluating(), [inverter_maker()])
    assert free.disqualified is None and free.score > 40  # the evaluation alone would make them a top lead
    assert owned.disqualified == "partner_owned"
    assert owned.score == disqualified_ceiling(playbook) == 0
    assert owned.tier == playbook.lowest_tier and owned.escalation is None
    # fit and intent still say who they are and what they did
    assert (owned.fit, owned.intent, owned.account_fit) == (free.fit, free.intent, free.account_fit)
    head = owned.reasons[0]
    assert head.kind == ReasonKind.DISQUALIFIER and head.rule == "partner_owned"
    # it takes off everything the other lines add (their own intent no longer counts at the account)
    held = sum(r.contribution for r in owned.reasons[1:])
    assert held > 30 and head.contribution == pytest.approx(-held, abs=0.1)
    assert head.text.startswith(f"{signed(head.contribution)} disqualified: is owned by a channel partner")
    assert head.text.endswith("(score held at 0)")
    assert adds_up(owned)


def test_the_written_lines_of_a_held_score_add_up_to_it_and_start_with_the_disqualifier():
    owned = one([engineer(partner_owned=True)], evaluating(), [inverter_maker()])
    written = desired_person_fields(owned)
    assert written["score"] == 0
    first, *rest = written["reasons"].split("; ")
    assert first.startswith("-") and "disqualified: is owned by a channel partner" in first
    parts = [part.removeprefix("other signals ") for part in [first, *rest]]
    numbers = [float(part.split(" ")[0].replace("±", "")) for part in parts]
    assert sum(numbers) == 0 and any(n > 0 for n in numbers)  # what they did is still there, and cancelled


def test_a_disqualified_person_already_at_the_floor_keeps_a_plain_disqualifier_line():
    student = one([engineer(title="PhD student", partner_owned=False, email="x@gmail.com", account_id=None)])
    assert student.disqualified == "student" and student.score == 0
    head = student.reasons[0]
    assert head.contribution == 0 and head.text == "disqualified: is a student"
    assert adds_up(student)


def test_when_the_disqualified_tier_has_a_minimum_score_the_score_is_held_at_that_minimum():
    def nurture_for_the_disqualified(data):
        data["disqualified_tier"] = "Nurture"

    playbook = changed("semiconductor", nurture_for_the_disqualified)
    nurture = next(t for t in playbook.tiers if t.name == "Nurture")
    assert disqualified_ceiling(playbook) == nurture.min_score == 25
    result = scored([engineer("p1", partner_owned=True), engineer("p2", partner_owned=True)],
                    [*evaluating("p1"), act("p2", "page_view", 2, url=f"{SITE}/products/voltedge-sic")],
                    [inverter_maker()], playbook)
    busy, idle = result.cards["p1"], result.cards["p2"]
    assert busy.score == 25 and busy.tier == "Nurture" and busy.reasons[0].contribution < 0
    assert 0 < idle.score < 25 and idle.tier == "Nurture"  # below the ceiling: nothing to take off
    assert idle.reasons[0].contribution == 0
    assert adds_up(busy) and adds_up(idle)


def test_account_roll_ups_do_not_count_the_disqualified():
    free = scored([engineer()], evaluating(), [inverter_maker()]).accounts["acc-1"]
    owned = scored([engineer(partner_owned=True)], evaluating(), [inverter_maker()]).accounts["acc-1"]
    assert free.intent > 0 and free.engaged_people == 1
    assert owned.intent == 0 and owned.engaged_people == 0


# -- non-buying account types -------------------------------------------------------------------


@pytest.mark.parametrize(("account", "email", "kind", "words"), [
    (inverter_maker(customer_type="distributor", name="Arrowpoint Components"), "p1@voltra-auto.de",
     "distributor", "works at a distributor"),
    (inverter_maker(customer_type="partner", name="Signal Channel Partners"), "p1@voltra-auto.de",
     "partner", "works at a channel partner"),
    (inverter_maker(customer_type="competitor", industry="Power Electronics"), "p1@voltra-auto.de",
     "competitor", "works at a competitor"),
    (inverter_maker(industry="Higher Education", name="Helios State University"), "p1@voltra-auto.de",
     "university", "works at a university"),
    (inverter_maker(), "anna.keller@tu-example.edu", "university", "works at a university"),
    (inverter_maker(), "a.keller@imperial-example.ac.uk", "university", "works at a university"),
])
def test_people_at_non_buying_accounts_are_disqualified_with_the_type_named(account, email, kind, words):
    playbook = shipped("semiconductor")
    card = one([engineer(email=email)], evaluating(), [account])
    assert card.disqualified == f"non_buying:{kind}"
    assert card.score == 0 and card.tier == playbook.lowest_tier and card.escalation is None
    head = card.reasons[0]
    assert head.kind == ReasonKind.DISQUALIFIER and words in head.text and head.contribution < -20
    assert head.why  # the playbook's reason is shown to reps
    assert adds_up(card)


def test_customers_and_prospects_are_buying_accounts():
    for customer_type in ("customer", "prospect", "other"):
        card = one([engineer()], evaluating(), [inverter_maker(customer_type=customer_type)])
        assert card.disqualified is None and card.score > 40, customer_type


def test_an_account_type_the_playbook_does_not_list_is_not_disqualified():
    def partners_buy(data):
        data["non_buying"]["accounts"] = [a for a in data["non_buying"]["accounts"] if a["type"] != "partner"]

    playbook = changed("semiconductor", partners_buy)
    partner = inverter_maker(customer_type="partner")
    assert one([engineer()], evaluating(), [partner], playbook).disqualified is None
    assert one([engineer()], evaluating(), [partner]).disqualified == "non_buying:partner"


def test_both_shipped_playbooks_mark_all_four_types_as_non_buying():
    for name in ("semiconductor", "industrial"):
        playbook = shipped(name)
        assert playbook.non_buying is not None
        assert sorted(a.type for a in playbook.non_buying.accounts) == [
            "competitor", "distributor", "partner", "university"], name
        assert all(len(a.why) > 20 for a in playbook.non_buying.accounts)
        docs = playbook_markdown(playbook)
        assert "non-buying `distributor`: account.customer_type is distributor" in docs
        assert "account.industry is one of Higher Education" in docs


def test_an_unknown_non_buying_type_names_the_file_the_key_and_the_allowed_types(tmp_path):
    text = (PLAYBOOKS / "semiconductor.yaml").read_text(encoding="utf-8")
    assert text.count("    - type: distributor\n") == 1
    path = tmp_path / "typo.yaml"
    path.write_text(text.replace("    - type: distributor\n", "    - type: distributer\n"), encoding="utf-8")
    with pytest.raises(PlaybookError) as caught:
        load_playbook(path)
    assert caught.value.source == str(path)
    [problem] = caught.value.problems
    assert problem.startswith("non_buying.accounts[0].type: unknown non-buying account type 'distributer'")
    assert "did you mean 'distributor'?" in problem
    assert "allowed types: distributor, partner, competitor, university" in problem
    assert "(line " in problem
    assert str(path) in str(caught.value)


def test_a_non_buying_type_listed_twice_is_refused():
    def twice(data):
        data["non_buying"]["accounts"].append({"type": "partner", "why": "Listed a second time by mistake."})

    with pytest.raises(PlaybookError) as caught:
        changed("semiconductor", twice)
    assert any("'partner' is listed twice" in p for p in caught.value.problems)


def test_in_the_sandbox_world_no_disqualified_person_scores_above_the_floor_and_none_is_in_the_top_decile():
    from leadloop.crm.dataset import dataset_from_dict
    from leadloop.sandbox.export import world_to_dataset
    from leadloop.sandbox.world import generate_world

    dataset = dataset_from_dict(world_to_dataset(generate_world("small", 7, NOW)))
    result = score_dataset(shipped("semiconductor"), dataset, NOW)
    accounts = {a.id: a for a in dataset.accounts}
    cards = list(result.cards.values())
    top = sorted(cards, key=lambda c: -c.score)[: len(cards) // 10]
    assert not [c for c in top if c.disqualified]
    non_buyers = [c for c in cards if c.account_id in accounts
                  and accounts[c.account_id].customer_type in ("distributor", "partner", "competitor")]
    assert non_buyers and all(c.disqualified and c.score == 0 for c in non_buyers)
    assert all(c.score == 0 for c in cards if c.disqualified)
    assert all(adds_up(c) for c in cards if c.disqualified)


# -- titles in other languages ------------------------------------------------------------------

TITLES = [
    # German
    ("Entwicklungsingenieur", "engineering", "individual_contributor"),
    ("Hardware-Ingenieur", "engineering", "individual_contributor"),
    ("Einkäufer", "procurement", "individual_contributor"),
    ("Strategischer Einkäufer", "procurement", "individual_contributor"),
    ("Einkaufsleiter", "procurement", "director"),
    ("Leiter Entwicklung", "engineering", "director"),
    ("Teamleiter Einkauf", "procurement", "manager"),
    ("Geschäftsführer", "executive", "executive"),
    ("Produktmanagerin", "product_management", "manager"),
    ("Direktor Technik", "engineering", "director"),
    # French
    ("ingénieur", "engineering", "individual_contributor"),
    ("Ingénieur électronique senior", "engineering", "senior"),
    ("responsable achats", "procurement", "manager"),
    ("acheteur", "procurement", "individual_contributor"),
    ("directeur", "other", "director"),
    ("Directeur général", "executive", "executive"),
    # Japanese
    ("ハードウェアエンジニア", "engineering", "individual_contributor"),
    ("設計技術者", "engineering", "individual_contributor"),
    ("購買担当", "procurement", "individual_contributor"),
    ("部長", "other", "director"),
    ("課長", "other", "manager"),
    ("開発部長", "engineering", "director"),
    ("事業開発", "other", "individual_contributor"),  # business development is not engineering
    ("品質保証部 課長", "quality", "manager"),
    ("ｴﾝｼﾞﾆｱ", "engineering", "individual_contributor"),  # half-width katakana, as old systems store it
    # Korean
    ("하드웨어 엔지니어", "engineering", "individual_contributor"),
    ("구매 담당", "procurement", "individual_contributor"),
    ("팀장", "other", "manager"),
    ("대표이사", "executive", "executive"),
    ("개발 이사", "engineering", "director"),
    ("사업개발 매니저", "other", "manager"),  # business development is not engineering
    # Chinese
    ("硬件工程师", "engineering", "individual_contributor"),
    ("采购经理", "procurement", "manager"),
    ("总监", "other", "director"),
    ("经理", "other", "manager"),
    ("总经理", "executive", "executive"),
    ("研发总监", "engineering", "director"),
    ("產品經理", "product_management", "manager"),
    ("工程总监", "engineering", "director"),
    # English, as before
    ("Sr. HW Eng.", "engineering", "senior"),
    ("ＨＷ　Ｅｎｇｉｎｅｅｒ", "engineering", "individual_contributor"),  # full-width
    ("VP Supply Chain", "procurement", "executive"),
]


@pytest.mark.parametrize("name", ["semiconductor", "industrial"])
def test_titles_in_other_languages_find_their_role_and_seniority(name):
    playbook = shipped(name)
    wrong = []
    for title, role, seniority in TITLES:
        match = classify_title(playbook, title)
        if (match.role, match.seniority, match.matched) != (role, seniority, role != "other"):
            wrong.append((title, match))
    assert not wrong


def test_a_korean_engineer_is_scored_as_an_engineer_not_as_other():
    korean = one([engineer(title="하드웨어 엔지니어")], [], [inverter_maker()])
    english = one([engineer(title="Hardware Engineer")], [], [inverter_maker()])
    assert korean.role == english.role == "engineering"
    assert korean.contact_fit == english.contact_fit
    assert "role: engineering (하드웨어 엔지니어)" in [r.says for r in korean.reasons]


def test_titles_are_normalized_unicode_safely():
    assert normalize_title("Principal Engineer – Power") == "principal engineer power"
    assert normalize_title("Sr. HW Eng.") == "sr hw eng"
    assert normalize_title("Einkäufer/Beschaffung") == "einkäufer beschaffung"
    assert normalize_title("ＨＷ　Ｅｎｇｉｎｅｅｒ") == "hw engineer"  # NFKC: full-width letters and space
    assert normalize_title("ﾊｰﾄﾞｳｪｱ・ｴﾝｼﾞﾆｱ") == "ハードウェア エンジニア"  # half-width kana, middle dot
    assert normalize_title("STRAßENBAU-INGENIEUR") == "strassenbau ingenieur"  # casefold, not lower
    assert normalize_title("  하드웨어   엔지니어 ") == "하드웨어 엔지니어"


def test_a_word_boundary_next_to_a_letter_beyond_ascii_is_refused_with_what_to_do():
    def boundary_before_e_acute(data):
        data["personas"]["roles"][0]["patterns"].append(r"\bétudiant")

    with pytest.raises(PlaybookError) as caught:
        changed("semiconductor", boundary_before_e_acute)
    [problem] = caught.value.problems
    assert problem.startswith("personas.roles[0].patterns[")
    assert "\\b next to 'é' finds no word boundary" in problem and "leave that \\b out" in problem
