"""Drafts the chat keeps (a half-filled letter): when they expire, and the reminder a few days before.

The engine keeps each draft with the time it was last touched (dialogs.engine, ``touched``) and drops
it after its dialog's time to live; `expiring_drafts` finds those that expire within DRAFT_WARNING so
that `bot.reminders` can say so once, with a button that goes on where the owner stopped.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Iterable

from dialogs.dates import format_date
from dialogs.engine import RESUME, Dialog, draft_expiry
from dialogs.i18n import _
from dialogs.messages import Choice, Message, Text

DRAFT_WARNING = timedelta(days=3)  # how long before a draft expires its owner is reminded


def expiring_drafts(rows: Iterable[tuple[str, str]], dialogs: dict[str, Dialog], moment: datetime,
                    within: timedelta = DRAFT_WARNING) -> list[tuple[str, str, datetime, str]]:
    """(user id, dialog name, expiry, what it is) of the drafts in ``rows`` (user id, state JSON) expiring soon."""
    found = []
    for user_id, text in rows:
        try:
            state = json.loads(text) if isinstance(text, str) else dict(text or {})
        except ValueError:
            continue
        for name, expires, _data in draft_expiry(state, dialogs):
            if moment < expires <= moment + within:
                dialog = dialogs[name]
                what = dialog.title if isinstance(dialog.title, str) and dialog.title else name  # a msgid
                found.append((user_id, name, expires, what))
    return found


def draft_reminder_messages(what: str, expires: datetime) -> list[Message]:
    return [Text(_("Your half-filled answers to {what} are kept until {date}. Tap 繼續填寫 to go on where you "
                   "stopped.").format(what=_(what), date=format_date(expires)),
                 (Choice(_("Go on filling in"), RESUME),))]
