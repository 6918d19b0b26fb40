"""How a letter of intent reads: its rows, its card, the names of its statuses and flags.

Shared by the letter dialog (dialogs.letter), "my data" (dialogs.data_rights) and the roles
(dialogs.roles), which is why it is apart from the dialog itself.
"""
from __future__ import annotations

from typing import Optional

from common import letters as vocabulary
from dialogs.edition import cite
from dialogs.i18n import _, N_, current_locale, ngettext
from dialogs.letter_doc import national_phone
from dialogs.messages import Card, Choice
from dialogs.repository import CaseRecord, LetterRecord
from dialogs.validators import EMPLOYEES_LIMIT, display_county, display_town

LETTER = "letter"  # the letter dialog's name (dialogs.letter)

TYPE_NAMES = {1: N_("Company or commercial registration (公司/商業登記)"), 2: N_("Tax registration only (稅籍登記)")}


def list_join(items) -> str:
    """Items as a list in the reader's language: 甲、乙 / A, B."""
    return (", " if current_locale() == "en" else "、").join(items)


def show_employees(value, ctx=None) -> str:
    text = (ngettext("{count} person", "{count} people", value) if isinstance(value, int)
            else _("{count} people")).format(count=value)
    if isinstance(value, int) and value > EMPLOYEES_LIMIT:
        text += " ⚠ " + _("more than 9: to be reviewed{cite}").format(cite=cite("§叁 輔導對象"))
    return text


def letter_rows(letter: LetterRecord) -> list[tuple[str, str, Optional[str]]]:
    """(label, shown value, field to change or None) for every field of a letter."""
    type_name = _(TYPE_NAMES[letter.company_type]) if letter.company_type in TYPE_NAMES else ""
    programs = (_("Yes") + (f": {letter.other_program_names}" if letter.other_program_names else "")
                if letter.other_programs else (_("No") if letter.other_programs is not None else ""))
    return [
        (_("Enterprise name"), letter.company_name or "", "company_name"),
        (_("Business number"), letter.business_number or "", "business_number"),
        (_("Type of enterprise"), type_name, "company_type"),
        (_("Employees"), show_employees(letter.employees) if letter.employees is not None else "", "employees"),
        (_("Location"), display_county(letter.county_code) + display_town(letter.town_code), "county"),
        (_("Main services or products"), letter.products or "", "products"),
        (_("Other government programs this year"), programs, "other_programs"),
        (_("Contact person"), letter.contact_name or "", "contact_name"),
        (_("Mobile"), national_phone(letter.mobile), "mobile"),
        (_("Phone"), national_phone(letter.phone, letter.phone_ext), "phone"),
        (_("E-mail"), letter.email or "", "email"),
        (_("Representative"), letter.representative or "", "representative"),
        (_("Address"), letter.address or "", "address"),
    ]


STATUS_NAMES = {vocabulary.DRAFT: N_("not sent yet"), vocabulary.SUBMITTED: N_("sent"),
                vocabulary.WITHDRAWN: N_("withdrawn")}


def letter_card(letter: LetterRecord, case: CaseRecord, changeable: bool = True) -> Card:
    """A sent letter on a phone: its status, the enterprise and what is marked for review; every field one tap away."""
    changes = {"company_name", "business_number"} if changeable else set()
    rows = [(_("Status"), _status(letter), None)]
    rows += [(label, value or "—", field) for label, value, field in letter_rows(letter) if field in changes]
    if letter.flags:
        rows.append((_("Marked for review"), list_join(_(FLAG_NAMES[f]) for f in letter.flags), None))
    buttons = (Choice(_("All fields / correct"), f"letter_fields:{letter.id}"),
               Choice(_("Withdraw the letter"), f"withdraw:{letter.id}")) if changeable else ()
    return _card(_("Letter of intent for 「{plan}」").format(plan=case.plan_name), letter, rows, buttons)


def letter_fields_card(letter: LetterRecord, case: CaseRecord) -> Card:
    """Every field of a sent letter with "change" beside it (long: show it with dialogs.cards.fitted)."""
    rows = [(_("Status"), _status(letter), None)]
    rows += [(label, value or "—", field) for label, value, field in letter_rows(letter)]
    if letter.flags:
        rows.append((_("Marked for review"), list_join(_(FLAG_NAMES[f]) for f in letter.flags), None))
    return _card(_("Letter of intent for 「{plan}」").format(plan=case.plan_name), letter, rows, ())


def _status(letter: LetterRecord) -> str:
    return _("{status}, version {version}").format(status=_(STATUS_NAMES[letter.status]), version=letter.version)


def _card(title: str, letter: LetterRecord, rows: list, buttons: tuple) -> Card:
    actions = tuple(Choice(_("Change"), f"fix:{field}:{letter.id}") if field else None for _l, _v, field in rows)
    return Card(title=title, rows=tuple((label, value) for label, value, _f in rows),
                row_actions=actions if any(actions) else (), actions=buttons)


FLAG_NAMES = {"over_nine": N_("more than 9 employees"), "conflict": N_("another program this year"),
              "previous_program": N_("on a previous-program list"), "duplicate": N_("same business number elsewhere")}
