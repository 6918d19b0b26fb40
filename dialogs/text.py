"""Normalising what people type: full-width to half-width, 台 to 臺, spaces."""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

import cn2an

_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """NFKC (full-width digits, letters and punctuation become half-width), 台→臺, trimmed."""
    text = unicodedata.normalize("NFKC", text or "")
    text = text.replace("台", "臺")
    return _SPACES.sub(" ", text).strip()


def tidy(text: str) -> str:
    """NFKC and collapsed spaces, but 台 kept as typed (names and e-mail domains must not change)."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text or "")).strip()


def command_key(text: str) -> str:
    """A key for matching commands: normalised, lower case, without spaces or end punctuation."""
    return normalise(text).lower().replace(" ", "").rstrip("!?.。！？")


_QUESTION_MARKERS = ("?", "嗎", "什麼", "甚麼", "幾", "哪", "如何", "怎麼", "怎樣", "是否", "可以", "能不能", "how ", "what ", "when ", "which ", "can i", "do i", "is ")


def looks_like_question(text: str) -> bool:
    """True when the text reads as a question rather than an answer."""
    t = normalise(text).lower()
    return any(marker in t for marker in _QUESTION_MARKERS) and len(t) >= 4


_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def scrub(text: str) -> str:
    """Text as it may enter the bot: no NUL, no other control characters, no lone surrogates.

    Tabs and line breaks stay. Runs once where text comes in (the webhook, the console,
    imports, staff forms), so nothing behind it meets a character the database or a
    document cannot hold.
    """
    return _UNSAFE.sub("", text) if isinstance(text, str) else text


def has_unsafe(text: str) -> bool:
    """True when ``scrub`` would remove something (to tell a person who typed it)."""
    return bool(_UNSAFE.search(text or ""))


_NUMERAL_CHARACTERS = frozenset("零〇一二兩三四五六七八九十百千萬")


def chinese_number(text: str) -> Optional[int]:
    """A whole number written in Chinese numerals (三, 十二, 五十, 兩百零五, 一百五 = 150), or None.

    cn2an reads it ("normal" mode: 兩 and the colloquial 一百五 too); anything else — digits, words,
    a unit alone (百) — is None.
    """
    if not text or not set(text) <= _NUMERAL_CHARACTERS:
        return None
    try:
        number = cn2an.cn2an(text, "normal")
    except ValueError:
        return None
    return int(number) if number == int(number) else None
