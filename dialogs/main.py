"""The whole conversation: which dialogs exist, the top-level intents, greeting and menu."""
from __future__ import annotations

import functools
import logging

from common import letters as vocabulary
from dialogs import calculator, data_rights, eligibility, faq_intents, letter, reminders, roles, roster
from dialogs import contact as contact_info
from dialogs.engine import Context, Conversation, Intent, Outcome
from dialogs.i18n import _, N_
from dialogs.messages import Choice, Message, Text

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
    if ctx.repo is None:
        return None
    roles = ctx.repo.roles_of(ctx.user_id)
    if vocabulary.PROPOSER in roles:
        return "proposer"
    return "owner" if vocabulary.OWNER in roles else None


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
FEATURES = (roles, letter, data_rights, eligibility, calculator, roster, reminders, faq_intents)


@functools.lru_cache(maxsize=1)
def _available_intents() -> frozenset:
    names = {i.name for i in _core_intents()}
    for module in FEATURES:
        names |= {i.name for i in module.INTENTS}
    return frozenset(names)


def answer_question(text: str, ctx: Context, inside_dialog: bool):
    """Free text: the knowledge base when it exists, else a polite not-sure."""
    return faq_intents.answer_question(text, ctx, inside_dialog)


def build_conversation() -> Conversation:
    dialogs, intents = {}, list(_core_intents())
    for module in FEATURES:
        dialogs.update(module.DIALOGS)
        intents.extend(module.INTENTS)
    return Conversation(
        dialogs=dialogs,
        intents=intents,
        answer_question=answer_question,
        menu=menu,
        help_text=help_text,
        contact=contact_offer,
        menu_choices=menu_choices,
    )
