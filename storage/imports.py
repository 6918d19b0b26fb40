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

import base64
import csv
import hashlib
import io
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator, Optional

from sqlalchemy import select

from common import townships
from common.business_number import checksum_ok as business_number_checksum_ok
from common.i18n import _, N_
from common.text import FormTextRefused, form_text, scrub
from storage import letters
from storage.letters import PreviousProgram
from storage.reminders import ASSESSMENT_KINDS, KIND_WORDS, CompletionReport, import_assessment_results, read_day
from storage.staff import ImportBatch, TownshipGroup, TownshipGroups

PREVIOUS, ASSESSMENTS, TOWNSHIPS = "previous-program", "assessments", "township-groups"
KINDS = (PREVIOUS, ASSESSMENTS, TOWNSHIPS)
KIND_NAMES = {PREVIOUS: N_("previous-program list"), ASSESSMENTS: N_("assessment results"),
              TOWNSHIPS: N_("township groups")}
MAX_BYTES = 20 * 1024 * 1024  # what the console promises (bot.security lets an import's body be this big)
MAX_ROWS = 200_000  # rows with something in them
MAX_LINES = MAX_ROWS + 50_000  # lines read, empty ones too
MAX_COLUMNS = 50  # columns read; further columns are not looked at
MAX_CELL = 1000  # characters in one cell
MAX_UNZIPPED = 256 * 1024 * 1024  # an XLSX part, unpacked
MAX_RATIO = 100  # how much an XLSX part may expand: more is a bomb, not a spreadsheet
GROUPS = (1, 2, 3, 4, 5)
CHUNK = 5000  # rows per INSERT when a confirmed import is applied
PACKED = "zlib+base64:"

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
    count: Optional[int] = None  # accepted rows, when ``rows`` is not loaded (a big file's rows stay packed)

    @property
    def accepted(self) -> int:
        return self.count if self.count is not None else len(self.rows)


# -- reading files ---------------------------------------------------------------------------------
def _header_key(text) -> str:
    return "".join(str(text or "").split()).lower()


def read_rows(filename: str, data: bytes) -> list[tuple[int, list]]:
    """(line number, cells) of every non-empty line of a CSV or XLSX file, the header first."""
    return list(iter_rows(filename, data))


