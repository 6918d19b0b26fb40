"""Exports for the program office: the 附件一 roster, the letters, the pre/post-test status.

Each export is a `Table` whose rows are *generated* from a server-side cursor (``stream_results``
with ``yield_per``), so 100,000 letters never sit in memory at once; the writers stream them
into XLSX (XlsxWriter in ``constant_memory`` mode) or CSV (UTF-8 with a BOM, so Excel reads the
Chinese correctly).

The roster's first columns are exactly those of 附件一 柒.1 「預定輔導企業彙總表」 of the
guidelines, in its order; stable machine-named columns follow (case_id, flags, letter_status,
submitted_at, updated_at) for anyone who processes the file further.

Every string cell that begins with =, +, -, @, a tab or a carriage return is neutralised
against formula injection by a leading single quote (OWASP "CSV Injection"), and the XLSX writer
never turns strings into formulas, numbers or links. 統編 and phones are text cells, so leading
zeros stay. `export` writes the audit-log entry: who, when, what, how many rows.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, BinaryIO, Callable, Iterable, Iterator, Optional, Union

from sqlalchemy import select

from common.dates import TAIPEI
from common.townships import place
from dialogs.eligibility import letter_flags
from dialogs.letter_doc import letter_url, national_phone
from storage.letters import SUBMITTED, WITHDRAWN, Case, Letter
from storage.reminders import ASSESSMENT_KINDS, CompletionReport


KINDS = ("roster", "letters", "tests")
FORMATS = ("xlsx", "csv")
YIELD_PER = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FLAG_ORDER = ("over_nine", "conflict", "duplicate", "previous_program", "not_eligible")

# 附件一 柒.1 預定輔導企業彙總表 (the guidelines' own column names and order; the year comes from the edition)
ROSTER_HEADERS = ("序", "統編", "公司人數", "公司名稱", "所在地(縣市/鄉鎮)", "主要服務/產品",
                  "企業型態 1.商業登記 2.稅籍登記", "{year}年是否參與/申請政府相關輔導/補助計畫 是：計畫名稱 / 否")
MACHINE_HEADERS = ("case_id", "flags", "letter_status", "submitted_at", "updated_at")


def roster_headers(year: Optional[int]) -> list[str]:
    """The 附件一 header row; the last 附件一 column names the edition's year as the form does."""
    headers = list(ROSTER_HEADERS)
    last = headers[-1]
    headers[-1] = last.format(year=year) if year else last.replace("{year}年", "")
    return headers + list(MACHINE_HEADERS)


