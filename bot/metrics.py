"""Prometheus metrics: is the bot answering, how fast, is anything stuck (prometheus-client).

Where they are served:
- the web process: ``GET /metrics`` (bot/ops.py). Under gunicorn, in prometheus-client's
  multiprocess mode: ``gunicorn.conf.py`` sets ``PROMETHEUS_MULTIPROC_DIR`` (a fresh directory
  per start unless set), empties it at start and marks dead workers, and every scrape adds up
  all gunicorn workers. The figures read from the database at scrape time (queue lag, dead
  letters, the outbox by status, the worker heartbeat) and the month's quota (asked of LINE at
  most every 5 minutes) come from the web only;
- each ``gonghao worker`` process: its own port, ``GONGHAO_METRICS_PORT`` (default 9108; 0: off),
  started by the ``worker`` command in bot/cli.py (``serve_worker_metrics``).

The functions the webhook, the worker and the gateway call (cheap, thread-safe, never raise):

- ``webhook_request(outcome)``: once per POST /callback. outcome is one of ``WEBHOOK_OUTCOMES``:
  accepted (events queued), empty (no usable event: the console's Verify, only duplicates),
  bad_signature, bad_request (not JSON, no events list), too_large, unavailable (could not queue,
  503). Anything else counts as "other".
- ``events_accepted(n)``: n new events put on the queue (duplicates not counted).
- ``event_answered(latency_seconds, method)``: LINE accepted the answer to one event; latency is
  from the webhook's receipt (accepted_events.received_at) to LINE's 2xx; method reply / push /
  none (nothing to say: counted, no latency observed).
- ``event_failed()``: one failed attempt at an event (it will be tried again).
- ``event_dead()``: an event dead-lettered (status 'dead').
- ``line_call(endpoint, status)``: one Messaging API call: endpoint is the request path (user
  and rich menu ids are replaced by a placeholder: no user id reaches a label), status the HTTP
  status or "error" (timeout, connection refused).

The reminders (bot/reminders.py) call ``reminders_run(...)``, ``reminder_batch(outcome, people)``
and ``quota(limit, used)`` themselves.

No label carries personal data or a LINE user id: labels are fixed vocabularies.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from datetime import datetime, timezone
from typing import Optional

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, REGISTRY, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST  # noqa: F401 (re-exported for bot/ops.py)

log = logging.getLogger("gonghao.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
PORT_ENV = "GONGHAO_METRICS_PORT"
DEFAULT_PORT = 9108
QUOTA_CACHE_SECONDS = 300

WEBHOOK_OUTCOMES = ("accepted", "empty", "bad_signature", "bad_request", "too_large", "unavailable")
ANSWER_METHODS = ("reply", "push", "none")
# From a fast reply (50 ms) to LINE's 2 s webhook limit and well past it (a push after retries).
LATENCY_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0)
OPEN_DELIVERY_STATUSES = ("sending", "pending", "unsure", "failed", "held")  # 'sent' grows forever: not counted

WEBHOOK_REQUESTS = Counter("gonghao_webhook_requests", "POST /callback requests by outcome", ["outcome"])
EVENTS_ACCEPTED = Counter("gonghao_events_accepted", "New webhook events put on the queue")
EVENTS_ANSWERED = Counter("gonghao_events_answered", "Events whose answer LINE accepted", ["method"])
EVENTS_FAILED = Counter("gonghao_events_failed", "Failed attempts at an event (tried again later)")
EVENTS_DEAD = Counter("gonghao_events_dead", "Events dead-lettered")
ANSWER_LATENCY = Histogram("gonghao_answer_latency_seconds",
                           "From the webhook's receipt of an event to LINE accepting its answer",
                           ["method"], buckets=LATENCY_BUCKETS)
LINE_CALLS = Counter("gonghao_line_api_calls", "Messaging API calls by endpoint and HTTP status",
                     ["endpoint", "status"])
REMINDERS_DUE = Gauge("gonghao_reminders_due", "Reminders due at the last reminders run",
                      multiprocess_mode="mostrecent")
REMINDERS_HELD = Gauge("gonghao_reminders_held", "Reminders due but held at the last run, by reason",
                       ["reason"], multiprocess_mode="mostrecent")
REMINDER_BATCHES = Counter("gonghao_reminder_batches", "Reminder multicast batches by outcome", ["outcome"])
REMINDER_PEOPLE = Counter("gonghao_reminder_recipients_sent", "People a reminder reached")
REMINDER_RUNS = Counter("gonghao_reminder_runs", "Reminder runs")

_ID = re.compile(r"/(U[0-9a-f]{32}|C[0-9a-f]{32}|R[0-9a-f]{32}|richmenu-[0-9a-zA-Z]+|richmenualias-[^/]+)")
_PROFILE = re.compile(r"^/v2/bot/profile/[^/]+$")
_MEMBER = re.compile(r"^/v2/bot/(group|room)/[^/]+/member/[^/]+$")
_CONTENT = re.compile(r"^/v2/bot/message/[^/]+/content$")
_KNOWN_ENDPOINTS = 64


def _safe(call):
    """Metrics never break the caller."""
    def wrapped(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except Exception:  # pragma: no cover - a metric must not stop an answer
            log.debug("metric %s failed", call.__name__, exc_info=True)
            return None

    wrapped.__name__ = call.__name__
    wrapped.__doc__ = call.__doc__
    return wrapped


# -- called by the webhook, the worker and the gateway ----------------------------------------------


@_safe
def webhook_request(outcome: str) -> None:
    """One POST /callback, by outcome (see WEBHOOK_OUTCOMES)."""
    WEBHOOK_REQUESTS.labels(outcome if outcome in WEBHOOK_OUTCOMES else "other").inc()


@_safe
def events_accepted(n: int = 1) -> None:
    """n new events queued by the webhook."""
    if n > 0:
        EVENTS_ACCEPTED.inc(n)


@_safe
def event_answered(latency_seconds: Optional[float], method: str = "reply") -> None:
    """LINE accepted the answer to one event, ``latency_seconds`` after the webhook received it."""
    method = method if method in ANSWER_METHODS else "push"
    EVENTS_ANSWERED.labels(method).inc()
    if method != "none" and latency_seconds is not None and latency_seconds >= 0:
        ANSWER_LATENCY.labels(method).observe(latency_seconds)


def latency_since(received_at: Optional[datetime], now: Optional[datetime] = None) -> Optional[float]:
    """Seconds from ``received_at`` (accepted_events.received_at; naive means UTC) to now."""
    if received_at is None:
        return None
    if received_at.tzinfo is None:
        received_at = received_at.replace(tzinfo=timezone.utc)
    return ((now or datetime.now(timezone.utc)) - received_at).total_seconds()


@_safe
def event_failed() -> None:
    """One failed attempt at an event."""
    EVENTS_FAILED.inc()


@_safe
def event_dead() -> None:
    """One event dead-lettered."""
    EVENTS_DEAD.inc()


def endpoint_label(path: str) -> str:
    """A Messaging API path with every id replaced (``/v2/bot/profile/{userId}``): no user id in a label."""
    path = path.split("?", 1)[0]
    if _PROFILE.match(path):
        return "/v2/bot/profile/{userId}"
    if _MEMBER.match(path):
        return "/v2/bot/{chat}/{chatId}/member/{userId}"
    if _CONTENT.match(path):
        return "/v2/bot/message/{messageId}/content"
    path = _ID.sub("/{id}", path)
    return path if path.startswith("/v2/") and len(path) <= 80 else "other"


@_safe
def line_call(endpoint: str, status) -> None:
    """One Messaging API call: its path (ids are replaced) and HTTP status, or "error"."""
    status = str(status) if isinstance(status, int) and 100 <= status <= 599 else "error"
    LINE_CALLS.labels(endpoint_label(endpoint), status).inc()


# -- called by the reminders (bot/reminders.py) -------------------------------------------------------


@_safe
def reminders_run(due: int, held_quiet: int, held_quota: int) -> None:
    """What one reminders run found: due reminders, and those held for quiet hours or the quota."""
    REMINDER_RUNS.inc()
    REMINDERS_DUE.set(due)
    REMINDERS_HELD.labels("quiet_hours").set(held_quiet)
    REMINDERS_HELD.labels("quota").set(held_quota)


@_safe
def reminder_batch(outcome: str, people: int = 0) -> None:
    """One multicast batch: sent (``people`` reached), resent (after a crash) or failed."""
    REMINDER_BATCHES.labels(outcome if outcome in ("sent", "resent", "failed") else "other").inc()
    if outcome in ("sent", "resent") and people > 0:
        REMINDER_PEOPLE.inc(people)


# -- the month's message quota (asked of LINE, cached) ------------------------------------------------


class QuotaCache:
    """(limit or None, used) of this month, asked of LINE at most every ``seconds``; None when unknown."""

    def __init__(self, seconds: float = QUOTA_CACHE_SECONDS):
        self.seconds = seconds
        self.lock = threading.Lock()
        self.value: Optional[tuple[Optional[int], int]] = None
        self.at = 0.0

    def get(self, gateway) -> Optional[tuple[Optional[int], int]]:
        with self.lock:
            if self.value is not None and time.monotonic() - self.at < self.seconds:
                return self.value
        try:
            value = gateway.quota()
        except Exception as exc:
            log.info("message quota unavailable (%s)", type(exc).__name__)
            return self.value
        self.put(value)
        return value

    def put(self, value: tuple[Optional[int], int]) -> None:
        with self.lock:
            self.value, self.at = value, time.monotonic()


QUOTA = QuotaCache()


def quota(limit: Optional[int], used: int) -> None:
    """The month's quota as the reminders just read it (kept for the next scrape)."""
    QUOTA.put((limit, used))


