"""Free-text questions in the conversation: the knowledge base of the edition in force."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from dialogs import faq
from dialogs.edition import edition_in, edition_notice, editions_dir
from dialogs.engine import Context, Intent, Outcome
from dialogs.i18n import N_, _
from dialogs.messages import Choice, Message, Text


def knowledge_folder(ctx: Context) -> Path:
    """The folder of the edition in force when it has a knowledge base, else the newest one that has."""
    edition, _covers = edition_in(ctx)
    if edition.path is not None and (edition.path.parent / "faq.yaml").exists():
        return edition.path.parent
    with_kb = sorted(p.parent for p in editions_dir().glob("*/faq.yaml"))
    return with_kb[-1]


def answer_question(text: str, ctx: Context, inside_dialog: bool) -> Optional[list[Message]]:
    messages = faq.answer_question(text, ctx.locale, knowledge_folder(ctx), inside_dialog)
    if messages and not inside_dialog:
        edition, covers = edition_in(ctx)
        if not covers:  # say plainly which year's rules are quoted
            messages = [Text(edition_notice(edition, covers))] + messages
    return messages


def _popular(ctx: Context, text: str) -> Outcome:
    kb = faq.KnowledgeBase.load(knowledge_folder(ctx) / "faq.yaml")
    choices = tuple(Choice(t.title_in(ctx.locale), f"faq:{t.id}") for t in kb.popular)
    return Outcome([Text(_("Ask me in your own words, or tap a common question:"), choices)])


def _topic(ctx: Context, text: str) -> Outcome:
    return Outcome(answer_question(text, ctx, False) or [])


INTENTS = [
    Intent("faq", [N_("FAQ"), "常見問題", "faq", "問題"], _popular),
    Intent("faq_topic", [], _topic, pattern=r"faq:[a-z0-9_]+"),
]
DIALOGS: dict = {}