# -- cells ------------------------------------------------------------------------------------------
def neutralise(value: Any) -> Any:
    """A string that a spreadsheet would read as a formula gets a leading single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def local_time(moment: Optional[datetime]) -> str:
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(TAIPEI).strftime("%Y-%m-%d %H:%M:%S")


def other_programs_text(declared: Optional[bool], names: Optional[str]) -> str:
    """是：計畫名稱 / 否, as 附件一 writes it; empty when the owner has not answered yet."""
    if declared is None:
        return ""
    if declared:
        return f"是：{names}" if names else "是"
    return "否"


# -- tables -----------------------------------------------------------------------------------------
@dataclass
class Table:
    """An export: its header row, which columns are text, their widths, and the rows (generated)."""

    kind: str
    headers: list[str]
    rows: Iterable[list]
    text_columns: frozenset = frozenset()
    widths: list[float] = field(default_factory=list)
    subject: str = ""


def _stream(db, query) -> Iterator:
    """Rows from a server-side cursor, fetched ``YIELD_PER`` at a time."""
    with db.engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=YIELD_PER).execute(query)
        for row in result:
            yield row


def _letters_query(columns, case_id: Optional[int], edition: Optional[int], include_withdrawn: bool):
    query = select(*columns).join(Case, Case.id == Letter.case_id).order_by(Letter.case_id, Letter.id)
    if case_id is not None:
        query = query.where(Letter.case_id == case_id)
    if edition is not None:
        query = query.where(Case.edition == edition)
    if not include_withdrawn:
        query = query.where(Letter.status != WITHDRAWN)
    return query


def _subject(case_id, edition) -> str:
    if case_id is not None:
        return f"case:{case_id}"
    if edition is not None:
        return f"edition:{edition}"
    return "all"


def _year_of(db, case_id, edition) -> Optional[int]:
    if edition is not None:
        return int(edition)
    if case_id is not None:
        with db.session() as s:
            case = s.get(Case, case_id)
            return case.edition if case else None
    return None


_FLAG_COLUMNS = (Letter.flag_over_nine, Letter.flag_conflict, Letter.flag_duplicate, Letter.flag_previous_program,
                 Letter.screening)


def roster_table(db, case_id: Optional[int] = None, edition: Optional[int] = None, **_ignored) -> Table:
    """附件一 柒.1 for a case or a whole edition: every enterprise that joined (withdrawn ones left out)."""
    columns = (Letter.case_id, Letter.status, Letter.business_number, Letter.employees, Letter.company_name,
               Letter.county_code, Letter.town_code, Letter.products, Letter.company_type, Letter.other_programs,
               Letter.other_program_names, Letter.submitted_at, Letter.updated_at, Case.edition) + _FLAG_COLUMNS
    query = _letters_query(columns, case_id, edition, include_withdrawn=False)

    def rows():
        for number, r in enumerate(_stream(db, query), start=1):
            yield [number, r.business_number or "", r.employees, r.company_name or "",
                   place(r.county_code, r.town_code), r.products or "", r.company_type,
                   other_programs_text(r.other_programs, r.other_program_names),
                   r.case_id, ",".join(letter_flags(r, r.edition)), r.status,
                   local_time(r.submitted_at) if r.status == SUBMITTED else "", local_time(r.updated_at)]

    return Table("roster", roster_headers(_year_of(db, case_id, edition)), rows(), frozenset({1}),
                 [5, 11, 9, 28, 18, 30, 14, 36, 8, 30, 11, 20, 20], _subject(case_id, edition))


LETTER_HEADERS = ("letter_id", "case_id", "計畫名稱", "letter_status", "version", "企業名稱", "統一編號", "企業型態",
                  "員工人數", "所在地(縣市/鄉鎮)", "主要服務/產品", "當年度參與/申請政府相關計畫", "聯絡人", "手機", "電話",
                  "分機", "E-mail", "代表人", "地址", "承諾事項同意時間", "flags", "submitted_at", "updated_at",
                  "document_url")


def letters_table(db, case_id: Optional[int] = None, edition: Optional[int] = None, config=None,
                  **_ignored) -> Table:
    """Every letter of intent (附件二 一) with its values, status, flags and a signed link to its document."""
    columns = (Letter.id, Letter.case_id, Case.plan_name, Letter.status, Letter.version, Letter.company_name,
               Letter.business_number, Letter.company_type, Letter.employees, Letter.county_code, Letter.town_code,
               Letter.products, Letter.other_programs, Letter.other_program_names, Letter.contact_name, Letter.mobile,
               Letter.phone, Letter.phone_ext, Letter.email, Letter.representative, Letter.address,
               Letter.undertakings_at, Letter.submitted_at, Letter.updated_at, Case.edition) + _FLAG_COLUMNS
    query = _letters_query(columns, case_id, edition, include_withdrawn=True)

    def rows():
        for r in _stream(db, query):
            url = letter_url(config, r.id, r.version) if config is not None and r.status == SUBMITTED else ""
            yield [r.id, r.case_id, r.plan_name, r.status, r.version, r.company_name or "", r.business_number or "",
                   r.company_type, r.employees, place(r.county_code, r.town_code), r.products or "",
                   other_programs_text(r.other_programs, r.other_program_names), r.contact_name or "",
                   national_phone(r.mobile), national_phone(r.phone), r.phone_ext or "", r.email or "",
                   r.representative or "", r.address or "", local_time(r.undertakings_at),
                   ",".join(letter_flags(r, r.edition)), local_time(r.submitted_at) if r.status == SUBMITTED else "",
                   local_time(r.updated_at), url]

    return Table("letters", list(LETTER_HEADERS), rows(), frozenset({6, 13, 14, 15}),
                 [9, 8, 24, 11, 7, 28, 11, 8, 8, 18, 30, 30, 12, 14, 16, 6, 28, 12, 36, 20, 30, 20, 20, 60],
                 _subject(case_id, edition))


TEST_HEADERS = ("case_id", "統編", "公司名稱", "前測", "前測完成日", "後測", "後測完成日", "pre_test", "post_test",
                "letter_status")
TEST_STATE_NAMES = {"confirmed": "已完成（匯入確認）", "self_reported": "已完成（自行回報）", "not_done": "未完成"}


def _completions(db) -> tuple[dict, dict]:
    """{(kind, user id)} and {(kind, 統編)} → (state, day) for the pre/post tests (confirmed wins)."""
    by_user: dict = {}
    by_tax: dict = {}
    query = select(CompletionReport.kind, CompletionReport.user_id, CompletionReport.tax_id,
                   CompletionReport.self_reported_at, CompletionReport.confirmed_at, CompletionReport.completed_on
                   ).where(CompletionReport.kind.in_(ASSESSMENT_KINDS))
    for kind, user_id, tax_id, reported, confirmed, day in _stream(db, query):
        state = ("confirmed", day) if confirmed else ("self_reported", None) if reported else None
        if state is None:
            continue
        for table, key in ((by_user, user_id), (by_tax, tax_id)):
            if key and (table.get((kind, key), ("",))[0] != "confirmed"):
                table[(kind, key)] = state
    return by_user, by_tax


def tests_table(db, case_id: Optional[int] = None, edition: Optional[int] = None, **_ignored) -> Table:
    """The pre-test and post-test of every enterprise that joined (self-reported, or confirmed by import)."""
    by_user, by_tax = _completions(db)
    columns = (Letter.case_id, Letter.user_id, Letter.business_number, Letter.company_name, Letter.status)
    query = _letters_query(columns, case_id, edition, include_withdrawn=False)

    def state(kind, user_id, tax_id):
        found = [by_user.get((kind, user_id)), by_tax.get((kind, tax_id)) if tax_id else None]
        confirmed = next((f for f in found if f and f[0] == "confirmed"), None)
        return confirmed or next((f for f in found if f), ("not_done", None))

    def rows():
        for r in _stream(db, query):
            pre = state("pre_test", r.user_id, r.business_number)
            post = state("post_test", r.user_id, r.business_number)
            yield [r.case_id, r.business_number or "", r.company_name or "", TEST_STATE_NAMES[pre[0]],
                   pre[1].isoformat() if pre[1] else "", TEST_STATE_NAMES[post[0]],
                   post[1].isoformat() if post[1] else "", pre[0], post[0], r.status]

    return Table("tests", list(TEST_HEADERS), rows(), frozenset({1}), [8, 11, 28, 18, 12, 18, 12, 14, 14, 11],
                 _subject(case_id, edition))


TABLES: dict[str, Callable[..., Table]] = {"roster": roster_table, "letters": letters_table, "tests": tests_table}


# -- writers ----------------------------------------------------------------------------------------
def write_xlsx(table: Table, target: Union[str, BinaryIO]) -> int:
    """Writes the table as one worksheet (constant memory); returns the number of data rows."""
    import xlsxwriter

    options = {"constant_memory": True, "strings_to_formulas": False, "strings_to_numbers": False,
               "strings_to_urls": False}
    if not isinstance(target, str):
        options["in_memory"] = True  # a file object: assembled in memory (small exports only)
    workbook = xlsxwriter.Workbook(target, options)
    try:
        sheet = workbook.add_worksheet(table.kind)
        header = workbook.add_format({"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#EEEEEE",
                                      "border": 1})
        text = workbook.add_format({"num_format": "@"})
        for col, width in enumerate(table.widths):
            sheet.set_column(col, col, width, text if col in table.text_columns else None)
        sheet.freeze_panes(1, 0)
        for col, name in enumerate(table.headers):
            sheet.write_string(0, col, name, header)
        count = 0
        write_string, write_number, write_boolean = sheet.write_string, sheet.write_number, sheet.write_boolean
        text_columns = table.text_columns
        for count, row in enumerate(table.rows, start=1):  # constant_memory: strictly row after row
            for col, value in enumerate(row):
                if value is None or value == "":
                    continue
                if col in text_columns:
                    write_string(count, col, neutralise(str(value)), text)
                elif value.__class__ is str:
                    write_string(count, col, neutralise(value))
                elif isinstance(value, bool):
                    write_boolean(count, col, value)
                elif isinstance(value, (int, float)):
                    write_number(count, col, value)
                else:
                    write_string(count, col, neutralise(str(value)))
        if count:
            sheet.autofilter(0, 0, count, len(table.headers) - 1)
    finally:
        workbook.close()
    return count


def csv_chunks(table: Table, counter: Optional[list] = None, rows_per_chunk: int = 500) -> Iterator[bytes]:
    """The table as CSV bytes (UTF-8 with BOM, CRLF), in chunks; ``counter[0]`` counts the data rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(table.headers)
    yield "\ufeff".encode("utf-8") + buffer.getvalue().encode("utf-8")
    buffer.seek(0)
    buffer.truncate()
    pending = 0
    for row in table.rows:
        writer.writerow(["" if v is None else neutralise(v if not isinstance(v, bool) else int(v)) for v in row])
        pending += 1
        if counter is not None:
            counter[0] += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue().encode("utf-8")
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    if buffer.getvalue():
        yield buffer.getvalue().encode("utf-8")


