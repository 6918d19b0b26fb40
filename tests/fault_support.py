"""The fault matrix's harness: break PostgreSQL, Redis, LINE and the worker the way production breaks.

Black-box on purpose: outcomes are counted where the user would see them (the sends the mock
LINE platform accepted) and in the database's rows (letters, audit entries, accepted events),
never in the worker's own bookkeeping. The pieces:

- ``TcpProxy``: a TCP proxy in front of PostgreSQL that the test owns (never the shared
  server): ``pass_()``, ``refuse()`` (new connections refused, open ones cut) and ``silent()``
  (a black hole: connections are accepted or kept open, nothing is forwarded either way).
- ``PrivateRedis``: a redis-server of the test's own on another port, killed and restarted
  with or without persistence (the shared Redis is never stopped or flushed).
- ``start_worker`` / ``start_web``: ``python -m bot.cli worker`` and gunicorn ``bot:create_app()``
  as processes with their stderr in a file (never a pipe: a full pipe stops a process).
- ``FaultBot``: one bot (a PG schema and Redis key prefix of its own, the webhook in process
  through the Flask test client, workers as processes) that posts signed events as LINE
  does, redelivering what was not answered 200, and ``Outcomes``: per event, answered
  once, twice or never at the mock, and in order per user.

The processes read only the environment (``worker_env``). Knobs a worker reads:
LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN, LINE_API_BASE_URL, DATABASE_URL, REDIS_URL,
GONGHAO_REDIS_PREFIX, GONGHAO_REMINDERS, GONGHAO_LOG_LEVEL, GONGHAO_PARTITIONS,
GONGHAO_WORKER_THREADS, GONGHAO_LINE_TIMEOUT (seconds, a whole LINE call),
GONGHAO_LEASE_SECONDS (how long a stalled worker keeps its claim) and GONGHAO_DB_TIMEOUT
(seconds a database call may take before it is abandoned).
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional
from urllib.parse import urlsplit, urlunsplit

from bot import line_events as le
from bot.gateway import retry_key_for

ROOT = Path(__file__).resolve().parent.parent
SECRET = "test-channel-secret"
TOKEN = "test-access-token"
APOLOGY = "抱歉，我們這邊出了點問題"  # what the bot says when it broke: never a real answer
LINE_TOKEN_LIFE = 60  # seconds a LINE reply token works (about a minute)
BOT_FRESH_SECONDS = 50  # the bot replies to events younger than this, pushes otherwise


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], object], timeout: float, what: str = "the condition", step: float = 0.05,
               on_tick: Optional[Callable[[], None]] = None):
    """Polls ``predicate`` until it is true (returns its value) or raises AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if on_tick:
            on_tick()
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(step)


# ---------------------------------------------------------------------------------------
# A TCP proxy the test owns
# ---------------------------------------------------------------------------------------

