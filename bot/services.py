"""Everything a request or a worker needs, built once from the configuration."""
from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timezone
from typing import Optional

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
        with self.db.session() as s:
            user = s.get(LineUser, user_id)
            locale = user.locale if user else None
        if locale is None:
            language = self.gateway.profile_language(user_id)
            locale = normalise_locale(language)
            try:
                with self.db.session() as s:
                    s.add(LineUser(user_id=user_id, language=language, locale=locale))
            except IntegrityError:
                pass
        with self._lock:
            if len(self._locales) > 100_000:
                self._locales.clear()
            self._locales[user_id] = locale
        return locale

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
    """Database, queue, conversation store, LINE gateway and the dialogs."""

    def __init__(self, config: Config):
        from dialogs.main import build_conversation

        self.config = config
        self.db = Database(normalise_database_url(config.database_url))
        self.redis = None
        if config.redis_url:
            import redis

            self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=3,
                                              health_check_interval=30)
            self.queue = RedisEventQueue(self.redis, config.partitions)
            self.store = RedisConversationStore(self.redis)
        else:
            self.queue = SqlEventQueue(self.db)
            self.store = SqlConversationStore(self.db)
        self.gateway = LineGateway(config.channel_access_token, config.line_api_base_url,
                                   timeout=config.line_timeout, pool_size=max(8, config.worker_threads))
        self.users = Users(self.db, self.gateway)
        self.conversation = build_conversation()

    def record_accepted(self, event: dict) -> None:
        """Keeps the record of an event the Redis worker answered (the SQL queue already has it)."""
        if self.redis is None:
            return
        try:
            with self.db.session() as s:
                s.add(AcceptedEvent(
                    webhook_event_id=event["webhookEventId"], user_id=event_user(event),
                    event_type=event.get("type", ""), event_timestamp=int(event.get("timestamp") or 0),
                    is_redelivery=bool((event.get("deliveryContext") or {}).get("isRedelivery")),
                    payload=json.dumps({"type": event.get("type")}), status="done",
                    processed_at=datetime.now(timezone.utc)))
        except IntegrityError:
            pass

    def health(self) -> dict:
        status = {"database": self.db.ping()}
        if self.redis is not None:
            try:
                status["redis"] = bool(self.redis.ping())
            except Exception:
                status["redis"] = False
        return status
