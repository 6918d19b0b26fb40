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
    def record(self, event_id: str, user_id: Optional[str], state: Optional[dict], delivery: dict) -> None: ...
    def mark(self, event_id: str, status: str, method: str = "", request_id: str = "") -> None: ...


def _delivery_dict(event_id, user_id, delivery) -> dict:
    return {"event_id": event_id, "user_id": user_id, "status": "pending", **delivery}


class RedisConversationStore:
    """State under ``gh:state:<user>``, delivery records under ``gh:dl:<event>``."""

    def __init__(self, redis):
        self.redis = redis

    def load_state(self, user_id):
        raw = self.redis.get(f"gh:state:{user_id}")
        return json.loads(raw) if raw else None

    def save_state(self, user_id, state, ttl=STATE_TTL):
        if state is None:
            self.redis.delete(f"gh:state:{user_id}")
        else:
            self.redis.set(f"gh:state:{user_id}", json.dumps(state, ensure_ascii=False), ex=ttl)

    def delivery(self, event_id):
        raw = self.redis.get(f"gh:dl:{event_id}")
        return json.loads(raw) if raw else None

    def record(self, event_id, user_id, state, delivery):
        pipe = self.redis.pipeline(transaction=True)
        if user_id and state is not None:
            pipe.set(f"gh:state:{user_id}", json.dumps(state, ensure_ascii=False), ex=STATE_TTL)
        pipe.set(f"gh:dl:{event_id}", json.dumps(_delivery_dict(event_id, user_id, delivery), ensure_ascii=False),
                 ex=DELIVERY_TTL)
        pipe.execute()

    def mark(self, event_id, status, method="", request_id=""):
        key = f"gh:dl:{event_id}"
        raw = self.redis.get(key)
        if not raw:
            return
        record = json.loads(raw)
        record.update(status=status, method=method or record.get("method"), request_id=request_id or record.get("request_id"))
        self.redis.set(key, json.dumps(record, ensure_ascii=False), ex=DELIVERY_TTL)


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

    def record(self, event_id, user_id, state, delivery):
        with self.db.session() as s:
            if user_id and state is not None:
                self._put_state(s, user_id, state)
            s.add(Delivery(event_id=event_id, user_id=user_id, reply_token=delivery.get("reply_token"),
                           event_timestamp=delivery.get("timestamp") or 0,
                           messages=json.dumps(delivery.get("messages", []), ensure_ascii=False), status="pending"))

    def mark(self, event_id, status, method="", request_id=""):
        values = {"status": status}
        if method:
            values["method"] = method
        if request_id:
            values["request_id"] = request_id
        if status == "sent":
            values["sent_at"] = datetime.now(timezone.utc)
        with self.db.session() as s:
            s.execute(update(Delivery).where(Delivery.event_id == event_id).values(**values))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