# -- what is read from the database at scrape time --------------------------------------------------


def database_figures(db, stale: float) -> dict:
    """Queue lag, queued and dead events, open deliveries by status, the freshest heartbeat; the workers whose
    heartbeat is within ``stale`` seconds (GONGHAO_HEARTBEAT_STALE)."""
    from sqlalchemy import func, select

    from bot.heartbeat import freshest, live_workers
    from storage.models import AcceptedEvent, Delivery

    now = datetime.now(timezone.utc)
    with db.session() as s:
        oldest, queued = s.execute(select(func.min(AcceptedEvent.received_at), func.count())
                                   .where(AcceptedEvent.status == "queued")).one()
        dead = s.scalar(select(func.count()).select_from(AcceptedEvent).where(AcceptedEvent.status == "dead"))
        deliveries = dict(s.execute(select(Delivery.status, func.count())
                                    .where(Delivery.status.in_(OPEN_DELIVERY_STATUSES))
                                    .group_by(Delivery.status)).all())
    beat = freshest(db)
    return {"queue_lag": max(latency_since(oldest, now) or 0.0, 0.0), "queued": queued or 0, "dead": dead or 0,
            "deliveries": {status: deliveries.get(status, 0) for status in OPEN_DELIVERY_STATUSES},
            "heartbeat_age": latency_since(beat, now), "workers": live_workers(db, stale)}


