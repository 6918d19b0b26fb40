"""Owner screening (資格檢查): may this business be coached in the program?

`screen` is a pure function of the owner's answers and the edition: eligible, not
eligible or needs review, every reason in plain words with its paragraph, and for each
"not sure" how to check it (the query links of 註2 and 註3). It never guesses: an answer
that is not known leads to "needs review".

`screening_dialog` is the conversation that collects the answers, one question at a
time with buttons and "Not sure" on each. It stops as soon as an answer settles
"not eligible"; otherwise it asks everything. The rules (PRODUCT §3.1):

- registration: company, commercial, limited partnership or tax registration only  §貳.一
- regular employees at most 9; 10 or more only in 數位共融, ≤3 per case, reviewed    §叁 輔導對象
- not in the conflicting programs of 限制條件 1                                       §叁 限制條件 1, 註3
- no guidance or subsidy this year from the agencies of 註4                          註4
- not under another SME Administration program this year                             §叁 限制條件 2
- an existing customer of the vendor only with a new purchase                        §叁 限制條件 3, §捌.四.(三).1
- industry (民生內需產業) is a suggested direction, never a condition                 §叁
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Optional, Protocol

from dialogs.cards import PHONE_LINES, phone_lines, text_parts
from dialogs.edition import Edition, all_editions, cite, edition_for, edition_in, edition_notice
from dialogs.engine import NOT_SURE, Context, Dialog, Intent, Outcome, Refused, Step
from dialogs.i18n import _, N_
from dialogs.contact import contact_button, contact_line
from dialogs.notices import notice_due
from dialogs.messages import Choice, Link, Message, Text
from dialogs.text import chinese_number, command_key, normalise

MAX_MESSAGES = 5  # LINE: at most five messages in one answer

NAME = "screening"  # the dialog
INTENT = "eligibility"  # the menu entry that starts it (dialogs.main.MENU)
ELIGIBLE, NOT_ELIGIBLE, NEEDS_REVIEW = "eligible", "not_eligible", "needs_review"
YES, NO = "yes", "no"
WITHIN_LIMIT, OVER_LIMIT = "within_limit", "over_limit"
NO_REGISTRATION = "none"

PHRASES = (INTENT, N_("Eligibility check"), N_("Am I eligible"), "資格檢查", "資格", "我可以參加嗎", "screening")

REGISTRATION_CHOICES = (
    Choice(N_("Company"), "company"),
    Choice(N_("Commercial (商業登記)"), "commercial"),
    Choice(N_("Limited partnership"), "limited_partnership"),
    Choice(N_("Tax-registered only"), "tax_only"),
    Choice(N_("None of these"), NO_REGISTRATION),
)
REGISTRATION_NAMES = {
    "company": N_("a company registration (公司登記)"),
    "commercial": N_("a commercial registration (商業登記)"),
    "limited_partnership": N_("a limited-partnership registration (有限合夥登記)"),
    "tax_only": N_("a tax registration only (稅籍登記)"),
    NO_REGISTRATION: N_("none of these registrations"),
}
YES_NO = (Choice(N_("Yes"), YES), Choice(N_("No"), NO))

_YES_WORDS = {"yes", "y", "是", "是的", "有", "有的", "對", "對的", "沒錯", "已經是", "會", "要"}
_NO_WORDS = {"no", "n", "否", "不是", "沒有", "沒", "無", "不", "不會", "未", "從來沒有", "都沒有"}


# -- the result ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One reason in plain words, the paragraph it comes from, and the answer it is about."""

    text: str
    citation: str
    field: str = ""

    def line(self) -> str:
        return f"{self.text}{cite(self.citation)}"


@dataclass(frozen=True)
class HowToCheck:
    """How an owner can find out what they were not sure about: a link, or whom to ask."""

    text: str
    label: str = ""
    url: str = ""
    citation: str = ""

    def message(self) -> Message:
        if self.url:
            return Link(self.text, self.label, self.url)
        return Text(self.text)


