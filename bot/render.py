"""Renders the bot's own messages (dialogs.messages) as LINE messages, within LINE's limits.

Limits kept here: at most 5 messages per call (texts are merged to fit), text at
most 5,000 UTF-16 units (longer texts are split), quick reply at most 13 items
with labels of at most 20 characters, postback data at most 300, altText at
most 1,500, a Flex bubble well under 30 KB, a carousel of at most 12 bubbles and 50 KB.
"""
from __future__ import annotations

import json
from typing import Sequence

from linebot.v3.messaging import (
    FlexBox,
    FlexBubble,
    FlexButton,
    FlexCarousel,
    FlexMessage,
    FlexSeparator,
    FlexText,
    ImageMessage,
    PostbackAction,
    QuickReply,
    QuickReplyItem,
    TextMessage,
    URIAction,
)

from dialogs.cards import phone_lines
from dialogs.messages import Card, Carousel, Choice, Image, Link, Message, Text

MAX_MESSAGES = 5
MAX_TEXT_UNITS = 5000
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_BUTTON_LABEL = 40
MAX_DATA = 300
MAX_ALT = 1500
MAX_BUBBLE_BYTES = 30_000
MAX_BUBBLES = 12
MAX_CAROUSEL_BYTES = 50_000


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def clip(text: str, limit: int) -> str:
    """Shortens text to ``limit`` UTF-16 units, ending with … when cut."""
    if utf16_units(text) <= limit:
        return text
    out = ""
    for ch in text:
        if utf16_units(out + ch) > limit - 1:
            break
        out += ch
    return out + "…"


def split_text(text: str, limit: int = MAX_TEXT_UNITS) -> list[str]:
    """Splits a long text at line breaks where possible, each part within ``limit``."""
    parts, current = [], ""
    for line in text.splitlines(keepends=True):
        while utf16_units(line) > limit:
            head = clip(line, limit)[:-1]
            parts.append(current + head if not current else current)
            current = "" if not current else head
            line = line[len(head):]
        if utf16_units(current + line) > limit:
            parts.append(current)
            current = line
        else:
            current += line
    if current or not parts:
        parts.append(current)
    return [p for p in parts if p] or [""]


def postback(choice: Choice, label_limit: int) -> PostbackAction:
    return PostbackAction(label=clip(choice.label, label_limit), data=clip(choice.value, MAX_DATA),
                          display_text=clip(choice.label, 300))


def quick_reply(choices: Sequence[Choice]):
    if not choices:
        return None
    return QuickReply(items=[QuickReplyItem(action=postback(c, MAX_LABEL)) for c in choices[:MAX_QUICK_REPLIES]])


def fit(messages: Sequence[Message]) -> list[Message]:
    """Merges consecutive plain texts so that at most 5 messages remain: the pair shortest together first, so
    that the merged texts stay as short on a phone as they can (dialogs.cards)."""
    items = list(messages)
    while len(items) > MAX_MESSAGES:
        pairs = [i for i in range(len(items) - 1)
                 if isinstance(items[i], Text) and isinstance(items[i + 1], Text) and not items[i].choices]
        if not pairs:
            return items[:MAX_MESSAGES - 1] + [items[-1]]
        i = min(pairs, key=lambda i: phone_lines(items[i].text + "\n\n" + items[i + 1].text))
        items[i:i + 2] = [Text(items[i].text + "\n\n" + items[i + 1].text, items[i + 1].choices)]
    return items


def render(messages: Sequence[Message]) -> list:
    """The LINE message objects for one answer (at most 5)."""
    out = []
    for message in fit(messages):
        out.extend(render_one(message))
    if len(out) > MAX_MESSAGES:  # long texts were split: keep the end, which carries the buttons
        out = out[: MAX_MESSAGES - 1] + [out[-1]]
    return out


def render_json(messages: Sequence[Message]) -> list[dict]:
    """The same answer as LINE's JSON: equal to ``[m.to_dict() for m in render(messages)]``.

    Texts, nearly every answer, are written as dicts directly: building the SDK's pydantic
    models and turning them back into dicts cost more than the rest of an answer. Cards,
    carousels, links and images go through the models.
    """
    out: list[dict] = []
    for message in fit(messages):
        if isinstance(message, Text):
            out.extend(_text_json(message))
        else:
            out.extend(m.to_dict() for m in render_one(message))
    if len(out) > MAX_MESSAGES:  # as render(): keep the end, which carries the buttons
        out = out[: MAX_MESSAGES - 1] + [out[-1]]
    return out


