"""The worker: takes accepted events off the queue, runs the dialogs, answers on LINE.

One user's events run one at a time in timestamp order; different users run
side by side on a thread pool, so many LINE calls are in flight at once.
Each event's answer is recorded with the new dialog state before it is sent,
so a worker killed half-way sends, after restart, what it had decided instead
of running the dialog again; the retry key and the single-use reply token keep
LINE from showing it twice.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Optional

from bot.gateway import DeliveryFailed, retry_key_for
from bot.queue import CONSUMER, GROUP, PREFIX, RedisEventQueue, SqlEventQueue, event_user
from bot.render import render
from dialogs.messages import from_dict, to_dict

log = logging.getLogger("gonghao.worker")

LOADING_AFTER_SECONDS = 1.5
GATHER_SECONDS = 0.03


class EventProcessor:
    """Processes one event end to end (decide, record, deliver)."""

    def __init__(self, services):
        self.services = services

    def process(self, event: dict) -> None:
        store, gateway = self.services.store, self.services.gateway
        event_id = event["webhookEventId"]
        user_id = event_user(event)
        record = store.delivery(event_id)
        if record is None:
            if event.get("mode") == "standby":
                return  # another channel is active: send nothing
            if user_id and time.time() - event.get("timestamp", 0) / 1000 > LOADING_AFTER_SECONDS:
                gateway.show_loading(user_id)
            state, messages = self.decide(event, user_id)
            record = {"reply_token": event.get("replyToken"), "timestamp": event.get("timestamp", 0),
                      "messages": [to_dict(m) for m in messages], "status": "pending"}
            store.record(event_id, user_id, state, record)
        if record.get("status") == "sent" or not record.get("messages"):
            return
        maybe_sent = record.get("status") == "attempting"
        store.mark(event_id, "attempting")
        sent = gateway.deliver(user_id, record.get("reply_token"), int(record.get("timestamp") or 0),
                               render([from_dict(m) for m in record["messages"]]),
                               key=retry_key_for(event_id), maybe_sent=maybe_sent)
        store.mark(event_id, "sent", sent.method, sent.request_id)

    def decide(self, event: dict, user_id: Optional[str]):
        from handlers import dispatch

        state = self.services.store.load_state(user_id) if user_id else None
        try:
            return dispatch(event, self.services, state)
        except Exception:
            log.exception("handler failed for event %s (%s)", event.get("webhookEventId"), event.get("type"))
            from handlers.common import apology
            return state, apology(self.services, user_id)


class UserSerialDispatcher:
    """Runs jobs on a pool, one at a time per user, in the order submitted."""

    def __init__(self, threads: int):
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="gh-worker")
        self.lock = threading.Lock()
        self.queues: dict[str, deque] = {}
        self.in_flight = 0
        self.idle = threading.Condition(self.lock)

    def submit(self, user: str, job: Callable[[], None], order: float = 0) -> None:
        """Queues ``job`` behind the user's others; waiting jobs are kept sorted by ``order``."""
        with self.lock:
            self.in_flight += 1
            queue = self.queues.get(user)
            if queue is not None:
                position = len(queue)
                while position > 1 and queue[position - 1][0] > order:  # [0] may be running
                    position -= 1
                queue.insert(position, (order, job))
                return
            self.queues[user] = deque([(order, job)])
        self.pool.submit(self._drain, user)

    def _drain(self, user: str) -> None:
        while True:
            with self.lock:
                queue = self.queues[user]
                if not queue:
                    del self.queues[user]
                    return
                job = queue[0][1]
            try:
                job()
            except Exception:
                log.exception("job failed")
            with self.lock:
                queue.popleft()
                self.in_flight -= 1
                self.idle.notify_all()

    def wait_below(self, limit: int, timeout: float) -> None:
        with self.lock:
            if self.in_flight >= limit:
                self.idle.wait(timeout)

    def wait_idle(self, timeout: float = 30) -> bool:
        deadline = time.time() + timeout
        with self.lock:
            while self.in_flight:
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.idle.wait(left)
        return True

    def shutdown(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)


