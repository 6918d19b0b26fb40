"""Owner screening: one row per rule, then chat transcripts through the dialog engine.

Rules (PRODUCT §3.1): §貳.一 registration and employees, §叁 輔導對象 (over 9 only in 數位共融),
§叁 限制條件 1 (註3), 註4, §叁 限制條件 2, §叁 限制條件 3 with §捌.四.(三).1.
"""
from __future__ import annotations

from datetime import datetime

from pathlib import Path

import pytest

from dialogs.edition import editions_dir, load_edition
from dialogs.eligibility import (ELIGIBLE, NEEDS_REVIEW, NOT_ELIGIBLE, employee_count, registration, screen,
                                 screening_dialog, settled_not_eligible, yes_no)
from dialogs.engine import NOT_SURE, Context, Conversation, Refused
from dialogs.i18n import use_locale
from dialogs.messages import Link, Text

E112 = load_edition(editions_dir() / "112" / "edition.yaml")
E113 = load_edition(Path(__file__).resolve().parent / "data" / "editions" / "113" / "edition.yaml")

GOOD = {
    "registration": "company",
    "employees": 5,
    "program_cloud_generation": "no",
    "program_store_subsidy": "no",
    "agency_support": "no",
    "other_sme_program": "no",
    "existing_customer": "no",
}


@pytest.fixture(autouse=True)
def english():
    with use_locale("en"):
        yield


def answers(**changes):
    result = dict(GOOD)
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


# -- one row per rule -------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, outcome, citation", [
    pytest.param({}, ELIGIBLE, "§貳.一", id="§貳.一 company registration, 5 employees"),
    pytest.param({"registration": "commercial"}, ELIGIBLE, "§貳.一", id="§貳.一 commercial registration"),
    pytest.param({"registration": "limited_partnership"}, ELIGIBLE, "§貳.一", id="§貳.一 limited partnership"),
    pytest.param({"registration": "tax_only"}, ELIGIBLE, "§貳.一", id="§貳.一 tax registration only"),
    pytest.param({"registration": "none"}, NOT_ELIGIBLE, "§貳.一", id="§貳.一 no registration at all"),
    pytest.param({"employees": 9}, ELIGIBLE, "§貳.一", id="§貳.一 9 employees"),
    pytest.param({"employees": 0}, ELIGIBLE, "§貳.一", id="§貳.一 no employees"),
    pytest.param({"employees": "within_limit"}, ELIGIBLE, "§貳.一", id="§貳.一 tapped 9 or fewer"),
    pytest.param({"employees": 10, "case_type": "popularization"}, NOT_ELIGIBLE, "數位普及輔導",
                 id="§叁 輔導對象 10 employees in 數位普及"),
    pytest.param({"employees": "over_limit", "case_type": "popularization"}, NOT_ELIGIBLE, "數位普及輔導",
                 id="§叁 輔導對象 tapped 10 or more in 數位普及"),
    pytest.param({"employees": 10, "case_type": "inclusion"}, NEEDS_REVIEW, "數位共融輔導",
                 id="§叁 輔導對象 10 employees in 數位共融: at most 3, committee"),
    pytest.param({"employees": 25, "case_type": NOT_SURE}, NEEDS_REVIEW, "數位共融輔導",
                 id="§叁 輔導對象 10+ employees, case type not sure"),
    pytest.param({"program_cloud_generation": "yes"}, NOT_ELIGIBLE, "限制條件 1.(1)",
                 id="§叁 限制條件 1.(1) in a 110-112 雲世代 program"),
    pytest.param({"program_store_subsidy": "yes"}, NOT_ELIGIBLE, "限制條件 1.(2)",
                 id="§叁 限制條件 1.(2) in 推動中小型店家數位轉型補助方案"),
    pytest.param({"agency_support": "yes"}, NOT_ELIGIBLE, "註4", id="註4 guidance or subsidy from a listed agency"),
    pytest.param({"other_sme_program": "yes"}, NOT_ELIGIBLE, "限制條件 2", id="§叁 限制條件 2 another SME program"),
    pytest.param({"existing_customer": "yes", "new_purchase": "yes"}, ELIGIBLE, "限制條件 3",
                 id="§叁 限制條件 3 existing customer, new purchase"),
    pytest.param({"existing_customer": "yes", "new_purchase": "no"}, NOT_ELIGIBLE, "§捌.四.(三).1",
                 id="§叁 限制條件 3 existing customer, no new purchase"),
    pytest.param({"existing_customer": NOT_SURE, "new_purchase": "yes"}, ELIGIBLE, "限制條件 3",
                 id="§叁 限制條件 3 not sure if customer, but the service is new"),
    pytest.param({"existing_customer": NOT_SURE, "new_purchase": "no"}, NOT_ELIGIBLE, "§捌.四.(三).1",
                 id="§捌.四.(三).1 already uses the same service"),
    pytest.param({"existing_customer": "yes", "new_purchase": NOT_SURE}, NEEDS_REVIEW, "限制條件 3",
                 id="§叁 限制條件 3 existing customer, not sure about new purchase"),
])
def test_each_rule(changes, outcome, citation):
    result = screen(answers(**changes), E112)
    assert result.outcome == outcome
    assert any(citation in r.citation for r in result.reasons), [r.line() for r in result.reasons]
    assert all(r.citation for r in result.reasons)


