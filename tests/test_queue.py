"""The queue table: redeliveries, bounded growth, and production's refusal of a Redis that keeps nothing."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from bot import line_events as le
from bot.config import ConfigError
from bot.queue import EventQueue
from storage.db import Database
from storage.models import AcceptedEvent, Delivery, DialogState

USER = "U6666666666666666666666666666666f"


@pytest.fixture()
def queue(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'queue.sqlite3'}")
    db.upgrade()
    yield EventQueue(db, reorder_ms=0)
    db.engine.dispose()


def count(db, model, **where):
    with db.session() as s:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return s.execute(query).scalar_one()


def test_an_event_is_queued_once_however_often_line_sends_it(queue):
    event = le.text_event(USER, "hi")
    assert queue.accept([event]) == [True]
    assert queue.accept([{**event, "deliveryContext": {"isRedelivery": True}}]) == [False]
    assert count(queue.db, AcceptedEvent) == 1


def test_only_the_oldest_event_of_a_user_is_its_turn(queue):
    first, second = le.text_event(USER, "1", timestamp=1000), le.text_event(USER, "2", timestamp=2000)
    queue.accept([second, first])
    assert [head[0] for head in queue.heads(10)] == [first["webhookEventId"]]


def test_old_rows_are_trimmed_and_recent_ones_kept(queue):
    db = queue.db
    old, recent = le.text_event(USER, "old"), le.text_event(USER, "new")
    queue.accept([old, recent])
    long_ago = datetime.now(timezone.utc) - timedelta(days=40)
    with db.session() as s:
        s.get(AcceptedEvent, old["webhookEventId"]).status = "done"
        s.get(AcceptedEvent, old["webhookEventId"]).received_at = long_ago
        s.add(Delivery(event_id=old["webhookEventId"], user_id=USER, messages="[]", status="sent", created_at=long_ago))
        s.add(DialogState(user_id=USER, state="{}", expires_at=long_ago, version=3))
    assert queue.trim() == 3
    assert count(db, AcceptedEvent) == 1 and count(db, Delivery) == 0 and count(db, DialogState) == 0
    assert count(db, AcceptedEvent, status="queued") == 1  # a queued event is never trimmed


def test_production_refuses_a_redis_without_persistence(monkeypatch):
    from bot.services import Services
    from tests.conftest import make_config

    config, cleanup = make_config("embedded", "http://127.0.0.1:9")
    services = Services(config.model_copy(update={"env": "production"}))

    class Volatile:
        def info(self, section):
            return {"aof_enabled": 0}

    services.redis = Volatile()
    with pytest.raises(ConfigError, match="appendonly"):
        services.check_redis_persistence()
    services.config = services.config.model_copy(update={"allow_volatile_redis": True})
    services.check_redis_persistence()  # told explicitly: it starts
    services.close()


def test_production_checks_the_real_redis():
    """The shared Redis of the test machine keeps nothing on disk (README): production refuses it."""
    import redis

    from bot.services import Services
    from tests.conftest import REDIS_URL, make_config

    config, cleanup = make_config("embedded", "http://127.0.0.1:9")
    services = Services(config.model_copy(update={"env": "production", "redis_url": REDIS_URL}))
    try:
        if int(redis.Redis.from_url(REDIS_URL).info("persistence").get("aof_enabled", 0)):
            services.check_redis_persistence()
        else:
            with pytest.raises(ConfigError):
                services.check_redis_persistence()
    finally:
        services.close()


def test_requests_arriving_together_share_one_insert_and_commit(queue):
    import threading

    real, calls, first_running, release = queue.together.insert, [], threading.Event(), threading.Event()

    def slow_first(rows):
        calls.append(len(rows))
        if len(calls) == 1:
            first_running.set()
            release.wait(10)  # the others arrive while this one runs
        return real(rows)

    queue.together.insert = slow_first
    events = [le.text_event(f"U{i:032x}", "hi") for i in range(8)]
    results: dict[int, list[bool]] = {}
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, queue.accept([events[i]]))) for i in range(8)]
    threads[0].start()
    assert first_running.wait(10)
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 10
    while len(queue.together.waiting) < 7 and time.monotonic() < deadline:
        time.sleep(0.005)
    release.set()
    for thread in threads:
        thread.join(10)
    assert results == {i: [True] for i in range(8)}
    assert calls == [1, 7]  # the first alone, the seven that waited in one statement
    assert count(queue.db, AcceptedEvent) == 8


def test_an_event_the_database_refuses_in_a_shared_insert_costs_the_other_requests_nothing(queue):
    from sqlalchemy.exc import DataError

    real = queue.together.insert
    bad = le.text_event(USER, "refused")

    def refusing(rows):
        if any(row["webhook_event_id"] == bad["webhookEventId"] for row in rows):
            raise DataError("INSERT", {}, Exception("value too long"))
        return real(rows)

    queue.together.insert = refusing
    queue._insert = refusing
    good = le.text_event("U" + "7" * 32, "fine")
    assert queue.accept([bad, good]) == [False, True]
    assert queue.accept([bad]) == [False]  # skipped (logged), not a 503 that LINE would repeat forever
    assert queue.accept([bad, good]) == [False, False]  # the good one is already queued
    assert count(queue.db, AcceptedEvent) == 1


def test_the_same_event_in_two_requests_at_once_is_new_for_one_of_them(queue):
    from bot.queue import GroupInsert, _Waiting

    event = le.text_event(USER, "twice")
    rows = queue.rows([event])
    group = GroupInsert(queue._insert, 1.5)
    first, second = _Waiting(rows), _Waiting(queue.rows([event]))
    group._run([first, second])
    assert (first.fresh, second.fresh) == ({event["webhookEventId"]}, set())
    assert count(queue.db, AcceptedEvent) == 1


def test_a_console_worker_takes_only_its_own_users_events(queue):
    other = "U" + "7" * 32
    mine, theirs = le.text_event(USER, "mine", timestamp=2000), le.text_event(other, "theirs", timestamp=1000)
    queue.accept([mine, theirs])
    assert [head[0] for head in queue.heads(10, user=USER)] == [mine["webhookEventId"]]
    assert len(queue.heads(10)) == 2


# An embedded process without a web server: the app and its in-process worker, until its stdin closes.
EMBEDDED_PROCESS = """
import sys
from bot import create_app, start_embedded
app = create_app()
start_embedded(app)
sys.stdin.read()
app.extensions["gonghao"].close()
"""


def test_two_embedded_processes_on_one_file_answer_every_event_once(line, tmp_path):
    """Two processes with in-process workers on one SQLite file (two `gonghao serve`, say): each event is
    processed by one of them, once — no IntegrityError, no second answer."""
    import os
    import subprocess
    import sys

    from bot import create_app
    from tests.conftest import SECRET, TOKEN, make_config

    config, _ = make_config("embedded", line.url, reorder_ms=0)
    config = config.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'shared.sqlite3'}"})
    app = create_app(config)
    db = app.extensions["gonghao"].db
    db.upgrade()
    env = dict(os.environ, LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_BASE_URL=line.url,
               DATABASE_URL=config.database_url, REDIS_URL="", GONGHAO_REMINDERS="off", GONGHAO_LOG_LEVEL="WARNING")
    processes = [subprocess.Popen([sys.executable, "-c", EMBEDDED_PROCESS], env=env, cwd=tmp_path, text=True,
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                 for _ in range(2)]
    users = [f"U{i:032x}" for i in range(12)]
    events = [le.text_event(user, text, reply_token=line.issue_reply_token(user))
              for text in ("你好", "說明", "聯絡窗口") for user in users]
    client = app.test_client()
    try:
        for event in events:
            body = le.envelope([event])
            response = client.post("/callback", data=body, headers={
                "Content-Type": "application/json", "x-line-signature": le.sign(SECRET, body)})
            assert response.status_code == 200
        line.wait_for(lambda: count(db, AcceptedEvent, status="done") + count(db, AcceptedEvent, status="dead")
                      == len(events) and count(db, Delivery, status="sent") == len(events), timeout=90)
    finally:
        errors = [process.communicate(input="", timeout=60)[1] for process in processes]
        app.extensions["gonghao"].close()
    assert errors == ["", ""], errors  # no IntegrityError, no warning
    assert len(line.delivered()) == len(events)  # every event answered once,
    assert {call.path for call in line.delivered()} == {"/v2/bot/message/reply"}  # as a reply to its own token
    assert count(db, AcceptedEvent, attempts=0) == len(events)  # and nothing failed on the way


def test_a_burst_after_a_quiet_time_is_reserved_within_the_workers_statement_timeout():
    """Statistics gathered while every event was answered took the queue for empty. During the next burst each
    reservation then read every queued event once for each candidate (340 s with 10,000 queued): past the
    worker's statement timeout, so the workers reserved nothing until the statistics were gathered again."""
    from sqlalchemy import text

    from tests.conftest import drop_pg_schema, pg_schema_url, require_production_backends

    require_production_backends()
    url, schema = pg_schema_url()
    db = Database(url, timeout=2.0, statement_seconds=2.0)  # the worker's limit is GONGHAO_DB_TIMEOUT (5 s)
    try:
        db.upgrade()
        queue = EventQueue(db, reorder_ms=0)
        users = [f"U{n:032x}" for n in range(700)]
        answered = [le.text_event(users[n % 700], "earlier", timestamp=1_000 + n) for n in range(4_000)]
        queue.accept(answered)
        with db.session() as s:
            s.execute(text("UPDATE accepted_events SET status = 'done'"))
        with db.engine.connect() as conn:  # what autovacuum's ANALYZE would see in a quiet hour
            conn.execute(text("ANALYZE accepted_events"))
            conn.commit()
        queue.accept([le.text_event(users[n % 700], "burst", timestamp=10_000 + n) for n in range(2_100)])
        reserved = queue.reserve("worker-1", 32, 60_000)
        assert len(reserved) == 32
        assert len({user for _event, user, _stamp in reserved}) == 32  # one per user, the oldest of each
    finally:
        db.engine.dispose()
        drop_pg_schema(schema)
