"""The user blocked the account: remember it (reminders skip them); nothing can be sent."""
from __future__ import annotations

from handlers.common import user_id_of


def handle(event: dict, services, state):
    user_id = user_id_of(event)
    if user_id:
        services.users.set_followed(user_id, False)
    return None, []