def _text_json(message: Text) -> list[dict]:
    rendered = [{"type": "text", "text": part} for part in split_text(message.text)]
    if message.choices:
        rendered[-1]["quickReply"] = {"items": [
            {"type": "action", "action": {"type": "postback", "label": clip(c.label, MAX_LABEL),
                                          "data": clip(c.value, MAX_DATA), "displayText": clip(c.label, 300)}}
            for c in message.choices[:MAX_QUICK_REPLIES]]}
    return rendered


def render_one(message: Message) -> list:
    if isinstance(message, Text):
        parts = split_text(message.text)
        rendered = [TextMessage(text=p) for p in parts[:-1]]
        rendered.append(TextMessage(text=parts[-1], quick_reply=quick_reply(message.choices)))
        return rendered
    if isinstance(message, Card):
        return [card_flex(message)]
    if isinstance(message, Carousel):
        return [carousel_flex(message)]
    if isinstance(message, Link):
        return [link_flex(message)]
    if isinstance(message, Image):
        return [ImageMessage(original_content_url=message.url, preview_image_url=message.preview_url or message.url)]
    raise TypeError(f"cannot render {message!r}")


def _text(text: str, **kw) -> FlexText:
    return FlexText(text=text or " ", wrap=True, **kw)


def card_bubble(card: Card) -> FlexBubble:
    rows = []
    for i, (label, value) in enumerate(card.rows):
        action = card.row_actions[i] if i < len(card.row_actions) else None
        contents = [_text(label, size="xs", color="#888888"), _text(clip(str(value), 1000), size="sm")]
        row = FlexBox(layout="vertical", contents=contents, flex=5)
        if action:
            button = FlexButton(action=postback(action, MAX_BUTTON_LABEL), style="link", height="sm", flex=2)
            row = FlexBox(layout="horizontal", contents=[row, button], spacing="sm")
        rows.append(row)
    body = FlexBox(layout="vertical", spacing="md",
                   contents=[_text(card.title, weight="bold", size="lg"), FlexSeparator()] + rows
                   + ([_text(card.footer, size="xs", color="#888888")] if card.footer else []))
    footer = None
    if card.actions:
        footer = FlexBox(layout="vertical", spacing="sm", contents=[
            FlexButton(action=postback(a, MAX_BUTTON_LABEL), style="primary" if i == 0 else "secondary", height="sm")
            for i, a in enumerate(card.actions)])
    return FlexBubble(body=body, footer=footer)


def _card_alt(card: Card) -> str:
    return card.title + "\n" + "\n".join(f"{k}: {v}" for k, v in card.rows)


def _json_bytes(node) -> int:
    return len(json.dumps(node.to_dict(), ensure_ascii=False, separators=(",", ":")).encode())


def card_flex(card: Card) -> FlexMessage:
    bubble = card_bubble(card)
    alt = clip(_card_alt(card), MAX_ALT)
    if len(json.dumps(bubble.to_dict(), ensure_ascii=False).encode()) > MAX_BUBBLE_BYTES:
        return TextMessage(text=clip(alt, MAX_TEXT_UNITS))
    return FlexMessage(alt_text=alt, contents=bubble)


def carousel_flex(carousel: Carousel):
    """At most 12 bubbles and 50 KB: bubbles too large alone are left out, then the last ones until it fits."""
    cards = [c for c in carousel.cards[:MAX_BUBBLES]]
    bubbles = [(c, card_bubble(c)) for c in cards]
    bubbles = [(c, b) for c, b in bubbles if _json_bytes(b) <= MAX_BUBBLE_BYTES]
    while len(bubbles) > 1 and _json_bytes(FlexCarousel(contents=[b for _c, b in bubbles])) > MAX_CAROUSEL_BYTES:
        bubbles.pop()
    alt = carousel.alt or "\n\n".join(_card_alt(c) for c in cards)
    if not bubbles:
        return TextMessage(text=clip(alt, MAX_TEXT_UNITS))
    return FlexMessage(alt_text=clip(alt, MAX_ALT), contents=FlexCarousel(contents=[b for _c, b in bubbles]))


def link_flex(link: Link) -> FlexMessage:
    bubble = FlexBubble(
        body=FlexBox(layout="vertical", contents=[_text(clip(link.text, 2000))]),
        footer=FlexBox(layout="vertical", contents=[
            FlexButton(action=URIAction(label=clip(link.label, MAX_BUTTON_LABEL), uri=link.url), style="primary")]))
    return FlexMessage(alt_text=clip(link.text, MAX_ALT), contents=bubble)

