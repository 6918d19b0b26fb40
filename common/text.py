"""Text as it may enter the bot: what `scrub` removes and `has_unsafe` tells a person about, and
`form_text`, the one normaliser of what goes on the paper forms.

Here (not in dialogs, which re-export them) because storage's imports clean what they read too,
and storage does not import the dialogs.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Callable, Optional

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


# -- free text that goes on the paper form ----------------------------------------------------
# What each box of the paper forms holds (附件二 一 and 立約人, 附件一 柒.1), in characters. The chat, the
# console, the imports and the staff forms all refuse longer text with the same sentence.
FIELD_MAX = {
    "company_name": 50,  # 企業名稱 / 公司名稱
    "person_name": 30,  # 聯絡人, 代表人 (foreign names in Latin letters need more than Chinese ones)
    "products": 50,  # 附件一 主要服務/產品
    "address": 80,  # 地址
    "program_names": 80,  # 附件一 是否參與/申請政府相關輔導/補助計畫: 「是：ＯＯ計畫名稱」
}

# Pictographs, their joiners and variation selectors, keycaps, flags, tags: a form cannot print them.
_EMOJI = re.compile("[\U0001F000-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\u2300-\u23FF\uFE0E\uFE0F\u200D\u20E3"
                    "\U000E0000-\U000E007F\U0001F1E6-\U0001F1FF]")


class FormTextRefused(ValueError):
    """Text a paper form cannot hold; ``message`` says why (through gettext)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def form_text(value: Any, kind: str, question: Optional[Callable[[str], Optional[str]]] = None) -> str:
    """The one normaliser of free text that goes on 附件二 / 附件一 (chat, console, imports, staff edits).

    NFKC and collapsed spaces (台 kept as typed); refuses control characters, emoji, text that
    ``question`` says is a question (it returns the reason; dialogs.validators.form_text passes one)
    and text longer than the form's box (``FIELD_MAX[kind]``), each with a reason.
    """
    from common.i18n import _

    raw = unicodedata.normalize("NFKC", str(value or ""))
    if has_unsafe(raw) or any(unicodedata.category(ch) in ("Cc", "Cf", "Co") and ch not in "\t\n\r\u200d"
                              for ch in raw):
        raise FormTextRefused(_("The text contains invisible control characters. Please type it again."))
    text = re.sub(r"\s+", " ", scrub(raw)).strip()
    if _EMOJI.search(text):
        raise FormTextRefused(_("Please leave out emoji and pictures: the form is printed and signed on paper."))
    problem = question(text) if question is not None and text else None
    if problem:
        raise FormTextRefused(problem)
    limit = FIELD_MAX.get(kind)
    if limit and len(text) > limit:
        raise FormTextRefused(_("This is too long for its box on the form: at most {max} characters.").format(
            max=limit))
    return text
