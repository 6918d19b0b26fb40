"""The outbox: answers recorded with their event, then sent to LINE exactly once where it can be known.

An answer is a row of ``deliveries`` written in the event's own transaction, already
claimed by the worker that wrote it (``claim``, a fencing token, until ``claimed_until``).
After the commit that worker sends it:

- **reply** while the reply token is fresh (50 s). Delivered: done. Surely not delivered
  (could not connect, LINE answered 5xx, or the token was refused on a first attempt):
  push instead. *Maybe* delivered (the request was written, then the answer did not
  come, or the sender died or stalled past its claim): never pushed — the reply is sent
  again with the same single-use token (LINE refuses a used token, so it cannot show
  twice; within the token's life of about a minute that refusal means the first one got
  through). Refused after the token's life, nobody can tell: the answer is marked
  ``unsure`` and left. That case — LINE never took a reply we wrote, and nobody could try
  again within the token's minute (the only worker died and came back later) — is the
  one answer we may lose; the other side, a push after a reply LINE did take, would show
  the owner every such answer twice, mid-letter, which is worse and far more frequent.
- **push** with ``X-Line-Retry-Key`` (stable per event): retried with backoff on 5xx,
  timeouts and 429 (after LINE's ``Retry-After``); a 409 means it was already accepted.
  When the month's quota is used up it is ``held`` (not retried; staff see it); other
  refusals end as ``failed``.

Every change of a claimed row names the claim it holds, so a sender that lost its claim
(stopped past it while another took over) cannot push or mark anything but a delivery.
A user's next event waits until their previous answer is no longer open, so answers
arrive in the order of the messages.
"""
from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import DateTime, and_, bindparam, or_, select, text, update
from sqlalchemy.orm import Session

from bot import metrics
from bot.gateway import (DELIVERED, LIMITED, MAYBE, NOT_SENT, QUOTA, REPLY_TOKEN_FRESH_SECONDS, LineGateway,
                         retry_key_for)
from bot.queue import backoff_ms, now_ms
from storage.db import Database, Recordset, execute_rows
from storage.models import Delivery

log = logging.getLogger("gonghao.outbox")

_ADD = text("INSERT INTO deliveries (event_id, user_id, reply_token, event_timestamp, messages, status, claim, "
             "claimed_until, phase, attempts, next_attempt_at, created_at) VALUES (:id, :user, :token, :stamp, "
             ":messages, 'sending', :claim, :until, :phase, 0, 0, :at)").bindparams(
    bindparam("at", type_=DateTime(timezone=True)))
_MOVE = text("UPDATE deliveries SET phase = :phase WHERE event_id = :id AND claim = :claim")
_LATER = text("UPDATE deliveries SET status = 'pending', next_attempt_at = :next, attempts = :attempts, claim = NULL, "
              "claimed_until = 0, phase = :phase WHERE event_id = :id AND claim = :claim")
_SENT = text("UPDATE deliveries SET status = 'sent', method = :method, request_id = :request, sent_at = :at, "
             "messages = '[]', reply_token = NULL, claim = NULL, claimed_until = 0, attempts = :attempts "
             "WHERE event_id = :id").bindparams(bindparam("at", type_=DateTime(timezone=True)))
_ENDED = text("UPDATE deliveries SET status = :status, reason = :reason, claim = NULL, claimed_until = 0, "
              "attempts = :attempts WHERE event_id = :id AND claim = :claim")
# PostgreSQL: a batch's answers, and the deliveries recorded, each in one statement (storage.db.Recordset)
_ADD_ROWS = Recordset(("id", "varchar"), ("user", "varchar"), ("token", "varchar"), ("stamp", "bigint"),
                   ("messages", "text"), ("claim", "varchar"), ("until", "bigint"), ("phase", "varchar"),
                   ("at", "timestamptz"))
_ADD_PG = ("INSERT INTO deliveries (event_id, user_id, reply_token, event_timestamp, messages, status, claim, "
           'claimed_until, phase, attempts, next_attempt_at, created_at) SELECT x.id, x."user", x.token, x.stamp, '
           f"x.messages, 'sending', x.claim, x.until, x.phase, 0, 0, x.at FROM {_ADD_ROWS.rows}")
