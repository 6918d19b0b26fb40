"""`gonghao doctor` against the mock LINE platform: all green when configured, each problem named with its fix."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from bot import richmenu
from bot.cli import main
from bot.doctor import Doctor
from dialogs.i18n import use_locale
from tests.conftest import IN_CI, SECRET, TOKEN, drop_pg_schema, pg_schema_url, require_production_backends


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def private_redis(tmp_path):
    """A Redis of this test's own on another port (the shared one is never reconfigured): persistence as asked."""
    if shutil.which("redis-server") is None:
        if IN_CI:
            pytest.fail("CI=true: redis-server is needed")
        pytest.skip("redis-server not installed")
    started = []

    def start(*persistence: str) -> str:
        port = free_port()
        folder = tmp_path / f"redis-{port}"
        folder.mkdir()
        proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder),
                                 *persistence], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started.append(proc)
        import redis

        client = redis.Redis(port=port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError("the private redis-server did not start")
                time.sleep(0.05)
        client.close()
        return f"redis://127.0.0.1:{port}"

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


@pytest.fixture()
def deployment(line, private_redis, monkeypatch):
    """A deployment as an operator configured it: PostgreSQL migrated, Redis with AOF, the web serving, LINE set."""
    from werkzeug.serving import make_server

    from bot import create_app
    from bot.config import Config
    from bot.richmenu import build, deploy, line_apis

    require_production_backends()
    try:
        menu = build()
    except richmenu.FontNotFound as exc:
        if IN_CI:
            pytest.fail(f"CI=true: {exc}")
        pytest.skip(str(exc))
    url, schema = pg_schema_url()
    redis_url = private_redis("--appendonly", "yes", "--save", "")
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    config = Config(channel_secret=SECRET, channel_access_token=TOKEN, line_api_base_url=line.url, database_url=url,
                    redis_url=redis_url, public_url=public, secret_key="k", reminders=False, line_timeout=5)
    app = create_app(config)
    services = app.extensions["gonghao"]
    services.db.upgrade()
    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    line.access_tokens, line.channel_secret = {TOKEN}, SECRET
    line.webhook_endpoint = public + "/callback"
    line.quota, line.usage = 1000, 10
    api, blob = line_apis(TOKEN, line.url)
    deploy(menu, api, blob)
    env = {"LINE_CHANNEL_SECRET": SECRET, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN, "LINE_API_BASE_URL": line.url,
           "DATABASE_URL": url, "REDIS_URL": redis_url, "GONGHAO_PUBLIC_URL": public, "GONGHAO_ENV": "production",
           "GONGHAO_SECRET_KEY": "k", "GONGHAO_REMINDERS": "off"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("GONGHAO_NOW", raising=False)
    yield SimpleNamespace(line=line, services=services, public=public, env=env, private_redis=private_redis)
    server.shutdown()
    services.close()
    drop_pg_schema(schema)


def doctor(*args, language="en"):
    result = CliRunner().invoke(main, ["doctor", "--language", language, *args])
    lines = result.output.strip().splitlines()
    return result.exit_code, {line.split(":", 1)[0][4:]: line for line in lines if line[:3] in ("OK ", "FIX")}, lines


def test_a_good_configuration_is_all_green(deployment):
    code, found, lines = doctor()
    assert code == 0, "\n".join(lines)
    assert set(found) == {"Channel secret and token", "Access token", "Webhook URL", "Redis persistence", "Database",
                          "Rich menu", "Clock and time zone", "Message quota"}
    assert all(line.startswith("OK ") for line in found.values())
    assert f"{deployment.public}/callback, in use" in found["Webhook URL"]
    assert "appendonly yes" in found["Redis persistence"]
    assert "PostgreSQL answers and is migrated" in found["Database"]
    assert "990 of 1000 left this month" in found["Message quota"]
    assert lines[-1].startswith("All 8 checks passed")
    code, found, lines = doctor(language="zh_TW")
    assert code == 0 and lines[-1].startswith("8 項檢查全部通過")


def test_a_wrong_token_is_named_with_its_fix(deployment):
    deployment.line.access_tokens = {"another-token"}
    code, found, _lines = doctor()
    assert code == 1
    assert found["Access token"].startswith("FIX Access token: LINE refused the access token.")
    assert "LINE_CHANNEL_ACCESS_TOKEN" in found["Access token"]
    _code, found, _lines = doctor(language="zh_TW")
    assert "LINE 拒絕了這個存取權杖" in found["存取權杖"]


def test_a_webhook_that_is_not_ours_is_named_and_set_webhook_fixes_it(deployment):
    line = deployment.line
    line.webhook_endpoint = "https://someone-else.example/callback"
    code, found, _lines = doctor()
    assert code == 1
    assert "LINE sends the events to https://someone-else.example/callback, not to " \
           f"{deployment.public}/callback" in found["Webhook URL"]
    assert "--set-webhook" in found["Webhook URL"]

    code, found, lines = doctor("--set-webhook")
    assert code == 0, "\n".join(lines)
    assert line.webhook_endpoint == f"{deployment.public}/callback"
    assert "LINE's test was answered 200" in found["Webhook URL"]
    tested = [c for c in line.requests if c.path == "/v2/bot/channel/webhook/test"]
    assert tested[-1].status == 200 and tested[-1].response["success"] is True

    line.webhook_active = False
    _code, found, _lines = doctor()
    assert '"Use webhook" is off' in found["Webhook URL"]


def test_a_webhook_test_that_fails_says_so(deployment):
    deployment.line.channel_secret = "not the bot's secret"  # the bot refuses the signature: 400
    code, found, _lines = doctor("--set-webhook")
    assert code == 1
    assert "LINE's test got 400" in found["Webhook URL"] and "LINE_CHANNEL_SECRET" in found["Webhook URL"]


def test_redis_without_persistence_is_named(deployment, monkeypatch):
    monkeypatch.setenv("REDIS_URL", deployment.private_redis("--appendonly", "no", "--save", ""))
    code, found, _lines = doctor()
    assert code == 1
    assert found["Redis persistence"].startswith("FIX Redis persistence: Redis keeps nothing over a restart")
    assert "appendonly yes" in found["Redis persistence"]
    monkeypatch.setenv("REDIS_URL", deployment.private_redis("--appendonly", "no", "--save", "3600 1"))
    code, found, _lines = doctor()  # snapshots only: production's processes want AOF
    assert code == 1 and 'Redis only takes snapshots (save "3600 1")' in found["Redis persistence"]
    monkeypatch.setenv("GONGHAO_ALLOW_VOLATILE_REDIS", "1")
    assert doctor()[0] == 0  # the operator accepted it


def test_migrations_behind_are_named(deployment):
    with deployment.services.db.engine.begin() as conn:
        conn.execute(text("DELETE FROM alembic_version WHERE version_num = '0008'"))
    code, found, _lines = doctor()
    assert code == 1
    assert "misses the migrations 0008. Run gonghao db upgrade." in found["Database"]


def test_an_old_rich_menu_and_a_fixed_clock_are_named(deployment, monkeypatch):
    line = deployment.line
    old = next(iter(line.rich_menus))
    line.rich_menus[old]["name"] = richmenu.NAME_PREFIX + "0000000000000000"
    monkeypatch.setenv("GONGHAO_NOW", "2023-03-15T09:00+08:00")
    code, found, _lines = doctor()
    assert code == 1
    assert "Run gonghao richmenu deploy" in found["Rich menu"]
    assert "GONGHAO_NOW" in found["Clock and time zone"]


def test_reminders_beyond_the_quota_are_named(deployment):
    now = datetime.now(timezone.utc)
    item = SimpleNamespace(at=now, recipients=["U%032d" % n for n in range(995)])
    checker = Doctor(SimpleNamespace(line_api_base_url=deployment.line.url, channel_access_token=TOKEN,
                                     line_timeout=5))
    with use_locale("en"):
        finding = checker.check_quota(lambda days: [item])
    assert not finding.ok
    assert "need 995 messages this month" in finding.text and "990 of 1000 remain" in finding.text
    assert checker.check_quota(lambda days: [SimpleNamespace(at=now, recipients=["U1"])]).ok
