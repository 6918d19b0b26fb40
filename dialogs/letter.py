"""The letter of intent (附件二 企業合作意向書) and the roster row (附件一 柒.1), collected in the chat.

An owner who joined a case (dialogs.roles) and agreed to the personal-data notice answers one
question at a time, in the order of the form: 企業名稱, 統一編號, 企業型態, 員工人數, 所在地
(縣市 then 鄉鎮市區), 主要服務/產品, other government programs this year, 聯絡人, 手機, 電話, E-mail,
代表人, 地址, then agrees to the undertakings 三–六 one by one. The case's own part (附件二 二) is
shown from the case, never asked. The engine shows the summary with "change" beside every
field; confirming submits the letter, flags it where needed and gives the owner a signed link
to the filled document.

After sending: "我的意向書" shows the letter, "更正" (or "change" on the card) corrects one field
as a new version, "撤回" withdraws it after a confirmation.

Warnings are not refusals: more than 9 employees (§叁 輔導對象) or another government program this
year (§叁 限制條件) is accepted, said once with the rule, and flagged for the proposer and staff.
"""
from __future__ import annotations

import dataclasses
import math
import re
from datetime import datetime, timezone
from typing import Callable, Optional

from common import letters as vocabulary
from common import townships
from dialogs.data_rights import CONSENT, NOTICE_VERSION
from dialogs.cards import fitted
from dialogs.edition import Edition, cite, edition_for
from dialogs.engine import Context, Dialog, Intent, Outcome, Refused, Step, one_of
from dialogs.i18n import _, N_, current_locale
from dialogs.letter_doc import letter_url, national_phone, undertakings_json
from dialogs.letter_view import (FLAG_NAMES, LETTER, letter_card, letter_fields_card, letter_rows, list_join,
                                 show_employees)
from dialogs.messages import Card, Choice, Link, Message, Text
from dialogs.repository import CaseRecord, LetterRecord
from dialogs.text import command_key, tidy
from dialogs.validators import (EMPLOYEES_LIMIT, display_county, display_phone, display_town, validate_address,
                                validate_business_number, validate_company_name, validate_county, validate_email,
                                validate_employees, validate_mobile, validate_person_name, validate_phone,
                                validate_products, validate_program_names, validate_town)

NAME = LETTER
CHANGE = "letter_change"
WITHDRAW = "letter_withdraw"

MORE = "more"
MORE_WORDS = {"more", "更多", "更多…", "下一頁", "next", "其他", "其他縣市", "more…"}
PAGE_SIZE = 12  # LINE shows at most 13 quick replies: 12 places and "more"
AGREE = "agree"
SAME = "same"
NONE, YES = "none", "yes"

_AGREE_WORDS = {"agree", "iagree", "同意", "我同意", "是", "好", "ok", "yes", "y", "確認", "了解", "瞭解", "接受"}
_YES_WORDS = {"yes", "y", "是", "有", "有的", "是的", "對", "有參加", "有申請", "參與"}
_NONE_WORDS = {"none", "no", "n", "否", "無", "沒有", "都沒有", "沒", "不是", "未", "nothing"}
_UNSURE_WORDS = {"不確定", "不知道", "不清楚", "不太確定", "不記得", "notsure", "dontknow", "idontknow"}
_PROGRAM_WORDS = ("計畫", "計劃", "補助", "輔導", "方案", "sbir", "program", "subsid", "grant")
_SAME_WORDS = {"same", "同上", "相同", "一樣", "同聯絡人", "同手機"}
_TYPE_WORDS = {
    "1": {"1", "公司", "商業", "商登", "公司登記", "商業登記", "公司/商業登記", "公司商業登記", "有限合夥", "有限合夥登記",
          "company", "commercial", "company/commercial", "依法設立之企業"},
    "2": {"2", "稅籍", "稅籍登記", "稅籍登記only", "tax", "taxregistration", "tax-registeredonly", "taxregisteredonly",
          "依法辦理稅籍登記", "只有稅籍登記", "僅稅籍登記"},
}


# -- small helpers ---------------------------------------------------------------------------------
def _case(ctx: Context) -> Optional[CaseRecord]:
    case_id = (ctx.data or {}).get("case_id")
    if not case_id:
        return None
    return ctx.repository.case(int(case_id))


def edition_of(case: Optional[CaseRecord]) -> Edition:
    return edition_for(case_edition=case.edition if case is not None else None)[0]


def _case_edition(ctx: Context) -> Edition:
    case = _case(ctx)
    if case is not None:
        ctx.data["case_type"] = case.case_type
    return edition_of(case)


