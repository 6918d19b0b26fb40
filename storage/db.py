"""The database: engine, sessions, the unit of work per event, and migrations (Alembic).

Every event is processed in one transaction (`Database.unit_of_work`). While one is open
in a thread, `Database.session()` joins it instead of opening another, so whatever the
dialogs write (a letter, its audit entry, a consent) commits or rolls back together with
the event's processed mark, the new dialog state and the answer in the outbox.

Timeouts (PostgreSQL): connecting, waiting for a pooled connection, a statement, and a
transaction left idle are all bounded well below the worker's lease, and a watchdog cuts
the connection of a call that outlives its deadline (a server that stops answering
without closing the connection is only noticed that way).
"""
from __future__ import annotations

import contextlib
import contextvars
import heapq
import itertools
import json
import logging
import os
import socket
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator, Optional

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from storage.models import AuditEntry

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
log = logging.getLogger("gonghao.db")

_BEGIN_IMMEDIATE = text("BEGIN IMMEDIATE")
_current: contextvars.ContextVar[Optional[tuple["Database", Session]]] = contextvars.ContextVar(
    "gonghao_unit_of_work", default=None)


class Watchdog:
    """Calls a function once a deadline passes, unless cancelled first (one shared thread)."""

    def __init__(self):
        self.lock = threading.Condition()
        self.heap: list = []
        self.cancelled: set[int] = set()
        self.ids = itertools.count()
        self.thread: Optional[threading.Thread] = None
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        """In a forked child (gunicorn --preload) the thread stayed behind: start afresh."""
        self.lock = threading.Condition()
        self.heap, self.cancelled, self.thread = [], set(), None

    def arm(self, seconds: float, action: Callable[[], None]) -> int:
        ticket = next(self.ids)
        due = time.monotonic() + seconds
        with self.lock:
            sooner = not self.heap or due < self.heap[0][0]
            heapq.heappush(self.heap, (due, ticket, action))
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="gh-watchdog", daemon=True)
                self.thread.start()
            if sooner:  # else the thread wakes for the earlier deadline anyway (waking it on every call
                self.lock.notify()  # -- every LINE call and transaction -- cost a thread switch each)
        return ticket

    def disarm(self, ticket: int) -> None:
        with self.lock:
            self.cancelled.add(ticket)

    def _run(self) -> None:
        while True:
            with self.lock:
                while not self.heap:
                    self.lock.wait()
                due, ticket, action = self.heap[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self.lock.wait(min(wait, 1.0))
                    continue
                heapq.heappop(self.heap)
                if ticket in self.cancelled:
                    self.cancelled.discard(ticket)
                    continue
            try:
                action()
            except Exception:  # the action is best effort: cutting a connection already gone
                pass


WATCHDOG = Watchdog()


class Database:
    """One engine and a session factory for a DATABASE_URL.

    ``timeout`` (seconds) bounds connecting, statements and waiting for a pooled
    connection; ``pool`` is (size, overflow) on PostgreSQL.
    """

    def __init__(self, url: str, timeout: float = 5.0, pool: tuple[int, int] = (10, 20),
                 statement_seconds: Optional[float] = None):
        self.url = url
        self.timeout = timeout
        self.deadline = max(3.0, timeout * 3)  # how long a transaction of ours may take before it is cut
        # a worker's connections: tight limits on every statement and on a transaction left idle
        # (a worker stopped in the middle of one loses its rows to the others when the server ends it);
        # other connections keep generous ones (a console export may take a while)
        self.statement_ms = int((statement_seconds or 120) * 1000)
        self.postgres = url.startswith("postgresql")
        kwargs: dict = {"hide_parameters": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            # no pre-ping: a ping on a connection to a silent server would hang where no watchdog
            # can see it; a dead connection fails its first statement instead (an outage: retried)
            kwargs.update(pool_size=pool[0], max_overflow=pool[1], pool_timeout=timeout, pool_recycle=300,
                          connect_args={"connect_timeout": max(2, int(round(timeout))),
                                        "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                                        "keepalives_count": 2})
        self.engine = create_engine(url, **kwargs)
        self._engine_kwargs = kwargs
        self._plain: Optional[Engine] = None  # `driver_connection`'s, made on first use
        self._plain_lock = threading.Lock()
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            event.listen(self.engine, "connect", self._postgres_timeouts)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        if self.postgres:
            event.listen(self._sessions, "after_begin", _remember_socket)

    def _postgres_timeouts(self, dbapi_conn, _record):
        # (the queue's reservation plans each run afresh: see ORDERED_SCAN in bot/queue.py)
        ms = self.statement_ms
        with dbapi_conn.cursor() as cursor:
            cursor.execute(f"SET statement_timeout = {ms}; SET lock_timeout = {ms}; "
                           f"SET idle_in_transaction_session_timeout = {ms * 2}")
        dbapi_conn.commit()

    @contextlib.contextmanager
    def session(self, watched: bool = False) -> Iterator[Session]:
        """A session that commits at the end of the block, or rolls back on error.

        Inside a unit of work of this database (same thread), the unit's session is
        given instead: its writes commit with the event, or not at all. ``watched``:
        otherwise a `bounded` one (a worker's short writes: cut if the database goes silent).
        """
        current = _current.get()
        if current is not None and current[0] is self:
            yield current[1]
            return
        if watched:
            with self.bounded() as session:
                yield session
            return
        session: Session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    @contextlib.contextmanager
    def unit_of_work(self, deadline: Optional[float] = None) -> Iterator[Session]:
        """One transaction for one event; ``db.session()`` inside it joins it.

        ``deadline`` (seconds): past it the connection is cut, so a database that went
        silent fails the unit instead of holding the worker (PostgreSQL only).
        """
        if _current.get() is not None:
            raise RuntimeError("a unit of work is already open in this thread")
        with self._watched(deadline) as session:
            if not self.postgres:  # SQLite: the write lock from the start (pysqlite begins only at the first write),
                session.execute(_BEGIN_IMMEDIATE)  # so units run one at a time in every process and the claim sees all
            token = _current.set((self, session))
            try:
                yield session
            finally:
                _current.reset(token)

    @contextlib.contextmanager
    def bounded(self, seconds: Optional[float] = None) -> Iterator[Session]:
        """A short transaction of its own, cut by the watchdog after ``seconds`` (never joins a unit)."""
        with self._watched(seconds) as session:
            yield session

    @contextlib.contextmanager
    def _watched(self, seconds: Optional[float]) -> Iterator[Session]:
        """A session committed at the end (rolled back on error) whose connection is cut past ``seconds``."""
        session: Session = self._sessions()
        cutter = _Cutter(session)
        ticket = WATCHDOG.arm(seconds or self.deadline, cutter) if self.postgres else None
        try:
            yield session
            session.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                session.rollback()
            raise
        finally:
            cutter.finish()
            if ticket is not None:
                WATCHDOG.disarm(ticket)
            session.close()

    @contextlib.contextmanager
    def connection(self, seconds: Optional[float] = None, single: bool = False):
        """A Core connection in a transaction of its own, cut by the watchdog after ``seconds`` (the hot paths).

        ``single``: the block runs one statement, which is its own transaction (autocommit on
        PostgreSQL: one round trip instead of BEGIN, the statement and COMMIT).
        """
        if single and self.postgres:
            with self.engine.connect() as conn:
                with self._cut_after(conn, seconds):
                    yield conn.execution_options(isolation_level="AUTOCOMMIT")
            return
        with self.engine.begin() as conn:
            if not self.postgres:
                yield conn
                return
            with self._cut_after(conn, seconds):
                yield conn

    @contextlib.contextmanager
    def driver_connection(self, seconds: Optional[float] = None):
        """psycopg's own connection in autocommit, from a small pool of its own, cut after ``seconds`` (PostgreSQL).

        For a statement that runs on every request: through SQLAlchemy's execute (the statement's cache
        key, the execution context, the autocommit set and reset on each checkout) the webhook's INSERT
        cost ~0.35 ms of CPU, on psycopg's connection ~0.15 ms. A connection that failed in any way is
        dropped from the pool. psycopg's errors reach the caller as they are (`is_outage` knows them).
        """
        pooled = self._plain_engine().raw_connection()
        try:
            conn = pooled.driver_connection
            with self._cut_after(conn.pgconn.socket, seconds):
                yield conn
        except BaseException:
            pooled.invalidate()
            raise
        finally:
            pooled.close()

    def _plain_engine(self) -> Engine:
        with self._plain_lock:
            if self._plain is None:
                # the webhook's group insert runs one statement at a time (a request's own rows, when the
                # database refused a shared one, may be a second): README, "PostgreSQL connections"
                kwargs = dict(self._engine_kwargs, pool_size=1, max_overflow=1, isolation_level="AUTOCOMMIT")
                self._plain = create_engine(self.url, **kwargs)
                event.listen(self._plain, "connect", self._postgres_timeouts)
            return self._plain

    def forget_inherited_connections(self) -> None:
        """In a forked child: the parent's pooled connections stay the parent's (gunicorn's post_fork)."""
        for engine in (self.engine, self._plain):
            if engine is not None:
                engine.dispose(close=False)

    @contextlib.contextmanager
    def _cut_after(self, conn, seconds: Optional[float]):
        """Cuts the connection (SQLAlchemy's, or a socket's descriptor) when ``seconds`` have passed."""
        fd = conn if isinstance(conn, int) else conn.connection.dbapi_connection.pgconn.socket
        cutter = _SocketCutter(fd)
        ticket = WATCHDOG.arm(seconds or self.deadline, cutter)
        try:
            yield
        finally:
            cutter.finish()
            WATCHDOG.disarm(ticket)

    def upgrade(self) -> None:
        """Applies every Alembic migration (``gonghao db upgrade``)."""
        command.upgrade(alembic_config(self.url), "heads")  # each feature's migrations branch from 0001

    def ping(self) -> bool:
        try:
            with self.bounded(min(self.timeout, 2.0)) as s:
                s.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def audit(self, actor: str, action: str, subject: str | None = None, **detail) -> None:
        """Writes one audit-log entry (never put personal data in ``detail``)."""
        with self.session() as s:
            s.add(AuditEntry(actor=actor, action=action, subject=subject,
                             detail=json.dumps(detail, ensure_ascii=False) if detail else None))


class Recordset:
    """Many rows in one PostgreSQL statement: the rows go as one JSON parameter and ``json_to_recordset``
    turns them back into rows of the declared types. psycopg's executemany sends a statement per row;
    each cost the worker ~0.1 ms of CPU (a batch's answers and states). JSON rather than one array per
    column: psycopg's array dumping cost more than the statement (the webhook's single-row INSERT:
    ~0.18 ms with arrays, ~0.13 with JSON; bench/webhook/notes.md).

    ``columns``: [(name, PostgreSQL type)]; `rows` is ``json_to_recordset(...) AS x("name" type, ...)``
    for the statement (quoted: a name may be a reserved word, such as ``user``).
    """

    def __init__(self, *columns: tuple[str, str]):
        self.columns = columns
        self.rows = ("json_to_recordset(%s::json) AS x(" + ", ".join(f'"{name}" {kind}' for name, kind in columns)
                     + ")")

    @staticmethod
    def params(rows: list[dict]) -> list[str]:
        return [json.dumps(rows, ensure_ascii=False, separators=(",", ":"), default=_json_value)]


def _json_value(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


def execute_rows(session: Session, statement: str, recordset: Recordset, rows: list[dict]) -> int:
    """Runs ``statement`` (which names ``recordset.rows``) for ``rows`` in the session's transaction; the rows changed."""
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor:
        cursor.execute(statement, recordset.params(rows), prepare=True)
        return cursor.rowcount


def _remember_socket(session: Session, _transaction, connection) -> None:
    """Notes the socket of the connection a transaction runs on (for the watchdog's other thread)."""
    try:
        session.info["pg_socket"] = connection.connection.dbapi_connection.pgconn.socket
    except Exception:
        session.info.pop("pg_socket", None)


class _SocketCutter:
    """Shuts down a connection's socket when its deadline passes (the blocked call fails at once) —
    but never once its user has finished with it: the connection may be back in the pool, in another
    thread's hands."""

    def __init__(self, fd: Optional[int]):
        self.fd = fd
        self.lock = threading.Lock()
        self.finished = False

    def _socket(self) -> Optional[int]:
        return self.fd

    def __call__(self) -> None:
        with self.lock:
            fd = self._socket()
            if self.finished or fd is None or fd < 0:
                return
            log.warning("a database call outlived its deadline; cutting its connection")
            sock = socket.socket(fileno=os.dup(fd))
            try:
                sock.shutdown(socket.SHUT_RDWR)
            finally:
                sock.close()

    def finish(self) -> None:
        with self.lock:
            self.finished = True
            self._forget()

    def _forget(self) -> None:
        pass


class _Cutter(_SocketCutter):
    """The same for a session, whose socket is known once its transaction began (`_remember_socket`)."""

    def __init__(self, session: Session):
        super().__init__(None)
        self.session = session

    def _socket(self) -> Optional[int]:
        return self.session.info.get("pg_socket")

    def _forget(self) -> None:
        self.session.info.pop("pg_socket", None)


def is_outage(exc: BaseException) -> bool:
    """True for a database or network failure that says nothing about the event (try again later)."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, TimeoutError as PoolTimeout

    if isinstance(exc, (OperationalError, InterfaceError, PoolTimeout, ConnectionError, TimeoutError)):
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    if type(exc).__module__.startswith("psycopg") and isinstance(exc, _psycopg_outages()):
        return True  # a `driver_connection`'s (SQLAlchemy would have wrapped it in its OperationalError)
    name = type(exc).__module__ + "." + type(exc).__name__
    return name.startswith("redis.exceptions.") and type(exc).__name__ in (
        "ConnectionError", "TimeoutError", "BusyLoadingError")


def _psycopg_outages() -> tuple:
    import psycopg

    return psycopg.OperationalError, psycopg.InterfaceError


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":  # switching takes a lock another process may hold
        cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
