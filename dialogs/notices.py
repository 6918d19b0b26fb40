"""Notices that would tire on a phone if said with every answer: each is said once per person per day."""
from __future__ import annotations

from dialogs.dates import today
from dialogs.engine import Context


def notice_due(ctx: Context, key: str = "edition_notice") -> bool:
    """True the first time today that ``key`` is about to be said to this person (then it is remembered)."""
    seen = getattr(ctx, "once_a_day", None)
    if seen is None:  # a bare context (tests, previews): always say it
        return True
    return ctx.once_a_day(key, today().isoformat())
