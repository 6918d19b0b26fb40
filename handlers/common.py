"""What the handlers share: the user's context, running the conversation, the apology."""
from __future__ import annotations

from dialogs.engine import Context
from dialogs.i18n import _, use_locale
from dialogs.messages import Text


def user_id_of(event: dict):
    return (event.get("source") or {}).get("userId")


def converse(event: dict, services, state, text: str):
    """Runs one input through the conversation in the user's locale."""
    user_id = user_id_of(event)
    if not user_id:
        return None, []  # groups and rooms: the bot talks 1:1 only
    locale = services.users.locale(user_id)
    with use_locale(locale):
        ctx = Context(user_id=user_id, locale=locale, services=services)
        return services.conversation.handle(state, text, ctx)


def apology(services, user_id):
    """Said when something broke on our side; the user loses nothing by trying again."""
    locale = services.users.locale(user_id) if user_id else "zh_TW"
    with use_locale(locale):
        return [Text(_("Sorry, something went wrong on our side. Please send that again in a moment."))]
