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
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, Optional, Sequence, Union

from dialogs.cards import PHONE_LINES, card_lines, fitted
from dialogs.dates import now
from dialogs.edition import Edition
from dialogs.i18n import _, N_, current_locale
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
RESUME_WORDS = {"繼續填寫", "繼續", "resume", "continue", "接續", "接著填", "繼續作答", "continuefillingin"}
RESUME = "resume"  # what the "go on" button sends
KEEP_ANSWER, NOT_ANSWER = "keep_answer", "not_answer"  # "was that your answer?"
DISCARD, KEEP_DRAFT = "discard", "keep_draft"  # "discard your answers?"
SHOW_SUMMARY = "summary"
SHOW_ALL = "summary_all"  # the summary's "all fields" button
_SUMMARY_BUTTONS = {"confirm", SHOW_SUMMARY, SHOW_ALL}  # what the summary's buttons send
MAX_PAUSED = 3  # drafts kept aside while the person does something else

# How people say yes or no to the two confirmations, besides tapping.
_KEEP_WORDS = {KEEP_ANSWER, "是", "對", "對的", "是的", "yes", "y", "沒錯", "保留", "就是這個", "keepit"}
_NOT_WORDS = {NOT_ANSWER, "不是", "否", "no", "n", "不對", "重新回答", "重填"}
_DISCARD_WORDS = {DISCARD, "確定", "確定取消", "放棄", "丟棄", "yes", "是", "確定放棄", "discardit"}
_KEEP_DRAFT_WORDS = {KEEP_DRAFT, "不要", "不", "否", "no", "繼續填寫", "繼續", "留著", "保留", "keepfilling"}

# Kinds of input at a step (see `classify`).
ANSWER, QUESTION, MAYBE_QUESTION, GLOBAL, SMALL_TALK = "answer", "question", "maybe_question", "global", "small_talk"

_QUESTION_END = re.compile(r"(?:[?？]|[嗎呢]|怎麼辦|是什麼|什麼意思)[\s。.!！~～]*$")
_QUESTION_START = re.compile(r"^(?:請問|想問|問一下|要怎麼|怎麼|如何|為什麼|是不是)")


def is_plain_question(text: str) -> bool:
    """True for text that is plainly a question ("這裡要寫什麼？", "請問聯絡人要填誰"), not an answer."""
    text = (text or "").strip()
    return bool(_QUESTION_END.search(text) or _QUESTION_START.search(text))


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
    drafts: list = field(default_factory=list)  # (what, answers, expires) of drafts the chat keeps (for 我的資料)
    seen: dict = field(default_factory=dict)  # notices already said, by key: the day (kept in the state)
    effects: list = field(default_factory=list)  # what the bot layer does besides answering: ("rich_menu", role)

    def once_a_day(self, key: str, day: str) -> bool:
        """True the first time ``key`` is asked about on ``day`` (then remembered with the state)."""
        if self.seen.get(key) == day:
            return False
        self.seen[key] = day
        return True

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
    ttl_seconds: int = 30 * 24 * 3600  # a draft left alone this long is dropped (the state says when)
    title: Translatable = ""  # what the person is doing, for "I kept your answers to …"
    after_cancel: Optional[Callable[[Context], list[Message]]] = None  # what stays after a discarded draft
    # the summary when every field does not fit a phone: (label, value, field its "change" asks, or None)
    key_figures: Optional[Callable[[Context], list[tuple[str, str, Optional[str]]]]] = None

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
    forget_drafts: bool = False  # the person's data is gone: drop every kept draft too


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


def empty_state(paused: Optional[list] = None) -> dict:
    state = {"dialog": None, "values": {}, "history": [], "attempts": 0, "phase": None, "data": {}}
    if paused:
        state["paused"] = list(paused)
    return state


def classify(text: str, step: Step, ctx: Context, intents: Sequence[Intent] = ()) -> str:
    """What an input at ``step`` is, before it may fill the step's field.

    GLOBAL: a menu entry, a postback or a command of the conversation (it pauses the dialog);
    SMALL_TALK: an intent answered where it is asked (the dialog then asks again);
    QUESTION: plainly a question (ends in ？/嗎/呢, starts with 請問/怎麼 …);
    MAYBE_QUESTION: has a question word inside ("幾米咖啡館"): kept only after one tap;
    ANSWER: everything else, for the step's validator to judge.
    A tapped or typed button of the step itself is always an answer.
    """
    key = command_key(text)
    for option in step.choice_list(ctx):
        if key in (command_key(option.label), command_key(option.value)):
            return ANSWER
    for intent in intents:
        if intent.matches(text):
            return SMALL_TALK if intent.anywhere else GLOBAL
    if BUTTON_VALUE.fullmatch(text):
        return ANSWER  # an old button of this dialog: its validator says why it does not fit
    if is_plain_question(text):
        return QUESTION
    if looks_like_question(text):
        return MAYBE_QUESTION
    return ANSWER


