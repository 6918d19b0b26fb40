"""POST /callback: verify, dedupe, hand off, answer 200. Nothing else happens here.

LINE counts an answer later than 2 seconds as a failure, so the events are put
on the durable queue (a table, see bot/queue.py) and the worker answers them. An
event LINE sent before (same webhookEventId) is not queued again. 200 means the
events are kept; when they cannot be (the database is down or silent) the answer
is 503 and LINE sends them again. An event we can never use (no id, a user id that
is not a LINE user id, ...) is skipped alone; text is scrubbed of NUL, control
characters and lone surrogates here, the one place where it enters.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging

from flask import Blueprint, Response, current_app, jsonify, request

from bot import metrics
from dialogs.text import scrub

log = logging.getLogger("gonghao.webhook")

bp = Blueprint("webhook", __name__)

MAX_BODY = 1024 * 1024
HANDLED = {"message", "postback", "follow", "unfollow"}
MAX_ID = 64  # the columns that hold event and user ids
MAX_TIMESTAMP = 2 ** 53  # milliseconds; anything larger is not a time


def signature_ok(secret: str, body: bytes, signature: str) -> bool:
    """x-line-signature = base64(HMAC-SHA256(channel secret, raw body bytes))."""
    if not secret or not signature:
        return False
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return hmac.compare_digest(expected, signature.strip())


def usable(event) -> bool:
    """An event we can queue: the fields we rely on are there and sane; else it is logged and skipped."""
    if not isinstance(event, dict):
        log.warning("skipped an event that is not an object")
        return False
    kind, event_id, stamp = event.get("type"), event.get("webhookEventId"), event.get("timestamp")
    if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID or scrub(event_id) != event_id \
            or not isinstance(stamp, int) or isinstance(stamp, bool) or not 0 <= stamp < MAX_TIMESTAMP:
        log.warning("skipped an unparseable event type=%s", kind if isinstance(kind, str) else "?")
        return False
    if kind not in HANDLED:
        log.info("skipped event type=%s id=%s", str(kind)[:32], event_id)
        return False
    source = event.get("source")
    if not isinstance(source, dict):
        log.warning("skipped event without source type=%s id=%s", kind, event_id)
        return False
    user = source.get("userId")
    if user is not None and (not isinstance(user, str) or not 0 < len(user) <= MAX_ID or scrub(user) != user):
        log.warning("skipped event whose userId is not a LINE user id type=%s id=%s", kind, event_id)
        return False
    return True


def scrubbed(node):
    """The event with every string (keys too) scrubbed (RecursionError for absurd nesting)."""
    if isinstance(node, str):
        return scrub(node)
    if isinstance(node, dict):
        return {scrub(str(key)): scrubbed(value) for key, value in node.items()}
    if isinstance(node, list):
        return [scrubbed(value) for value in node]
    return node


def events_to_queue(payload: dict) -> list[dict]:
    """The usable events of a request, scrubbed; one bad event never costs the others."""
    events = []
    for event in payload["events"]:
        try:
            if usable(event):
                events.append(scrubbed(event))
        except RecursionError:
            log.warning("skipped an event nested too deep")
    return events


@bp.post("/callback")
def callback():
    outcome, response = _callback()
    metrics.webhook_request(outcome)
    return response


def _callback() -> tuple[str, Response]:
    """(outcome for the metrics, the answer to LINE)."""
    if (request.content_length or 0) > MAX_BODY:
        return "too_large", Response("payload too large", status=413)
    body = request.get_data(cache=False)
    if len(body) > MAX_BODY:
        return "too_large", Response("payload too large", status=413)
    services = current_app.extensions["gonghao"]
    if not signature_ok(services.config.channel_secret, body, request.headers.get("x-line-signature", "")):
        log.warning("rejected a request with a missing or wrong signature")
        return "bad_signature", Response("bad signature", status=400)
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return "bad_request", Response("bad json", status=400)
    if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
        return "bad_request", Response("bad envelope", status=400)
    events = events_to_queue(payload)
    fresh = 0
    if events:
        try:
            accepted = services.queue.accept(events)
        except Exception as exc:
            log.warning("could not keep %d events (%s); LINE will send them again", len(events), type(exc).__name__)
            return "unavailable", Response("try again", status=503)
        fresh = sum(accepted)
        for event, new in zip(events, accepted):
            if not new:
                log.info("duplicate event %s ignored (redelivery=%s)", event["webhookEventId"],
                         (event.get("deliveryContext") or {}).get("isRedelivery"))
        metrics.events_accepted(fresh)
    return ("accepted" if fresh else "empty"), Response("OK", status=200)


@bp.get("/healthz")
def healthz():
    status = current_app.extensions["gonghao"].health()
    ok = all(status.values())
    return jsonify(status=("ok" if ok else "unavailable"), **status), (200 if ok else 503)
