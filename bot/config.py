"""Configuration from the environment (a local `.env` file is read too).

The names are fixed: LINE_CHANNEL_SECRET, LINE_CHANNEL_ACCESS_TOKEN,
LINE_API_BASE_URL, DATABASE_URL, REDIS_URL, GONGHAO_ENV. In production
(GONGHAO_ENV=production) a missing secret, token, PostgreSQL or Redis setting
stops start-up with a one-line explanation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import load_dotenv

DEFAULT_LINE_API = "https://api.line.me"
INSTANCE_DIR = Path.cwd() / "instance"


class ConfigError(SystemExit):
    """A start-up problem explained in one line."""


@dataclass(frozen=True)
class Config:
    channel_secret: str = ""
    channel_access_token: str = ""
    line_api_base_url: str = DEFAULT_LINE_API
    database_url: str = ""
    redis_url: str = ""
    redis_prefix: str = "gh:"
    env: str = "development"
    partitions: int = 8
    worker_threads: int = 64
    line_timeout: float = 10.0
    bot_basic_id: str = ""
    public_url: str = ""
    secret_key: str = ""
    reminders: bool = True  # the worker (or the embedded process) sends due reminders
    lease_seconds: float = 10.0  # a sender's claim on an answer; a worker stalled longer loses its turn
    db_timeout: float = 5.0  # connecting, waiting for a pooled connection, one statement
    reorder_ms: int = 250  # a fresh event waits this long for earlier ones from the same user
    allow_volatile_redis: bool = False  # production starts even if Redis keeps nothing on disk
    proxy_hops: int = 0  # proxies in front of the app; the client address is read from X-Forwarded-For
    staff_idle_minutes: int = 30  # a staff session ends after this long without a request
    staff_session_hours: int = 8  # and this long after signing in, whatever happens
    extra: dict = field(default_factory=dict)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @classmethod
    def from_env(cls, environ=None, read_dotenv: bool = True) -> "Config":
        if environ is None:
            if read_dotenv:
                load_dotenv(Path.cwd() / ".env", override=False)
            environ = os.environ
        config = cls(
            channel_secret=environ.get("LINE_CHANNEL_SECRET", ""),
            channel_access_token=environ.get("LINE_CHANNEL_ACCESS_TOKEN", ""),
            line_api_base_url=(environ.get("LINE_API_BASE_URL") or DEFAULT_LINE_API).rstrip("/"),
            database_url=environ.get("DATABASE_URL") or default_database_url(),
            redis_url=environ.get("REDIS_URL", ""),
            redis_prefix=environ.get("GONGHAO_REDIS_PREFIX", "gh:"),
            env=environ.get("GONGHAO_ENV", "development"),
            partitions=int(environ.get("GONGHAO_PARTITIONS", "8")),
            worker_threads=int(environ.get("GONGHAO_WORKER_THREADS", "64")),
            line_timeout=float(environ.get("GONGHAO_LINE_TIMEOUT", "10")),
            bot_basic_id=environ.get("LINE_BOT_BASIC_ID", ""),
            public_url=environ.get("GONGHAO_PUBLIC_URL", "").rstrip("/"),
            secret_key=environ.get("GONGHAO_SECRET_KEY", ""),
            reminders=environ.get("GONGHAO_REMINDERS", "on").lower() not in ("off", "0", "false", "no"),
            lease_seconds=float(environ.get("GONGHAO_LEASE_SECONDS", "10")),
            db_timeout=float(environ.get("GONGHAO_DB_TIMEOUT", "5")),
            reorder_ms=int(environ.get("GONGHAO_REORDER_MS", "250")),
            allow_volatile_redis=environ.get("GONGHAO_ALLOW_VOLATILE_REDIS", "").lower() in ("1", "true", "yes", "on"),
            proxy_hops=int(environ.get("GONGHAO_PROXY_HOPS", "0") or 0),
            staff_idle_minutes=int(environ.get("GONGHAO_STAFF_IDLE_MINUTES", "30") or 30),
            staff_session_hours=int(environ.get("GONGHAO_STAFF_SESSION_HOURS", "8") or 8),
        )
        config.check()
        return config

    def check(self) -> None:
        """Stops start-up in production when something essential is missing."""
        if not self.production:
            return
        if not self.channel_secret:
            raise ConfigError("LINE_CHANNEL_SECRET is not set: the webhook cannot verify LINE's signature.")
        if not self.channel_access_token:
            raise ConfigError("LINE_CHANNEL_ACCESS_TOKEN is not set: the bot cannot answer on LINE.")
        if not self.database_url.startswith(("postgresql", "postgres")):
            raise ConfigError("DATABASE_URL must point at PostgreSQL in production (postgresql+psycopg://…).")
        if not self.redis_url:
            raise ConfigError("REDIS_URL is not set: production needs Redis for the rate limits shared by every process.")
        if not self.secret_key:
            raise ConfigError("GONGHAO_SECRET_KEY is not set: signed download links and staff sessions need it.")


def default_database_url() -> str:
    INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{INSTANCE_DIR / 'gonghao.sqlite3'}"


def normalise_database_url(url: str) -> str:
    """postgres:// and postgresql:// use the psycopg 3 driver."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url