def _looks_like_code(text: str) -> bool:
    return vocabulary.canonical_code(text) is not None or bool(re.match(r"^\s*(?:加入|join)\s*[PJ]\s*-", text, re.I))


_BUTTON_DATA = re.compile(r"^(?:change|fix|fill|withdraw):", re.IGNORECASE)


def _not_a_code(validate: Callable) -> Callable:
    """Refuses an invite code, or an old button tapped again, given as an answer to a free-text question."""

    def check(raw: str, ctx: Context):
        if _looks_like_code(raw):
            raise Refused(_("This looks like an invite code. You are filling in a letter of intent now; "
                            "to join another case, type 取消 (cancel) first and then send the code again."))
        if _BUTTON_DATA.match(raw.strip()):
            raise Refused(_("That button belongs to an earlier message. Please answer the question below first, "
                            "or type 取消 (cancel) to stop."))
        return validate(raw, ctx)

    return check


def _short_text(raw: str, ctx: Context) -> str:
    """The names of other programs, kept as typed (台 stays 台), as long as the roster's box allows."""
    return validate_program_names(raw, ctx)


def _page(items: list[Choice], page: int) -> list[Choice]:
    if len(items) <= 13:
        return items
    pages = math.ceil(len(items) / PAGE_SIZE)
    page %= pages
    return items[page * PAGE_SIZE:(page + 1) * PAGE_SIZE] + [Choice(_("More…"), MORE)]


def _known(ctx: Context, field: str):
    """An answer given in this dialog, or the one on the letter being corrected."""
    if field in ctx.values:
        return ctx.values[field]
    letter_id = (ctx.data or {}).get("letter_id")
    letter = ctx.repository.letter(int(letter_id)) if letter_id else None
    if letter is None:
        return None
    if field == "phone":
        return {"e164": letter.phone, "extension": letter.phone_ext or ""}
    return getattr(letter, field, None)


# -- warnings (said once, before the next question) --------------------------------------------------
def _warnings(ctx: Context) -> list[tuple[str, str]]:
    found = []
    employees = ctx.values.get("employees")
    if isinstance(employees, int) and employees > EMPLOYEES_LIMIT:
        found.append((f"over9:{employees}", over_nine_warning(employees, ctx)))
    if ctx.values.get("other_programs") == YES and "other_program_names" in ctx.values:
        found.append((f"programs:{ctx.values['other_program_names']}", conflict_warning(ctx)))
    return found


def over_nine_warning(employees: int, ctx: Context) -> str:
    edition = _case_edition(ctx)
    case_type = (ctx.data or {}).get("case_type") or vocabulary.POPULARIZATION
    kind = edition.case_types.get(case_type)
    citation = (kind.over_nine_citation if kind else "") or edition.eligibility.employee_citation
    if kind is not None and kind.over_nine_max > 0:
        return "⚠ " + _("{count} employees is more than 9. A 數位共融 case may include at most {max} such "
                        "enterprises, only with a stated need and the review committee's approval{cite}. "
                        "I will still take your letter and mark it for the proposer and the program office."
                        ).format(count=employees, max=kind.over_nine_max, cite=cite(citation))
    return "⚠ " + _("{count} employees is more than 9. A 數位普及 case coaches enterprises of 9 employees or "
                    "fewer{cite}. I will still take your letter and mark it for the proposer and the program "
                    "office, who will tell you whether your enterprise can take part."
                    ).format(count=employees, cite=cite(citation))


def conflict_warning(ctx: Context) -> str:
    edition = _case_edition(ctx)
    rules = edition.eligibility
    programs = list_join(p.name.text() for p in rules.conflicting_programs)
    parts: list[str] = []
    for citation in [p.citation for p in rules.conflicting_programs] + [rules.other_sme_program.citation]:
        parts += [part for part in citation.split("；") if part and part not in parts]
    citation = "；".join(parts)
    return "⚠ " + _("An enterprise in {programs}, or coached this year under another SME Administration "
                    "program, cannot be coached in this program{cite}. Other programs may be fine. "
                    "I will still take your letter and mark it, so the program office can check it with you."
                    ).format(programs=programs, cite=cite(citation))


def _ask(text: Callable[[Context], str]) -> Callable[[Context], str]:
    """A question that first says any warning not said yet."""

    def question(ctx: Context) -> str:
        said = list((ctx.data or {}).get("warned") or [])
        new = [(key, warning) for key, warning in _warnings(ctx) if key not in said]
        if new:
            ctx.data["warned"] = said + [key for key, _w in new]
        return "\n\n".join([w for _k, w in new] + [text(ctx)])

    return question


