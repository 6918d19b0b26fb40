"""Checks shared by /readyz, the staff status page and ``gonghao doctor`` (no Flask here)."""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional


def migration_heads(db) -> tuple[set[str], set[str]]:
    """(the heads of the migration scripts, the revisions the database is at)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    script_heads = set(ScriptDirectory.from_config(alembic_config(db.url)).get_heads())
    with db.engine.connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return script_heads, current


def migrations_at_head(db) -> tuple[bool, list[str]]:
    """(whether the database is at every head, the heads it is missing)."""
    heads, current = migration_heads(db)
    missing = sorted(heads - current)
    return not missing and current <= heads, missing


def heartbeat_age(db, now: Optional[datetime] = None) -> Optional[float]:
    """Seconds since the freshest worker heartbeat, or None when no worker ever beat."""
    from bot.heartbeat import freshest

    beat = freshest(db)
    if beat is None:
        return None
    return ((now or datetime.now(timezone.utc)) - beat).total_seconds()


def redis_persistence(client) -> tuple[bool, dict]:
    """(whether Redis keeps its data over a restart: AOF on, or RDB snapshots configured, the facts read)."""
    info = client.info("persistence")
    facts = {"aof_enabled": int(info.get("aof_enabled", 0) or 0)}
    try:
        save = client.config_get("save").get("save", "")
    except Exception:  # CONFIG may be renamed or refused on managed Redis: INFO alone then
        save = None
    facts["save"] = save
    rdb = bool(save) if save is not None else bool(info.get("rdb_last_save_time"))
    return bool(facts["aof_enabled"]) or rdb, facts
