"""Bounded uploads: each route takes the body it needs (imports what the console promises, the webhook 1 MiB,
forms little); XLSX is streamed with caps on rows, columns, cell size and how far it may unpack."""
from __future__ import annotations

import io
import time
import zipfile

import openpyxl
import pytest

from storage import imports
from storage.letters import PreviousProgram
from tests.roster_support import console, valid_numbers  # noqa: F401


def upload(console, client, data: bytes, name: str = "list.csv"):
    return client.post("/staff/imports", data={
        "kind": "previous-program", "csrf_token": console.token(client, "/staff/imports"),
        "file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def csv_of(size: int) -> bytes:
    """A previous-program list of about ``size`` bytes, every row valid."""
    numbers = valid_numbers(40_000_000)
    lines = ["統一編號,計畫名稱"]
    total = 0
    while total < size:
        line = f"{next(numbers)},雲世代產業數位轉型計畫（第{len(lines)}批）"
        lines.append(line)
        total += len(line.encode()) + 2
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def test_a_2_mb_import_is_accepted_and_a_body_past_the_promised_20_mb_is_refused(console):
    admin = console.client("amy", "admin")
    response = upload(console, admin, csv_of(2 * 1024 * 1024))
    assert response.status_code == 302, response.status_code  # the webhook's 1 MiB no longer applies here
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    assert "匯入通過檢查的" in page
    too_big = upload(console, admin, b"x" * (21 * 1024 * 1024 + 1))
    assert too_big.status_code == 413


def test_other_routes_keep_small_limits(console):
    admin = console.client("amy", "admin")
    token = console.token(admin, "/staff/cases/new")
    form = admin.post("/staff/cases/new", data={"plan_name": "x" * 300_000, "csrf_token": token})
    assert form.status_code == 413
    login = console.app.test_client().post("/staff/login", data={"name": "x" * 300_000})
    assert login.status_code == 413
    webhook = console.app.test_client().post("/callback", data=b"{" + b" " * (1024 * 1024) + b"}",
                                             headers={"Content-Type": "application/json", "x-line-signature": "x"})
    assert webhook.status_code == 413


def workbook_with_sheet(xml: bytes) -> bytes:
    """A real workbook made by openpyxl whose first sheet is replaced by ``xml``."""
    book = openpyxl.Workbook()
    book.active["A1"] = "placeholder"
    plain = io.BytesIO()
    book.save(plain)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(plain.getvalue())) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for item in source.infolist():
            data = xml if item.filename == "xl/worksheets/sheet1.xml" else source.read(item.filename)
            target.writestr(item.filename, data)
    return out.getvalue()


SHEET = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
         b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
         b'<dimension ref="%s"/><sheetData>%s</sheetData></worksheet>')


def test_an_xlsx_of_two_million_cells_in_a_hundred_kilobytes_is_refused_at_once(console):
    row = b"<row>" + b"<c><v>1</v></c>" * 1000 + b"</row>"
    bomb = workbook_with_sheet(SHEET % (b"A1:ALL2000", row * 2000))
    assert len(bomb) < 200_000
    admin = console.client("amy", "admin")
    started = time.monotonic()
    response = upload(console, admin, bomb, "bomb.xlsx")
    assert time.monotonic() - started < 3
    assert response.status_code == 400 and "解壓縮後的資料量遠超過檔案大小" in response.get_data(as_text=True)


def test_a_declared_sheet_size_is_not_trusted_and_columns_past_fifty_are_not_read(console):
    numbers = valid_numbers(22_099_000)
    header = b'<row r="1"><c r="A1" t="inlineStr"><is><t>\xe7\xb5\xb1\xe4\xb8\x80\xe7\xb7\xa8\xe8\x99\x9f</t></is></c>' \
             b'<c r="B1" t="inlineStr"><is><t>\xe8\xa8\x88\xe7\x95\xab\xe5\x90\x8d\xe7\xa8\xb1</t></is></c></row>'
    rows = b"".join(b'<row r="%d"><c r="A%d" t="inlineStr"><is><t>%s</t></is></c>'
                    b'<c r="B%d" t="inlineStr"><is><t>P</t></is></c><c r="XFD%d"><v>7</v></c></row>'
                    % (n, n, next(numbers).encode(), n, n) for n in range(2, 5))
    data = workbook_with_sheet(SHEET % (b"A1:XFD1048576", header + rows))
    started = time.monotonic()
    lines = imports.read_rows("wide.xlsx", data)
    assert time.monotonic() - started < 3
    assert len(lines) == 4 and all(len(cells) <= imports.MAX_COLUMNS for _n, cells in lines)


def test_a_cell_longer_than_the_cap_is_refused_with_its_line(console):
    data = "統一編號,計畫名稱\r\n22099131,短名稱\r\n22099131,{}\r\n".format("長" * 1001).encode()
    with pytest.raises(imports.FileProblem, match="第 3 列有儲存格超過 1000 個字"):
        from dialogs.i18n import use_locale

        with use_locale("zh_TW"):
            imports.read_rows("list.csv", data)


def test_control_characters_in_an_imported_file_are_removed(console):
    number = next(valid_numbers(22_099_000))
    data = f"統一編號,計畫名稱\r\n{number},雲世代\x00產業\x1b數位轉型計畫\r\n".encode()
    preview = imports.preview(console.db, imports.PREVIOUS, "list.csv", data)
    imports.confirm(console.db, preview.batch_id)
    with console.db.session() as s:
        assert [p.program_name for p in s.query(PreviousProgram)] == ["雲世代產業數位轉型計畫"]