_SENT_ROWS = Recordset(("id", "varchar"), ("method", "varchar"), ("request", "varchar"), ("at", "timestamptz"),
                    ("attempts", "integer"))
_SENT_PG = ("UPDATE deliveries d SET status = 'sent', method = x.method, request_id = x.request, sent_at = x.at, "
            "messages = '[]', reply_token = NULL, claim = NULL, claimed_until = 0, attempts = x.attempts "
            f"FROM {_SENT_ROWS.rows} WHERE d.event_id = x.id")
PUSH_FOR_MS = 24 * 3600 * 1000  # LINE keeps a retry key for 24 hours: retry pushes that long at most
MAYBE_RETRY_MS = 1000  # a reply that may have gone out is tried again (same token) after this, then 2, 4, 8 s
REPLY_TOKEN_LIFE_SECONDS = 60  # LINE: a reply token is good for about a minute after the event
MAYBE_GIVE_UP_SECONDS = 600  # past this, a reply that may have gone out is not even tried again


def maybe_retry_ms(attempts: int) -> int:
    """The wait before trying a maybe-sent reply again: 1, 2, 4, 8 s (about five tries within the token's
    minute). A fixed second let a LINE slower than our timeout fill every sender thread with retries that
    could not succeed, and the events behind them waited (the fault matrix's large "LINE slow" row)."""
    return MAYBE_RETRY_MS * 2 ** min(max(attempts, 0), 3)


@dataclass
class Answer:
    """A claimed row of the outbox, as its sender holds it."""

    event_id: str
    user_id: Optional[str]
    reply_token: Optional[str]
    event_ms: int
    messages: list  # LINE's JSON
    claim: str
    phase: str  # reply / reply? (may have gone out) / push
    attempts: int = 0
    created_ms: int = 0
    ticket: Optional[int] = None  # the loading animation's, while the worker holds it
    received_at: Optional[datetime] = None  # when the webhook took the event (for the answer-latency metric)


