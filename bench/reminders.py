"""One reminder to 100,000 owners against the mock LINE platform, on PostgreSQL; then the same
with the worker killed (SIGKILL) half-way and restarted.

    .venv/bin/python bench/reminders.py              # both runs, and the section of bench/RESULTS.md
    .venv/bin/python bench/reminders.py --owners 20000 --no-write

What it sets up: a schema of its own in the PostgreSQL database ``test`` (GONGHAO_TEST_PG), 1,000
cases of 100 owners each (the cases-and-letters tables), none with a confirmed tool import, 1% of
the owners reading English; the mock LINE platform in this process. The worker is the real one,
``gonghao reminders run`` in a subprocess, with ``GONGHAO_NOW`` fixing its clock:

1. at 22:00 the evening before (2023-07-29, the week-before reminder is due): it must send nothing
   (quiet hours);
2. at 08:00 on 2023-07-30, the day before the tool import deadline (112/7/31): the reminder is due
   the moment the worker starts. Measured: multicast calls, people reached, duplicates, the most
   calls in any one second, and the time from the start (= due) to the last call.
3. The same again from scratch, with the mock answering in 20 ms and the worker killed with
   SIGKILL once 25% (then 50%, 75%: a run each) of the owners are reached; a new worker is started at once and re-sends the
   batches its predecessor had claimed (after ``GONGHAO_REMINDER_STALE_SECONDS`` = 3 s) with the
   same retry keys.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.mockline import MockLine  # noqa: E402

RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Reminders fan-out (issue 6)"
PG_URL = os.environ.get("GONGHAO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SCHEMA = "bench_reminders"
KEY = "112:tool_import_deadline:owners_import_not_confirmed:1d"
DUE = "2023-07-30T08:00:00+08:00"
EVENING_BEFORE = "2023-07-29T22:00:00+08:00"
MULTICAST = "/v2/bot/message/multicast"


def owner(i: int) -> str:
    return f"U{i:032x}"


def database_url() -> str:
    return f"{PG_URL}?options=-csearch_path%3D{SCHEMA}"


def fresh_schema(owners: int, per_case: int = 100) -> None:
    """Drops and rebuilds the bench schema: the tables, the cases, the owners."""
    import psycopg

    from storage import letters
    from storage.db import Database
    from storage.models import LineUser

    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{SCHEMA}"')
    db = Database(database_url())
    db.upgrade()
    cases = -(-owners // per_case)
    with db.engine.begin() as conn:
        conn.execute(letters.Case.__table__.insert(), [dict(
            id=c + 1, edition=112, proposer_name=f"提案單位{c}", plan_name=f"計畫{c}", case_type="popularization",
            vendor_name=f"雲端服務供應商{c}", solution_name="雲工具", solution_content="", sla="", period="",
            other_content="", planned_count=per_case, proposer_code=f"P-B{c:04d}-BENCH", owner_code=f"J-B{c:04d}-BENCH",
            proposer_code_revoked=False, owner_code_revoked=False, created_at=dt.datetime.now(dt.timezone.utc))
            for c in range(cases)])
        now = dt.datetime.now(dt.timezone.utc)
        for start in range(0, owners, 10_000):
            chunk = range(start, min(start + 10_000, owners))
            conn.execute(letters.CaseMember.__table__.insert(), [dict(
                case_id=i // per_case + 1, user_id=owner(i), role="owner", joined_at=now) for i in chunk])
            conn.execute(LineUser.__table__.insert(), [dict(
                user_id=owner(i), locale="en" if i % 100 == 0 else "zh_TW", followed=True, reminders_paused=False,
                created_at=now, updated_at=now) for i in chunk])
    db.engine.dispose()


def sends(db_url: str) -> Counter:
    from sqlalchemy import create_engine, text

    engine = create_engine(db_url)
    with engine.connect() as conn:
        counts = Counter(dict(conn.execute(text("SELECT status, count(*) FROM reminder_sends GROUP BY status")).all()))
    engine.dispose()
    return counts


def start_worker(line_url: str, now: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=database_url(), LINE_API_BASE_URL=line_url, LINE_CHANNEL_ACCESS_TOKEN="bench",
               LINE_CHANNEL_SECRET="bench", GONGHAO_NOW=now, GONGHAO_REMINDER_STALE_SECONDS="3",
               GONGHAO_LOG_LEVEL="WARNING")
    env.pop("REDIS_URL", None)
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "reminders", "run", "--interval", "1"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(worker: subprocess.Popen) -> str:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    return worker.stderr.read().decode(errors="replace") if worker.stderr else ""


def reached(line: MockLine) -> int:
    return sum(len(c.to) for c in line.delivered() if c.path == MULTICAST)


def figures(line: MockLine, owners: int, started: float) -> dict:
    calls = [c for c in line.requests if c.path == MULTICAST]
    accepted = [c for c in calls if c.status == 200]
    counts = Counter(u for c in accepted for u in c.to)
    times = sorted(c.time for c in calls)
    busiest = max((sum(1 for t in times[i:] if t - times[i] < 1.0) for i in range(len(times))), default=0)
    return dict(
        calls=len(calls), accepted=len(accepted), conflicts=sum(1 for c in calls if c.status == 409),
        other_failures=sum(1 for c in calls if c.status not in (200, 409)),
        reached=len(counts), duplicates=sum(n - 1 for n in counts.values() if n > 1),
        missing=owners - len(counts), busiest_second=busiest, largest_batch=max((len(c.to) for c in calls), default=0),
        due_to_last=(times[-1] - started) if times else float("nan"),
        first_to_last=(times[-1] - times[0]) if times else float("nan"),
        quota_calls=sum(1 for c in line.requests if c.path.startswith("/v2/bot/message/quota")),
    )


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise SystemExit(f"timed out waiting for {what}")


def run_clean(line: MockLine, owners: int) -> dict:
    fresh_schema(owners)
    line.reset()
    worker = start_worker(line.url, EVENING_BEFORE)
    time.sleep(4)  # several runs of the loop at 22:00
    quiet_calls = len([c for c in line.requests if c.path == MULTICAST])
    stop(worker)
    started = time.time()
    worker = start_worker(line.url, DUE)
    try:
        wait_until(lambda: sends(database_url()).get("sent", 0) >= owners, 600, "every owner to be sent the reminder")
        time.sleep(2)  # a second look: anything sent twice would arrive now
    finally:
        errors = stop(worker)
    result = figures(line, owners, started)
    result.update(quiet_calls=quiet_calls, rows=dict(sends(database_url())), worker_errors=errors.count("Traceback"))
    return result


def run_killed(line: MockLine, owners: int, kill_at: float = 0.3, delay: float = 0.02) -> dict:
    fresh_schema(owners)
    line.reset()
    line.set_delay(delay)
    started = time.time()
    worker = start_worker(line.url, DUE)
    wait_until(lambda: reached(line) >= owners * kill_at, 600, "the first part of the fan-out")
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = reached(line)
    rows_at_kill = dict(sends(database_url()))
    worker = start_worker(line.url, DUE)
    try:
        wait_until(lambda: sends(database_url()).get("sent", 0) >= owners, 600, "the rest after the restart")
        time.sleep(4)  # past the stale limit once more: nothing may be sent again
    finally:
        errors = stop(worker)
    result = figures(line, owners, started)
    result.update(killed_at=killed_at, rows_at_kill=rows_at_kill, rows=dict(sends(database_url())),
                  worker_errors=errors.count("Traceback"), delay=delay)
    return result


def machine() -> str:
    from bench.results import cpu_model

    cpu = cpu_model()
    return f"{os.cpu_count()} CPU(s) (nproc), {cpu}, Python {platform.python_version()}, {platform.system()} {platform.release()}"


def postgres_version() -> str:
    from bench.results import postgres_version as version

    return version(PG_URL)


def section(owners: int, clean: dict, kills: list[dict]) -> str:
    def row(name, r):
        return (f"| {name} | {r['calls']} | {r['accepted']} | {r['conflicts']} | {r['reached']:,} | {r['duplicates']} "
                f"| {r['missing']} | {r['largest_batch']} | {r['busiest_second']} | {r['due_to_last']:.2f} s "
                f"| {r['first_to_last']:.2f} s |")

    killed_at = ", ".join(f"{k['killed_at']:,}" for k in kills)
    return "\n".join([
        SECTION,
        "",
        f"Run {dt.date.today().isoformat()} with `.venv/bin/python bench/reminders.py` on {machine()}; "
        f"PostgreSQL {postgres_version()} (database `test`, schema `{SCHEMA}`), the mock LINE platform in the "
        "bench process (`bot.mockline.MockLine`, request bodies validated against LINE's OpenAPI file), the worker "
        "as `gonghao reminders run --interval 1` in a subprocess without Redis (in-process token bucket).",
        "",
        f"One reminder (`{KEY}`, the day before the tool import deadline 112/7/31) to {owners:,} owners of "
        f"{owners // 100:,} cases (the cases-and-letters tables; 1% read English, so two message groups), no "
        "tool import confirmed. `GONGHAO_NOW` fixes the worker's clock at 08:00 on 2023-07-30: the reminder is "
        "due the moment the worker starts, so \"due → last call\" includes starting Python, reading the audience "
        "and the claims.",
        "",
        "| run | multicast calls | accepted (200) | 409 (retry key already accepted) | owners reached | duplicates "
        "| missing | largest batch | most calls in 1 s | due → last call | first → last call |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        row("clean", clean),
        *[row(f"killed at {k['killed_at']:,} reached, restarted", k) for k in kills],
        "",
        f"- Quiet hours: the same worker started at 22:00 the evening before (the week-before reminder due) made "
        f"**{clean['quiet_calls']} multicast calls** in 4 s of runs.",
        f"- Clean run: {clean['calls']} multicasts for {clean['reached']:,} owners (limit: 200), quota checked once "
        f"({clean['quota_calls']} GET calls); send rows {clean['rows']}.",
        f"- Killed runs (each from scratch): the mock answered in {kills[0]['delay'] * 1000:.0f} ms; SIGKILL once "
        f"{killed_at} owners were reached. Send rows at the kill: "
        f"{'; '.join(str(k['rows_at_kill']) for k in kills)} (claimed = in flight). The restarted worker sent the "
        "unclaimed rest at once and, 3 s later, re-sent the stale claimed batches with the same `X-Line-Retry-Key`; "
        "a batch that had reached LINE before the kill is answered 409 (counted as sent, not delivered again): "
        f"{sum(k['conflicts'] for k in kills)} such batch(es) in these runs. Duplicates at the mock: "
        f"**{sum(k['duplicates'] for k in kills)}**; missing: {sum(k['missing'] for k in kills)}; final rows "
        f"{'; '.join(str(k['rows']) for k in kills)}.",
        f"- Worker tracebacks: clean {clean['worker_errors']}, killed runs {sum(k['worker_errors'] for k in kills)}.",
    ])


def write_section(text: str) -> None:
    from bench.results import write_section as write

    write(SECTION, text, RESULTS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--owners", type=int, default=100_000)
    parser.add_argument("--kill-at", type=float, nargs="+", default=[0.25, 0.5, 0.75],
                        help="share of the owners reached when the worker is killed (one run each)")
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--keep-schema", action="store_true", help=f"leave the schema {SCHEMA} for a look")
    args = parser.parse_args(argv)
    with MockLine() as line:
        clean = run_clean(line, args.owners)
        print("clean:", clean, flush=True)
        kills = []
        for share in args.kill_at:
            kills.append(run_killed(line, args.owners, kill_at=share))
            print("killed:", kills[-1], flush=True)
    text = section(args.owners, clean, kills)
    print(text)
    if not args.keep_schema:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
    ok = all(r["duplicates"] == 0 and r["missing"] == 0 and r["calls"] - r["conflicts"] <= 200
             for r in (clean, *kills)) and clean["quiet_calls"] == 0
    if not args.no_write:
        write_section(text)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
