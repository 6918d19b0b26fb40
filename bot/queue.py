"""The durable event queue between the webhook and the worker.

Production: Redis Streams with a consumer group, one stream per partition
(crc32 of the user id), so one user's events stay in one stream. A partition
is read by one worker at a time (a lease in Redis), which keeps each user's
events in order across processes and machines. Accepting is one Lua script:
an event id seen before is not queued again (exactly-once effect).

Embedded default: the ``accepted_events`` table is the queue, read by a thread
in the same process.
"""
from __future__ import annotations

import json
import logging
import zlib
from datetime import datetime, timezone
from typing import Optional, Sequence

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from storage.db import Database
from storage.models import AcceptedEvent

log = logging.getLogger("gonghao.queue")

PREFIX = "gh:"
GROUP = "workers"
CONSUMER = "owner"  # one consumer name: the partition lease says who is reading
SEEN_TTL = 7 * 24 * 3600

_ACCEPT = """
local out = {}
local ttl = tonumber(ARGV[1])
local n = (#ARGV - 1) / 3
for i = 0, n - 1 do
  local id = ARGV[2 + i * 3]
  local stream = ARGV[3 + i * 3]
  local payload = ARGV[4 + i * 3]
  if redis.call('SET', KEYS[1] .. id, '1', 'NX', 'EX', ttl) then
    redis.call('XADD', stream, '*', 'e', payload)
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out
"""


def event_user(event: dict) -> Optional[str]:
    source = event.get("source") or {}
    return source.get("userId")


def partition_of(user_id: Optional[str], partitions: int) -> int:
    return zlib.crc32((user_id or "").encode()) % partitions


class RedisEventQueue:
    def __init__(self, redis, partitions: int = 8, prefix: str = PREFIX):
        self.redis = redis
        self.partitions = partitions
        self.prefix = prefix
        self._accept = redis.register_script(_ACCEPT)
        self._groups_ready = False

    def stream(self, partition: int) -> str:
        return f"{self.prefix}events:{partition}"

    def ensure_groups(self) -> None:
        if self._groups_ready:
            return
        for p in range(self.partitions):
            try:
                self.redis.xgroup_create(self.stream(p), GROUP, id="0", mkstream=True)
            except Exception as exc:  # BUSYGROUP: it exists
                if "BUSYGROUP" not in str(exc):
                    raise
        self._groups_ready = True

    def accept(self, events: Sequence[dict]) -> list[bool]:
        """Queues events not seen before; True for each one queued now."""
        if not events:
            return []
        self.ensure_groups()
        args: list = [SEEN_TTL]
        for event in events:
            args += [event["webhookEventId"], self.stream(partition_of(event_user(event), self.partitions)),
                     json.dumps(event, ensure_ascii=False, separators=(",", ":"))]
        return [bool(x) for x in self._accept(keys=[f"{self.prefix}seen:"], args=args)]

    def backlog(self) -> int:
        return sum(self.redis.xlen(self.stream(p)) for p in range(self.partitions))


class SqlEventQueue:
    """The accepted_events table as a queue (one process only)."""

    def __init__(self, db: Database):
        self.db = db
        self.listeners: list = []

    def accept(self, events: Sequence[dict]) -> list[bool]:
        accepted = []
        for event in events:
            try:
                with self.db.session() as s:
                    s.add(AcceptedEvent(
                        webhook_event_id=event["webhookEventId"], user_id=event_user(event),
                        event_type=event.get("type", ""), event_timestamp=int(event.get("timestamp") or 0),
                        is_redelivery=bool((event.get("deliveryContext") or {}).get("isRedelivery")),
                        payload=json.dumps(event, ensure_ascii=False), status="queued"))
                accepted.append(True)
            except IntegrityError:
                accepted.append(False)
        if any(accepted):
            for notify in self.listeners:
                notify()
        return accepted

    def queued(self, limit: int = 500, exclude: Sequence[str] = ()) -> list[dict]:
        with self.db.session() as s:
            rows = s.execute(select(AcceptedEvent.webhook_event_id, AcceptedEvent.payload)
                             .where(AcceptedEvent.status == "queued")
                             .order_by(AcceptedEvent.event_timestamp, AcceptedEvent.received_at)
                             .limit(limit + len(exclude))).all()
        skip = set(exclude)
        return [json.loads(p) for i, p in rows if i not in skip][:limit]

    def done(self, event_id: str, status: str = "done") -> None:
        with self.db.session() as s:
            s.execute(update(AcceptedEvent).where(AcceptedEvent.webhook_event_id == event_id)
                      .values(status=status, payload="{}", processed_at=datetime.now(timezone.utc)))

    def backlog(self) -> int:
        return len(self.queued(limit=10_000))
