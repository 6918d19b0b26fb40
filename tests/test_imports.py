"""Imports: every row checked, refused rows shown with line and reason, nothing until confirmed, all or nothing."""
from __future__ import annotations

import io
import re

import openpyxl
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from dialogs.calculator import calculate
from dialogs.edition import edition_for
from dialogs.roster import roster_status
from handlers.common import repository
from storage import imports
from storage.letters import PreviousProgram
from storage.reminders import CompletionReport
from storage.staff import TownshipGroup
from tests.roster_support import add_owner, console, make_case, valid_numbers  # noqa: F401

BAD = {
    17: ("22099132", "雲世代產業數位轉型計畫", "統一編號 22099132 未通過財政部檢查碼驗證"),
    42: ("2209913", "雲世代產業數位轉型計畫", "統一編號須為 8 位數字：2209913"),
    88: ("22099131", "", "計畫名稱空白"),
}


def previous_program_csv() -> tuple[bytes, list[str]]:
    """100 data rows (lines 2–101), 3 of them bad; returns the file and the good numbers."""
    numbers = valid_numbers(30_000_000)
    lines, good = ["統一編號,計畫名稱"], []
    for line in range(2, 102):
        if line in BAD:
            number, program, _reason = BAD[line]
        else:
            number, program = next(numbers), "雲世代產業數位轉型計畫"
            good.append(number)
        lines.append(f"{number},{program}")
    return ("\r\n".join(lines) + "\r\n").encode("utf-8-sig"), good


def count(db, model) -> int:
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_three_bad_rows_of_a_hundred_are_shown_and_nothing_is_imported_until_confirmed(console):
    db = console.db
    case = make_case(console.services)
    data, good = previous_program_csv()
    add_owner(console.services, case.id, 1, number=good[10])

    preview = imports.preview(db, imports.PREVIOUS, "list.csv", data)
    assert (preview.total, preview.accepted) == (100, 97)
    assert preview.problems == [(line, reason) for line, (_n, _p, reason) in sorted(BAD.items())]
    assert preview.changes == {"new": 97, "unchanged": 0}
    assert count(db, PreviousProgram) == 0  # nothing yet
    assert roster_status(repository(console.services), case.id).flag_counts["previous_program"] == 0

    assert imports.confirm(db, preview.batch_id, actor="staff:amy") == {"new": 97, "unchanged": 0}
    assert count(db, PreviousProgram) == 97
    assert roster_status(repository(console.services), case.id).flag_counts["previous_program"] == 1  # flags recomputed
    with pytest.raises(imports.AlreadyDone):
        imports.confirm(db, preview.batch_id)

    again = imports.preview(db, imports.PREVIOUS, "list-again.csv", data)  # the same file once more
    assert again.same_file_confirmed_at is not None and again.changes == {"new": 0, "unchanged": 97}
    with db.session() as s:
        before = sorted(s.execute(select(PreviousProgram.id, PreviousProgram.business_number,
                                         PreviousProgram.imported_at)).all())
    assert imports.confirm(db, again.batch_id) == {"new": 0, "unchanged": 97}
    with db.session() as s:
        assert sorted(s.execute(select(PreviousProgram.id, PreviousProgram.business_number,
                                       PreviousProgram.imported_at)).all()) == before


def test_a_failure_while_confirming_leaves_nothing_half_imported(console, monkeypatch):
    db = console.db
    data, _good = previous_program_csv()
    preview = imports.preview(db, imports.PREVIOUS, "list.csv", data)

    def broken(session, numbers):
        raise RuntimeError("the database went away")

    monkeypatch.setattr("storage.letters.refresh_flags", broken)
    with pytest.raises(RuntimeError):
        imports.confirm(db, preview.batch_id)
    assert count(db, PreviousProgram) == 0
    assert imports.load_preview(db, preview.batch_id).status == "previewed"  # can be confirmed later
    monkeypatch.undo()
    assert imports.confirm(db, preview.batch_id)["new"] == 97


def test_assessment_results_from_xlsx_keep_leading_zeros_and_feed_the_test_status(console):
    db = console.db
    case = make_case(console.services)
    zero_led = next(valid_numbers(1_000_000))  # 01…: Excel shows it as a number without its zero
    add_owner(console.services, case.id, 1, number=zero_led)
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["統一編號", "前後測", "日期"])
    sheet.append([int(zero_led), "前測", "112/5/3"])
    sheet.append([zero_led, "後測", "2023-06-01"])
    sheet.append([zero_led, "期中考", "2023-06-01"])
    sheet.append(["22099131", "pre", "明天"])
    out = io.BytesIO()
    book.save(out)

    preview = imports.preview(db, imports.ASSESSMENTS, "results.xlsx", out.getvalue())
    assert preview.accepted == 2
    assert [line for line, _reason in preview.problems] == [4, 5]
    assert "期中考" in preview.problems[0][1] and "明天" in preview.problems[1][1]
    assert count(db, CompletionReport) == 0
    assert imports.confirm(db, preview.batch_id) == {"new": 2, "unchanged": 0}
    status = roster_status(repository(console.services), case.id)
    assert (status.tests_done("pre_test"), status.tests_done("post_test")) == (1, 1)
    again = imports.preview(db, imports.ASSESSMENTS, "results.xlsx", out.getvalue())
    assert imports.confirm(db, again.batch_id) == {"new": 0, "unchanged": 2}
    assert count(db, CompletionReport) == 2


