"""Everything a request or a worker needs, built once from the configuration."""
from __future__ import annotations

import logging
import threading
import time
from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from bot.config import Config, ConfigError, normalise_database_url
from bot.gateway import LineGateway
from bot.outbox import Outbox
from bot.queue import EventQueue
from dialogs.i18n import normalise_locale
from storage.db import Database
from storage.models import LineUser
from storage.state import ConversationStore

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
                with self.db.session(watched=True) as s:  # cut if the database goes silent (never hang a worker)
                    s.add(LineUser(user_id=user_id, language=language, locale=locale))
            except IntegrityError:
                pass
        self._remember({user_id: locale})
        return locale

    def known(self, user_id: str) -> bool:
        """Whether the user's locale is known here already (no need to ask LINE)."""
        return user_id in self._locales

    def cached_locale(self, user_id: Optional[str]) -> str:
        """The locale known for a user without asking LINE (zh_TW when unknown)."""
        if not user_id:
            return "zh_TW"
        if user_id not in self._locales:
            try:
                self.prefetch([user_id])
            except Exception:
                pass
        return self._locales.get(user_id, "zh_TW")

    def prefetch(self, user_ids) -> None:
        """Loads the locales of the users not cached yet in one query (the worker, for each batch it reads)."""
        missing = list({u for u in user_ids if u and u not in self._locales})
        if missing:
            self._remember(self._lookup(missing))

    def _lookup(self, user_ids: list) -> dict:
        """{user: locale} for those of the users the database knows (one autocommit query)."""
        with self.db.connection(single=True) as conn:  # cut if the database goes silent
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


class Services:
    """Database, queue, dialog state, outbox, LINE gateway and the dialogs.

    ``role``: "web" (the webhook and the console: a few connections, and the webhook's
    insert must answer LINE within 2 s) or "worker" (a connection per busy thread).
    """

    POOLS = {"web": (4, 4), "worker": (16, 4), "cli": (2, 2)}

    def __init__(self, config: Config, role: str = "web"):
        from dialogs.main import build_conversation

        self.config = config
        self.role = role
        # the web's waits are short: the webhook must answer LINE within 2 s
        self.db = Database(normalise_database_url(config.database_url),
                           timeout=config.db_timeout if role == "worker" else min(config.db_timeout, 1.0),
                           pool=self.POOLS.get(role, self.POOLS["web"]),
                           statement_seconds=config.db_timeout if role == "worker" else None)
        self.redis = None
        if config.redis_url:
            import redis

            self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=config.db_timeout,
                                              socket_connect_timeout=min(3.0, config.db_timeout),
                                              health_check_interval=30, retry_on_timeout=False)
        self.queue = EventQueue(self.db, reorder_ms=config.reorder_ms)
        self.store = ConversationStore(self.db)
        self.gateway = LineGateway(config.channel_access_token, config.line_api_base_url,
                                   timeout=config.line_timeout, pool_size=max(8, config.worker_threads))
        self.outbox = Outbox(self.db, self.gateway, max(config.lease_seconds, config.line_timeout + 2))
        self.users = Users(self.db, self.gateway)
        from storage.staff import TownshipGroups

        self.township_group = TownshipGroups(self.db)  # town code -> group, as staff imported (dialogs.calculator)
        self.conversation = build_conversation()
        # who is in which case for the reminders and the dialogs: None reads the cases-and-letters tables; tests and
        # benchmarks set a fixed one (dialogs.reminders.Directory)
        self.reminder_directory = None
        from bot.richmenu import RoleMenus

        self.role_menus = RoleMenus(config)  # links a proposer's menu when their role changes (handlers/common.py)

    def check_redis_persistence(self) -> None:
        """Production refuses a Redis that keeps nothing on disk, unless GONGHAO_ALLOW_VOLATILE_REDIS says so."""
        if not self.config.production or self.redis is None or self.config.allow_volatile_redis:
            return
        try:
            persistence = self.redis.info("persistence")
        except Exception as exc:
            raise ConfigError(f"Redis at REDIS_URL cannot be reached ({type(exc).__name__}).") from exc
        if not int(persistence.get("aof_enabled", 0) or 0):
            raise ConfigError("Redis keeps nothing on disk (appendonly no): a restart would forget the rate limits "
                              "and throttles it holds. Turn on AOF (appendonly yes), or set "
                              "GONGHAO_ALLOW_VOLATILE_REDIS=1 to start anyway.")

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
        try:
            self.outbox.flush()
        except Exception as exc:
            log.warning("could not record the last deliveries (%s)", type(exc).__name__)
        self.gateway.connections.close()
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
