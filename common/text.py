"""Text as it may enter the bot: what `scrub` removes and `has_unsafe` tells a person about.

Here (not in dialogs.text, which re-exports both) because storage's imports clean what they
read too, and storage does not import the dialogs.
"""
from __future__ import annotations

import re

_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def scrub(text: str) -> str:
    """Text as it may enter the bot: no NUL, no other control characters, no lone surrogates.

    Tabs and line breaks stay. Runs once where text comes in (the webhook, the console,
    imports), so nothing behind it meets a character the database or a document cannot hold.
    Staff forms refuse such text instead (`has_unsafe`), so the person types it again.
    """
    return _UNSAFE.sub("", text) if isinstance(text, str) else text


def has_unsafe(text: str) -> bool:
    """True when ``scrub`` would remove something (to tell a person who typed it)."""
    return bool(_UNSAFE.search(text or ""))
