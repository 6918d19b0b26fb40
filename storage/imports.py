"""Imports by staff, CSV or XLSX: previous-program list, assessment results, township groups.

An import has two steps, on the console and with ``gonghao import``:

1. `preview` reads the file, checks every row and keeps the accepted rows (normalised) in an
   ``imports`` row; the staff member sees every refused row with its line number (as a
   spreadsheet numbers it: the header is line 1) and the reason, and what the import would change.
   Nothing else is written.
2. `confirm` applies the kept rows in ONE transaction: all of them or none.

Applying the same file again changes nothing: a previous-program entry that is there already is
not added twice, an assessment result that is confirmed stays as it is, a township whose group
is the same is left alone.

- previous-program: 統一編號, 計畫名稱 → ``previous_programs``; the letters with those numbers get
  their flags recomputed (storage.letters.refresh_flags).
- assessments: 統一編號, 前測/後測 (pre/post), 日期 → storage.reminders.import_assessment_results.
- township-groups: 鄉鎮市區代碼 (8 digits, MOI), 分群 (1–5) → ``township_groups``, which the
  proposer calculator and the roster status read through ``services.township_group``.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Optional

from sqlalchemy import select

from dialogs.i18n import _, N_
from storage.staff import ImportBatch, TownshipGroup, TownshipGroups

PREVIOUS, ASSESSMENTS, TOWNSHIPS = "previous-program", "assessments", "township-groups"
KINDS = (PREVIOUS, ASSESSMENTS, TOWNSHIPS)
KIND_NAMES = {PREVIOUS: N_("previous-program list"), ASSESSMENTS: N_("assessment results"),
              TOWNSHIPS: N_("township groups")}
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
GROUPS = (1, 2, 3, 4, 5)

# Header names people use for each field (compared after trimming, lower case, no spaces).
COLUMNS = {
    "business_number": ("統一編號", "統編", "business_number", "tax_id", "營利事業統一編號"),
    "program_name": ("計畫名稱", "計畫", "program", "program_name", "參與計畫"),
    "kind": ("前後測", "測驗", "kind", "test", "type", "項目", "類別"),
    "day": ("日期", "完成日期", "date", "completed_on", "完成日"),
    "town_code": ("鄉鎮市區代碼", "鄉鎮代碼", "代碼", "town_code", "town", "行政區代碼"),
    "group": ("分群", "數位發展分群", "群", "group", "組別", "分類"),
}
REQUIRED = {PREVIOUS: ("business_number", "program_name"), ASSESSMENTS: ("business_number", "kind", "day"),
            TOWNSHIPS: ("town_code", "group")}


class FileProblem(ValueError):
    """A file that cannot be read at all (not a row problem)."""


@dataclass
class Preview:
    """What a file holds: accepted rows, refused rows with reasons, and what confirming would change."""

    batch_id: Optional[int]
    kind: str
    filename: str
    total: int
    rows: list = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    changes: dict = field(default_factory=dict)
    status: str = "previewed"
    same_file_confirmed_at: Optional[datetime] = None

    @property
    def accepted(self) -> int:
        return len(self.rows)


# -- reading files ---------------------------------------------------------------------------------
def _header_key(text) -> str:
    return "".join(str(text or "").split()).lower()


def read_rows(filename: str, data: bytes) -> list[tuple[int, list]]:
    """(line number, cells) of every non-empty line of a CSV or XLSX file, the header first."""
    if len(data) > MAX_BYTES:
        raise FileProblem(_("The file is larger than {mb} MB.").format(mb=MAX_BYTES // (1024 * 1024)))
    name = (filename or "").lower()
    if name.endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if name.endswith(".xls"):
        raise FileProblem(_("Old .xls files cannot be read: please save the file as .xlsx or CSV."))
    return _read_csv(data)


def _read_csv(data: bytes) -> list[tuple[int, list]]:
    for encoding in ("utf-8-sig", "cp950"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileProblem(_("The file is neither UTF-8 nor Big5 text: please save it as CSV UTF-8."))
    sample = text[:4096]
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    out = []
    for number, cells in enumerate(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter), start=1):
        if any(str(c).strip() for c in cells):
            out.append((number, cells))
        if len(out) > MAX_ROWS:
            raise FileProblem(_("The file has more than {n} rows.").format(n=MAX_ROWS))
    return out


def _read_xlsx(data: bytes) -> list[tuple[int, list]]:
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise FileProblem(_("The file cannot be read as an Excel workbook (.xlsx)."))
    try:
        sheet = workbook.worksheets[0]
        out = []
        for number, cells in enumerate(sheet.iter_rows(values_only=True), start=1):
            if any(c not in (None, "") and str(c).strip() for c in cells):
                out.append((number, list(cells)))
            if len(out) > MAX_ROWS:
                raise FileProblem(_("The file has more than {n} rows.").format(n=MAX_ROWS))
        return out
    finally:
        workbook.close()


def _columns(kind: str, header: list) -> dict[str, int]:
    keys = [_header_key(h) for h in header]
    found = {}
    for name, aliases in COLUMNS.items():
        for alias in aliases:
            if _header_key(alias) in keys:
                found[name] = keys.index(_header_key(alias))
                break
    missing = [n for n in REQUIRED[kind] if n not in found]
    if missing:
        wanted = "、".join(COLUMNS[n][0] for n in REQUIRED[kind])
        raise FileProblem(_("The first line must name the columns: {columns}.").format(columns=wanted))
    return found


def _cell(cells: list, index: Optional[int]):
    if index is None or index >= len(cells):
        return None
    return cells[index]


def _digits(value, width: int) -> str:
    """A number typed in a spreadsheet may have lost its leading zeros: 4595257 → 04595257."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int):
        return str(value).zfill(width) if 0 <= value < 10 ** width else str(value)
    return "".join(str(value or "").split())