def test_nine_is_within_the_limit_and_ten_is_not():
    # §貳.一: 9 人(含)以下
    assert screen(answers(employees=9), E112).outcome == ELIGIBLE
    assert screen(answers(employees=10, case_type="popularization"), E112).outcome == NOT_ELIGIBLE


def test_tax_registration_only_is_said_in_plain_words():
    # §叁 輔導對象: 含僅辦理稅籍登記之營利事業
    result = screen(answers(registration="tax_only"), E112)
    assert "only a tax registration can take part" in result.reasons[0].text


def test_over_nine_in_inclusion_says_the_conditions():
    reason = screen(answers(employees=12, case_type="inclusion"), E112).reasons[0]
    assert "at most 3" in reason.text and "committee" in reason.text


def test_every_hard_no_is_listed():
    result = screen(answers(registration="none", other_sme_program="yes", agency_support="yes"), E112)
    assert result.outcome == NOT_ELIGIBLE
    assert len(result.reasons) == 3


@pytest.mark.parametrize("field, links", [
    ("registration", ["https://cisatw365.pse.is/3vd8v6", "https://cisatw365.pse.is/3xrshe"]),  # 註2
    ("program_cloud_generation", ["https://cisatw365.pse.is/3qwt4r"]),  # 註3
    ("program_store_subsidy", ["https://cisatw365.pse.is/3qwt4r"]),  # 限制條件 1 (註3)
    ("agency_support", []),  # 註4: no query link, ask the agency
    ("other_sme_program", []),  # 限制條件 2: ask the program office
    ("employees", []),
])
def test_not_sure_leads_to_how_to_check_and_needs_review(field, links):
    result = screen(answers(**{field: NOT_SURE}), E112)
    assert result.outcome == NEEDS_REVIEW
    assert [h.url for h in result.how_to_check if h.url] == links
    assert result.how_to_check, "every not-sure answer says how to check"


def test_an_unanswered_question_is_not_a_guess():
    result = screen(answers(agency_support=None), E112)
    assert result.outcome == NEEDS_REVIEW
    assert "Not answered yet" in result.reasons[0].text


def test_industry_is_a_note_not_a_condition():
    # §叁: 民生內需產業 is the suggested direction
    result = screen(answers(), E112)
    assert "not a condition" in result.notes[0].text
    assert all(r.field != "industry" for r in result.reasons)


def test_the_113_sample_edition_changes_the_answer_without_code():
    # The 113 sample allows at most 2 enterprises over 9 employees per 數位共融 case.
    reason = screen(answers(employees=12, case_type="inclusion"), E113).reasons[0]
    assert "at most 2" in reason.text


def test_a_hard_no_settles_the_screening():
    assert settled_not_eligible({"registration": "none"}, E112)
    assert not settled_not_eligible({"registration": NOT_SURE}, E112)


# -- what owners type ---------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, value", [
    ("有", "yes"), ("是", "yes"), ("Yes", "yes"), ("沒有", "no"), ("否", "no"), ("NO", "no"),
])
def test_yes_no_typed(typed, value):
    assert yes_no(typed, None) == value


@pytest.mark.parametrize("typed, value", [
    ("只有稅籍登記", "tax_only"), ("稅籍", "tax_only"), ("有限公司", "company"), ("商業登記", "commercial"),
    ("有限合夥", "limited_partnership"), ("沒有公司登記", "none"), ("都沒有", "none"),
])
def test_registration_typed(typed, value):
    assert registration(typed, None) == value


@pytest.mark.parametrize("typed, value", [
    ("5", 5), ("５人", 5), ("9 人", 9), ("十人", 10), ("十二", 12), ("二十五人", 25), ("0", 0),
])
def test_employee_count_typed(typed, value):
    assert employee_count(typed, None) == value