def test_township_groups_feed_the_calculator_and_the_roster(console):
    services = console.services
    case = make_case(services, planned_count=50)
    add_owner(services, case.id, 1, number=next(valid_numbers(22_099_000)), county="63000", town="63000030")
    edition = edition_for(case_edition=112)[0]
    assert calculate("popularization", 50, edition, towns=["63000030"],
                     township_group=services.township_group).township.status == "unknown"

    data = "鄉鎮市區代碼,分群\n63000030,3\n63000010,1\n99999999,2\n63000020,6\n".encode()
    preview = imports.preview(console.db, imports.TOWNSHIPS, "groups.csv", data)
    assert preview.problems == [(4, "沒有代碼為 99999999 的鄉鎮市區"), (5, "分群須為 1 到 5 的數字，而不是 6")]
    assert services.township_group("63000030") is None
    imports.confirm(console.db, preview.batch_id)
    assert services.township_group("63000030") == 3  # the services' lookup sees the import at once
    assert calculate("popularization", 50, edition, towns=["63000030"],
                     township_group=services.township_group).township.status == "yes"
    assert roster_status(repository(services), case.id).township.status == "yes"

    changed = imports.preview(console.db, imports.TOWNSHIPS, "groups.csv", b"town_code,group\n63000030,4\n")
    assert changed.changes == {"new": 0, "changed": 1, "unchanged": 0}
    imports.confirm(console.db, changed.batch_id)
    with console.db.session() as s:
        assert s.get(TownshipGroup, "63000030").grp == 4


def test_a_file_without_the_columns_is_refused_as_a_whole(console):
    with pytest.raises(imports.FileProblem, match="第一行須為欄位名稱：統一編號、計畫名稱"):
        imports.preview(console.db, imports.PREVIOUS, "x.csv", b"a,b\n1,2\n")
    with pytest.raises(imports.FileProblem, match="Excel"):
        imports.preview(console.db, imports.PREVIOUS, "x.xlsx", b"PK\x03\x04 not really")


def test_the_import_command_shows_problems_and_imports_only_with_confirm(console, tmp_path):
    from bot.cli import main

    data, _good = previous_program_csv()
    path = tmp_path / "list.csv"
    path.write_bytes(data)
    env = {"DATABASE_URL": console.url, "REDIS_URL": ""}
    result = CliRunner().invoke(main, ["import", "previous-program", str(path)], env=env)
    assert result.exit_code == 0, result.output
    assert "前期計畫企業名單：共 100 筆，通過 97 筆，退回 3 筆。" in result.output
    assert "第 17 行：統一編號 22099132 未通過財政部檢查碼驗證" in result.output
    assert "尚未匯入任何資料" in result.output and count(console.db, PreviousProgram) == 0
    result = CliRunner().invoke(main, ["import", "previous-program", str(path), "--confirm"], env=env)
    assert "匯入完成：新增 97 筆、更新 0 筆、已存在 0 筆。" in result.output
    result = CliRunner().invoke(main, ["import", "previous-program", str(path), "--confirm"], env=env)
    assert "這個檔案先前已匯入過" in result.output and "新增 0 筆" in result.output
    assert count(console.db, PreviousProgram) == 97


def test_on_the_console_a_preview_then_a_confirm_button(console):
    admin = console.client("amy", "admin")
    data, _good = previous_program_csv()
    response = admin.post("/staff/imports", data={
        "kind": "previous-program", "csrf_token": console.token(admin, "/staff/imports"),
        "file": (io.BytesIO(data), "list.csv")}, content_type="multipart/form-data")
    assert response.status_code == 302
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    refused = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td></tr>", page)
    assert refused == [(str(line), reason) for line, (_n, _p, reason) in sorted(BAD.items())]
    assert "匯入通過檢查的 97 筆" in page and count(console.db, PreviousProgram) == 0
    batch = re.search(r'action="(/staff/imports/\d+/confirm)"', page).group(1)

    viewer = console.client("ben", "viewer")
    assert viewer.post(batch, data={"csrf_token": console.token(viewer, "/staff/imports")}).status_code == 403
    assert count(console.db, PreviousProgram) == 0

    response = admin.post(batch, data={"csrf_token": console.token(admin, "/staff/imports")})
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "匯入完成：新增 97 筆、更新 0 筆、已存在 0 筆。" in page and count(console.db, PreviousProgram) == 97