@dataclass
class Screening:
    """The outcome of a screening: eligible / not_eligible / needs_review, with reasons."""

    outcome: str
    reasons: list[Reason]
    how_to_check: list[HowToCheck] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)  # facts worth knowing, not reasons
    edition: Optional[int] = None

    @property
    def eligible(self) -> bool:
        return self.outcome == ELIGIBLE

    def headline(self) -> str:
        return {
            ELIGIBLE: _("Result: your business appears eligible."),
            NOT_ELIGIBLE: _("Result: your business is not eligible."),
            NEEDS_REVIEW: _("Result: needs review by the program office."),
        }[self.outcome]


@dataclass
class _Assessment:
    blocking: list[Reason] = field(default_factory=list)
    review: list[Reason] = field(default_factory=list)
    met: list[Reason] = field(default_factory=list)
    how: list[HowToCheck] = field(default_factory=list)
    notes: list[Reason] = field(default_factory=list)


def _link_check(edition: Edition, key: Optional[str], text: str) -> Optional[HowToCheck]:
    link = edition.link(key)
    if link is None:
        return None
    return HowToCheck(text, link.label.text(), link.url, link.citation)


def over_limit(employees, limit: int) -> Optional[bool]:
    """True when the employee answer is above the limit, None when it is not known."""
    if isinstance(employees, bool):
        return None
    if isinstance(employees, int):
        return employees > limit
    if employees == OVER_LIMIT:
        return True
    if employees == WITHIN_LIMIT:
        return False
    return None


def _not_answered(question: str, citation: str, name: str) -> Reason:
    return Reason(_("Not answered yet: {question}").format(question=question), citation, name)


def _assess(answers: dict, edition: Edition) -> _Assessment:
    """Applies every rule to the answers given so far."""
    a = _Assessment()
    for rule in (_registration_rule, _employees_rule, _programs_rule, _agencies_rule, _other_sme_rule,
                 _existing_customer_rule, _industry_note):
        rule(a, answers, edition)
    return a


