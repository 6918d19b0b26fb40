"""The dialog engine: declarative step tables, one question at a time.

A `Dialog` is a table of `Step`s. The next question is derived from which
applicable fields are still missing (as in Rasa forms), so "back", "change X
from the summary" and "resume days later" are not special cases. Global
commands (cancel, back, menu, help) always win. After three refused answers
the program office's contact is offered. A free-text question in the middle
of a dialog is answered and the dialog asks its pending question again.

Nothing here imports Flask or LINE: `Conversation.handle` takes the user's
input and saved state and returns the next state and the messages to send.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Iterable, Optional, Sequence, Union

from dialogs.dates import now
from dialogs.edition import Edition
from dialogs.i18n import _, N_
from dialogs.messages import Card, Choice, Message, Text
from dialogs.repository import Repository, unknown_township_group
from dialogs.text import command_key, looks_like_question, tidy

MAX_REFUSALS = 3
BUTTON_VALUE = re.compile(r"[a-z_]+:[\w:.-]*")  # what a tapped button sends, e.g. "change:mobile"
NOT_SURE = "not_sure"

CANCEL_WORDS = {"取消", "cancel", "離開", "結束", "quit", "exit", "stop"}
BACK_WORDS = {"上一步", "back", "返回", "上一題", "previous"}
MENU_WORDS = {"主選單", "menu", "選單", "首頁", "home"}
HELP_WORDS = {"說明", "help", "幫助", "使用說明", "?", "？"}


class Refused(Exception):
    """An answer that a validator does not accept; the message says why.

    ``counts=False`` for answers that are not mistakes (e.g. "more" to page
    through buttons): they do not bring the offer of the program office closer.
    """

    def __init__(self, message: str, counts: bool = True):
        super().__init__(message)
        self.message = message
        self.counts = counts


@dataclass(frozen=True)
class Links:
    """Where the bot's links point and what signs them (from the configuration; see dialogs.letter_doc)."""

    public_url: str = ""
    secret_key: str = ""
    channel_secret: str = ""
    bot_basic_id: str = ""  # the account's @id, for the owners' invite link


@dataclass
class Context:
    """What a dialog may know: who is talking, their saved values, and what it may ask of the bot.

    ``repo`` is storage (None in tests of dialogs that need none); ``edition`` fixes the program
    edition (a test, a demo) instead of the case's or today's; ``clock`` is the bot's one clock.
    """

    user_id: str
    locale: str = "zh_TW"
    values: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # dialog-private (e.g. the case being joined)
    repo: Optional[Repository] = None
    edition: Optional[Edition] = None
    links: Links = field(default_factory=Links)
    clock: Callable[[], datetime] = now
    township_group: Callable[[str], Optional[int]] = unknown_township_group

    def get(self, name: str, default=None):
        return self.values.get(name, default)

    @property
    def repository(self) -> Repository:
        """The repository, for a dialog that cannot work without storage."""
        if self.repo is None:
            raise RuntimeError("this dialog needs storage: build its Context with repo=")
        return self.repo


Translatable = Union[str, Callable[[Context], str]]
ChoiceSpec = Union[Sequence[Choice], Callable[[Context], Sequence[Choice]], None]


def _resolve_text(spec: Translatable, ctx: Context) -> str:
    return spec(ctx) if callable(spec) else _(spec)


def accept_text(value: str, ctx: Context) -> str:
    """Any non-empty answer, trimmed."""
    if not value:
        raise Refused(_("Please type an answer."))
    return value


def one_of(words: dict[str, set[str]], refusal: str) -> Callable[[str, Context], str]:
    """A validator for a choice answered in words too: ``words`` maps each value to what people type.

    Tapped buttons (labels and values) are mapped by `Step.check` before this runs;
    ``refusal`` is a msgid, said when nothing matches.
    """
    def validate(value: str, ctx: Context) -> str:
        key = command_key(value)
        for result, said in words.items():
            if key in said:
                return result
        raise Refused(_(refusal))
    return validate


def always(ctx: Context) -> bool:
    return True


