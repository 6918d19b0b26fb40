"""The one logging set-up of every process (web, worker, CLI): JSON lines, never personal data.

Each line is one JSON object: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, and
``event_id`` / ``line_request_id`` while a worker handles an event (`bind_event`) or a LINE call
answers (`bind_line_request`). The level comes from GONGHAO_LOG_LEVEL.

Database errors are the usual way personal data reaches a log: SQLAlchemy's error text carries
the statement's parameters (a letter's company, 統編, phones, e-mail, address) and the driver's
message may quote a value. Whatever the engine is configured with, a database error is written
as its class, the driver's error class and SQLSTATE, and the statement without parameters — in
the message's arguments and in the traceback alike.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
import traceback
from datetime import datetime, timezone

_event_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gonghao_event_id", default=None)
_line_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("gonghao_line_request_id",
                                                                                default=None)
_configured = False
STATEMENT_MAX = 300


@contextlib.contextmanager
def bind_event(event_id: str | None):
    """Every line logged inside the block carries ``event_id`` (the worker wraps each event in it)."""
    token = _event_id.set(event_id)
    try:
        yield
    finally:
        _event_id.reset(token)


@contextlib.contextmanager
def bind_line_request(request_id: str | None):
    """Every line logged inside the block carries LINE's ``x-line-request-id`` of the call it answers."""
    token = _line_request_id.set(request_id)
    try:
        yield
    finally:
        _line_request_id.reset(token)


def _is_database_error(exc: BaseException) -> bool:
    try:
        from sqlalchemy.exc import SQLAlchemyError
    except ImportError:  # pragma: no cover
        return False
    if isinstance(exc, SQLAlchemyError):
        return True
    module = type(exc).__module__ or ""
    return module.startswith(("psycopg", "sqlite3", "_sqlite3"))


def describe_database_error(exc: BaseException) -> str:
    """A database error without the values it was given: classes, SQLSTATE and the bare statement."""
    parts = [f"{type(exc).__module__}.{type(exc).__name__}"]
    orig = getattr(exc, "orig", None)
    if orig is not None:
        parts.append(f"{type(orig).__module__}.{type(orig).__name__}")
    code = getattr(orig if orig is not None else exc, "sqlstate", None)
    if code:
        parts.append(f"SQLSTATE {code}")
    statement = getattr(exc, "statement", None)
    if isinstance(statement, str):
        parts.append("statement: " + " ".join(statement.split())[:STATEMENT_MAX])
    return " | ".join(parts)


def safe_value(value):
    """``value``, or a description without parameters when it is a database error."""
    if isinstance(value, BaseException) and _is_database_error(value):
        return describe_database_error(value)
    return value


def _format_exception(exc_info) -> str:
    kind, exc, tb = exc_info
    if exc is None:
        return ""
    lines = []
    seen = set()
    chain = []
    while exc is not None and id(exc) not in seen:  # the cause chain, oldest first as Python prints it
        seen.add(id(exc))
        chain.append(exc)
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    for position, item in enumerate(reversed(chain)):
        if position:
            lines.append("-- then --")
        lines.extend(line.rstrip("\n") for line in traceback.format_tb(item.__traceback__))
        text = describe_database_error(item) if _is_database_error(item) else \
            "".join(traceback.format_exception_only(type(item), item)).strip()
        lines.append(text)
    return "\n".join(lines)


class JsonFormatter(logging.Formatter):
    """One JSON object per line; database errors described without their parameters."""

    def format(self, record: logging.LogRecord) -> str:
        args = record.args
        if isinstance(args, tuple):
            args = tuple(safe_value(a) for a in args)
        elif isinstance(args, dict):
            args = {k: safe_value(v) for k, v in args.items()}
        try:
            message = str(record.msg) % args if args else str(record.msg)
        except (TypeError, ValueError):
            message = str(record.msg)
        line = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        event_id, request_id = _event_id.get(), _line_request_id.get()
        if event_id:
            line["event_id"] = event_id
        if request_id:
            line["line_request_id"] = request_id
        if record.exc_info:
            line["exception"] = _format_exception(record.exc_info)
        elif record.exc_text:
            line["exception"] = "(not shown)"
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (a test runner may swap it), not the one at set-up."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def handler(stream=None) -> logging.Handler:
    """A handler that writes JSON lines (to stderr by default)."""
    out = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    out.setFormatter(JsonFormatter())
    return out


def level_from_env(environ=None) -> int:
    """GONGHAO_LOG_LEVEL (Config.log_level), read before, and without, the rest of the configuration."""
    from bot.config import setting

    name = (setting("log_level", environ) or "INFO").strip().upper()
    level = logging.getLevelName(name)
    return level if isinstance(level, int) else logging.INFO


def configure(environ=None, stream=None, force: bool = False) -> None:
    """Sets up the root logger once per process: JSON lines at GONGHAO_LOG_LEVEL.

    Called by the CLI entry (``gonghao …``, which covers worker and serve) and by gunicorn
    (gunicorn.conf.py). Library code never configures logging.
    """
    global _configured
    if _configured and not force:
        return
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    level = level_from_env(environ)
    root.addHandler(handler(stream))
    root.setLevel(level)
    # Alembic narrates every start ("Context impl …"); a command's output stays clean unless DEBUG is asked for
    logging.getLogger("alembic").setLevel(level if level <= logging.DEBUG else max(level, logging.WARNING))
    logging.captureWarnings(True)
    _configured = True


def gunicorn_logconfig_dict() -> dict:
    """gunicorn's own loggers (error and access) through the same JSON handler."""
    level = logging.getLevelName(level_from_env())
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "bot.logs.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": level, "handlers": ["stderr"], "propagate": False},
            "gunicorn.access": {"level": level, "handlers": ["stderr"], "propagate": False},
        },
    }
