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


def test_dotenv_is_read_and_the_environment_wins(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("LINE_BOT_BASIC_ID=@fromfile\nGONGHAO_PUBLIC_URL=https://file.example/\n"
                                   "GONGHAO_REMINDERS=off\n", encoding="utf-8")
    monkeypatch.setenv("GONGHAO_PUBLIC_URL", "https://env.example/")
    config = Config.from_env()
    assert (config.bot_basic_id, config.public_url, config.reminders) == ("@fromfile", "https://env.example", False)


def test_the_constructor_takes_only_what_it_is_given(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "redis://elsewhere:6379")
    config = Config(channel_secret="s", database_url="sqlite:///x.db")
    assert config.redis_url == "" and config.channel_secret == "s"


def test_a_bad_value_stops_start_up_naming_it():
    with pytest.raises(ConfigError, match="GONGHAO_LINE_TIMEOUT='soon'"):
        Config.from_env({"GONGHAO_LINE_TIMEOUT": "soon"})




def test_nothing_but_the_configuration_reads_the_environment():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readers = sorted(str(p.relative_to(root)) for package in ("bot", "dialogs", "handlers", "storage", "common")
                     for p in (root / package).rglob("*.py")
                     for line in p.read_text(encoding="utf-8").splitlines()
                     if re.search(r"os\.environ|os\.getenv|getenv\(", line) and not re.search(MULTIPROC, line))
    assert sorted(set(readers) - NOT_YET) == ["bot/config.py"]


# prometheus-client reads its own variable (gunicorn's metric files): the program only passes it on.
MULTIPROC = r"MULTIPROC_ENV|PROMETHEUS_MULTIPROC_DIR"
NOT_YET: set[str] = set()  # modules still to move into Config (none now)
