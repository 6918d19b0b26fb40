"""The proposer's calculator: one row per rule (§叁 tiers and letters, §柒 bonuses, §陸 documents),
the 113 sample edition, and transcripts of the 提案試算 dialog through the engine."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pytest

from dialogs.cards import card_lines
from dialogs.calculator import (UNKNOWN, calculate, calculation_messages, calculator_dialog, enterprise_count,
                                registration_date, township_bonus, unknown_township_group)
from dialogs.edition import editions_dir, load_edition
from dialogs.engine import Context, Conversation, Refused
from dialogs.i18n import use_locale
from dialogs.messages import Card, Carousel, Link, Text

E112 = load_edition(editions_dir() / "112" / "edition.yaml")
E113 = load_edition(Path(__file__).resolve().parent / "data" / "editions" / "113" / "edition.yaml")
MARCH_1 = date(2023, 3, 1)


@pytest.fixture(autouse=True)
def english():
    with use_locale("en"):
        yield


# -- §叁 輔導家數及經費: every tier boundary ------------------------------------------------------------

@pytest.mark.parametrize("case_type, count, tier, cap, short_by, to_next", [
    ("popularization", 49, None, None, 1, 1),  # below 50: no tier, 1 short
    ("popularization", 50, "A", 1_500_000, 0, 26),
    ("popularization", 60, "A", 1_500_000, 0, 16),
    ("popularization", 75, "A", 1_500_000, 0, 1),
    ("popularization", 76, "B", 2_000_000, 0, None),
    ("popularization", 150, "B", 2_000_000, 0, None),  # "76(含)-100 家以上": no upper bound
    ("inclusion", 29, None, None, 1, 1),  # below 30: no tier
    ("inclusion", 30, "A", 1_760_000, 0, 11),
    ("inclusion", 40, "A", 1_760_000, 0, 1),
    ("inclusion", 41, "B", 2_200_000, 0, None),
    ("inclusion", 10, None, None, 20, 20),
], ids=lambda v: str(v))
def test_tier_boundaries(case_type, count, tier, cap, short_by, to_next):
    calc = calculate(case_type, count, E112, today=MARCH_1)
    assert (calc.tier.name if calc.tier else None) == tier
    assert calc.budget_cap == cap
    assert (calc.below_minimum, calc.short_by) == (short_by > 0, short_by)
    assert calc.to_next_tier == to_next


# -- §叁 注意事項: 10% letters rounded up, ≤ 50% replaced -------------------------------------------------

@pytest.mark.parametrize("count, letters, replaceable", [
    (60, 6, 3), (50, 5, 2), (51, 6, 3), (30, 3, 1), (31, 4, 2), (76, 8, 4), (100, 10, 5), (1, 1, 0),
])
def test_letters_needed_at_proposal(count, letters, replaceable):
    calc = calculate("popularization", count, E112, today=MARCH_1)
    assert (calc.letters_needed, calc.letters_replaceable) == (letters, replaceable)
    assert calc.letters_due.day == date(2023, 3, 18)  # §陸.四.(四): two days after the deadline


# -- §叁 輔導對象: enterprises over 9 employees ---------------------------------------------------------------

@pytest.mark.parametrize("case_type, allowed", [("popularization", 0), ("inclusion", 3)])
def test_over_nine_allowance(case_type, allowed):
    assert calculate(case_type, 60, E112).over_nine_allowed == allowed


# -- §叁 輔導主軸: the themes of 數位共融 ----------------------------------------------------------------------

@pytest.mark.parametrize("theme", ["regional", "industry_chain", "cross_industry"])
def test_inclusion_themes(theme):
    assert calculate("inclusion", 35, E112, theme=theme).theme.key == theme


def test_an_unknown_theme_or_case_type_is_an_error():
    with pytest.raises(ValueError):
        calculate("inclusion", 35, E112, theme="space_travel")
    with pytest.raises(ValueError):
        calculate("other", 35, E112)
    with pytest.raises(ValueError):
        calculate("inclusion", -1, E112)


# -- §柒 加分項目 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("registered, bonus", [
    (date(2018, 1, 1), True),  # 備註1: registered on 107/1/1 counts
    (date(2021, 6, 30), True),
    (date(2017, 12, 31), False),  # 106/12/31 does not
    (None, None),  # not given: not known, not a guess
])
def test_startup_bonus(registered, bonus):
    assert calculate("popularization", 60, E112, startup_registered_on=registered).startup_bonus is bonus


GROUPS = {"6300100": 1, "1000201": 3, "1001401": 4, "6500100": 2}.get


@pytest.mark.parametrize("towns, lookup, status, inside", [
    (["6300100", "1000201"], None, UNKNOWN, 0),  # 備註2: no table imported → unknown, never a guess
    (None, GROUPS, UNKNOWN, 0),  # no towns given
    (["6300100", "1000201", "1001401"], GROUPS, "yes", 2),
    (["6300100", "6500100"], GROUPS, "no", 0),
    (["6300100", "9999999"], GROUPS, UNKNOWN, 0),  # one township not in the table
])
def test_township_bonus(towns, lookup, status, inside):
    calc = calculate("popularization", 60, E112, towns=towns, township_group=lookup)
    assert (calc.township.status, calc.township.in_bonus_groups) == (status, inside)


def test_the_default_township_lookup_knows_nothing():
    assert unknown_township_group("6300100") is None
    assert township_bonus(["6300100"], unknown_township_group, (3, 4)).status == UNKNOWN


# -- §陸 documents, and the days left ---------------------------------------------------------------------

def test_documents_checklist():
    calc = calculate("popularization", 60, E112)
    citations = " ".join(d.citation for d in calc.documents)
    for paragraph in ("§陸.一", "§陸.二.(一)", "§陸.二.(二).1", "§陸.二.(二).2", "§陸.二.(三)", "§陸.三", "§陸.四.(四)"):
        assert paragraph in citations


@pytest.mark.parametrize("today, expected", [
    (date(2023, 3, 1), {"proposal_deadline": 15, "letters_due": 17, "tool_import_deadline": 152, "coaching_ends": 274}),
    (date(2023, 3, 16), {"proposal_deadline": 0, "letters_due": 2}),
    (date(2023, 3, 25), {"selection_meeting": 0, "checkpoint_1": 112}),  # the meeting window is under way
    (date(2023, 12, 1), {}),  # all passed
])
def test_days_left(today, expected):
    left = {d.date.key: d.days for d in calculate("popularization", 60, E112, today=today).dates_left}
    assert "registration_opens" not in left or today < date(2023, 2, 17)
    for key, days in expected.items():
        assert left[key] == days
    if not expected:
        assert left == {}


# -- a second edition, no code change ------------------------------------------------------------------------

@pytest.mark.parametrize("case_type, count, e112, e113", [
    ("popularization", 60, ("A", 1_500_000, 6), ("A", 1_600_000, 9)),  # 113 sample: caps changed, 15% letters
    ("popularization", 72, ("A", 1_500_000, 8), ("B", 2_100_000, 11)),  # tier B starts at 71 in the sample
    ("inclusion", 41, ("B", 2_200_000, 5), ("A", 1_800_000, 7)),
    ("inclusion", 32, ("A", 1_760_000, 4), (None, None, 5)),  # below the sample's minimum of 35
])
def test_the_113_sample_edition_changes_the_answers(case_type, count, e112, e113):
    for edition, (tier, cap, letters) in ((E112, e112), (E113, e113)):
        calc = calculate(case_type, count, edition)
        assert ((calc.tier.name if calc.tier else None), calc.budget_cap, calc.letters_needed) == (tier, cap, letters)
    assert calculate("inclusion", 40, E113).over_nine_allowed == 2
    assert calculate("popularization", 60, E113, startup_registered_on=date(2018, 6, 1)).startup_bonus is False


# -- what proposers type ------------------------------------------------------------------------------------

@pytest.mark.parametrize("typed, value", [("60", 60), ("６０家", 60), ("1,200", 1200), ("76 家", 76), ("五十", 50),
                                          ("五十家", 50), ("七十六家企業", 76), ("一百", 100), ("約60家", 60)])
def test_enterprise_count_typed(typed, value):
    assert enterprise_count(typed, None) == value


@pytest.mark.parametrize("typed, reason", [
    ("sixty", "Please type the number of enterprises as a number"),
    ("0", "A case brings at least one enterprise"),
    ("-5", "cannot be negative"),
    ("−5家", "cannot be negative"),
    ("60.5", "whole number"),
    ("1000001", "1000001 enterprises is more than any case brings"),
    ("一百萬", "1000000 enterprises is more than any case brings"),  # the one parser (cn2an) reads 萬 too
])
def test_enterprise_count_refused(typed, reason):
    with pytest.raises(Refused) as refused:
        enterprise_count(typed, None)
    assert reason in refused.value.message


@pytest.mark.parametrize("typed, value", [
    ("108/5/1", "2019-05-01"), ("108年5月1日", "2019-05-01"), ("2019-05-01", "2019-05-01"), ("Skip", "skip"),
])
def test_registration_date_typed(typed, value):
    assert registration_date(typed, None) == value


def test_registration_date_refused():
    with pytest.raises(Refused):
        registration_date("last spring", None)


# -- the result, as the proposer reads it ---------------------------------------------------------------------

def rows(messages) -> dict:
    """The rows of the result, whether one card or its pages."""
    result = next(m for m in messages if isinstance(m, (Card, Carousel)))
    return {k: v for card in (result.cards if isinstance(result, Carousel) else (result,)) for k, v in card.rows}


def test_sixty_popularization_enterprises_in_english():
    calc = calculate("popularization", 60, E112, today=MARCH_1)
    result = rows(calculation_messages(calc, E112))
    assert result["Tier"].startswith("A (50 to 75 enterprises)")
    assert "NT$1,500,000" in result["Budget cap"] and "§叁 輔導家數及經費" in result["Budget cap"]
    assert result["Letters of intent at proposal"].startswith("6 (10% of 60, rounded up)")
    assert "unknown" in result["Township bonus"]


def test_sixty_popularization_enterprises_in_chinese():
    with use_locale("zh_TW"):
        calc = calculate("popularization", 60, E112, today=MARCH_1)
        result = rows(calculation_messages(calc, E112))
    assert "新臺幣150萬元" in result["預算上限"]
    assert result["級距"].startswith("A")
    assert result["提案時應附企業合作意向書"].startswith("6")


# -- transcripts ------------------------------------------------------------------------------------------------

def chat(proposer_says: list[str], edition=E112, locale="en", data=None, township_group=None):
    conv = Conversation(
        dialogs={"calculator": calculator_dialog()},
        intents=[],
        answer_question=lambda t, c, inside: None,
        menu=lambda c: [],
        help_text=lambda c: [],
        contact=lambda c: [],
        menu_choices=lambda c: [],
    )
    ctx = Context("U-proposer", locale=locale, edition=edition,
                  township_group=township_group or unknown_township_group)
    with use_locale(locale):
        state, said = conv.start("calculator", ctx, data)
        turns = [said]
        for text in proposer_says:
            state, said = conv.handle(state, text, ctx)
            turns.append(said)
    return turns, ctx, state


def texts(messages) -> str:
    return "\n".join(m.text for m in messages if isinstance(m, (Text, Link)))


def test_transcript_sixty_popularization_enterprises(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2023-03-01T09:00:00+08:00"))
    turns, ctx, state = chat(["Popularization", "60", "Skip"])
    assert [c.label for c in turns[0][-1].choices] == ["Popularization", "Inclusion"]
    assert "How many enterprises" in texts(turns[1])  # no theme question for 數位普及
    final = turns[-1]
    result = rows(final)
    assert result["Tier"].startswith("A") and "NT$1,500,000" in result["Budget cap"]
    assert result["Letters of intent at proposal"].startswith("6 ")
    checklist = texts(final)
    assert "Proposal deadline" in checklist and "15 days left" in checklist
    assert "https://www.cisa.tw/365" in [m.url for m in final if isinstance(m, Link)]
    assert ctx.data["calculation"]["tier"] == "A"
    assert len(final) <= 5


def test_transcript_inclusion_asks_the_theme_and_the_startup_date(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2023-03-01T09:00:00+08:00"))
    turns, ctx, state = chat(["Inclusion", "Industry chain", "41", "108/5/1"])
    assert [c.label for c in turns[1][-1].choices][:3] == ["Regional integration", "Industry chain", "Cross-industry"]
    result = rows(turns[-1])
    assert "Industry chain" in result["Case type"]
    assert result["Tier"].startswith("B") and "NT$2,200,000" in result["Budget cap"]
    assert result["Startup bonus"].startswith("yes")
    assert "at most 3" in result["Enterprises over 9 employees"]


def test_transcript_below_the_minimum(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2023-03-01T09:00:00+08:00"))
    turns, ctx, state = chat(["Popularization", "45", "Skip"])
    result = rows(turns[-1])
    assert result["Tier"].startswith("none: 5 short of the minimum of 50")


def test_transcript_refuses_a_count_that_is_not_a_number():
    turns, ctx, state = chat(["Popularization", "about sixty"])
    assert "as a number" in texts(turns[-1])
    assert state["dialog"] == "calculator"


def test_transcript_township_bonus_from_the_case_towns(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2023-03-01T09:00:00+08:00"))
    turns, ctx, state = chat(["Popularization", "60", "Skip"], data={"towns": ["1000201", "6300100"]},
                             township_group=GROUPS)
    assert rows(turns[-1])["Township bonus"].startswith("yes: 1 of 2")


def test_transcript_with_the_113_sample_edition(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2024-03-01T09:00:00+08:00"))
    turns, ctx, state = chat(["Popularization", "60", "Skip"], edition=E113)
    result = rows(turns[-1])
    assert "NT$1,600,000" in result["Budget cap"]
    assert result["Letters of intent at proposal"].startswith("9 (15% of 60")


def test_transcript_in_chinese(monkeypatch):
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", datetime.fromisoformat("2023-03-01T09:00:00+08:00"))
    turns, ctx, state = chat(["數位普及輔導", "60家", "略過"], locale="zh_TW")
    result = rows(turns[-1])
    assert "新臺幣150萬元（含稅）" in result["預算上限"]
    assert "112年3月16日(四) 17:00" in texts(turns[-1])


def test_the_result_is_short_on_a_phone_and_the_rest_is_behind_buttons(monkeypatch):
    """Issue 10 item 5: no text bubble longer than about 12 lines; documents, dates and contact are buttons."""
    monkeypatch.setenv("GONGHAO_NOW", "2023-03-01T09:00:00+08:00")
    turns, ctx, state = chat(["Popularization", "60", "Skip"])
    final = turns[-1]
    assert all(m.text.count("\n") < 12 for m in final if isinstance(m, Text)), [m.text for m in final]
    pages = next(m for m in final if isinstance(m, Carousel)).cards  # the key figures first, the rest a swipe away
    assert all(card_lines(page) <= 12 for page in pages)
    assert {"Tier", "Budget cap"} <= {label for label, _value in pages[0].rows}
    buttons = [c.value for m in final if isinstance(m, Text) for c in m.choices]
    assert {"faq:documents_required", "faq:timeline", "contact"} <= set(buttons)
