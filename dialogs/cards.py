"""Messages that fit a phone: how many lines one takes, and a long card cut into pages.

Issue 10 item 5: no bubble longer than about 12 lines on a phone. The estimate: a line holds 20
full-width characters (a half-width one takes half a place) and every newline starts one; a
card is its title (larger: 16 a line), each row's label and value (both narrower beside a
"change" button), its footer and one line per button. A card longer than that becomes a
carousel of pages (the person swipes), each within the limit, its buttons on the last page.
"""
from __future__ import annotations

import math
import re
import unicodedata
from typing import Optional, Union

from dialogs.i18n import _
from dialogs.messages import Card, Carousel, Choice

PHONE_LINES = 12  # lines a bubble may take
LINE = 20.0  # full-width characters on a line of a phone's chat bubble
TITLE_LINE = 16.0  # the same in a card's larger title
BESIDE_BUTTON = 5 / 7  # the share of the width a row's value has beside its button (bot.render)
MAX_PAGES = 12  # LINE: at most 12 bubbles in a carousel


def phone_lines(text: str, width: float = LINE) -> int:
    """Lines ``text`` takes where a line holds ``width`` full-width characters."""
    lines = 0
    for line in (text or "").split("\n"):
        places = sum(1.0 if unicodedata.east_asian_width(c) in "FW" else 0.5 for c in line)
        lines += max(1, math.ceil(places / width))
    return lines


def row_lines(label: str, value: str, beside_button: bool = False) -> int:
    width = LINE * (BESIDE_BUTTON if beside_button else 1)
    return phone_lines(label, width) + phone_lines(value, width)


def card_lines(card: Card) -> int:
    rows = sum(row_lines(label, str(value), _has_button(card, i)) for i, (label, value) in enumerate(card.rows))
    footer = phone_lines(card.footer) if card.footer else 0
    return phone_lines(card.title, TITLE_LINE) + rows + footer + len(card.actions)


def _has_button(card: Card, index: int) -> bool:
    return index < len(card.row_actions) and card.row_actions[index] is not None


def fitted(card: Card, page_title: Optional[str] = None) -> Union[Card, Carousel]:
    """The card when it fits a phone, else its rows as pages of a carousel (titled ``page_title`` (1/3) …)."""
    if card_lines(card) <= PHONE_LINES:
        return card
    return Carousel(tuple(pages(card, page_title or card.title)))


def pages(card: Card, title: str) -> list[Card]:
    """The card's rows cut into cards of at most PHONE_LINES lines; the footer and buttons on the last one."""
    last_extra = (phone_lines(card.footer) if card.footer else 0) + len(card.actions)
    groups: list[list[int]] = [[]]
    used = phone_lines(title + "（12/12）", TITLE_LINE)
    for index, (label, value) in enumerate(card.rows):
        lines = row_lines(label, str(value), _has_button(card, index))
        if groups[-1] and used + lines > PHONE_LINES:
            groups.append([])
            used = phone_lines(title + "（12/12）", TITLE_LINE)
        groups[-1].append(index)
        used += lines
    if used + last_extra > PHONE_LINES and len(groups[-1]) > 1:  # the buttons need room: last row moves on
        groups.append([groups[-1].pop()])
    groups = groups[:MAX_PAGES]
    return [_page(card, title, group, number, len(groups)) for number, group in enumerate(groups, 1)]


def _page(card: Card, title: str, rows: list[int], number: int, count: int) -> Card:
    last = number == count
    actions: tuple[Optional[Choice], ...] = tuple(card.row_actions[i] if _has_button(card, i) else None for i in rows)
    return Card(title=_("{title} ({page}/{pages})").format(title=title, page=number, pages=count),
                rows=tuple(card.rows[i] for i in rows), row_actions=actions if any(actions) else (),
                actions=card.actions if last else (), footer=card.footer if last else "")


def text_parts(paragraphs: list[str]) -> list[str]:
    """Paragraphs in as few texts of at most PHONE_LINES lines as they go, in order, one a line apart.

    A paragraph too long for one text is cut between its sentences.
    """
    parts: list[str] = []
    current = ""
    for paragraph in paragraphs:
        pieces = [paragraph] if phone_lines(paragraph) <= PHONE_LINES else _sentences(paragraph)
        for index, piece in enumerate(pieces):
            glue = "\n" if index == 0 else (" " if pieces[index - 1][-1] in ".!?;" else "")
            joined = current + glue + piece if current else piece
            if current and phone_lines(joined) > PHONE_LINES:
                parts.append(current)
                joined = piece
            current = joined
    return parts + [current] if current else parts


def _sentences(text: str) -> list[str]:
    """The sentences of a paragraph (Chinese ones end in 。！？；, English ones in . ! ? ; and a space)."""
    return [piece for piece in re.split(r"(?<=[。！？；])|(?<=[.!?;])\s+", text) if piece]
