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
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Optional, Sequence

from sqlalchemy import DateTime, Text, bindparam, delete, func, select, text, update
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.db import Database, Recordset, is_outage
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


_TABLE = AcceptedEvent.__table__
# PostgreSQL's: one statement text for any number of rows (storage.db.Recordset)
_ACCEPT = Recordset(("webhook_event_id", "varchar"), ("user_id", "varchar"), ("user_key", "varchar"),
                 ("event_type", "varchar"), ("event_timestamp", "bigint"), ("is_redelivery", "boolean"),
                 ("payload", "text"), ("received_at", "timestamptz"), ("ripe_at", "bigint"))
ACCEPT_PG = (
    f"INSERT INTO accepted_events ({', '.join(name for name, _ in _ACCEPT.columns)}, status, attempts, "
    f"next_attempt_at, reserved_until) SELECT *, 'queued', 0, 0, 0 FROM {_ACCEPT.rows} "
    "ON CONFLICT (webhook_event_id) DO NOTHING RETURNING webhook_event_id")
ACCEPT_SQLITE = sqlite_insert(_TABLE).on_conflict_do_nothing(index_elements=["webhook_event_id"]).returning(
    _TABLE.c.webhook_event_id)

# An event is its user's turn when it is ripe, not waiting after a failed attempt, no earlier
# event of the user is queued, and the user's previous answer is no longer open.
# ``OFFSET 0`` keeps each NOT EXISTS a lookup by the user's key in its index: without it PostgreSQL
# may turn it into an anti-join that, on a table grown faster than its statistics (a fresh
# deployment's first burst), scans every open delivery for every candidate event — measured: one
# reservation took 4 s with 5,000 answers open, and the workers fell behind for good.
_TURN = """
e.status = 'queued' AND e.ripe_at <= :now AND e.next_attempt_at <= :now
AND NOT EXISTS (SELECT 1 FROM accepted_events p WHERE p.status = 'queued' AND p.user_key = e.user_key
                AND (p.event_timestamp < e.event_timestamp
                     OR p.event_timestamp = e.event_timestamp AND p.received_at < e.received_at
                     OR p.event_timestamp = e.event_timestamp AND p.received_at = e.received_at
                        AND p.webhook_event_id < e.webhook_event_id) {fence})
AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.user_id = e.user_id AND d.status IN ('pending', 'sending')
                {fence})
"""
TURN = _TURN.format(fence="OFFSET 0")
TURN_SQLITE = _TURN.format(fence="")  # SQLite takes no OFFSET without a LIMIT
WINDOW = """(SELECT webhook_event_id, user_key, user_id, event_timestamp, received_at, status, ripe_at, next_attempt_at,
                   reserved_until, reserved_by FROM accepted_events WHERE status = 'queued'
            ORDER BY event_timestamp, received_at LIMIT :window) e"""
# The window is the oldest queued events, read in the order of ix_accepted_events_turn so that a
# reservation reads a few hundred rows however long the queue is. The planner's statistics come from
# quiet times (hardly anything queued), so during a burst it would rather read every queued row and
# sort them: measured 25 ms a reservation at 4,000 queued (3 ms this way), and the reservations then
# took half a core of the database. And it is planned afresh each time: psycopg prepares a statement
# run often, and PostgreSQL would then keep a generic plan made while the queue was empty; during the
# next burst that plan checked each candidate event against every queued row (a reservation read
# millions of rows). Only this statement: planning every statement afresh cost PostgreSQL ~0.15 ms of
# CPU per answered event (pg_stat_statements, bench/webhook/notes.md). These settings hold for the
# reservation's transaction only. The chosen events are a materialized CTE: joined again to the table
# to lock them, the window was otherwise free to be planned as the inner side of a loop over every
# queued event (it was, under statistics that took the queue for empty: migration 0010).
ORDERED_SCAN = ("SET LOCAL enable_bitmapscan = off; SET LOCAL enable_sort = off; "
                "SET LOCAL plan_cache_mode = force_custom_plan")
