"""The user added the account (or unblocked it): greet and show the menu."""
from __future__ import annotations

from dialogs.i18n import use_locale
from dialogs.main import greeting
from handlers.common import context_for, user_id_of


def handle(event: dict, services, state):
    user_id = user_id_of(event)
    if not user_id:
        return None, []
    services.users.set_followed(user_id, True)
    locale = services.users.locale(user_id)
    with use_locale(locale):
        return state, greeting(context_for(services, user_id, locale))
