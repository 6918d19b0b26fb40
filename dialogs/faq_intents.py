"""Free-text questions in the conversation: the knowledge base of the edition in force."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from dialogs import faq
from dialogs.edition import edition_in, edition_notice, editions_dir
from dialogs.engine import Context, Intent, Outcome
from dialogs.i18n import N_, _
from dialogs.messages import Choice, Message, Text
from dialogs.notices import notice_due


def knowledge_folder(ctx: Context) -> Path:
    """The folder of the edition in force when it has a knowledge base, else the newest one that has."""
    edition, _covers = edition_in(ctx)
    if edition.path is not None and (edition.path.parent / "faq.yaml").exists():
        return edition.path.parent
    return folders_with_knowledge()[-1]


def folders_with_knowledge() -> list[Path]:
    """The edition folders that hold a knowledge base (faq.yaml), oldest edition first."""
    return sorted(p.parent for p in editions_dir().glob("*/faq.yaml"))


def load_knowledge_bases() -> int:
    """Builds every edition's knowledge base now (a worker's start-up): the first question is answered without
    the 1-2 s of building one, and what it builds is frozen with the rest of start-up (bot/heap.py)."""
    folders = folders_with_knowledge()
    for folder in folders:
        faq.KnowledgeBase.load(folder)
    return len(folders)


def answer_question(text: str, ctx: Context, inside_dialog: bool) -> Optional[list[Message]]:
    messages = faq.answer_question(text, ctx.locale, knowledge_folder(ctx), inside_dialog)
    if messages and not inside_dialog:
        edition, covers = edition_in(ctx)
        if not covers and notice_due(ctx):  # say plainly which year's rules are quoted, once a day
            messages = [Text(edition_notice(edition, covers))] + messages
    return messages


def _popular(ctx: Context, text: str) -> Outcome:
    kb = faq.KnowledgeBase.load(knowledge_folder(ctx) / "faq.yaml")
    choices = tuple(Choice(t.title_in(ctx.locale), f"faq:{t.id}") for t in kb.popular)
    return Outcome([Text(_("Ask me in your own words, or tap a common question:"), choices)])


def _topic(ctx: Context, text: str) -> Outcome:
    return Outcome(answer_question(text, ctx, False) or [])


# Small talk said in a few words, answered from its knowledge-base topic wherever it is said (inside a
# dialog too, which then asks its question again); longer variants reach the knowledge base as questions.
SMALL_TALK = {
    "chat_thanks": ("謝謝", "謝謝你", "謝謝您", "感謝", "感恩", "多謝", "謝啦", "謝了", "thanks", "thank you", "thx"),
    "chat_human": ("你是真人嗎", "你是機器人嗎", "是真人嗎", "真人嗎", "你是人嗎", "are you human", "are you a bot"),
    "chat_bye": ("再見", "掰掰", "拜拜", "bye", "goodbye"),
}


def _small_talk(ctx: Context, text: str) -> Outcome:
    from dialogs.text import command_key

    kb = faq.KnowledgeBase.load(knowledge_folder(ctx) / "faq.yaml")
    key = command_key(text)
    for topic_id, phrases in SMALL_TALK.items():
        if key in {command_key(p) for p in phrases} and kb.topic(topic_id) is not None:
            return Outcome(faq.topic_messages(kb.topic(topic_id), ctx.locale))
    return Outcome(answer_question(text, ctx, False) or [])


INTENTS = [
    Intent("small_talk", [p for phrases in SMALL_TALK.values() for p in phrases], _small_talk, anywhere=True),
    Intent("faq", [N_("FAQ"), "常見問題", "faq", "問題"], _popular),
    Intent("faq_topic", [], _topic, pattern=r"faq:[a-z0-9_]+"),
]
DIALOGS: dict = {}