@pytest.mark.parametrize("typed", ["a few", "-3", "很多人", ""])
def test_employee_count_refused(typed):
    with pytest.raises(Refused):
        employee_count(typed, None)


# -- transcripts ----------------------------------------------------------------------------------------

def conversation() -> Conversation:
    return Conversation(
        dialogs={"screening": screening_dialog([E112, E113])},
        intents=[],
        answer_question=lambda t, c, inside: None,
        menu=lambda c: [],
        help_text=lambda c: [],
        contact=lambda c: [],
        menu_choices=lambda c: [],
    )


def chat(owner_says: list[str], edition=E112, locale="en"):
    """Runs a screening; returns the transcript (lists of bot messages per turn) and the context."""
    conv = conversation()
    ctx = Context("U-owner", locale=locale, edition=edition)
    with use_locale(locale):
        state, said = conv.start("screening", ctx)
        turns = [said]
        for text in owner_says:
            state, said = conv.handle(state, text, ctx)
            turns.append(said)
    return turns, ctx, state


def texts(messages) -> str:
    return "\n".join(m.text for m in messages if isinstance(m, (Text, Link)))


def test_transcript_eligible_owner():
    turns, ctx, state = chat(["Company", "5", "No", "No", "No", "No", "No"])
    assert "Which registration" in texts(turns[0])
    assert "not a condition" in texts(turns[0])  # industry is only a suggested direction
    assert "Not sure" in [c.label for c in turns[0][-1].choices]
    result = texts(turns[-1])
    assert "appears eligible" in result
    assert "(see §貳.一" in result and "限制條件 2" in result
    assert state["dialog"] is None
    record = ctx.data["screening"]
    assert record["outcome"] == "eligible" and record["edition"] == 112
    assert record["answers"]["employees"] == 5 and record["answers"]["registration"] == "company"


def test_transcript_owner_without_registration_is_told_why_at_once():
    turns, ctx, state = chat(["None of these"])
    result = texts(turns[-1])
    assert "not eligible" in result
    assert "§貳.一" in result
    assert "employees" not in texts(turns[-1][:1])  # no further question was needed
    assert ctx.data["screening"]["outcome"] == "not_eligible"


def test_transcript_ten_employees_in_popularization():
    turns, ctx, state = chat(["Company", "10", "Popularization"])
    assert "which kind of case" in texts(turns[2])
    result = texts(turns[-1])
    assert "not eligible" in result and "9 or fewer" in result and "§叁 輔導對象" in result


def test_transcript_existing_customer_without_a_new_purchase():
    turns, ctx, state = chat(["Tax-registered only", "3", "No", "No", "No", "No", "Yes", "No"])
    result = texts(turns[-1])
    assert "not eligible" in result and "§捌.四.(三).1" in result


def test_transcript_not_sure_owner_gets_links_and_needs_review():
    turns, ctx, state = chat(["Company", "4", "Not sure", "No", "No", "不確定", "No"])
    final = turns[-1]
    assert "needs review" in texts(final)
    links = [m for m in final if isinstance(m, Link)]
    assert [l.url for l in links] == ["https://cisatw365.pse.is/3qwt4r"]  # 註3
    assert "cisaims@cisanet.org.tw" in texts(final)  # §玖
    assert ctx.data["screening"]["answers"]["program_cloud_generation"] == NOT_SURE
    assert len(final) <= 5  # LINE: at most 5 messages per reply


def test_transcript_back_changes_the_previous_answer():
    turns, ctx, state = chat(["Company", "back", "Tax-registered only", "5"])
    assert "Which registration" in texts(turns[2])
    assert ctx.values["registration"] == "tax_only"


def test_transcript_refuses_an_unclear_number_and_asks_again():
    turns, ctx, state = chat(["Company", "a few people"])
    assert "type the number of regular employees" in texts(turns[-1])
    assert state["dialog"] == "screening"


def test_transcript_in_chinese():
    turns, ctx, state = chat(["公司", "12", "數位共融輔導", "沒有", "沒有", "沒有", "沒有", "沒有"], locale="zh_TW")
    assert "您的事業有哪一種登記" in texts(turns[0])
    result = texts(turns[-1])
    assert "需由執行單位審查" in result
    assert "每案至多3家" in result or "至多3家" in result
    assert "（§叁 輔導對象（數位共融輔導））" in result


def test_transcript_uses_the_edition_of_the_day(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2023-12-15T10:00:00+08:00"))
    conv = conversation()
    ctx = Context("U-owner", locale="en")
    with use_locale("en"):
        state, said = conv.start("screening", ctx)
    assert "most recent one, the 112 edition" in texts(said)
    assert state["data"]["edition"] == 112