@dataclass
class Step:
    """One question of a dialog: the field it fills, how to ask, how to check."""

    field: str
    question: Translatable
    validate: Callable[[str, Context], object] = accept_text
    choices: ChoiceSpec = None
    when: Callable[[Context], bool] = always
    not_sure: bool = False  # offer "not sure" (stored as NOT_SURE)
    label: Translatable = ""  # the field's name on the summary card
    display: Optional[Callable[[object, Context], str]] = None  # how a stored value is shown

    def choice_list(self, ctx: Context) -> list[Choice]:
        spec = self.choices(ctx) if callable(self.choices) else (self.choices or ())
        options = [Choice(_(c.label), c.value) for c in spec]
        if self.not_sure:
            options.append(Choice(_("Not sure"), NOT_SURE))
        return options

    def check(self, raw: str, ctx: Context) -> object:
        """Maps a tapped or typed choice to its value, then validates."""
        options = self.choice_list(ctx)
        if options:
            key = command_key(raw)
            for option in options:
                if key in (command_key(option.label), command_key(option.value)):
                    if option.value == NOT_SURE:
                        return NOT_SURE
                    raw = option.value
                    break
            if self.not_sure and key in {"不確定", "不知道", "notsure", "不清楚", "dontknow", "idontknow"}:
                return NOT_SURE
        return self.validate(raw, ctx)

    def shown(self, value: object, ctx: Context) -> str:
        if value == NOT_SURE:
            return _("Not sure")
        if self.display:
            return self.display(value, ctx)
        for option in self.choice_list(ctx):
            if option.value == value:
                return option.label
        return str(value)


@dataclass
class Dialog:
    """A declared conversation: its steps and what happens when they are all answered."""

    name: str
    steps: list[Step]
    finish: Callable[[Context], "Outcome"]
    intro: Optional[Callable[[Context], list[Message]]] = None
    summary_title: Translatable = ""  # set: show a summary card with "change" before finishing
    ttl_seconds: int = 30 * 24 * 3600

    def applicable(self, ctx: Context) -> list[Step]:
        return [s for s in self.steps if s.when(ctx)]

    def next_step(self, ctx: Context) -> Optional[Step]:
        for step in self.applicable(ctx):
            if step.field not in ctx.values:
                return step
        return None

    def step(self, name: str) -> Step:
        for step in self.steps:
            if step.field == name:
                return step
        raise KeyError(name)


@dataclass
class Outcome:
    """What a dialog's finish (or an intent) returns: messages, and what comes next."""

    messages: list[Message] = field(default_factory=list)
    start: Optional[str] = None  # a dialog to start next
    data: Optional[dict] = None  # its private data
    keep_values: bool = False  # finish did not end the dialog (e.g. a refused submission)


@dataclass
class Intent:
    """A top-level entry point: phrases that trigger it, and what it does."""

    name: str
    phrases: Iterable[str]  # msgids in English and their zh_TW forms are both matched
    action: Callable[[Context, str], Outcome]
    pattern: Optional[str] = None  # a regular expression over the tidied text (e.g. an invite code)
    anywhere: bool = False  # also inside a dialog, which then asks its pending question again

    def matches(self, text: str) -> bool:
        if self.pattern and re.fullmatch(self.pattern, tidy(text), flags=re.IGNORECASE):
            return True
        key = command_key(text)
        for phrase in self.phrases:
            if key == command_key(phrase) or key == command_key(_(phrase)):
                return True
        return False


def empty_state() -> dict:
    return {"dialog": None, "values": {}, "history": [], "attempts": 0, "phase": None, "data": {}}


