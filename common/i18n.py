"""Translations: msgids are English, zh_TW is the product's voice.

Every ``*.po`` file under ``locales/<locale>/LC_MESSAGES/`` is loaded and merged,
so each area of the bot keeps its own catalog file. The locale of the person
being answered is held in a context variable (`use_locale`).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
from pathlib import Path

from babel.messages.pofile import read_po

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LOCALE = "zh_TW"
SUPPORTED = ("zh_TW", "en")

_current = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)


@functools.lru_cache(maxsize=None)
def catalog(locale: str) -> dict[str, str]:
    """All translated msgids of a locale, merged from its .po files."""
    merged: dict[str, str] = {}
    folder = LOCALES_DIR / locale / "LC_MESSAGES"
    for po in sorted(folder.glob("*.po")):
        with po.open("rb") as fh:
            for msg in read_po(fh, locale=locale):
                if msg.id and msg.string and not msg.fuzzy:
                    key = msg.id if isinstance(msg.id, str) else msg.id[0]
                    merged[key] = msg.string if isinstance(msg.string, str) else msg.string[0]
    return merged


def normalise_locale(language: str | None) -> str:
    """Maps a LINE profile language ("zh-Hant", "en", "ja") to a supported locale."""
    if not language:
        return DEFAULT_LOCALE
    lang = language.replace("-", "_").lower()
    if lang.startswith("en"):
        return "en"
    return DEFAULT_LOCALE


def current_locale() -> str:
    return _current.get()


@contextlib.contextmanager
def use_locale(locale: str | None):
    """Answers in ``locale`` inside the block."""
    token = _current.set(locale if locale in SUPPORTED else DEFAULT_LOCALE)
    try:
        yield
    finally:
        _current.reset(token)


def gettext(message: str) -> str:
    """Translates ``message`` into the current locale (English msgid if none)."""
    locale = _current.get()
    if locale == "en":
        return catalog("en").get(message, message)
    return catalog(locale).get(message, message)


_ = gettext


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated later with ``_()``."""
    return message
