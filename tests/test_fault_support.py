"""The fault matrix's own tools do what they say: the proxy's modes, the private Redis, the processes."""
from __future__ import annotations

import threading
import time
import uuid

import psycopg
import pytest
import redis

from bot import line_events as le
from tests.conftest import PG_URL, require_production_backends
from tests.fault_support import FaultBot, PrivateRedis, TcpProxy, outcomes, signed_post

PLAIN_PG = PG_URL.replace("postgresql+psycopg", "postgresql")


@pytest.fixture()
def proxy():
    require_production_backends()
    with TcpProxy(target=("127.0.0.1", 5432)) as proxy:
        yield proxy


def test_the_proxy_passes_refuses_and_cuts(proxy):
    url = proxy.url_for(PLAIN_PG + "?application_name=fault-proxy")
    assert ":5432" not in url and url.endswith("?application_name=fault-proxy")
    conn = psycopg.connect(url, autocommit=True)
    assert conn.execute("SELECT 1").fetchone() == (1,)
    proxy.refuse()
    with pytest.raises(psycopg.OperationalError):  # the open connection is cut
        conn.execute("SELECT 1")
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):  # a new one is refused at once
        psycopg.connect(url, connect_timeout=5)
    assert time.monotonic() - started < 2
    proxy.pass_()
    with psycopg.connect(url, autocommit=True) as again:
        assert again.execute("SELECT 2").fetchone() == (2,)


def test_the_proxy_goes_silent_without_closing_anything(proxy):
    url = proxy.url_for(PLAIN_PG)
    conn = psycopg.connect(url, autocommit=True)
    proxy.silent()
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):  # connecting hangs until the client's own timeout
        psycopg.connect(url, connect_timeout=1)
    assert time.monotonic() - started >= 0.9
    answered = []

    def ask():
        try:
            answered.append(conn.execute("SELECT 3").fetchone())
        except psycopg.OperationalError:  # closed below, by its client giving up
            pass

    query = threading.Thread(target=ask, daemon=True)
    query.start()
    query.join(1)
    assert query.is_alive() and answered == []  # no answer, and no error either
    proxy.pass_()
    with psycopg.connect(url, autocommit=True) as fresh:  # new connections work again
        assert fresh.execute("SELECT 4").fetchone() == (4,)
    query.join(0.5)
    assert answered == []  # the connection that went quiet stays quiet until its client gives up
    conn.close()


@pytest.mark.parametrize("aof", [True, False])
def test_a_private_redis_keeps_its_data_over_a_kill_only_with_aof(aof):
    server = PrivateRedis(aof=aof).start()
    try:
        client = redis.Redis.from_url(server.url)
        client.set("k", "v")
        server.restart()
        assert client.get("k") == (b"v" if aof else None)
    finally:
        server.close()


def test_a_web_process_and_a_worker_process_answer_and_are_counted(line, tmp_path):
    """gunicorn serving bot:create_app() and `gonghao worker`, through the real network path."""
    bot = FaultBot(line, tmp_path, web="process")
    try:
        bot.start_worker()
        user = f"U{uuid.uuid4().hex}"
        events = [bot.text(user, "聯絡窗口"), bot.text(user, "聯絡窗口")]
        assert bot.post(events) == 200
        assert bot.wait_answered(events, 30), f"see {bot.log}"
        assert outcomes(line, events).count(e["webhookEventId"] for e in events) == {
            "events": 2, "once": 2, "twice": 0, "never": 0}
        body = le.envelope([])
        assert signed_post(bot.target, body) == 200  # the console's Verify: no events
    finally:
        bot.close()
