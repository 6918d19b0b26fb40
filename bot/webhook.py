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

from flask import Blueprint, current_app, jsonify

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


class Webhook:
    """POST /callback as a plain WSGI application in front of Flask; every other request goes on to Flask.

    LINE's requests are most of what the web process serves, and the work they need is small (a
    signature, a JSON body, one INSERT): Flask's request context, routing, sessions and hooks cost
    more CPU than that work (measured in one process: ~0.75–0.9 ms a request through Flask and
    SQLAlchemy's execute, ~0.35 ms here; bench/webhook/notes.md). The answers carry the headers every
    response of the app carries.
    """

    def __init__(self, app, services, headers: list[tuple[str, str]]):
        self.app = app
        self.services = services
        self.headers = headers

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != "/callback" or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start_response)
        try:
            outcome, status, text = self.answer(environ)
        except Exception:
            log.exception("the webhook failed")
            outcome, status, text = "error", "500 Internal Server Error", "error"
        metrics.webhook_request(outcome)
        body = text.encode()
        start_response(status, self.headers + [("Content-Type", "text/plain; charset=utf-8"),
                                               ("Content-Length", str(len(body)))])
        return [body]

    def answer(self, environ) -> tuple[str, str, str]:
        """(outcome for the metrics, HTTP status, body)."""
        body = read_body(environ)
        if body is None:
            return "too_large", "413 Request Entity Too Large", "payload too large"
        if not signature_ok(self.services.config.channel_secret, body, environ.get("HTTP_X_LINE_SIGNATURE", "")):
            log.warning("rejected a request with a missing or wrong signature")
            return "bad_signature", "400 Bad Request", "bad signature"
        try:
            payload = json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            return "bad_request", "400 Bad Request", "bad json"
        if not isinstance(payload, dict) or not isinstance(payload.get("events"), list):
            return "bad_request", "400 Bad Request", "bad envelope"
        return self.keep(events_to_queue(payload))

    def keep(self, events: list[dict]) -> tuple[str, str, str]:
        """Queues the events: 200 once they are kept, 503 when they cannot be (LINE sends them again)."""
        if not events:
            return "empty", "200 OK", "OK"
        try:
            accepted = self.services.queue.accept(events)
        except Exception as exc:
            log.warning("could not keep %d events (%s); LINE will send them again", len(events), type(exc).__name__)
            return "unavailable", "503 Service Unavailable", "try again"
        fresh = sum(accepted)
        for event, new in zip(events, accepted):
            if not new:
                log.info("duplicate event %s ignored (redelivery=%s)", event["webhookEventId"],
                         (event.get("deliveryContext") or {}).get("isRedelivery"))
        metrics.events_accepted(fresh)
        return ("accepted" if fresh else "empty"), "200 OK", "OK"


def read_body(environ) -> bytes | None:
    """The request's body, or None when it is larger than LINE ever sends (`MAX_BODY`)."""
    stream = environ["wsgi.input"]
    try:
        length = int(environ.get("CONTENT_LENGTH") or -1)
    except ValueError:
        length = -1
    if length > MAX_BODY:
        return None
    if length >= 0:
        body = stream.read(length)
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        body = stream.read(MAX_BODY + 1)
    else:
        body = b""
    return None if len(body) > MAX_BODY else body


def init_app(app, headers: list[tuple[str, str]]) -> None:
    """Puts the webhook in front of the app (tests' clients and gunicorn alike go through it)."""
    app.wsgi_app = Webhook(app.wsgi_app, app.extensions["gonghao"], headers)


@bp.get("/healthz")
def healthz():
    status = current_app.extensions["gonghao"].health()
    ok = all(status.values())
    return jsonify(status=("ok" if ok else "unavailable"), **status), (200 if ok else 503)
