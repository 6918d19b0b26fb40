"""Normalising what people type: full-width to half-width, 台 to 臺, spaces."""
from __future__ import annotations

import re
import unicodedata

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