class DatabaseCollector:
    """Gauges computed at scrape time from the database and the quota cache (the web's /metrics)."""

    def __init__(self, services):
        self.services = services

    def collect(self):
        up = GaugeMetricFamily("gonghao_database_up", "1 if the database answered this scrape")
        try:
            figures = database_figures(self.services.db, self.services.config.heartbeat_stale)
        except Exception as exc:
            log.warning("metrics: database figures unavailable (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
        else:
            up.add_metric([], 1)
            yield up
            yield from _database_families(figures)
        yield from _quota_families(QUOTA.get(self.services.gateway) if self._has_token() else None)

    def _has_token(self) -> bool:
        return bool(getattr(self.services.config, "channel_access_token", ""))


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation)
    family.add_metric([], value)
    return family


def _database_families(figures: dict):
    yield _gauge("gonghao_queue_lag_seconds", "Age of the oldest queued event (0 when none)", figures["queue_lag"])
    yield _gauge("gonghao_queued_events", "Events queued, not processed yet", figures["queued"])
    yield _gauge("gonghao_dead_letters", "Events dead-lettered (status dead)", figures["dead"])
    deliveries = GaugeMetricFamily("gonghao_deliveries", "Answers in the outbox that are not sent, by status",
                                   labels=["status"])
    for status, count in figures["deliveries"].items():
        deliveries.add_metric([status], count)
    yield deliveries
    if figures["heartbeat_age"] is not None:
        yield _gauge("gonghao_worker_heartbeat_age_seconds", "Seconds since the freshest worker heartbeat",
                     figures["heartbeat_age"])
    yield _gauge("gonghao_workers_alive", "Workers with a fresh heartbeat", figures["workers"])


def _quota_families(value):
    if value is None:
        return
    limit, used = value
    yield _gauge("gonghao_message_quota_used", "Messages (push and multicast) used this month", used)
    if limit is not None:
        yield _gauge("gonghao_message_quota_limit", "The month's message limit", limit)
        yield _gauge("gonghao_message_quota_remaining", "Messages left this month", max(limit - used, 0))


# -- serving ------------------------------------------------------------------------------------------


def multiprocess() -> bool:
    return bool(os.environ.get(MULTIPROC_ENV))


class _ThisProcess:
    """The metrics of this process's default registry, inside a per-scrape registry."""

    def collect(self):
        return REGISTRY.collect()


def render(services=None) -> bytes:
    """One scrape in Prometheus's text format: this process (or every gunicorn worker), plus the database."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.MultiProcessCollector(registry)
    else:
        registry.register(_ThisProcess())
    if services is not None:
        registry.register(DatabaseCollector(services))
    return generate_latest(registry)


def serve_worker_metrics(port: Optional[int] = None, addr: str = "0.0.0.0"):
    """Serves this worker process's metrics on ``port`` (GONGHAO_METRICS_PORT, default 9108; 0: off)."""
    from prometheus_client import start_http_server

    if port is None:
        port = DEFAULT_PORT
    if port <= 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=addr)
    except OSError as exc:
        log.warning("metrics: port %d is taken (%s); this worker serves no metrics. Give each worker on a machine "
                    "its own %s.", port, exc.strerror or type(exc).__name__, PORT_ENV)
        return None
    log.info("metrics on :%d/metrics", port)
    return server


# -- gunicorn (gunicorn.conf.py) -----------------------------------------------------------------------


def gunicorn_on_starting(server) -> None:
    """Removes the metric files of an earlier run when gunicorn starts (they would be added up)."""
    folder = os.environ.get(MULTIPROC_ENV)
    if not folder:
        return
    os.makedirs(folder, exist_ok=True)
    for name in os.listdir(folder):
        if name.endswith(".db"):  # prometheus-client's files only
            os.remove(os.path.join(folder, name))


def gunicorn_child_exit(server, worker) -> None:
    """A gunicorn worker ended: its live gauges leave the sums (its counters stay)."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(worker.pid)
