"""The worker's heartbeat: a row per worker process, its time renewed every few seconds.

The worker calls ``beat(db, worker_id)`` every few seconds (or sets ``Worker.heartbeat =
every(db, worker.id)``, which beats at most every 5 s however often it is called; ``worker_id()``
makes a name from the host and the process: no personal data); ``/readyz``, the metrics and the staff status page read
``freshest(db)``. Rows of workers silent for a day are removed by the next beat.
"""
from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import delete, func, select, update

from storage.heartbeats import WorkerHeartbeat

FORGET_AFTER = timedelta(days=1)


def worker_id() -> str:
    """``host:pid:random``: unique per process, names no person."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _utc(moment: Optional[datetime]) -> Optional[datetime]:
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)  # SQLite gives naive UTC times back
    return moment


def beat(db, worker_id: str, now: Optional[datetime] = None) -> None:
    """Records that ``worker_id`` is alive now (one short transaction)."""
    now = now or datetime.now(timezone.utc)
    with db.bounded() as s:  # cut by the watchdog if the database goes silent: the loop must not hang here
        found = s.execute(update(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id)
                          .values(beat_at=now)).rowcount
        if not found:
            s.add(WorkerHeartbeat(worker_id=worker_id, started_at=now, beat_at=now))
            s.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))


def freshest(db) -> Optional[datetime]:
    """The time of the most recent beat of any worker (UTC), or None when no worker ever beat."""
    with db.session() as s:
        return _utc(s.scalar(select(func.max(WorkerHeartbeat.beat_at))))


def live_workers(db, within_seconds: float, now: Optional[datetime] = None) -> int:
    """How many workers beat within the last ``within_seconds``."""
    since = (now or datetime.now(timezone.utc)) - timedelta(seconds=within_seconds)
    with db.session() as s:
        return s.scalar(select(func.count()).select_from(WorkerHeartbeat).where(WorkerHeartbeat.beat_at >= since)) or 0


def every(db, worker_id: str, seconds: float = 5.0):
    """A callable that beats at most every ``seconds`` (the worker may call it on every turn of its loop).

    A failed beat (the database away) is not raised: readiness then reports the worker stale, as it is.
    """
    import logging
    import time

    last: list = [None]  # not 0: the monotonic clock may have started less than ``seconds`` ago (a fresh boot)

    def maybe_beat() -> None:
        now = time.monotonic()
        if last[0] is not None and now - last[0] < seconds:
            return
        last[0] = now
        try:
            beat(db, worker_id)
        except Exception as exc:
            logging.getLogger("gonghao.heartbeat").warning("heartbeat not written (%s)", type(exc).__name__)

    return maybe_beat


def stop(db, worker_id: str) -> None:
    """A worker that stops cleanly removes its row (so readiness does not wait for it to go stale)."""
    with db.bounded() as s:
        s.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker_id == worker_id))