def write_csv(table: Table, target: Union[str, BinaryIO]) -> int:
    counter = [0]
    if isinstance(target, str):
        with open(target, "wb") as fh:
            for chunk in csv_chunks(table, counter):
                fh.write(chunk)
    else:
        for chunk in csv_chunks(table, counter):
            target.write(chunk)
    return counter[0]


def make_table(db, kind: str, case_id: Optional[int] = None, edition: Optional[int] = None, config=None) -> Table:
    if kind not in TABLES:
        raise ValueError(f"the export must be one of {', '.join(KINDS)}")
    if case_id is None and edition is None:
        raise ValueError("give a case or an edition")
    return TABLES[kind](db, case_id=case_id, edition=edition, config=config)


def export(db, kind: str, fmt: str, target: Union[str, BinaryIO], *, case_id: Optional[int] = None,
           edition: Optional[int] = None, actor: str = "staff", config=None) -> int:
    """Writes one export to a path or a binary file, logs it (who, what, how many rows) and returns the rows."""
    if fmt not in FORMATS:
        raise ValueError(f"the format must be one of {', '.join(FORMATS)}")
    table = make_table(db, kind, case_id, edition, config)
    count = write_xlsx(table, target) if fmt == "xlsx" else write_csv(table, target)
    audit_export(db, actor, table, fmt, count)
    return count


def audit_export(db, actor: str, table: Table, fmt: str, rows: int, complete: bool = True) -> None:
    detail = {"format": fmt, "rows": rows}
    if not complete:
        detail["complete"] = False
    db.audit(actor, f"export.{table.kind}", table.subject, **detail)


def filename(kind: str, fmt: str, case_id: Optional[int] = None, edition: Optional[int] = None) -> str:
    """A download name such as 附件一-roster-case-12-20230310.xlsx (ASCII-safe apart from the prefix)."""
    prefix = {"roster": "附件一預定輔導企業彙總表", "letters": "企業合作意向書", "tests": "前後測狀態"}[kind]
    scope = f"case-{case_id}" if case_id is not None else f"edition-{edition}"
    stamp = datetime.now(TAIPEI).strftime("%Y%m%d-%H%M")
    return f"{prefix}-{scope}-{stamp}.{fmt}"
