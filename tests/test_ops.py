"""Operations: /metrics parses with Prometheus's own parser and names no person; /readyz says what is wrong."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot import heartbeat, metrics
from storage.models import AcceptedEvent, Delivery
from tests.roster_support import console  # noqa: F401

USER = "U" + "0123456789abcdef" * 2


def scrape(client) -> dict:
    """{(sample name, labels as a sorted tuple): value} of one GET /metrics."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    samples = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def add_event(db, event_id, status, age_seconds=0.0, reason=None):
    with db.session() as s:
        s.add(AcceptedEvent(webhook_event_id=event_id, user_id=USER, user_key=USER, event_type="message",
                            event_timestamp=0, payload="{}", status=status, reason=reason,
                            received_at=datetime.now(timezone.utc) - timedelta(seconds=age_seconds)))


def test_metrics_count_what_the_bot_did_and_read_the_queue_from_the_database(console):  # noqa: F811
    client = console.client()
    before = scrape(client)
    metrics.webhook_request("accepted")
    metrics.webhook_request("bad_signature")
    metrics.webhook_request("something invented")
    metrics.events_accepted(3)
    metrics.event_answered(0.12, "reply")
    metrics.event_answered(2.5, "push")
    metrics.event_failed()
    metrics.event_dead()
    metrics.line_call("/v2/bot/message/reply", 200)
    metrics.line_call(f"/v2/bot/profile/{USER}", 404)
    metrics.line_call("/v2/bot/message/push", None)
    add_event(console.db, "ev-old", "queued", age_seconds=300)
    add_event(console.db, "ev-new", "queued")
    add_event(console.db, "ev-dead", "dead", reason="the dialog failed 5 times")
    with console.db.session() as s:
        s.add(Delivery(event_id="ev-held", user_id=USER, messages="[]", status="held"))
    after = scrape(client)

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("gonghao_webhook_requests_total", outcome="accepted") == 1
    assert grew("gonghao_webhook_requests_total", outcome="bad_signature") == 1
    assert grew("gonghao_webhook_requests_total", outcome="other") == 1
    assert grew("gonghao_events_accepted_total") == 3
    assert grew("gonghao_events_answered_total", method="reply") == 1
    assert grew("gonghao_events_failed_total") == 1 and grew("gonghao_events_dead_total") == 1
    assert grew("gonghao_answer_latency_seconds_count", method="reply") == 1
    assert grew("gonghao_answer_latency_seconds_bucket", method="reply", le="0.15") == 1
    assert grew("gonghao_answer_latency_seconds_bucket", method="reply", le="0.1") == 0
    assert grew("gonghao_answer_latency_seconds_bucket", method="push", le="3.0") == 1
    assert grew("gonghao_line_api_calls_total", endpoint="/v2/bot/message/reply", status="200") == 1
    assert grew("gonghao_line_api_calls_total", endpoint="/v2/bot/profile/{userId}", status="404") == 1
    assert grew("gonghao_line_api_calls_total", endpoint="/v2/bot/message/push", status="error") == 1
    assert 299 < value(after, "gonghao_queue_lag_seconds") < 330
    assert value(after, "gonghao_queued_events") == 2
    assert value(after, "gonghao_dead_letters") == 1
    assert value(after, "gonghao_deliveries", status="held") == 1
    assert value(after, "gonghao_database_up") == 1
    body = client.get("/metrics").get_data(as_text=True)
    assert USER not in body and "0123456789abcdef" not in body


def test_the_quota_is_read_from_line_and_an_empty_queue_has_no_lag(console, line):  # noqa: F811
    line.quota, line.usage = 1000, 40
    console.services.gateway = type(console.services.gateway)("t", line.url, timeout=5)
    metrics.QUOTA.value = None
    samples = scrape(console.client())
    assert value(samples, "gonghao_message_quota_limit") == 1000
    assert value(samples, "gonghao_message_quota_used") == 40
    assert value(samples, "gonghao_message_quota_remaining") == 960
    assert value(samples, "gonghao_queue_lag_seconds") == 0
    line.usage = 50
    assert value(scrape(console.client()), "gonghao_message_quota_used") == 40  # asked at most every 5 minutes
    metrics.QUOTA.value = None


