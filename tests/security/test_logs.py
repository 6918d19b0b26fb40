"""One logging set-up, JSON lines, and never a person's data in them — even when the database refuses a write."""
from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text

from bot import logs
from tests.letter_support import OWNER, join_and_fill, letter_row, make_case, quick

ROOT = Path(__file__).resolve().parents[2]
OWNER_ID = "U" + "1f" * 16
# Every personal value the owner types, and the forms it is stored or shown in.
PERSONAL = [OWNER["company"], OWNER["number"], OWNER["contact"], OWNER["mobile"], "912345678", "0912 345 678",
            "25533988", "2553-3988", "2553 3988", OWNER["email"], OWNER["representative"], OWNER["address"]]


@pytest.fixture()
def captured():
    """Every log line the process writes meanwhile, as bot.logs writes it."""
    stream = io.StringIO()
    root = logging.getLogger()
    handler, level = logs.handler(stream), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def lines_of(stream) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


class FailingWrite:
    """The database refuses the first write of the owner's letter, with an error that quotes what it was given."""

    def __init__(self, engine):
        self.engine, self.failed = engine, 0
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, conn, cursor, statement, parameters, context, executemany):
        words = statement.lstrip().upper()
        if self.failed == 0 and words.startswith(("UPDATE LETTERS", "INSERT INTO LETTERS")) \
                and OWNER["email"] in repr(parameters):
            self.failed += 1
            dbapi = self.engine.dialect.loaded_dbapi
            raise dbapi.DataError(f"value too long for type character varying(20): {OWNER['email']} "
                                  f"{OWNER['contact']}")

    def remove(self):
        event.remove(self.engine, "before_cursor_execute", self)


def test_the_letter_flow_with_a_failing_database_write_logs_no_personal_data(bot, captured):
    bot = quick(bot)
    case = make_case(bot.services)
    fault = FailingWrite(bot.services.db.engine)
    try:
        join_and_fill(bot, OWNER_ID, case.owner_code, submit=False)
        for _attempt in range(3):  # the failure is answered with an apology; the owner taps again
            said = bot.taps(OWNER_ID, "confirm")
            if any("已送給" in t for t in said):
                break
    finally:
        fault.remove()
    assert fault.failed == 1
    assert letter_row(bot.services, OWNER_ID, case.id).status == "submitted"

    lines = lines_of(captured)
    assert lines and all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    failures = [line for line in lines if "DataError" in line.get("exception", "") + line["message"]]
    assert failures, "the failing write must be logged"
    assert any("UPDATE letters" in line.get("exception", "") + line["message"]
               or "INSERT INTO letters" in line.get("exception", "") + line["message"] for line in failures)
    whole = captured.getvalue()
    leaked = [value for value in PERSONAL if value in whole or json.dumps(value)[1:-1] in whole]
    assert leaked == [], leaked


def test_a_database_error_is_logged_without_its_parameters_even_without_hide_parameters(captured):
    engine = create_engine("sqlite://")  # as any engine: hide_parameters not set
    log = logging.getLogger("gonghao.test")
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (email TEXT UNIQUE)"))
        conn.execute(text("INSERT INTO t VALUES (:email)"), {"email": OWNER["email"]})
        try:
            conn.execute(text("INSERT INTO t VALUES (:email)"), {"email": OWNER["email"]})
        except Exception as exc:
            assert OWNER["email"] in str(exc)  # what SQLAlchemy itself would print
            log.exception("could not save")
            log.warning("kept for a later attempt: %s", exc)
            log.error("failed: %(why)s", {"why": exc})
    lines = lines_of(captured)
    assert len(lines) == 3 and OWNER["email"] not in captured.getvalue()
    assert "sqlalchemy.exc.IntegrityError" in lines[0]["exception"]
    assert "statement: INSERT INTO t VALUES (?)" in lines[0]["exception"]
    assert lines[1]["message"].startswith("kept for a later attempt: sqlalchemy.exc.IntegrityError")
    assert "statement: INSERT INTO t" in lines[2]["message"]


def test_lines_carry_the_event_and_the_line_request_they_belong_to(captured):
    log = logging.getLogger("gonghao.worker")
    with logs.bind_event("01HXYZEVENT"):
        log.info("answered")
        with logs.bind_line_request("req-42"):
            log.info("sent")
    log.info("idle")
    first, second, third = lines_of(captured)
    assert first["event_id"] == "01HXYZEVENT" and "line_request_id" not in first
    assert second["event_id"] == "01HXYZEVENT" and second["line_request_id"] == "req-42"
    assert "event_id" not in third and third["logger"] == "gonghao.worker" and third["level"] == "INFO"


def test_the_cli_writes_json_lines_at_the_level_it_is_given(tmp_path):
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'cli.sqlite3'}", REDIS_URL="",
               GONGHAO_LOG_LEVEL="DEBUG")
    env.pop("GONGHAO_ENV", None)
    run = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert any("Running upgrade" in line["message"] and line["logger"].startswith("alembic") for line in lines)
    assert all(line["time"].endswith("+00:00") and line["level"] in ("DEBUG", "INFO") for line in lines)
    assert run.stdout.strip() == "database is up to date"

    env["GONGHAO_LOG_LEVEL"] = "INFO"  # the default: a command's own output is all a person sees
    quiet = subprocess.run([sys.executable, "-m", "bot.cli", "db", "upgrade"], env=env, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stderr.strip() == ""


def test_the_level_comes_from_gonghao_log_level():
    stream, root = io.StringIO(), logging.getLogger()
    saved = (list(root.handlers), root.level, logging.getLogger("alembic").level)
    try:
        logs.configure(environ={"GONGHAO_LOG_LEVEL": "warning"}, stream=stream, force=True)
        logging.getLogger("gonghao.x").info("not shown")
        logging.getLogger("gonghao.x").warning("shown")
        assert [line["message"] for line in lines_of(stream)] == ["shown"]
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in saved[0]:
            root.addHandler(h)
        root.setLevel(saved[1])
        logging.getLogger("alembic").setLevel(saved[2])


def test_gunicorn_and_every_command_share_the_one_set_up():
    """Only bot/logs.py configures logging; the Procfile's web process loads gunicorn.conf.py, which uses it."""
    offenders = [str(path.relative_to(ROOT)) for package in ("bot", "handlers", "dialogs", "storage")
                 for path in (ROOT / package).rglob("*.py")
                 if "basicConfig(" in path.read_text(encoding="utf-8") and path.name != "logs.py"]
    assert offenders == []
    assert "--config gunicorn.conf.py" in (ROOT / "Procfile").read_text()
    assert "logconfig_dict = gunicorn_logconfig_dict()" in (ROOT / "gunicorn.conf.py").read_text()
    config = logs.gunicorn_logconfig_dict()
    assert config["formatters"]["json"]["()"] == "bot.logs.JsonFormatter"
    assert {"gunicorn.error", "gunicorn.access"} <= set(config["loggers"]) and config["root"]["handlers"] == ["stderr"]