# -- checking rows -----------------------------------------------------------------------------------
def _business_number(value) -> tuple[Optional[str], Optional[str]]:
    from dialogs.validators import business_number_checksum_ok

    number = _digits(value, 8)
    if not number:
        return None, _("統一編號 is empty")
    if not (len(number) == 8 and number.isdigit()):
        return None, _("統一編號 must have 8 digits: {value}").format(value=number)
    if not business_number_checksum_ok(number):
        return None, _("統一編號 {value} fails the Ministry of Finance checksum").format(value=number)
    return number, None


def _check_previous(cells, cols) -> tuple[Optional[dict], Optional[str]]:
    number, problem = _business_number(_cell(cells, cols["business_number"]))
    if problem:
        return None, problem
    from dialogs.engine import Refused
    from dialogs.validators import form_text

    try:  # the same normaliser as the owners' answers (control characters, emoji)
        name = form_text(_cell(cells, cols["program_name"]), "", questions=False)
    except Refused as refusal:
        return None, refusal.message
    if not name:
        return None, _("the program name is empty")
    if len(name) > 200:
        return None, _("the program name is longer than 200 characters")
    return {"business_number": number, "program_name": name}, None


def _check_assessment(cells, cols) -> tuple[Optional[dict], Optional[str]]:
    from storage.reminders import ASSESSMENT_KINDS, _KIND_WORDS, _read_day

    number, problem = _business_number(_cell(cells, cols["business_number"]))
    if problem:
        return None, problem
    raw_kind = _cell(cells, cols["kind"])
    kind = _KIND_WORDS.get(str(raw_kind or "").strip().lower().replace("-", "_").replace(" ", "_"))
    if kind not in ASSESSMENT_KINDS:
        return None, _("the test must be 前測 or 後測 (pre or post), not {value}").format(value=raw_kind or "—")
    raw_day = _cell(cells, cols["day"])
    try:
        day = _read_day(raw_day)
    except (ValueError, IndexError):
        day = None
    if day is None:
        return None, _("not a date: {value} (write 112/5/3 or 2023-05-03)").format(value=raw_day or "—")
    return {"business_number": number, "kind": kind, "day": day.isoformat()}, None


def _check_township(cells, cols) -> tuple[Optional[dict], Optional[str]]:
    from dialogs import townships

    code = _digits(_cell(cells, cols["town_code"]), 8)
    if not (len(code) == 8 and code.isdigit()):
        return None, _("the town code must have 8 digits: {value}").format(value=code or "—")
    if townships.town(code) is None:
        return None, _("no township has the code {value}").format(value=code)
    raw = _cell(cells, cols["group"])
    text = _digits(raw, 1)
    for word in ("第", "群", "組", "group"):
        text = text.replace(word, "")
    if not text.isdigit() or int(text) not in GROUPS:
        return None, _("the group must be a number from 1 to 5, not {value}").format(value=raw if raw else "—")
    return {"town_code": code, "group": int(text)}, None