def _q(msgid: str) -> Callable[[Context], str]:
    return _ask(lambda ctx: _(msgid))


# -- validators of the dialog's own choices -------------------------------------------------------------
def _company_type(raw: str, ctx: Context) -> str:
    key = command_key(raw)
    for value, words in _TYPE_WORDS.items():
        if key in words:
            return value
    raise Refused(_("Please choose: a company or commercial registration (公司/商業登記), "
                    "or a tax registration only (稅籍登記)."))


def _employees(raw: str, ctx: Context) -> int:
    return validate_employees(raw, ctx)


def _county(raw: str, ctx: Context) -> str:
    if command_key(raw) in MORE_WORDS:
        ctx.data["county_page"] = int(ctx.data.get("county_page", 0)) + 1
        raise Refused(_("More counties and cities:"), counts=False)
    code = validate_county(raw, ctx)
    county, town = townships.parse_location(raw)
    ctx.values.pop("town", None)
    ctx.data.pop("town_page", None)
    if county is not None and town is not None and county.code == code:
        ctx.values["town"] = town.code  # "臺北市大安區" answers both
    return code


def _town(raw: str, ctx: Context) -> str:
    if command_key(raw) in MORE_WORDS:
        ctx.data["town_page"] = int(ctx.data.get("town_page", 0)) + 1
        raise Refused(_("More townships and districts of {county}:").format(
            county=display_county(ctx.values.get("county"))), counts=False)
    return validate_town(raw, ctx)


def _county_choices(ctx: Context) -> list[Choice]:
    english = current_locale() == "en"
    items = [Choice(c.name_en if english else c.name, c.code) for c in townships.counties()]
    return _page(items, int((ctx.data or {}).get("county_page", 0)))


def _town_choices(ctx: Context) -> list[Choice]:
    items = [Choice(t.name, t.code) for t in townships.towns(ctx.values.get("county") or "")]
    return _page(items, int((ctx.data or {}).get("town_page", 0)))


def _town_question(ctx: Context) -> str:
    county = display_county(ctx.values.get("county"))
    towns = townships.towns(ctx.values.get("county") or "")
    text = _("Which township or district of {county}? Tap a button, or type its name.").format(county=county)
    if len(towns) > 13:
        text += "\n(" + "、".join(t.name for t in towns) + ")"
    return text


def _other_programs(raw: str, ctx: Context) -> str:
    key = command_key(raw)
    if key in _NONE_WORDS:
        ctx.values.pop("other_program_names", None)
        return NONE
    if key in _YES_WORDS:
        ctx.values.pop("other_program_names", None)
        return YES
    text = tidy(raw)
    if key in _UNSURE_WORDS:
        raise Refused(_("If you are not sure, tap Yes and type what you know about the program; the program "
                        "office will check it with you."))
    if any(word in key for word in _PROGRAM_WORDS) and not _looks_like_code(text):
        ctx.values["other_program_names"] = _short_text(text, ctx)  # the owner typed the program's name at once
        return YES
    raise Refused(_("Please tap No, or Yes and then tell me which programs."))


def _mobile(raw: str, ctx: Context) -> str:
    return validate_mobile(raw, ctx)


def _phone(raw: str, ctx: Context) -> dict:
    if command_key(raw) in _SAME_WORDS:
        mobile = _known(ctx, "mobile")
        if not mobile:
            raise Refused(_("Please type the phone number with its area code, for example (02)2553-3988."))
        return {"e164": mobile, "extension": ""}
    return validate_phone(raw, ctx)


def _representative(raw: str, ctx: Context) -> str:
    if command_key(raw) in _SAME_WORDS:
        contact = _known(ctx, "contact_name")
        if not contact:
            raise Refused(_("Please type the representative's name."))
        return contact
    return validate_person_name(raw, ctx)


def _agree(raw: str, ctx: Context) -> str:
    if command_key(raw) in _AGREE_WORDS:
        return AGREE
    raise Refused(_("The letter needs your agreement to each undertaking. If you cannot agree, type 取消 "
                    "(cancel) to stop, or ask the program office (type 聯絡窗口)."))


# -- how answers are shown -------------------------------------------------------------------------------
def _show_mobile(value, ctx=None) -> str:
    return national_phone(value)


def _show_agreed(value, ctx=None) -> str:
    return _("Agreed")


