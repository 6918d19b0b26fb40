"""The program edition as data: the 112 file, its checker, and choosing an edition.

Each table row names the paragraph of the guidelines the value comes from.
"""
from __future__ import annotations

import shutil
from datetime import date, time
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from dialogs.edition import (Edition, EditionError, all_editions, check_edition_file, edition_check_command,
                             edition_for, edition_notice, editions_dir, format_money, load_edition)
from dialogs.i18n import use_locale

HERE = Path(__file__).resolve().parent
SAMPLE_DIR = HERE / "data" / "editions"
FILE_112 = editions_dir() / "112" / "edition.yaml"
FILE_113 = SAMPLE_DIR / "113" / "edition.yaml"


@pytest.fixture(autouse=True)
def english():
    with use_locale("en"):
        yield


@pytest.fixture(scope="module")
def e112() -> Edition:
    return load_edition(FILE_112)


def test_the_112_file_has_no_problems():
    assert check_edition_file(FILE_112) == []
    assert check_edition_file(FILE_113) == []


@pytest.mark.parametrize("key, day, at, citation", [
    ("registration_opens", date(2023, 2, 17), time(17, 0), "§伍.二"),
    ("proposal_deadline", date(2023, 3, 16), time(17, 0), "§伍.三"),
    ("letters_due", date(2023, 3, 18), None, "§陸.四.(四)"),  # two days after the deadline; §陸 gives no time
    ("selection_meeting", date(2023, 3, 21), None, "§肆"),  # late March, tentative
    ("tool_import_deadline", date(2023, 7, 31), None, "§叁 雲端服務條件 1"),
    ("checkpoint_1", date(2023, 7, 15), None, "附件一 肆.二"),
    ("checkpoint_2", date(2023, 11, 30), None, "附件一 肆.二"),
    ("coaching_ends", date(2023, 11, 30), None, "§捌.二"),
])
def test_dates_of_112(e112, key, day, at, citation):
    entry = e112.date(key)
    assert (entry.day, entry.time) == (day, at)
    assert citation in entry.citation


def test_the_selection_meeting_says_it_is_tentative(e112):
    meeting = e112.date("selection_meeting")
    assert meeting.tentative and meeting.until == date(2023, 3, 31)
    assert "tentative" in meeting.formatted()
    with use_locale("zh_TW"):
        assert "暫定" in meeting.formatted()


def test_times_are_taipei(e112):
    moment = e112.date("proposal_deadline").moment
    assert moment.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize("case_type, tier, low, high, cap", [
    ("popularization", "A", 50, 75, 1_500_000),  # §叁 輔導家數及經費 (普及 A)
    ("popularization", "B", 76, None, 2_000_000),  # §叁 輔導家數及經費 (普及 B)
    ("inclusion", "A", 30, 40, 1_760_000),  # §叁 輔導家數及經費 (共融 A)
    ("inclusion", "B", 41, None, 2_200_000),  # §叁 輔導家數及經費 (共融 B)
])
def test_tiers_and_caps(e112, case_type, tier, low, high, cap):
    found = {t.name: t for t in e112.case_type(case_type).tiers}[tier]
    assert (found.minimum, found.maximum, found.cap) == (low, high, cap)
    assert "§叁" in found.citation


def test_inclusion_themes_and_over_nine_allowance(e112):
    # §叁 輔導主軸 (數位共融): three themes; 輔導對象: at most 3 enterprises over 9 employees per case
    inclusion = e112.case_type("inclusion")
    assert [t.name.zh_TW for t in inclusion.themes] == ["區域整合型", "產業串聯型", "跨業共融型"]
    assert inclusion.over_nine_max == 3
    assert e112.case_type("popularization").over_nine_max == 0
    assert e112.eligibility.employee_limit == 9  # §貳.一


def test_letters_rules(e112):
    # §叁 注意事項: at least 10% (rounded up), at most 50% replaced after admission
    assert e112.letters.at_proposal_percent == 10
    assert e112.letters.replacement_max_percent == 50
    assert [e112.letters.needed(n) for n in (60, 61, 9, 0)] == [6, 7, 1, 0]


def test_conflicting_programs_and_agencies(e112):
    # §叁 限制條件 1 (註3) and 註4
    rules = e112.eligibility
    assert [p.key for p in rules.conflicting_programs] == ["cloud_generation", "store_subsidy"]
    assert all("限制條件 1" in p.citation for p in rules.conflicting_programs)
    assert [a.zh_TW for a in rules.agencies] == [
        "數位發展部", "行政院農業委員會", "原住民族委員會", "客家委員會", "經濟部工業局", "經濟部商業司",
        "經濟部中小企業處場域型小微企業數位輔導", "雲世代商圈數位轉型輔導"]
    assert "註4" in rules.agencies_citation


def test_review_weights_and_bonus(e112):
    # §柒: weights add to 100; startup = registered on or after 107/1/1; township groups 3-4
    assert [i.weight for i in e112.review.items] == [25, 25, 20, 15, 10, 5]
    assert e112.review.startup_bonus.registered_on_or_after == date(2018, 1, 1)
    assert e112.review.township_bonus.groups == (3, 4)


