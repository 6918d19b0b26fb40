"""Exports: the 附件一 roster as the form has it, in XLSX and in CSV that Excel opens, safe and logged."""
from __future__ import annotations

import csv
import io
import json
import zipfile

import openpyxl
from click.testing import CliRunner

from bot.exports import export, neutralise
from storage.models import AuditEntry
from storage.reminders import import_assessment_results, record_self_report
from tests.roster_support import add_owner, console, make_case, valid_numbers, user_id  # noqa: F401

ANNEX_ONE = ["序", "統編", "公司人數", "公司名稱", "所在地(縣市/鄉鎮)", "主要服務/產品", "企業型態 1.商業登記 2.稅籍登記",
             "112年是否參與/申請政府相關輔導/補助計畫 是：計畫名稱 / 否"]
MACHINE = ["case_id", "flags", "letter_status", "submitted_at", "updated_at"]
HYPERLINK = '=HYPERLINK("http://x","y")'


def a_case_with_tricky_owners(services):
    """Leading zeros, a formula typed by an owner, another program, a draft and a withdrawn letter."""
    case = make_case(services)
    zero_led = next(valid_numbers(100_000))  # 00100…
    add_owner(services, case.id, 1, number=zero_led, name=HYPERLINK, products="+886 滷肉飯", employees=3)
    add_owner(services, case.id, 2, number=next(valid_numbers(22_099_100)), name="好客小吃店", products="@SUM(A1)",
              other_programs=True, other_names="SBIR", employees=12, county="66000", town="66000010")
    add_owner(services, case.id, 3, submitted=False)
    add_owner(services, case.id, 5, number=next(valid_numbers(22_099_400)), name="無登記小攤",
              screening=json.dumps({"outcome": "not_eligible", "answers": {"registration": "none"}}))
    withdrawn = add_owner(services, case.id, 4, number=next(valid_numbers(22_099_300)))
    from storage import letters as store

    with services.db.session() as s:
        letter = store.letter_of(s, case.id, withdrawn)
        letter.status = store.WITHDRAWN
    return case, zero_led


def test_the_roster_xlsx_has_the_annex_columns_text_numbers_and_no_formula(console, tmp_path):
    case, zero_led = a_case_with_tricky_owners(console.services)
    path = str(tmp_path / "roster.xlsx")
    assert export(console.db, "roster", "xlsx", path, case_id=case.id, actor="staff:amy") == 4

    book = openpyxl.load_workbook(path)
    sheet = book.worksheets[0]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[0] == ANNEX_ONE + MACHINE
    assert sheet.freeze_panes == "A2"
    assert sheet.column_dimensions["D"].width > 20  # 公司名稱 is wide enough to read

    first = sheet[2]
    assert first[1].value == zero_led and zero_led.startswith("00") and first[1].data_type == "s"
    assert first[1].number_format == "@"
    assert first[3].value == "'" + HYPERLINK and first[3].data_type == "s"  # inert: text, not a formula
    assert first[5].value == "'+886 滷肉飯"
    assert [c.value for c in first][:8] == [1, zero_led, 3, "'" + HYPERLINK, "臺北市/大安區", "'+886 滷肉飯", 1, "否"]
    second = [c.value for c in sheet[3]]
    assert second[2] == 12 and second[4] == "臺中市/中區" and second[5] == "'@SUM(A1)" and second[7] == "是：SBIR"
    assert second[9] == "over_nine,conflict" and second[10] == "submitted"
    third = [c.value for c in sheet[4]]
    assert third[0] == 3 and third[10] == "draft" and third[1] is None and third[11] is None
    assert [c.value for c in sheet[5]][3] == "無登記小攤" and [c.value for c in sheet[5]][9] == "not_eligible"
    assert len(rows) == 5  # the withdrawn letter is not on the roster

    with zipfile.ZipFile(path) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in xml and "<f " not in xml

    (entry,) = _audits(console, "export.roster")
    assert entry.actor == "staff:amy" and entry.subject == f"case:{case.id}"
    assert json.loads(entry.detail) == {"format": "xlsx", "rows": 4}


