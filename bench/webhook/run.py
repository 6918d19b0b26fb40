"""Webhook throughput (issue 2, item 12): our bot against an echo bot in the SDK's example style, same run.

    .venv/bin/python bench/webhook/run.py                  # a, b and c (about 5 minutes), then bench/RESULTS.md
    .venv/bin/python bench/webhook/run.py --seconds 8 --scenarios a --no-write
    .venv/bin/python bench/webhook/run.py --scenarios b,d         # answer latency at 200/s and 80% of (b)'s rate

Scenarios, each bot run with a mock LINE platform of its own (``python -m bot.mockline``, another
process, fresh for each: see `Run.fresh_mock`):

(a) the mock answers at once: the echo bot on gunicorn sync 2, then ours (web: gunicorn gthread 2×8,
    the Procfile's; 2 ``gonghao worker`` processes with the product's default threads, 64), then ours
    on sync 2 as well;
(b) the mock answers in 100 ms: the echo bot on gunicorn gthread 2×8, then ours (gthread 2×8;
    2 worker processes × 64 threads, the default: 128 LINE calls in flight);
(c) the same as (b) for ours, with wrk paced (a Poisson stream, ``post.lua``) to (d)'s 200 events/s and
    then to 80% of the rate ours answered in (b), for the webhook's acknowledgement latency while the
    worker works; each rate with the workers under ``nice -n 10``, as the Procfile runs them (the web
    first on a machine both share: the target), and at the same priority (for comparison);
(d) answer latency under load (issue 13): the mock answers in 100 ms, wrk paced to 200 events/s
    (``--d-rate``), then to 80% of the measured maximum (ours' end-to-end rate in (b), or ``--d-max``):
    p50/p95/p99 of the time from the webhook's receipt of an event (``accepted_events.received_at``
    in the run's schema) to the mock accepting its answer (the accept time of each send, from
    ``GET /__stats?keys=1``). Target: p99 <= 400 ms at 200 events/s. Every run of ours reports it.

For each bot: wrk (1 thread, 64 connections, ``post.lua``) posts signed bodies for a fixed time,
one unique text event "聯絡窗口" each (a fresh webhookEventId and replyToken, timestamped a few
seconds before, from a pool of a few thousand users the bot knows).

Measured:
- end-to-end events/s: events answered at the mock (accepted reply or push) divided by the time
  from the first request (wrk's start) to the last accepted answer (the mock's clock, read over
  ``GET /__stats``). For the echo bot this is its webhook rate; ours answers from the worker,
  after the webhook's 200, so its time includes the worker draining the queue;
- webhook acknowledgements: requests/s and latency percentiles as wrk saw them (2 s timeout,
  LINE's limit);
- exactly once: every event accepted (ours: every row of ``accepted_events`` in the run's schema;
  the echo bot: what it answered) must have exactly one accepted reply or push at the mock, found
  by its reply token or its retry key; sends refused as repeats (reply token used twice, retry key
  already accepted) are counted too;
- CPU seconds per process group while each bot ran (from /proc), to see where the time goes.

Our bot runs on PostgreSQL (a schema of its own, created, migrated with ``gonghao db upgrade`` and
dropped) and Redis (a key prefix of its own, whose keys are deleted at the end: never FLUSHDB,
the Redis is shared). Everything shares the machine's cores: compare the ratios of one run.
``bench/webhook/notes.md``, when present, is appended to the section (the analysis).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import zlib
from collections import Counter
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(ROOT))

from bot import line_events as le  # noqa: E402
from bot.config import Config  # noqa: E402
from bot.gateway import retry_key_for  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## Webhook throughput (issue 2)"
PG_URL = os.environ.get("GONGHAO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GONGHAO_BENCH_REDIS", "redis://127.0.0.1:6379")
SECRET = "bench-channel-secret"
TOKEN = "bench-access-token"
TEXT = "聯絡窗口"
PY = sys.executable
GUNICORN = str(Path(PY).with_name("gunicorn"))
CLK = os.sysconf("SC_CLK_TCK")
REPLY, PUSH = "/v2/bot/message/reply", "/v2/bot/message/push"
DEFAULT_THREADS = Config.model_fields["worker_threads"].default  # GONGHAO_WORKER_THREADS unset: as shipped


# ---------------------------------------------------------------------------------------------
# processes
# ---------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """A child process with its output in a log file; stopped with SIGTERM (then SIGKILL) by its own pid."""

    def __init__(self, name: str, cmd: list[str], env: dict, logdir: Path, cwd: Path = ROOT):
        self.name = name
        self.log_path = logdir / f"{name}.log"
        self.log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stop(self, timeout: float = 20) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def children(pid: int) -> list[int]:
    """pid and all its descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def cpu_seconds(pids) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / CLK


def pids_of(name: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == name:
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def wait_http(url: str, ok, timeout: float = 60, proc: Proc | None = None, data: bytes | None = None) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.popen.poll() is not None:
            raise SystemExit(f"{proc.name} exited early:\n{proc.tail()}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=2) as r:
                if ok(r.status):
                    return
        except urllib.error.HTTPError as e:
            if ok(e.code):
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"{url} did not come up within {timeout} s" + (f":\n{proc.tail()}" if proc else ""))


def mock_stats(url: str, keys: bool = False) -> dict:
    with urllib.request.urlopen(f"{url}/__stats" + ("?keys=1" if keys else ""), timeout=30) as r:
        return json.loads(r.read())


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    print("wrk is missing: apt-get install -y wrk", flush=True)
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "install", "-y", "wrk"], check=True)
    path = shutil.which("wrk")
    if not path:
        raise SystemExit("wrk could not be installed")
    return path


