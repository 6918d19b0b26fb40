"""Build the requests LINE would send: events, envelopes and signatures (console, tests, benchmarks)."""
from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
import uuid

_counter = itertools.count(1)


def now_ms() -> int:
    return int(time.time() * 1000)


def _base(kind: str, user_id: str, reply_token: str | None, timestamp: int | None, redelivery=False, mode="active"):
    event = {
        "type": kind,
        "mode": mode,
        "timestamp": timestamp if timestamp is not None else now_ms(),
        "source": {"type": "user", "userId": user_id},
        "webhookEventId": "01" + uuid.uuid4().hex.upper()[:24],
        "deliveryContext": {"isRedelivery": redelivery},
    }
    if reply_token:
        event["replyToken"] = reply_token
    return event


def text_event(user_id, text, reply_token=None, timestamp=None, **kw):
    event = _base("message", user_id, reply_token, timestamp, **kw)
    event["message"] = {"type": "text", "id": str(next(_counter)), "quoteToken": uuid.uuid4().hex, "text": text}
    return event


def postback_event(user_id, data, reply_token=None, timestamp=None, **kw):
    event = _base("postback", user_id, reply_token, timestamp, **kw)
    event["postback"] = {"data": data}
    return event


def follow_event(user_id, reply_token=None, timestamp=None, **kw):
    event = _base("follow", user_id, reply_token, timestamp, **kw)
    event["follow"] = {"isUnblocked": False}
    return event


def unfollow_event(user_id, timestamp=None, **kw):
    return _base("unfollow", user_id, None, timestamp, **kw)


def sticker_event(user_id, reply_token=None, **kw):
    event = _base("message", user_id, reply_token, None, **kw)
    event["message"] = {"type": "sticker", "id": str(next(_counter)), "packageId": "1", "stickerId": "1",
                        "stickerResourceType": "STATIC", "quoteToken": uuid.uuid4().hex}
    return event


def envelope(events, destination="Ubot0000000000000000000000000000") -> bytes:
    return json.dumps({"destination": destination, "events": list(events)}, ensure_ascii=False).encode()


def sign(secret: str, body: bytes) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
