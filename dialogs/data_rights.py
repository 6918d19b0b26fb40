"""Personal data (個人資料保護法): the notice before collection, and the owner's rights in the chat.

The notice gives the items of Art. 8 (collector, purpose, the data, period/area/recipients/
method, the rights of Art. 3 and how to use them, what happens without the data), following
the statement of 附件二 七. Its version is stored with every consent; a new text needs a new
`NOTICE_VERSION`, and owners are asked again.

"我的資料" shows everything stored about the user; "更正" leads to the correction of the letter
(dialogs.letter); "刪除我的資料" explains what deleting means for their letters and, once
confirmed, deletes the personal data (`Repository.delete_user_data`). The audit log keeps
an entry without anything that identifies the person.
"""
from __future__ import annotations

from datetime import timezone

from common import letters as vocabulary
from dialogs.cards import fitted, text_parts
from dialogs.dates import TAIPEI, format_date
from dialogs.engine import Context, Dialog, Intent, Outcome, Refused, Step, one_of
from dialogs.i18n import _, N_
from dialogs.letter_view import LETTER, STATUS_NAMES, letter_rows
from dialogs.messages import Card, Choice, Message, Text
from dialogs.text import command_key

NOTICE_VERSION = "112-1"  # change it when the notice's text changes
PRIVACY_EMAIL = "privacy@cisanet.org.tw"
PRIVACY_ADDRESS = "臺北市大同區承德路二段239號6樓"  # 附件二 七 (六)
DELETE = "delete_my_data"


def notice_text() -> list[str]:
    """The notice of 個資法 §8, following 附件二 七, paragraph by paragraph."""
    return [
        _("Before I ask about your enterprise, please read how your personal data is used "
          "(個人資料保護法 Art. 8; the statement of 附件二 七):"),
        _("1. Who collects it: 中華民國資訊軟體協會 (the program office), which runs the Enterprise Digital "
          "Co-prosperity program (推動企業數位共好計畫) for the SME Administration, Ministry of Economic Affairs."),
        _("2. Why: to run the program (your letter of intent and the case's roster), to let the SME Administration "
          "follow the program, for statistics on its results, and to tell you about the program's activities."),
        _("3. Which data: the enterprise's representative, the contact person's name, mobile and phone numbers, "
          "e-mail, and the enterprise's address, together with the enterprise's own data."),
        _("4. For how long, where, to whom, how: until the program year's purpose ends and any period government "
          "rules require, then it is deleted (Art. 11); only in Taiwan (中華民國境內); used by the program office, "
          "the case's proposer and cloud-service vendor, and the SME Administration; on paper and electronically."),
        _("5. Your rights (Art. 3): you can see your data, get a copy, correct it, ask us to stop using it, and "
          "delete it. In this chat type 我的資料 (my data), 更正 (correct) or 刪除我的資料 (delete my data); or "
          "write to {email}, or by post to {address}.").format(email=PRIVACY_EMAIL, address=PRIVACY_ADDRESS),
        _("6. If you do not give the data: it is needed to run the program, so without it, or with part of it, the "
          "program office may not accept your enterprise for coaching (附件二 七 (四))."),
        _("Notice version {version}.").format(version=NOTICE_VERSION),
    ]


# -- the consent dialog (started by dialogs.roles when an owner joins) ------------------------------
CONSENT = "consent"
AGREE, DECLINE = "agree", "decline"
CONSENT_CHOICES = (Choice(N_("I agree"), AGREE), Choice(N_("I do not agree"), DECLINE))
_AGREE_WORDS = {"agree", "iagree", "同意", "我同意", "yes", "y", "是", "好", "ok", "可以", "接受"}
_DECLINE_WORDS = {"decline", "idonotagree", "idontagree", "不同意", "我不同意", "no", "n", "否", "拒絕", "不要", "不"}


def _consent_answer(raw: str, ctx: Context) -> str:
    key = command_key(raw)
    if key in _AGREE_WORDS:
        return AGREE
    if key in _DECLINE_WORDS:
        return DECLINE
    raise Refused(_("Please tap I agree or I do not agree."))


def _consent_intro(ctx: Context) -> list[Message]:
    """The whole notice, in texts a phone shows whole (three in zh_TW: with the welcome and the question, five)."""
    return [Text(part) for part in text_parts(notice_text())]


