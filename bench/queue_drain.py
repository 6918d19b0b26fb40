"""How fast the event queue drains with one user's events strictly in order (issue 9, item 5).

    .venv/bin/python bench/queue_drain.py            # writes its section of bench/RESULTS.md
    .venv/bin/python bench/queue_drain.py --no-write

3,000 events from 300 users (10 each) are queued in `accepted_events` on the local
PostgreSQL (a schema of the run's own, dropped after), then drained by 1 and by 2 workers
(each `bot.worker.Worker` with 16 threads, in this process) whose dialog does nothing and
answers nothing: what is measured is the queue itself — taking each user's oldest event
under a row lock, the unit of work's transaction and marking the event done. The figure
to compare is procrastinate 3.10's on the same machine (quoted in issue 9): 54 jobs/s with
a lock per user, 621/s without. Checked as well: every event done once, and each user's
events processed in timestamp order.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.results import cpu_model, postgres_version, write_section  # noqa: E402
from bot import line_events as le  # noqa: E402
from bot.config import Config  # noqa: E402

PG_URL = os.environ.get("GONGHAO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SECTION = "## Queue drain (issue 9)"


def run(workers: int, users: int = 300, per_user: int = 10) -> dict:
    import psycopg

    import handlers
    from bot.services import Services
    from bot.worker import Worker

    schema = "bq_" + uuid.uuid4().hex[:8]
    plain = PG_URL.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(plain, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    config = Config(database_url=url, channel_secret="s", channel_access_token="t",
                    line_api_base_url="http://127.0.0.1:9", reorder_ms=0, worker_threads=16)
    seen: dict[str, list[int]] = {}
    lock = threading.Lock()

    def nothing(event, services, state):
        with lock:
            seen.setdefault(event["source"]["userId"], []).append(event["timestamp"])
        return None, []

    real = handlers.dispatch
    handlers.dispatch = nothing
    pool = [Services(config, role="worker") for _ in range(workers)]
    try:
        pool[0].db.upgrade()
        base = le.now_ms() - 60_000
        events = [le.text_event(f"U{u:032x}", "x", timestamp=base + i * 1000 + u % 7)
                  for i in range(per_user) for u in range(users)]
        for start in range(0, len(events), 100):
            pool[0].queue.accept(events[start:start + 100])
        started = time.perf_counter()
        running = [Worker(services, threads=16).start() for services in pool]
        while pool[0].queue.backlog():
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
        for worker in running:
            worker.stop()
    finally:
        handlers.dispatch = real
        for services in pool:
            services.close()
        with psycopg.connect(plain, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    in_order = all(stamps == sorted(stamps) for stamps in seen.values())
    done = sum(len(stamps) for stamps in seen.values())
    return {"workers": workers, "events": len(events), "done": done, "seconds": elapsed,
            "rate": len(events) / elapsed, "in_order": in_order}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    rows = [run(1), run(2)]
    lines = [SECTION, "",
             f"Run {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC with `.venv/bin/python bench/queue_drain.py` on "
             f"{os.cpu_count()} CPUs ({cpu_model()}), PostgreSQL {postgres_version(PG_URL)}; load average before the run "
             f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}.", "",
             "3,000 queued events from 300 users (10 each), drained by workers whose dialog does nothing: the queue's "
             "own cost (each user's oldest event taken under a row lock and marked done; a worker's events of different users share a transaction, as in production). "
             "procrastinate 3.10 on this machine (issue 9): 54 jobs/s with a lock per user, 621/s without.", "",
             "| workers × threads | events | processed | seconds | events/s | each user in order |",
             "| --- | ---: | ---: | ---: | ---: | --- |"]
    for r in rows:
        lines.append(f"| {r['workers']} × 16 | {r['events']:,} | {r['done']:,} | {r['seconds']:.1f} | "
                     f"**{r['rate']:,.0f}** | {'yes' if r['in_order'] else 'NO'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        write_section(SECTION, text)


if __name__ == "__main__":
    main()
