"""Operations endpoints: ``GET /metrics`` (Prometheus) and ``GET /readyz`` (can this process do its job).

``/healthz`` (bot/webhook.py) says the process is alive; ``/readyz`` answers 200 only when the
database answers and is migrated to every head, Redis answers (when configured) and a worker
beat within ``GONGHAO_HEARTBEAT_STALE`` seconds (default 30), else 503; each check in the JSON.
Neither says anything about a person.
"""
from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, jsonify

from bot import checks, metrics

log = logging.getLogger("gonghao.ops")

bp = Blueprint("ops", __name__)


def _services():
    return current_app.extensions["gonghao"]


@bp.get("/metrics")
def metrics_page():
    return Response(metrics.render(_services()), mimetype=metrics.CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})


def readiness(services) -> dict:
    """{check: {"ok": bool, ...}} for the database, its migrations, Redis (when configured) and the worker."""
    result: dict = {}
    db = services.db
    try:
        at_head, missing = checks.migrations_at_head(db)
        result["database"] = {"ok": True}
        result["migrations"] = {"ok": at_head, **({"missing": missing} if missing else {})}
    except Exception as exc:
        log.warning("readiness: database unavailable (%s)", type(exc).__name__)
        result["database"] = {"ok": False, "error": type(exc).__name__}
        result["migrations"] = {"ok": False, "error": "database unavailable"}
    if getattr(services, "redis", None) is not None:
        try:
            result["redis"] = {"ok": bool(services.redis.ping())}
        except Exception as exc:
            result["redis"] = {"ok": False, "error": type(exc).__name__}
    result["worker"] = _worker_check(db, services.config.heartbeat_stale) if result["database"]["ok"] else {"ok": False, "error": "database unavailable"}
    return result


def _worker_check(db, stale: float) -> dict:
    """A heartbeat within ``stale`` seconds (GONGHAO_HEARTBEAT_STALE)."""
    try:
        age = checks.heartbeat_age(db)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    if age is None:
        return {"ok": False, "error": "no worker heartbeat"}
    return {"ok": age <= stale, "heartbeat_age_seconds": round(age, 1)}


@bp.get("/readyz")
def readyz():
    result = readiness(_services())
    ok = all(check["ok"] for check in result.values())
    return jsonify(status="ready" if ok else "unavailable", checks=result), (200 if ok else 503)