def _consent_finish(ctx: Context) -> Outcome:
    case_id = int((ctx.data or {}).get("case_id") or 0)
    repo = ctx.repository
    agreed = ctx.values.get("consent") == AGREE
    consented_at = repo.record_consent(ctx.user_id, NOTICE_VERSION, agreed)
    case = repo.case(case_id) if case_id else None
    if agreed and case is not None:
        repo.join_as_owner(case.id, ctx.user_id)
    repo.audit("owner", "consent.agreed" if agreed else "consent.declined", f"case:{case_id}" if case_id else None,
             notice_version=NOTICE_VERSION)
    if not agreed:
        return Outcome([Text(_("Understood. I stored none of your data and will not ask for it. Without it the "
                               "program office may not be able to accept your enterprise (附件二 七 (四)). If you "
                               "change your mind, send the case's code again."))])
    at = consented_at.astimezone(TAIPEI)
    thanks = Text(_("Thank you. Your consent was recorded on {time} (notice version {version}). You can see, "
                    "correct or delete your data at any time: type 我的資料.").format(
        time=format_date(at), version=NOTICE_VERSION))
    if case is None:
        return Outcome([thanks])
    return Outcome([thanks], start=LETTER, data={"case_id": case.id})


def consent_dialog() -> Dialog:
    return Dialog(CONSENT, [Step("consent", lambda ctx: _("Do you agree that 中華民國資訊軟體協會 collects and uses "
                                                          "your personal data as described above?"),
                                 _consent_answer, choices=CONSENT_CHOICES, label=N_("Consent"))],
                  _consent_finish, intro=_consent_intro)


# -- my data ------------------------------------------------------------------------------------------
def _when(moment) -> str:
    if moment is None:
        return "—"
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return format_date(moment.astimezone(TAIPEI))  # ROC in zh_TW, as a person reads it


ROLE_NAMES = {vocabulary.OWNER: N_("enterprise owner"), vocabulary.PROPOSER: N_("proposer contact")}


def my_data_messages(ctx: Context) -> list[Message]:
    repo = ctx.repository
    members = repo.memberships(ctx.user_id)
    letters = repo.letters_of_user(ctx.user_id)
    consents = repo.consents(ctx.user_id)
    versions = repo.letter_versions(ctx.user_id)
    lines = [_("This is everything I keep about you:")]
    lines.append(_("• Your LINE account: its user ID and the language {locale}; not your LINE name or photo.").format(
        locale=repo.user_locale(ctx.user_id) or ctx.locale))
    for consent in consents:
        lines.append(_("• Personal-data notice version {version}: {answer} on {time}.").format(
            version=consent.notice_version, time=_when(consent.at),
            answer=_("agreed") if consent.agreed else _("declined")))
    for member, case in members:
        lines.append(_("• Case 「{plan}」: {role} since {time}.").format(plan=case.plan_name, role=_(ROLE_NAMES.get(
            member.role, member.role)), time=_when(member.joined_at)))
    lines += _kept_elsewhere(ctx)
    if not consents and not members and not letters and len(lines) == 2:
        lines.append(_("• Nothing else: no letter of intent and no personal data."))
    messages: list[Message] = [Text("\n".join(lines))]
    for letter, case in letters[:3]:
        rows = [(_("Status"), _("{status}, version {version}").format(status=_(STATUS_NAMES[letter.status]),
                                                                        version=letter.version))]
        if letter.status != vocabulary.DRAFT:
            rows += [(label, value or "—") for label, value, _field in letter_rows(letter)]
            rows.append((_("Sent"), _when(letter.submitted_at)))
        if versions.get(letter.id):
            rows.append((_("Earlier versions kept"), str(versions[letter.id])))
        messages.append(fitted(Card(title=_("Letter of intent for 「{plan}」").format(plan=case.plan_name),
                                    rows=tuple(rows))))  # pages a phone shows whole
    messages.append(Text(_("To correct your letter type 更正; to delete your data type 刪除我的資料."),
                         (Choice(_("Correct"), "correct"), Choice(_("Delete my data"), "delete my data"))))
    return messages


