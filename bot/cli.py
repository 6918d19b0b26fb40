"""The `gonghao` command: serve, worker, chat, db, doctor, edition, mockline."""
from __future__ import annotations

import sys

import click


@click.group()
def main():
    """共好小幫手 — the program assistant on LINE."""
    from bot.logs import configure

    configure()  # the one logging set-up of every command: JSON lines at GONGHAO_LOG_LEVEL


@main.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=8000, type=int)
def serve(host, port):
    """Starts the webhook server (development server; production uses gunicorn, see Procfile)."""
    from bot import create_app, start_embedded

    app = create_app()
    start_embedded(app)  # migrations, and without Redis the in-process worker
    app.run(host=host, port=port, threaded=True)


@main.command()
def worker():
    """Runs the background worker that answers queued events (on PostgreSQL; SQLite answers in the web process).

    Its metrics are served on GONGHAO_METRICS_PORT (default 9108; 0: none).
    """
    import os

    # PROMETHEUS_MULTIPROC_DIR belongs to gunicorn's web processes: a worker inheriting it would write its
    # figures into the web's sums. Dropped before anything imports prometheus-client.
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
    from bot.config import Config, normalise_database_url, use_clock
    from bot.services import Services
    from bot.worker import run_worker

    config = Config.from_env()
    use_clock(config)
    if normalise_database_url(config.database_url).startswith("sqlite"):
        raise click.ClickException("DATABASE_URL is SQLite: the embedded default answers events in the web process.")
    services = Services(config, role="worker")  # logging is set up by main(): bot.logs
    services.check_redis_persistence()
    start_worker_metrics(config.metrics_port)
    run_worker(services)


def start_worker_metrics(port: int):
    """Serves this worker's metrics on GONGHAO_METRICS_PORT (default 9108; 0: off)."""
    from bot.metrics import serve_worker_metrics

    return serve_worker_metrics(port)


@main.command()
@click.option("--set-webhook", is_flag=True, help="set LINE's webhook URL to GONGHAO_PUBLIC_URL/callback, then test it")
@click.option("--language", type=click.Choice(["zh_TW", "en"]), default="zh_TW", help="the language of the report")
def doctor(set_webhook, language):
    """Checks a configured deployment: LINE token and webhook, Redis, database, rich menu, clock, quota."""
    from bot.config import Config, ConfigError
    from bot.doctor import run_doctor
    from dialogs.i18n import use_locale

    with use_locale(language):
        try:
            config = Config.from_env()
        except ConfigError as exc:  # report it, then check the rest anyway
            click.echo(f"FIX {exc}")
            config = Config.from_env(overrides={"GONGHAO_ENV": "development"}).model_copy(
                update={"env": "production"})
        sys.exit(run_doctor(config, set_webhook=set_webhook, echo=click.echo))


@main.group()
def db():
    """Database commands."""


@db.command("upgrade")
def db_upgrade():
    """Applies the database migrations."""
    from bot.config import Config, normalise_database_url
    from storage.db import Database

    Database(normalise_database_url(Config.from_env().database_url)).upgrade()
    click.echo("database is up to date")


@main.command()
@click.option("--user", default=None, help="the LINE user id to talk as (default: a new one per console, so two "
                                          "consoles never share a conversation)")
@click.option("--language", default="zh-Hant", help="the LINE profile language (zh-Hant or en)")
def chat(user, language):
    """Talk to the bot in the terminal as a LINE user, through the real path and a mock LINE platform."""
    _need_the_mock()
    from bot.console import run_console

    import uuid

    sys.exit(run_console(user_id=user or "U" + uuid.uuid4().hex, language=language))


@main.command()
@click.option("--port", default=8081, type=int)
@click.option("--delay", default=0.0, type=float, help="seconds before every answer")
def mockline(port, delay):
    """Runs the mock LINE platform (for benchmarks and manual tries)."""
    _need_the_mock()
    from bot.mockline import main as mock_main

    sys.exit(mock_main(["--port", str(port), "--delay", str(delay)]))


def _need_the_mock() -> None:
    """The mock LINE platform's packages are the `chat` extra, not the product's."""
    import importlib.util

    missing = [name for name in ("aiohttp", "fastjsonschema", "jsonschema") if importlib.util.find_spec(name) is None]
    if missing:
        raise click.ClickException(f"the mock LINE platform needs {', '.join(missing)}: "
                                   "pip install -e '.[chat]' (scripts/chat does it)")


@main.group()
def edition():
    """Program edition data files."""


@edition.command("check")
@click.argument("path", type=click.Path(exists=True))
def edition_check(path):
    """Reports every problem in an edition file before it is used."""
    from dialogs.edition import edition_check_command

    sys.exit(edition_check_command(path))


@edition.command("purge")
@click.argument("year", type=int)
@click.option("--confirm", is_flag=True, help="delete (without it only the counts are shown)")
def edition_purge(year, confirm):
    """Deletes the personal data of an edition once its program has ended (個資法 §11; audit-logged)."""
    from bot.data_purge import purge_command

    sys.exit(purge_command(year, confirm))


from bot.reminders_cli import reminders as _reminders_commands  # noqa: E402
main.add_command(_reminders_commands)

from bot.case_commands import case_group  # noqa: E402

main.add_command(case_group)

from bot.richmenu_cli import richmenu as _richmenu_commands  # noqa: E402

main.add_command(_richmenu_commands)

from bot.staff_cli import export_command, import_command, staff_group  # noqa: E402

main.add_command(staff_group)
main.add_command(export_command)
main.add_command(import_command)

if __name__ == "__main__":
    main()
