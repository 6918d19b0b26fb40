"""The database: engine, sessions and migrations (Alembic)."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import Session, sessionmaker

from storage.models import AuditEntry

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class Database:
    """One engine and a session factory for a DATABASE_URL."""

    def __init__(self, url: str):
        self.url = url
        kwargs: dict = {"pool_pre_ping": True}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        else:
            kwargs.update(pool_size=10, max_overflow=20)
        self.engine = create_engine(url, **kwargs)
        if url.startswith("sqlite"):
            event.listen(self.engine, "connect", _sqlite_pragmas)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    @contextlib.contextmanager
    def session(self):
        """A session that commits at the end of the block, or rolls back on error."""
        session: Session = self._sessions()
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
        finally:
            session.close()

    def upgrade(self) -> None:
        """Applies every Alembic migration (``gonghao db upgrade``)."""
        command.upgrade(alembic_config(self.url), "heads")  # each feature's migrations branch from 0001

    def ping(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False

    def audit(self, actor: str, action: str, subject: str | None = None, **detail) -> None:
        """Writes one audit-log entry (never put personal data in ``detail``)."""
        with self.session() as s:
            s.add(AuditEntry(actor=actor, action=action, subject=subject,
                             detail=json.dumps(detail, ensure_ascii=False) if detail else None))


def alembic_config(url: str) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_pragmas(dbapi_conn, _record):
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
