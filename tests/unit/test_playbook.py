"""The playbook loads from YAML, and every problem is reported with its YAML path."""

import re
from pathlib import Path

import pytest
from test_scoring_fixture import NORTHWIND_YAML
from test_scoring_support import NOW, PLAYBOOKS, SITE, industrial, semiconductor

from leadloop.crm.records import Activity
from leadloop.playbook.compiled import classify_activity, classify_title, compile_playbook
from leadloop.playbook.load import load_playbook, parse_playbook
from leadloop.playbook.model import PlaybookError

SEMI_TEXT = NORTHWIND_YAML


def problems_of(text: str) -> list[str]:
    with pytest.raises(PlaybookError) as info:
        parse_playbook(text)
    return info.value.problems


def test_both_example_playbooks_load():
    bundled = load_playbook(PLAYBOOKS / "semiconductor.yaml")
    assert bundled.name and industrial().name and semiconductor().name
    assert bundled.model_version != industrial().model_version


def test_a_point_value_that_is_not_a_number_is_reported_with_its_yaml_path():
    broken = SEMI_TEXT.replace("      points: 28\n", "      points: lots\n", 1)
    (problem,) = problems_of(broken)
    assert problem.startswith("intent.rules[1].points: must be a number")
    assert "(line " in problem


def test_a_misspelled_key_is_reported_with_a_suggestion():
    broken = SEMI_TEXT.replace("default_half_life_days:", "default_halflife_days:", 1)
    (problem,) = problems_of(broken)
    assert problem.startswith(
        "intent.default_halflife_days: unknown key (did you mean 'default_half_life_days'?)"
    )


def test_yaml_syntax_errors_carry_the_line_number():
    (problem,) = problems_of("name: [unclosed\nstages: [learn]\n")
    assert problem.startswith("(YAML) line ")


def test_duplicate_keys_are_refused_instead_of_silently_overwritten():
    (problem,) = problems_of("name: a\nname: b\n")
    assert "duplicate key 'name' (first on line 1)" in problem


def test_cross_references_are_checked_with_paths():
    broken = (
        SEMI_TEXT.replace("asset_types: [pricing_page]", "asset_types: [pricing_pag]", 1)
        .replace("    group: events\n", "    group: event\n", 1)
        .replace("field: account.region", "field: account.regoin", 1)
    )
    problems = problems_of(broken)
    assert any(
        p.startswith(
            "intent.rules[11].asset_types: unknown asset type 'pricing_pag' (did you mean 'pricing_page'?)"
        )
        for p in problems
    )
    assert any(p.startswith("intent.rules[5].group: no intent group 'event'") for p in problems)
    assert any(p.startswith("profiles[0].fit[4].field: unknown field 'account.regoin'") for p in problems)


def test_an_invalid_regex_is_reported_where_it_is():
    broken = SEMI_TEXT.replace("urls: ['/docs/ds/pmic-?77']", "urls: ['/docs/ds/(pmic']", 1)
    (problem,) = problems_of(broken)
    assert problem.startswith("assets[6].match.urls: not a valid regular expression")


def test_blend_weights_must_add_up_to_one():
    broken = SEMI_TEXT.replace("  contact_intent: 0.40", "  contact_intent: 0.50", 1)
    assert any(p.startswith("blend: the four weights must add up to 1") for p in problems_of(broken))


def test_disqualified_people_cannot_be_sent_to_the_top_tier():
    broken = SEMI_TEXT.replace("disqualified_tier: Unqualified for now", "disqualified_tier: Sales priority")
    assert any(
        p.startswith("disqualified_tier: disqualified people can never be in the top tier")
        for p in problems_of(broken)
    )


def test_a_missing_file_is_a_playbook_error_not_a_crash(tmp_path: Path):
    with pytest.raises(PlaybookError) as info:
        load_playbook(tmp_path / "nope.yaml")
    assert "cannot read the file" in info.value.problems[0]


def test_model_version_ignores_comments_and_formatting_but_not_points():
    reformatted = "# reviewed again\n" + SEMI_TEXT.replace("name: Northwind", "name:   Northwind", 1)
    assert parse_playbook(reformatted).model_version == semiconductor().model_version
    changed = SEMI_TEXT.replace("      points: 28\n", "      points: 29\n", 1)
    assert parse_playbook(changed).model_version != semiconductor().model_version


@pytest.mark.parametrize(
    ("title", "role", "seniority"),
    [
        ("Sr. HW Eng.", "engineering", "senior"),
        ("Principal Engineer – Power", "engineering", "senior"),
        ("Buyer II", "procurement", "individual_contributor"),
        ("VP Supply Chain", "procurement", "executive"),
        ("VP Engineering", "engineering", "executive"),
        ("Supplier Quality Engineer", "quality", "individual_contributor"),
        ("Product Line Manager", "product_management", "manager"),
        ("CTO", "executive", "executive"),
        ("PhD Student, Power Electronics", "student", "individual_contributor"),
    ],
)
def test_messy_titles_map_to_a_role_and_seniority(title, role, seniority):
    assert classify_title(semiconductor(), title) == (role, seniority, True)


def test_unknown_titles_are_flagged_as_unmatched():
    assert classify_title(semiconductor(), "Wizard of Light Bulb Moments") == (
        "other",
        "individual_contributor",
        False,
    )
    assert classify_title(semiconductor(), None).matched is False


def _activity(**fields) -> Activity:
    return Activity(id="x", person_id="p", occurred_at=NOW, **fields)


def test_assets_are_recognized_by_url_form_or_campaign():
    pb = semiconductor()
    by_url = classify_activity(
        pb, _activity(kind="asset_download", url=f"{SITE}/docs/ds/pmic-77.pdf?utm_id=4")
    )
    by_form = classify_activity(pb, _activity(kind="eval_kit_request", form_name="EVK-7710 request"))
    by_campaign = classify_activity(
        pb, _activity(kind="webinar_attended", campaign_name="SiC gate-drive design pitfalls")
    )
    assert (by_url.id, by_url.type, by_url.stage) == ("pmic77_datasheet", "datasheet", "evaluate")
    assert (by_form.type, by_form.product_family, by_form.stage) == ("evaluation_kit", "PMIC-77", "validate")
    assert (by_campaign.type, by_campaign.segment) == ("webinar", "industrial")


def test_activities_no_asset_rule_understands_classify_as_none():
    assert classify_activity(semiconductor(), _activity(kind="page_view", url=f"{SITE}/careers")) is None


def test_a_compiled_playbook_pickles_and_recompiles_after():
    import pickle

    playbook = parse_playbook(SEMI_TEXT)
    assert compile_playbook(playbook) is compile_playbook(playbook)  # compiled once, kept
    copy = pickle.loads(pickle.dumps(playbook))
    assert copy == playbook and classify_title(copy, "Buyer II").role == "procurement"


def test_the_model_version_a_rep_reads_names_the_playbook_and_fits_the_crm_field():
    shipped = load_playbook("semiconductor")  # by its shipped name
    assert re.fullmatch(r"voltaris-semiconductor-[0-9a-f]{7}", shipped.model_version), shipped.model_version
    assert load_playbook("industrial").model_version.startswith("keystone-motion-drives-")
    renamed = SEMI_TEXT.replace("name: Northwind", "name: Ünïcode Ⅻ " + "word " * 30, 1)
    version = parse_playbook(renamed).model_version
    assert len(version) <= 32 and version.startswith("unicode-xii-word-"), version
    korean = SEMI_TEXT.replace("Northwind Semiconductor — power and gate drivers", "하드웨어 엔지니어", 1)
    assert parse_playbook(korean).model_version.startswith("playbook-")