def test_endpoint_labels_never_carry_an_id():
    assert metrics.endpoint_label(f"/v2/bot/profile/{USER}") == "/v2/bot/profile/{userId}"
    assert metrics.endpoint_label("/v2/bot/richmenu/richmenu-0123abc/content") == "/v2/bot/richmenu/{id}/content"
    assert metrics.endpoint_label(f"/v2/bot/user/{USER}/richmenu") == "/v2/bot/user/{id}/richmenu"
    assert metrics.endpoint_label("/v2/bot/message/reply?x=1") == "/v2/bot/message/reply"
    assert metrics.endpoint_label("https://evil.example/" + "x" * 200) == "other"


CHILD = """
import sys
from bot import metrics
metrics.webhook_request("accepted")
metrics.events_accepted(int(sys.argv[1]))
metrics.event_answered(0.2, "reply")
"""


def test_gunicorn_processes_add_up_in_multiprocess_mode(tmp_path):
    folder = tmp_path / "prom"
    folder.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    for n in (2, 5):
        subprocess.run([sys.executable, "-c", CHILD, str(n)], env=env, check=True, cwd=os.getcwd())
    out = subprocess.run([sys.executable, "-c", "from bot import metrics; import sys; "
                          "sys.stdout.write(metrics.render().decode())"], env=env, check=True, capture_output=True,
                         text=True).stdout
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in text_string_to_metric_families(out) for s in f.samples}
    assert samples[("gonghao_events_accepted_total", ())] == 7
    assert samples[("gonghao_webhook_requests_total", (("outcome", "accepted"),))] == 2
    assert samples[("gonghao_answer_latency_seconds_count", (("method", "reply"),))] == 2


def test_readyz_needs_a_fresh_worker_heartbeat_and_every_migration(console):  # noqa: F811
    client = console.client()
    response = client.get("/readyz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["database"]["ok"] and checks["migrations"]["ok"]
    assert checks["worker"] == {"ok": False, "error": "no worker heartbeat"}

    heartbeat.beat(console.db, "host:1:abc")
    response = client.get("/readyz")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["status"] == "ready"

    heartbeat.beat(console.db, "host:2:old", now=datetime.now(timezone.utc) - timedelta(minutes=5))
    heartbeat.stop(console.db, "host:1:abc")
    checks = client.get("/readyz").get_json()["checks"]
    assert not checks["worker"]["ok"] and checks["worker"]["heartbeat_age_seconds"] >= 299

    heartbeat.beat(console.db, "host:1:abc")
    with console.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0008'"))
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["migrations"] == {"ok": False, "missing": ["0008"]}
    assert json.dumps(response.get_json()).find("U0") == -1


def test_readyz_says_when_redis_does_not_answer(console):  # noqa: F811
    import redis

    heartbeat.beat(console.db, "host:1:abc")
    console.services.redis = redis.Redis(host="127.0.0.1", port=9, socket_connect_timeout=1)
    try:
        response = console.client().get("/readyz")
    finally:
        console.services.redis = None
    assert response.status_code == 503
    assert response.get_json()["checks"]["redis"] == {"ok": False, "error": "ConnectionError"}


def test_reminder_runs_show_what_was_due_held_and_sent(console, line):  # noqa: F811
    import time_machine
    from prometheus_client import REGISTRY

    from bot.gateway import LineGateway
    from bot.reminders import ReminderSender
    from dialogs.dates import TAIPEI
    from dialogs.reminders import Member, StaticDirectory

    def sample(name, **labels):
        return REGISTRY.get_sample_value(name, labels) or 0.0

    services = console.services
    services.gateway = LineGateway("t", line.url, timeout=5)
    services.reminder_directory = StaticDirectory([Member(f"U{n:032x}", 1, "owner") for n in range(3)])
    sent_before = sample("gonghao_reminder_recipients_sent_total")
    with time_machine.travel(datetime(2023, 7, 29, 22, 0, tzinfo=TAIPEI), tick=False):
        ReminderSender(services).run_once()
    due = sample("gonghao_reminders_due")
    assert due >= 1 and sample("gonghao_reminders_held", reason="quiet_hours") == due
    line.quota, line.usage = 100, 99
    with time_machine.travel(datetime(2023, 7, 30, 8, 0, tzinfo=TAIPEI), tick=False):
        ReminderSender(services).run_once()
    assert sample("gonghao_reminders_held", reason="quiet_hours") == 0
    assert sample("gonghao_reminders_held", reason="quota") >= 1
    line.quota = 1000
    with time_machine.travel(datetime(2023, 7, 30, 8, 1, tzinfo=TAIPEI), tick=False):
        ReminderSender(services).run_once()
    assert sample("gonghao_reminder_recipients_sent_total") - sent_before == 3
    assert sample("gonghao_reminders_held", reason="quota") == 0
    assert metrics.QUOTA.value == (1000, 99)
    metrics.QUOTA.value = None


def test_gunicorn_with_its_config_serves_metrics_in_multiprocess_mode(tmp_path):
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    folder = tmp_path / "prom"
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}", "PROMETHEUS_MULTIPROC_DIR": str(folder),
           "GONGHAO_REMINDERS": "off", "LINE_CHANNEL_SECRET": "s"}
    env.pop("REDIS_URL", None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    folder.mkdir()
    (folder / "counter_999999.db").write_bytes(b"left over from an earlier run")
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", os.path.join(root, "gunicorn.conf.py"),
                             "--workers", "2", "--bind", f"127.0.0.1:{port}", "bot:create_app()"],
                            env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
                    body = answer.read().decode()
                break
            except OSError:  # not listening yet, or still booting (URLError, timeouts)
                assert time.monotonic() < deadline and proc.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
        families = {f.name: f for f in text_string_to_metric_families(body)}
        assert families["gonghao_database_up"].samples[0].value == 1
        assert families["gonghao_queue_lag_seconds"].samples[0].value == 0
        assert not (folder / "counter_999999.db").exists()  # an earlier run's files are not added up
    finally:
        proc.terminate()
        proc.wait(30)


