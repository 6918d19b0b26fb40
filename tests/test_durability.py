"""A worker killed with SIGKILL in the middle of a burst: every acknowledged event is answered exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest

from bot import create_app
from bot import line_events as le
from bot.gateway import retry_key_for
from tests.conftest import SECRET, TOKEN, cleanup_backend, make_config

EVENTS = 1000


def start_worker(config, line_url, log):
    env = dict(os.environ, LINE_CHANNEL_SECRET=SECRET, LINE_CHANNEL_ACCESS_TOKEN=TOKEN, LINE_API_BASE_URL=line_url,
               DATABASE_URL=config.database_url, REDIS_URL=config.redis_url, GONGHAO_PARTITIONS=str(config.partitions),
               GONGHAO_LEASE_SECONDS="2", GONGHAO_REMINDERS="off", GONGHAO_REDIS_PREFIX=config.redis_prefix, GONGHAO_WORKER_THREADS="16", GONGHAO_LOG_LEVEL="WARNING")
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "worker"], env=env, stdout=subprocess.DEVNULL,
                            stderr=log)  # a file: a full pipe would stop the worker


def test_worker_killed_mid_burst_answers_every_event_exactly_once(line, tmp_path):
    log = open(tmp_path / "worker.log", "wb")
    config, cleanup = make_config("production", line.url)
    app = create_app(config)
    services = app.extensions["gonghao"]
    services.db.upgrade()
    client = app.test_client()
    line.set_delay(0.01)
    worker = start_worker(config, line.url, log)
    try:
        events = []
        for i in range(EVENTS):
            user = f"U{i:032x}"
            events.append(le.text_event(user, "聯絡窗口", reply_token=line.issue_reply_token(user)))
        for start in range(0, EVENTS, 20):  # LINE batches several events per request
            body = le.envelope(events[start:start + 20])
            response = client.post("/callback", data=body, headers={"x-line-signature": le.sign(SECRET, body)})
            assert response.status_code == 200
        deadline = time.time() + 60
        while len(line.delivered()) < EVENTS // 4 and time.time() < deadline:
            time.sleep(0.01)
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        killed_at = len(line.delivered())
        assert killed_at < EVENTS, "the worker finished before it could be killed"
        worker = start_worker(config, line.url, log)
        deadline = time.time() + 60
        while time.time() < deadline:
            if len(line.delivered()) >= EVENTS and services.queue.backlog() == 0:
                break
            time.sleep(0.1)
        time.sleep(1.0)  # anything answered twice would arrive now
        answered = Counter()
        by_key = {retry_key_for(e["webhookEventId"]): e["source"]["userId"] for e in events}
        for record in line.delivered():
            if record.path.endswith("/reply"):
                answered[record.json["replyToken"].split("-")[1]] += 1
            else:
                key = record.headers.get("x-line-retry-key")
                assert key in by_key, (record.path, record.json, record.headers)
                answered[by_key[key]] += 1
        users = {e["source"]["userId"] for e in events}
        assert set(answered) == users, f"{len(users - set(answered))} events never answered; killed at {killed_at}"
        assert [u for u, n in answered.items() if n > 1] == []
    finally:
        worker.kill()
        worker.wait()
        services.close()
        cleanup_backend(cleanup)
