"""The durable event queue between the webhook and the worker: the ``accepted_events`` table.

The same on every backend (PostgreSQL in production, SQLite on the embedded default).
The webhook inserts each event once (the event id is the primary key: a redelivery is
not queued again) and answers 200 only after the insert committed. A worker takes a
user's *oldest* queued event — and only once the user's previous answer has gone out —
under a row lock (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), processes it and marks it
done in the same transaction as everything the event changed. So each user's events run
one at a time, in timestamp order, across any number of worker processes on any number of
machines, with no partitions and no leases: a worker that dies or stalls loses its lock
with its connection (or when the server ends its idle transaction), and the event is
simply taken again.

An event that keeps failing is retried with backoff and then dead-lettered (status
``dead``, with a reason that names no person); outages (the database or the network
failing) do not count as attempts.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import datetime, timedelta, timezone
from typing import Optional, Sequence

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from storage.db import Database, is_outage
from storage.models import AcceptedEvent, Delivery, DialogState

log = logging.getLogger("gonghao.queue")

MAX_ATTEMPTS = 4  # then dead-lettered
RETENTION = {"done": timedelta(days=7), "dead": timedelta(days=30), "discarded": timedelta(days=7)}
OPEN_DELIVERIES = ("pending", "sending")


def event_user(event: dict) -> Optional[str]:
    source = event.get("source") or {}
    user = source.get("userId")
    return user if isinstance(user, str) else None


def now_ms() -> int:
    return int(time.time() * 1000)


def backoff_ms(attempts: int, base_ms: int = 1000) -> int:
    """After the n-th failed attempt: 1 s, 4 s, 16 s, ... (with the default base)."""
    return base_ms * 4 ** max(0, attempts - 1)


class EventQueue:
    """accepted_events as a queue; ``reorder_ms``: how long a fresh event waits for earlier ones."""

    def __init__(self, db: Database, reorder_ms: int = 250, accept_seconds: float = 1.5):
        self.db = db
        self.reorder_ms = reorder_ms
        self.accept_seconds = accept_seconds  # the webhook must answer LINE within 2 s
        self.listeners: list = []  # called after events were queued (the in-process worker wakes)
        self.retry_base_ms = 1000  # the first wait after a failed attempt (tests shorten it)

    # -- the webhook's side ---------------------------------------------------------------
    def rows(self, events: Sequence[dict]) -> list[dict]:
        now = datetime.now(timezone.utc)
        ms = now_ms()
        rows = []
        for i, event in enumerate(events):
            stamp = int(event.get("timestamp") or 0)
            user = event_user(event)
            rows.append(dict(
                webhook_event_id=event["webhookEventId"], user_id=user, user_key=user or event["webhookEventId"],
                event_type=str(event.get("type", ""))[:32], event_timestamp=stamp,
                is_redelivery=bool((event.get("deliveryContext") or {}).get("isRedelivery")),
                payload=json.dumps(event, ensure_ascii=False, separators=(",", ":")), status="queued",
                received_at=now + timedelta(microseconds=i), ripe_at=min(stamp, ms) + self.reorder_ms,
                attempts=0, next_attempt_at=0))
        return rows

    def accept(self, events: Sequence[dict]) -> list[bool]:
        """Queues the events not seen before (True for each queued now), in one short transaction.

        An outage raises (the webhook then answers 503 and LINE sends again). An event the
        database refuses for its content is skipped alone, never failing the others.
        """
        if not events:
            return []
        rows = self.rows(events)
        try:
            fresh = self._insert(rows)
        except Exception as exc:
            if is_outage(exc) or len(rows) == 1:
                raise
            fresh = set()
            for row in rows:  # find the one the database refuses; keep the others
                try:
                    fresh |= self._insert([row])
                except Exception as single:
                    if is_outage(single):
                        raise
                    log.warning("skipped an event the database refused id=%s (%s)", row["webhook_event_id"],
                                type(single).__name__)
        if fresh:
            for notify in self.listeners:
                notify()
        return [row["webhook_event_id"] in fresh for row in rows]

    def _insert(self, rows: list[dict]) -> set[str]:
        insert = pg_insert if self.db.postgres else sqlite_insert
        statement = insert(AcceptedEvent).on_conflict_do_nothing(index_elements=["webhook_event_id"]) \
            .returning(AcceptedEvent.webhook_event_id)
        with self.db.bounded(self.accept_seconds) as s:
            return set(s.execute(statement, rows).scalars().all())

    # -- the worker's side ---------------------------------------------------------------
    def _takeable(self, e):
        """Conditions under which event ``e`` is its user's turn now."""
        earlier = aliased(AcceptedEvent)
        now = now_ms()
        return and_(
            e.status == "queued", e.ripe_at <= now, e.next_attempt_at <= now,
            ~select(earlier.webhook_event_id).where(
                earlier.status == "queued", earlier.user_key == e.user_key,
                or_(earlier.event_timestamp < e.event_timestamp,
                    and_(earlier.event_timestamp == e.event_timestamp, earlier.received_at < e.received_at),
                    and_(earlier.event_timestamp == e.event_timestamp, earlier.received_at == e.received_at,
                         earlier.webhook_event_id < e.webhook_event_id))).exists(),
            ~select(Delivery.event_id).where(Delivery.user_id == e.user_id,
                                             Delivery.status.in_(OPEN_DELIVERIES)).exists())

    def heads(self, limit: int, exclude: Sequence[str] = ()) -> list[tuple[str, str, int]]:
        """[(event id, user key, timestamp)] of events whose turn it is, oldest first (a read, no lock).

        Only the oldest queued events are looked at (a window a few times ``limit``), so a
        large backlog costs no more than a small one.
        """
        window = select(AcceptedEvent).where(AcceptedEvent.status == "queued") \
            .order_by(AcceptedEvent.event_timestamp, AcceptedEvent.received_at) \
            .limit(max(500, 8 * (limit + len(exclude)))).subquery()
        e = aliased(AcceptedEvent, window)
        with self.db.bounded() as s:
            found = s.execute(select(e.webhook_event_id, e.user_key, e.event_timestamp)
                              .where(self._takeable(e)).order_by(e.event_timestamp, e.received_at)
                              .limit(limit + len(exclude))).all()
        skip = set(exclude)
        return [tuple(row) for row in found if row[0] not in skip][:limit]

    def reserve(self, worker: str, limit: int, lease_ms: int) -> list[tuple[str, str, int]]:
        """Like `heads`, but each event returned is reserved for ``worker`` for ``lease_ms`` (PostgreSQL).

        Workers then take different events instead of racing for the same ones; a reservation
        decides nothing else (the row lock and the state's version do): a worker that stalls
        simply lets it lapse.
        """
        if not self.db.postgres:
            return self.heads(limit)
        now = now_ms()
        window = select(AcceptedEvent).where(AcceptedEvent.status == "queued") \
            .order_by(AcceptedEvent.event_timestamp, AcceptedEvent.received_at) \
            .limit(max(500, 8 * limit)).subquery()
        e = aliased(AcceptedEvent, window)
        free = or_(e.reserved_until < now, e.reserved_by == worker)
        chosen = select(e.webhook_event_id).where(self._takeable(e), free) \
            .order_by(e.event_timestamp, e.received_at).limit(limit)
        target = AcceptedEvent
        locked = select(target.webhook_event_id).where(target.webhook_event_id.in_(chosen), target.status == "queued") \
            .with_for_update(skip_locked=True)
        with self.db.bounded() as s:
            found = s.execute(update(target).where(target.webhook_event_id.in_(locked))
                              .values(reserved_by=worker, reserved_until=now + lease_ms)
                              .returning(target.webhook_event_id, target.user_key, target.event_timestamp)).all()
        return sorted((tuple(row) for row in found), key=lambda row: row[2])

    def claim(self, session: Session, event_id: str) -> Optional[dict]:
        """The event, locked for this transaction and marked done in it, if it is still its user's turn.

        One statement: the row lock (skipping a row another worker holds) and the mark. If the
        transaction does not commit, the event is queued again as it was. Its text is dropped
        with the mark (the answer goes to the outbox).
        """
        e = AcceptedEvent
        if self.db.postgres:
            locked = select(e.webhook_event_id, e.payload).where(e.webhook_event_id == event_id, self._takeable(e)) \
                .with_for_update(of=e, skip_locked=True).cte("locked")
            row = session.execute(
                update(e).where(e.webhook_event_id == locked.c.webhook_event_id)
                .values(status="done", payload="{}", processed_at=func.now())
                .returning(locked.c.payload)).first()
        else:  # SQLite, one process: a read (a write would lock the whole file for the unit); `finish` marks it
            row = session.execute(select(e.payload).where(e.webhook_event_id == event_id, self._takeable(e))).first()
        return json.loads(row[0]) if row is not None else None

    def finish(self, session: Session, event_id: str) -> None:
        """Marks a claimed event processed, last thing in its unit of work (PostgreSQL's claim did already)."""
        if not self.db.postgres:
            session.execute(update(AcceptedEvent).where(AcceptedEvent.webhook_event_id == event_id)
                            .values(status="done", payload="{}", processed_at=datetime.now(timezone.utc)))

    def failed(self, event_id: str, reason: str, max_attempts: int = MAX_ATTEMPTS) -> Optional[dict]:
        """Counts a failed attempt; after ``max_attempts`` dead-letters the event. The event if it died."""
        with self.db.bounded() as s:
            row = s.execute(select(AcceptedEvent.attempts, AcceptedEvent.payload)
                            .where(AcceptedEvent.webhook_event_id == event_id, AcceptedEvent.status == "queued")
                            ).first()
            if row is None:
                return None
            attempts = row.attempts + 1
            dead = attempts >= max_attempts
            s.execute(update(AcceptedEvent).where(AcceptedEvent.webhook_event_id == event_id).values(
                attempts=attempts, next_attempt_at=now_ms() + backoff_ms(attempts, self.retry_base_ms), reason=reason[:200],
                **({"status": "dead", "processed_at": datetime.now(timezone.utc)} if dead else {})))
            return json.loads(row.payload) if dead else None

    def backlog(self) -> int:
        """Events queued (not yet processed)."""
        with self.db.bounded() as s:
            return s.execute(select(func.count()).select_from(AcceptedEvent)
                             .where(AcceptedEvent.status == "queued")).scalar_one()

    def trim(self, now: Optional[datetime] = None) -> int:
        """Deletes processed events, finished answers and expired states past their retention."""
        now = now or datetime.now(timezone.utc)
        removed = 0
        with self.db.bounded(30) as s:
            for status, keep in RETENTION.items():
                removed += s.execute(delete(AcceptedEvent).where(
                    AcceptedEvent.status == status, AcceptedEvent.received_at < now - keep)).rowcount or 0
            removed += s.execute(delete(Delivery).where(
                Delivery.status.notin_(OPEN_DELIVERIES), Delivery.created_at < now - RETENTION["done"])).rowcount or 0
            removed += s.execute(delete(DialogState).where(DialogState.expires_at < now)).rowcount or 0
        return removed