def _registration_rule(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Registration (§貳.一; 註2)."""
    rules = edition.eligibility
    reg = answers.get("registration")
    if reg is None:
        a.review.append(_not_answered(_("your registration"), rules.registration_citation, "registration"))
    elif reg == NOT_SURE:
        a.review.append(Reason(_("You were not sure which registration your business has; only a company, commercial, "
                                 "limited-partnership or tax registration qualifies."), rules.registration_citation, "registration"))
        for key, text in (("note2_tax", _("Look up your tax registration:")),
                          ("note2_sme", _("Check the SME criteria (中小企業認定標準):"))):
            how = _link_check(edition, key, text)
            if how:
                a.how.append(how)
    elif reg in rules.registration_accepted:
        if reg == "tax_only":
            a.met.append(Reason(_("A business with only a tax registration can take part."), rules.registration_citation, "registration"))
        else:
            a.met.append(Reason(_("Your business has {registration}, which qualifies.").format(
                registration=_(REGISTRATION_NAMES.get(reg, reg))), rules.registration_citation, "registration"))
    elif reg == NO_REGISTRATION:
        a.blocking.append(Reason(_("Only businesses with a company, commercial, limited-partnership or tax registration "
                                   "can take part; yours has none of these."), rules.registration_citation, "registration"))
    else:
        a.blocking.append(Reason(_("{registration} does not qualify in this edition.").format(
            registration=_(REGISTRATION_NAMES.get(reg, str(reg)))), rules.registration_citation, "registration"))


def _employees_rule(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Regular employees (§貳.一; §叁 輔導對象)."""
    rules = edition.eligibility
    limit = rules.employee_limit
    employees = answers.get("employees")
    over = over_limit(employees, limit)
    allowing = {k: t for k, t in edition.case_types.items() if t.over_nine_max > 0}
    if employees is None:
        a.review.append(_not_answered(_("the number of regular employees"), rules.employee_citation, "employees"))
    elif over is None:
        a.review.append(Reason(_("You were not sure how many regular employees your business has; the limit is {limit}.").format(
            limit=limit), rules.employee_citation, "employees"))
        a.how.append(HowToCheck(_("Count the people your business employs regularly, for example those on its labour "
                                  "insurance; the limit is {limit}.").format(limit=limit), citation=rules.employee_citation))
    elif not over:
        a.met.append(Reason(_("{limit} or fewer regular employees: within the limit.").format(limit=limit),
                            rules.employee_citation, "employees"))
    else:
        case_key = answers.get("case_type")
        case_type = edition.case_types.get(case_key) if isinstance(case_key, str) else None
        if not allowing:
            a.blocking.append(Reason(_("Businesses with more than {limit} regular employees cannot take part.").format(
                limit=limit), rules.employee_citation, "employees"))
        elif case_type is not None and case_type.over_nine_max == 0:
            a.blocking.append(Reason(_("A {case_type} case takes only businesses with {limit} or fewer regular employees.").format(
                case_type=case_type.name.text(), limit=limit), case_type.over_nine_citation or rules.employee_citation, "case_type"))
        elif case_type is not None:
            a.review.append(Reason(_("With more than {limit} regular employees your business can join a {case_type} case only "
                                     "as one of at most {max} such businesses in the case, with its need and role stated and "
                                     "approved by the review committee.").format(
                limit=limit, case_type=case_type.name.text(), max=case_type.over_nine_max),
                case_type.over_nine_citation or rules.over_nine_citation, "case_type"))
        else:
            names = "、".join(t.name.text() for t in allowing.values()) if len(allowing) > 1 else next(iter(allowing.values())).name.text()
            a.review.append(Reason(_("With more than {limit} regular employees your business can only join a {case_type} case, "
                                     "and only with committee approval.").format(limit=limit, case_type=names),
                                   rules.over_nine_citation, "case_type"))
            a.how.append(HowToCheck(_("Ask the proposer which kind of case (數位普及 or 數位共融) you would join."),
                                    citation=rules.over_nine_citation))


def _programs_rule(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Conflicting programs (§叁 限制條件 1; 註3)."""
    rules = edition.eligibility
    for program in rules.conflicting_programs:
        name = f"program_{program.key}"
        value = answers.get(name)
        if value is None:
            a.review.append(_not_answered(_("whether your business was in {program}").format(program=program.name.text()),
                                          program.citation, name))
        elif value == YES:
            a.blocking.append(Reason(_("Businesses that were in {program} cannot take part.").format(
                program=program.name.text()), program.citation, name))
        elif value == NO:
            a.met.append(Reason(_("Not in {program}.").format(program=program.name.text()), program.citation, name))
        else:
            a.review.append(Reason(_("You were not sure whether your business was in {program}.").format(
                program=program.name.text()), program.citation, name))
            how = _link_check(edition, program.check_link, _("Check whether your business was coached before:"))
            a.how.append(how or HowToCheck(_("Ask the program office whether your business took part in {program}.").format(
                program=program.name.text()), citation=program.citation))


def _agencies_rule(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Agencies of 註4."""
    rules = edition.eligibility
    value = answers.get("agency_support")
    if value is None:
        a.review.append(_not_answered(_("guidance or subsidies this year from the agencies of 註4"), rules.agencies_citation, "agency_support"))
    elif value == YES:
        a.blocking.append(Reason(_("Businesses that received guidance or a subsidy this year from one of the agencies listed "
                                   "in 註4 cannot take part."), rules.agencies_citation, "agency_support"))
    elif value == NO:
        a.met.append(Reason(_("No guidance or subsidy this year from the agencies listed in 註4."), rules.agencies_citation, "agency_support"))
    else:
        a.review.append(Reason(_("You were not sure whether your business received guidance or a subsidy this year from the "
                                 "agencies listed in 註4."), rules.agencies_citation, "agency_support"))
        a.how.append(HowToCheck(_("Look through this year's coaching or subsidy notices, or ask the agency that ran them."),
                                citation=rules.agencies_citation))


def _other_sme_rule(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Other SME Administration programs (§叁 限制條件 2)."""
    rules = edition.eligibility
    rule = rules.other_sme_program
    value = answers.get("other_sme_program")
    if value is None:
        a.review.append(_not_answered(_("other SME Administration programs this year"), rule.citation, "other_sme_program"))
    elif value == YES:
        a.blocking.append(Reason(_("A business coached this year under another SME Administration program cannot also take part."),
                                 rule.citation, "other_sme_program"))
    elif value == NO:
        a.met.append(Reason(_("Not under another SME Administration program this year."), rule.citation, "other_sme_program"))
    else:
        a.review.append(Reason(_("You were not sure whether your business is under another SME Administration program this year."),
                               rule.citation, "other_sme_program"))
        a.how.append(HowToCheck(_("Ask the program office; it can check the SME Administration's programs for you."),
                                citation=rule.citation))


def _existing_customer_rule(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Existing customer of the vendor (§叁 限制條件 3; §捌.四.(三).1)."""
    rules = edition.eligibility
    rule = rules.existing_customer
    existing, new = answers.get("existing_customer"), answers.get("new_purchase")
    if new == NO:
        a.blocking.append(Reason(_("Your business already uses the service the case would bring; only a new purchase counts."),
                                 rule.citation, "new_purchase"))
    elif existing is None:
        a.review.append(_not_answered(_("whether you are already a customer of the vendor"), rule.citation, "existing_customer"))
    elif existing == NO:
        a.met.append(Reason(_("Not yet a customer of the case's cloud vendor."), rule.citation, "existing_customer"))
    elif new == YES:
        a.met.append(Reason(_("The service the case brings would be a new purchase for you, which is allowed."),
                            rule.citation, "new_purchase"))
    elif new is None:
        a.review.append(_not_answered(_("whether the service would be a new purchase"), rule.citation, "new_purchase"))
    else:
        a.review.append(Reason(_("You may already be a customer of the vendor; the service must be a new purchase for you."),
                               rule.citation, "new_purchase"))
        a.how.append(HowToCheck(_("Ask the proposer or the cloud vendor whether the service would be new for your business."),
                                citation=rule.citation))


def _industry_note(a: _Assessment, answers: dict, edition: Edition) -> None:
    """Industry: a suggested direction, never a condition (§叁)."""
    rules = edition.eligibility
    a.notes.append(Reason(_("Your industry is not a condition, only a suggested direction: {industry}").format(
        industry=rules.industry.text.text()), rules.industry.citation, "industry"))


def screen(answers: dict, edition: Edition) -> Screening:
    """Eligible, not eligible or needs review for these answers, every reason cited."""
    a = _assess(answers or {}, edition)
    how = _unique(a.how)
    if a.blocking:
        return Screening(NOT_ELIGIBLE, a.blocking, [], a.notes, edition.year)
    if a.review:
        return Screening(NEEDS_REVIEW, a.review, how, a.notes, edition.year)
    return Screening(ELIGIBLE, a.met, [], a.notes, edition.year)


def _unique(items: list[HowToCheck]) -> list[HowToCheck]:
    seen, kept = set(), []
    for item in items:
        key = item.url or item.text
        if key not in seen:
            seen.add(key)
            kept.append(item)
    return kept


def settled_not_eligible(answers: dict, edition: Edition) -> bool:
    """True once the answers so far contain a hard "no" (no need to ask more)."""
    return bool(_assess(answers, edition).blocking)


# -- validators ------------------------------------------------------------------------------


def yes_no(raw: str, ctx: Context) -> str:
    """Maps typed yes/no answers ("有", "沒有", "是", "no") to yes or no."""
    key = command_key(raw)
    if key in (YES, NO):
        return key
    if key in _YES_WORDS:
        return YES
    if key in _NO_WORDS:
        return NO
    raise Refused(_("Please tap Yes, No or Not sure."))


def registration(raw: str, ctx: Context) -> str:
    """Maps a tapped or typed registration to its key."""
    key = command_key(raw)
    if key in {c.value for c in REGISTRATION_CHOICES}:
        return key
    if key.startswith(("沒有", "沒", "無", "none", "no")) and not key.startswith("無限") and not any(w in key for w in ("只有", "但有", "僅有", "only")):
        return NO_REGISTRATION  # "沒有公司登記" is a "none", not a company
    for words, value in ((("有限合夥", "limitedpartnership", "partnership"), "limited_partnership"),
                         (("稅籍", "tax"), "tax_only"),
                         (("商業", "行號", "commercial"), "commercial"),
                         (("公司", "company"), "company"),
                         (("沒有", "都沒有", "無", "none", "no"), NO_REGISTRATION)):
        if any(word in key for word in words):
            return value
    raise Refused(_("Please tap the registration your business has, or Not sure."))


def employee_count(raw: str, ctx: Context):
    """A number of regular employees ("5", "5人", "五人"), or a tapped range."""
    key = command_key(raw)
    if key in (WITHIN_LIMIT, OVER_LIMIT):
        return key
    text = re.sub(r"(人|名|位|個人|個)$", "", normalise(raw).replace(" ", ""))
    if re.fullmatch(r"\d{1,6}", text):
        return int(text)
    number = chinese_number(text)
    if number is not None:
        return number
    raise Refused(_("Please type the number of regular employees, for example 5, or tap a button."))


# -- the dialog ----------------------------------------------------------------------------------


def _edition(ctx: Context) -> Edition:
    return edition_in(ctx)[0]


def _employee_choices(ctx: Context) -> list[Choice]:
    limit = _edition(ctx).eligibility.employee_limit
    return [Choice(_("{n} or fewer").format(n=limit), WITHIN_LIMIT), Choice(_("{n} or more").format(n=limit + 1), OVER_LIMIT)]


def _case_type_choices(ctx: Context) -> list[Choice]:
    return [Choice(t.button.text(), k) for k, t in _edition(ctx).case_types.items()]


def _case_type(raw: str, ctx: Context) -> str:
    return case_type_key(raw, _edition(ctx))


def case_type_key(raw: str, edition: Edition) -> str:
    """Maps a tapped or typed kind of case ("popularization", "普及", "數位共融輔導") to its key."""
    key = command_key(raw)
    for k, t in edition.case_types.items():
        short = command_key(t.name.zh_TW).replace("數位", "").replace("輔導", "")
        names = {command_key(k), command_key(t.name.zh_TW), command_key(t.name.en),
                 command_key(t.button.zh_TW), command_key(t.button.en)}
        if key in names or (short and short in key):
            return k
    raise Refused(_("Please tap the kind of case, or Not sure."))


def _agencies(ctx: Context) -> str:
    return "、".join(a.text() for a in _edition(ctx).eligibility.agencies)


def _program_question(key: str):
    def question(ctx: Context) -> str:
        program = next((p for p in _edition(ctx).eligibility.conflicting_programs if p.key == key), None)
        name = program.name.text() if program else key
        return _("Has your business been coached or subsidised under {program}?").format(program=name)
    return question


def _program_applies(key: str):
    def applies(ctx: Context) -> bool:
        return any(p.key == key for p in _edition(ctx).eligibility.conflicting_programs)
    return applies


def _over_limit_with_choice(ctx: Context) -> bool:
    edition = _edition(ctx)
    if not any(t.over_nine_max > 0 for t in edition.case_types.values()):
        return False  # nobody over the limit can take part: nothing to ask
    return over_limit(ctx.values.get("employees"), edition.eligibility.employee_limit) is True


def _existing_or_unsure(ctx: Context) -> bool:
    return ctx.values.get("existing_customer") in (YES, NOT_SURE)


def _program_keys(editions) -> list[str]:
    keys: list[str] = []
    for edition in editions:
        for program in edition.eligibility.conflicting_programs:
            if program.key not in keys:
                keys.append(program.key)
    return keys


def _intro(ctx: Context) -> list[Message]:
    edition, covers = edition_in(ctx)
    ctx.data["edition"] = edition.year
    industry = edition.eligibility.industry
    return [Text("\n".join([
        _("Let's check whether your business can be coached in the program. I will ask a few questions, one at a time; "
          "tap Not sure whenever you do not know."),
        edition_notice(edition, covers or not notice_due(ctx)),
        _("Your industry is not a condition, only a suggested direction: {industry}").format(
            industry=industry.text.text()) + cite(industry.citation),
    ]))]


def _finish(ctx: Context) -> Outcome:
    edition = _edition(ctx)
    result = screen(ctx.values, edition)
    record = {
        "answers": dict(ctx.values),
        "outcome": result.outcome,
        "edition": edition.year,
        "at": ctx.clock().isoformat(timespec="seconds"),
    }
    ctx.data["screening"] = record
    _keep(ctx, record)
    return Outcome(messages=screening_messages(result, edition), data={"screening": record})


def _keep(ctx: Context, record: dict) -> None:
    """Stores the answers so that a letter sent later carries them (when the bot has storage)."""
    if ctx.repo is not None:
        ctx.repo.save_screening(ctx.user_id, record)


def screening_messages(result: Screening, edition: Edition) -> list[Message]:
    """The result as messages a phone shows whole: headline and reasons, how-to-check links, then what next (≤ 5)."""
    intro = {
        ELIGIBLE: _("Why:"),
        NOT_ELIGIBLE: _("Why:"),
        NEEDS_REVIEW: _("What is still open:"),
    }[result.outcome]
    head = "\n".join([result.headline(), "", intro])
    messages: list[Message] = [Text(part) for part in text_parts([head] + [f"• {r.line()}" for r in result.reasons])]
    links = [h for h in result.how_to_check if h.url][:min(3, max(1, MAX_MESSAGES - 1 - len(messages)))]
    messages += [h.message() for h in links]
    closing = "\n".join(_closing_lines(result, edition)).strip()
    notes = "\n".join(n.line() for n in result.notes)
    if notes and phone_lines(closing + "\n\n" + notes) <= PHONE_LINES:
        closing += "\n\n" + notes
    elif notes and len(messages) < MAX_MESSAGES - 1:  # its own bubble; else it stays said at the check's start
        messages.append(Text(notes))
    buttons = (contact_button(),) if result.outcome != ELIGIBLE else (
        Choice(_("Invite codes"), "faq:bot_invite_code"), contact_button())
    messages.append(Text(closing, buttons))
    return messages


def _closing_lines(result: Screening, edition: Edition) -> list[str]:
    """How to check what is open, and what to do next."""
    closing: list[str] = []
    others = [h for h in result.how_to_check if not h.url]
    if others:
        closing.append(_("How to check:"))
        closing += [f"• {h.text}" for h in others]
    if result.outcome == NEEDS_REVIEW:
        closing += ["", _("Once you know, start the check again; or ask the program office:")]
        closing.append(contact_line(edition))
    elif result.outcome == ELIGIBLE:
        closing.append(_("Your answers are saved; when you join a case they go with your letter of intent."))
        closing.append(_("Next step: ask the proposer you work with (a cloud-service vendor or its partner) for "
                         "the invite code and send it to me. No proposer yet? Ask the program office."))
    else:
        closing.append(_("If an answer was wrong, start the check again. Questions? Ask the program office:"))
        closing.append(contact_line(edition))
    return closing


def screening_dialog(editions=None) -> Dialog:
    """The 資格檢查 dialog. ``editions`` (default: all in storage/editions) fixes which
    conflicting-program questions exist; each is asked only when the owner's edition has it."""
    if editions is None:
        editions = all_editions()
    order: list[str] = []

    def unless_settled(condition=None):
        earlier = tuple(order)

        def when(ctx: Context) -> bool:
            prior = {k: v for k, v in ctx.values.items() if k in earlier}
            if settled_not_eligible(prior, _edition(ctx)):
                return False
            return condition(ctx) if condition else True
        return when

    steps: list[Step] = []

    def add(step_field: str, question, choices, validate, condition=None, label=""):
        steps.append(Step(step_field, question, validate=validate, choices=choices, when=unless_settled(condition),
                          not_sure=True, label=label))
        order.append(step_field)

    add("registration", N_("Which registration does your business have?"), REGISTRATION_CHOICES, registration,
        label=N_("Registration"))
    add("employees", N_("How many regular employees does your business have? Type the number, or tap a button."),
        _employee_choices, employee_count, label=N_("Regular employees"))
    add("case_type", lambda ctx: _("With more than {limit} regular employees it matters which kind of case you join. "
                                   "Which one is it?").format(limit=_edition(ctx).eligibility.employee_limit),
        _case_type_choices, _case_type, _over_limit_with_choice, label=N_("Kind of case"))
    for key in _program_keys(editions):
        add(f"program_{key}", _program_question(key), YES_NO, yes_no, _program_applies(key))
    add("agency_support", lambda ctx: _("This year, has your business received guidance or a subsidy from any of these: "
                                        "{agencies}?").format(agencies=_agencies(ctx)), YES_NO, yes_no)
    add("other_sme_program", N_("This year, is your business also coached under another program of the SME "
                                "Administration (經濟部中小企業處)?"), YES_NO, yes_no)
    add("existing_customer", N_("Are you already a customer of the cloud vendor of the case you want to join?"),
        YES_NO, yes_no)
    add("new_purchase", N_("Would the cloud service the case brings be one your business does not use yet "
                           "(a new purchase)?"), YES_NO, yes_no, _existing_or_unsure)
    return Dialog(name=NAME, steps=steps, finish=_finish, intro=_intro, title=N_("the eligibility check"))


def screening_intent() -> Intent:
    """The entry point: "資格檢查" (or the menu's "eligibility") starts the screening dialog."""
    return Intent(INTENT, PHRASES, lambda ctx, text: Outcome(start=NAME))


# -- a letter's flags, as the roster and the exports show them --------------------------------------------
class FlaggedLetter(Protocol):
    """A letter row with its flag columns and the screening answers it carries."""

    flag_over_nine: bool
    flag_conflict: bool
    flag_duplicate: bool
    flag_previous_program: bool
    screening: Optional[str]


_SCREENINGS: dict = {}


def screening_not_eligible(raw: Optional[str], edition: Optional[int]) -> bool:
    """True when the letter's stored screening answers (JSON) settle "not eligible".

    The JSON may hold the outcome itself ({"outcome": "not_eligible"}) or the answers of the
    screening dialog, which are screened against the case's edition (dialogs.eligibility).
    """
    if not raw:
        return False
    try:
        data = json.loads(raw)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    if "outcome" in data:
        return data.get("outcome") == NOT_ELIGIBLE
    answers = data.get("answers", data)
    key = (raw, edition)
    if key not in _SCREENINGS:
        if len(_SCREENINGS) > 10_000:
            _SCREENINGS.clear()
        try:
            _SCREENINGS[key] = screen(answers, edition_for(case_edition=edition)[0]).outcome == NOT_ELIGIBLE
        except Exception:
            _SCREENINGS[key] = False
    return _SCREENINGS[key]


def letter_flags(row: FlaggedLetter, edition: Optional[int] = None) -> list[str]:
    """The names of a letter's flags, in a fixed order (a row with the flag columns and screening)."""
    found = []
    if row.flag_over_nine:
        found.append("over_nine")
    if row.flag_conflict:
        found.append("conflict")
    if row.flag_duplicate:
        found.append("duplicate")
    if row.flag_previous_program:
        found.append("previous_program")
    if screening_not_eligible(row.screening, edition):
        found.append("not_eligible")
    return found



# What dialogs.main picks up. Building the dialog loads and checks every edition file,
# so a broken file stops the bot at start instead of in the middle of a chat.
DIALOGS = {NAME: screening_dialog()}
INTENTS = [screening_intent()]
