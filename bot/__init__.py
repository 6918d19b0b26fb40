"""共好小幫手: the Flask application factory."""
from __future__ import annotations

import importlib
import importlib.util
import logging
import os

from flask import Flask

from bot.config import Config

# Blueprints of features that may not exist yet in a checkout: downloads, staff console.
OPTIONAL_BLUEPRINTS = ("bot.downloads", "bot.staff")


def create_app(config: Config | None = None, start_worker: bool | None = None) -> Flask:
    """Builds the app: webhook, health check, services; on the embedded default, the in-process worker.

    ``start_worker`` defaults to True when there is no Redis (one process does everything).
    """
    from bot.services import Services
    from bot.webhook import MAX_BODY, bp as webhook_bp

    config = config or Config.from_env()
    logging.basicConfig(level=os.environ.get("GONGHAO_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.config["SECRET_KEY"] = config.secret_key or os.urandom(32).hex()
    services = Services(config)
    if not config.uses_redis or config.database_url.startswith("sqlite"):
        services.db.upgrade()  # the embedded default applies migrations at start
    app.extensions["gonghao"] = services
    app.register_blueprint(webhook_bp)
    for module_name in OPTIONAL_BLUEPRINTS:
        if importlib.util.find_spec(module_name) is not None:
            app.register_blueprint(importlib.import_module(module_name).bp)
    if start_worker is None:
        start_worker = not config.uses_redis
    if start_worker and not config.uses_redis:
        from bot.worker import InProcessWorker

        services.inprocess_worker = InProcessWorker(services).start()
        if config.reminders:
            services.start_reminders()
    return app