def _kept_elsewhere(ctx: Context) -> list[str]:
    """The eligibility answers, test self-reports, the reminder opt-out and unfinished answers in the chat."""
    import json

    repo = ctx.repository
    lines = []
    screening = repo.latest_screening(ctx.user_id)
    reports = repo.self_reports(ctx.user_id)
    if screening:
        record = json.loads(screening)
        lines.append(_("• Your eligibility check of {time}: {outcome}; your {count} answers go with a letter you "
                       "send.").format(time=_day(record.get("at")), outcome=_(OUTCOME_NAMES.get(
                           record.get("outcome"), "")) or "—", count=len(record.get("answers") or {})))
    for report in reports:
        lines.append(_("• You told me on {time}: {kind} done.").format(
            time=_when(report.self_reported_at or report.confirmed_at), kind=_(TEST_NAMES.get(report.kind, report.kind))))
    if repo.reminders_paused(ctx.user_id):
        lines.append(_("• Reminders: stopped at your request (type 恢復提醒 to have them again)."))
    for what, count, expires in ctx.drafts:
        lines.append(_("• Unfinished answers in this chat: {what}, {count} answers, kept until {time}.").format(
            what=what, count=count, time=_when(expires)))
    return lines


OUTCOME_NAMES = {"eligible": N_("eligible"), "not_eligible": N_("not eligible"), "needs_review": N_("needs review")}
TEST_NAMES = {"pre_test": N_("the capability pre-test"), "post_test": N_("the capability post-test"),
              "tool_import": N_("the tool import")}


def _day(text) -> str:
    from datetime import datetime

    try:
        return _when(datetime.fromisoformat(text)) if text else "—"
    except ValueError:
        return "—"


def _my_data(ctx: Context, text: str) -> Outcome:
    return Outcome(my_data_messages(ctx))


# -- delete my data ------------------------------------------------------------------------------------
def _delete_intent(ctx: Context, text: str) -> Outcome:
    return Outcome(start=DELETE)


def _delete_intro(ctx: Context) -> list[Message]:
    letters = ctx.repository.letters_of_user(ctx.user_id)
    sent = [case.plan_name for letter, case in letters if letter.status == vocabulary.SUBMITTED]
    text = _("Deleting removes your letters of intent, their earlier versions, your consent records and your "
             "place in the cases, and what this chat kept of your answers. It cannot be undone.")
    if sent:
        text += "\n\n" + _("Your sent letter for {plans} will be deleted too: the proposer and the program office "
                           "will no longer have it, so your enterprise no longer counts in that case. A letter "
                           "you already signed on paper is not affected; tell the proposer if you want to leave "
                           "the case.").format(plans="、".join(f"「{p}」" for p in sent))
    return [Text(text)]


DELETE_CHOICES = (Choice(N_("Delete my data"), "delete"), Choice(N_("Keep my data"), "keep"))


_delete_answer = one_of({"delete": {"delete", "刪除", "確定刪除", "yes", "是", "確定"},
                         "keep": {"keep", "保留", "no", "否", "不要"}},
                        N_("Please tap Delete my data, or Keep my data."))


def _delete_finish(ctx: Context) -> Outcome:
    if ctx.values.get("confirm") != "delete":
        return Outcome([Text(_("Nothing was deleted."))])
    counts = ctx.repository.delete_user_data(ctx.user_id)
    ctx.repository.audit("owner", "data.deleted", None, **counts)  # anonymous: counts and case numbers only
    return Outcome([Text(_("Done: your personal data has been deleted. If you want to take part again later, "
                           "send the case's code."))], forget_drafts=True)


def delete_dialog() -> Dialog:
    return Dialog(DELETE, [Step("confirm", lambda ctx: _("Delete your data now?"), _delete_answer,
                                choices=DELETE_CHOICES)], _delete_finish, intro=_delete_intro)


DIALOGS = {CONSENT: consent_dialog(), DELETE: delete_dialog()}
INTENTS = [
    Intent("my_data", ["我的資料", "我的個資", "my data", N_("My data")], _my_data),
    Intent("delete_my_data", ["刪除我的資料", "刪除資料", "刪除我的個資", "delete my data", N_("Delete my data")],
           _delete_intent),
]