def _reset(sock: Optional[socket.socket]) -> None:
    """Closes with RST (SO_LINGER 0), as a cut connection looks to its peer."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


class _Link:
    """One client connection and its upstream."""

    def __init__(self, client: socket.socket, silent: bool):
        self.client = client
        self.upstream: Optional[socket.socket] = None
        self.silent = silent  # a connection that went quiet stays quiet (its retransmissions gave up)
        self.cut = False


class TcpProxy:
    """127.0.0.1:listen_port -> target, with modes ``pass_()``, ``refuse()`` and ``silent()``.

    - pass: bytes flow both ways.
    - refuse: the listening socket is closed (new connections get ECONNREFUSED) and every
      open connection is cut (RST to both ends), as when the server is down.
    - silent: a black hole. New connections are accepted and get nothing; open ones stop
      forwarding in both directions without being closed. A connection that went silent
      stays silent after ``pass_()`` (like TCP whose retransmissions backed off past the
      test's horizon): only its client giving up (closing it) ends it, and then the proxy
      closes the server side too, as the server's keepalive would, much later.
    """

    def __init__(self, listen_port: int = 0, target: tuple[str, int] = ("127.0.0.1", 5432)):
        self.target = target
        self.port = listen_port
        self.mode = "pass"
        self.lock = threading.Lock()
        self.links: set[_Link] = set()
        self.listener: Optional[socket.socket] = None
        self.stopped = threading.Event()
        self.accepted = 0
        self._listen()

    # -- modes ------------------------------------------------------------------------
    def pass_(self) -> None:
        """Connections go through again (the silent ones stay silent)."""
        with self.lock:
            self.mode = "pass"
        if self.listener is None:
            self._listen()

    def refuse(self) -> None:
        """New connections are refused; open ones are cut."""
        with self.lock:
            self.mode = "refuse"
            listener, self.listener = self.listener, None
            links = list(self.links)
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # stops listening now, and wakes the accepting thread
            except OSError:
                pass
            listener.close()
        for link in links:
            link.cut = True
            for sock in (link.client, link.upstream):
                try:
                    sock and sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def silent(self) -> None:
        """A black hole: nothing is forwarded, nothing is closed."""
        with self.lock:
            self.mode = "silent"
            for link in self.links:
                link.silent = True
        if self.listener is None:
            self._listen()

    def url_for(self, database_url: str) -> str:
        """The same PostgreSQL URL, through this proxy."""
        parts = urlsplit(database_url)
        userinfo = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit(parts._replace(netloc=f"{userinfo}127.0.0.1:{self.port}"))

    def stop(self) -> None:
        self.stopped.set()
        self.refuse()

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- plumbing -------------------------------------------------------------------------
    def _listen(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(256)
        self.port = sock.getsockname()[1]
        self.listener = sock
        threading.Thread(target=self._accept, args=(sock,), name=f"proxy-{self.port}", daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while not self.stopped.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by refuse() or stop()
            with self.lock:
                link = _Link(client, silent=self.mode == "silent")
                self.links.add(link)
                self.accepted += 1
            threading.Thread(target=self._serve, args=(link,), daemon=True).start()

    def _serve(self, link: _Link) -> None:
        try:
            if not link.silent:
                try:
                    link.upstream = socket.create_connection(self.target, timeout=5)
                    link.upstream.settimeout(None)
                except OSError:
                    return
            self._pump(link)
        finally:
            with self.lock:
                self.links.discard(link)
            _reset(link.client)
            _reset(link.upstream)

    def _pump(self, link: _Link) -> None:
        while not link.cut and not self.stopped.is_set():
            if link.silent:
                if self._client_gave_up(link):
                    return
                continue
            ready, _, _ = select.select([link.client, link.upstream], [], [], 0.05)
            if link.silent or link.cut:
                continue
            for sock in ready:
                other = link.upstream if sock is link.client else link.client
                try:
                    data = sock.recv(65536)
                    if not data:
                        return
                    other.sendall(data)
                except OSError:
                    return

    @staticmethod
    def _client_gave_up(link: _Link) -> bool:
        """While silent: True once the client closed its end (what it sent meanwhile is dropped)."""
        ready, _, _ = select.select([link.client], [], [], 0.05)
        if not ready:
            return False
        try:
            return link.client.recv(65536) == b""
        except OSError:
            return True


# ---------------------------------------------------------------------------------------
# A Redis of the test's own
# ---------------------------------------------------------------------------------------

class PrivateRedis:
    """``redis-server`` on its own port and directory; ``stop()`` is SIGKILL, as a crash."""

    def __init__(self, port: int = 0, aof: bool = True):
        self.port = port or free_port()
        self.aof = aof
        self.dir = tempfile.mkdtemp(prefix="gh-redis-")
        self.process: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> "PrivateRedis":
        log = open(Path(self.dir) / "redis.log", "ab")
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes" if self.aof else "no", "--dir", self.dir, "--daemonize", "no"],
            stdout=log, stderr=log)
        log.close()
        import redis

        client = redis.Redis(port=self.port, socket_connect_timeout=0.5)
        try:
            wait_until(lambda: self._pings(client), 10, "the private Redis to start")
        finally:
            client.close()
        return self

    @staticmethod
    def _pings(client) -> bool:
        try:
            return bool(client.ping())
        except Exception:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        import shutil

        shutil.rmtree(self.dir, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# The bot's processes
# ---------------------------------------------------------------------------------------

def worker_env(database_url: str, redis_url: str, line_url: str, redis_prefix: str, **knobs) -> dict:
    """The environment of a worker (or web) process; ``knobs`` like ``GONGHAO_LINE_TIMEOUT="1"`` override."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GONGHAO_", "LINE_"))}
    env.update(LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_BASE_URL=line_url,
               DATABASE_URL=database_url, REDIS_URL=redis_url, GONGHAO_REDIS_PREFIX=redis_prefix,
               GONGHAO_REMINDERS="off", GONGHAO_LOG_LEVEL="WARNING", GONGHAO_PARTITIONS="4",
               GONGHAO_WORKER_THREADS="16", GONGHAO_LINE_TIMEOUT="3", GONGHAO_LEASE_SECONDS="2",
               GONGHAO_DB_TIMEOUT="2", GONGHAO_SECRET_KEY="test-secret-key", GONGHAO_ENV="development")
    env.update({k: str(v) for k, v in knobs.items()})
    return env