def iter_rows(filename: str, data: bytes) -> Iterator[tuple[int, list]]:
    """`read_rows` one line at a time: a big file is checked without holding all its lines."""
    if len(data) > MAX_BYTES:
        raise FileProblem(_("The file is larger than {mb} MB.").format(mb=MAX_BYTES // (1024 * 1024)))
    name = (filename or "").lower()
    if name.endswith(".xlsx") or data[:4] == b"PK\x03\x04":
        return _read_xlsx(data)
    if name.endswith(".xls"):
        raise FileProblem(_("Old .xls files cannot be read: please save the file as .xlsx or CSV."))
    return _read_csv(data)


def _read_csv(data: bytes) -> Iterator[tuple[int, list]]:
    for encoding in ("utf-8-sig", "cp950"):
        try:
            sample = data.decode(encoding)[:4096]  # checks the whole file; the text is dropped at once
            break
        except UnicodeDecodeError:
            continue
    else:
        raise FileProblem(_("The file is neither UTF-8 nor Big5 text: please save it as CSV UTF-8."))
    delimiter = "\t" if sample.count("\t") > sample.count(",") else ","
    text = io.TextIOWrapper(io.BytesIO(data), encoding=encoding, newline="")  # decoded as it is read
    return _bounded(enumerate(csv.reader(text, delimiter=delimiter), start=1))


def _bounded(lines) -> Iterator[tuple[int, list]]:
    """The non-empty lines, each cut to `MAX_COLUMNS` cells and scrubbed; refuses past the caps."""
    kept = 0
    for number, cells in lines:
        if number > MAX_LINES:
            raise FileProblem(_("The file has more than {n} rows.").format(n=MAX_ROWS))
        cells = [_clean(c, number) for c in list(cells[:MAX_COLUMNS])]
        if any(c not in (None, "") and str(c).strip() for c in cells):
            kept += 1
            if kept > MAX_ROWS + 1:  # the header and MAX_ROWS rows
                raise FileProblem(_("The file has more than {n} rows.").format(n=MAX_ROWS))
            yield number, cells


def _clean(value, line: int):
    """A cell without control characters (they are removed), at most `MAX_CELL` characters."""
    if isinstance(value, str):
        if len(value) > MAX_CELL:
            raise FileProblem(_("Line {line} has a cell longer than {n} characters.").format(line=line, n=MAX_CELL))
        return scrub(value)
    return value


def _check_zip(data: bytes) -> None:
    """Refuses an XLSX whose parts unpack to far more than a spreadsheet of this size could hold."""
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        parts = archive.infolist()
    except (zipfile.BadZipFile, ValueError):
        raise FileProblem(_("The file cannot be read as an Excel workbook (.xlsx)."))
    for part in parts:
        ratio = part.file_size / max(part.compress_size, 1)
        if part.file_size > MAX_UNZIPPED or (part.file_size > 1024 * 1024 and ratio > MAX_RATIO):
            raise FileProblem(_("The workbook unpacks to far more data than its size suggests; please save the "
                                "sheet again as .xlsx or CSV with only the needed rows and columns."))


def _read_xlsx(data: bytes) -> Iterator[tuple[int, list]]:
    import openpyxl

    _check_zip(data)
    try:  # read_only: the sheet is streamed row by row, never held whole
        workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception:
        raise FileProblem(_("The file cannot be read as an Excel workbook (.xlsx)."))
    return _xlsx_lines(workbook)


def _xlsx_lines(workbook) -> Iterator[tuple[int, list]]:
    try:
        sheet = workbook.worksheets[0]
        sheet.reset_dimensions()  # a declared size is not trusted: rows are not padded to it
        yield from _bounded(enumerate(sheet.iter_rows(values_only=True, max_col=MAX_COLUMNS), start=1))
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
    try:  # the same normaliser as the owners' answers (control characters, emoji)
        name = form_text(_cell(cells, cols["program_name"]), "")
    except FormTextRefused as refusal:
        return None, refusal.message
    if not name:
        return None, _("the program name is empty")
    if len(name) > 200:
        return None, _("the program name is longer than 200 characters")
    return {"business_number": number, "program_name": name}, None


def _check_assessment(cells, cols) -> tuple[Optional[dict], Optional[str]]:
    number, problem = _business_number(_cell(cells, cols["business_number"]))
    if problem:
        return None, problem
    raw_kind = _cell(cells, cols["kind"])
    kind = KIND_WORDS.get(str(raw_kind or "").strip().lower().replace("-", "_").replace(" ", "_"))
    if kind not in ASSESSMENT_KINDS:
        return None, _("the test must be 前測 or 後測 (pre or post), not {value}").format(value=raw_kind or "—")
    raw_day = _cell(cells, cols["day"])
    try:
        day = read_day(raw_day)
    except (ValueError, IndexError):
        day = None
    if day is None:
        return None, _("not a date: {value} (write 112/5/3 or 2023-05-03)").format(value=raw_day or "—")
    return {"business_number": number, "kind": kind, "day": day.isoformat()}, None


def _check_township(cells, cols) -> tuple[Optional[dict], Optional[str]]:
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
    problems: list[tuple[int, str]] = []
    counter = [0]
    accepted = list(checked_rows(kind, filename, data, problems, counter))
    return counter[0], accepted, problems


def checked_rows(kind: str, filename: str, data: bytes, problems: list, counter: list) -> Iterator[dict]:
    """The accepted rows, normalised, one at a time; refused rows go to ``problems`` as (line, reason) and
    ``counter[0]`` counts the data rows. Duplicates are found by a 16-byte digest of each entry, so the
    file's text is not kept for it."""
    if kind not in KINDS:
        raise FileProblem(_("Unknown import {kind}.").format(kind=kind))
    lines = iter_rows(filename, data)
    first = next(lines, None)
    if first is None:
        raise FileProblem(_("The file is empty."))
    _line, header = first
    cols = _columns(kind, header)
    seen: dict = {}
    for line, cells in lines:
        counter[0] += 1
        row, problem = CHECKS[kind](cells, cols)
        if problem:
            problems.append((line, problem))
            continue
        key, value = _identity(kind, row)
        digest = hashlib.blake2b(repr(key).encode(), digest_size=16).digest()
        if digest in seen:
            first_line, earlier = seen[digest] if isinstance(seen[digest], tuple) else (seen[digest], None)
            if earlier != value:
                problems.append((line, _("line {first} already gives a different value for the same entry").format(
                    first=first_line)))
            continue  # the same row twice: counted once
        seen[digest] = line if value is None else (line, value)
        yield row


def _identity(kind: str, row: dict) -> tuple:
    if kind == PREVIOUS:
        return (row["business_number"], row["program_name"]), None
    if kind == ASSESSMENTS:
        return (row["business_number"], row["kind"]), row["day"]
    return row["town_code"], row["group"]


# -- what it would change, and applying it -----------------------------------------------------------
def _changes(db, kind: str, rows) -> dict:
    """How many rows are new, changed or already there (for the preview and the result); ``rows`` is read once."""
    with db.session() as s:
        if kind == PREVIOUS:
            have = set(s.execute(select(PreviousProgram.business_number, PreviousProgram.program_name)).all())
            keys = ((r["business_number"], r["program_name"]) for r in rows)
        elif kind == ASSESSMENTS:
            have = set(s.execute(select(CompletionReport.kind, CompletionReport.subject)
                                 .where(CompletionReport.confirmed_at.is_not(None))).all())
            keys = ((r["kind"], f"tax:{r['business_number']}") for r in rows)
        else:
            groups = dict(s.execute(select(TownshipGroup.town_code, TownshipGroup.grp)).all())
            new = changed = total = 0
            for r in rows:
                total += 1
                new += r["town_code"] not in groups
                changed += r["town_code"] in groups and groups[r["town_code"]] != r["group"]
            return {"new": new, "changed": changed, "unchanged": total - new - changed}
    new = total = 0
    for key in keys:
        total += 1
        new += key not in have
    return {"new": new, "unchanged": total - new}


def preview(db, kind: str, filename: str, data: bytes, actor: str = "staff") -> Preview:
    """Checks the file and keeps its accepted rows for `confirm`; writes nothing else.

    The rows are packed as they are checked and counted again from the packed text, so a 20 MB file is
    never held as Python objects all at once (bench/imports.py).
    """
    problems: list[tuple[int, str]] = []
    counter = [0]
    packer = Packer()
    for row in checked_rows(kind, filename, data, problems, counter):
        packer.add(row)
    packed, accepted, total = packer.text(), packer.count, counter[0]
    del packer
    digest = hashlib.sha256(data).hexdigest()
    with db.session() as s:
        earlier = s.scalar(select(ImportBatch.confirmed_at).where(
            ImportBatch.sha256 == digest, ImportBatch.kind == kind, ImportBatch.status == "confirmed")
            .order_by(ImportBatch.id.desc()).limit(1))
        batch = ImportBatch(kind=kind, filename=(filename or "")[:255], sha256=digest, status="previewed", total=total,
                            accepted=accepted, rejected=len(problems), rows=packed,
                            problems=json.dumps(problems, ensure_ascii=False), created_by=actor[:128])
        s.add(batch)
        s.flush()
        batch_id = batch.id
    changes = _changes(db, kind, iter_packed(packed))
    return Preview(batch_id, kind, filename, total, [], problems, changes, same_file_confirmed_at=earlier,
                   count=accepted)


def load_preview(db, batch_id: int) -> Optional[Preview]:
    with db.session() as s:
        batch = s.get(ImportBatch, batch_id)
        if batch is None:
            return None
        result = Preview(batch.id, batch.kind, batch.filename, batch.total, [],
                         [tuple(p) for p in json.loads(batch.problems or "[]")], status=batch.status,
                         count=batch.accepted)
        packed = batch.rows
    result.changes = json.loads(_result_of(db, batch_id) or "null") or _changes(db, result.kind, iter_packed(packed))
    return result


class Packer:
    """Rows as kept between preview and confirm: one JSON line per row, compressed and base64-encoded as
    they are added (no big intermediate string)."""

    def __init__(self):
        self.packer, self.pending, self.pieces, self.count = zlib.compressobj(6), bytearray(), [PACKED], 0

    def _take(self, compressed: bytes, last: bool = False) -> None:
        self.pending.extend(compressed)
        cut = len(self.pending) if last else len(self.pending) - len(self.pending) % 3  # whole 3-byte groups
        if cut >= 3 * 4096 or (last and cut):
            self.pieces.append(base64.b64encode(bytes(self.pending[:cut])).decode("ascii"))
            del self.pending[:cut]

    def add(self, row) -> None:
        self.count += 1
        self._take(self.packer.compress((json.dumps(row, ensure_ascii=False) + "\n").encode()))

    def text(self) -> str:
        self._take(self.packer.flush(), last=True)
        return "".join(self.pieces)


def pack_rows(rows) -> str:
    packer = Packer()
    for row in rows:
        packer.add(row)
    return packer.text()


def iter_packed(text: Optional[str]) -> Iterator:
    """The rows `pack_rows` kept, one at a time (decoded and decompressed as they are read)."""
    if not text:
        return
    if not text.startswith(PACKED):
        yield from json.loads(text)  # kept before packing existed
        return
    unpacker, buffer, block = zlib.decompressobj(), b"", 4 * 16384
    for offset in range(len(PACKED), len(text), block):
        buffer += unpacker.decompress(base64.b64decode(text[offset:offset + block]))
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            yield json.loads(line)
    buffer += unpacker.flush()
    for line in buffer.split(b"\n"):
        if line.strip():
            yield json.loads(line)


def unpack_rows(text: Optional[str]) -> list:
    return list(iter_packed(text))


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
        kind, packed, count = batch.kind, batch.rows, batch.accepted
        if kind == ASSESSMENTS:
            batch.status = "confirming"  # applied below by storage.reminders, in its own transaction
        else:
            result = _apply(s, kind, iter_packed(packed))  # streamed: the rows are never all in memory
            batch.status, batch.result = "confirmed", json.dumps(result)
            batch.confirmed_by, batch.confirmed_at = actor[:128], datetime.now(timezone.utc)
    if kind == ASSESSMENTS:
        result = _apply_assessments(db, batch_id, unpack_rows(packed), actor)
    if kind == TOWNSHIPS:
        TownshipGroups.changed()
    db.audit(actor, "import.confirmed", f"import:{batch_id}", kind=kind, rows=count, **result)
    return result


def discard(db, batch_id: int, actor: str = "staff") -> None:
    with db.session() as s:
        batch = s.get(ImportBatch, batch_id)
        if batch is not None and batch.status == "previewed":
            batch.status, batch.rows = "discarded", "[]"


def _apply(s, kind: str, rows) -> dict:
    if kind == PREVIOUS:
        return _apply_previous(s, rows)
    rows = list(rows)
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


def _apply_previous(s, rows) -> dict:
    """Inserts the entries not there yet, in chunks (core inserts, no ORM object per row), then recomputes the
    flags of the letters that carry one of the new 統編."""
    have = set(s.execute(select(PreviousProgram.business_number, PreviousProgram.program_name)).all())
    now = datetime.now(timezone.utc)
    chunk, numbers, total, inserted = [], set(), 0, 0
    for r in rows:
        total += 1
        if (r["business_number"], r["program_name"]) in have:
            continue
        inserted += 1
        chunk.append(dict(r, imported_at=now))
        numbers.add(r["business_number"])
        if len(chunk) == CHUNK:
            s.execute(PreviousProgram.__table__.insert(), chunk)
            chunk = []
    if chunk:
        s.execute(PreviousProgram.__table__.insert(), chunk)
    del have
    letters.refresh_flags(s, _numbers_with_letters(s, numbers))
    return {"new": inserted, "unchanged": total - inserted}


def _numbers_with_letters(s, numbers: set[str]) -> set[str]:
    """The 統編 among ``numbers`` that some letter carries (only their flags can change)."""
    found: set[str] = set()
    ordered = sorted(numbers)
    for start in range(0, len(ordered), CHUNK):
        found.update(s.scalars(select(letters.Letter.business_number).where(
            letters.Letter.business_number.in_(ordered[start:start + CHUNK])).distinct()))
    return found


def _apply_assessments(db, batch_id: int, rows: list[dict], actor: str) -> dict:
    """storage.reminders writes all the rows in one transaction; a failure puts the batch back."""
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