TYPE_CHOICES = (Choice(N_("Company/commercial"), "1"), Choice(N_("Tax-registered only"), "2"))
PROGRAM_CHOICES = (Choice(N_("No"), NONE), Choice(N_("Yes"), YES))
AGREE_CHOICES = (Choice(N_("I agree"), AGREE),)

UNDERTAKING_QUESTIONS = {
    "三": N_("Undertaking 三 of the letter: the enterprise understands that it may not also be coached or "
             "subsidised by (1) the 2021–2023 (ROC 110–112) Cloud Generation programs (雲世代產業數位轉型計畫) "
             "or (2) the Ministry of Economic Affairs' subsidy for small and medium shops (推動中小型店家數位轉型補助方案)."
             "\n\nDo you agree?"),
    "四": N_("Undertaking 四: the enterprise will not be coached under another program of the SME Administration "
             "in the same year.\n\nDo you agree?"),
    "五": N_("Undertaking 五: with the promise that its business information is not disclosed, the enterprise "
             "will take part in occasional checks of its cloud-service use, follow-up calls and questionnaires."
             "\n\nDo you agree?"),
    "六": N_("Undertaking 六: once signed, the letter of intent takes effect at once and shows that both sides "
             "agree to its content.\n\nDo you agree?"),
}
def _undertaking_two(ctx: Context) -> str:
    """附件二 二: coaching accepted and the case's solution imported by the edition's deadline (§叁 雲端服務條件 1)."""
    case = _case(ctx)
    edition = _case_edition(ctx)
    deadline = edition.dates.get("tool_import_deadline")
    return _("Undertaking 二 of the letter: the enterprise agrees to be coached in the program and to finish "
             "importing the case's cloud solution ({solution} of {vendor}), digital tools and coaching shown above "
             "by {date} at the latest{cite}.\n\nDo you agree?").format(
        solution=case.solution_name if case else "—", vendor=case.vendor_name if case else "—",
        date=deadline.formatted() if deadline else "—",
        cite=cite(deadline.citation) if deadline else "")


UNDERTAKING_LABELS = {
    "二": N_("二 Coaching and the import by the deadline"),
    "三": N_("三 No conflicting programs"),
    "四": N_("四 No other SME program this year"),
    "五": N_("五 Checks and questionnaires"),
    "六": N_("六 Takes effect when signed"),
}

STEPS = [
    Step("company_name", _q(N_("What is the enterprise's name, as registered (企業名稱)?")),
         _not_a_code(validate_company_name), label=N_("Enterprise name")),
    Step("business_number", _q(N_("What is its business number (統一編號, 8 digits)?")),
         _not_a_code(validate_business_number), label=N_("Business number")),
    Step("company_type", _q(N_("How is the enterprise registered?")), _company_type, choices=TYPE_CHOICES,
         label=N_("Type of enterprise")),
    Step("employees", _q(N_("How many employees does it have (員工人數)?")), _not_a_code(_employees),
         label=N_("Employees"), display=show_employees),
    Step("county", _q(N_("Where is it? Choose the county or city, or type it (for example 臺北市大安區).")),
         _county, choices=_county_choices, label=N_("County or city"), display=display_county),
    Step("town", _ask(_town_question), _town, choices=_town_choices, label=N_("Township or district"),
         display=display_town),
    Step("products", _q(N_("What are its main services or products (主要服務/產品)?")), _not_a_code(validate_products),
         label=N_("Main services or products")),
    Step("other_programs", _q(N_("This year, does the enterprise take part in, or has it applied to, other "
                                  "government coaching or subsidy programs?")),
         _other_programs, choices=PROGRAM_CHOICES, label=N_("Other government programs this year")),
    Step("other_program_names", _q(N_("Which programs? Please type their names.")), _not_a_code(_short_text),
         when=lambda ctx: ctx.values.get("other_programs") == YES, label=N_("Which programs")),
    Step("contact_name", _q(N_("Who is the contact person (聯絡人)? Please type the full name.")),
         _not_a_code(validate_person_name), label=N_("Contact person")),
    Step("mobile", _q(N_("The contact person's mobile number (手機)?")), _mobile, label=N_("Mobile"),
         display=_show_mobile),
    Step("phone", _q(N_("The enterprise's phone number (電話), with the area code? Write an extension after 轉 or #.")),
         _phone, choices=(Choice(N_("Same as the mobile"), SAME),), label=N_("Phone"), display=display_phone),
    Step("email", _q(N_("The e-mail address?")), validate_email, label=N_("E-mail")),
    Step("representative", _q(N_("Who is the enterprise's representative (代表人, as registered)?")),
         _not_a_code(_representative), choices=(Choice(N_("Same as the contact"), SAME),),
         label=N_("Representative")),
    Step("address", _q(N_("The enterprise's address (地址)?")), _not_a_code(validate_address), label=N_("Address")),
    Step("undertaking_二", _ask(_undertaking_two), _agree, choices=AGREE_CHOICES, label=UNDERTAKING_LABELS["二"],
         display=_show_agreed),
] + [
    Step(f"undertaking_{number}", _q(question), _agree, choices=AGREE_CHOICES, label=UNDERTAKING_LABELS[number],
         display=_show_agreed)
    for number, question in UNDERTAKING_QUESTIONS.items()
]