class Conversation:
    """Routes one input through global commands, the active dialog, intents and questions."""

    def __init__(
        self,
        dialogs: dict[str, Dialog],
        intents: list[Intent],
        answer_question: Callable[[str, Context, bool], Optional[list[Message]]],
        menu: Callable[[Context], list[Message]],
        help_text: Callable[[Context], list[Message]],
        contact: Callable[[Context], list[Message]],
        menu_choices: Callable[[Context], list[Choice]],
    ):
        self.dialogs = dialogs
        self.intents = intents
        self.answer_question = answer_question
        self.menu = menu
        self.help_text = help_text
        self.contact = contact
        self.menu_choices = menu_choices

    # -- entry point -------------------------------------------------------
    def handle(self, state: Optional[dict], text: str, ctx: Context) -> tuple[dict, list[Message]]:
        state = dict(state or empty_state())
        text = tidy(text)  # validators normalise further (台→臺 where it is a place)
        key = command_key(text)
        active = self.dialogs.get(state.get("dialog") or "")
        if active:
            ctx.values = dict(state.get("values") or {})
            ctx.data = dict(state.get("data") or {})
        if key in CANCEL_WORDS:
            return self._cancel(state, active, ctx)
        if key in MENU_WORDS:
            return empty_state(), self._with_menu(self.menu(ctx), ctx)
        if key in HELP_WORDS:
            messages = self.help_text(ctx)
            if active:
                messages += self._ask(active, state, ctx)
            return state, messages if active else self._with_menu(messages, ctx)
        if active:
            if key in BACK_WORDS:
                return self._back(active, state, ctx)
            for intent in self.intents:
                if intent.anywhere and intent.matches(text):
                    outcome = intent.action(ctx, text)
                    return state, list(outcome.messages) + self._ask(active, state, ctx, again=True)
            return self._in_dialog(active, state, text, ctx)
        return self._outside(text, ctx)

    # -- outside any dialog -------------------------------------------------
    def _outside(self, text: str, ctx: Context) -> tuple[dict, list[Message]]:
        for intent in self.intents:
            if intent.matches(text):
                return self._apply(empty_state(), intent.action(ctx, text), ctx)
        answer = self.answer_question(text, ctx, False)
        return empty_state(), self._with_menu(answer or [], ctx)

    def _apply(self, state: dict, outcome: Outcome, ctx: Context) -> tuple[dict, list[Message]]:
        messages = list(outcome.messages)
        if outcome.start:
            state, started = self.start(outcome.start, ctx, outcome.data or {})
            return state, messages + started
        return empty_state(), self._with_menu(messages, ctx)

    def start(self, name: str, ctx: Context, data: Optional[dict] = None) -> tuple[dict, list[Message]]:
        """Begins dialog ``name`` and asks its first question."""
        dialog = self.dialogs[name]
        state = empty_state()
        state.update(dialog=name, data=dict(data or {}), phase="asking")
        ctx.values, ctx.data = {}, state["data"]
        messages = dialog.intro(ctx) if dialog.intro else []
        state["data"] = ctx.data
        return state, messages + self._ask(dialog, state, ctx)

    # -- inside a dialog ------------------------------------------------------
    def _in_dialog(self, dialog: Dialog, state: dict, text: str, ctx: Context):
        if state.get("phase") == "summary":
            return self._on_summary(dialog, state, text, ctx)
        step = dialog.next_step(ctx)
        if step is None:  # all answered (e.g. resumed after a change in the table)
            return self._summary_or_finish(dialog, state, ctx)
        if looks_like_question(text) and not step.choice_list(ctx):
            answer = self.answer_question(text, ctx, True)
            if answer:
                return state, answer + self._ask(dialog, state, ctx, again=True)
        try:
            value = step.check(text, ctx)
        except Refused as refusal:
            answer = None if BUTTON_VALUE.fullmatch(text) else self.answer_question(text, ctx, True)
            if answer:
                return state, answer + self._ask(dialog, state, ctx, again=True)
            return self._refuse(dialog, state, refusal, ctx)
        ctx.values[step.field] = value
        state["values"] = ctx.values
        state["history"] = [f for f in state.get("history", []) if f != step.field] + [step.field]
        state["attempts"] = 0
        state["data"] = ctx.data
        if state.get("editing"):
            state.pop("editing")
            if dialog.next_step(ctx) is None:
                return self._summary_or_finish(dialog, state, ctx)
        if dialog.next_step(ctx) is None:
            return self._summary_or_finish(dialog, state, ctx)
        return state, self._ask(dialog, state, ctx)

    def _refuse(self, dialog: Dialog, state: dict, refusal: Refused, ctx: Context):
        state["data"] = ctx.data  # a validator may keep paging state there
        if not refusal.counts:
            return state, [Text(refusal.message)] + self._ask(dialog, state, ctx, again=True)
        state["attempts"] = int(state.get("attempts", 0)) + 1
        messages: list[Message] = [Text(refusal.message)]
        if state["attempts"] >= MAX_REFUSALS:
            messages += self.contact(ctx)
            state["attempts"] = 0
        return state, messages + self._ask(dialog, state, ctx, again=True)

    def _back(self, dialog: Dialog, state: dict, ctx: Context):
        history = list(state.get("history") or [])
        applicable = {s.field for s in dialog.applicable(ctx)}
        while history:
            field_name = history.pop()
            ctx.values.pop(field_name, None)
            if field_name in applicable:
                break
        else:
            if not state.get("values"):
                return state, [Text(_("This is the first question."))] + self._ask(dialog, state, ctx)
        state.update(values=ctx.values, history=history, phase="asking", attempts=0)
        state.pop("editing", None)
        return state, self._ask(dialog, state, ctx)

    def _cancel(self, state: dict, dialog: Optional[Dialog], ctx: Context):
        if dialog is None:
            return empty_state(), self._with_menu([Text(_("Nothing to cancel."))], ctx)
        return empty_state(), self._with_menu([Text(_("Cancelled. Nothing was saved."))], ctx)

    def _ask(self, dialog: Dialog, state: dict, ctx: Context, again: bool = False) -> list[Message]:
        if state.get("phase") == "summary":
            return self._summary_card(dialog, ctx)
        step = dialog.next_step(ctx)
        if step is None:
            return []
        question = _resolve_text(step.question, ctx)
        return [Text(question, tuple(step.choice_list(ctx)))]

    # -- summary and finish ----------------------------------------------------
    def _summary_or_finish(self, dialog: Dialog, state: dict, ctx: Context):
        if dialog.summary_title:
            state["phase"] = "summary"
            return state, self._summary_card(dialog, ctx)
        return self._finish(dialog, state, ctx)

    def _summary_card(self, dialog: Dialog, ctx: Context) -> list[Message]:
        rows, row_actions = [], []
        for step in dialog.applicable(ctx):
            if step.field not in ctx.values:
                continue
            label = _resolve_text(step.label or step.field, ctx)
            rows.append((label, step.shown(ctx.values[step.field], ctx)))
            row_actions.append(Choice(_("Change"), f"change:{step.field}"))
        actions = (Choice(_("Confirm and send"), "confirm"), Choice(_("Cancel"), "cancel"))
        return [Card(
            title=_resolve_text(dialog.summary_title, ctx),
            rows=tuple(rows),
            actions=actions,
            row_actions=tuple(row_actions),
            footer=_("Tap Change beside a field to correct it."),
        )]

    def _on_summary(self, dialog: Dialog, state: dict, text: str, ctx: Context):
        key = command_key(text)
        if key.startswith("change:") or key.startswith("修改"):
            wanted = key.split(":", 1)[1] if ":" in key else key[2:]
            step = self._find_step(dialog, wanted, ctx)
            if step is None:
                return state, [Text(_("Which field? Tap Change beside it."))] + self._summary_card(dialog, ctx)
            ctx.values.pop(step.field, None)
            state.update(values=ctx.values, phase="asking", editing=True)
            return state, self._ask(dialog, state, ctx)
        if key in {"confirm", "確認", "確認送出", "送出", command_key(_("Confirm and send"))}:
            return self._finish(dialog, state, ctx)
        return state, [Text(_("Please confirm, or tap Change beside a field."))] + self._summary_card(dialog, ctx)

    def _find_step(self, dialog: Dialog, wanted: str, ctx: Context) -> Optional[Step]:
        for step in dialog.applicable(ctx):
            names = {command_key(step.field), command_key(_resolve_text(step.label or step.field, ctx))}
            if wanted in names:
                return step
        return None

    def _finish(self, dialog: Dialog, state: dict, ctx: Context):
        applicable = {s.field for s in dialog.applicable(ctx)}
        ctx.values = {k: v for k, v in ctx.values.items() if k in applicable}
        outcome = dialog.finish(ctx)
        if outcome.keep_values:
            state.update(values=ctx.values, data=ctx.data)
            return state, list(outcome.messages) + self._ask(dialog, state, ctx)
        return self._apply(empty_state(), outcome, ctx)

    def _with_menu(self, messages: list[Message], ctx: Context) -> list[Message]:
        """Puts the menu entries as buttons under the last text that has none."""
        if messages and isinstance(messages[-1], Text) and not messages[-1].choices:
            last = messages[-1]
            return messages[:-1] + [Text(last.text, tuple(self.menu_choices(ctx)))]
        return messages