HEADS = text(f"""SELECT e.webhook_event_id, e.user_key, e.event_timestamp FROM {WINDOW}
WHERE {TURN_SQLITE} ORDER BY e.event_timestamp, e.received_at LIMIT :n""")
HEADS_OF_USER = text(f"""SELECT e.webhook_event_id, e.user_key, e.event_timestamp FROM
{WINDOW.replace("WHERE status = 'queued'", "WHERE status = 'queued' AND user_key = :user")}
WHERE {TURN_SQLITE} ORDER BY e.event_timestamp, e.received_at LIMIT :n""")  # a console's worker: its user's events only
RESERVE = text(f"""WITH chosen AS MATERIALIZED (
  SELECT e.webhook_event_id FROM {WINDOW}
  WHERE {TURN} AND (e.reserved_until < :now OR e.reserved_by = :me AND e.webhook_event_id <> ALL(:busy))
  ORDER BY e.event_timestamp, e.received_at LIMIT :n),
locked AS (
  SELECT x.webhook_event_id FROM accepted_events x JOIN chosen USING (webhook_event_id)
  WHERE x.status = 'queued' FOR UPDATE OF x SKIP LOCKED)
UPDATE accepted_events a SET reserved_by = :me, reserved_until = :until FROM locked
WHERE a.webhook_event_id = locked.webhook_event_id
RETURNING a.webhook_event_id, a.user_key, a.event_timestamp""")
CLAIM_PG = text(f"""WITH locked AS (
  SELECT e.webhook_event_id, e.payload, e.received_at FROM accepted_events e
  WHERE e.webhook_event_id = :id AND {TURN} FOR UPDATE OF e SKIP LOCKED)
UPDATE accepted_events a SET status = 'done', payload = '{{}}', processed_at = now() FROM locked
WHERE a.webhook_event_id = locked.webhook_event_id
RETURNING locked.payload, locked.received_at""").columns(payload=Text, received_at=DateTime(timezone=True))
CLAIM_MANY_PG = text(f"""WITH locked AS (
  SELECT e.webhook_event_id, e.payload, e.received_at FROM accepted_events e
  WHERE e.webhook_event_id = ANY(:ids) AND {TURN} FOR UPDATE OF e SKIP LOCKED)
UPDATE accepted_events a SET status = 'done', payload = '{{}}', processed_at = now() FROM locked
WHERE a.webhook_event_id = locked.webhook_event_id
RETURNING locked.webhook_event_id, locked.payload, locked.received_at""").columns(
    webhook_event_id=Text, payload=Text, received_at=DateTime(timezone=True))
CLAIM_SQLITE = text(f"SELECT e.payload, e.received_at FROM accepted_events e WHERE e.webhook_event_id = :id AND {TURN_SQLITE}"
                    ).columns(payload=Text, received_at=DateTime(timezone=True))
FINISH = text("UPDATE accepted_events SET status = 'done', payload = '{}', processed_at = :at "
              "WHERE webhook_event_id = :id").bindparams(bindparam("at", type_=DateTime(timezone=True)))


class RefusedTogether(Exception):
    """The database refused a shared INSERT for its content: each request tries its own rows alone."""


class _Waiting:
    __slots__ = ("rows", "fresh", "error")

    def __init__(self, rows: list[dict]):
        self.rows = rows
        self.fresh: Optional[set[str]] = None
        self.error: Optional[BaseException] = None


class GroupInsert:
    """Group commit: the rows of requests that arrive while an INSERT is running go in the next one.

    The first request in runs its rows at once; those arriving meanwhile wait, then the first of
    them runs all of theirs in one statement and one commit, and so on — no waiting when the
    webhook is quiet, one commit for many requests when it is busy. Each request returns only
    after the commit holding its rows (or raises: an outage, or `RefusedTogether`). A request
    that has waited longer than ``seconds`` gives up (an outage: LINE sends it again).
    """

    def __init__(self, insert, seconds: float):
        self.insert = insert
        self.seconds = seconds
        self.cond = threading.Condition()
        self.waiting: list[_Waiting] = []
        self.busy = False

    def __call__(self, rows: list[dict]) -> set[str]:
        me = _Waiting(rows)
        deadline = time.monotonic() + self.seconds
        with self.cond:
            self.waiting.append(me)
            while me.fresh is None and me.error is None:
                if not self.busy:
                    self._lead()
                    continue
                left = deadline - time.monotonic()
                if left <= 0:
                    if me in self.waiting:
                        self.waiting.remove(me)
                    raise TimeoutError("the database took too long to keep the events")
                self.cond.wait(left)
        if me.error is not None:
            raise me.error
        return me.fresh

    def _lead(self) -> None:
        """Runs everything waiting (called holding the lock; released while the statement runs)."""
        batch, self.waiting, self.busy = self.waiting, [], True
        self.cond.release()
        try:
            self._run(batch)
        finally:
            self.cond.acquire()
            self.busy = False
            self.cond.notify_all()

    def _run(self, batch: list[_Waiting]) -> None:
        unique: dict[str, dict] = {}  # an event in two requests at once is inserted once
        for waiting in batch:
            for row in waiting.rows:
                unique.setdefault(row["webhook_event_id"], row)
        try:
            fresh = self.insert(list(unique.values()))
        except Exception as exc:
            for waiting in batch:
                waiting.error = exc if is_outage(exc) else RefusedTogether()
            return
        for waiting in batch:  # an event sent twice at once counts as new for the first request only
            waiting.fresh = {row["webhook_event_id"] for row in waiting.rows} & fresh
            fresh -= waiting.fresh


