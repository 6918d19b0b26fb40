"""How many lines a LINE message takes on a phone: the model the short-message tests measure with.

The model (issue 10 item 5, "no bubble longer than about 12 lines on a phone"):

* a line holds 20 full-width characters (CJK, full-width punctuation); a half-width character
  (Latin letters, digits, ASCII punctuation) takes half a place; a text wraps when a line is full,
  and every explicit newline starts a new line (an empty line counts);
* a text message is one bubble: the lines of its text;
* a Flex bubble (a card, a link) is the lines of its text components and buttons, top to bottom:
  a vertical box adds its children's lines; a horizontal box is as tall as its tallest child, each
  child getting the share of the width its ``flex`` gives it (1 when unset); a text of size ``lg``
  or larger holds 16 characters a line; a button is one line (its label); separators, spacers and
  images count nothing;
* a carousel is several bubbles, each measured alone; quick-reply buttons float below the chat and
  are not part of any bubble.

It measures what the bot actually sent (LINE's JSON, as the mock platform received it), not the
dialogs' own messages, so it does not share the dialogs' estimate of the same thing.
"""
from __future__ import annotations

import math
import unicodedata

LINE_WIDTH = 20.0  # full-width characters on one line of a phone's chat bubble
LARGE_WIDTH = 16.0  # the same for the larger sizes (a card's title)
LIMIT = 12  # lines a bubble may take


def _width(ch: str) -> float:
    return 1.0 if unicodedata.east_asian_width(ch) in ("F", "W") else 0.5


def text_lines(text: str, width: float = LINE_WIDTH) -> int:
    """Lines ``text`` takes where a line holds ``width`` full-width characters."""
    total = 0
    for line in (text or "").split("\n"):
        used = sum(_width(ch) for ch in line)
        total += max(1, math.ceil(used / width - 1e-9))
    return total


def _component_lines(node: dict, width: float) -> int:
    kind = node.get("type")
    if kind == "text":
        large = node.get("size") in ("lg", "xl", "xxl", "3xl", "4xl", "5xl")
        return text_lines(node.get("text", ""), width * (LARGE_WIDTH / LINE_WIDTH if large else 1))
    if kind == "button":
        return 1
    if kind == "box":
        children = node.get("contents") or []
        if node.get("layout") == "horizontal":
            shares = [child.get("flex", 1) or 1 for child in children]
            return max((_component_lines(c, width * s / sum(shares)) for c, s in zip(children, shares)), default=0)
        return sum(_component_lines(c, width) for c in children)
    return 0


def bubble_lines(bubble: dict) -> int:
    return sum(_component_lines(bubble[part], LINE_WIDTH) for part in ("header", "hero", "body", "footer")
               if isinstance(bubble.get(part), dict))


def bubbles(message: dict) -> list[tuple[int, str]]:
    """(lines, what it says) of each bubble of one LINE message."""
    if message.get("type") == "text":
        return [(text_lines(message["text"]), message["text"])]
    if message.get("type") == "flex":
        contents = message["contents"]
        found = contents["contents"] if contents.get("type") == "carousel" else [contents]
        return [(bubble_lines(b), message.get("altText", "")) for b in found]
    return []
