"""Roles from codes: a proposer code links a proposer contact to a case; an owner code joins a case.

Codes look like ``P-7KQ4M-XR2PT`` (proposer) and ``J-7KQ4M-XR2PT`` (owners; the owners' LINE
link types "加入 J-…"). They are typed loosely (lower case, spaces, full-width) and compared
in constant time. A wrong, revoked or malformed code gets the same answer, which never says
whether a similar code exists; after `CODE_ATTEMPTS_PER_HOUR` codes that did not work in an
hour a user must wait, and is told until when.

An owner who joins reads the personal-data notice and agrees (dialogs.data_rights) before
the letter dialog (dialogs.letter) asks anything personal.
"""
from __future__ import annotations

from datetime import timedelta

from common import letters as vocabulary
from dialogs.data_rights import CONSENT, NOTICE_VERSION
from dialogs.dates import TAIPEI
from dialogs.engine import Context, Intent, Outcome
from dialogs.i18n import _, ngettext
from dialogs.letter import NAME as LETTER, download_link
from dialogs.letter_doc import invite_qr_url, join_text, line_invite_link
from dialogs.letter_view import letter_card
from dialogs.messages import Image, Link, Message, Text
from dialogs.repository import CaseRecord

# What a code attempt looks like: a P-/J- prefix with a hyphen, or "加入"/"join" in front.
CODE_PATTERN = (r"(?:(?:加入|join)\s*)?[PJ](?:\s*-\s*[0-9A-Z][0-9A-Z\s-]{2,24}|\s+[0-9A-Z]{5}\s*-?\s*[0-9A-Z]{5})"
                r"|(?:加入|join)\s*[PJ][0-9A-Z\s-]{4,24}")


def _wrong_code(left: int) -> Text:
    left = max(left, 0)
    return Text(ngettext("This code does not work. Please check it with whoever gave it to you; codes look like "
                         "J-7KQ4M-XR2PT. You can try {left} more time this hour.",
                         "This code does not work. Please check it with whoever gave it to you; codes look like "
                         "J-7KQ4M-XR2PT. You can try {left} more times this hour.", left).format(left=left))


def _too_many(retry_at) -> Text:
    local = retry_at.astimezone(TAIPEI)
    return Text(_("You have sent {limit} codes that did not work within an hour. To keep the cases safe, please "
                  "try again after {time}.").format(limit=vocabulary.CODE_ATTEMPTS_PER_HOUR, time=f"{local:%H:%M}"))


def _code(ctx: Context, text: str) -> Outcome:
    repo = ctx.repository
    attempts = repo.recent_code_attempts(ctx.user_id)
    if len(attempts) >= vocabulary.CODE_ATTEMPTS_PER_HOUR:
        retry_at = attempts[len(attempts) - vocabulary.CODE_ATTEMPTS_PER_HOUR] + timedelta(hours=1)
        return Outcome([_too_many(retry_at)])
    case, role = repo.find_case_by_code(text)
    if case is None:
        repo.record_code_attempt(ctx.user_id)
        return Outcome([_wrong_code(vocabulary.CODE_ATTEMPTS_PER_HOUR - len(attempts) - 1)])
    if role == vocabulary.PROPOSER:
        if repo.add_member(case.id, ctx.user_id, vocabulary.PROPOSER):
            repo.audit("proposer", "case.proposer_linked", f"case:{case.id}")
        ctx.effects.append(("rich_menu", vocabulary.PROPOSER))  # the proposers' menu from now on
        return Outcome(proposer_messages(ctx, case))
    return owner_joins(ctx, case)


def proposer_messages(ctx: Context, case: CaseRecord) -> list[Message]:
    config = ctx.links
    messages: list[Message] = [Text(_("You are now the proposer contact of 「{plan}」 (case {id}). Enterprise "
                                      "owners join the case with this code: {code}").format(
        plan=case.plan_name, id=case.id, code=case.owner_code))]
    if config.bot_basic_id:
        link = line_invite_link(config.bot_basic_id, case.owner_code)
        messages.append(Link(_("Share this link with the owners: it opens this chat with the code typed in."),
                             _("Open the invite link"), link))
        qr = invite_qr_url(config, case.id, case.owner_code)
        if qr.startswith("https://"):  # LINE shows images from HTTPS addresses only
            messages.append(Image(qr, qr, _("QR code of the invite link")))
    else:
        messages.append(Text(_("Owners can also type 「{text}」 in this chat.").format(text=join_text(case.owner_code))))
    return messages


def owner_joins(ctx: Context, case: CaseRecord) -> Outcome:
    repo = ctx.repository
    letter = repo.letter_of(case.id, ctx.user_id)
    consented = repo.has_consent(ctx.user_id, NOTICE_VERSION)
    if consented:
        repo.join_as_owner(case.id, ctx.user_id)
    if letter is not None and letter.status == vocabulary.SUBMITTED:
        return Outcome([Text(_("You have already sent your letter of intent for 「{plan}」.").format(
            plan=case.plan_name)), letter_card(letter, case), download_link(ctx, letter, case)])
    welcome = Text(_("Welcome to 「{plan}」 by {proposer}. I will help you fill in the letter of intent "
                     "(企業合作意向書) for your enterprise.").format(plan=case.plan_name,
                                                                    proposer=case.proposer_name))
    if not consented:
        return Outcome([welcome], start=CONSENT, data={"case_id": case.id})
    repo.audit("owner", "case.owner_joined", f"case:{case.id}")
    return Outcome([welcome], start=LETTER, data={"case_id": case.id})


DIALOGS: dict = {}
INTENTS = [Intent("join_code", [], _code, pattern=CODE_PATTERN)]
