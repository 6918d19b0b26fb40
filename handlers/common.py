"""What the handlers share: the user's context, running the conversation, the dead-letter notice."""
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
        result = services.conversation.handle(state, text, ctx)
    _apply_effects(services, user_id, ctx.effects)
    return result


def _apply_effects(services, user_id: str, effects: list) -> None:
    """The menu of the person's role (LINE's per-user rich menu), when the bot has a linker (bot.richmenu)."""
    menus = getattr(services, "role_menus", None)
    for kind, value in effects:
        if kind == "rich_menu" and menus is not None:
            menus.link(user_id, value)


def could_not_handle(services, user_id):
    """Said once when a message failed again and again and was set aside (dead-lettered)."""
    locale = services.users.cached_locale(user_id)
    with use_locale(locale):
        return [Text(_("Sorry, we could not handle that message. Please try saying it another way, "
                       "or contact the program office."))]
