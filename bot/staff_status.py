"""The staff console's status page (/staff/status): is the bot answering, and what is stuck.

The figures come from the database (no Prometheus needed): today's events and answers (Asia/Taipei
day), the answer latency (accepted_events.received_at to deliveries.sent_at), the queue and the
worker's heartbeat, the dead letters (events that kept failing, with their reason) and the answers
LINE did not take (failed, held for the quota, unsure), the month's quota and the next reminders.
Administrators can retry a dead letter (it is queued again, its attempts reset) or discard it;
both are audit-logged. No message text and no LINE user id is shown.

Same look, login, CSRF and headers as bot/staff.py (its gate and helpers are reused).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Optional

from flask import Blueprint, abort, current_app, redirect, url_for
from flask_wtf.csrf import CSRFError

from bot import staff
from dialogs.i18n import _

bp = Blueprint("staff_status", __name__, template_folder="templates")
bp.before_request(staff._gate)
bp.after_request(staff._headers)
bp.register_error_handler(CSRFError, staff._csrf_refused)

LIST_LIMIT = 100
LATENCY_ROWS = 200_000  # a day's answers at most; more are not read
UNSENT = ("failed", "held", "unsure")
REMINDER_DAYS = 14
REMINDERS_SHOWN = 10


@dataclass
class Latency:
    count: int = 0
    p50: Optional[float] = None
    p95: Optional[float] = None
    p99: Optional[float] = None
    worst: Optional[float] = None


def percentile(ordered: list[float], share: float) -> Optional[float]:
    """The nearest-rank percentile of sorted values (None when there are none)."""
    if not ordered:
        return None
    return ordered[max(math.ceil(share * len(ordered)) - 1, 0)]


def _utc(moment: Optional[datetime]) -> Optional[datetime]:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


def today_start(now: Optional[datetime] = None) -> datetime:
    """00:00 today in Asia/Taipei, as UTC."""
    from dialogs.dates import TAIPEI

    local = (now or datetime.now(timezone.utc)).astimezone(TAIPEI)
    return datetime.combine(local.date(), time(0), tzinfo=TAIPEI).astimezone(timezone.utc)


def figures(db, now: Optional[datetime] = None) -> dict:
    """Today's counts and latency, the queue, the dead letters and the unsent answers."""
    from sqlalchemy import func, select

    from storage.models import AcceptedEvent, Delivery

    now = now or datetime.now(timezone.utc)
    since = today_start(now)
    with db.session() as s:
        received = s.scalar(select(func.count()).select_from(AcceptedEvent).where(AcceptedEvent.received_at >= since))
        answered = s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent",
                                                                             Delivery.sent_at >= since))
        pairs = s.execute(select(AcceptedEvent.received_at, Delivery.sent_at)
                          .join(Delivery, Delivery.event_id == AcceptedEvent.webhook_event_id)
                          .where(AcceptedEvent.received_at >= since, Delivery.sent_at.is_not(None))
                          .limit(LATENCY_ROWS)).all()
        oldest, queued = s.execute(select(func.min(AcceptedEvent.received_at), func.count())
                                   .where(AcceptedEvent.status == "queued")).one()
        dead = list(s.execute(select(AcceptedEvent.webhook_event_id, AcceptedEvent.event_type,
                                     AcceptedEvent.received_at, AcceptedEvent.attempts, AcceptedEvent.reason)
                              .where(AcceptedEvent.status == "dead")
                              .order_by(AcceptedEvent.received_at.desc()).limit(LIST_LIMIT)).all())
        dead_total = s.scalar(select(func.count()).select_from(AcceptedEvent).where(AcceptedEvent.status == "dead"))
        unsent = list(s.execute(select(Delivery.event_id, Delivery.method, Delivery.status, Delivery.created_at,
                                       Delivery.attempts, Delivery.reason)
                                .where(Delivery.status.in_(UNSENT))
                                .order_by(Delivery.created_at.desc()).limit(LIST_LIMIT)).all())
    waits = sorted(max((_utc(sent) - _utc(got)).total_seconds(), 0.0) for got, sent in pairs)
    latency = Latency(len(waits), percentile(waits, 0.5), percentile(waits, 0.95), percentile(waits, 0.99),
                      waits[-1] if waits else None)
    return {"received": received or 0, "answered": answered or 0, "latency": latency, "queued": queued or 0,
            "queue_lag": (now - _utc(oldest)).total_seconds() if oldest is not None else 0.0,
            "dead": dead, "dead_total": dead_total or 0, "unsent": unsent}


def _worker(db, stale: float) -> dict:
    from bot.checks import heartbeat_age
    from bot.heartbeat import live_workers

    age = heartbeat_age(db)
    return {"age": age, "fresh": age is not None and age <= stale, "alive": live_workers(db, stale)}


def _quota(services):
    from bot.metrics import QUOTA

    if not services.config.channel_access_token:
        return None
    return QUOTA.get(services.gateway)


def _next_reminders(services):
    from bot.reminders import preview

    try:
        return preview(services, days=REMINDER_DAYS)[:REMINDERS_SHOWN], ""
    except Exception:  # the rest of the page is shown even when the reminders are not set up
        current_app.logger.exception("status page: reminders preview failed")
        return [], _("The reminders could not be previewed; see the server log.")


@bp.get("/staff/status")
def status():
    from bot.exports import local_time

    services = staff._services()
    reminders, reminders_problem = _next_reminders(services)
    return staff._render("status.html", f=figures(services.db), worker=_worker(services.db, services.config.heartbeat_stale),
                         quota=_quota(services), reminders=reminders, reminders_problem=reminders_problem,
                         local_time=local_time, seconds=_seconds, days=REMINDER_DAYS)


def _seconds(value: Optional[float]) -> str:
    """A duration as people read it: 300 ms, 1.5 s, 2 min 5 s, 3 h 10 min."""
    if value is None:
        return "—"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    if value < 3600:
        return f"{int(value // 60)} min {int(value % 60)} s"
    return f"{int(value // 3600)} h {int(value % 3600 // 60)} min"


def _change_dead_letter(event_id: str, action: str) -> bool:
    """Retries (queued again, attempts reset) or discards a dead letter; False when it is not dead (any more)."""
    from sqlalchemy import update

    from storage.models import AcceptedEvent

    values = ({"status": "queued", "attempts": 0, "next_attempt_at": 0} if action == "retry"
              else {"status": "discarded"})
    db = staff._services().db
    with db.session() as s:
        changed = s.execute(update(AcceptedEvent).where(AcceptedEvent.webhook_event_id == event_id,
                                                        AcceptedEvent.status == "dead").values(**values)).rowcount
    if changed:
        db.audit(staff._actor(), f"dead_letter_{action}", event_id)
    return bool(changed)


@bp.post("/staff/status/dead/<event_id>/retry")
@staff.admin_only
def dead_letter_retry(event_id: str):
    if len(event_id) > 64 or not _change_dead_letter(event_id, "retry"):
        abort(404)
    return redirect(url_for("staff_status.status"))


@bp.post("/staff/status/dead/<event_id>/discard")
@staff.admin_only
def dead_letter_discard(event_id: str):
    if len(event_id) > 64 or not _change_dead_letter(event_id, "discard"):
        abort(404)
    return redirect(url_for("staff_status.status"))
