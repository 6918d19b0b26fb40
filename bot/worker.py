"""The worker: takes queued events, runs the dialogs, answers on LINE.

For each event, one database transaction (`Database.unit_of_work`): the event is locked
(only when it is its user's turn), the user's dialog state read, the dialog run — every
write it makes joins the transaction —, the new state written (fenced by its version),
the answer recorded in the outbox and the event marked done. Either all of it commits or
none does; a second run of the same event finds it done and runs nothing. The answer is
sent after the commit (`bot/outbox.py`).

One user's events run one at a time in timestamp order; different users run side by
side on a thread pool, so many LINE calls are in flight at once. The same class runs as
the ``worker`` process (PostgreSQL in production) and as a thread of the web process on
the embedded default (SQLite).

Failures: an outage (database unreachable or silent, Redis down) leaves the event
queued and pauses taking new ones, with backoff, until it ends; nobody gets an apology
for it. Any other failure counts as an attempt; after a few, the event is dead-lettered
and its user told once that the message could not be handled.
"""
from __future__ import annotations

import itertools
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

from bot import heartbeat, metrics
from bot.logs import bind_event
from bot.outbox import Answer, Outbox
from bot.queue import EventQueue, event_user
from bot.render import render_json
from storage.db import is_outage
from storage.letters import prefetch_roles
from storage.state import StaleState

log = logging.getLogger("gonghao.worker")

LOADING_AFTER_SECONDS = 1.5
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
    """Processes one event end to end: decide and record in one transaction, then send."""

    def __init__(self, services):
        self.services = services
        self.db = services.db
        self.queue: EventQueue = services.queue
        self.outbox: Outbox = services.outbox
        self.loading = LoadingAnimations(lambda user_id: self.services.gateway.show_loading(user_id))

    def process(self, event_id: str, user_key: Optional[str] = None) -> Optional[str]:
        """Runs the event if it is its user's turn; the answer's status afterwards (None: nothing sent)."""
        if user_key and user_key != event_id:
            self.services.users.locale(user_key)  # a new user's profile: asked of LINE outside the transaction
        answer = self.decide(event_id)
        if answer is None:
            return None
        try:
            return self.outbox.send(answer)
        finally:
            self.loading.done(answer.ticket)

    def decide(self, event_id: str) -> Optional[Answer]:
        """The unit of work: claim, dialog, state, outbox, done — one commit."""
        ticket = None
        try:
            with self.db.unit_of_work(self.services.config.db_timeout * 3) as session:
                claimed = self.queue.claim(session, event_id)  # locked, and marked done if this commits
                if claimed is None:
                    return None  # done already, or not its turn (another worker has the user)
                event, received_at = claimed
                if event.get("mode") == "standby":
                    self.queue.finish(session, event_id)
                    return None  # another channel is active: send nothing
                user_id = event_user(event)
                ticket = self.loading.watch(user_id) if user_id else None
                messages = self._run_dialog(session, event, user_id)
                self.queue.finish(session, event_id)
                answer = self.outbox.add(session, event, user_id, render_json(messages), received_at) \
                    if messages else None
        except BaseException:
            if ticket is not None:
                self.loading.done(ticket)
            raise
        if answer is None:
            if ticket is not None:
                self.loading.done(ticket)
            metrics.event_answered(None, "none")
            return None
        answer.ticket = ticket
        return answer

    def _run_dialog(self, session, event: dict, user_id: Optional[str]) -> list:
        from handlers import dispatch

        store = self.services.store
        state, version = store.load(session, user_id) if user_id else (None, -1)
        new_state, messages = dispatch(event, self.services, state)
        if user_id and new_state is not None and new_state != state:
            store.save(session, user_id, new_state, version)
        return messages

    def decide_batch(self, event_ids: list[str]) -> list[Answer]:
        """Several users' events in one transaction (PostgreSQL): the answers to send, once committed.

        The same unit of work as `decide` — each event's claim, dialog, state and answer commit
        together — for a batch of events whose turn it is (at most one per user), so the
        database's round trips and the commit are shared. Anything failing fails the whole
        batch (nothing of it commits); the caller then runs its events one by one.
        """
        tickets: dict[str, int] = {}  # user -> loading-animation ticket
        try:
            with self.db.unit_of_work(self.services.config.db_timeout * 3) as session:
                claimed = self.queue.claim_many(session, event_ids)
                users = [user for user in {event_user(event) for _id, event, _at in claimed} if user]
                states = self.services.store.load_many(session, users) if users else {}
                if users:
                    prefetch_roles(session, users)
                changes, answers = [], []
                for event_id, event, received_at in claimed:
                    with bind_event(event_id):
                        messages = self._run_batched(event, states, changes, tickets)
                    if messages:
                        answers.append((event, event_user(event), render_json(messages), received_at))
                if changes:
                    self.services.store.save_many(session, changes)
                recorded = self.outbox.add_many(session, answers)
        except BaseException:
            for ticket in tickets.values():
                self.loading.done(ticket)
            raise
        return self._ticketed(recorded, tickets, len(claimed))

    def _run_batched(self, event: dict, states: dict, changes: list, tickets: dict) -> list:
        from handlers import dispatch

        if event.get("mode") == "standby":
            return []  # another channel is active: send nothing
        user_id = event_user(event)
        if user_id:
            tickets[user_id] = self.loading.watch(user_id)
        state, version = states.get(user_id, (None, -1)) if user_id else (None, -1)
        new_state, messages = dispatch(event, self.services, state)
        if user_id and new_state is not None and new_state != state:
            changes.append((user_id, new_state, version))
            states[user_id] = (new_state, version)
        return messages

    def _ticketed(self, answers: list[Answer], tickets: dict, claimed: int) -> list[Answer]:
        """Hands each answer its loading-animation ticket (events without an answer close theirs)."""
        for answer in answers:
            answer.ticket = tickets.pop(answer.user_id, None)
        for ticket in tickets.values():
            self.loading.done(ticket)
        for _ in range(claimed - len(answers)):
            metrics.event_answered(None, "none")
        return answers

    def dead_letter(self, event: dict) -> None:
        """Tells the user once that their message could not be handled (the event is dead)."""
        from handlers.common import could_not_handle

        user_id = event_user(event)
        if not user_id:
            return
        with self.db.unit_of_work() as session:
            answer = self.outbox.add(session, event, user_id, render_json(could_not_handle(self.services, user_id)))
        answer.ticket = None
        self.outbox.send(answer)


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

    def wait_until(self, ready: Callable[[], bool], timeout: float) -> None:
        """Until ``ready()`` (asked again each time a job finishes) or ``timeout``."""
        with self.lock:
            self.idle.wait_for(ready, timeout)

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