class EventQueue:
    """accepted_events as a queue; ``reorder_ms``: how long a fresh event waits for earlier ones."""

    def __init__(self, db: Database, reorder_ms: int = 250, accept_seconds: float = 1.5):
        self.db = db
        self.reorder_ms = reorder_ms
        self.accept_seconds = accept_seconds  # the webhook must answer LINE within 2 s
        self.listeners: list = []  # called after events were queued (the in-process worker wakes)
        self.retry_base_ms = 1000  # the first wait after a failed attempt (tests shorten it)
        self.together = GroupInsert(self._insert, accept_seconds)

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
        """Queues the events not seen before (True for each queued now), committed before it returns.

        The rows of requests that arrive together share one INSERT and one commit (`GroupInsert`).
        An outage raises (the webhook then answers 503 and LINE sends again). An event the
        database refuses for its content is skipped alone, never failing the others.
        """
        if not events:
            return []
        rows = self.rows(events)
        try:
            fresh = self.together(rows)
        except RefusedTogether:
            fresh = self._alone(rows)
        if fresh:
            for notify in self.listeners:
                notify()
        return [row["webhook_event_id"] in fresh for row in rows]

    def _alone(self, rows: list[dict]) -> set[str]:
        """This request's rows in a statement of their own; if refused, one by one (skipping the bad ones)."""
        if len(rows) > 1:
            try:
                return self._insert(rows)
            except Exception as exc:
                if is_outage(exc):
                    raise
        fresh: set[str] = set()
        for row in rows:  # find the one the database refuses; keep the others
            try:
                fresh |= self._insert([row])
            except Exception as single:
                if is_outage(single):
                    raise
                log.warning("skipped an event the database refused id=%s (%s)", row["webhook_event_id"],
                            type(single).__name__)
        return fresh

    def _insert(self, rows: list[dict]) -> set[str]:
        """One INSERT … ON CONFLICT DO NOTHING RETURNING (no ORM: this runs per request; on PostgreSQL
        not even SQLAlchemy's execute, see `Database.driver_connection`)."""
        if not self.db.postgres:
            with self.db.connection(self.accept_seconds) as conn:
                return set(conn.execute(ACCEPT_SQLITE, rows).scalars().all())
        with self.db.driver_connection(self.accept_seconds) as conn:
            return {found for found, in conn.execute(ACCEPT_PG, _ACCEPT.params(rows), prepare=True)}

    # -- the worker's side ---------------------------------------------------------------
    # Plain SQL: these run for every event, and building them as expressions cost more CPU than
    # the rest of an answer.
    def heads(self, limit: int, exclude: Sequence[str] = (), user: Optional[str] = None) -> list[tuple[str, str, int]]:
        """[(event id, user key, timestamp)] of events whose turn it is, oldest first (a read, no lock).

        Only the oldest queued events are looked at (a window a few times ``limit``), so a
        large backlog costs no more than a small one. ``user``: only that user's events.
        """
        n = limit + len(exclude)
        with self.db.connection() as s:
            found = s.execute(HEADS if user is None else HEADS_OF_USER,
                              {"now": now_ms(), "window": max(500, 8 * n), "n": n, "user": user}).all()
        skip = set(exclude)
        return [tuple(row) for row in found if row[0] not in skip][:limit]

    def reserve(self, worker: str, limit: int, lease_ms: int, busy: Sequence[str] = ()) -> list[tuple[str, str, int]]:
        """Like `heads`, but each event returned is reserved for ``worker`` for ``lease_ms`` (PostgreSQL).

        Workers then take different events instead of racing for the same ones; a reservation
        decides nothing else (the row lock and the state's version do): a worker that stalls
        simply lets it lapse. ``busy``: the worker's own events in progress, not reserved again
        (each needless reservation is an UPDATE: they had been 2–3 per answered event).
        """
        if not self.db.postgres:
            return self.heads(limit)
        now = now_ms()
        with self.db.connection() as s:
            s.exec_driver_sql(ORDERED_SCAN)
            found = s.execute(RESERVE, {"now": now, "window": max(500, 8 * limit), "n": limit, "me": worker,
                                        "until": now + lease_ms, "busy": list(busy)}).all()
        return sorted((tuple(row) for row in found), key=lambda row: row[2])

    def claim(self, session: Session, event_id: str) -> Optional[tuple[dict, datetime]]:
        """(event, received at), locked for this transaction (on PostgreSQL marked done in it), if it is its user's turn.

        PostgreSQL: one statement takes the row lock (skipping a row another worker holds) and
        marks it; if the transaction does not commit, the event is queued again as it was.
        SQLite: a read inside the unit, which holds the file's write lock from its start (so
        units run one at a time, in any number of processes), and `finish` marks it at the end.
        """
        row = session.execute(CLAIM_PG if self.db.postgres else CLAIM_SQLITE,
                              {"id": event_id, "now": now_ms()}).first()
        return (json.loads(row[0]), row[1]) if row is not None else None

    def claim_many(self, session: Session, event_ids: Sequence[str]) -> list[tuple[str, dict, datetime]]:
        """[(event id, event, received at)] of those of the events that are their user's turn, locked
        and marked done for this transaction (PostgreSQL only: one statement for a whole batch)."""
        rows = session.execute(CLAIM_MANY_PG, {"ids": list(event_ids), "now": now_ms()}).all()
        order = {event_id: i for i, event_id in enumerate(event_ids)}
        return sorted(((row[0], json.loads(row[1]), row[2]) for row in rows), key=lambda row: order[row[0]])

    def finish(self, session: Session, event_id: str) -> None:
        """Marks a claimed event processed, last thing in its unit of work (PostgreSQL's claim did already)."""
        if not self.db.postgres:
            session.execute(FINISH, {"id": event_id, "at": datetime.now(timezone.utc)})

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