class RedisWorker:
    """The ``worker`` process: leases partitions, reads their streams, answers."""

    LEASE_SECONDS = float(os.environ.get("GONGHAO_LEASE_SECONDS", "10"))
    RETRY_PENDING_SECONDS = 15

    def __init__(self, services, threads: Optional[int] = None):
        self.services = services
        self.queue: RedisEventQueue = services.queue
        self.redis = services.redis
        self.id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.processor = EventProcessor(services)
        self.dispatcher = UserSerialDispatcher(threads or services.config.worker_threads)
        self.max_in_flight = (threads or services.config.worker_threads) * 4
        self.owned: set[int] = set()
        self.active: set[str] = set()  # stream entry ids being processed
        self.active_lock = threading.Lock()
        self.stopping = threading.Event()

    # -- leases ------------------------------------------------------------------
    def _lease_key(self, p: int) -> str:
        return f"{PREFIX}lease:{p}"

    def refresh_leases(self) -> set[int]:
        """Renews held partitions and takes a fair share of free ones; returns new ones."""
        now = time.time()
        self.redis.zadd(f"{PREFIX}workers", {self.id: now})
        self.redis.zremrangebyscore(f"{PREFIX}workers", 0, now - self.LEASE_SECONDS)
        workers = max(1, self.redis.zcard(f"{PREFIX}workers"))
        share = -(-self.queue.partitions // workers)
        for p in list(self.owned):
            key = self._lease_key(p)
            if self.redis.get(key) == self.id.encode():
                self.redis.pexpire(key, self.LEASE_SECONDS * 1000)
            else:
                self.owned.discard(p)
        new = set()
        for p in range(self.queue.partitions):
            if len(self.owned) >= share:
                break
            if p not in self.owned and self.redis.set(self._lease_key(p), self.id, nx=True, px=self.LEASE_SECONDS * 1000):
                self.owned.add(p)
                new.add(p)
        return new

    def release_leases(self) -> None:
        for p in self.owned:
            key = self._lease_key(p)
            if self.redis.get(key) == self.id.encode():
                self.redis.delete(key)
        self.redis.zrem(f"{PREFIX}workers", self.id)
        self.owned.clear()

    # -- reading -------------------------------------------------------------------
    def read(self, streams: dict, block_ms: Optional[int], count: int) -> list:
        """[(stream, entry_id, event)] from XREADGROUP."""
        found = []
        reply = self.redis.xreadgroup(GROUP, CONSUMER, streams, count=count, block=block_ms)
        for stream, entries in reply or []:
            stream = stream.decode() if isinstance(stream, bytes) else stream
            for entry_id, fields in entries:
                if not fields:  # deleted while pending
                    self.redis.xack(stream, GROUP, entry_id)
                    continue
                entry_id = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
                found.append((stream, entry_id, json.loads(fields[b"e"])))
        return found

    def recover(self, partitions) -> None:
        """Re-dispatches what a partition's previous owner left unanswered."""
        for p in partitions:
            stream = self.queue.stream(p)
            last = "0"
            while True:
                entries = self.read({stream: last}, None, 500)
                if not entries:
                    break
                self.dispatch(entries)
                last = entries[-1][1]

    def dispatch(self, entries: list) -> None:
        batch = []
        with self.active_lock:
            for stream, entry_id, event in entries:
                if entry_id not in self.active:
                    self.active.add(entry_id)
                    batch.append((stream, event, entry_id))
        for stream, event, entry_id in sorted(batch, key=lambda x: x[1].get("timestamp", 0)):
            user = event_user(event) or event.get("webhookEventId")
            self.dispatcher.submit(user, lambda s=stream, e=event, i=entry_id: self._run(s, e, i),
                                   event.get("timestamp", 0))

    def _run(self, stream: str, event: dict, entry_id: str) -> None:
        try:
            self.processor.process(event)
            self.services.record_accepted(event)
            pipe = self.redis.pipeline(transaction=False)
            pipe.xack(stream, GROUP, entry_id)
            pipe.xdel(stream, entry_id)
            pipe.execute()
        except DeliveryFailed as exc:
            log.warning("event %s kept for a later attempt: %s", event.get("webhookEventId"), exc)
        except Exception:
            log.exception("event %s kept for a later attempt", event.get("webhookEventId"))
        finally:
            with self.active_lock:
                self.active.discard(entry_id)

    # -- the loop ---------------------------------------------------------------------
    def run(self, stop_after: Optional[float] = None) -> None:
        self.queue.ensure_groups()
        started = time.time()
        last_lease = last_retry = 0.0
        log.info("worker %s started", self.id)
        try:
            while not self.stopping.is_set():
                now = time.time()
                if stop_after is not None and now - started > stop_after:
                    break
                if now - last_lease > self.LEASE_SECONDS / 3:
                    self.recover(self.refresh_leases())
                    last_lease = now
                if now - last_retry > self.RETRY_PENDING_SECONDS:
                    self.recover(self.owned)
                    last_retry = now
                if not self.owned:
                    self.stopping.wait(1)
                    continue
                self.dispatcher.wait_below(self.max_in_flight, 0.5)
                room = self.max_in_flight - self.dispatcher.in_flight
                if room <= 0:
                    continue
                streams = {self.queue.stream(p): ">" for p in sorted(self.owned)}
                entries = self.read(streams, 200, min(room, 500))
                if entries and len(entries) < min(room, 500):
                    time.sleep(GATHER_SECONDS)  # let events sent at the same moment arrive, then sort them
                    entries += self.read(streams, None, min(room, 500) - len(entries))
                if entries:
                    self.dispatch(entries)
        finally:
            self.dispatcher.wait_idle(30)
            self.release_leases()
            log.info("worker %s stopped", self.id)

    def stop(self, *_args) -> None:
        self.stopping.set()


class InProcessWorker:
    """The embedded default: a thread that answers from the accepted_events table."""

    def __init__(self, services, threads: int = 8):
        self.services = services
        self.queue: SqlEventQueue = services.queue
        self.processor = EventProcessor(services)
        self.dispatcher = UserSerialDispatcher(threads)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.active: set[str] = set()
        self.active_lock = threading.Lock()
        self.queue.listeners.append(self.wake.set)
        self.thread = threading.Thread(target=self.run, name="gh-inprocess-worker", daemon=True)

    def start(self) -> "InProcessWorker":
        self.thread.start()
        return self

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            time.sleep(GATHER_SECONDS)  # let events sent at the same moment arrive, then sort them
            try:
                with self.active_lock:
                    busy = list(self.active)
                events = self.queue.queued(limit=200, exclude=busy)
            except Exception:
                log.exception("cannot read the queue; trying again")
                self.stopping.wait(2)
                continue
            for event in events:
                with self.active_lock:
                    self.active.add(event["webhookEventId"])
                user = event_user(event) or event["webhookEventId"]
                self.dispatcher.submit(user, lambda e=event: self._run(e), event.get("timestamp", 0))
            self.wake.wait(0.5 if not events else 0.05)

    def _run(self, event: dict) -> None:
        event_id = event["webhookEventId"]
        try:
            self.processor.process(event)
            self.queue.done(event_id)
        except DeliveryFailed as exc:
            log.warning("event %s kept for a later attempt: %s", event_id, exc)
            self.stopping.wait(1)
        except Exception:
            log.exception("event %s kept for a later attempt", event_id)
            self.stopping.wait(1)
        finally:
            with self.active_lock:
                self.active.discard(event_id)

    def wait_idle(self, timeout: float = 10) -> bool:
        """True once the queue is empty and nothing is in flight (for tests and the console)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if not self.queue.queued(limit=1) and self.dispatcher.wait_idle(0.05):
                with self.active_lock:
                    if not self.active:
                        return True
            time.sleep(0.02)
        return False

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        self.thread.join(timeout=5)
        self.dispatcher.wait_idle(10)


def run_worker(services) -> None:
    """Entry point of the ``worker`` process (Procfile)."""
    worker = RedisWorker(services)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    worker.run()