def _list(items: Sequence[str]) -> str:
    return (", " if current_locale() == "en" else "、").join(items)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _expired(snapshot: dict, dialog: Optional[Dialog]) -> bool:
    """True when a kept draft is older than its dialog's time to live."""
    touched = snapshot.get("touched")
    if dialog is None or not touched:
        return dialog is None and bool(snapshot.get("dialog"))
    try:
        when = datetime.fromisoformat(touched)
    except ValueError:
        return False
    return _now() - when > timedelta(seconds=dialog.ttl_seconds)


def draft_expiry(state: Optional[dict], dialogs: dict[str, Dialog]) -> list[tuple[str, datetime, dict]]:
    """(dialog name, when it expires, its values) of every draft in a saved state (for reminders)."""
    found = []
    for snapshot in [state or {}] + list((state or {}).get("paused") or []):
        dialog = dialogs.get(snapshot.get("dialog") or "")
        if dialog is None or not snapshot.get("values") or not snapshot.get("touched"):
            continue
        expires = datetime.fromisoformat(snapshot["touched"]) + timedelta(seconds=dialog.ttl_seconds)
        found.append((dialog.name, expires, dict(snapshot.get("data") or {})))
    return found


_SNAPSHOT_KEYS = ("dialog", "values", "history", "phase", "data", "editing", "before_edit", "touched")