def test_the_csv_has_a_bom_and_opens_as_the_same_table(console, tmp_path):
    case, zero_led = a_case_with_tricky_owners(console.services)
    path = str(tmp_path / "roster.csv")
    assert export(console.db, "roster", "csv", path, case_id=case.id) == 4
    data = open(path, "rb").read()
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert rows[0] == ANNEX_ONE + MACHINE
    assert rows[1][:6] == ["1", zero_led, "3", "'" + HYPERLINK, "臺北市/大安區", "'+886 滷肉飯"]
    assert b"\r\n" in data


def test_a_whole_edition_the_letters_and_the_test_status(console, tmp_path):
    services = console.services
    case, zero_led = a_case_with_tricky_owners(services)
    other = make_case(services, plan_name="另一個計畫", edition=112)
    add_owner(services, other.id, 1, number=next(valid_numbers(22_099_500)))
    path = str(tmp_path / "edition.xlsx")
    assert export(console.db, "roster", "xlsx", path, edition=112) == 5
    rows = list(openpyxl.load_workbook(path, read_only=True).worksheets[0].iter_rows(values_only=True))
    assert [r[0] for r in rows[1:]] == [1, 2, 3, 4, 5] and [r[8] for r in rows[1:]] == [case.id] * 4 + [other.id]

    path = str(tmp_path / "letters.xlsx")
    assert export(console.db, "letters", "xlsx", path, case_id=case.id, config=services.config) == 5
    sheet = openpyxl.load_workbook(path, read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    header = list(rows[0])
    first = dict(zip(header, rows[1]))
    assert first["手機"] == "0912-345-678" and first["統一編號"] == zero_led
    assert first["document_url"].startswith("http") and "/d/letter/" in first["document_url"]
    assert [dict(zip(header, r))["letter_status"] for r in rows[1:]] == ["submitted", "submitted", "draft", "submitted", "withdrawn"]

    import_assessment_results(services.db, [(zero_led, "前測", "112/5/3")])
    record_self_report(services.db, user_id(case.id, 2), "post_test")
    path = str(tmp_path / "tests.csv")
    assert export(console.db, "tests", "csv", path, case_id=case.id) == 4
    rows = list(csv.DictReader(io.StringIO(open(path, encoding="utf-8-sig").read())))
    assert [(r["前測"], r["前測完成日"], r["後測"]) for r in rows] == [
        ("已完成（匯入確認）", "2023-05-03", "未完成"), ("未完成", "", "已完成（自行回報）"), ("未完成", "", "未完成"),
        ("未完成", "", "未完成")]
    assert [e.action for e in _audits(console, "export.")] == ["export.roster", "export.letters", "export.tests"]


def test_the_export_command(console, tmp_path):
    from bot.cli import main

    case, zero_led = a_case_with_tricky_owners(console.services)
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(main, ["export", "roster", "--case", str(case.id), "--format", "csv", "-o", str(out),
                                       "--as", "amy"], env={"DATABASE_URL": console.url, "REDIS_URL": ""})
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"已寫入 4 筆資料至 {out}。"
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    result = CliRunner().invoke(main, ["export", "roster", "-o", str(out)], env={"DATABASE_URL": console.url})
    assert result.exit_code != 0 and "--case" in result.output
    assert _audits(console, "export.roster")[0].actor == "staff:amy"


def test_formula_neutralising_follows_owasp():
    for dangerous in ("=1+1", "+1", "-1", "@x", "\tx", "\rx"):
        assert neutralise(dangerous) == "'" + dangerous
    for safe in ("好客", "0912", "", "a=b", 12, None):
        assert neutralise(safe) == safe


def _audits(console, prefix: str):
    with console.db.session() as s:
        return list(s.query(AuditEntry).filter(AuditEntry.action.startswith(prefix)).order_by(AuditEntry.id))
