"""The bot's own small message vocabulary.

Dialogs speak in these; `bot.render` turns them into LINE messages and
`bot.console` into terminal text. Nothing here knows about LINE or Flask.
Texts are already translated (dialogs call ``_()`` in the user's locale).
"""
from __future__ import annotations

from dataclasses import dataclass, field, asdict
from typing import Union


@dataclass(frozen=True)
class Choice:
    """One button: ``label`` is shown, ``value`` is what the dialog receives when tapped."""

    label: str
    value: str = ""

    def __post_init__(self):
        if not self.value:
            object.__setattr__(self, "value", self.label)


@dataclass(frozen=True)
class Text:
    """A plain text message, optionally followed by buttons (quick replies)."""

    text: str
    choices: tuple[Choice, ...] = ()
    kind: str = field(default="text", init=False)


@dataclass(frozen=True)
class Card:
    """A summary card: a title, rows of (label, value), and action buttons.

    Rows with an ``action`` (a Choice) get a "change" style button beside them.
    """

    title: str
    rows: tuple[tuple[str, str], ...] = ()
    actions: tuple[Choice, ...] = ()
    row_actions: tuple[Union[Choice, None], ...] = ()
    footer: str = ""
    kind: str = field(default="card", init=False)


@dataclass(frozen=True)
class Link:
    """A sentence with one link button (a URL the user opens)."""

    text: str
    label: str
    url: str
    kind: str = field(default="link", init=False)


@dataclass(frozen=True)
class Image:
    """An image by URL (for example an invite QR code)."""

    url: str
    preview_url: str = ""
    alt: str = ""
    kind: str = field(default="image", init=False)


@dataclass(frozen=True)
class Carousel:
    """Cards side by side (a LINE Flex carousel: at most 12 per message, the renderer keeps it under 50 KB)."""

    cards: tuple[Card, ...]
    alt: str = ""
    kind: str = field(default="carousel", init=False)


Message = Union[Text, Card, Link, Image, Carousel]


def to_dict(message: Message) -> dict:
    """Serialises a message for the outbox (JSON-safe)."""
    return asdict(message)


def from_dict(data: dict) -> Message:
    """Reads back a message written by `to_dict`."""
    data = dict(data)
    kind = data.pop("kind")
    if kind == "text":
        return Text(data["text"], tuple(Choice(**c) for c in data.get("choices", ())))
    if kind == "carousel":
        return Carousel(tuple(from_dict(c) for c in data.get("cards", ())), data.get("alt", ""))
    if kind == "card":
        return Card(
            title=data["title"],
            rows=tuple(tuple(r) for r in data.get("rows", ())),
            actions=tuple(Choice(**c) for c in data.get("actions", ())),
            row_actions=tuple(Choice(**c) if c else None for c in data.get("row_actions", ())),
            footer=data.get("footer", ""),
        )
    if kind == "link":
        return Link(data["text"], data["label"], data["url"])
    if kind == "image":
        return Image(data["url"], data.get("preview_url", ""), data.get("alt", ""))
    raise ValueError(f"unknown message kind {kind!r}")