# ---------------------------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------------------------

def user_pool(users: int) -> list[str]:
    """The same users for every bot and scenario of a run (and of every run)."""
    rng = random.Random(2)
    return [f"U{uuid.UUID(int=rng.getrandbits(128)).hex}" for _ in range(users)]


class Bodies:
    """A file of "signature<TAB>body" lines for post.lua, and how to find each event's answer at the mock."""

    def __init__(self, path: Path, count: int, users: int, tag: str, seed: int):
        pool = user_pool(users)
        rng = random.Random(seed)
        base = le.now_ms() - 5000
        self.path = path
        self.count = count
        self.by_token: dict[str, str] = {}
        self.by_key: dict[str, str] = {}
        self.ids: list[str] = []
        with open(path, "w", encoding="utf-8") as out:
            for i in range(count):
                user = rng.choice(pool)
                token = f"rt-{user}-{tag}{i:x}"
                event = le.text_event(user, TEXT, reply_token=token, timestamp=base + (i * 4000) // count)
                event_id = event["webhookEventId"] = f"01{tag.upper()}{i:0{24 - len(tag)}X}"
                body = le.envelope([event])
                out.write(f"{le.sign(SECRET, body)}\t{body.decode()}\n")
                self.by_token[token] = event_id
                self.by_key[retry_key_for(event_id)] = event_id
                self.ids.append(event_id)

    def event_for(self, path: str, key: str) -> Optional[str]:
        """The event an accepted send answered (by its reply token or its retry key), or None."""
        return (self.by_token if path == REPLY else self.by_key if path == PUSH else {}).get(key)

    def answered_at(self, keys: list) -> dict[str, float]:
        """{event id: when the mock accepted its first answer (time.time())}."""
        found: dict[str, float] = {}
        for path, key, _to, when in keys:
            event_id = self.event_for(path, key)
            if event_id is not None and event_id not in found:
                found[event_id] = when
        return found

    def answers(self, keys: list) -> tuple[Counter, int]:
        """(answers per event id, accepted sends that are none of ours)."""
        per_event: Counter = Counter()
        strangers = 0
        for path, key, _to, *_when in keys:
            event_id = self.event_for(path, key)
            if event_id is None:
                strangers += 1
            else:
                per_event[event_id] += 1
        return per_event, strangers


def run_wrk(wrk: str, url: str, bodies: Bodies, seconds: float, connections: int, pause_ms: float = 0) -> dict:
    """wrk, 1 thread; ``pause_ms``: each connection waits that long between requests on average (a paced load:
    exponential pauses, post.lua)."""
    env = dict(os.environ, BODIES=str(bodies.path), WRK_THREADS="1", WRK_DELAY_MS=str(int(pause_ms)),
               WRK_CONNECTIONS=str(connections))
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{int(seconds)}s", "--timeout", "2s", "--latency",
                          "-s", str(HERE / "post.lua"), url], env=env, capture_output=True, text=True,
                         timeout=seconds + 60)
    found = re.search(r"^WRK_JSON (.*)$", out.stdout, re.M)
    if not found:
        raise SystemExit(f"wrk said:\n{out.stdout}\n{out.stderr}")
    result = json.loads(found.group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out.stdout)
    result["non2xx"] = int(non2xx.group(1)) if non2xx else 0
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["pause_ms"] = int(pause_ms)
    return result


# ---------------------------------------------------------------------------------------------
# the two bots
# ---------------------------------------------------------------------------------------------

def gunicorn_cmd(app: str, port: int, web: "Web") -> list[str]:
    cmd = [GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", str(web.workers), "--worker-class", web.kind,
           "--backlog", "2048", "--log-level", "warning"]
    if web.kind == "gthread":
        cmd += ["--threads", str(web.threads)]
    if app.startswith("bot:"):  # ours: the Procfile's settings (the app built before the workers fork)
        cmd += ["--config", str(ROOT / "gunicorn.conf.py")]
    return cmd + [app]


class Web:
    """A gunicorn configuration, from "kind:workers:threads"."""

    def __init__(self, spec: str):
        kind, workers, threads = (spec.split(":") + ["1"])[:3]
        self.kind, self.workers, self.threads = kind, int(workers), int(threads)

    def __str__(self) -> str:
        return f"{self.kind} {self.workers}" + (f"×{self.threads}" if self.kind == "gthread" else "")


