"""The whole conversation: which dialogs exist, the top-level intents, greeting and menu."""
from __future__ import annotations

import functools
import importlib
import importlib.util
import logging

from dialogs.engine import Context, Conversation, Intent, Outcome
from dialogs.i18n import _, N_
from dialogs.messages import Choice, Message, Text
from dialogs import contact as contact_info

log = logging.getLogger("gonghao.dialogs")

# The menu, in order: (label msgid, value sent when tapped, the intent that answers it).
MENU = [
    (N_("Eligibility check"), "eligibility", "eligibility"),
    (N_("Proposal calculator"), "calculator", "calculator"),
    (N_("My letter of intent"), "my letter", "my_letter"),
    (N_("Roster status"), "roster", "roster"),
    (N_("FAQ"), "faq", "faq"),
    (N_("My data"), "my data", "my_data"),
    (N_("Contact"), "contact", "contact"),
]


# What each role's quick replies offer (the same values as its rich menu, bot/richmenu.py).
ROLE_MENU = {
    "owner": ("eligibility", "my letter", "faq", "my data", "contact"),
    "proposer": ("roster", "calculator", "faq", "my data", "contact"),
}


def menu_choices(ctx: Context) -> list[Choice]:
    available = _available_intents()
    offered = ROLE_MENU.get(_role(ctx))
    return [Choice(_(label), value) for label, value, intent in MENU
            if intent in available and (offered is None or value in offered)]


def _role(ctx: Context):
    """"proposer" when the person is a proposer contact of a case, "owner" when only an owner, else None."""
    db = getattr(getattr(ctx, "services", None), "db", None)
    if db is None:
        return None
    from storage import letters as store

    with db.session() as s:
        roles = {member.role for member, _case in store.memberships(s, ctx.user_id)}
    if store.PROPOSER in roles:
        return "proposer"
    return "owner" if store.OWNER in roles else None


def menu(ctx: Context) -> list[Message]:
    return [Text(_("What would you like to do? Tap a button below, or just type your question."),
                 tuple(menu_choices(ctx)))]


def greeting(ctx: Context) -> list[Message]:
    """Said when someone adds the account: who we are and what we can do."""
    text = _(
        "Hello! I am 共好小幫手, the assistant of the Enterprise Digital Co-prosperity program "
        "(推動企業數位共好計畫).\n\n"
        "I can:\n"
        "• check whether your business can take part\n"
        "• help proposers work out their tier, budget cap and letters needed\n"
        "• answer questions about the program, its documents and deadlines\n"
        "• give you the program office's contact\n\n"
        "Type 說明 (help) at any time to see what you can say."
    )
    return [Text(text)] + menu(ctx)


def help_text(ctx: Context) -> list[Message]:
    return [Text(_(
        "You can type a question in your own words, or use these words at any time:\n"
        "• 主選單 (menu): show the menu\n"
        "• 取消 (cancel): stop what we are doing\n"
        "• 上一步 (back): go back one question\n"
        "• 聯絡窗口 (contact): the program office's phone and e-mail"
    ))]


def contact(ctx: Context) -> list[Message]:
    return [Text(contact_info.contact_text())]


def contact_offer(ctx: Context) -> list[Message]:
    """Offered after three refused answers."""
    return [Text(_("This seems hard to answer here. The program office can help you directly:") + "\n"
                 + contact_info.contact_line(), (contact_info.contact_button(),))]


def _contact_intent(ctx: Context, text: str) -> Outcome:
    return Outcome(contact(ctx))


def _menu_intent(ctx: Context, text: str) -> Outcome:
    return Outcome(menu(ctx))


def _greeting_intent(ctx: Context, text: str) -> Outcome:
    return Outcome(greeting(ctx))


def _core_intents() -> list[Intent]:
    return [
        Intent("contact", [N_("contact"), "聯絡窗口", "聯絡方式", "聯絡", "客服", "電話", "contact us"], _contact_intent,
               anywhere=True),
        Intent("greeting", ["hi", "hello", "你好", "您好", "嗨", "哈囉"], _greeting_intent, anywhere=True),
    ]


# Feature modules, each exposing DIALOGS (name -> Dialog) and INTENTS (list of Intent).
FEATURES = ("dialogs.roles", "dialogs.letter", "dialogs.data_rights", "dialogs.eligibility", "dialogs.calculator",
            "dialogs.roster", "dialogs.reminders", "dialogs.faq_intents")


def _feature_modules():
    """Optional feature modules; each exposes DIALOGS (dict) and INTENTS (list)."""
    return [importlib.import_module(name) for name in FEATURES if importlib.util.find_spec(name) is not None]


@functools.lru_cache(maxsize=1)
def _available_intents() -> frozenset:
    names = {i.name for i in _core_intents()}
    for module in _feature_modules():
        names |= {i.name for i in getattr(module, "INTENTS", [])}
    return frozenset(names)


def answer_question(text: str, ctx: Context, inside_dialog: bool):
    """Free text: the knowledge base when it exists, else a polite not-sure."""
    if importlib.util.find_spec("dialogs.faq_intents") is not None:
        from dialogs.faq_intents import answer_question as faq_answer

        return faq_answer(text, ctx, inside_dialog)
    if inside_dialog:
        return None
    return [Text(_("Sorry, I did not understand that.") + "\n" + contact_info.contact_text())]


def build_conversation() -> Conversation:
    dialogs, intents = {}, list(_core_intents())
    for module in _feature_modules():
        dialogs.update(getattr(module, "DIALOGS", {}))
        intents.extend(getattr(module, "INTENTS", []))
    return Conversation(
        dialogs=dialogs,
        intents=intents,
        answer_question=answer_question,
        menu=menu,
        help_text=help_text,
        contact=contact_offer,
        menu_choices=menu_choices,
    )
