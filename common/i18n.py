"""Translations: msgids are English, zh_TW is the product's voice, with plural forms.

Every ``*.po`` file under ``locales/<locale>/LC_MESSAGES/`` is one area's catalog; they are
merged into one Babel `Translations` per locale, so `ngettext` picks the plural form the
locale's rules say ("1 day left" / "2 days left" in English; zh_TW has one form).

The catalogs are compiled to ``.mo`` files beside the ``.po`` files (not committed): by
``python -m common.i18n`` (scripts/test, scripts/chat and the Procfile's release step run it).
A catalog whose ``.mo`` is missing or older than its ``.po`` is compiled in memory instead, so a
checkout always speaks. The locale of the person being answered is held in a context variable
(`use_locale`).
"""
from __future__ import annotations

import contextlib
import contextvars
import functools
import io
import sys
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DEFAULT_LOCALE = "zh_TW"
SUPPORTED = ("zh_TW", "en")

_current = contextvars.ContextVar("locale", default=DEFAULT_LOCALE)


def _po_files(locale: str) -> list[Path]:
    return sorted((LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po"))


def _compiled(po: Path) -> bytes:
    with po.open("rb") as fh:
        catalog_ = read_po(fh, locale=po.parent.parent.name)
    out = io.BytesIO()
    write_mo(out, catalog_, use_fuzzy=False)
    return out.getvalue()


def compile_catalogs() -> list[Path]:
    """Writes the ``.mo`` of every ``.po`` that has none or an older one; returns those written."""
    written = []
    for locale in SUPPORTED:
        for po in _po_files(locale):
            mo = po.with_suffix(".mo")
            if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
                mo.write_bytes(_compiled(po))
                written.append(mo)
    return written


def _catalog_bytes(po: Path) -> bytes:
    mo = po.with_suffix(".mo")
    if mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
        return mo.read_bytes()
    return _compiled(po)


@functools.lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """The locale's catalogs merged into one (English msgids answer themselves)."""
    merged = None
    for po in _po_files(locale):
        one = Translations(io.BytesIO(_catalog_bytes(po)))
        merged = one if merged is None else merged.merge(one)
    return merged if merged is not None else NullTranslations()


@functools.lru_cache(maxsize=None)
def catalog(locale: str) -> dict[str, str]:
    """Every translated singular msgid of a locale (the catalog test reads it)."""
    found = {}
    for key, text in getattr(translations(locale), "_catalog", {}).items():
        if isinstance(key, tuple):  # a plural form: (msgid, n)
            if key[1] == 0 and text:
                found[key[0]] = text
        elif key and text:
            found[key] = text
    return found


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
    """Translates ``message`` into the current locale (the English msgid if none)."""
    return translations(_current.get()).ugettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The form for ``n`` in the current locale: ngettext("{n} day left", "{n} days left", n)."""
    return translations(_current.get()).ungettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Marks a string for extraction; it is translated later with ``_()``."""
    return message


if __name__ == "__main__":  # python -m common.i18n: compile the catalogs
    for path in compile_catalogs():
        print(f"compiled {path.relative_to(LOCALES_DIR)}", file=sys.stderr)
