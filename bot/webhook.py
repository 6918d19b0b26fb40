"""POST /callback: verify, dedupe, hand off, answer 200. Nothing else happens here.

LINE counts an answer later than 2 seconds as a failure, so the events are put
on the durable queue and the worker answers them. An event LINE sent before
(same webhookEventId) is not queued again.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from flask import Blueprint, Response, current_app, jsonify, request

log = logging.getLogger("gonghao.webhook")

bp = Blueprint("webhook", __name__)

MAX_BODY = 1024 * 1024
HANDLED = {"message", "postback", "follow", "unfollow"}


def signature_ok(secret: str, body: bytes, signature: str) -> bool:
    """x-line-signature = base64(HMAC-SHA256(channel secret, raw body bytes))."""
    if not secret or not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


def usable(event) -> bool:
    """An event we can queue: the fields we rely on are there; else it is logged and skipped."""
    if not isinstance(event, dict):
        log.warning("skipped an event that is not an object")
        return False
    kind, event_id = event.get("type"), event.get("webhookEventId")
    if not isinstance(event_id, str) or not event_id or not isinstance(event.get("timestamp"), int):
        log.warning("skipped an unparseable event type=%s", kind if isinstance(kind, str) else "?")
        return False
    if kind not in HANDLED:
        log.info("skipped event type=%s id=%s", kind, event_id)
        return False
    if not isinstance(event.get("source"), dict):
        log.warning("skipped event without source type=%s id=%s", kind, event_id)
        return False
    return True


@bp.post("/callback")
def callback():
    if (request.content_length or 0) > MAX_BODY:
        return Response("payload too large", status=413)
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        return Response("payload too large", status=413)
    services = current_app.extensions["gonghao"]
    if not signature_ok(services.config.channel_secret, body, request.headers.get("x-line-signature", "")):
        log.warning("rejected a request with a missing or wrong signature")
        return Response("bad signature", status=400)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return Response("bad json", status=400)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        return Response("bad envelope", status=400)
    events = [e for e in payload["events"] if usable(e)]
    if events:
        try:
            accepted = services.queue.accept(events)
        except Exception:
            log.exception("could not queue %d events; LINE will redeliver", len(events))
            return Response("try again", status=503)
        for event, fresh in zip(events, accepted):
            if not fresh:
                log.info("duplicate event %s ignored (redelivery=%s)", event["webhookEventId"],
                         (event.get("deliveryContext") or {}).get("isRedelivery"))
    return Response("OK", status=200)


@bp.get("/healthz")
def healthz():
    status = current_app.extensions["gonghao"].health()
    ok = all(status.values())
    return jsonify(status=("ok" if ok else "unavailable"), **status), (200 if ok else 503)