# Fields an owner may correct after sending, and the steps each correction asks.
CHANGE_GROUPS = {
    "company_name": ("company_name",),
    "business_number": ("business_number",),
    "company_type": ("company_type",),
    "employees": ("employees",),
    "county": ("county", "town"),
    "town": ("county", "town"),
    "products": ("products",),
    "other_programs": ("other_programs", "other_program_names"),
    "contact_name": ("contact_name",),
    "mobile": ("mobile",),
    "phone": ("phone",),
    "email": ("email",),
    "representative": ("representative",),
    "address": ("address",),
}


# -- the dialog's intro and finish ------------------------------------------------------------------------
def case_card(case: CaseRecord) -> Card:
    """附件二 二: the case's part of the letter, shown from the case."""
    edition = edition_of(case)
    kind = edition.case_types.get(case.case_type)
    rows = [
        (_("Plan"), case.plan_name),
        (_("Proposer"), case.proposer_name),
        (_("Case type"), kind.name.text() if kind else case.case_type),
        (_("Cloud-service vendor"), case.vendor_name),
        (_("Solution"), case.solution_name),
        (_("Period of use"), case.period),
        (_("Content and SLA"), "\n".join(x for x in (case.solution_content, case.sla) if x)),
        (_("Other coaching"), case.other_content),
    ]
    if case.case_type == vocabulary.INCLUSION:  # 附件二 二: 「共融案需說明整合性服務項目與內容」
        rows.insert(7, (_("Integrated service"), case.integrated_service or ""))
    return Card(title=_("The case you are joining (附件二 二)"), rows=tuple((k, v or "—") for k, v in rows),
                footer=_("This part comes from the proposal; you do not need to fill it in."))


def _intro(ctx: Context) -> list[Message]:
    case = _case(ctx)
    if case is None:
        return []
    ctx.data["case_type"] = case.case_type
    return [fitted(case_card(case)), Text(_(
        "Now the letter of intent (附件二) and your enterprise's row in the proposal's roster. "
        "I ask one question at a time; you can type 上一步 (back) to go back, or 取消 (cancel) to stop. "
        "If you leave, I keep your answers and we go on where you stopped."))]


def letter_columns(values: dict) -> dict[str, object]:
    """The letter's columns for the dialog's answers (the undertakings are recorded apart)."""
    columns: dict[str, object] = {}
    for field, value in values.items():
        if field == "company_type":
            columns["company_type"] = int(value)
        elif field in ("county", "town"):
            columns[f"{field}_code"] = value
        elif field == "other_programs":
            columns["other_programs"] = value == YES
            if value != YES:
                columns["other_program_names"] = None
        elif field == "phone":
            columns["phone"] = value.get("e164")
            columns["phone_ext"] = value.get("extension") or None
        elif not field.startswith("undertaking_"):
            columns[field] = value
    return columns


def own_flag_messages(letter: LetterRecord, programs: list[str], review: bool = True) -> list[str]:
    """What the owner is told about their own letter's flags (never about other letters)."""
    lines = []
    if letter.flag_duplicate:
        lines.append("⚠ " + _("Another letter of intent this year carries the same business number. The program "
                              "office will check this with you."))
    if letter.flag_previous_program:
        lines.append("⚠ " + _("The program office's list shows this business number in {programs}. An enterprise "
                              "of those programs may not be coached here{cite}; the program office will check this "
                              "with you.").format(programs=list_join(programs) or "—",
                                                  cite=cite("§叁 限制條件 1；註3")))
    if review and letter.flag_over_nine:
        lines.append("⚠ " + _("Marked for review: more than 9 employees{cite}.").format(cite=cite("§叁 輔導對象")))
    if review and letter.flag_conflict:
        lines.append("⚠ " + _("Marked for review: another government program this year{cite}.").format(
            cite=cite("§叁 限制條件")))
    return lines


