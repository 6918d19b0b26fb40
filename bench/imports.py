"""A 20 MB import (the most the console accepts), on PostgreSQL: time and peak memory of preview and confirm.

    .venv/bin/python bench/imports.py            # CSV and XLSX, and the section of bench/RESULTS.md
    .venv/bin/python bench/imports.py --no-write

What it sets up: a schema of its own (``bench_imports``) in the PostgreSQL database ``test``
(GONGHAO_TEST_PG) with the real migrations and 1,000 submitted letters, some of whose 統編 are
in the file (so the flags are recomputed). The file is a previous-program list of valid 統編
and program names, 20 MB as CSV; the XLSX holds the same rows.

Each import runs in a fresh subprocess (``--import-only``), as ``gonghao import … --confirm``
would: the file is read, every row checked (storage.imports.preview), then applied in one
transaction (confirm). Its peak resident memory (``VmHWM``) is the import's own. The target
(issue 11): a 20 MB import finishes with peak memory ≤ 300 MB.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SECTION = "## Imports: a 20 MB file (issue 11)"
PG_URL = os.environ.get("GONGHAO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_imports"
TARGET_MB = 300.0
SIZE = 20 * 1024 * 1024


def database_url() -> str:
    return f"{PG_URL}?options=-csearch_path%3D{SCHEMA}"


def numbers():
    from dialogs.validators import business_number_checksum_ok

    return (f"{n:08d}" for n in range(10_000_000, 100_000_000) if business_number_checksum_ok(f"{n:08d}"))


def fresh_schema(letters: int = 1000) -> None:
    import psycopg

    from storage.db import Database
    from storage import letters as store

    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    db = Database(database_url())
    db.upgrade()
    source = numbers()
    with db.session() as s:
        case = store.create_case(s, edition=112, proposer_name="提案單位", plan_name="計畫", case_type="popularization",
                                 vendor_name="供應商", solution_name="雲工具")
        for i in range(letters):
            s.add(store.Letter(case_id=case.id, user_id=f"U{i:032x}", status=store.SUBMITTED, version=1,
                               company_name=f"小店{i}", business_number=next(source) if i % 2 else f"9{i:07d}"))
    db.engine.dispose()


def rows_for(size: int) -> list[tuple[str, str]]:
    """Previous-program rows adding up to ``size`` bytes of CSV (the first 500 統編 are those of the letters)."""
    source, rows, total = numbers(), [], len("統一編號,計畫名稱\r\n".encode())
    while True:  # about 110 bytes a row: 20 MB stays within the 200,000-row cap
        row = (next(source), f"經濟部雲世代產業數位轉型計畫與推動中小型店家數位轉型補助方案第{len(rows) % 97:02d}梯次"
                             f"（{len(rows):06d}）")
        size_of = len(f"{row[0]},{row[1]}\r\n".encode())
        if total + size_of > size:
            return rows
        rows.append(row)
        total += size_of


def write_files(folder: str) -> dict[str, str]:
    rows = rows_for(SIZE)
    csv_path = os.path.join(folder, "previous.csv")
    with open(csv_path, "w", encoding="utf-8", newline="") as fh:
        fh.write("統一編號,計畫名稱\r\n")
        fh.writelines(f"{n},{p}\r\n" for n, p in rows)
    xlsx_path = os.path.join(folder, "previous.xlsx")
    write_xlsx(xlsx_path, rows)
    # an XLSX that is itself 20 MB: program names that do not compress (random letters), fewer rows
    random_path = os.path.join(folder, "previous-20mb.xlsx")
    count = 120_000
    for _attempt in range(3):
        write_xlsx(random_path, random_rows(count))
        size = os.path.getsize(random_path)
        if SIZE * 0.95 <= size <= SIZE:
            break
        count = int(count * SIZE * 0.975 / size)
    return {"csv": csv_path, "xlsx": xlsx_path, "xlsx-20mb": random_path}


def random_rows(count: int) -> list[tuple[str, str]]:
    import random

    rng, source = random.Random(11), numbers()
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return [(next(source), "計畫" + "".join(rng.choices(letters, k=180))) for _ in range(count)]


def write_xlsx(path: str, rows) -> None:
    import xlsxwriter

    book = xlsxwriter.Workbook(path, {"constant_memory": True})
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ("統一編號", "計畫名稱"))
    for i, (n, p) in enumerate(rows, start=1):
        sheet.write_string(i, 0, n)
        sheet.write_string(i, 1, p)
    book.close()


def import_only(path: str) -> dict:
    """Runs in the subprocess: preview (read and check every row) then confirm (one transaction)."""
    from storage import imports
    from storage.db import Database

    db = Database(database_url())
    with open(path, "rb") as fh:
        data = fh.read()
    started = time.perf_counter()
    preview = imports.preview(db, imports.PREVIOUS, os.path.basename(path), data, actor="staff:bench")
    checked = time.perf_counter() - started
    batch_id, total, accepted = preview.batch_id, preview.total, preview.accepted
    del preview, data  # as `gonghao import` does: the preview is shown, then the kept rows are applied
    result = imports.confirm(db, batch_id, actor="staff:bench")
    seconds = time.perf_counter() - started
    db.engine.dispose()
    return {"file": os.path.basename(path), "bytes": os.path.getsize(path), "rows": total, "accepted": accepted,
            "new": result.get("new", 0), "preview_seconds": checked, "seconds": seconds, "peak_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    from bench.exports import peak_rss_mb as peak

    return peak()


def run_import(path: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--import-only", path], cwd=ROOT, capture_output=True, text=True,
                          timeout=1200, env=dict(os.environ, GONGHAO_LOG_LEVEL="WARNING"))
    if done.returncode != 0:
        raise SystemExit(f"the import subprocess failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def section(results: list[dict]) -> str:
    from bench.exports import machine, postgres_version

    lines = [f"| {r['file']} | {r['bytes'] / 1024 / 1024:.1f} MB | {r['rows']:,} | {r['preview_seconds']:.1f} s "
             f"| {r['seconds']:.1f} s | {r['peak_mb']:.0f} MB | {'✅ yes' if r['peak_mb'] <= TARGET_MB else '❌ no'} |"
             for r in results]
    return "\n".join([
        SECTION,
        "",
        f"Run {dt.date.today().isoformat()} with `.venv/bin/python bench/imports.py` on {machine()}; "
        f"PostgreSQL {postgres_version()} (database `test`, schema `{SCHEMA}`).",
        "",
        "A previous-program list of valid 統編 and program names, 20 MB as UTF-8 CSV (the most the console accepts; "
        "`previous.xlsx` holds the same rows; `previous-20mb.xlsx` is itself 20 MB, with program names of random "
        "letters that do not compress, so fewer rows), imported into a database with 1,000 letters whose 統編 partly appear in it. "
        "Each import runs in a fresh subprocess as `gonghao import previous-program FILE --confirm` does: "
        "`storage.imports.preview` reads the file (XLSX with openpyxl `read_only`, capped at "
        "200,000 rows, 50 columns, 1,000 characters a cell and a 100× unpacking ratio) and checks every row as it is read, packing the accepted ones as compressed JSON lines (no list of all rows), "
        "then `confirm` streams them back into chunked inserts in one transaction. Peak memory is the subprocess's `VmHWM`. "
        f"Target: peak ≤ {TARGET_MB:.0f} MB.",
        "",
        "| file | size | rows | read and checked | with confirm | peak memory | ≤ 300 MB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        *lines,
        "",
    ])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--import-only", metavar="PATH")
    parser.add_argument("--no-write", action="store_true", help="print the section instead of writing RESULTS.md")
    args = parser.parse_args(argv)
    if args.import_only:
        print(json.dumps(import_only(args.import_only)))
        return 0
    results = []
    with tempfile.TemporaryDirectory() as folder:
        files = write_files(folder)
        for kind in ("csv", "xlsx", "xlsx-20mb"):
            fresh_schema()
            results.append(run_import(files[kind]))
            print(json.dumps(results[-1]), flush=True)
    text = section(results)
    if args.no_write:
        print(text)
    else:
        from bench.results import write_section

        write_section(SECTION, text)
        print(f"written to bench/RESULTS.md:\n{text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