class Conversation:
    """Routes one input through global commands, the active dialog, intents and questions.

    A dialog is never lost by navigation: the menu, a menu entry or another feature puts it
    aside (``state["paused"]``, newest last) and 繼續填寫 brings it back at the same step;
    取消 asks before it throws answers away.
    """

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
        state, dropped = self._load(state)
        ctx.drafts = [(self._title(self.dialogs[name], ctx), count, expires)
                      for name, expires, count in self._draft_list(state)]
        text = tidy(text)  # validators normalise further (台→臺 where it is a place)
        key = command_key(text)
        active = self.dialogs.get(state.get("dialog") or "")
        if active:
            ctx.values = dict(state.get("values") or {})
            ctx.data = dict(state.get("data") or {})
        ctx.seen = dict(state.get("seen") or {})
        state, messages = self._route(state, active, text, key, ctx)
        if ctx.seen:
            state["seen"] = ctx.seen
        if dropped:
            messages = [Text(_("Your unfinished answers were kept for {days} days and have now expired; "
                               "please start again.").format(days=dropped))] + messages
        return self._touch(state), messages

    def _route(self, state: dict, active: Optional[Dialog], text: str, key: str, ctx: Context):
        pending = state.pop("pending", None)
        if pending and active:
            handled = self._on_pending(pending, active, state, text, key, ctx)
            if handled is not None:
                return handled
        if key in CANCEL_WORDS:
            return self._cancel(state, active, ctx)
        if key in MENU_WORDS:
            return self._pause(state, active, ctx, self.menu(ctx))
        if key in HELP_WORDS:
            messages = self.help_text(ctx)
            if active:
                return state, messages + self._ask(active, state, ctx)
            return state, self._with_menu(messages, ctx, state)
        if key in RESUME_WORDS and not active:
            return self._resume(state, ctx)
        if active:
            if key in BACK_WORDS:
                return self._back(active, state, ctx)
            return self._in_dialog(active, state, text, ctx)
        return self._outside(state, text, ctx)

    # -- the saved state ------------------------------------------------------
    def _load(self, state: Optional[dict]) -> tuple[dict, int]:
        """The state with expired drafts dropped; how many days they were kept (0: none dropped)."""
        state = dict(state or empty_state())
        dropped = 0
        active = self.dialogs.get(state.get("dialog") or "")
        if state.get("dialog") and _expired(state, active):
            dropped = active.ttl_seconds // 86400 if active else 0
            state = empty_state(state.get("paused"))
        kept = []
        for snapshot in state.get("paused") or []:
            dialog = self.dialogs.get(snapshot.get("dialog") or "")
            if _expired(snapshot, dialog):
                dropped = dropped or (dialog.ttl_seconds // 86400 if dialog else 0)
            else:
                kept.append(snapshot)
        if kept:
            state["paused"] = kept
        else:
            state.pop("paused", None)
        return state, dropped

    def _draft_list(self, state: dict) -> list[tuple[str, datetime, int]]:
        found = []
        for snapshot in [state] + self._paused(state):
            dialog = self.dialogs.get(snapshot.get("dialog") or "")
            if dialog is not None and snapshot.get("values") and snapshot.get("touched"):
                expires = datetime.fromisoformat(snapshot["touched"]) + timedelta(seconds=dialog.ttl_seconds)
                found.append((dialog.name, expires, len(snapshot["values"])))
        return found

    def _touch(self, state: dict) -> dict:
        if state.get("dialog"):
            state["touched"] = _now().isoformat(timespec="seconds")
        else:
            state.pop("touched", None)
        return state

    def _snapshot(self, state: dict) -> dict:
        snapshot = {k: state[k] for k in _SNAPSHOT_KEYS if k in state}
        snapshot["touched"] = _now().isoformat(timespec="seconds")
        return snapshot

    def _paused(self, state: dict) -> list[dict]:
        return list(state.get("paused") or [])

    def _title(self, dialog: Dialog, ctx: Context) -> str:
        return _resolve_text(dialog.title, ctx) if dialog.title else _("this form")

    def _pause(self, state: dict, active: Optional[Dialog], ctx: Context, messages: list[Message],
               outcome: Optional[Outcome] = None):
        """Puts the active dialog aside (its answers kept) and says how to come back."""
        paused = self._paused(state)
        said: list[Message] = []
        if active is not None and (state.get("values") or state.get("phase") == "summary"):
            state.pop("pending", None)
            paused = [p for p in paused if p.get("dialog") != active.name][-(MAX_PAUSED - 1):]
            paused.append(self._snapshot(state))
            said = [Text(_("I kept your answers to {what}. Tap 繼續填寫 (go on) or type it to go on where you "
                           "stopped.").format(what=self._title(active, ctx)))]
        if outcome is not None:
            new_state, shown = self._apply(empty_state(paused), outcome, ctx)
            if active is not None and new_state.get("dialog") == active.name:
                said = []  # it came straight back (e.g. 填寫意向書 while filling it in)
            return new_state, said + shown
        new_state = empty_state(paused)
        return new_state, said + self._with_menu(list(messages), ctx, new_state)

    def _resume(self, state: dict, ctx: Context, name: Optional[str] = None, data: Optional[dict] = None):
        """Brings back the newest kept draft (of dialog ``name`` with ``data``), at the step where it stopped."""
        paused = self._paused(state)
        found = self._find_paused(paused, name, data)
        if found is None:
            if name is not None:
                return None
            return empty_state(paused), self._with_menu([Text(_("There is nothing to go on with."))], ctx,
                                                         empty_state(paused))
        snapshot = paused.pop(found)
        dialog = self.dialogs[snapshot["dialog"]]
        new_state = empty_state(paused)
        new_state.update({k: v for k, v in snapshot.items() if k != "touched"})
        new_state["attempts"] = 0
        ctx.values = dict(new_state.get("values") or {})
        ctx.data = dict(new_state.get("data") or {})
        intro = Text(_("Going on with {what} where you stopped.").format(what=self._title(dialog, ctx)))
        if dialog.next_step(ctx) is None and new_state.get("phase") != "summary":
            new_state, messages = self._summary_or_finish(dialog, new_state, ctx)
            return new_state, [intro] + messages
        return new_state, [intro] + self._ask(dialog, new_state, ctx)

    @staticmethod
    def _find_paused(paused: list[dict], name: Optional[str], data: Optional[dict]) -> Optional[int]:
        for index in range(len(paused) - 1, -1, -1):
            snapshot = paused[index]
            if name is not None and snapshot.get("dialog") != name:
                continue
            kept = snapshot.get("data") or {}
            if all(kept.get(k) == v for k, v in (data or {}).items()):
                return index
        return None

    # -- outside any dialog -------------------------------------------------
    def _outside(self, state: dict, text: str, ctx: Context) -> tuple[dict, list[Message]]:
        base = empty_state(self._paused(state))
        for intent in self.intents:
            if intent.matches(text):
                return self._apply(base, intent.action(ctx, text), ctx)
        answer = self.answer_question(text, ctx, False)
        return base, self._with_menu(answer or [], ctx, base)

    def _apply(self, state: dict, outcome: Outcome, ctx: Context) -> tuple[dict, list[Message]]:
        messages = list(outcome.messages)
        paused = [] if outcome.forget_drafts else self._paused(state)
        if outcome.start:
            resumed = self._resume(empty_state(paused), ctx, outcome.start, outcome.data)
            if resumed is not None:
                return resumed[0], messages + resumed[1]
            state, started = self.start(outcome.start, ctx, outcome.data or {})
            if paused:
                state["paused"] = paused
            return state, messages + started
        base = empty_state(paused)
        return base, self._with_menu(messages, ctx, base)

    def start(self, name: str, ctx: Context, data: Optional[dict] = None) -> tuple[dict, list[Message]]:
        """Begins dialog ``name`` and asks its first question."""
        dialog = self.dialogs[name]
        state = empty_state()
        state.update(dialog=name, data=dict(data or {}), phase="asking")
        ctx.values, ctx.data = {}, state["data"]
        messages = dialog.intro(ctx) if dialog.intro else []
        state["data"] = ctx.data
        return self._touch(state), messages + self._ask(dialog, state, ctx)

    # -- inside a dialog ------------------------------------------------------
    def _in_dialog(self, dialog: Dialog, state: dict, text: str, ctx: Context):
        if state.get("phase") == "summary":
            return self._on_summary(dialog, state, text, ctx)
        step = dialog.next_step(ctx)
        if step is None:  # all answered (e.g. resumed after a change in the table)
            return self._summary_or_finish(dialog, state, ctx)
        if dialog.summary_title and command_key(text) in _SUMMARY_BUTTONS:  # a button of an earlier summary
            return state, [Text(_("That button belongs to an earlier message. Please answer the question below first, "
                                  "or type 取消 (cancel) to stop."))] + self._ask(dialog, state, ctx, again=True)
        kind = classify(text, step, ctx, self.intents)
        if kind == GLOBAL:
            intent = next(i for i in self.intents if i.matches(text))
            return self._pause(state, dialog, ctx, [], intent.action(ctx, text))
        if kind == SMALL_TALK:
            intent = next(i for i in self.intents if i.matches(text))
            return state, list(intent.action(ctx, text).messages) + self._ask(dialog, state, ctx, again=True)
        answer = self.answer_question(text, ctx, True) if kind in (QUESTION, MAYBE_QUESTION) else None
        if answer and kind == QUESTION:
            return state, answer + self._ask(dialog, state, ctx, again=True)
        try:
            value = step.check(text, ctx)
        except Refused as refusal:  # an answer that does not fit: say why (never an unrelated FAQ topic)
            if answer:
                return state, answer + self._ask(dialog, state, ctx, again=True)
            return self._refuse(dialog, state, refusal, ctx)
        if kind == ANSWER:
            return self._store(dialog, state, step, value, ctx)
        # neither a clear answer nor a question we know: ask, never store silently
        state["pending"] = {"kind": "keep", "field": step.field, "text": text}
        state["data"] = ctx.data
        return state, list(answer or []) + [self._keep_question(text, step, ctx, unanswered=kind == QUESTION)]

    def _keep_question(self, text: str, step: Step, ctx: Context, unanswered: bool) -> Text:
        label = _resolve_text(step.label or step.field, ctx)
        if unanswered:
            said = _("I could not find an answer to “{text}”. Is it your answer for {field}?")
        else:
            said = _("Is “{text}” your answer for {field}?")
        return Text(said.format(text=text, field=label),
                    (Choice(_("Yes, keep it"), KEEP_ANSWER), Choice(_("No"), NOT_ANSWER)))

    def _store(self, dialog: Dialog, state: dict, step: Step, value: Any, ctx: Context):
        ctx.values[step.field] = value
        state["values"] = ctx.values
        state["history"] = [f for f in state.get("history", []) if f != step.field] + [step.field]
        state["attempts"] = 0
        state["data"] = ctx.data
        if dialog.next_step(ctx) is None:
            state.pop("editing", None)
            before = state.pop("before_edit", None)
            said = [self._changes(dialog, before, ctx)] if before is not None else []
            state, messages = self._summary_or_finish(dialog, state, ctx)
            return state, said + messages
        return state, self._ask(dialog, state, ctx)

    def _changes(self, dialog: Dialog, before: dict, ctx: Context) -> Text:
        """What a change from the summary changed, said before the summary again."""
        changed = [f"{_resolve_text(s.label or s.field, ctx)}: {s.shown(ctx.values[s.field], ctx)}"
                   for s in dialog.applicable(ctx) if s.field in ctx.values and before.get(s.field) != ctx.values[s.field]]
        if not changed:
            return Text(_("Nothing changed."))
        return Text(_("Changed:") + "\n" + "\n".join(changed))

    def _on_pending(self, pending: dict, dialog: Dialog, state: dict, text: str, key: str, ctx: Context):
        """The answer to a confirmation the bot asked; None when the person said something else."""
        if pending.get("kind") == "keep":
            if key in _KEEP_WORDS:
                step = dialog.next_step(ctx)
                if step is None or step.field != pending.get("field"):
                    return None
                try:
                    value = step.check(pending.get("text", ""), ctx)
                except Refused as refusal:
                    return self._refuse(dialog, state, refusal, ctx)
                return self._store(dialog, state, step, value, ctx)
            if key in _NOT_WORDS:
                return state, self._ask(dialog, state, ctx, again=True)
            return None
        if pending.get("kind") == "cancel":
            if key in _DISCARD_WORDS:
                return self._discard(state, dialog, ctx)
            if key in _KEEP_DRAFT_WORDS:
                return state, [Text(_("Good, your answers are kept."))] + self._ask(dialog, state, ctx, again=True)
        return None

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
        if state.get("before_edit") is not None:  # changing a field from the summary: back to the summary
            ctx.values = dict(state.pop("before_edit"))
            state.pop("editing", None)
            state.update(values=ctx.values, phase="summary", attempts=0)
            return state, self._summary_card(dialog, ctx)
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
            paused = self._paused(state)
            if paused:  # 取消 after the menu: it is about the draft put aside
                resumed = self._resume(state, ctx, paused[-1]["dialog"])
                if resumed is not None:
                    state, _said = resumed
                    dialog = self.dialogs[state["dialog"]]
                    ctx.values, ctx.data = dict(state.get("values") or {}), dict(state.get("data") or {})
            if dialog is None:
                return empty_state(paused), self._with_menu([Text(_("Nothing to cancel."))], ctx, empty_state(paused))
        if not state.get("values"):
            return self._discard(state, dialog, ctx)
        state["pending"] = {"kind": "cancel"}
        labels = [_resolve_text(s.label or s.field, ctx) for s in dialog.applicable(ctx)
                  if s.field in ctx.values and not s.field.startswith("undertaking_")]
        count = len([s for s in dialog.applicable(ctx) if s.field in ctx.values])
        return state, [Text(_("Discard the {count} answers you gave to {what} ({fields})? They cannot be "
                              "brought back.").format(what=self._title(dialog, ctx), count=count,
                                                     fields=_list(labels[:6]) + ("…" if len(labels) > 6 else "")),
                            (Choice(_("Discard them"), DISCARD), Choice(_("Keep filling in"), KEEP_DRAFT)))]

    def _discard(self, state: dict, dialog: Dialog, ctx: Context):
        paused = [p for p in self._paused(state) if p.get("dialog") != dialog.name]
        base = empty_state(paused)
        if state.get("values"):
            messages: list[Message] = [Text(_("Cancelled. The answers you gave were discarded."))]
        else:
            messages = [Text(_("Cancelled. Nothing was saved."))]
        if dialog.after_cancel:
            messages += dialog.after_cancel(ctx)
        return base, self._with_menu(messages, ctx, base)

    def _ask(self, dialog: Dialog, state: dict, ctx: Context, again: bool = False) -> list[Message]:
        if state.get("phase") == "summary":
            return self._summary_card(dialog, ctx) if not again else [self._summary_prompt(ctx)]
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

    def _summary_rows(self, dialog: Dialog, ctx: Context) -> list[tuple[str, str, Optional[str]]]:
        return [(_resolve_text(step.label or step.field, ctx), step.shown(ctx.values[step.field], ctx), step.field)
                for step in dialog.applicable(ctx) if step.field in ctx.values]

    def _fields_card(self, title: str, rows: list[tuple[str, str, Optional[str]]], actions: tuple = (),
                     footer: str = "") -> Card:
        """A card of fields, each with "change" beside it when it names the field its change asks."""
        return Card(title=title, rows=tuple((label, value) for label, value, _f in rows), actions=actions,
                    row_actions=tuple(Choice(_("Change"), f"change:{f}") if f else None for _l, _v, f in rows),
                    footer=footer)

    def _summary_card(self, dialog: Dialog, ctx: Context) -> list[Message]:
        """Every field with "change" when they fit a phone; else the key figures and a button to all fields."""
        title = _resolve_text(dialog.summary_title, ctx)
        full = self._fields_card(title, self._summary_rows(dialog, ctx),
                                 (Choice(_("Confirm and send"), "confirm"), Choice(_("Cancel"), "cancel")),
                                 _("Tap Change beside a field to correct it."))
        if card_lines(full) <= PHONE_LINES:
            return [full]
        figures = dialog.key_figures(ctx) if dialog.key_figures else self._summary_rows(dialog, ctx)[:4]
        return [self._fields_card(title, figures, (Choice(_("Confirm and send"), "confirm"),
                                                   Choice(_("All fields / change"), SHOW_ALL)))]

    def _all_fields(self, dialog: Dialog, ctx: Context) -> list[Message]:
        """Every field with "change" beside it, in pages that fit a phone, then what to do next."""
        card = self._fields_card(_resolve_text(dialog.summary_title, ctx), self._summary_rows(dialog, ctx))
        return [fitted(card, _("All fields")),
                Text(_("Tap Change beside a field to correct it, or Confirm and send when everything is right."),
                     (Choice(_("Confirm and send"), "confirm"), Choice(_("Show the summary"), SHOW_SUMMARY),
                      Choice(_("Cancel"), "cancel")))]

    def _summary_prompt(self, ctx: Context) -> Text:
        """A short reminder at the summary (instead of the whole card again)."""
        return Text(_("Everything is filled in. Tap Confirm and send, or Show the summary to change a field."),
                    (Choice(_("Confirm and send"), "confirm"), Choice(_("Show the summary"), SHOW_SUMMARY),
                     Choice(_("Cancel"), "cancel")))

    def _on_summary(self, dialog: Dialog, state: dict, text: str, ctx: Context):
        key = command_key(text)
        if key.startswith("change:") or key.startswith("修改"):
            wanted = key.split(":", 1)[1] if ":" in key else key[2:]
            step = self._find_step(dialog, wanted, ctx)
            if step is None:
                return state, self._all_fields(dialog, ctx)
            state["before_edit"] = dict(ctx.values)
            ctx.values.pop(step.field, None)
            state.update(values=ctx.values, phase="asking", editing=True)
            return state, self._ask(dialog, state, ctx)
        if key in {"confirm", "確認", "確認送出", "送出", command_key(_("Confirm and send"))}:
            return self._finish(dialog, state, ctx)
        if key in {SHOW_SUMMARY, "摘要", "看摘要", command_key(_("Show the summary"))}:
            return state, self._summary_card(dialog, ctx)
        if key in {SHOW_ALL, "看全部欄位", "全部欄位", command_key(_("All fields / change"))}:
            return state, self._all_fields(dialog, ctx)
        intent = next((i for i in self.intents if i.matches(text)), None)
        if intent is not None and not intent.anywhere:
            return self._pause(state, dialog, ctx, [], intent.action(ctx, text))
        if intent is not None:
            return state, list(intent.action(ctx, text).messages) + [self._summary_prompt(ctx)]
        answer = self.answer_question(text, ctx, True) if looks_like_question(text) else None
        if answer:
            return state, answer + [self._summary_prompt(ctx)]
        return state, [Text(_("Please confirm, or tap Change beside a field."))] + [self._summary_prompt(ctx)]

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
        return self._apply(empty_state(self._paused(state)), outcome, ctx)

    def _with_menu(self, messages: list[Message], ctx: Context, state: Optional[dict] = None) -> list[Message]:
        """Puts the menu entries as buttons under the last text that has none (繼續填寫 first when a draft waits)."""
        if not messages or not isinstance(messages[-1], Text):
            return messages
        last = messages[-1]
        choices = list(last.choices) or list(self.menu_choices(ctx))
        if state and state.get("paused") and all(c.value != RESUME for c in choices):
            choices = [Choice(_("Go on filling in"), RESUME)] + choices[:12]
        return messages[:-1] + [Text(last.text, tuple(choices))]
