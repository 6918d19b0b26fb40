"""The fault matrix, larger: more users, PostgreSQL away for 12 s, the killed worker restarted a real 60 s later.

    .venv/bin/python bench/faults.py [--small] [--only ROW ...]

The rows are those of the test suite (``tests/fault_matrix.py``) at ``LARGE`` scale; each
starts a bot of its own (a PostgreSQL schema and Redis key prefix, workers as processes,
the mock LINE platform in this process) and counts, at the mock, the events answered
once, twice and never, and in the database the letters and audit entries of owners who
sent their letter in the middle of the fault. Writes the table into bench/RESULTS.md
(section "Fault matrix") through bench/results.py. Takes several minutes.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("GONGHAO_LOG_LEVEL", "ERROR")  # the webhook runs in this process: its warnings are expected

from bench.results import cpu_model, postgres_version, write_section  # noqa: E402
from bot.mockline import MockLine  # noqa: E402
from tests import fault_matrix  # noqa: E402
from tests.conftest import PG_URL  # noqa: E402
from tests.fault_support import FaultBot  # noqa: E402

SECTION = "## Fault matrix (issue 9)"
COLUMNS = ["row", "events accepted", "answered once", "twice", "never", "out of order", "apologies",
           "letters / audit / confirmation once", "result"]


def run_row(row, scale, line) -> dict:
    bots = []

    def make(**kwargs):
        bot = FaultBot(line, Path(tempfile.mkdtemp(prefix="gh-faults-")), **kwargs)
        bots.append(bot)
        return bot

    line.reset()
    started = time.monotonic()
    try:
        figures = row(make, line, scale)
    except Exception as exc:  # a row that cannot even run is a row that does not hold
        figures = {"row": row.__name__, "problems": [f"{type(exc).__name__}: {exc}"[:200]]}
    finally:
        for bot in bots:
            bot.close()
        line.reset()
    figures["seconds"] = round(time.monotonic() - started, 1)
    return figures


def table_row(f: dict) -> str:
    letters = (f"{f['letters once']} / {f['audit once']} / {f['confirmed once']} of {f['owners']}"
               if "owners" in f else "")
    if "stale events" in f:  # the quota row: its pushes, not its answers
        accepted = f"{f['events']} fresh + {f['stale events']} stale"
        extra = f"{f['push attempts in 3 s']} push tries in 3 s, {f['held rows']} held"
    elif "poison (status, told)" in f:
        accepted = f"{f['events']} good + 3 poison"
        extra = f"request {f['request status']}, deep body {f['deep body status']}, poison {f['poison (status, told)']}"
    else:
        accepted, extra = f.get("events", "—"), ""
    cells = [f["row"], accepted, f.get("once", "—"), f.get("twice", "—"), f.get("never", "—"),
             f.get("out of order", ""), f.get("apologies", ""), letters, extra]
    mark = "holds" if not f["problems"] else "FAILS: " + "; ".join(f["problems"])
    cells[-1] = (str(cells[-1]) + "; " if cells[-1] else "") + mark
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="the suite's scale (a quick look; not written)")
    parser.add_argument("--only", nargs="*", help="row function names (see tests/fault_matrix.py)")
    args = parser.parse_args(argv)
    scale = fault_matrix.SMALL if args.small else fault_matrix.LARGE
    rows = [r for r in fault_matrix.ROWS if not args.only or r.__name__ in args.only]
    results = []
    with MockLine(keep=200_000) as line:
        for row in rows:
            figures = run_row(row, scale, line)
            print(json.dumps(figures, ensure_ascii=False), flush=True)
            results.append(figures)
    lines = [SECTION, "",
             f"Run {date.today().isoformat()} with `.venv/bin/python bench/faults.py` on "
             f"{os.cpu_count()} CPU(s), {cpu_model()}, Python {platform.python_version()}, PostgreSQL {postgres_version(PG_URL)}, "
             f"the mock LINE platform in the same process.",
             "",
             f"Scale: {scale.users * 4} users in the worker-kill bursts, {scale.users * 2} in the outages, "
             f"{scale.owners} owners sending their letter in the middle of the fault, PostgreSQL away "
             f"{scale.outage:.0f} s, the killed worker restarted "
             + (f"{scale.restart_after:.0f} s later" if scale.restart_after else "after the reply tokens went stale")
             + ". Counted at the mock for every event the webhook answered 200 (LINE redelivers the others): "
               "answered once, twice, never; in the database the letters and `letter.submitted` audit entries.",
             "", "| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += [table_row(f) for f in results]
    if args.small or args.only:
        print("\n".join(lines))
        return 0
    write_section(SECTION, "\n".join(lines) + "\n")
    print(f"written to bench/RESULTS.md ({sum(1 for f in results if not f['problems'])} of {len(results)} rows hold)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