def test_contact_of_the_program_office(e112):
    # §玖
    contact = e112.contact
    assert [(p.extension, p.name) for p in contact.phones] == [("603", "林小姐"), ("383", "林小姐"), ("835", "邱小姐")]
    assert contact.phones[0].number == "(02)2553-3988"
    assert (contact.fax, contact.email) == ("(02)2553-1319", "cisaims@cisanet.org.tw")
    assert contact.address.zh_TW.startswith("臺北市")
    assert contact.facebook == "https://www.facebook.com/UneedIcare"


@pytest.mark.parametrize("key, url", [
    ("note1", "https://cisatw365.pse.is/4rql5h"),  # 註1
    ("note2_sme", "https://cisatw365.pse.is/3xrshe"),  # 註2 中小企業認定標準查詢
    ("note2_tax", "https://cisatw365.pse.is/3vd8v6"),  # 註2 稅籍登記查詢
    ("note3", "https://cisatw365.pse.is/3qwt4r"),  # 註3 雲世代相關計畫輔導對象查詢
    ("proposal_system", "https://www.cisa.tw/365"),  # §伍.一
])
def test_links(e112, key, url):
    assert e112.link(key).url == url


def test_every_entry_carries_a_citation(e112):
    missing = []

    def walk(value, where):
        if isinstance(value, BaseModel):
            for name in type(value).model_fields:
                item = getattr(value, name)
                if name.endswith("citation") and not item:
                    missing.append(f"{where}.{name}")
                walk(item, f"{where}.{name}")
        elif isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}[{k}]")
        elif isinstance(value, (list, tuple)):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")

    walk(e112, "edition")
    assert missing == []


def test_documents_of_section_six(e112):
    assert [d.citation.split("；")[0] for d in e112.documents][:6] == [
        "§陸.一", "§陸.二.(一)", "§陸.二.(二).1", "§陸.二.(二).2", "§陸.二.(三)", "§陸.三"]


@pytest.mark.parametrize("amount, en, zh", [
    (1_500_000, "NT$1,500,000", "新臺幣150萬元"),
    (1_760_000, "NT$1,760,000", "新臺幣176萬元"),
    (1_234_567, "NT$1,234,567", "新臺幣1,234,567元"),
])
def test_money(amount, en, zh):
    assert format_money(amount) == en
    with use_locale("zh_TW"):
        assert format_money(amount) == zh


# -- choosing the edition -----------------------------------------------------------------------

BOTH = [editions_dir(), SAMPLE_DIR]


@pytest.mark.parametrize("day, dirs, case_edition, year, covers", [
    (date(2023, 3, 1), None, None, 112, True),  # inside 112's period
    (date(2023, 12, 15), None, None, 112, False),  # 112 ended 112/11/30: most recent, flagged
    (date(2024, 3, 1), None, None, 112, False),  # no 113 file yet
    (date(2024, 3, 1), BOTH, None, 113, True),  # a 113 file was added: no code change
    (date(2023, 12, 15), BOTH, None, 112, False),  # between editions
    (date(2024, 3, 1), BOTH, 112, 112, False),  # a 112 case keeps its edition's rules
    (date(2023, 3, 1), BOTH, "113", 113, False),
], ids=["112-in-period", "112-ended", "113-missing", "113-added", "between", "case-112", "case-113"])
def test_edition_for(day, dirs, case_edition, year, covers):
    edition, covers_today = edition_for(day, case_edition, dirs=dirs)
    assert (edition.year, covers_today) == (year, covers)


def test_the_notice_says_which_year_and_that_dates_may_have_changed(e112):
    assert "112" in edition_notice(e112, True)
    stale = edition_notice(e112, False)
    assert "112" in stale and "may have changed" in stale
    with use_locale("zh_TW"):
        assert "112" in edition_notice(e112, False) and "可能已" in edition_notice(e112, False)


def test_staff_add_an_edition_by_adding_a_folder(tmp_path):
    shutil.copytree(SAMPLE_DIR / "113", tmp_path / "113")
    years = [e.year for e in all_editions([editions_dir(), tmp_path])]
    assert years == [112, 113]


# -- the checker ----------------------------------------------------------------------------------


def _broken(tmp_path: Path, change, folder: str = "112") -> Path:
    data = yaml.safe_load(FILE_112.read_text(encoding="utf-8"))
    change(data)
    path = tmp_path / folder / "edition.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _tiers(data, case_type="popularization"):
    return data["case_types"][case_type]["tiers"]