CHECKS: dict[str, Callable] = {PREVIOUS: _check_previous, ASSESSMENTS: _check_assessment, TOWNSHIPS: _check_township}


def check_file(kind: str, filename: str, data: bytes) -> tuple[int, list[dict], list[tuple[int, str]]]:
    """(data rows, accepted rows normalised, [(line, reason)]) — every row is checked."""
    if kind not in KINDS:
        raise FileProblem(_("Unknown import {kind}.").format(kind=kind))
    lines = read_rows(filename, data)
    if not lines:
        raise FileProblem(_("The file is empty."))
    _line, header = lines[0]
    cols = _columns(kind, header)
    accepted, problems, seen = [], [], {}
    for line, cells in lines[1:]:
        row, problem = CHECKS[kind](cells, cols)
        if problem:
            problems.append((line, problem))
            continue
        key, value = _identity(kind, row)
        if key in seen:
            if seen[key][1] != value:
                problems.append((line, _("line {first} already gives a different value for the same entry").format(
                    first=seen[key][0])))
            continue  # the same row twice: counted once
        seen[key] = (line, value)
        accepted.append(row)
    return len(lines) - 1, accepted, problems


def _identity(kind: str, row: dict) -> tuple:
    if kind == PREVIOUS:
        return (row["business_number"], row["program_name"]), None
    if kind == ASSESSMENTS:
        return (row["business_number"], row["kind"]), row["day"]
    return row["town_code"], row["group"]


# -- what it would change, and applying it -----------------------------------------------------------
def _changes(db, kind: str, rows: list[dict]) -> dict:
    """How many rows are new, changed or already there (for the preview and the result)."""
    with db.session() as s:
        if kind == PREVIOUS:
            from storage.letters import PreviousProgram

            have = set(s.execute(select(PreviousProgram.business_number, PreviousProgram.program_name)).all())
            new = sum(1 for r in rows if (r["business_number"], r["program_name"]) not in have)
            return {"new": new, "unchanged": len(rows) - new}
        if kind == ASSESSMENTS:
            from storage.reminders import CompletionReport

            confirmed = set(s.execute(select(CompletionReport.kind, CompletionReport.subject)
                                      .where(CompletionReport.confirmed_at.is_not(None))).all())
            new = sum(1 for r in rows if (r["kind"], f"tax:{r['business_number']}") not in confirmed)
            return {"new": new, "unchanged": len(rows) - new}
        have = dict(s.execute(select(TownshipGroup.town_code, TownshipGroup.grp)).all())
        new = sum(1 for r in rows if r["town_code"] not in have)
        changed = sum(1 for r in rows if r["town_code"] in have and have[r["town_code"]] != r["group"])
        return {"new": new, "changed": changed, "unchanged": len(rows) - new - changed}


def preview(db, kind: str, filename: str, data: bytes, actor: str = "staff") -> Preview:
    """Checks the file and keeps its accepted rows for `confirm`; writes nothing else."""
    total, rows, problems = check_file(kind, filename, data)
    digest = hashlib.sha256(data).hexdigest()
    with db.session() as s:
        earlier = s.scalar(select(ImportBatch.confirmed_at).where(
            ImportBatch.sha256 == digest, ImportBatch.kind == kind, ImportBatch.status == "confirmed")
            .order_by(ImportBatch.id.desc()).limit(1))
        batch = ImportBatch(kind=kind, filename=(filename or "")[:255], sha256=digest, status="previewed", total=total,
                            accepted=len(rows), rejected=len(problems), rows=json.dumps(rows, ensure_ascii=False),
                            problems=json.dumps(problems, ensure_ascii=False), created_by=actor[:128])
        s.add(batch)
        s.flush()
        batch_id = batch.id
    return Preview(batch_id, kind, filename, total, rows, problems, _changes(db, kind, rows),
                   same_file_confirmed_at=earlier)


