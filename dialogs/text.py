"""Normalising what people type: full-width to half-width, 台 to 臺, spaces; `scrub` and `has_unsafe`
(from common.text) for text entering the bot."""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

import cn2an

from common.text import has_unsafe, scrub  # noqa: F401  (re-exported: where text enters)

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
