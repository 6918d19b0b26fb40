"""Configuration: the fixed names, and production refusing to start without what it needs."""
from __future__ import annotations

import pytest

from bot.config import Config, ConfigError

PRODUCTION = {
    "GONGHAO_ENV": "production",
    "LINE_CHANNEL_SECRET": "s",
    "LINE_CHANNEL_ACCESS_TOKEN": "t",
    "DATABASE_URL": "postgresql://u@db/gonghao",
    "REDIS_URL": "redis://cache:6379",
    "GONGHAO_SECRET_KEY": "k",
}


def test_the_names_are_read_from_the_environment():
    config = Config.from_env(dict(PRODUCTION, LINE_API_BASE_URL="http://127.0.0.1:9/"))
    assert config.line_api_base_url == "http://127.0.0.1:9"
    assert config.redis_url == "redis://cache:6379"
    assert config.production


def test_embedded_defaults_need_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config.from_env({})
    assert config.database_url.startswith("sqlite:///")
    assert config.line_api_base_url == "https://api.line.me"
    assert not config.uses_redis


@pytest.mark.parametrize("missing, said", [
    ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_SECRET"),
    ("LINE_CHANNEL_ACCESS_TOKEN", "LINE_CHANNEL_ACCESS_TOKEN"),
    ("REDIS_URL", "REDIS_URL"),
    ("GONGHAO_SECRET_KEY", "GONGHAO_SECRET_KEY"),
])
def test_production_stops_with_one_line_when_something_is_missing(missing, said):
    env = dict(PRODUCTION)
    del env[missing]
    with pytest.raises(ConfigError) as stopped:
        Config.from_env(env)
    assert said in str(stopped.value) and "\n" not in str(stopped.value)


def test_production_refuses_sqlite():
    with pytest.raises(ConfigError, match="PostgreSQL"):
        Config.from_env(dict(PRODUCTION, DATABASE_URL="sqlite:///x.db"))