class Run:
    """Shared set-up: the database schema, the Redis prefixes, a temporary directory, the processes."""

    def __init__(self, args):
        self.args = args
        self.id = uuid.uuid4().hex[:8]
        self.tmp = Path(tempfile.mkdtemp(prefix="gh-bench-webhook-"))
        self.schema = f"bench_webhook_{self.id}"
        self.database_url = f"{PG_URL}?options=-csearch_path%3D{self.schema}"
        self.prefixes: list[str] = []
        self.procs: list[Proc] = []
        self.mock_pid = 0
        self.wrk = ensure_wrk()

    def env(self, **extra) -> dict:
        env = dict(os.environ, LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, GONGHAO_LOG_LEVEL="WARNING",
                   PYTHONUNBUFFERED="1")
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def start(self, name: str, cmd: list[str], env: dict, cwd: Path = ROOT) -> Proc:
        proc = Proc(name, cmd, env, self.tmp, cwd)
        self.procs.append(proc)
        return proc

    def stop(self, *procs: Proc) -> None:
        for proc in procs:
            proc.stop()
            if proc in self.procs:
                self.procs.remove(proc)

    # -- PostgreSQL and Redis ------------------------------------------------------------------
    def create_schema(self) -> None:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        subprocess.run([PY, "-m", "bot.cli", "db", "upgrade"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
                       env=self.env(DATABASE_URL=self.database_url))
        # the users are known to the bot (as after their follow event); each process looks each one up once
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True,
                             options=f"-csearch_path={self.schema}") as conn:
            with conn.cursor() as cur:
                cur.executemany("INSERT INTO line_users (user_id, language, locale, followed, reminders_paused, "
                                "created_at, updated_at) VALUES (%s, 'zh-Hant', 'zh_TW', true, false, now(), now())",
                                [(u,) for u in user_pool(self.args.users)])

    def drop_schema(self) -> None:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def redis(self):
        import redis

        return redis.Redis.from_url(REDIS_URL)

    def _sql(self, statement: str) -> list:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True,
                             options=f"-csearch_path={self.schema}") as conn:
            cursor = conn.execute(statement)
            return cursor.fetchall() if cursor.description else []

    def seen(self) -> set[str]:
        """The event ids our webhook accepted (the queue table is emptied before each of our runs)."""
        return {row[0] for row in self._sql("SELECT webhook_event_id FROM accepted_events")}

    def empty_queue(self) -> None:
        self._sql("TRUNCATE accepted_events, deliveries, dialog_states")

    def settle_then_empty_queue(self, timeout: float = 30) -> None:
        """Waits until the workers have answered what the warm-up queued, then empties the tables. A TRUNCATE
        while they still worked waited for their transactions, their next statements queued behind its lock
        up to their 5 s statement timeout (PostgreSQL's log: about one a run), and the measured run began
        with the workers backing off from what looked like an outage."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self._sql(
                "SELECT (SELECT count(*) FROM accepted_events WHERE status = 'queued') + "
                "(SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending'))")[0][0]:
            time.sleep(0.1)
        self.empty_queue()

    def clean_redis(self) -> int:
        """Deletes this run's keys, by prefix (never FLUSHDB: the Redis is shared)."""
        r = self.redis()
        removed = 0
        for prefix in self.prefixes:
            batch = []
            for key in r.scan_iter(match=f"{prefix}*", count=2000):
                batch.append(key)
                if len(batch) >= 1000:
                    removed += r.unlink(*batch)
                    batch = []
            if batch:
                removed += r.unlink(*batch)
        return removed

    def close(self) -> None:
        for proc in list(self.procs):
            proc.stop(5)
        try:
            self.clean_redis()
        finally:
            self.drop_schema()
        if not self.args.keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)

    # -- the parts of a scenario -----------------------------------------------------------------
    def mock(self, delay: float) -> tuple[Proc, str]:
        port = free_port()
        proc = self.start(f"mock-{int(delay * 1000)}ms", [PY, "-m", "bot.mockline", "--port", str(port), "--delay",
                                                         str(delay), "--quiet", "--keep", "2000000"], self.env())
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/__stats", lambda s: s == 200, proc=proc)
        self.mock_pid = proc.pid
        return proc, url

    def fresh_mock(self, mock: Proc, delay: float) -> tuple[Proc, str]:
        """Another mock for the next bot: one that has kept tens of thousands of sends pauses for
        its garbage collector (measured: 250 ms a full collection at 45,000 kept), and every answer in
        flight waits (it read as p99 585 ms in (d) after (b) and (c), 211–252 ms with a mock of its own)."""
        self.stop(mock)
        return self.mock(delay)

    def seconds(self, pause_ms: float) -> float:
        """wrk's duration: a paced run is longer (``--paced-seconds``): its p99 is read from a few thousand
        requests, and in 12 s at 200/s one stall of ~50 ms held the 24 slowest (12 s runs of the same setting
        read 15-50 ms; 30 s runs 13-27)."""
        return self.args.paced_seconds if pause_ms else self.args.seconds

    def bodies(self, name: str, rate: float, pause_ms: float = 0) -> Bodies:
        count = int(rate * self.seconds(pause_ms)) + 1000
        tag = f"{name}{self.id[:4]}"
        return Bodies(self.tmp / f"{name}.tsv", count, self.args.users, tag, seed=zlib.crc32(name.encode()))

    def measure(self, label: str, mock_url: str, procs: dict[str, list[int]], bodies: Bodies, port: int,
                accepted_ids, pause_ms: float = 0) -> dict:
        """Runs wrk, waits for the answers to stop coming, and works out the figures."""
        groups = {**procs, "mock": [self.mock_pid], "redis": pids_of("redis-server"), "postgres": pids_of("postgres")}
        before = {name: cpu_seconds(pids) for name, pids in groups.items()}
        first = mock_stats(mock_url)
        counts_before, sends_before_by = first["counts"], first["sends"]
        sends_before = sum(sends_before_by.values())
        wrk_before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.time()
        wrk = run_wrk(self.wrk, f"http://127.0.0.1:{port}/callback", bodies, self.seconds(pause_ms),
                      self.args.connections, pause_ms)
        wrk_done = time.time()
        wrk_after = resource.getrusage(resource.RUSAGE_CHILDREN)
        accepted = accepted_ids(wrk)  # None: the bot answers inside the request (nothing to wait for)
        if accepted is not None:  # only this run's events: a warm-up request still in flight may commit late
            accepted &= set(bodies.ids)
        backlog = None
        # wait for the answers: until every accepted event has one, or nothing new for a while
        last_count, last_change = -1, time.time()
        while accepted is not None:
            stats = mock_stats(mock_url)
            count = sum(stats["sends"].values()) - sends_before
            if backlog is None:
                backlog = len(accepted) - count  # queued but not yet answered when wrk stopped
            if count != last_count:
                last_count, last_change = count, time.time()
            if count >= len(accepted) or time.time() - last_change > self.args.drain_timeout:
                break
            time.sleep(0.2)
        time.sleep(self.args.settle)  # anything sent twice would arrive now
        after = {name: cpu_seconds(pids) for name, pids in groups.items()}
        stats = mock_stats(mock_url, keys=True)
        counts = {k: n - counts_before.get(k, 0) for k, n in stats["counts"].items()}
        sends = {k: n - sends_before_by.get(k, 0) for k, n in stats["sends"].items()}
        per_event, strangers = bodies.answers(stats["keys"])
        missing = None
        if accepted is None:  # what it acknowledged, it answered inside the request (or it failed the request)
            accepted = set(per_event)
            missing = max(0, wrk["requests"] - wrk["non2xx"] - len(per_event))
        answered = {e for e in per_event if e in accepted}
        last = stats["last_send"] or started
        result = dict(
            label=label, wrk=wrk, sent=wrk["requests"], accepted=len(accepted), answered=len(answered),
            duplicates=sum(n - 1 for n in per_event.values() if n > 1),
            missing=len(accepted - answered) if missing is None else missing,
            missing_ids=sorted(accepted - answered)[:500] if missing is None else [],
            answered_not_accepted=len(set(per_event) - accepted), strangers=strangers,
            replies=sends.get("reply", 0), pushes=sends.get("push", 0),
            refused_repeats=counts.get(f"{REPLY} 400", 0) + counts.get(f"{PUSH} 409", 0),
            loading=counts.get("/v2/bot/chat/loading/start 202", 0),
            profiles=counts.get("/v2/bot/profile/{userId} 200", 0),
            e2e_seconds=last - started, wrk_seconds=wrk_done - started, backlog=backlog,
            cpu={**{name: after[name] - before[name] for name in groups},
                 "wrk": (wrk_after.ru_utime + wrk_after.ru_stime) - (wrk_before.ru_utime + wrk_before.ru_stime)},
        )
        # every distinct event answered counts (for the echo bot, also the requests in flight when wrk stopped)
        result["e2e_rate"] = len(per_event) / result["e2e_seconds"] if result["e2e_seconds"] > 0 else 0.0
        if procs.get("worker"):  # ours: the events' receipt is in accepted_events
            result["latency"] = self.answer_latency(bodies.answered_at(stats["keys"]))
        return result

    def answer_latency(self, answered_at: dict[str, float]) -> Optional[dict]:
        """p50/p95/p99/max seconds from the webhook's receipt (accepted_events.received_at, the run's schema) to
        the mock accepting the answer (its clock: the same machine's)."""
        import psycopg

        if not answered_at:
            return None
        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True,
                             options=f"-csearch_path={self.schema}") as conn:
            rows = conn.execute("SELECT webhook_event_id, extract(epoch FROM received_at)::float8 FROM accepted_events "
                                "WHERE webhook_event_id = ANY(%s)", (list(answered_at),)).fetchall()
        waits = sorted(answered_at[event_id] - received for event_id, received in rows)
        if not waits:
            return None

        def rank(share: float) -> float:
            return waits[max(int(share * len(waits) + 0.999999) - 1, 0)]

        # an answer "before" its receipt: received_at was written after answering (the Redis queue's event log)
        early = sum(1 for wait in waits if wait < 0)
        return dict(count=len(waits), p50=rank(0.5), p95=rank(0.95), p99=rank(0.99), max=waits[-1], early=early)

    def echo(self, name: str, mock_url: str, web: Web) -> dict:
        port = free_port()
        proc = self.start(f"{name}-web", gunicorn_cmd("echo_bot:app", port, web), self.env(LINE_API_BASE_URL=mock_url),
                          cwd=HERE)
        try:
            wait_http(f"http://127.0.0.1:{port}/", lambda s: True, proc=proc)  # any HTTP answer: it is up
            self.warm_up(name, port, None, ours=False)
            bodies = self.bodies(name, self.args.rate_cap)
            result = self.measure(f"echo bot, gunicorn {web}", mock_url, {"web": children(proc.pid)}, bodies, port,
                                  lambda _wrk: None)
            result["tracebacks"] = proc.tail(100000).count("Traceback")
        finally:
            self.stop(proc)
        result.update(bot="echo", web=str(web))
        return result

    def ours(self, name: str, mock_url: str, web: Web, processes: int, worker_threads: int,
             rate: Optional[float] = None, nice: int = 0) -> dict:
        """Our bot; ``rate``: wrk paced to about that many requests per second (else as fast as it goes);
        ``nice``: the worker processes run under ``nice -n``."""
        prefix = f"bench:{self.id}:{name}:"
        self.prefixes.append(prefix)
        env = self.env(LINE_API_BASE_URL=mock_url, REDIS_URL=REDIS_URL, GONGHAO_REDIS_PREFIX=prefix,
                       DATABASE_URL=self.database_url, GONGHAO_WORKER_THREADS=worker_threads)
        port = free_port()
        proc = self.start(f"{name}-web", gunicorn_cmd("bot:create_app()", port, web), env)
        prefix_cmd = ["nice", "-n", str(nice)] if nice else []
        workers = [self.start(f"{name}-worker{i}", prefix_cmd + [PY, "-m", "bot.cli", "worker"], env)
                   for i in range(processes)]
        spies = []
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", lambda s: s == 200, proc=proc)
            self.wait_for_workers(mock_url, port, workers)
            self.warm_up(name, port, rate, ours=True)
            self.settle_then_empty_queue()
            pause_ms = 1000 * self.args.connections / rate if rate else 0
            bodies = self.bodies(name, rate * 1.2 if rate else self.args.rate_cap, pause_ms)
            if self.args.py_spy:
                spy = str(Path(PY).with_name("py-spy"))
                for pid in [w.pid for w in workers] + children(proc.pid)[1:]:
                    spies.append(subprocess.Popen([spy, "record", "--pid", str(pid), "--rate", "200", "--format",
                                                   "raw", "--gil", "--nonblocking", "-o",
                                                   f"{self.args.py_spy}/{name}-{pid}.txt"],
                                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            label = f"our bot, gunicorn {web} + {processes} worker{'s' if processes > 1 else ''} × {worker_threads} threads"
            if nice:
                label += f" (nice -n {nice})"
            if rate:
                label += f", wrk paced to ~{rate:,.0f}/s"
            result = self.measure(label, mock_url, {"web": children(proc.pid), "worker": [w.pid for w in workers]},
                                  bodies, port, lambda _wrk: self.seen(), pause_ms)
            result["tracebacks"] = sum(p.tail(100000).count("Traceback") for p in [proc, *workers])
            if result["missing"]:  # where the unanswered ones are: their rows, for the notes
                result["missing_rows"] = self.where_missing(result.pop("missing_ids", []))
        finally:
            for spy in spies:
                spy.send_signal(signal.SIGINT)
                spy.wait(30)
            self.stop(proc, *workers)
        result.update(bot="ours", web=str(web), processes=processes, worker_threads=worker_threads, nice=nice)
        return result

    def where_missing(self, ids: list[str]) -> dict:
        """{status of the event / status and phase of its answer: count} for events never answered."""
        if not ids:
            return {}
        quoted = ",".join("'" + i.replace("'", "") + "'" for i in ids)
        rows = self._sql(f"SELECT e.status, coalesce(d.status || ' ' || d.phase, 'no answer row') FROM accepted_events e "
                         f"LEFT JOIN deliveries d ON d.event_id = e.webhook_event_id WHERE e.webhook_event_id IN ({quoted})")
        return dict(Counter(f"{a} / {b}" for a, b in rows))

    def warm_up(self, name: str, port: int, rate: Optional[float], ours: bool) -> None:
        """A few seconds of the same load first, not counted: the measured run sees a process as it
        runs for hours (its connections open, every thread past its first request) — a cold gunicorn
        worker's first requests took up to 300 ms, which is start-up, not the sustained rate."""
        if self.args.warm_up <= 0:
            return
        bodies = Bodies(self.tmp / f"{name}-warm.tsv", int((rate or 300) * self.args.warm_up) + 200, self.args.users,
                        f"w{name}{self.id[:3]}", seed=zlib.crc32(name.encode()) + 1)
        run_wrk(self.wrk, f"http://127.0.0.1:{port}/callback", bodies, self.args.warm_up, self.args.connections,
                1000 * self.args.connections / rate if rate else 0)
        if ours:  # ours: until the warm-up's events are answered (then the queue is emptied)
            deadline = time.time() + 60
            while time.time() < deadline and self._sql(
                    "SELECT (SELECT count(*) FROM accepted_events WHERE status = 'queued') + "
                    "(SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending'))")[0][0]:
                time.sleep(0.2)

    def wait_for_workers(self, mock_url: str, port: int, procs: list[Proc], timeout: float = 60) -> None:
        """Until a probe event is answered (the workers are up and connected); it is not counted."""
        user = "U" + "0" * 31 + "1"
        before = sum(mock_stats(mock_url)["sends"].values())
        body = le.envelope([le.text_event(user, TEXT, reply_token=f"rt-{user}-probe{self.id}")])
        request = urllib.request.Request(f"http://127.0.0.1:{port}/callback", data=body, headers={
            "Content-Type": "application/json", "x-line-signature": le.sign(SECRET, body)})
        urllib.request.urlopen(request, timeout=5).read()
        deadline = time.time() + timeout
        while time.time() < deadline:
            for proc in procs:
                if proc.popen.poll() is not None:
                    raise SystemExit(f"{proc.name} exited early:\n{proc.tail()}")
            if sum(mock_stats(mock_url)["sends"].values()) > before:
                time.sleep(1.0)  # the other workers finish starting too
                return
            time.sleep(0.1)
        raise SystemExit("no worker answered the probe event")


# ---------------------------------------------------------------------------------------------
# report
# ---------------------------------------------------------------------------------------------

def machine() -> dict:
    from bench.results import cpu_model

    cpu = cpu_model()
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split("\n")[0].strip()
    try:
        from importlib.metadata import version

        libs = f"redis-py {version('redis')}" + (f" with hiredis {version('hiredis')}" if _has("hiredis") else "")
    except Exception:
        libs = ""
    return dict(nproc=os.cpu_count(), cpu=cpu, python=platform.python_version(),
                wrk=wrk.split(" [")[0].split(" Copyright")[0], load=os.getloadavg(), libs=libs)


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def ms(us: float) -> str:
    return f"{us / 1000:.1f}"


def exact(r: dict) -> bool:
    return r["duplicates"] == 0 and r["missing"] == 0 and r["refused_repeats"] == 0


def row(scenario: str, r: dict) -> str:
    w = r["wrk"]
    errors = w["timeout"] + w["connect"] + w["read"] + w["write"]
    answers = f"{r['answered']:,}" + (f" ({r['pushes']:,} pushed)" if r["pushes"] else "")
    return (f"| {scenario} | {r['label']} | {r['sent']:,} | {w['rps']:,.0f} | {ms(w['p50'])} / {ms(w['p99'])} / "
            f"{ms(w['max'])} | {errors} / {w['non2xx']} | {r['accepted']:,} | {answers} "
            f"| {r['duplicates']} / {r['missing']} / {r['refused_repeats']} | {r['e2e_seconds']:.1f} "
            f"| **{r['e2e_rate']:,.0f}** |")


def latency_text(lat: Optional[dict]) -> str:
    if not lat:
        return ""
    return (f"; answer latency (receipt → LINE accepted) p50 {lat['p50'] * 1000:,.0f} / p95 {lat['p95'] * 1000:,.0f} / "
            f"p99 {lat['p99'] * 1000:,.0f} / max {lat['max'] * 1000:,.0f} ms over {lat['count']:,} answers"
            + (f" (**{lat['early']:,} answered before their recorded receipt**: this code writes received_at after "
               "answering, so these figures mean nothing)" if lat.get("early") else ""))


def cpu_row(scenario: str, r: dict) -> str:
    n = max(1, r["answered"])
    parts = [f"{name} {sec:.1f} s = {sec / n * 1e6:,.0f} µs" for name, sec in r["cpu"].items() if sec > 0.05]
    total = sum(r["cpu"].values())
    return f"| {scenario} | {r['label']} | " + ", ".join(parts) + f" | {total / n * 1e6:,.0f} µs |"


def c_target(args, r: dict, shipped: bool) -> tuple[str, str, Optional[bool]]:
    """(c)'s row: the target is the web as the Procfile ships it (the workers under its ``nice``); a run at the same
    priority is shown beside it. A rate counts as sustained when the workers kept up: at most one second of it
    still queued when wrk stopped (else the row says so and is not met)."""
    w = r["wrk"]
    how = f", the worker under nice -n {r['nice']} as in the Procfile" if r["nice"] else ", all at the same priority"
    left = r.get("backlog") or 0
    sustained = left <= w["rps"]
    measured = (f"p99 {ms(w['p99'])} ms (p50 {ms(w['p50'])}, p90 {ms(w['p90'])}, max {ms(w['max'])}); "
                f"{left:,} events queued when wrk stopped" + ("" if sustained else ": the workers did not keep up"))
    label = (f"(c) webhook p99 ack ≤ 25 ms at {args.connections} connections while the worker runs "
             f"(mock in {args.slow_ms} ms, {w['rps']:,.0f} requests/s{how})")
    if not shipped:
        return "for comparison, not the target: " + label, measured, None
    return label, measured, w["p99"] <= 25_000 and sustained


def targets(results: dict, args) -> list[tuple[str, str, bool]]:
    out = []
    a_echo, a_ours, b_echo, b_ours, c_ours = (results.get(k) for k in ("a_echo", "a_ours", "b_echo", "b_ours", "c_ours"))
    if a_echo and a_ours:
        ratio = a_ours["e2e_rate"] / max(a_echo["e2e_rate"], 1e-9)
        out.append((f"(a) mock at once: our end-to-end events/s ≥ the echo bot's on gunicorn sync 2 (ours: {a_ours['web']})",
                    f"{a_ours['e2e_rate']:,.0f} vs {a_echo['e2e_rate']:,.0f} = {ratio:.2f}×", ratio >= 1.0))
        same = results.get("a_ours_sync")
        if same:
            ratio = same["e2e_rate"] / max(a_echo["e2e_rate"], 1e-9)
            out.append(("(a) the same, ours on the echo bot's web configuration (sync 2)",
                        f"{same['e2e_rate']:,.0f} vs {a_echo['e2e_rate']:,.0f} = {ratio:.2f}×", ratio >= 1.0))
    if b_echo and b_ours:
        ratio = b_ours["e2e_rate"] / max(b_echo["e2e_rate"], 1e-9)
        out.append((f"(b) mock in {args.slow_ms} ms: ours ≥ 5× the echo bot's on gthread 2×8 (end-to-end events/s)",
                    f"{b_ours['e2e_rate']:,.0f} vs {b_echo['e2e_rate']:,.0f} = {ratio:.1f}×", ratio >= 5.0))
    for same, nice in (("c_low", "c_low_nice"), ("c_ours", "c_ours_nice")):
        for r in (results.get(same), results.get(nice)):
            if r:
                out.append(c_target(args, r, shipped=bool(r["nice"]) or not results.get(nice)))
    for key, what in (("d_ours_200", f"{args.d_rate:,.0f} events/s"), ("d_ours_80", "80% of the measured maximum")):
        r = results.get(key)
        if r and r.get("latency"):
            lat = r["latency"]
            out.append((f"(d) answer latency, webhook receipt → LINE accepted (mock in {args.slow_ms} ms), wrk paced to "
                        f"{what}" + (": p99 ≤ 400 ms" if key == "d_ours_200" else ""),
                        f"p50 {lat['p50'] * 1000:,.0f} / p95 {lat['p95'] * 1000:,.0f} / p99 {lat['p99'] * 1000:,.0f} ms "
                        f"(max {lat['max'] * 1000:,.0f}; {lat['count']:,} answers at {r['wrk']['rps']:,.0f} requests/s)",
                        lat["p99"] <= 0.4 if key == "d_ours_200" else None))
    for key in ("a_ours", "b_ours"):
        r = results.get(key)
        if r:
            out.append((f"for comparison, not the target: the same in closed loop (wrk as fast as it goes), run ({key[0]})",
                        f"p99 {ms(r['wrk']['p99'])} ms at {r['wrk']['rps']:,.0f} requests/s", None))
    everyone = [r for r in results.values()]
    out.append(("every accepted event answered exactly once, counted at the mock (all runs above)",
                ", ".join(f"{r['answered']:,}/{r['accepted']:,}" for r in everyone)
                + f"; duplicates {sum(r['duplicates'] for r in everyone)}, missing {sum(r['missing'] for r in everyone)}",
                all(exact(r) for r in everyone)))
    return out


def report(results: dict, args, info: dict, started: float, when: str) -> str:
    lines = [SECTION, ""]
    load = ", ".join(f"{x:.1f}" for x in info["load"])
    lines.append(f"Run {when} with `.venv/bin/python bench/webhook/run.py"
                 f"{' ' + ' '.join(args.argv) if args.argv else ''}` on {info['nproc']} CPUs ({info['cpu']}), "
                 f"Python {info['python']}, {info['wrk']}{', ' + info['libs'] if info.get('libs') else ''}; "
                 f"load average before the run {load}; "
                 f"the whole run took {time.time() - started:.0f} s.")
    lines.append("")
    lines.append(
        f"Load: wrk with 1 thread and {args.connections} connections, {args.seconds} s per bot "
        f"({args.paced_seconds} s in the paced runs, a Poisson stream), "
        f"`bench/webhook/post.lua` posting pre-signed bodies, one event per request: a text \"{TEXT}\" (a fixed "
        f"answer) with its own webhookEventId and replyToken, timestamped 1–5 s before the run, from {args.users:,} "
        "users (known to the bot: their `line_users` rows exist, as after their follow event; each process looks each "
        "one up once). The mock LINE platform is `python -m bot.mockline` in a process of its own (it checks every "
        "body against LINE's OpenAPI description). Our bot: gunicorn serving `bot:create_app()` and `gonghao worker` "
        "processes, on Redis (a key prefix of the run's own, deleted after) and PostgreSQL (a schema of its own, "
        "dropped after), GONGHAO_LOG_LEVEL=WARNING. The echo bot is `bench/webhook/echo_bot.py`: the SDK example's "
        "style, parse with `WebhookHandler`, reply inside the request. Everything shares the machine's cores (and "
        "whatever else runs on it), so compare the ratios of one run.")
    lines.append("")
    lines.append("End-to-end events/s = events answered at the mock ÷ (last accepted answer − first request); ours "
                 "acknowledges first and answers from the queue, so its time includes draining what the webhook took "
                 "in faster than the worker answered. Ack = the webhook's HTTP answer as wrk saw it (ms; wrk's "
                 "timeout is 2 s, LINE's limit). Accepted: ours, the rows of `accepted_events` (events "
                 "queued); the echo bot, what it answered. dup / missing / refused: events answered more than once, "
                 "accepted but never answered, and sends the mock refused as repeats (a reply token used twice, a "
                 "retry key already accepted).")
    lines.append("")
    lines.append("| | bot | requests | acks/s | ack p50 / p99 / max (ms) | errors / non-2xx | accepted | answered "
                 "| dup / missing / refused | first request → last answer (s) | end-to-end events/s |")
    lines.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    names = {"a": "(a) mock at once", "b": f"(b) mock in {args.slow_ms} ms", "c": f"(c) mock in {args.slow_ms} ms",
             "d": f"(d) mock in {args.slow_ms} ms"}
    for key, r in results.items():
        lines.append(row(names[key[0]], r))
    lines.append("")
    lines.append("| target | measured | met |")
    lines.append("| --- | --- | --- |")
    for target, measured, met in targets(results, args):
        lines.append(f"| {target} | {measured} | {'—' if met is None else 'yes' if met else '**no**'} |")
    lines.append("")
    lines.append("CPU time while each bot ran (wrk's start → the last answer), in total and per answered event "
                 "(postgres and redis: the whole servers, shared with whatever else used them):")
    lines.append("")
    lines.append("| | bot | CPU | per event |")
    lines.append("| --- | --- | --- | ---: |")
    for key, r in results.items():
        lines.append(cpu_row(names[key[0]], r))
    lines.append("")
    for key, r in results.items():
        if r["bot"] == "ours":
            lines.append(f"- {names[key[0]]}, {r['label']}: {r['backlog'] or 0:,} events still queued when wrk stopped; "
                         f"{r['loading']:,} loading animations, {r['profiles']:,} profile look-ups, "
                         f"{r['tracebacks']} tracebacks in the logs" + latency_text(r.get("latency")) + "."
                         + (f" Never answered: {r['missing_rows']} (event status / answer status and phase)."
                            if r.get("missing_rows") else ""))
    if args.notes and Path(args.notes).exists():
        lines += ["", Path(args.notes).read_text().strip()]
    lines.append("")
    return "\n".join(lines)


def write_section(text: str) -> None:
    from bench.results import write_section as write

    write(SECTION, text, RESULTS)


# ---------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=int, default=12, help="wrk's duration per bot")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=3000)
    parser.add_argument("--slow-ms", type=int, default=100, help="the mock's delay in (b) and (c)")
    parser.add_argument("--scenarios", default="a,b,c,d")
    parser.add_argument("--d-rate", type=float, default=200, help="(d) the first paced rate, events/s")
    parser.add_argument("--d-max", type=float,
                        help="(d) the measured maximum events/s (default: ours' end-to-end rate in (b); 500 without (b))")
    parser.add_argument("--web-a", default="gthread:2:8", help="our web in (a), kind:workers:threads (Procfile's)")
    parser.add_argument("--web-b", default="gthread:2:8", help="our web in (b) and (c)")
    parser.add_argument("--same-web-a", action=argparse.BooleanOptionalAction, default=True,
                        help="in (a), also run ours on the echo bot's web (sync 2)")
    parser.add_argument("--processes-a", type=int, default=2, help="worker processes in (a)")
    parser.add_argument("--threads-a", type=int, default=DEFAULT_THREADS, help="GONGHAO_WORKER_THREADS in (a)")
    parser.add_argument("--processes-b", type=int, default=2, help="worker processes in (b) and (c)")
    parser.add_argument("--threads-b", type=int, default=DEFAULT_THREADS, help="GONGHAO_WORKER_THREADS in (b) and (c)")
    parser.add_argument("--paced-seconds", type=float, default=30, help="wrk's duration in the paced runs ((c), (d))")
    parser.add_argument("--c-rate", type=float, help="requests/s in (c) (default: 80%% of ours' end-to-end rate in (b))")
    parser.add_argument("--c-nice", type=int, default=10,
                        help="(c) again with the worker processes under nice -n N (0: not again)")
    parser.add_argument("--rate-cap", type=float, default=4000, help="bodies prepared per second of wrk")
    parser.add_argument("--drain-timeout", type=float, default=15, help="give up when no answer came for this long")
    parser.add_argument("--settle", type=float, default=1.5, help="seconds to wait for late duplicates")
    parser.add_argument("--warm-up", type=float, default=3, help="seconds of uncounted load before each measured run")
    parser.add_argument("--notes", default=str(HERE / "notes.md"),
                        help="a Markdown file appended to the section (the analysis), if it exists")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--json", help="also write the raw figures here")
    parser.add_argument("--from-json", help="no run: write the section again from figures saved with --json")
    parser.add_argument("--py-spy", help="a directory: record our processes with py-spy (raw stacks) while measured")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else argv
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        for key, value in saved["args"].items():
            if key not in ("notes", "no_write", "from_json", "json"):
                setattr(args, key, value)
        text = report(saved["results"], args, saved["info"], time.time() - saved["seconds"], saved["when"])
        print(text)
        if not args.no_write:
            write_section(text)
        return 0
    started = time.time()
    ensure_wrk()  # before machine(), which reads wrk's version
    info = machine()
    run = Run(args)
    results: dict = {}
    scenarios = args.scenarios.split(",")
    print(f"run {run.id}: {info}; logs in {run.tmp}", flush=True)

    def done(key: str, result: dict) -> None:
        results[key] = result
        print(row(key, result), flush=True)

    try:
        run.create_schema()
        if "a" in scenarios:
            mock, url = run.mock(0.0)
            done("a_echo", run.echo("a-echo", url, Web("sync:2")))
            mock, url = run.fresh_mock(mock, 0.0)
            done("a_ours", run.ours("a", url, Web(args.web_a), args.processes_a, args.threads_a))
            if args.same_web_a and Web(args.web_a).kind != "sync":
                mock, url = run.fresh_mock(mock, 0.0)
                done("a_ours_sync", run.ours("a-sync", url, Web("sync:2"), args.processes_a, args.threads_a))
            run.stop(mock)
        if "b" in scenarios or "c" in scenarios or "d" in scenarios:
            mock, url = run.mock(args.slow_ms / 1000)
            if "b" in scenarios:
                done("b_echo", run.echo("b-echo", url, Web("gthread:2:8")))
                mock, url = run.fresh_mock(mock, args.slow_ms / 1000)
                done("b_ours", run.ours("b", url, Web(args.web_b), args.processes_b, args.threads_b))
            if "c" in scenarios:  # at (d)'s rate, then at 80% of (b)'s: as shipped (nice) and at the same priority
                high = args.c_rate or (0.8 * results["b_ours"]["e2e_rate"] if "b_ours" in results else 500)
                for key, rate in (("c_low", args.d_rate), ("c_ours", high)):
                    mock, url = run.fresh_mock(mock, args.slow_ms / 1000)
                    done(key, run.ours(key.replace("_", "-"), url, Web(args.web_b), args.processes_b, args.threads_b,
                                       rate=rate))
                    if args.c_nice:
                        done(key + "_nice", run.ours(key.replace("_", "-") + "-nice", url, Web(args.web_b),
                                                     args.processes_b, args.threads_b, rate=rate, nice=args.c_nice))
            if "d" in scenarios:  # how long one owner waits while others talk
                mock, url = run.fresh_mock(mock, args.slow_ms / 1000)
                peak = args.d_max or (results["b_ours"]["e2e_rate"] if "b_ours" in results else 500)
                for key, rate in (("d_ours_200", args.d_rate), ("d_ours_80", 0.8 * peak)):
                    done(key, run.ours(key.replace("_", "-"), url, Web(args.web_b), args.processes_b, args.threads_b,
                                       rate=rate))
            run.stop(mock)
    finally:
        run.close()
    when = f"{dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}"
    text = report(results, args, info, started, when)
    print()
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "info": info, "when": when,
                                               "seconds": time.time() - started, "args": vars(args)},
                                              indent=1, default=str))
    if not args.no_write:
        write_section(text)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