class Outbox:
    def __init__(self, db: Database, gateway: LineGateway, lease_seconds: float):
        self.db = db
        self.gateway = gateway
        self.lease_ms = int(lease_seconds * 1000)
        self.marks = SentMarks(db)

    # -- recording (inside the event's transaction) ---------------------------------------
    def add(self, session: Session, event: dict, user_id: Optional[str], messages: list,
            received_at: Optional[datetime] = None) -> Answer:
        """Records the answer to ``event``, claimed by the caller (who sends it after the commit)."""
        return self.add_many(session, [(event, user_id, messages, received_at)])[0]

    def add_many(self, session: Session, answers: list[tuple[dict, Optional[str], list, Optional[datetime]]]
                 ) -> list[Answer]:
        """Records several answers (event, user, messages, received at) in one statement; see `add`."""
        taken, rows = [], []
        now, until = datetime.now(timezone.utc), now_ms() + self.lease_ms
        for event, user_id, messages, received_at in answers:
            answer = Answer(event["webhookEventId"], user_id, event.get("replyToken") or None,
                            int(event.get("timestamp") or 0), messages, secrets.token_hex(8), "reply", 0, now_ms(),
                            received_at=received_at)
            if not answer.reply_token:
                answer.phase = "push"
            taken.append(answer)
            rows.append({"id": answer.event_id, "user": user_id, "token": answer.reply_token,
                         "stamp": answer.event_ms, "claim": answer.claim, "phase": answer.phase,
                         "messages": json.dumps(messages, ensure_ascii=False, separators=(",", ":")),
                         "until": until, "at": now})
        if rows and self.db.postgres:
            execute_rows(session, _ADD_PG, _ADD_ROWS, rows)
        elif rows:
            session.execute(_ADD, rows)
        return taken

    # -- taking over what is due ------------------------------------------------------------
    def due(self, limit: int = 100, exclude=()) -> list[Answer]:
        """Claims answers to try again now, and answers whose sender let its claim lapse."""
        now = now_ms()
        d = Delivery
        lapsed = and_(d.status == "sending", d.claimed_until < now)
        with self.db.bounded() as s:
            rows = s.execute(select(d.event_id).where(or_(and_(d.status == "pending", d.next_attempt_at <= now),
                                                          lapsed)).order_by(d.created_at).limit(limit)).scalars().all()
        taken = []
        for event_id in rows:
            if event_id in exclude:
                continue
            answer = self._take(event_id, now)
            if answer is not None:
                taken.append(answer)
        return taken

    def _take(self, event_id: str, now: int) -> Optional[Answer]:
        d = Delivery
        claim = secrets.token_hex(8)
        with self.db.bounded() as s:
            row = s.execute(select(d).where(d.event_id == event_id)).scalar_one_or_none()
            if row is None or not (row.status == "pending" and row.next_attempt_at <= now
                                   or row.status == "sending" and row.claimed_until < now):
                return None
            phase = row.phase
            if row.status == "sending" and phase == "reply":
                phase = "reply?"  # its sender may have written the reply before it stopped
            done = s.execute(update(d).where(d.event_id == event_id, d.status == row.status,
                                             d.claim.is_(None) if row.claim is None else d.claim == row.claim)
                             .values(status="sending", claim=claim, claimed_until=now + self.lease_ms, phase=phase))
            if done.rowcount != 1:
                return None
            return Answer(row.event_id, row.user_id, row.reply_token, row.event_timestamp, json.loads(row.messages),
                          claim, phase, row.attempts, int(_aware(row.created_at).timestamp() * 1000),
                          received_at=_aware(row.created_at))

    # -- sending -------------------------------------------------------------------------------
    def send(self, answer: Answer) -> str:
        """Sends one claimed answer as far as it can go now; returns the row's new status."""
        if answer.phase == "reply?":
            return self._reply_again(answer)
        if answer.phase == "reply" and self._age(answer) < REPLY_TOKEN_FRESH_SECONDS:
            status = self._reply(answer)
            if status is not None:
                return status
        if answer.phase != "push" and not self._move(answer, "push"):
            return "lost claim"
        return self._push(answer)

    @staticmethod
    def _age(answer: Answer) -> float:
        """Seconds since the event (what the reply token's life is counted from)."""
        return time.time() - answer.event_ms / 1000.0 if answer.reply_token else float("inf")

    def _reply_again(self, answer: Answer) -> str:
        """A reply that may have gone out: the same token once more, however old — never a push.

        LINE takes it (then it had not gone out), or refuses the token: within the token's
        life that means it was used, so the first one got through; past it, nobody can tell.
        """
        if self._age(answer) > MAYBE_GIVE_UP_SECONDS:
            return self._finish(answer, "unsure", reason="reply may have reached LINE; token long expired")
        result = self.gateway.reply_once(answer.reply_token, answer.messages)
        if result.outcome == DELIVERED:
            return self._finish(answer, "sent", "reply", result.request_id)
        if result.outcome in (MAYBE, NOT_SENT, LIMITED):
            wait = int(result.retry_after * 1000) if result.outcome == LIMITED else maybe_retry_ms(answer.attempts)
            return self._later(answer, wait, phase="reply?")
        if result.status == 400 and self._age(answer) < REPLY_TOKEN_LIFE_SECONDS:
            return self._finish(answer, "sent", "reply", result.request_id)  # used: by the first attempt
        return self._finish(answer, "unsure", reason="reply may have reached LINE; token expired or refused")

    def _reply(self, answer: Answer) -> Optional[str]:
        """The row's new status, or None when a push should follow."""
        result = self.gateway.reply_once(answer.reply_token, answer.messages)
        if result.outcome == DELIVERED:
            return self._finish(answer, "sent", "reply", result.request_id)
        if result.outcome == MAYBE:
            return self._later(answer, maybe_retry_ms(answer.attempts), phase="reply?")
        if result.outcome == LIMITED:
            return self._later(answer, int(result.retry_after * 1000))
        if result.outcome == NOT_SENT or result.status == 400:
            return None  # surely not shown (or a token LINE no longer takes): push
        return self._finish(answer, "failed", reason=f"LINE refused the reply ({result.status})")

    def _push(self, answer: Answer) -> str:
        if not answer.user_id:
            return self._finish(answer, "failed", reason="no reply token and nobody to push to")
        result = self.gateway.push_once(answer.user_id, answer.messages, retry_key_for(answer.event_id))
        if result.outcome == DELIVERED:
            return self._finish(answer, "sent", "push", result.request_id)
        if result.outcome == QUOTA:
            return self._finish(answer, "held", reason="the month's message quota is used up")
        if result.outcome in (NOT_SENT, MAYBE, LIMITED):
            if answer.created_ms and now_ms() - answer.created_ms > PUSH_FOR_MS:
                return self._finish(answer, "failed", reason="LINE unreachable for 24 hours")
            wait = int(result.retry_after * 1000) if result.outcome == LIMITED else backoff_ms(answer.attempts + 1)
            return self._later(answer, min(wait, 300_000))
        return self._finish(answer, "failed", reason=f"LINE refused the push ({result.status})")

    # -- changing the row (always under the claim) ------------------------------------------------
    def _move(self, answer: Answer, phase: str) -> bool:
        with self.db.connection(single=True) as s:
            done = s.execute(_MOVE, {"id": answer.event_id, "claim": answer.claim, "phase": phase})
        answer.phase = phase
        return done.rowcount == 1

    def _later(self, answer: Answer, wait_ms: int, phase: Optional[str] = None) -> str:
        with self.db.connection(single=True) as s:
            s.execute(_LATER, {"id": answer.event_id, "claim": answer.claim, "phase": phase or answer.phase,
                               "next": now_ms() + max(wait_ms, 100), "attempts": answer.attempts + 1})
        return "pending"

    def _finish(self, answer: Answer, status: str, method: str = "", request_id: str = "", reason: str = "") -> str:
        """Ends the row. A delivery is recorded even without the claim (it happened), by the batch writer."""
        if status == "sent":  # nothing personal is kept once it is sent
            self.marks.add({"id": answer.event_id, "attempts": answer.attempts + 1, "method": method,
                            "request": request_id[:64], "at": datetime.now(timezone.utc)})
            metrics.event_answered(metrics.latency_since(answer.received_at), method)
            return status
        values = {"id": answer.event_id, "attempts": answer.attempts + 1, "status": status,
                  "reason": reason[:200] or None, "claim": answer.claim}
        for attempt in range(4):
            try:
                with self.db.connection(single=True) as s:
                    s.execute(_ENDED, values)
                break
            except Exception as exc:
                if attempt == 3:
                    raise
                log.warning("could not record an answer as %s (%s); trying again", status, type(exc).__name__)
                time.sleep(0.2 * 2 ** attempt)
        log.warning("answer to event %s ended %s: %s", answer.event_id, status, reason)
        return status

    def flush(self) -> None:
        """Writes the deliveries not yet recorded (a worker stopping, tests)."""
        self.marks.flush()


