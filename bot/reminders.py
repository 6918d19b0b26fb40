"""Sending the reminders: what is due, to whom, once, by multicast, within LINE's limits.

One run (`ReminderSender.run_once`, every 30 s in the worker process):

1. Batches claimed long ago and never marked (a worker died mid-send) are sent again with the
   SAME ``X-Line-Retry-Key``: LINE answers 409 if it had accepted them, which counts as sent.
2. Nothing else in quiet hours (21:00–08:00 Asia/Taipei): due reminders are held until 08:00.
3. For each due reminder (dialogs.reminders): its audience, minus people who blocked the
   account, said "停止提醒", or already have a row for it; grouped by locale.
4. The month's quota is checked before sending (asked of LINE at most once a minute): when it
   cannot carry the whole send, staff are warned (audit log + log line) and the reminder is
   held, instead of failing half-way; a large send (> 1,000 people or > 20% of what is left)
   is noted in the audit log too.
5. Per batch of at most 500: claim the people in the database (rows inserted as ``claimed``,
   UNIQUE per reminder and person: a second worker gets none of them), multicast with a retry
   key derived from the reminder and the batch's members, then mark the rows ``sent`` with
   LINE's request id. Multicasts stay within 200 calls/s (a token bucket, shared through Redis
   when there is one). Retries on 5xx and timeouts, and 429 backoff, come from the gateway.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Optional

from bot import metrics
from bot.gateway import DeliveryFailed, retry_key_for
from bot.render import render
from dialogs import reminders as plan
from dialogs.dates import TAIPEI, format_date, now as clock_now
from dialogs.edition import all_editions
from dialogs.i18n import _, use_locale
from sqlalchemy import select

from storage import reminders as store

log = logging.getLogger("gonghao.reminders")

BATCH_SIZE = 500  # LINE: a multicast reaches at most 500 users
CALLS_PER_SECOND = 200  # LINE: multicast, 200 requests per second
LARGE_SEND = 1000
QUOTA_SHARE = 0.2
RETRY_KEY_HOURS = 23  # LINE keeps a retry key for 24 hours; older claims cannot be re-sent safely
QUOTA_CACHE_SECONDS = 60
WARN_AGAIN_SECONDS = 3600


def batch_retry_key(reminder_key: str, user_ids) -> str:
    """The X-Line-Retry-Key of one batch: the same for the same reminder and members, after any crash."""
    return retry_key_for("reminder:" + reminder_key + ":" + ",".join(sorted(user_ids)))


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


# -- the rate limit --------------------------------------------------------------------------------------


class TokenBucket:
    """At most ``rate`` calls in any one second, in this process (a small burst, then steady)."""

    def __init__(self, rate: float = CALLS_PER_SECOND, burst: int = 10):
        self.fill = max(rate - burst, 1.0)  # burst + fill per second <= rate in any one-second window
        self.capacity = float(burst)
        self.tokens = float(burst)
        self.stamp = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> None:
        while True:
            with self.lock:
                now = time.monotonic()
                self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.fill)
                self.stamp = now
                if self.tokens >= 1:
                    self.tokens -= 1
                    return
                wait = (1 - self.tokens) / self.fill
            time.sleep(wait)


class RedisRateLimit:
    """At most ``rate`` calls per second across every worker: counters per 100 ms slot in Redis."""

    SLOT = 0.1

    def __init__(self, redis, rate: float = CALLS_PER_SECOND, name: str = "multicast", prefix: str = "gh:"):
        self.redis = redis
        self.per_slot = max(int(rate * self.SLOT * 0.9), 1)  # 11 slots touch a 1 s window: stay below it
        self.prefix = f"{prefix}rl:{name}:"

    def take(self) -> None:
        while True:
            seconds, micros = self.redis.time()  # Redis's clock: the same for every worker (and not frozen by tests)
            now = seconds + micros / 1e6
            slot = int(now / self.SLOT)
            key = self.prefix + str(slot)
            pipe = self.redis.pipeline()
            pipe.incr(key)
            pipe.expire(key, 5)
            count = pipe.execute()[0]
            if count <= self.per_slot:
                return
            time.sleep(max((slot + 1) * self.SLOT - now, 0.001))


# -- one run ---------------------------------------------------------------------------------------------


@dataclass
class RunReport:
    """What one run did (for logs, the CLI and tests)."""

    moment: Optional[datetime] = None
    quiet: bool = False
    due: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)  # due but held (quiet hours or quota)
    batches: int = 0
    recipients: int = 0
    resent_batches: int = 0
    failed_batches: int = 0
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (f"{self.moment:%Y-%m-%d %H:%M} due={len(self.due)} held={len(self.held)} batches={self.batches} "
                f"recipients={self.recipients} resent={self.resent_batches} failed={self.failed_batches}"
                + (" (quiet hours)" if self.quiet else ""))


class ReminderSender:
    """Sends due reminders for one worker; any number of senders may run at once."""

    def __init__(self, services, worker_id: Optional[str] = None, stale_seconds: Optional[float] = None,
                 batch_size: int = BATCH_SIZE, parallel: int = 4, limiter=None, directory=None):
        self.services = services
        self.db = services.db
        self.gateway = services.gateway
        self.id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.stale_seconds = services.config.reminder_stale_seconds if stale_seconds is None else stale_seconds
        self.batch_size = min(batch_size, BATCH_SIZE)
        self.parallel = max(parallel, 1)
        if limiter is None:
            redis = getattr(services, "redis", None)
            limiter = (RedisRateLimit(redis, prefix=services.config.redis_prefix) if redis is not None
                       else _process_bucket())
        self.limiter = limiter
        self.directory = directory
        self._quota: Optional[tuple[float, Optional[int], int]] = None
        self._warned: dict[str, float] = {}

    # -- the facts -------------------------------------------------------------------------
    def facts(self) -> plan.Facts:
        directory = self.directory or directory_for(self.services)
        return plan.Facts(members=list(directory.members()),
                          cases={str(c.case_id): c for c in directory.cases()},
                          done=store.load_completions(self.db),
                          letters_percent=plan.letters_percent(all_editions()))

    def recipients(self, reminder: plan.Reminder, facts: plan.Facts, exclusions=None) -> dict[str, list[str]]:
        """{locale: users} who should get the reminder now and have not had it."""
        chosen = plan.audience(reminder.event.audience, facts, reminder.event.edition)
        blocked, paused = exclusions or store.excluded_users(self.db)
        already = store.sent_users(self.db, reminder.key)
        locales = store.locales_of(self.db)
        grouped: dict[str, list[str]] = {}
        for user_id in chosen:
            if user_id in blocked or user_id in paused or user_id in already:
                continue
            grouped.setdefault(locales.get(user_id, "zh_TW"), []).append(user_id)
        return grouped

    # -- the run ---------------------------------------------------------------------------
    def run_once(self) -> RunReport:
        """One run (see the module's docstring); its figures go to the metrics (due, held, sent)."""
        report = self._run()
        held_quiet = len(report.held) if report.quiet else 0
        metrics.reminders_run(len(report.due), held_quiet, len(report.held) - held_quiet)
        return report

    def _run(self) -> RunReport:
        moment = clock_now()
        report = RunReport(moment=moment, quiet=plan.in_quiet_hours(moment))
        events = plan.calendar(store.staff_events(self.db))
        due = plan.due_reminders(events, moment)
        report.due = [r.key for r in due]
        if report.quiet:
            report.held = list(report.due)
            if due:
                log.info("quiet hours: %d reminder(s) held until 08:00", len(due))
            return report
        self.resend_stale(events, report)
        self.send_draft_reminders(moment, report)
        if not due:
            return report
        facts = self.facts()
        for reminder in due:
            self.send(reminder, facts, moment, report)
        if report.batches:
            log.info("reminders run: %s", report.summary())
        return report

    def send(self, reminder: plan.Reminder, facts: plan.Facts, moment: datetime, report: RunReport) -> None:
        grouped = self.recipients(reminder, facts)
        total = sum(len(users) for users in grouped.values())
        if not total:
            return
        if not self.quota_allows(reminder.key, total, report):
            report.held.append(reminder.key)
            return
        jobs = []
        with ThreadPoolExecutor(max_workers=self.parallel, thread_name_prefix="gh-reminders") as pool:
            for locale, users in sorted(grouped.items()):
                with use_locale(locale):
                    messages = render(plan.reminder_messages(reminder, moment))
                for start in range(0, len(users), self.batch_size):
                    chunk = users[start:start + self.batch_size]
                    jobs.append(pool.submit(self._claim_and_send, reminder.key, locale, chunk, messages))
            for job in jobs:
                sent, count = job.result()
                if sent == "sent":
                    report.batches += 1
                    report.recipients += count
                    metrics.reminder_batch("sent", count)
                elif sent == "failed":
                    report.failed_batches += 1
                    metrics.reminder_batch("failed")

    def send_draft_reminders(self, moment: datetime, report: RunReport) -> None:
        """Once per draft: "your half-filled answers expire on …; tap 繼續填寫" a few days before they do."""
        from dialogs.drafts import DRAFT_WARNING, draft_reminder_messages, expiring_drafts
        from storage.models import DialogState

        with self.db.session() as s:  # only states that could expire soon (the column follows the last write)
            rows = s.execute(select(DialogState.user_id, DialogState.state).where(
                DialogState.expires_at <= moment + DRAFT_WARNING + timedelta(days=1))).all()
        blocked, paused = store.excluded_users(self.db)
        locales = store.locales_of(self.db)
        for user_id, name, expires, what in expiring_drafts(rows, self.services.conversation.dialogs, moment):
            if user_id in blocked or user_id in paused:
                continue
            locale = locales.get(user_id, "zh_TW")
            with use_locale(locale):
                messages = render(draft_reminder_messages(what, expires))
            sent, count = self._claim_and_send(f"draft:{name}:{expires:%Y%m%d}", locale, [user_id], messages)
            if sent == "sent":
                report.batches += 1
                report.recipients += count

    def _claim_and_send(self, reminder_key: str, locale: str, users: list[str], messages) -> tuple[str, int]:
        batch_key, claimed = store.claim_batch(self.db, reminder_key, users, locale, self.id,
                                               lambda members: batch_retry_key(reminder_key, members))
        if not claimed:
            return "none", 0
        return self._deliver(batch_key, claimed, messages), len(claimed)

    def _deliver(self, batch_key: str, users, messages) -> str:
        """Multicasts a claimed batch and records the outcome; a batch left claimed is re-sent later."""
        self.limiter.take()
        try:
            sent = self.gateway.multicast(list(users), messages, batch_key)
        except DeliveryFailed as exc:
            status = getattr(exc.__cause__, "status", None)
            if status is not None and 400 <= status < 500 and status not in (409, 429):
                store.mark_batch(self.db, batch_key, store.FAILED, error=str(exc))
                log.error("reminder batch %s refused by LINE (%s); not retried", batch_key, status)
                return "failed"
            log.warning("reminder batch %s not delivered yet (%s); it will be re-sent with the same key",
                        batch_key, exc)
            return "claimed"
        store.mark_batch(self.db, batch_key, store.SENT, sent.request_id)
        return "sent"

    # -- crashed batches ---------------------------------------------------------------------
    def resend_stale(self, events, report: RunReport) -> None:
        now = _utcnow()
        cutoff = now - timedelta(seconds=self.stale_seconds)
        for batch in store.stale_batches(self.db, cutoff):
            claimed_at = batch.claimed_at if batch.claimed_at.tzinfo else batch.claimed_at.replace(tzinfo=timezone.utc)
            if now - claimed_at > timedelta(hours=RETRY_KEY_HOURS):
                store.mark_batch(self.db, batch.batch_key, store.EXPIRED,
                                 error="claimed over 23 h ago; LINE's retry key no longer protects a re-send")
                self.db.audit("reminders", "reminder_batch_expired", batch.reminder_key, people=len(batch.user_ids))
                log.error("reminder batch %s expired unsent (or unconfirmed): %d people", batch.batch_key,
                          len(batch.user_ids))
                continue
            if not store.take_over_batch(self.db, batch.batch_key, cutoff, self.id):
                continue  # another worker took it
            reminder = plan.find_reminder(events, batch.reminder_key.split(":", 2)[2]
                                          if batch.reminder_key.startswith("test:") else batch.reminder_key)
            if reminder is None:
                store.mark_batch(self.db, batch.batch_key, store.FAILED, error="the event is no longer on the calendar")
                continue
            with use_locale(batch.locale):
                messages = render(plan.reminder_messages(reminder))
            log.info("re-sending reminder batch %s (%d people) with its retry key", batch.batch_key,
                     len(batch.user_ids))
            outcome = self._deliver(batch.batch_key, batch.user_ids, messages)
            if outcome == "sent":
                report.resent_batches += 1
                metrics.reminder_batch("resent", len(batch.user_ids))

    # -- the quota ------------------------------------------------------------------------------
    def quota(self) -> tuple[Optional[int], int]:
        """(monthly limit or None, used), asked of LINE at most once a minute."""
        cached = self._quota
        if cached and time.monotonic() - cached[0] < QUOTA_CACHE_SECONDS:
            return cached[1], cached[2]
        limit, used = self.gateway.quota()
        self._quota = (time.monotonic(), limit, used)
        metrics.quota(limit, used)
        return limit, used

    def quota_allows(self, reminder_key: str, total: int, report: RunReport) -> bool:
        """Checks the month's quota before a send; warns staff and holds it when it cannot all go.

        A large send (> 1,000 people or > 20% of what is left) is noted in the audit log too.
        """
        try:
            limit, used = self.quota()
        except Exception as exc:  # LINE could not say: send, the gateway reports any failure
            log.warning("cannot read the message quota (%s); sending %s anyway", type(exc).__name__, reminder_key)
            return True
        if limit is None:
            return True
        remaining = max(limit - used, 0)
        if total > remaining:
            text = (f"reminder {reminder_key} needs {total} messages but only {remaining} of this month's {limit} "
                    f"remain; held until the quota allows it")
            report.warnings.append(text)
            if self._first_warning(reminder_key):
                self.db.audit("reminders", "reminder_quota_warning", reminder_key, recipients=total,
                              remaining=remaining, limit=limit)
                log.warning(text)
            return False
        if (total > LARGE_SEND or total > QUOTA_SHARE * remaining) and self._first_warning(reminder_key + ":large"):
            self.db.audit("reminders", "reminder_large_send", reminder_key, recipients=total, remaining=remaining,
                          limit=limit)
            log.warning("reminder %s goes to %d people: %d of this month's %d messages remain",
                        reminder_key, total, remaining, limit)
        if self._quota:
            self._quota = (self._quota[0], limit, used + total)
        return True

    def _first_warning(self, key: str) -> bool:
        last = self._warned.get(key)
        if last is not None and time.monotonic() - last < WARN_AGAIN_SECONDS:
            return False
        self._warned[key] = time.monotonic()
        return True


_BUCKET: Optional[TokenBucket] = None
_BUCKET_LOCK = threading.Lock()


def _process_bucket() -> TokenBucket:
    """One multicast bucket per process (every sender in it shares LINE's 200 calls/s)."""
    global _BUCKET
    with _BUCKET_LOCK:
        if _BUCKET is None:
            _BUCKET = TokenBucket()
        return _BUCKET


def directory_for(services) -> plan.Directory:
    """Who is in which case: ``services.reminder_directory`` when a test or benchmark sets one, else the
    cases-and-letters tables."""
    fixed = services.reminder_directory
    return fixed if fixed is not None else store.LettersDirectory(services.db)


def run_once(services, **kwargs) -> RunReport:
    return ReminderSender(services, **kwargs).run_once()


def run_reminders_forever(services, stop_event: threading.Event, interval: Optional[float] = None,
                          sender: Optional[ReminderSender] = None) -> None:
    """The reminder loop of the worker process: a run every ``interval`` seconds until ``stop_event``."""
    sender = sender or ReminderSender(services)
    interval = services.config.reminder_interval if interval is None else interval
    log.info("reminders: sender %s started", sender.id)
    while not stop_event.is_set():
        try:
            sender.run_once()
        except Exception:
            log.exception("reminders run failed; trying again")
        stop_event.wait(interval)
    log.info("reminders: sender %s stopped", sender.id)


# -- preview and test send ---------------------------------------------------------------------------


@dataclass
class PreviewItem:
    """One reminder staff will see go out: when, what, to whom."""

    at: datetime
    key: str
    title_zh: str
    title_en: str
    when_zh: str
    audience: str
    audience_zh: str
    recipients: list[str]
    by_locale: dict[str, int]
    text_zh: str
    text_en: str


def _plain(messages) -> str:
    parts = []
    for m in messages:
        parts.append(getattr(m, "text", "") or getattr(m, "title", ""))
        if getattr(m, "url", ""):
            parts.append(m.url)
    return "\n".join(p for p in parts if p)


def preview(services, days: int = 30, sender: Optional[ReminderSender] = None) -> list[PreviewItem]:
    """Who would receive what and when over the next ``days`` days, with today's audiences."""
    sender = sender or ReminderSender(services)
    start = clock_now()
    end = start + timedelta(days=days)
    events = plan.calendar(store.staff_events(services.db))
    facts = sender.facts()
    exclusions = store.excluded_users(services.db)
    items = []
    for at, reminder in plan.upcoming_reminders(events, start, end):
        grouped = sender.recipients(reminder, facts, exclusions)
        with use_locale("zh_TW"):
            text_zh = _plain(plan.reminder_messages(reminder, at))
            when_zh = format_date(at)
            audience_zh = plan.describe_rule(reminder.event.audience)
        with use_locale("en"):
            text_en = _plain(plan.reminder_messages(reminder, at))
        items.append(PreviewItem(
            at=at, key=reminder.key, title_zh=reminder.event.title_zh, title_en=reminder.event.title_en,
            when_zh=when_zh, audience=reminder.event.audience, audience_zh=audience_zh,
            recipients=sorted(u for users in grouped.values() for u in users),
            by_locale={k: len(v) for k, v in grouped.items()}, text_zh=text_zh, text_en=text_en))
    return items


def send_test_reminder(services, to: str, reminder_key: str, actor: str = "staff") -> str:
    """Sends one reminder to one LINE user (staff's own) now, whatever the hour; returns LINE's request id."""
    events = plan.calendar(store.staff_events(services.db))
    reminder = plan.find_reminder(events, reminder_key)
    if reminder is None:
        raise LookupError(_("No reminder {key!r} on the calendar (see gonghao reminders list).").format(key=reminder_key))
    locale = services.users.locale(to)
    with use_locale(locale):
        messages = render(plan.reminder_messages(reminder))
    stamp = clock_now().astimezone(TAIPEI).strftime("%Y%m%dT%H%M%S") + uuid.uuid4().hex[:4]
    key = f"test:{stamp}:{reminder_key}"
    batch_key, claimed = store.claim_batch(services.db, key, [to], locale, "test-send",
                                           lambda members: batch_retry_key(key, members))
    sent = services.gateway.push(to, messages, batch_key)
    store.mark_batch(services.db, batch_key, store.SENT, sent.request_id)
    services.db.audit(actor, "reminder_test_send", reminder_key, request_id=sent.request_id)
    return sent.request_id
