"""Configuration: one pydantic-settings class, read from the environment (a local `.env` file too).

The names are the README's (LINE_CHANNEL_SECRET, DATABASE_URL, GONGHAO_…); nothing else in the
program reads the environment. `Config(channel_secret=…)` takes exactly what it is given (tests);
`Config.from_env()` reads the environment and `.env`. In production (GONGHAO_ENV=production) a
missing secret, token, PostgreSQL or Redis setting stops start-up with a one-line explanation.
"""
from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path
from typing import Mapping, Optional

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, DotEnvSettingsSource, EnvSettingsSource, SettingsConfigDict

DEFAULT_LINE_API = "https://api.line.me"
INSTANCE_DIR = Path.cwd() / "instance"


class ConfigError(SystemExit):
    """A start-up problem explained in one line."""


def _env(name: str, env: str):
    """A field read from ``env`` (and given by its own name to the constructor)."""
    return AliasChoices(name, env)


class Config(BaseSettings):
    model_config = SettingsConfigDict(frozen=True, extra="ignore", populate_by_name=True, case_sensitive=False)

    channel_secret: str = Field("", validation_alias=_env("channel_secret", "LINE_CHANNEL_SECRET"))
    channel_access_token: str = Field("", validation_alias=_env("channel_access_token", "LINE_CHANNEL_ACCESS_TOKEN"))
    line_api_base_url: str = Field(DEFAULT_LINE_API, validation_alias=_env("line_api_base_url", "LINE_API_BASE_URL"))
    database_url: str = Field("", validation_alias=_env("database_url", "DATABASE_URL"))
    redis_url: str = Field("", validation_alias=_env("redis_url", "REDIS_URL"))
    redis_prefix: str = Field("gh:", validation_alias=_env("redis_prefix", "GONGHAO_REDIS_PREFIX"))
    env: str = Field("development", validation_alias=_env("env", "GONGHAO_ENV"))
    partitions: int = Field(8, validation_alias=_env("partitions", "GONGHAO_PARTITIONS"))  # accepted, unused
    worker_threads: int = Field(64, validation_alias=_env("worker_threads", "GONGHAO_WORKER_THREADS"))
    line_timeout: float = Field(10.0, validation_alias=_env("line_timeout", "GONGHAO_LINE_TIMEOUT"))
    bot_basic_id: str = Field("", validation_alias=_env("bot_basic_id", "LINE_BOT_BASIC_ID"))
    public_url: str = Field("", validation_alias=_env("public_url", "GONGHAO_PUBLIC_URL"))
    secret_key: str = Field("", validation_alias=_env("secret_key", "GONGHAO_SECRET_KEY"))
    reminders: bool = Field(True, validation_alias=_env("reminders", "GONGHAO_REMINDERS"))  # on/off
    log_level: str = Field("INFO", validation_alias=_env("log_level", "GONGHAO_LOG_LEVEL"))
    now: str = Field("", validation_alias=_env("now", "GONGHAO_NOW"))  # ISO time with offset: a fixed clock
    cjk_font: str = Field("", validation_alias=_env("cjk_font", "GONGHAO_CJK_FONT"))
    proxy_hops: int = Field(0, validation_alias=_env("proxy_hops", "GONGHAO_PROXY_HOPS"))  # proxies in front
    staff_idle_minutes: int = Field(30, validation_alias=_env("staff_idle_minutes",
                                                              "GONGHAO_STAFF_IDLE_MINUTES"))  # without a request
    staff_session_hours: int = Field(8, validation_alias=_env("staff_session_hours",
                                                              "GONGHAO_STAFF_SESSION_HOURS"))  # after signing in
    reminder_stale_seconds: float = Field(300.0, validation_alias=_env("reminder_stale_seconds",
                                                                       "GONGHAO_REMINDER_STALE_SECONDS"))
    reminder_interval: float = Field(30.0, validation_alias=_env("reminder_interval", "GONGHAO_REMINDER_INTERVAL"))
    lease_seconds: float = Field(10.0, validation_alias=_env("lease_seconds", "GONGHAO_LEASE_SECONDS"))
    db_timeout: float = Field(5.0, validation_alias=_env("db_timeout", "GONGHAO_DB_TIMEOUT"))
    reorder_ms: int = Field(250, validation_alias=_env("reorder_ms", "GONGHAO_REORDER_MS"))
    heartbeat_stale: float = Field(30.0, validation_alias=_env("heartbeat_stale", "GONGHAO_HEARTBEAT_STALE"))
    metrics_port: int = Field(9108, validation_alias=_env("metrics_port", "GONGHAO_METRICS_PORT"))  # 0: none
    allow_volatile_redis: bool = Field(False, validation_alias=_env("allow_volatile_redis",
                                                                    "GONGHAO_ALLOW_VOLATILE_REDIS"))

    @field_validator("line_api_base_url", mode="before")
    @classmethod
    def _line_api(cls, value: object) -> object:
        return (str(value or "") or DEFAULT_LINE_API).rstrip("/")

    @field_validator("public_url", mode="before")
    @classmethod
    def _public_url(cls, value: object) -> object:
        return str(value or "").rstrip("/")

    @field_validator("proxy_hops", mode="before")
    @classmethod
    def _hops(cls, value: object) -> object:
        return value or 0

    @field_validator("staff_idle_minutes", "staff_session_hours", mode="before")
    @classmethod
    def _staff_limits(cls, value: object, info) -> object:
        """An empty setting keeps the default (30 minutes idle, 8 hours in all)."""
        return cls.model_fields[info.field_name].default if value in ("", None) else value

    @field_validator("reminders", mode="before")
    @classmethod
    def _reminders(cls, value: object) -> object:
        return True if value in ("", None) else value

    @field_validator("allow_volatile_redis", mode="before")
    @classmethod
    def _volatile(cls, value: object) -> object:
        return False if value in ("", None) else value

    @field_validator("now")
    @classmethod
    def _iso_time(cls, value: str) -> str:
        if value:
            datetime.fromisoformat(value)  # a bad GONGHAO_NOW stops start-up, it does not surprise later
        return value

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):
        """The constructor takes only what it is given; `from_env` reads the environment."""
        return (init_settings,)

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def uses_redis(self) -> bool:
        return bool(self.redis_url)

    @property
    def fixed_now(self) -> Optional[datetime]:
        """The moment ``GONGHAO_NOW`` fixes the bot's clock at (demos, acceptance runs), or None."""
        return datetime.fromisoformat(self.now) if self.now else None

    @classmethod
    def from_env(cls, environ: Optional[Mapping[str, str]] = None, read_dotenv: bool = True,
                 overrides: Optional[Mapping[str, str]] = None) -> "Config":
        """The configuration from ``environ`` (default: the process environment and ``.env``);
        ``overrides`` (environment names) win over both."""
        sources = [_Environment(cls, overrides or {})] if overrides else []
        sources.append(_Environment(cls, environ))
        if environ is None and read_dotenv:
            sources.append(DotEnvSettingsSource(cls, env_file=Path.cwd() / ".env"))
        values: dict = {}
        for source in reversed(sources):  # overrides win over the environment, which wins over .env
            values.update(source())
        try:
            config = cls(**values)
        except ValidationError as error:
            first = error.errors(include_url=False)[0]
            raise ConfigError(f"{cls.env_name(str(first['loc'][0]))}={first['input']!r}: {first['msg']}.") from None
        if not config.database_url:
            config = config.model_copy(update={"database_url": default_database_url()})
        config.check()
        return config

    @classmethod
    def env_name(cls, field: str) -> str:
        """The environment variable of a field (LINE_CHANNEL_SECRET for channel_secret)."""
        alias = cls.model_fields[field].validation_alias
        return alias.choices[-1] if isinstance(alias, AliasChoices) else field.upper()

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


class _Environment(EnvSettingsSource):
    """The environment variables of ``environ`` (default: this process's)."""

    def __init__(self, settings_cls, environ: Optional[Mapping[str, str]]):
        self._given = environ
        super().__init__(settings_cls)

    def _load_env_vars(self):
        given = os.environ if self._given is None else self._given
        return {key.lower(): value for key, value in given.items()}


def setting(field: str, environ: Optional[Mapping[str, str]] = None) -> str:
    """One setting as the environment (or ``environ``) has it, without reading or checking the rest: for what a
    process needs before its configuration (the log level at a command's start). "" when unset."""
    given = os.environ if environ is None else environ
    name = Config.env_name(field)
    return given.get(name, given.get(name.lower(), ""))


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


def use_clock(config: Config) -> None:
    """Fixes the bot's one clock (dialogs.dates) at ``GONGHAO_NOW`` when the configuration sets it."""
    from dialogs.dates import fix_clock

    if config.fixed_now is not None:
        fix_clock(config.fixed_now)