class Worker:
    """Takes the events whose turn it is and the answers due again; one per user at a time."""

    OUTBOX_EVERY = 0.5  # seconds between looks for answers to send again
    TRIM_EVERY = 600
    IDLE_POLL = 0.05  # seconds between looks at the queue when it is empty (the webhook wakes the embedded one)
    # at least this long between two looks at the queue: each answer sent wakes the loop (the user's next
    # event may be due), and at 200 events/s that made a reservation, a transaction and a commit for every
    # one or two events (a worker's CPU per answer was three times a burst's); waiting a little gathers them
    TURN_GAP = 0.02
    MAX_PAUSE = 5.0
    BATCH = 32  # at most this many events of different users decided in one transaction (PostgreSQL)

    def __init__(self, services, threads: Optional[int] = None, name: Optional[str] = None,
                 user: Optional[str] = None):
        self.services = services
        self.user = user  # only this user's events (a console: its own mock LINE platform issued their tokens)
        self.queue: EventQueue = services.queue
        self.outbox: Outbox = services.outbox
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.processor = EventProcessor(services)
        threads = threads or services.config.worker_threads
        self.dispatcher = UserSerialDispatcher(threads)
        # A batch is no larger than the threads that send its answers, and no more than twice as many
        # jobs are in flight as there are threads: an answer committed waits little for its send. (A
        # worker killed between the two loses nothing unless it comes back after the reply token's
        # minute: then such an answer is 'unsure', README. Batches of 32 on 16 threads, with 64 jobs in
        # flight, left 11 answers so in the fault matrix's large "restarted 60 s later" row.)
        self.batch = min(self.BATCH, threads)
        self.max_in_flight = threads * 2
        self.active: set[str] = set()  # event ids (and "out:" + event id) taken by this process
        self.active_lock = threading.Lock()
        self.batched = 0  # events taken in batches not decided yet
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.queue.listeners.append(self.wake.set)
        self.pause = 0.0  # seconds to wait after an outage (grows while it lasts)
        self.thread: Optional[threading.Thread] = None
        self.last_outbox = self.last_trim = 0.0
        self.heartbeat: Optional[Callable[[], None]] = heartbeat.every(services.db, self.id)
        self.reserve_ms = int(services.config.lease_seconds * 1000)

    # -- life ------------------------------------------------------------------------------
    def start(self) -> "Worker":
        self.thread = threading.Thread(target=self.run, name="gh-worker-loop", daemon=True)
        self.thread.start()
        return self

    def run(self, stop_after: Optional[float] = None) -> None:
        started = time.time()
        log.info("worker %s started", self.id)
        try:
            last = 0.0
            while not self.stopping.is_set():
                gap = last + self.TURN_GAP - time.monotonic()
                if gap > 0:
                    self.stopping.wait(gap)
                last = time.monotonic()
                self.wake.clear()
                try:
                    found = self.turn()
                    self.pause = 0.0
                except Exception as exc:
                    found = 0
                    self._outage(exc)
                if stop_after is not None and time.time() - started > stop_after:
                    break
                if not found:
                    self.wake.wait(self.IDLE_POLL)
        finally:
            self.dispatcher.wait_idle(30)
            try:
                self.outbox.flush()
                heartbeat.stop(self.services.db, self.id)
            except Exception as exc:
                log.info("could not remove the heartbeat (%s)", type(exc).__name__)
            log.info("worker %s stopped", self.id)

    def stop(self, *_args) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=30)
            self.dispatcher.wait_idle(30)

    def _outage(self, exc: BaseException) -> None:
        self.pause = min(self.MAX_PAUSE, max(0.25, self.pause * 2))
        if is_outage(exc):
            log.warning("database unreachable (%s); trying again in %.2fs", type(exc).__name__, self.pause)
        else:
            log.exception("worker loop failed; trying again in %.2fs", self.pause)
        self.stopping.wait(self.pause)

    # -- one turn ----------------------------------------------------------------------------
    def turn(self) -> int:
        """Submits the answers due again and the events whose turn it is; how many were taken."""
        now = time.time()
        taken = 0
        if now - self.last_outbox >= self.OUTBOX_EVERY:
            self.last_outbox = now
            taken += self._resend()
            if self.heartbeat is not None:
                self.heartbeat()
        if now - self.last_trim >= self.TRIM_EVERY:
            self.last_trim = now
            removed = self.queue.trim()
            if removed:
                log.info("trimmed %d old rows", removed)
        room = self._room()
        if room <= 0 or room < self.batch and self.services.db.postgres and self.dispatcher.in_flight:
            # a few more free places first (one larger batch costs less); on SQLite half of them. Waiting on
            # the places themselves, not on any job's end: the loop had turned thousands of times a second
            # while batches not yet decided filled the places (a fifth of the worker's CPU)
            wanted = self.batch if self.services.db.postgres else self.max_in_flight // 2
            self.dispatcher.wait_until(lambda: self._room() >= wanted, 0.5 if room <= 0 else 0.05)
            return 1
        with self.active_lock:
            busy = list(self.active)
        if not self.services.db.postgres:
            heads = self.queue.heads(room, exclude=busy, user=self.user)
            for event_id, user_key, stamp in heads:
                if self._take(event_id):
                    self.dispatcher.submit(user_key, lambda e=event_id, u=user_key: self._process(e, u), stamp)
            return taken + len(heads)
        mine = [key for key in busy if not key.startswith("out:")]
        heads = [head for head in self.queue.reserve(self.id, room, self.reserve_ms, mine) if self._take(head[0])]
        for start in range(0, len(heads), self.batch):
            batch = heads[start:start + self.batch]
            with self.active_lock:
                self.batched += len(batch)
            self.dispatcher.submit(f"batch:{batch[0][0]}", lambda b=batch: self._process_batch(b), batch[0][2])
        return taken + len(heads)

    def _room(self) -> int:
        """Places for more jobs: events taken in batches count before their batch has started."""
        return self.max_in_flight - self.dispatcher.in_flight - self.batched

    def _take(self, key: str) -> bool:
        with self.active_lock:
            if key in self.active:
                return False
            self.active.add(key)
            return True

    def _resend(self) -> int:
        with self.active_lock:
            busy = {key[4:] for key in self.active if key.startswith("out:")}
        # answers tried again get a quarter of the places, half when the worker is not busy: new events
        # are never starved by them (a LINE slower than our timeout made every thread a retry)
        room = max(self.max_in_flight // 4, self.max_in_flight // 2 - self.dispatcher.in_flight)
        answers = self.outbox.due(limit=room, exclude=busy)
        for answer in answers:
            if self._take("out:" + answer.event_id):
                self.dispatcher.submit(answer.user_id or answer.event_id,
                                       lambda a=answer: self._send(a), answer.event_ms)
        return len(answers)

    def _send(self, answer: Answer) -> None:
        try:
            with bind_event(answer.event_id):
                self.outbox.send(answer)
        except Exception as exc:
            self._failed_quietly(exc, "an answer kept for a later attempt")
        finally:
            if answer.ticket is not None:
                self.processor.loading.done(answer.ticket)
            with self.active_lock:
                self.active.discard("out:" + answer.event_id)
            self.wake.set()

    def _process_batch(self, heads: list[tuple[str, str, int]]) -> None:
        """Decides a batch in one transaction, then sends each answer on its own (side by side).

        A batch that fails for an outage stays queued; one that fails otherwise (a poison event,
        another worker's state in the way) is run again event by event, where each failure is
        counted against its own event only.
        """
        try:
            heads = self._known_users_only(heads)
            ids = [event_id for event_id, _user, _stamp in heads]
            answers = self.processor.decide_batch(ids) if ids else []
        except Exception as exc:
            self._batch_failed(heads, exc)
            return
        finally:
            with self.active_lock:
                self.batched -= len(heads)
        with self.active_lock:
            self.active.difference_update(ids)
            self.active.update("out:" + answer.event_id for answer in answers)
        for answer in answers:
            self.dispatcher.submit(answer.user_id or answer.event_id, lambda a=answer: self._send(a), answer.event_ms)
        self.wake.set()

    def _known_users_only(self, heads: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
        """The heads whose users' locales are known (read at once); the others run one by one, side by
        side, each asking LINE for its user's profile outside any transaction (a batch waiting for
        32 profiles one after the other took over 3 s)."""
        users = self.services.users
        users.prefetch([user for event_id, user, _stamp in heads if user != event_id])
        known, new = [], []
        for head in heads:
            (new if head[1] != head[0] and not users.known(head[1]) else known).append(head)
        with self.active_lock:
            self.batched -= len(new)
        for event_id, user_key, stamp in new:  # still in self.active: _process lets each go
            self.dispatcher.submit(user_key, lambda e=event_id, u=user_key: self._process(e, u), stamp)
        return known

    def _batch_failed(self, heads: list[tuple[str, str, int]], exc: BaseException) -> None:
        if is_outage(exc):
            self._failed_quietly(exc, f"a batch of {len(heads)} events kept for a later attempt")
            with self.active_lock:
                self.active.difference_update(event_id for event_id, _user, _stamp in heads)
            return
        log.warning("a batch of %d events failed (%s); running them one by one", len(heads), type(exc).__name__,
                    exc_info=exc)
        for event_id, user_key, stamp in heads:  # still in self.active: _process lets each go
            self.dispatcher.submit(user_key, lambda e=event_id, u=user_key: self._process(e, u), stamp)

    def _process(self, event_id: str, user_key: Optional[str] = None) -> None:
        try:
            with bind_event(event_id):
                self.processor.process(event_id, user_key)
        except StaleState:
            log.warning("event %s: another worker answered this user first; it will be taken again", event_id)
        except Exception as exc:
            if is_outage(exc):
                self._failed_quietly(exc, f"event {event_id} kept for a later attempt")
            else:
                self._attempt_failed(event_id, exc)
        finally:
            with self.active_lock:
                self.active.discard(event_id)
            self.wake.set()

    def _attempt_failed(self, event_id: str, exc: BaseException) -> None:
        reason = f"{type(exc).__name__} while handling the event"
        log.error("event %s failed (%s)", event_id, type(exc).__name__, exc_info=exc)
        metrics.event_failed()
        try:
            dead = self.queue.failed(event_id, reason)
            if dead is not None:
                metrics.event_dead()
                log.error("event %s dead-lettered after repeated failures", event_id)
                self.processor.dead_letter(dead)
        except Exception as again:
            self._failed_quietly(again, f"event {event_id}: could not record the failure")

    def _failed_quietly(self, exc: BaseException, what: str) -> None:
        if is_outage(exc):
            log.warning("%s: %s", what, type(exc).__name__)
        else:
            log.error("%s", what, exc_info=exc)

    # -- for tests and the console -------------------------------------------------------------
    def wait_idle(self, timeout: float = 15) -> bool:
        """True once nothing is queued or being sent and nothing is in flight here."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.wake.set()
            if self.dispatcher.wait_idle(0.05) and not self.active and self._drained():
                return True
            time.sleep(0.02)
        return False

    def _drained(self) -> bool:
        from sqlalchemy import func, select

        from storage.models import Delivery

        if self.queue.backlog():
            return False
        with self.services.db.bounded() as s:
            return not s.execute(select(func.count()).select_from(Delivery)
                                 .where(Delivery.status.in_(("pending", "sending")))).scalar_one()


def ready_to_answer() -> int:
    """Start-up of the worker process before its first event: the knowledge bases built, then everything
    built so far frozen out of the garbage collector's walks (bot/heap.py); returns the objects frozen."""
    from bot.heap import freeze_startup_heap
    from dialogs.faq_intents import load_knowledge_bases

    load_knowledge_bases()
    return freeze_startup_heap()


def run_worker(services) -> None:
    """Entry point of the ``worker`` process (Procfile)."""
    ready_to_answer()
    worker = Worker(services)
    signal.signal(signal.SIGTERM, worker.stop)
    signal.signal(signal.SIGINT, worker.stop)
    if services.config.reminders:
        services.start_reminders()
    try:
        worker.run()
    finally:
        services.close()