@pytest.mark.parametrize("change, expected", [
    (lambda d: d["dates"].pop("proposal_deadline"), "dates → proposal_deadline: is missing"),
    (lambda d: d["dates"]["registration_opens"].update(at="112/2/30 17:00"), "is not a real date"),
    (lambda d: d["dates"]["registration_opens"].update(at="112/2/17 25:00"), "the time should look like 17:00"),
    (lambda d: d["dates"]["letters_due"].update(after={"date": "no_such_date", "days": 2}), "refers to the date 'no_such_date'"),
    (lambda d: d["dates"]["registration_opens"].update(at="112/3/20"), "registration_opens should come before proposal_deadline"),
    (lambda d: _tiers(d)[1].update(min=70), "tiers A and B overlap"),
    (lambda d: _tiers(d)[1].update(min=80), "counts 76 to 79 fall in no tier"),
    (lambda d: _tiers(d)[0].update(cap=0), "the budget cap should be a positive amount"),
    (lambda d: _tiers(d, "inclusion")[0].update(cap=-5), "the budget cap should be a positive amount"),
    (lambda d: _tiers(d)[0].update(max=40), "max (40) is below min (50)"),
    (lambda d: _tiers(d)[0].pop("citation"), "tiers[1] → citation: the citation is missing"),
    (lambda d: d["dates"]["proposal_deadline"].pop("citation"), "dates → proposal_deadline → citation: the citation is missing"),
    (lambda d: d["contact"].pop("citation"), "contact → citation: the citation is missing"),
    (lambda d: d["name"].pop("en"), "name: the en text is missing"),
    (lambda d: d["review"]["items"][0].update(weight=20), "the weights add up to 95%"),
    (lambda d: d["eligibility"]["conflicting_programs"][0].update(check_link="nowhere"), "refers to the link 'nowhere'"),
    (lambda d: d["links"]["note3"].update(url="cisatw365.pse.is/3qwt4r"), "should start with https://"),
    (lambda d: d["eligibility"]["registration"].update(accepted=["company", "kiosk"]), "unknown registration 'kiosk'"),
    (lambda d: d["letters"].update(at_proposal_percent=0), "at_proposal_percent: should be a positive whole number"),
    (lambda d: d["period"].update(start="112/12/1"), "starts (2023-12-01) after it ends"),
    (lambda d: d["case_types"]["inclusion"]["themes"][0]["button"].update(en="A theme name far too long for LINE"), "too long for a button"),
    (lambda d: d.pop("contact"), "contact: is missing"),
], ids=["missing-date", "bad-date", "bad-time", "after-unknown", "date-order", "overlap", "gap", "cap-zero",
        "cap-negative", "max-below-min", "tier-citation", "date-citation", "contact-citation", "missing-en",
        "weights", "link-key", "url", "registration", "percent", "period", "button", "missing-section"])
def test_check_reports_a_broken_file(tmp_path, change, expected):
    problems = check_edition_file(_broken(tmp_path, change))
    assert any(expected in p for p in problems), problems
    with pytest.raises(EditionError):
        load_edition(_broken(tmp_path, change))


def test_check_reports_every_problem_at_once(tmp_path):
    def many(d):
        d["dates"].pop("proposal_deadline")
        _tiers(d)[0].update(cap=0)
        d["contact"].pop("citation")
    assert len(check_edition_file(_broken(tmp_path, many))) >= 3


def test_check_notices_a_folder_that_does_not_match(tmp_path):
    path = _broken(tmp_path, lambda d: None, folder="114")
    assert any("folder is 114" in p for p in check_edition_file(path))


def test_check_reports_bad_yaml_with_its_line(tmp_path):
    path = tmp_path / "edition.yaml"
    path.write_text("edition: 112\nname: {zh_TW: x, en: [\n", encoding="utf-8")
    problems = check_edition_file(path)
    assert len(problems) == 1 and problems[0].startswith("line ")


def test_check_reports_a_missing_file(tmp_path):
    assert check_edition_file(tmp_path / "nope.yaml") == ["the file does not exist"]


def test_edition_check_command(tmp_path, capsys):
    assert edition_check_command(FILE_112) == 0
    assert "edition 112 is fine" in capsys.readouterr().out
    broken = _broken(tmp_path, lambda d: _tiers(d)[0].update(cap=0))
    assert edition_check_command(broken) == 1
    out = capsys.readouterr().out
    assert "1 problem(s)" in out and "budget cap" in out


def test_a_new_field_in_an_edition_is_one_model_field_plus_its_use():
    from pydantic import ValidationError

    from dialogs import edition_data

    class ContactWithLine(edition_data.Contact):
        line_id: str  # the new field: its type is its check

    class NextEdition(edition_data.Edition):
        contact: ContactWithLine

    raw = yaml.safe_load(FILE_112.read_text(encoding="utf-8"))
    with pytest.raises(ValidationError) as refused:
        NextEdition.model_validate(raw)
    assert edition_data.problems(refused.value) == ["contact → line_id: is missing"]

    raw["contact"]["line_id"] = "@cisa"
    assert NextEdition.model_validate(raw).contact.line_id == "@cisa"  # and its use
    assert edition_data.read_edition(raw)[1] == ["contact → line_id: is not a key of an edition file (a typing mistake?)"]