def download_link(ctx: Context, letter: LetterRecord, case: CaseRecord) -> Link:
    return Link(_("Your letter of intent, filled in, as a Word document. Print it, sign it and stamp it with the "
                  "company seals (公司大小章), then give it to {proposer}. The link works for 7 days; type "
                  "我的意向書 for a new one.").format(proposer=case.proposer_name),
                _("Download the letter"), letter_url(ctx.links, letter.id, letter.version))


def _submit(ctx: Context) -> Outcome:
    repo = ctx.repository
    case = _case(ctx)
    if case is None:
        return Outcome([Text(_("This case is no longer open. Please ask the proposer for a new code."))])
    if not repo.has_consent(ctx.user_id, NOTICE_VERSION):
        return Outcome([Text(_("Your consent to the personal-data notice is missing, so I cannot send the "
                               "letter. Please send the case's code again to read the notice."))])
    agreed = undertakings_json(("二", "三", "四", "五", "六"))
    saved = repo.submit_letter(case.id, ctx.user_id, letter_columns(ctx.values), agreed, datetime.now(timezone.utc),
                               EMPLOYEES_LIMIT)
    letter, programs = saved.letter, saved.previous_programs
    repo.audit("owner", "letter.submitted", f"letter:{letter.id}", case=case.id, version=letter.version,
               flags=letter.flags)
    messages: list[Message] = [Text(_("Thank you! Your letter of intent for 「{plan}」 has been sent to {proposer} "
                                      "and the program office.").format(plan=case.plan_name,
                                                                        proposer=case.proposer_name))]
    flags = own_flag_messages(letter, programs)
    if flags:
        messages.append(Text("\n\n".join(flags)))
    messages.append(download_link(ctx, letter, case))
    messages.append(Text(_("To see it again type 我的意向書; to correct a field type 更正; to withdraw it type 撤回.")))
    return Outcome(messages)


def _after_cancel(ctx: Context) -> list[Message]:
    """What stays after the owner discarded the answers: the place in the case, and the way back."""
    case = _case(ctx)
    if case is None:
        return []
    return [Text(_("You are still in the case 「{plan}」, and your letter of intent is not sent. To fill it in "
                   "again, type 填寫意向書.").format(plan=case.plan_name),
                 (Choice(_("Fill it in"), f"fill:{case.id}"),))]


def _key_figures(ctx: Context) -> list[tuple[str, str, Optional[str]]]:
    """The summary on a phone: who, the business number, the contact (or what will be reviewed), the undertakings."""
    values = ctx.values
    agreed = sum(1 for field, value in values.items() if field.startswith("undertaking_") and value == AGREE)
    contact = " ".join(x for x in (values.get("contact_name"), national_phone(values.get("mobile"))) if x)
    figures = [(_("Enterprise name"), values.get("company_name") or "—", "company_name"),
               (_("Business number"), values.get("business_number") or "—", "business_number"),
               (_("Contact person"), contact or "—", "contact_name"),
               (_("Undertakings (附件二 二–六)"), _("All {count} agreed").format(count=agreed), None)]
    review = []
    if isinstance(values.get("employees"), int) and values["employees"] > EMPLOYEES_LIMIT:
        review.append(("employees", FLAG_NAMES["over_nine"]))
    if values.get("other_programs") == YES:
        review.append(("other_programs", FLAG_NAMES["conflict"]))
    if review:  # what the proposer and the office will check matters more here than the contact
        figures[2] = ("⚠ " + _("Marked for review"), list_join(_(name) for _f, name in review), review[0][0])
    return figures


def letter_dialog() -> Dialog:
    return Dialog(NAME, STEPS, _submit, intro=_intro, summary_title=N_("Your letter of intent: please check"),
                  title=N_("the letter of intent"), after_cancel=_after_cancel, key_figures=_key_figures)


# -- after sending: show, correct, withdraw -----------------------------------------------------------------
def letters_messages(ctx: Context, intro: str = "") -> list[Message]:
    found = ctx.repository.letters_of_user(ctx.user_id)
    if not found:
        return [Text(_("You have no letter of intent yet. To start one, send the code your proposer gave you "
                       "(it looks like J-7KQ4M-XR2PT)."))]
    messages: list[Message] = [Text(intro)] if intro else []
    for letter, case in found:
        if len(messages) >= 4:  # LINE takes at most 5 messages in one answer
            break
        if letter.status == vocabulary.SUBMITTED:
            messages.append(letter_card(letter, case))
            messages.append(download_link(ctx, letter, case))
        elif letter.status == vocabulary.WITHDRAWN:
            messages.append(Text(_("Your letter for 「{plan}」 was withdrawn.").format(plan=case.plan_name),
                                 (Choice(_("Send it again"), f"fill:{case.id}"),)))
        else:
            messages.append(Text(_("Your letter for 「{plan}」 is not sent yet.").format(plan=case.plan_name),
                                 (Choice(_("Fill it in"), f"fill:{case.id}"),)))
    return messages


