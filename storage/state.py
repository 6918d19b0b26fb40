"""Per-user dialog state and the per-event delivery record, in Redis or in the database.

The two are written together, atomically: once an event's answer is recorded,
reprocessing the event (after a crash) sends the recorded answer instead of
running the dialog a second time. Redis keeps both with a TTL in production;
the embedded default keeps them in the database so they survive restarts.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Optional, Protocol

from sqlalchemy import delete, select, update

from storage.db import Database
from storage.models import DialogState, Delivery

STATE_TTL = 30 * 24 * 3600  # a letter left half-way is resumed for a month
DELIVERY_TTL = 7 * 24 * 3600


class ConversationStore(Protocol):
    def load_state(self, user_id: str) -> Optional[dict]: ...
    def save_state(self, user_id: str, state: Optional[dict], ttl: int = STATE_TTL) -> None: ...
    def delivery(self, event_id: str) -> Optional[dict]: ...
    def delivery_and_state(self, event_id: str, user_id: Optional[str]) -> tuple[Optional[dict], Optional[dict]]: ...
    def record(self, event_id: str, user_id: Optional[str], state: Optional[dict], delivery: dict,
               status: str = "pending") -> None: ...
    def mark(self, event_id: str, status: str, method: str = "", request_id: str = "", ack=None) -> bool: ...
    def forget(self, user_id: str, session=None) -> None: ...


# The writes of one event are each one script (atomic like MULTI, one command to send and parse).
_RECORD = """
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
redis.call('HSET', KEYS[2], 'event_id', ARGV[4], 'user_id', ARGV[5], 'status', ARGV[6], 'reply_token', ARGV[7],
           'timestamp', ARGV[8], 'messages', ARGV[9])
redis.call('EXPIRE', KEYS[2], ARGV[3])
if ARGV[5] ~= '' then
  redis.call('SADD', KEYS[3], ARGV[4])
  redis.call('EXPIRE', KEYS[3], ARGV[3])
end
return 1
"""
_MARK = """
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
if ARGV[1] ~= '' then
  redis.call('XACK', KEYS[2], ARGV[1], ARGV[2])
  redis.call('XDEL', KEYS[2], ARGV[2])
end
return 1
"""


class RedisConversationStore:
    """State under ``gh:state:<user>``; delivery records as hashes under ``gh:dl:<event>``."""

    def __init__(self, redis, prefix: str = "gh:"):
        self.redis = redis
        self.prefix = prefix
        self._record = redis.register_script(_RECORD)
        self._mark = redis.register_script(_MARK)

    def load_state(self, user_id):
        raw = self.redis.get(f"{self.prefix}state:{user_id}")
        return json.loads(raw) if raw else None

    def save_state(self, user_id, state, ttl=STATE_TTL):
        if state is None:
            self.redis.delete(f"{self.prefix}state:{user_id}")
        else:
            self.redis.set(f"{self.prefix}state:{user_id}", json.dumps(state, ensure_ascii=False), ex=ttl)

    def delivery(self, event_id):
        return self._delivery(self.redis.hgetall(f"{self.prefix}dl:{event_id}"))

    @staticmethod
    def _delivery(raw):
        if not raw:
            return None
        record = {k.decode(): v.decode() for k, v in raw.items()}
        record["messages"] = json.loads(record.get("messages") or "[]")
        record["timestamp"] = int(record.get("timestamp") or 0)
        return record

    def delivery_and_state(self, event_id, user_id):
        """The event's delivery record and the user's state, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.hgetall(f"{self.prefix}dl:{event_id}")
        if user_id:
            pipe.get(f"{self.prefix}state:{user_id}")
        replies = pipe.execute()
        state = json.loads(replies[1]) if user_id and replies[1] else None
        return self._delivery(replies[0]), state

    def record(self, event_id, user_id, state, delivery, status="pending"):
        """The answer (a hash, indexed by user for ``forget``) and the new state, in one atomic script."""
        self._record(
            keys=[f"{self.prefix}state:{user_id or ''}", f"{self.prefix}dl:{event_id}",
                  f"{self.prefix}dl_user:{user_id or ''}"],
            args=[json.dumps(state, ensure_ascii=False) if user_id and state is not None else "", STATE_TTL,
                  DELIVERY_TTL, event_id, user_id or "", status, delivery.get("reply_token") or "",
                  int(delivery.get("timestamp") or 0), json.dumps(delivery.get("messages", []), ensure_ascii=False)])

    def forget(self, user_id, session=None):
        """Blanks what was answered to a user (the records hold their data) and drops their state."""
        index = f"{self.prefix}dl_user:{user_id}"
        pipe = self.redis.pipeline(transaction=True)
        for event_id in self.redis.smembers(index):
            key = f"{self.prefix}dl:{event_id.decode()}"
            pipe.hset(key, mapping={"messages": "[]", "reply_token": ""})
        pipe.delete(index, f"{self.prefix}state:{user_id}")
        pipe.execute()

    def mark(self, event_id, status, method="", request_id="", ack=None):
        """Sets the record's status; with ``ack`` = (stream, group, entry id), acknowledges and deletes
        the queue entry in the same atomic script (then True)."""
        fields = ["status", status]
        if method:
            fields += ["method", method]
        if request_id:
            fields += ["request_id", request_id]
        stream, group, entry_id = ack or ("", "", "")
        self._mark(keys=[f"{self.prefix}dl:{event_id}", stream or f"{self.prefix}none"],
                   args=[group, entry_id, *fields])
        return ack is not None


