"""Fixtures: the mock LINE platform, and the bot on both backends.

``embedded``: an SQLite file and the in-process worker (the zero set-up default).
``production``: PostgreSQL (a fresh schema per test) and Redis (a database of
its own, flushed) with the Redis worker running in threads. With CI=true both
must be reachable; locally an unreachable one skips its tests.
"""
from __future__ import annotations

import os
import threading
import time
import uuid

import pytest

from bot.config import Config
from bot import line_events as le

PG_URL = os.environ.get("GONGHAO_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("GONGHAO_TEST_REDIS", "redis://127.0.0.1:6379")
SECRET = "test-channel-secret"
TOKEN = "test-access-token"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable_pg() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), connect_timeout=3):
            return True
    except Exception:
        return False


def _reachable_redis() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping())
    except Exception:
        return False


def require_production_backends():
    if _reachable_pg() and _reachable_redis():
        return
    if IN_CI:
        pytest.fail("CI=true: PostgreSQL and Redis must be reachable (see README, 'Real parts')")
    pytest.skip("PostgreSQL or Redis not reachable")


@pytest.fixture(scope="session")
def mock_line():
    from bot.mockline import MockLine

    with MockLine() as mock:
        yield mock


@pytest.fixture()
def line(mock_line):
    mock_line.reset()
    yield mock_line
    mock_line.reset()


def pg_schema_url() -> tuple[str, str]:
    import psycopg

    schema = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    return f"{PG_URL}?options=-csearch_path%3D{schema}", schema


def drop_pg_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_URL.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


class Harness:
    """The bot as LINE sees it: send signed webhook requests, read what arrived at the mock."""

    def __init__(self, backend, app, line, services):
        self.backend = backend
        self.app = app
        self.client = app.test_client()
        self.line = line
        self.services = services
        self.worker = None
        self.worker_thread = None

    # -- sending -----------------------------------------------------------------
    def post(self, events, secret=SECRET, body=None, signature=None):
        body = body if body is not None else le.envelope(events)
        headers = {"Content-Type": "application/json"}
        if signature is not False:
            headers["x-line-signature"] = signature or le.sign(secret, body)
        return self.client.post("/callback", data=body, headers=headers)

    def token(self, user_id):
        return self.line.issue_reply_token(user_id)

    def says(self, user_id, text, wait=True):
        """The user types ``text``; returns the texts the bot answered."""
        return self._send(le.text_event(user_id, text, reply_token=self.token(user_id)), user_id, wait)

    def taps(self, user_id, data, wait=True):
        return self._send(le.postback_event(user_id, data, reply_token=self.token(user_id)), user_id, wait)

    def follows(self, user_id, wait=True):
        return self._send(le.follow_event(user_id, reply_token=self.token(user_id)), user_id, wait)

    def _send(self, event, user_id, wait):
        before = len(self.line.texts_to(user_id))
        response = self.post([event])
        assert response.status_code == 200, response.data
        if not wait:
            return None
        self.wait_idle()
        return self.line.texts_to(user_id)[before:]

    # -- waiting -----------------------------------------------------------------
    def wait_idle(self, timeout=15):
        worker = self.services.inprocess_worker if self.backend == "embedded" else self.worker
        assert worker.wait_idle(timeout), "the worker did not finish in time"

    def start_worker(self):
        """The worker process's loop, in a thread of the test, sharing the app's services (tests change them)."""
        from bot.worker import Worker

        self.worker = Worker(self.services, threads=16).start()

    def stop_worker(self):
        if self.worker:
            self.worker.stop()
            self.worker = None


def make_config(backend: str, line_url: str, **extra) -> tuple[Config, dict]:
    cleanup = {}
    if backend == "embedded":
        path = f"/tmp/gonghao-test-{uuid.uuid4().hex[:8]}.sqlite3"
        cleanup["sqlite"] = path
        database_url, redis_url = f"sqlite:///{path}", ""
    else:
        require_production_backends()
        database_url, cleanup["schema"] = pg_schema_url()
        redis_url = REDIS_URL
        extra.setdefault("redis_prefix", f"t{uuid.uuid4().hex[:10]}:")  # each test its own keys
        cleanup["redis_prefix"] = extra["redis_prefix"]
    config = Config(channel_secret=SECRET, channel_access_token=TOKEN, line_api_base_url=line_url,
                    database_url=database_url, redis_url=redis_url, partitions=4, worker_threads=16,
                    line_timeout=5.0, secret_key="test-secret-key", reminders=False, **extra)
    return config, cleanup


def cleanup_backend(cleanup: dict):
    if "sqlite" in cleanup:
        for suffix in ("", "-wal", "-shm"):
            try:
                os.remove(cleanup["sqlite"] + suffix)
            except FileNotFoundError:
                pass
    if "schema" in cleanup:
        drop_pg_schema(cleanup["schema"])
    if "redis_prefix" in cleanup:
        import redis

        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=cleanup["redis_prefix"] + "*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start:start + 500])


@pytest.fixture(params=["embedded", "production"])
def bot(request, line):
    """The whole bot on one backend, talking to the mock LINE platform."""
    from bot import create_app, start_embedded

    config, cleanup = make_config(request.param, line.url)
    app = create_app(config)
    start_embedded(app)  # the embedded backend: migrations and the in-process worker (PostgreSQL: nothing to start)
    services = app.extensions["gonghao"]
    if request.param == "production":
        services.db.upgrade()
    harness = Harness(request.param, app, line, services)
    if request.param == "production":
        harness.start_worker()
    yield harness
    if request.param == "production":
        harness.stop_worker()
    services.close()
    cleanup_backend(cleanup)


# -- no personal data in any log line of the whole run (issue 11) ------------------------------------
class _EveryLogLine:
    """Every log record of this test process, formatted as production writes it (bot/logs.py)."""

    def __init__(self):
        import io
        import logging

        from bot.logs import handler

        self.stream = io.StringIO()
        self.handler = handler(self.stream)
        self.handler.setLevel(logging.DEBUG)


@pytest.fixture(scope="session", autouse=True)
def no_personal_data_in_the_logs():
    """Scans every line logged during the run for the personal values the tests type in."""
    import logging

    from tests.letter_support import OWNER

    lines = _EveryLogLine()
    root = logging.getLogger()
    before = root.level
    root.addHandler(lines.handler)
    root.setLevel(min(before, logging.INFO))
    yield
    root.removeHandler(lines.handler)
    root.setLevel(before)
    written = lines.stream.getvalue()
    personal = [OWNER[k] for k in ("company", "number", "contact", "mobile", "mobile_shown", "email",
                                   "representative", "address", "products")]
    found = [value for value in personal if value in written]
    assert not found, f"personal data in the logs: {len(found)} value(s) of the letter's owner"