def load_preview(db, batch_id: int) -> Optional[Preview]:
    with db.session() as s:
        batch = s.get(ImportBatch, batch_id)
        if batch is None:
            return None
        rows = json.loads(batch.rows or "[]")
        result = Preview(batch.id, batch.kind, batch.filename, batch.total, rows,
                         [tuple(p) for p in json.loads(batch.problems or "[]")], status=batch.status)
    result.changes = json.loads(_result_of(db, batch_id) or "null") or _changes(db, result.kind, rows)
    return result


def _result_of(db, batch_id: int) -> Optional[str]:
    with db.session() as s:
        return s.scalar(select(ImportBatch.result).where(ImportBatch.id == batch_id))


def recent(db, limit: int = 50) -> list[ImportBatch]:
    with db.session() as s:
        return list(s.scalars(select(ImportBatch).order_by(ImportBatch.id.desc()).limit(limit)))


class AlreadyDone(ValueError):
    pass


def confirm(db, batch_id: int, actor: str = "staff") -> dict:
    """Applies a previewed import in one transaction; returns what changed (new / changed / unchanged)."""
    with db.session() as s:
        batch = s.get(ImportBatch, batch_id, with_for_update=db.engine.dialect.name == "postgresql")
        if batch is None:
            raise LookupError(batch_id)
        if batch.status != "previewed":
            raise AlreadyDone(batch.status)
        kind, rows = batch.kind, json.loads(batch.rows or "[]")
        if kind == ASSESSMENTS:
            batch.status = "confirming"  # applied below by storage.reminders, in its own transaction
        else:
            result = _apply(s, kind, rows)
            batch.status, batch.result = "confirmed", json.dumps(result)
            batch.confirmed_by, batch.confirmed_at = actor[:128], datetime.now(timezone.utc)
    if kind == ASSESSMENTS:
        result = _apply_assessments(db, batch_id, rows, actor)
    if kind == TOWNSHIPS:
        TownshipGroups.changed()
    db.audit(actor, "import.confirmed", f"import:{batch_id}", kind=kind, rows=len(rows), **result)
    return result


def discard(db, batch_id: int, actor: str = "staff") -> None:
    with db.session() as s:
        batch = s.get(ImportBatch, batch_id)
        if batch is not None and batch.status == "previewed":
            batch.status, batch.rows = "discarded", "[]"


def _apply(s, kind: str, rows: list[dict]) -> dict:
    from storage.letters import PreviousProgram, refresh_flags

    if kind == PREVIOUS:
        have = set(s.execute(select(PreviousProgram.business_number, PreviousProgram.program_name)).all())
        new = [r for r in rows if (r["business_number"], r["program_name"]) not in have]
        for r in new:
            s.add(PreviousProgram(business_number=r["business_number"], program_name=r["program_name"]))
        s.flush()
        refresh_flags(s, {r["business_number"] for r in new})
        return {"new": len(new), "unchanged": len(rows) - len(new)}
    have = {t.town_code: t for t in s.scalars(select(TownshipGroup))}
    new = changed = 0
    now = datetime.now(timezone.utc)
    for r in rows:
        found = have.get(r["town_code"])
        if found is None:
            s.add(TownshipGroup(town_code=r["town_code"], grp=r["group"], updated_at=now))
            new += 1
        elif found.grp != r["group"]:
            found.grp, found.updated_at = r["group"], now
            changed += 1
    return {"new": new, "changed": changed, "unchanged": len(rows) - new - changed}


def _apply_assessments(db, batch_id: int, rows: list[dict], actor: str) -> dict:
    """storage.reminders writes all the rows in one transaction; a failure puts the batch back."""
    from storage.reminders import import_assessment_results

    try:
        done = import_assessment_results(db, [(r["business_number"], r["kind"], r["day"]) for r in rows],
                                         source=f"import:{batch_id}", actor=actor)
    except Exception:
        with db.session() as s:
            s.get(ImportBatch, batch_id).status = "previewed"
        raise
    result = {"new": done.confirmed, "unchanged": done.already}
    with db.session() as s:
        batch = s.get(ImportBatch, batch_id)
        batch.status, batch.result = "confirmed", json.dumps(result)
        batch.confirmed_by, batch.confirmed_at = actor[:128], datetime.now(timezone.utc)
    return result


def kind_name(kind: str) -> str:
    return _(KIND_NAMES.get(kind, kind))
