"""A tapped button: its data is the dialog's input, exactly as if typed."""
from __future__ import annotations

from handlers.common import converse


def handle(event: dict, services, state):
    data = (event.get("postback") or {}).get("data", "")
    return converse(event, services, state, data)
