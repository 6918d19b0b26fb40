"""The worker: takes accepted events off the queue, runs the dialogs, answers on LINE.

One user's events run one at a time in timestamp order; different users run
side by side on a thread pool, so many LINE calls are in flight at once.
Each event's answer is recorded with the new dialog state before it is sent,
so a worker killed half-way sends, after restart, what it had decided instead
of running the dialog again; the retry key and the single-use reply token keep
LINE from showing it twice.
"""
from __future__ import annotations

import itertools
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
from bot.queue import CONSUMER, GROUP, RedisEventQueue, SqlEventQueue, event_user
from bot.render import render_json
from dialogs.messages import from_dict, to_dict

log = logging.getLogger("gonghao.worker")

LOADING_AFTER_SECONDS = 1.5
REORDER_SECONDS = 0.25
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""  # lets a lease go only if it is still ours


class LoadingAnimations:
    """Shows LINE's loading animation to a user whose answer is taking more than a moment.

    ``watch(user)`` when work on an event starts, ``done(ticket)`` once it is answered; a
    timer thread, looking a few times a second while anything is being worked on, shows the
    animation for the tickets still open ``after`` seconds later. An answer that comes at
    once, as nearly all do, costs no call (an event that waited in the queue is answered at
    once too: the animation would only flash before the answer).
    """

    def __init__(self, show: Callable[[str], None], after: float = LOADING_AFTER_SECONDS, tick: float = 0.25):
        self.show = show
        self.after = after
        self.tick = tick
        self.lock = threading.Lock()
        self.open: dict[int, tuple[float, str]] = {}  # ticket -> (due, user)
        self.tickets = itertools.count()
        self.thread: Optional[threading.Thread] = None
        self.senders: Optional[ThreadPoolExecutor] = None

    def watch(self, user_id: str) -> int:
        ticket = next(self.tickets)
        due = time.monotonic() + self.after
        with self.lock:
            self.open[ticket] = (due, user_id)
            if self.thread is None:
                if self.senders is None:
                    self.senders = ThreadPoolExecutor(max_workers=4, thread_name_prefix="gh-loading")
                self.thread = threading.Thread(target=self._run, name="gh-loading-timer", daemon=True)
                self.thread.start()
        return ticket

    def done(self, ticket: int) -> None:
        with self.lock:
            self.open.pop(ticket, None)

    def _run(self) -> None:
        idle_since = time.monotonic()
        while True:
            time.sleep(self.tick)
            now = time.monotonic()
            with self.lock:
                if not self.open:
                    if now - idle_since > 2.0:  # nothing to watch for a while: stop until the next watch()
                        self.thread = None
                        return
                    continue
                idle_since = now
                due = [(ticket, user) for ticket, (at, user) in self.open.items() if at <= now]
                for ticket, _user in due:
                    del self.open[ticket]
            for _ticket, user_id in due:
                self.senders.submit(self.show, user_id)