def _my_letter(ctx: Context, text: str) -> Outcome:
    return Outcome(letters_messages(ctx))


def _correct(ctx: Context, text: str) -> Outcome:
    sent = [pair for pair in ctx.repository.letters_of_user(ctx.user_id) if pair[0].status == vocabulary.SUBMITTED]
    if not sent:
        return Outcome(letters_messages(ctx))
    intro = _("Which field do you want to correct? Tap Change beside it.")
    if len(sent) == 1:
        return Outcome([Text(intro), fitted(letter_fields_card(*sent[0]), _("All fields"))])
    return Outcome(letters_messages(ctx, intro))


def _letter_fields(ctx: Context, text: str) -> Outcome:
    letter, case = _owned_letter(ctx, int(text.rsplit(":", 1)[1]))
    if letter is None:
        return Outcome([Text(_("That letter cannot be changed now. Type 我的意向書 to see your letters."))])
    return Outcome([fitted(letter_fields_card(letter, case), _("All fields")),
                    Text(_("Tap Change beside a field to correct it."))])


def _owned_letter(ctx: Context, letter_id: int, status: Optional[str] = vocabulary.SUBMITTED
                  ) -> tuple[Optional[LetterRecord], Optional[CaseRecord]]:
    letter = ctx.repository.letter(letter_id)
    if letter is None or letter.user_id != ctx.user_id or (status and letter.status != status):
        return None, None
    return letter, ctx.repository.case(letter.case_id)


def _fix(ctx: Context, text: str) -> Outcome:
    _word, field, letter_id = text.strip().lower().split(":")
    letter, case = _owned_letter(ctx, int(letter_id))
    if letter is None or field not in CHANGE_GROUPS:
        return Outcome([Text(_("That letter cannot be changed now. Type 我的意向書 to see your letters."))])
    group = "county" if field == "town" else field
    return Outcome(start=CHANGE, data={"letter_id": letter.id, "case_id": case.id, "field": group,
                                       "case_type": case.case_type})


def _fill(ctx: Context, text: str) -> Outcome:
    match = re.search(r"(\d+)", text)
    open_ = [(letter, case) for letter, case in ctx.repository.letters_of_user(ctx.user_id)
             if letter.status != vocabulary.SUBMITTED and (match is None or case.id == int(match.group(1)))]
    consented = ctx.repository.has_consent(ctx.user_id, NOTICE_VERSION)
    if not open_:
        return Outcome(letters_messages(ctx))
    letter, case = open_[0]
    if not consented:
        return Outcome(start=CONSENT, data={"case_id": case.id})
    return Outcome(start=NAME, data={"case_id": case.id})


def _change_steps() -> list[Step]:
    steps = []
    for step in STEPS:
        fields = [f for f, group in CHANGE_GROUPS.items() if step.field in group and f != "town"]
        if not fields:
            continue

        def when(ctx, step=step, fields=tuple(fields)):
            return (ctx.data or {}).get("field") in fields and step.when(ctx)

        steps.append(dataclasses.replace(step, when=when))
    return steps


def _change_intro(ctx: Context) -> list[Message]:
    letter, case = _owned_letter(ctx, int(ctx.data["letter_id"]))
    if letter is None:
        return []
    field = ctx.data["field"]
    shown = next((value for _l, value, f in letter_rows(letter) if f == field), "")
    label = next((label for label, _v, f in letter_rows(letter) if f == field), field)
    return [Text(_("Correcting “{field}” of your letter for 「{plan}」. Now: {value}. "
                   "Type 取消 (cancel) to keep it as it is.").format(field=label, plan=case.plan_name,
                                                                    value=shown or "—"))]