class SentMarks:
    """Records deliveries in batches: one transaction every few milliseconds instead of one per answer.

    A mark lost with the process costs nothing but a second try: the answer's claim lapses, the
    same reply is sent again and refused as used (or the same push answers 409), and then it is
    recorded. Until it is written, the user's next event waits (its answer is still open).
    """

    EVERY = 0.01  # seconds between writes while marks come in

    def __init__(self, db: Database):
        self.db = db
        self.pending: list[dict] = []
        self.lock = threading.Condition()
        self.thread: Optional[threading.Thread] = None
        self.pid = os.getpid()

    def add(self, mark: dict) -> None:
        with self.lock:
            self.pending.append(mark)
            if self.thread is None or self.pid != os.getpid():
                self.pid = os.getpid()
                self.thread = threading.Thread(target=self._run, name="gh-sent-marks", daemon=True)
                self.thread.start()
            self.lock.notify()

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.pending:
                    self.lock.wait()
            time.sleep(self.EVERY)  # let a few more arrive
            try:
                self.flush()
            except Exception as exc:  # kept: written on the next turn
                log.warning("could not record %d deliveries (%s); trying again", len(self.pending),
                            type(exc).__name__)
                time.sleep(0.5)

    def flush(self) -> None:
        with self.lock:
            marks, self.pending = self.pending, []
        if not marks:
            return
        try:
            if self.db.postgres:
                with self.db.bounded() as session:
                    execute_rows(session, _SENT_PG, _SENT_ROWS, marks)
            else:
                with self.db.connection() as conn:
                    conn.execute(_SENT, marks)
        except BaseException:
            with self.lock:
                self.pending = marks + self.pending
            raise


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