class EventProcessor:
    """Processes one event end to end (decide, record, deliver)."""

    MARK_ATTEMPTS = 4

    def __init__(self, services):
        self.services = services
        self.loading = LoadingAnimations(lambda user_id: self.services.gateway.show_loading(user_id))

    def process(self, event: dict, ack: Optional[tuple] = None) -> bool:
        """Decides, records and sends the answer to one event.

        Three round trips to Redis: the delivery record and the state read together; the
        answer and the new state written together (with status ``attempting``: the send
        follows); ``sent`` written with ``ack`` = (stream, group, entry id), the queue's
        acknowledgement, when the store can (then True).
        """
        store = self.services.store
        event_id = event["webhookEventId"]
        user_id = event_user(event)
        record, state = store.delivery_and_state(event_id, user_id)
        if record is None:
            if event.get("mode") == "standby":
                return False  # another channel is active: send nothing
            ticket = self.loading.watch(user_id) if user_id else None
            try:
                state, messages = self.decide(event, user_id, state)
                record = {"reply_token": event.get("replyToken"), "timestamp": event.get("timestamp", 0),
                          "messages": [to_dict(m) for m in messages], "status": "pending"}
                store.record(event_id, user_id, state, record, status="attempting" if messages else "pending")
                if not messages:
                    return False
                return self.deliver(event_id, user_id, record, False, ack)
            finally:
                if ticket is not None:
                    self.loading.done(ticket)
        if record.get("status") == "sent" or not record.get("messages"):
            return False
        maybe_sent = record.get("status") == "attempting"
        store.mark(event_id, "attempting")
        return self.deliver(event_id, user_id, record, maybe_sent, ack)

    def deliver(self, event_id: str, user_id: Optional[str], record: dict, maybe_sent: bool,
                ack: Optional[tuple]) -> bool:
        sent = self.services.gateway.deliver(user_id, record.get("reply_token"), int(record.get("timestamp") or 0),
                                             render_json([from_dict(m) for m in record["messages"]]),
                                             key=retry_key_for(event_id), maybe_sent=maybe_sent)
        for attempt in range(1, self.MARK_ATTEMPTS + 1):  # LINE has it: losing this write would send it again
            try:
                return self.services.store.mark(event_id, "sent", sent.method, sent.request_id, ack=ack)
            except Exception as exc:
                if attempt == self.MARK_ATTEMPTS:
                    raise
                log.warning("could not record event %s as sent (%s); trying again", event_id, type(exc).__name__)
                time.sleep(0.2 * 2 ** attempt)
        return False

    def decide(self, event: dict, user_id: Optional[str], state: Optional[dict]):
        from handlers import dispatch

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

    def wait_below(self, limit: int, timeout: float, resume: Optional[int] = None) -> None:
        """When ``limit`` jobs are in flight, waits until no more than ``resume`` are (or ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.lock:
            if self.in_flight < limit:
                return
            while self.in_flight > (limit - 1 if resume is None else resume):
                left = deadline - time.monotonic()
                if left <= 0 or not self.idle.wait(left):
                    return

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


class ReorderBuffer:
    """Holds very fresh events for a moment, so that events sent at the same moment are taken in timestamp order.

    An event is ripe ``REORDER_SECONDS`` after its LINE timestamp (or after it arrived,
    if our clock is behind LINE's). Events from LINE usually arrive later than that,
    so in production nothing waits; only near-simultaneous bursts are put in order.
    """

    def __init__(self, window: float = REORDER_SECONDS):
        self.window = window
        self.items: list = []  # (ripe_at, timestamp_ms, payload)

    def __len__(self) -> int:
        return len(self.items)

    def add(self, timestamp_ms: int, payload, now: Optional[float] = None) -> None:
        now = time.time() if now is None else now
        self.items.append((min(timestamp_ms / 1000.0, now) + self.window, timestamp_ms, payload))

    def ripe(self, now: Optional[float] = None) -> list:
        """The payloads whose moment has come, in timestamp order."""
        now = time.time() if now is None else now
        ready = [item for item in self.items if item[0] <= now]
        if not ready:
            return []
        self.items = [item for item in self.items if item[0] > now]
        return [payload for _ripe, _ts, payload in sorted(ready, key=lambda item: item[1])]


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
        self.handing_over: set[int] = set()  # owned, no longer read, released once idle
        self._release_script = self.redis.register_script(_RELEASE)
        self.active: set[tuple[str, str]] = set()  # (stream, entry id) held or being processed
        self.active_lock = threading.Lock()
        self.buffer = ReorderBuffer()
        self.stopping = threading.Event()

    # -- leases ------------------------------------------------------------------
    def _lease_key(self, p: int) -> str:
        return f"{self.queue.prefix}lease:{p}"

    def refresh_leases(self) -> set[int]:
        """Renews held partitions and takes a fair share of free ones; returns new ones.

        A worker holding more than its share (another worker has started) hands the
        extra partitions over: it stops reading them, finishes what it took from them,
        then lets their leases go for the newcomer to take.
        """
        now = time.time()
        self.redis.zadd(f"{self.queue.prefix}workers", {self.id: now})
        self.redis.zremrangebyscore(f"{self.queue.prefix}workers", 0, now - self.LEASE_SECONDS)
        workers = max(1, self.redis.zcard(f"{self.queue.prefix}workers"))
        share = -(-self.queue.partitions // workers)
        for p in list(self.owned):
            key = self._lease_key(p)
            if self.redis.get(key) == self.id.encode():
                self.redis.pexpire(key, int(self.LEASE_SECONDS * 1000))
            else:
                self.owned.discard(p)
        self.handing_over &= self.owned
        keep = sorted(self.owned - self.handing_over)
        if len(keep) > share:
            self.handing_over.update(keep[share:])
            log.info("worker %s hands partitions %s over", self.id, sorted(self.handing_over))
        new = set()
        for p in range(self.queue.partitions):
            if len(self.owned) >= share:
                break
            if p not in self.owned and self.redis.set(self._lease_key(p), self.id, nx=True, px=int(self.LEASE_SECONDS * 1000)):
                self.owned.add(p)
                new.add(p)
        return new

    def release_leases(self) -> None:
        for p in self.owned:
            self._release(p)
        self.redis.zrem(f"{self.queue.prefix}workers", self.id)
        self.owned.clear()
        self.handing_over.clear()

    def _release(self, p: int) -> None:
        self._release_script(keys=[self._lease_key(p)], args=[self.id])

    def hand_over(self) -> None:
        """Lets go of the partitions being handed over once nothing taken from them is in flight."""
        with self.active_lock:
            busy = {stream for stream, _entry in self.active}
        for p in sorted(self.handing_over):
            if self.queue.stream(p) not in busy:
                self._release(p)
                self.owned.discard(p)
                self.handing_over.discard(p)
                log.info("worker %s handed partition %d over", self.id, p)

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
        """Holds new entries in the reorder buffer, then submits whatever is ripe."""
        with self.active_lock:
            for stream, entry_id, event in entries:
                if (stream, entry_id) not in self.active:  # ids are per stream: the pair is unique
                    self.active.add((stream, entry_id))
                    self.buffer.add(int(event.get("timestamp") or 0), (stream, event, entry_id))
        ripe = self.buffer.ripe()
        if ripe:
            try:  # the users' locales in one query, not one per user
                self.services.users.prefetch([event_user(event) for _stream, event, _entry in ripe])
            except Exception:
                log.warning("could not prefetch locales", exc_info=True)
        for stream, event, entry_id in ripe:
            user = event_user(event) or event.get("webhookEventId")
            self.dispatcher.submit(user, lambda s=stream, e=event, i=entry_id: self._run(s, e, i),
                                   event.get("timestamp", 0))

    def _run(self, stream: str, event: dict, entry_id: str) -> None:
        try:
            acked = self.processor.process(event, (stream, GROUP, entry_id))
            self.services.record_accepted(event)
            if not acked:
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
                self.active.discard((stream, entry_id))

    # -- the loop ---------------------------------------------------------------------
    def run(self, stop_after: Optional[float] = None) -> None:
        self.queue.ensure_groups()
        started = time.time()
        last_lease = last_retry = 0.0
        log.info("worker %s started", self.id)
        try:
            while not self.stopping.is_set():
                try:
                    last_lease, last_retry = self._step(last_lease, last_retry)
                except Exception:
                    log.exception("worker loop failed (Redis unreachable?); trying again in 1s")
                    self.stopping.wait(1)
                if stop_after is not None and time.time() - started > stop_after:
                    break
        finally:
            self.dispatcher.wait_idle(30)
            self.release_leases()
            log.info("worker %s stopped", self.id)

    def _step(self, last_lease: float, last_retry: float) -> tuple[float, float]:
        """One turn of the loop: leases, recovery, then read and dispatch."""
        now = time.time()
        if now - last_lease > self.LEASE_SECONDS / 3:
            self.recover(self.refresh_leases())
            last_lease = now
        if now - last_retry > self.RETRY_PENDING_SECONDS:
            self.recover(self.owned)
            last_retry = now
        if self.handing_over:
            self.hand_over()
        reading = sorted(self.owned - self.handing_over)
        if not reading:
            self.dispatch([])  # what the reorder buffer holds still goes out
            self.stopping.wait(0.05 if self.handing_over else 1)
            return last_lease, last_retry
        # at the limit, read again once half has been answered: fewer, larger reads
        self.dispatcher.wait_below(self.max_in_flight, 0.5, resume=self.max_in_flight // 2)
        room = self.max_in_flight - self.dispatcher.in_flight - len(self.buffer)
        entries = []
        if room > 0:
            streams = {self.queue.stream(p): ">" for p in reading}
            entries = self.read(streams, 20 if len(self.buffer) else 200, min(room, 500))
        elif len(self.buffer):
            time.sleep(0.01)
        self.dispatch(entries)
        return last_lease, last_retry

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
        self.buffer = ReorderBuffer()
        self.queue.listeners.append(self.wake.set)
        self.thread = threading.Thread(target=self.run, name="gh-inprocess-worker", daemon=True)

    def start(self) -> "InProcessWorker":
        self.thread.start()
        return self

    def run(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()
            try:
                with self.active_lock:
                    busy = list(self.active)
                events = self.queue.queued(limit=200, exclude=busy)
            except Exception:
                log.exception("cannot read the queue; trying again")
                self.stopping.wait(2)
                continue
            with self.active_lock:
                for event in events:
                    self.active.add(event["webhookEventId"])
                    self.buffer.add(int(event.get("timestamp") or 0), event)
            for event in self.buffer.ripe():
                user = event_user(event) or event["webhookEventId"]
                self.dispatcher.submit(user, lambda e=event: self._run(e), event.get("timestamp", 0))
            self.wake.wait(0.02 if len(self.buffer) else 0.5)

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
    if services.config.reminders:
        services.start_reminders()
    try:
        worker.run()
    finally:
        services.close()
