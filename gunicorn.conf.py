"""gunicorn settings for the web process (the Procfile's `web`).

The app is built once in the master before the workers are forked (`preload_app`), so the
port opens only when the app is ready: the first request after a start is answered as fast
as any other (building the app — importing the LINE SDK, the dialogs and the editions —
takes about 2 s). Each worker then drops any database connection inherited from the master.

Metrics: prometheus-client's multiprocess mode, so that GET /metrics adds up every worker.
Each worker writes its figures to files in PROMETHEUS_MULTIPROC_DIR (a fresh temporary
directory unless set); it must be set before the app (and prometheus-client) is imported,
hence here; the files of an earlier run are removed at start.

Logging: the root logger (the app's own loggers) and gunicorn's error and access loggers all
write bot.logs' JSON lines at GONGHAO_LOG_LEVEL, as the worker and the CLI do.
"""
import logging
import os
import tempfile

if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gonghao-metrics-")

from bot.heap import freeze_startup_heap  # noqa: E402
from bot.metrics import gunicorn_child_exit as child_exit, gunicorn_on_starting  # noqa: E402,F401
from bot.logs import gunicorn_logconfig_dict  # noqa: E402

from gunicorn.glogging import Logger  # noqa: E402


class QuietAccessLogger(Logger):
    """gunicorn builds every access-log line (a dict of twenty fields, a formatted date) whenever a logging
    configuration is given, and only then asks the logger's level; below INFO the line is never built."""

    def access(self, resp, req, environ, request_time):
        if self.access_log.isEnabledFor(logging.INFO):
            super().access(resp, req, environ, request_time)


preload_app = True
worker_class = "gthread"
logconfig_dict = gunicorn_logconfig_dict()
logger_class = QuietAccessLogger


def on_starting(server):
    """The app is built (preload_app) and no worker is forked yet: the earlier run's metric files go, and what
    start-up built leaves the garbage collector's sight (bot/heap.py), in the master, before the forks."""
    gunicorn_on_starting(server)
    freeze_startup_heap()


def post_fork(server, worker):
    app = server.app.wsgi()
    services = app.extensions.get("gonghao")
    if services is not None:
        services.db.forget_inherited_connections()  # the parent's connections stay the parent's