def start_worker(env: dict, log_path: Path) -> subprocess.Popen:
    """``python -m bot.cli worker`` with its stderr appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=log)


def start_web(env: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    """gunicorn serving ``bot:create_app()`` on a free port; (process, base URL) once it answers."""
    import urllib.error
    import urllib.request

    port = free_port()
    gunicorn = Path(sys.executable).with_name("gunicorn")
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(gunicorn), "-w", "1", "--threads", "8", "-b", f"127.0.0.1:{port}",
                                    "--no-control-socket", "bot:create_app()"], env=env, cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=log)

    def answering():  # any answer from /healthz: the app is loaded, not only the port bound
        assert process.poll() is None, f"gunicorn exited; see {log_path}"
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).close()
            return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    wait_until(answering, 30, "the web process to answer", step=0.1)
    return process, f"http://127.0.0.1:{port}"


def kill(process: Optional[subprocess.Popen]) -> None:
    """SIGKILL (also wakes a stopped process first: a SIGSTOPped one must not linger)."""
    if process is None or process.poll() is not None:
        return
    try:
        process.send_signal(signal.SIGCONT)
        process.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)


# ---------------------------------------------------------------------------------------
# Posting as LINE does
# ---------------------------------------------------------------------------------------

def signed_post(client_or_url, body: bytes, timeout: float = 5.0) -> int:
    """Posts one signed body to /callback; the status, or 0 when no answer came within ``timeout``
    (LINE then counts the delivery as failed and redelivers)."""
    headers = {"Content-Type": "application/json", "x-line-signature": le.sign(SECRET, body)}
    result: list[int] = []

    def post():
        try:
            if isinstance(client_or_url, str):
                import urllib.error
                import urllib.request

                request = urllib.request.Request(client_or_url + "/callback", data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=timeout) as response:
                        result.append(response.status)
                except urllib.error.HTTPError as error:
                    result.append(error.code)
            else:
                result.append(client_or_url.test_client().post("/callback", data=body, headers=headers).status_code)
        except Exception:
            result.append(0)

    thread = threading.Thread(target=post, daemon=True)  # a hung request must not hold the test or its exit
    thread.start()
    thread.join(timeout)
    return result[0] if result else 0


def ascii_envelope(events: Iterable) -> bytes:
    """The body as JSON with \\u escapes (a lone surrogate cannot be UTF-8, but LINE's JSON can say it)."""
    return json.dumps({"destination": "U" + "0" * 32, "events": list(events)}, ensure_ascii=True).encode()


# ---------------------------------------------------------------------------------------
# Outcomes at the mock
# ---------------------------------------------------------------------------------------

@dataclass
class Outcomes:
    """What each event got at the mock: the accepted sends that carry its reply token or its retry key."""

    answered: Counter  # event id -> accepted sends
    order_problems: list  # users whose answers arrived out of their events' order
    apologies: int  # answers that were the bot's apology instead of the real answer
    other_sends: dict = field(default_factory=dict)  # user -> accepted sends not tied to one of the events

    def count(self, event_ids) -> dict:
        ids = list(event_ids)
        return {"events": len(ids), "once": sum(self.answered[i] == 1 for i in ids),
                "twice": sum(self.answered[i] >= 2 for i in ids), "never": sum(self.answered[i] == 0 for i in ids)}


def outcomes(line, events: list[dict]) -> Outcomes:
    by_token = {e.get("replyToken"): e for e in events if e.get("replyToken")}
    by_key = {retry_key_for(e["webhookEventId"]): e for e in events if isinstance(e.get("webhookEventId"), str)}
    position = {e["webhookEventId"]: i for i, e in enumerate(sorted(events, key=lambda e: e.get("timestamp") or 0))}
    answered: Counter = Counter()
    seen_by_user: dict = defaultdict(list)
    other: dict = defaultdict(int)
    apologies = 0
    for call in line.delivered():
        body = call.json or {}
        event = by_token.get(body.get("replyToken")) if call.path.endswith("/reply") else by_key.get(
            call.headers.get("x-line-retry-key"))
        if any(APOLOGY in (m.get("text") or "") for m in call.messages):
            apologies += 1
        if event is None:
            for user in call.to or [body.get("to")]:
                other[user] += 1
            continue
        answered[event["webhookEventId"]] += 1
        seen_by_user[str((event.get("source") or {}).get("userId"))].append(position[event["webhookEventId"]])
    out_of_order = [user for user, seen in seen_by_user.items() if seen != sorted(seen)]
    return Outcomes(answered, out_of_order, apologies, dict(other))


# ---------------------------------------------------------------------------------------
# One bot under test
# ---------------------------------------------------------------------------------------

class FaultBot:
    """A bot of its own (PG schema, Redis prefix) with the webhook in this process and workers as processes.

    ``proxy``: the webhook and workers reach PostgreSQL through it. ``redis_url``: a private
    Redis instead of the shared one. The test's own reads go to PostgreSQL directly.
    """

    def __init__(self, line, tmp_path: Path, proxy: Optional[TcpProxy] = None, redis_url: str = "",
                 web: str = "inprocess", **knobs):
        from bot import create_app
        from bot.config import Config
        from storage.db import Database
        from tests.conftest import REDIS_URL, pg_schema_url, require_production_backends

        require_production_backends()
        self.line = line
        self.tmp_path = tmp_path
        self.log = tmp_path / "processes.log"
        self.database_url, self.schema = pg_schema_url()
        self.redis_url = redis_url or REDIS_URL
        self.prefix = f"f{uuid.uuid4().hex[:10]}:"
        self.db = Database(self.database_url)  # direct: set-up and counting
        self.db.upgrade()
        app_url = proxy.url_for(self.database_url) if proxy else self.database_url
        self.env = worker_env(app_url, self.redis_url, line.url, self.prefix, **knobs)
        self.workers: list[subprocess.Popen] = []
        self.web_process = None
        if web == "process":
            self.web_process, self.target = start_web(self.env, self.log)
            self.app = None
        else:
            self.app = create_app(Config.from_env(self.env, read_dotenv=False))
            self.target = self.app
        self.events: list[dict] = []  # every event posted, in order
        self.accepted: set[str] = set()  # the ids of events the webhook answered 200 (at some delivery)
        self.statuses: Counter = Counter()
        self.undelivered: list[tuple[list[dict], float]] = []  # (events, when to try again), as LINE keeps them
        self.clocks: Counter = Counter()  # user -> the last timestamp given to one of their events

    # -- processes ----------------------------------------------------------------------
    def start_worker(self, **knobs) -> subprocess.Popen:
        process = start_worker({**self.env, **{k: str(v) for k, v in knobs.items()}}, self.log)
        self.workers.append(process)
        return process

    def kill_workers(self) -> None:
        for process in self.workers:
            kill(process)

    # -- events ---------------------------------------------------------------------------
    def timestamp(self, user, age: float = 0.0) -> int:
        """Milliseconds ``age`` seconds ago, strictly increasing per user (so each user's order is defined)."""
        self.clocks[str(user)] = max(self.clocks[str(user)] + 1, int((time.time() - age) * 1000))
        return self.clocks[str(user)]

    def text(self, user: str, text: str, age: float = 0.0) -> dict:
        return le.text_event(user, text, reply_token=self.line.issue_reply_token(str(user)),
                             timestamp=self.timestamp(user, age))

    def tap(self, user: str, data: str, age: float = 0.0) -> dict:
        return le.postback_event(user, data, reply_token=self.line.issue_reply_token(str(user)),
                                 timestamp=self.timestamp(user, age))

    def post(self, events: list[dict], body: Optional[bytes] = None) -> int:
        """Posts one request as LINE would; one not answered 200 is redelivered by ``redeliver()``."""
        self.events.extend(events)
        if body is None:
            try:
                body = le.envelope(events)
            except UnicodeEncodeError:  # a lone surrogate: only a \u escape can carry it
                body = ascii_envelope(events)
        status = signed_post(self.target, body)
        self.statuses[status] += 1
        if status == 200:
            self.accepted.update(e["webhookEventId"] for e in events)
        elif events:
            self.undelivered.append((events, time.monotonic() + 0.5))
        return status

    def redeliver(self) -> None:
        """LINE's webhook redelivery: sends again, flagged as redeliveries, what was not answered 200."""
        due = [item for item in self.undelivered if item[1] <= time.monotonic()]
        for item in due:
            self.undelivered.remove(item)
            events = [{**e, "deliveryContext": {"isRedelivery": True}} for e in item[0]]
            status = signed_post(self.target, ascii_envelope(events))
            self.statuses[status] += 1
            if status == 200:
                self.accepted.update(e["webhookEventId"] for e in events)
            else:
                self.undelivered.append((item[0], time.monotonic() + 0.5))

    # -- waiting and counting -----------------------------------------------------------------
    def outcomes(self, events: Optional[list[dict]] = None) -> Outcomes:
        return outcomes(self.line, self.events if events is None else events)

    def wait_answered(self, events: Optional[list[dict]] = None, timeout: float = 20.0) -> bool:
        """Until every event (default: all posted) is answered at least once; False after ``timeout``."""
        events = self.events if events is None else events
        try:
            wait_until(lambda: not self.undelivered and self.outcomes(events).count(
                e["webhookEventId"] for e in events)["never"] == 0, timeout, "every event answered",
                step=0.1, on_tick=self.redeliver)
            return True
        except AssertionError:
            return False

    def settle(self, quiet: float = 1.5, timeout: float = 20.0) -> None:
        """Until nothing is left to do: no redelivery owed, no open work in the database, the mock quiet ``quiet`` s."""
        def quiet_now():
            last = self.line.last_send or 0
            return not self.undelivered and not self.open_work() and time.time() - last >= quiet
        try:
            wait_until(quiet_now, timeout, "quiet", step=0.1, on_tick=self.redeliver)
        except AssertionError:
            pass  # counted as it is: the figures say what happened

    def sql(self, query: str, **params) -> list:
        from sqlalchemy import text

        with self.db.engine.connect() as conn:
            return conn.execute(text(query), params).all()

    def open_work(self) -> int:
        """Events still queued and answers still being sent, as the database has them."""
        try:
            return self.sql("SELECT (SELECT count(*) FROM accepted_events WHERE status = 'queued') + "
                            "(SELECT count(*) FROM deliveries WHERE status IN ('pending', 'sending'))")[0][0]
        except Exception:
            return 0

    def row_counts(self) -> dict:
        """How many accepted events and deliveries are in each status (and why, for those that ended badly)."""
        try:
            return {"accepted_events": {f"{s} {r or ''}".strip(): n for s, r, n in self.sql(
                        "SELECT status, reason, count(*) FROM accepted_events GROUP BY 1, 2")},
                    "deliveries": {f"{s} {p} {r or ''}".strip(): n for s, p, r, n in self.sql(
                        "SELECT status, phase, reason, count(*) FROM deliveries GROUP BY 1, 2, 3")}}
        except Exception as exc:  # an older schema
            return {"error": type(exc).__name__}

    def event_status(self) -> dict:
        """webhook event id -> accepted_events.status."""
        return dict(self.sql("SELECT webhook_event_id, status FROM accepted_events"))

    def close(self) -> None:
        from tests.conftest import REDIS_URL, cleanup_backend

        self.kill_workers()
        kill(self.web_process)
        if self.app is not None:
            self.app.extensions["gonghao"].close()
        self.db.engine.dispose()
        cleanup = {"schema": self.schema}
        if self.redis_url == REDIS_URL:
            cleanup["redis_prefix"] = self.prefix  # the shared Redis: only this bot's keys
        cleanup_backend(cleanup)


# ---------------------------------------------------------------------------------------
# Owners sending their letter of intent
# ---------------------------------------------------------------------------------------

CONFIRMATION = "已送給"  # in the answer to the submission, and only there


class Owners:
    """A case and owners who fill in their letter up to the summary, so that ``confirm`` submits it."""

    def __init__(self, bot: FaultBot, count: int):
        from tests.letter_support import CASE
        from storage import letters as store

        self.bot = bot
        with bot.db.session() as s:
            case = store.create_case(s, **CASE)
            self.case_id, code = case.id, case.owner_code
        self.code = code
        self.users = [f"U{uuid.uuid4().hex}" for _ in range(count)]

    def fill_in(self, timeout: float = 30.0) -> None:
        """Every owner joins, agrees, answers every field and sees the summary (not yet sent)."""
        from tests.letter_support import OWNER, answers

        for user, number in zip(self.users, business_numbers(len(self.users))):
            owner = {**OWNER, "number": number}
            events = [self.bot.text(user, self.code), self.bot.tap(user, "agree")]
            events += [self.bot.text(user, answer) for answer in answers(owner)]
            self.bot.post(events)
        wait_until(lambda: all(any("請確認您的企業合作意向書" in t for t in self.bot.line.texts_to(u)) for u in self.users),
                   timeout, "every owner to see the letter's summary", step=0.1)

    def confirms(self) -> list[dict]:
        """Each owner's tap on "send" (to be posted in the middle of a fault)."""
        return [self.bot.tap(user, "confirm") for user in self.users]

    def effects(self) -> dict:
        """Per owner: letters submitted, audit entries of the submission, confirmations received."""
        letters = dict(self.bot.sql("SELECT user_id, count(*) FROM letters WHERE case_id = :c AND status = 'submitted' "
                                    "GROUP BY user_id", c=self.case_id))
        ids = dict(self.bot.sql("SELECT id, user_id FROM letters WHERE case_id = :c", c=self.case_id))
        audits = Counter()
        for (subject,) in self.bot.sql("SELECT subject FROM audit_log WHERE action = 'letter.submitted'"):
            letter_id = int(subject.split(":")[1])
            if letter_id in ids:
                audits[ids[letter_id]] += 1
        return {user: (letters.get(user, 0), audits[user],
                       sum(CONFIRMATION in t for t in self.bot.line.texts_to(user))) for user in self.users}

    def all_once(self) -> dict:
        """{"letters once": n, "audit once": n, "confirmed once": n} over the owners."""
        effects = self.effects().values()
        return {"owners": len(self.users), "letters once": sum(e[0] == 1 for e in effects),
                "audit once": sum(e[1] == 1 for e in effects), "confirmed once": sum(e[2] == 1 for e in effects)}


def business_numbers(count: int) -> list[str]:
    """Distinct valid 統一編號 (the checksum holds), so that no letter is flagged a duplicate of another."""
    from dialogs.validators import business_number_checksum_ok

    found, n = [], 22099131
    while len(found) < count:
        if business_number_checksum_ok(f"{n:08d}"):
            found.append(f"{n:08d}")
        n += 1
    return found
