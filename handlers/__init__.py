"""LINE events -> dialogs. One small module per event type; `dispatch` picks it.

Handlers know the shape of LINE's events; they turn them into the dialogs'
input (text) and return the new dialog state and the bot's own messages.
"""
from __future__ import annotations

import logging

from handlers import follow, message, postback, unfollow

log = logging.getLogger("gonghao.handlers")

HANDLERS = {
    "message": message.handle,
    "postback": postback.handle,
    "follow": follow.handle,
    "unfollow": unfollow.handle,
}


def dispatch(event: dict, services, state):
    """(new state or None to keep it, messages) for one event."""
    handler = HANDLERS.get(event.get("type"))
    if handler is None:
        log.info("event type %s ignored", event.get("type"))
        return None, []
    return handler(event, services, state)
