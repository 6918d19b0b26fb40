"""共好小幫手: the Flask application factory, and the embedded default's start.

`create_app` only builds the app (configuration, services, blueprints), as in Flask's tutorial;
each resource is attached by its own ``init_…`` function. What must *run* — the migrations of the
embedded default and its in-process worker — starts from the commands that need it
(`gonghao serve`, `gonghao chat`) through `start_embedded`. Logging is set up by the commands too.
"""
from __future__ import annotations

import os

from flask import Flask

from bot.config import Config, use_clock


def create_app(config: Config | None = None) -> Flask:
    """Builds the app: configuration, services (``app.extensions["gonghao"]``), webhook, downloads, staff console.

    Nothing starts here: `gonghao serve` and `gonghao chat` (and the tests) call `start_embedded`.
    """
    from bot import security, webhook

    config = config or Config.from_env()
    use_clock(config)
    app = Flask(__name__)
    security.init_app(app, config)  # per-route body limits, headers, the proxy setting, the login limiter
    app.config["SECRET_KEY"] = config.secret_key or os.urandom(32).hex()
    init_services(app, config)
    init_blueprints(app)
    webhook.init_app(app, security.headers(config.production))
    return app


def init_services(app: Flask, config: Config) -> None:
    """Everything a request needs, built once from the configuration."""
    from bot.services import Services

    services = Services(config)
    services.check_redis_persistence()
    app.extensions["gonghao"] = services


def _embedded(config: Config) -> bool:
    """SQLite: one process does everything (the web process answers the events)."""
    return config.database_url.startswith("sqlite")


def init_blueprints(app: Flask) -> None:
    """The webhook, the signed downloads, the staff console and its status page, /metrics and /readyz."""
    from bot import downloads, ops, staff, staff_status, webhook

    for blueprint in (webhook.bp, downloads.bp, staff.bp, staff_status.bp, ops.bp):
        app.register_blueprint(blueprint)


def init_database(app: Flask) -> None:
    """Applies the migrations where nothing else does: SQLite, or any database without Redis (the embedded
    default). Production (PostgreSQL and Redis) migrates in the Procfile's release step."""
    services = app.extensions["gonghao"]
    if not services.config.uses_redis or services.config.database_url.startswith("sqlite"):
        services.db.upgrade()


def start_embedded(app: Flask, user: str | None = None) -> None:
    """The embedded default's start: migrations, then, on SQLite, the in-process worker and the reminders.

    The one place that starts the in-process `bot.worker.Worker`. ``user``: it answers only that user's
    events (`gonghao chat`: another console on the same file answers its own user, on its own mock LINE).
    """
    from bot.worker import Worker

    init_database(app)
    services = app.extensions["gonghao"]
    if not _embedded(services.config):
        return
    services.inprocess_worker = Worker(services, threads=8, name=f"in-process:{os.getpid()}", user=user).start()
    if services.config.reminders:
        services.start_reminders()
