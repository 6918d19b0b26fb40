"""Everything a request or a worker needs, built once from the configuration."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.config import Config, normalise_database_url
from bot.gateway import LineGateway
from bot.queue import RedisEventQueue, SqlEventQueue, event_user
from dialogs.i18n import normalise_locale
from storage.db import Database
from storage.models import AcceptedEvent, LineUser
from storage.state import RedisConversationStore, SqlConversationStore

log = logging.getLogger("gonghao")


class Users:
    """LINE users: their locale from the profile (fetched once, then cached) and their flags."""

    def __init__(self, db: Database, gateway: LineGateway):
        self.db = db
        self.gateway = gateway
        self._locales: dict[str, str] = {}
        self._lock = threading.Lock()

    def locale(self, user_id: str) -> str:
        cached = self._locales.get(user_id)
        if cached:
            return cached
        locale = self._lookup([user_id]).get(user_id)
        if locale is None:
            language = self.gateway.profile_language(user_id)
            locale = normalise_locale(language)
            try:
                with self.db.session() as s:
                    s.add(LineUser(user_id=user_id, language=language, locale=locale))
            except IntegrityError:
                pass
        self._remember({user_id: locale})
        return locale

    def prefetch(self, user_ids) -> None:
        """Loads the locales of the users not cached yet in one query (the worker, for each batch it reads)."""
        missing = list({u for u in user_ids if u and u not in self._locales})
        if missing:
            self._remember(self._lookup(missing))

    def _lookup(self, user_ids: list) -> dict:
        """{user: locale} for those of the users the database knows (one autocommit query)."""
        with self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if self.db.url.startswith("postgresql"):
                found = conn.exec_driver_sql("SELECT user_id, locale FROM line_users WHERE user_id = ANY(%s)",
                                             (list(user_ids),)).all()
            else:
                found = conn.execute(select(LineUser.user_id, LineUser.locale)
                                     .where(LineUser.user_id.in_(user_ids))).all()
        return {user_id: locale for user_id, locale in found if locale}

    def _remember(self, locales: dict) -> None:
        with self._lock:
            if len(self._locales) + len(locales) > 100_000:
                self._locales.clear()
            self._locales.update(locales)

    def set_followed(self, user_id: str, followed: bool) -> None:
        self.locale(user_id)
        with self.db.session() as s:
            user = s.get(LineUser, user_id)
            user.followed = followed
            user.blocked_at = None if followed else datetime.now(timezone.utc)

    def get(self, user_id: str) -> Optional[LineUser]:
        with self.db.session() as s:
            return s.get(LineUser, user_id)


class AcceptedEventLog:
    """Writes the answered events' records in batches (one INSERT per second, not one per event).

    No message text is kept: only the id, the user, the type and the times.
    """

    FLUSH_SECONDS = 1.0

    def __init__(self, db: Database):
        self.db = db
        self.pending: list[dict] = []
        self.lock = threading.Lock()
        self.thread: Optional[threading.Thread] = None
        self.closed = threading.Event()

    COLUMNS = ("webhook_event_id", "user_id", "event_type", "event_timestamp", "is_redelivery", "payload", "status",
               "received_at", "processed_at")
    PG_TYPES = ("text", "text", "text", "bigint", "boolean", "text", "text", "timestamptz", "timestamptz")

    def add(self, event: dict) -> None:
        now = datetime.now(timezone.utc)
        row = (event["webhookEventId"], event_user(event), event.get("type", ""), int(event.get("timestamp") or 0),
               bool((event.get("deliveryContext") or {}).get("isRedelivery")), "{}", "done", now, now)
        with self.lock:
            self.pending.append(row)
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name="gh-accepted-log", daemon=True)
                self.thread.start()

    def _run(self) -> None:
        while not self.closed.wait(self.FLUSH_SECONDS):
            self.flush()

    def close(self) -> None:
        self.closed.set()
        self.flush()

    def flush(self) -> None:
        with self.lock:
            rows, self.pending = self.pending, []
        if not rows:
            return
        try:
            if self.db.url.startswith("postgresql"):  # one statement, a column of values per array
                columns = ", ".join(self.COLUMNS)
                arrays = ", ".join(f"%s::{kind}[]" for kind in self.PG_TYPES)
                with self.db.engine.begin() as conn:
                    conn.exec_driver_sql(f"INSERT INTO accepted_events ({columns}) SELECT * FROM unnest({arrays}) "
                                         "ON CONFLICT DO NOTHING", tuple(list(column) for column in zip(*rows)))
            else:
                with self.db.session() as s:
                    s.execute(sqlite_insert(AcceptedEvent).on_conflict_do_nothing(),
                              [dict(zip(self.COLUMNS, row)) for row in rows])
        except Exception:
            log.exception("could not record %d answered events", len(rows))


class Services:
    """Database, queue, conversation store, LINE gateway and the dialogs."""

    def __init__(self, config: Config):
        from dialogs.main import build_conversation

        self.config = config
        self.db = Database(normalise_database_url(config.database_url))
        self.redis = None
        if config.redis_url:
            import redis

            # a connection per worker thread at most (redis-py's default pool stops at 100 and then raises)
            self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=3,
                                              health_check_interval=30, max_connections=config.worker_threads + 32)
            self.queue = RedisEventQueue(self.redis, config.partitions, config.redis_prefix)
            self.store = RedisConversationStore(self.redis, config.redis_prefix)
        else:
            self.queue = SqlEventQueue(self.db)
            self.store = SqlConversationStore(self.db)
        self.gateway = LineGateway(config.channel_access_token, config.line_api_base_url,
                                   timeout=config.line_timeout, pool_size=max(8, config.worker_threads))
        self.users = Users(self.db, self.gateway)
        from storage.staff import TownshipGroups

        self.township_group = TownshipGroups(self.db)  # town code -> group, as staff imported (dialogs.calculator)
        self.accepted_log = AcceptedEventLog(self.db)
        self.conversation = build_conversation()

    def record_accepted(self, event: dict) -> None:
        """Keeps the record of an event the Redis worker answered (the SQL queue already has it)."""
        if self.redis is not None:
            self.accepted_log.add(event)

    def start_reminders(self) -> None:
        """Sends due reminders from a thread of this process (the worker, or the embedded default)."""
        from bot.reminders import run_reminders_forever

        self.reminders_stop = threading.Event()
        threading.Thread(target=run_reminders_forever, args=(self, self.reminders_stop),
                         name="gh-reminders", daemon=True).start()

    def close(self) -> None:
        """Stops background work and releases connections (tests, console)."""
        if getattr(self, "reminders_stop", None) is not None:
            self.reminders_stop.set()
        worker = getattr(self, "inprocess_worker", None)
        if worker is not None:
            worker.stop()
        self.accepted_log.close()
        self.db.engine.dispose()

    def health(self) -> dict:
        status = {"database": self.db.ping()}
        if self.redis is not None:
            try:
                status["redis"] = bool(self.redis.ping())
            except Exception:
                status["redis"] = False
        return status


def database_from_env():
    """(config, database) for a staff command; the embedded default keeps its schema up to date itself."""
    config = Config.from_env()
    db = Database(normalise_database_url(config.database_url))
    if config.database_url.startswith("sqlite") or not config.uses_redis:
        db.upgrade()
    return config, db
