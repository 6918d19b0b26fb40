"""A message from the user: text goes to the conversation; other kinds get a polite note."""
from __future__ import annotations

from dialogs.i18n import _, use_locale
from dialogs.messages import Text
from handlers.common import converse, user_id_of


def handle(event: dict, services, state):
    message = event.get("message") or {}
    if message.get("type") == "text":
        return converse(event, services, state, message.get("text", ""))
    user_id = user_id_of(event)
    if not user_id:
        return None, []
    with use_locale(services.users.locale(user_id)):
        return None, [Text(_("I can read text only. Please type your answer, or tap a button."))]