def test_a_worker_serves_its_own_metrics_on_its_port_and_a_taken_port_is_not_fatal():
    import socket
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = metrics.serve_worker_metrics(port, addr="127.0.0.1")
    try:
        metrics.event_answered(0.3, "push")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            names = {f.name for f in text_string_to_metric_families(answer.read().decode())}
        assert "gonghao_answer_latency_seconds" in names
        assert metrics.serve_worker_metrics(port, addr="127.0.0.1") is None  # taken: logged, the worker goes on
        assert metrics.serve_worker_metrics(0) is None  # 0: off
    finally:
        server.shutdown()


def test_a_heartbeat_called_on_every_loop_turn_writes_at_most_every_few_seconds(console):  # noqa: F811
    beat = heartbeat.every(console.db, "host:9:abc", seconds=3600)
    beat()
    first = heartbeat.freshest(console.db)
    beat()
    assert heartbeat.freshest(console.db) == first and first is not None
    assert heartbeat.live_workers(console.db, 30) == 1


@pytest.mark.parametrize("level, logged", [("INFO", True), ("WARNING", False)])
def test_gunicorn_writes_access_lines_only_at_info(tmp_path, level, logged):
    """At WARNING (production) gunicorn must not even build the access line (its CPU per request); at INFO
    the line is there, in the same JSON as every other."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'g.sqlite3'}", "GONGHAO_REMINDERS": "off",
           "LINE_CHANNEL_SECRET": "s", "GONGHAO_LOG_LEVEL": level, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    env.pop("REDIS_URL", None)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, cwd=tmp_path, check=True,
                   capture_output=True)
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", os.path.join(root, "gunicorn.conf.py"),
                                 "--workers", "1", "--bind", f"127.0.0.1:{port}", "bot:create_app()"],
                                env=env, cwd=root, stdout=out, stderr=out)
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as answer:
                    assert answer.status == 200
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, "gunicorn did not start"
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(30)
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "gunicorn.access" and "/healthz" in line["message"]]
    assert bool(access) == logged
