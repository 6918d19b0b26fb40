"""Roster status (名單狀態) for a proposer contact: where the case stands before the deadline.

Per case (PRODUCT §3.5; §叁 注意事項, 附件一 柒.1):

- enterprises joined (owners who joined the case; withdrawn letters do not count);
- letters of intent submitted, in progress, not started;
- the letters needed at proposal (10% of the planned count, rounded up, from the edition) and
  whether the submitted ones reach it;
- the tier and budget cap the current count implies, and how many more reach the next tier or
  the minimum (dialogs.calculator);
- flags: more than 9 employees (with how many the case type allows), another program this year,
  the same 統編 in another case or on the previous-program list, not-eligible screening answers;
- pre-test and post-test done (storage.reminders);
- the township bonus, from the township groups staff imported (``Repository.township_group``).

A card first, then the enterprises as a carousel of at most 12 cards per message with "more" to
page, and a signed link to the case's 附件一 roster as an Excel file that expires. Only a
proposer contact linked to the case sees it: the case is checked on every request (a tapped
"more" carries a case number, which is never trusted by itself); an owner sees nothing of others.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from itsdangerous import URLSafeTimedSerializer

from common import letters as vocabulary
from common.townships import place
from dialogs.cards import fitted
from dialogs.calculator import Calculation, TownshipResult, calculate, township_bonus, township_text
from dialogs.edition import Edition, cite, edition_for, format_money
from dialogs.eligibility import letter_flags
from dialogs.engine import Context, Intent, Outcome
from dialogs.i18n import _, N_, ngettext
from dialogs.letter_doc import LinkSecrets, _secret, public_base
from dialogs.letter_view import FLAG_NAMES, list_join
from dialogs.messages import Card, Carousel, Choice, Link, Message, Text
from dialogs.repository import CaseRecord, EnterpriseTestsRecord, LetterRecord, Repository
from dialogs.validators import EMPLOYEES_LIMIT

NAME = "roster"
PAGE_SIZE = 12  # LINE: at most 12 bubbles in a carousel
PHRASES = (NAME, N_("Roster status"), "名單狀態", "名單", "roster status", "我的名單", "案件狀態", "提案狀態")
PATTERN = r"roster:\d+(?::\d+)?"
LINK_MAX_AGE = 24 * 3600  # the roster download link works for a day
_ROSTER_SALT = "gonghao-roster-xlsx"

SUBMITTED, IN_PROGRESS, NOT_STARTED, WITHDRAWN = "submitted", "in_progress", "not_started", "withdrawn"
STATUS_NAMES = {SUBMITTED: N_("submitted"), IN_PROGRESS: N_("in progress"), NOT_STARTED: N_("not started"),
                WITHDRAWN: N_("withdrawn")}
ROSTER_FLAG_NAMES = dict(FLAG_NAMES, not_eligible=N_("not eligible by the screening answers"))
TEST_NAMES = {"confirmed": N_("done (confirmed)"), "self_reported": N_("done (self-reported)"),
              "not_done": N_("not done")}


# -- the figures ----------------------------------------------------------------------------------------
@dataclass
class Enterprise:
    """One owner who joined the case, as the proposer sees them (no contact data)."""

    user_id: str
    letter_id: Optional[int]
    status: str
    company_name: str = ""
    business_number: str = ""
    employees: Optional[int] = None
    county_code: str = ""
    town_code: str = ""
    flags: list[str] = field(default_factory=list)
    pre_test: str = "not_done"
    post_test: str = "not_done"


@dataclass
class RosterStatus:
    case: CaseRecord
    edition: Edition
    enterprises: list[Enterprise]  # joined, in the order they joined (withdrawn ones left out)
    withdrawn: int
    calculation: Optional[Calculation]
    letters_needed: int
    letters_base: int  # the count the 10% is taken of (the planned count, else the joined)
    flag_counts: dict[str, int]
    township: TownshipResult

    @property
    def joined(self) -> int:
        return len(self.enterprises)

    def count(self, status: str) -> int:
        return sum(1 for e in self.enterprises if e.status == status)

    @property
    def submitted(self) -> int:
        return self.count(SUBMITTED)

    @property
    def letters_met(self) -> bool:
        return self.submitted >= self.letters_needed

    def tests_done(self, kind: str) -> int:
        return sum(1 for e in self.enterprises if getattr(e, kind) != "not_done")


def _letter_started(letter: Optional[LetterRecord]) -> bool:
    return letter is not None and any(getattr(letter, f) not in (None, "") for f in vocabulary.LETTER_FIELDS)


def _in_dialog(repo: Repository, user_id: str, case_id: int) -> bool:
    """The owner is answering the letter dialog of this case right now (answers kept in the dialog state)."""
    state = repo.dialog_state(user_id) or {}
    data = state.get("data") or {}
    return (state.get("dialog") in ("letter", "consent") and isinstance(data, dict)
            and str(data.get("case_id")) == str(case_id) and bool(state.get("values")))


def _enterprise(repo: Repository, case: CaseRecord, user_id: str, letter: Optional[LetterRecord],
                tests: dict[str, EnterpriseTestsRecord]) -> Enterprise:
    if letter is not None and letter.status == vocabulary.SUBMITTED:
        status = SUBMITTED
    elif _letter_started(letter) or _in_dialog(repo, user_id, case.id):
        status = IN_PROGRESS
    else:
        status = NOT_STARTED
    tested = tests.get(user_id)
    return Enterprise(
        user_id=user_id, letter_id=letter.id if letter else None, status=status,
        company_name=(letter.company_name if letter else "") or "",
        business_number=(letter.business_number if letter else "") or "",
        employees=letter.employees if letter else None,
        county_code=(letter.county_code if letter else "") or "", town_code=(letter.town_code if letter else "") or "",
        flags=letter_flags(letter, case.edition) if letter is not None else [],
        pre_test=tested.pre_test.state if tested else "not_done",
        post_test=tested.post_test.state if tested else "not_done")


def roster_status(repo: Repository, case_id: int) -> Optional[RosterStatus]:
    """The figures of one case (for the chat and the staff console); None when there is no such case."""
    case = repo.case(case_id)
    if case is None:
        return None
    rows = repo.owner_rows(case_id)
    edition = edition_for(case_edition=case.edition)[0]
    tests = {t.user_id: t for t in repo.tests_of_case(case_id)}
    enterprises, withdrawn = [], 0
    for user_id, letter in rows:
        if letter is not None and letter.status == vocabulary.WITHDRAWN:
            withdrawn += 1
            continue
        enterprises.append(_enterprise(repo, case, user_id, letter, tests))
    lookup = repo.township_group
    towns = [e.town_code for e in enterprises if e.town_code]
    try:
        calc = calculate(case.case_type, len(enterprises), edition, theme=case.theme or None, towns=towns,
                         township_group=lookup)
        township = calc.township
    except ValueError:
        calc = None
        township = township_bonus(towns, lookup, edition.review.township_bonus.groups)
    base = case.planned_count or len(enterprises)
    counts = {name: sum(1 for e in enterprises if name in e.flags) for name in ROSTER_FLAG_NAMES}
    return RosterStatus(case=case, edition=edition, enterprises=enterprises, withdrawn=withdrawn, calculation=calc,
                        letters_needed=edition.letters.needed(base), letters_base=base, flag_counts=counts,
                        township=township)


# -- how it reads ---------------------------------------------------------------------------------------
def _tier_rows(status: RosterStatus) -> list[tuple[str, str]]:
    calc = status.calculation
    if calc is None:
        return []
    rows = []
    if calc.tier:
        rows.append((_("Tier now"), _("{tier} ({span} enterprises), budget cap {amount}").format(
            tier=calc.tier.name, span=calc.tier.span(), amount=format_money(calc.tier.cap)) + cite(calc.tier.citation)))
    else:
        first = calc.case_type.tiers[0]
        rows.append((_("Tier now"), _("none: {short} more enterprises reach the minimum of {minimum} (tier {tier}, "
                                      "cap {amount})").format(short=calc.short_by, minimum=calc.case_type.minimum,
                                                              tier=first.name, amount=format_money(first.cap))
                     + cite(first.citation)))
    if calc.tier and calc.next_tier and calc.to_next_tier is not None:
        rows.append((_("Next tier"), ngettext("{more} more reaches tier {tier}, cap {amount}", "{more} more reach tier {tier}, cap {amount}",
                                               calc.to_next_tier).format(
            more=calc.to_next_tier, tier=calc.next_tier.name, amount=format_money(calc.next_tier.cap))
            + cite(calc.next_tier.citation)))
    return rows


def _over_nine_text(status: RosterStatus) -> str:
    n = status.flag_counts.get("over_nine", 0)
    kind = status.edition.case_types.get(status.case.case_type)
    allowed = kind.over_nine_max if kind else 0
    citation = (kind.over_nine_citation if kind else "") or status.edition.eligibility.employee_citation
    if allowed:
        text = _("{n} (at most {max} per case, each reviewed)").format(n=n, max=allowed)
        if n > allowed:
            text += " ⚠ " + _("{extra} over the allowance").format(extra=n - allowed)
    else:
        text = _("{n} (none allowed in this case type)").format(n=n)
        if n:
            text = "⚠ " + text
    return text + cite(citation)


def status_card(status: RosterStatus) -> Card:
    case, edition = status.case, status.edition
    kind = edition.case_types.get(case.case_type)
    counts = status.flag_counts
    letters = _("{submitted} submitted, {in_progress} in progress, {not_started} not started").format(
        submitted=status.submitted, in_progress=status.count(IN_PROGRESS), not_started=status.count(NOT_STARTED))
    if status.withdrawn:
        letters += _(" ({n} withdrawn)").format(n=status.withdrawn)
    if status.letters_met:
        met = _("met")
    else:
        met = "⚠ " + _("{more} more needed").format(more=status.letters_needed - status.submitted)
    joined = str(status.joined)
    if case.planned_count:
        joined = _("{joined} (planned {planned})").format(joined=status.joined, planned=case.planned_count)
    rows = [
        (_("Case"), _("「{plan}」 (case {id}), {case_type}").format(
            plan=case.plan_name, id=case.id, case_type=kind.name.text() if kind else case.case_type)),
        (_("Enterprises joined"), joined),
        (_("Letters of intent"), letters),
        (_("Letters needed at proposal"), _("{needed} ({percent}% of {count}, rounded up): {met}").format(
            needed=status.letters_needed, percent=edition.letters.at_proposal_percent, count=status.letters_base,
            met=met) + cite(edition.letters.citation)),
    ]
    rows += _tier_rows(status)
    rows += [
        (_("More than {limit} employees").format(limit=EMPLOYEES_LIMIT), _over_nine_text(status)),
        (_("Another program this year"), str(counts.get("conflict", 0))),
        (_("Same 統編 in another case"), str(counts.get("duplicate", 0))),
        (_("On the previous-program list"), str(counts.get("previous_program", 0))),
        (_("Not eligible by screening answers"), str(counts.get("not_eligible", 0))),
        (_("Pre-test done"), _("{n} of {total}").format(n=status.tests_done("pre_test"), total=status.joined)),
        (_("Post-test done"), _("{n} of {total}").format(n=status.tests_done("post_test"), total=status.joined)),
        (_("Township bonus"), township_text(status.township)),
    ]
    return Card(title=_("Roster status of 「{plan}」").format(plan=case.plan_name), rows=tuple(rows),
                footer=_("Flags are for the program office to review; they do not refuse anyone by themselves."))


def enterprise_card(number: int, e: Enterprise) -> Card:
    title = e.company_name or _("Enterprise {n} (not filled in yet)").format(n=number)
    rows = [(_("Letter of intent"), _(STATUS_NAMES[e.status]))]
    if e.business_number:
        rows.append((_("Business number"), e.business_number))
    size_and_place = []
    if e.employees is not None:
        employees = ngettext("{count} person", "{count} people", e.employees).format(count=e.employees)
        size_and_place.append(("⚠ " if e.employees > EMPLOYEES_LIMIT else "") + employees)
    if place(e.county_code, e.town_code):
        size_and_place.append(place(e.county_code, e.town_code))
    if size_and_place:
        rows.append((_("Employees / location"), list_join(size_and_place)))
    rows.append((_("Flags"), ("⚠ " + list_join(_(ROSTER_FLAG_NAMES[f]) for f in e.flags)) if e.flags else "—"))
    rows.append((_("Pre-test / post-test"), f"{_(TEST_NAMES[e.pre_test])} / {_(TEST_NAMES[e.post_test])}"))
    return Card(title=f"{number}. {title}", rows=tuple(rows))  # at most 12 lines on a phone (dialogs.cards)


def enterprise_page(status: RosterStatus, page: int) -> list[Message]:
    """A carousel of at most 12 enterprises and a line saying which ones, with "more" when there are more."""
    total = status.joined
    if total == 0:
        return [Text(_("No enterprise has joined yet. Owners join the case with the code {code}.").format(
            code=status.case.owner_code))]
    pages = (total + PAGE_SIZE - 1) // PAGE_SIZE
    page = min(max(page, 1), pages)
    first = (page - 1) * PAGE_SIZE
    chunk = status.enterprises[first:first + PAGE_SIZE]
    cards = tuple(enterprise_card(first + i + 1, e) for i, e in enumerate(chunk))
    alt = _("Enterprises {first}–{last} of {total}").format(first=first + 1, last=first + len(chunk), total=total)
    messages: list[Message] = [Carousel(cards, alt)]
    line = alt
    if page < pages:
        messages.append(Text(line, (Choice(_("More"), f"roster:{status.case.id}:{page + 1}"),
                                    Choice(_("Main menu"), "menu"))))
    else:
        messages.append(Text(line))
    return messages


# -- the signed download link ------------------------------------------------------------------------------
def roster_token(config: LinkSecrets, case_id: int, member_id: int) -> str:
    return URLSafeTimedSerializer(_secret(config), salt=_ROSTER_SALT).dumps({"c": case_id, "m": member_id})


def read_roster_token(config: LinkSecrets, token: str, max_age: int = LINK_MAX_AGE) -> dict:
    """The case and proposer membership a token names; raises SignatureExpired or BadSignature."""
    return URLSafeTimedSerializer(_secret(config), salt=_ROSTER_SALT).loads(token, max_age=max_age)


def roster_url(config: LinkSecrets, case_id: int, member_id: int) -> str:
    return f"{public_base(config)}/d/roster/{roster_token(config, case_id, member_id)}"


# -- the intent ----------------------------------------------------------------------------------------------
def proposer_cases(repo: Repository, user_id: str) -> list[tuple[int, CaseRecord]]:
    """(membership id, case) of every case the user is the proposer contact of."""
    return [(m.id, c) for m, c in repo.memberships(user_id) if m.role == vocabulary.PROPOSER]


def _not_a_proposer() -> Text:
    return Text(_("The roster status is for the proposer contact of a case. If you are one, send the proposer "
                  "code (it looks like P-7KQ4M-XR2PT) the program office gave you. Owners can see their own "
                  "letter with 我的意向書."))


def _show(ctx: Context, text: str) -> Outcome:
    repo = ctx.repository
    cases = proposer_cases(repo, ctx.user_id)
    if not cases:
        return Outcome([_not_a_proposer()])
    match = re.fullmatch(r"roster:(\d+)(?::(\d+))?", text.strip().lower())
    wanted, page = (int(match.group(1)), int(match.group(2) or 1)) if match else (None, 1)
    if wanted is None and len(cases) > 1:
        choices = tuple(Choice(c.plan_name, f"roster:{c.id}") for _m, c in cases[:13])
        return Outcome([Text(_("You are the proposer contact of {n} cases. Which one?").format(n=len(cases)), choices)])
    chosen = next(((m, c) for m, c in cases if wanted is None or c.id == wanted), None)
    if chosen is None:
        return Outcome([_not_a_proposer()])
    member_id, case = chosen
    status = roster_status(repo, case.id)
    if status is None:
        return Outcome([_not_a_proposer()])
    repo.audit("proposer", "roster.viewed", f"case:{case.id}", page=page)
    if page > 1:
        return Outcome(enterprise_page(status, page))
    messages: list[Message] = [fitted(status_card(status))]
    messages.append(Link(_("The case's roster (附件一 預定輔導企業彙總表) as an Excel file. The link works for 24 "
                           "hours; type 名單狀態 for a new one."), _("Download the roster"),
                         roster_url(ctx.links, case.id, member_id)))
    messages += enterprise_page(status, 1)
    return Outcome(messages)


DIALOGS: dict = {}
INTENTS = [Intent(NAME, PHRASES, _show, pattern=PATTERN)]
