"""共好小幫手: the Flask application factory."""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os

from flask import Flask

from bot.config import Config, use_clock

# Blueprints of features that may not exist yet in a checkout: downloads, staff console and its status page,
# the operations endpoints (/metrics, /readyz).
OPTIONAL_BLUEPRINTS = ("bot.downloads", "bot.staff", "bot.staff_status", "bot.ops")


def create_app(config: Config | None = None, start_worker: bool | None = None) -> Flask:
    """Builds the app: webhook, health check, services; on the embedded default, the in-process worker.

    ``start_worker`` defaults to True on SQLite (the embedded default: one process does
    everything); on PostgreSQL the ``worker`` processes answer.
    """
    from bot.services import Services
    from bot.webhook import MAX_BODY, bp as webhook_bp

    config = config or Config.from_env()
    use_clock(config)
    logging.basicConfig(level=config.log_level,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["SECRET_KEY"] = config.secret_key or os.urandom(32).hex()
    services = Services(config)
    embedded = services.db.url.startswith("sqlite")
    if embedded or not config.uses_redis:
        services.db.upgrade()  # the embedded default (and a development set-up) applies migrations at start
    services.check_redis_persistence()
    app.extensions["gonghao"] = services
    app.register_blueprint(webhook_bp)
    for module_name in OPTIONAL_BLUEPRINTS:
        if importlib.util.find_spec(module_name) is not None:
            app.register_blueprint(importlib.import_module(module_name).bp)
    if start_worker is None:
        start_worker = embedded
    if start_worker:
        from bot.worker import Worker

        services.inprocess_worker = Worker(services, threads=8, name="in-process").start()
        if config.reminders:
            services.start_reminders()
    return app