class SqlConversationStore:
    """The same on the database (the embedded default)."""

    def __init__(self, db: Database):
        self.db = db

    def load_state(self, user_id):
        with self.db.session() as s:
            row = s.get(DialogState, user_id)
            if row is None or _aware(row.expires_at) < datetime.now(timezone.utc):
                return None
            return json.loads(row.state)

    def save_state(self, user_id, state, ttl=STATE_TTL):
        with self.db.session() as s:
            self._put_state(s, user_id, state, ttl)

    def _put_state(self, s, user_id, state, ttl=STATE_TTL):
        if state is None:
            s.execute(delete(DialogState).where(DialogState.user_id == user_id))
            return
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl)
        row = s.get(DialogState, user_id)
        text = json.dumps(state, ensure_ascii=False)
        if row is None:
            s.add(DialogState(user_id=user_id, state=text, expires_at=expires))
        else:
            row.state, row.expires_at = text, expires

    def delivery(self, event_id):
        with self.db.session() as s:
            row = s.get(Delivery, event_id)
            if row is None:
                return None
            return {"event_id": row.event_id, "user_id": row.user_id, "reply_token": row.reply_token,
                    "timestamp": row.event_timestamp, "messages": json.loads(row.messages),
                    "status": row.status, "method": row.method, "request_id": row.request_id}

    def delivery_and_state(self, event_id, user_id):
        return self.delivery(event_id), (self.load_state(user_id) if user_id else None)

    def record(self, event_id, user_id, state, delivery, status="pending"):
        with self.db.session() as s:
            if user_id and state is not None:
                self._put_state(s, user_id, state)
            s.add(Delivery(event_id=event_id, user_id=user_id, reply_token=delivery.get("reply_token"),
                           event_timestamp=delivery.get("timestamp") or 0,
                           messages=json.dumps(delivery.get("messages", []), ensure_ascii=False), status=status))

    def forget(self, user_id, session=None):
        """The same in the database; inside the caller's session when given (one transaction)."""
        if session is None:
            with self.db.session() as s:
                return self.forget(user_id, s)
        session.execute(update(Delivery).where(Delivery.user_id == user_id).values(messages="[]", reply_token=None))
        session.execute(delete(DialogState).where(DialogState.user_id == user_id))

    def mark(self, event_id, status, method="", request_id="", ack=None):
        """Sets the record's status (``ack``, the Redis queue's acknowledgement, does not apply here)."""
        values = {"status": status}
        if method:
            values["method"] = method
        if request_id:
            values["request_id"] = request_id
        if status == "sent":
            values["sent_at"] = datetime.now(timezone.utc)
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.event_id == event_id).values(**values))
        return False


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