def _change_finish(ctx: Context) -> Outcome:
    letter, case = _owned_letter(ctx, int(ctx.data["letter_id"]))
    if letter is None or case is None:
        return Outcome([Text(_("That letter cannot be changed now. Type 我的意向書 to see your letters."))])
    saved = ctx.repository.correct_letter(letter.id, letter_columns(ctx.values), EMPLOYEES_LIMIT)
    if not saved.changed:
        return Outcome([Text(_("That is what your letter already says; nothing changed."))])
    letter, programs = saved.letter, saved.previous_programs
    ctx.repository.audit("owner", "letter.corrected", f"letter:{letter.id}", case=case.id, version=letter.version,
                         fields=saved.changed, flags=letter.flags)
    messages: list[Message] = [Text(_("Corrected. Your letter is now version {version}; the proposer and the "
                                      "program office see the new version.").format(version=letter.version))]
    warnings = [w for key, w in _warnings(ctx) if key not in (ctx.data.get("warned") or [])]
    flags = own_flag_messages(letter, programs, review=False)
    if warnings or flags:
        messages.append(Text("\n\n".join(warnings + flags)))
    messages.append(download_link(ctx, letter, case))
    return Outcome(messages)


def change_dialog() -> Dialog:
    return Dialog(CHANGE, _change_steps(), _change_finish, intro=_change_intro, title=N_("the correction"))


def _withdraw(ctx: Context, text: str) -> Outcome:
    match = re.search(r"(\d+)", text)
    sent = [(letter, case) for letter, case in ctx.repository.letters_of_user(ctx.user_id)
            if letter.status == vocabulary.SUBMITTED and (match is None or letter.id == int(match.group(1)))]
    if not sent:
        return Outcome([Text(_("You have no sent letter of intent to withdraw."))])
    if len(sent) > 1:
        return Outcome([Text(_("Which letter do you want to withdraw?"),
                             tuple(Choice(case.plan_name[:20], f"withdraw:{letter.id}") for letter, case in sent[:12]))])
    letter, case = sent[0]
    return Outcome(start=WITHDRAW, data={"letter_id": letter.id, "case_id": case.id})


def _withdraw_question(ctx: Context) -> str:
    case = _case(ctx)
    return _("Withdraw your letter of intent for 「{plan}」? {proposer} will no longer count your enterprise in "
             "the case. You can send a new letter later with the same code.").format(
        plan=case.plan_name if case else "", proposer=case.proposer_name if case else "")


WITHDRAW_CHOICES = (Choice(N_("Withdraw it"), "withdraw"), Choice(N_("Keep it"), "keep"))


_withdraw_answer = one_of({"withdraw": {"withdraw", "撤回", "yes", "是", "確定", "確定撤回"},
                           "keep": {"keep", "no", "否", "不要", "保留"}},
                          N_("Please tap Withdraw it, or Keep it."))


def _withdraw_finish(ctx: Context) -> Outcome:
    if ctx.values.get("confirm") != "withdraw":
        return Outcome([Text(_("Your letter stays as it is."))])
    letter, case = _owned_letter(ctx, int(ctx.data["letter_id"]))
    if letter is None or case is None:
        return Outcome([Text(_("You have no sent letter of intent to withdraw."))])
    ctx.repository.withdraw_letter(letter.id, datetime.now(timezone.utc))
    ctx.repository.audit("owner", "letter.withdrawn", f"letter:{letter.id}", case=case.id, version=letter.version)
    return Outcome([Text(_("Your letter of intent for 「{plan}」 was withdrawn. To send one again, send the "
                           "case's code or type 我的意向書.").format(plan=case.plan_name))])


def withdraw_dialog() -> Dialog:
    return Dialog(WITHDRAW, [Step("confirm", _withdraw_question, _withdraw_answer, choices=WITHDRAW_CHOICES)],
                  _withdraw_finish)


DIALOGS = {NAME: letter_dialog(), CHANGE: change_dialog(), WITHDRAW: withdraw_dialog()}
INTENTS = [
    Intent("fix_letter", [], _fix, pattern=r"fix:[a-z_]+:\d+"),
    Intent("letter_fields", [], _letter_fields, pattern=r"letter_fields:\d+"),
    Intent("fill_letter", ["填寫意向書", N_("Fill in my letter")], _fill, pattern=r"fill:\d+"),
    Intent("withdraw_letter", ["撤回", "撤回意向書", "withdraw", N_("Withdraw my letter")], _withdraw,
           pattern=r"withdraw:\d+"),
    Intent("correct_letter", ["更正", "更正意向書", "修改意向書", "correct", N_("Correct my letter")], _correct),
    Intent("my_letter", ["我的意向書", "查看意向書", "我的進度", "my letter", "my progress", N_("My letter of intent")], _my_letter),
]
