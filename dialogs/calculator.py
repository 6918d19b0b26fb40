"""The proposer's calculator (提案試算): what a case of this size means under the edition.

`calculate` is pure: case type (and theme for 數位共融), number of enterprises → tier,
budget cap, letters of intent needed at proposal (10%, rounded up), how many of them may be
replaced, how many enterprises over the employee limit are allowed, how far below the
minimum or how far from the next tier, the startup bonus, the township bonus, the documents
checklist (§陸) and the days left to each upcoming date. Every figure comes from the
edition file, so next year's edition changes the answers without a code change.

The township bonus (§柒 備註2) needs the township → digital-development group table that
staff import. Until then the lookup answers None and the bonus is "unknown", never a guess:
pass any ``township_group(town_code) -> int | None`` (the default knows nothing).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Callable, Iterable, Optional, Protocol, Union

from dialogs.cards import fitted
from dialogs.dates import format_date, parse_roc, today as clock_today
from dialogs.edition import (CaseType, Document, Edition, EditionDate, Theme, Tier, cite, edition_in,
                             edition_notice, format_money)
from dialogs.eligibility import case_type_key
from dialogs.engine import NOT_SURE, Context, Dialog, Intent, Outcome, Refused, Step
from dialogs.repository import unknown_township_group
from dialogs.i18n import _, N_, current_locale, ngettext
from dialogs.contact import contact_button
from dialogs.notices import notice_due
from dialogs.messages import Card, Choice, Link, Message, Text
from dialogs.text import chinese_number, command_key, normalise

NAME = "calculator"
PHRASES = (NAME, N_("Proposal calculator"), N_("Calculate my proposal"), "提案試算", "試算")
SKIP = "skip"
YES, NO, UNKNOWN = "yes", "no", "unknown"
MAX_COUNT = 100000


class TownshipGroup(Protocol):
    """Looks up the digital-development group (1–4) of a township code; None when unknown."""

    def __call__(self, town_code: str) -> Optional[int]: ...


@dataclass(frozen=True)
class TownshipResult:
    """The township bonus: yes (some enterprises in the bonus groups), no, or unknown."""

    status: str
    in_bonus_groups: int = 0
    known: int = 0
    total: int = 0
    groups: tuple[int, ...] = ()


@dataclass(frozen=True)
class DateLeft:
    date: EditionDate
    days: int  # 0: today (or the window is under way)


@dataclass
class Calculation:
    """What the edition says about a case of this type and size."""

    edition: int
    case_type: CaseType
    count: int
    theme: Optional[Theme]
    tier: Optional[Tier]
    budget_cap: Optional[int]
    below_minimum: bool
    short_by: int  # enterprises missing to reach the minimum (0 when not below)
    next_tier: Optional[Tier]
    to_next_tier: Optional[int]  # enterprises more to reach the next tier
    letters_needed: int
    letters_percent: int
    letters_replaceable: int
    replacement_percent: int
    letters_due: Optional[EditionDate]
    over_nine_allowed: int
    startup_bonus: Optional[bool]  # None: the vendor's registration date was not given
    township: TownshipResult
    documents: tuple[Document, ...]
    dates_left: list[DateLeft] = field(default_factory=list)


def calculate(case_type: Union[str, CaseType], count: int, edition: Edition, theme: Optional[str] = None,
              startup_registered_on: Optional[date] = None, towns: Optional[Iterable[str]] = None,
              township_group: Optional[Callable[[str], Optional[int]]] = None,
              today: Optional[date] = None) -> Calculation:
    """Tier, cap, letters and bonuses for ``count`` enterprises in a case of ``case_type``."""
    kind = case_type if isinstance(case_type, CaseType) else edition.case_types.get(case_type)
    if kind is None:
        raise ValueError(f"unknown case type {case_type!r}; the {edition.year} edition has {sorted(edition.case_types)}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"the number of enterprises must be a whole number ≥ 0, not {count!r}")
    chosen_theme = None
    if theme not in (None, "", NOT_SURE):
        chosen_theme = kind.theme(theme)
        if chosen_theme is None:
            raise ValueError(f"{kind.key} has no theme {theme!r}")
    tier = kind.tier_for(count)
    below = count < kind.minimum
    upcoming = kind.next_tier(count)
    letters = edition.letters.needed(count)
    day = today or clock_today()

    bonus = edition.review.startup_bonus
    startup = None if startup_registered_on is None else startup_registered_on >= bonus.registered_on_or_after

    due = edition.dates.get(edition.letters.due)
    dates_left = [DateLeft(d, max(0, (d.day - day).days)) for d in edition.upcoming(day)]
    return Calculation(
        edition=edition.year,
        case_type=kind,
        count=count,
        theme=chosen_theme,
        tier=tier,
        budget_cap=tier.cap if tier else None,
        below_minimum=below,
        short_by=kind.minimum - count if below else 0,
        next_tier=upcoming,
        to_next_tier=upcoming.minimum - count if upcoming else None,
        letters_needed=letters,
        letters_percent=edition.letters.at_proposal_percent,
        letters_replaceable=edition.letters.replaceable(letters),
        replacement_percent=edition.letters.replacement_max_percent,
        letters_due=due,
        over_nine_allowed=kind.over_nine_max,
        startup_bonus=startup,
        township=township_bonus(towns, township_group or unknown_township_group, edition.review.township_bonus.groups),
        documents=edition.documents,
        dates_left=dates_left,
    )


def township_bonus(towns: Optional[Iterable[str]], lookup: Callable[[str], Optional[int]],
                   groups: Iterable[int]) -> TownshipResult:
    """Counts the enterprises whose township is in a bonus group; unknown when any is not known."""
    towns = [t for t in (towns or []) if t]
    bonus_groups = tuple(groups)
    if not towns:
        return TownshipResult(UNKNOWN, groups=bonus_groups)
    found = [lookup(t) for t in towns]
    known = [g for g in found if g is not None]
    inside = sum(1 for g in known if g in bonus_groups)
    if inside:
        status = YES
    elif len(known) == len(towns):
        status = NO
    else:
        status = UNKNOWN
    return TownshipResult(status, inside, len(known), len(towns), bonus_groups)


# -- how the result reads -------------------------------------------------------------------------


def _yes_no_unknown(value: Optional[bool]) -> str:
    if value is None:
        return _("not known yet")
    return _("yes") if value else _("no")


def result_rows(calc: Calculation, edition: Edition) -> list[tuple[str, str]]:
    """The result as (label, value) rows, each value with its paragraph."""
    kind = calc.case_type
    kind_text = kind.name.text()
    if calc.theme:
        kind_text = _("{case_type}, theme: {theme}").format(case_type=kind_text, theme=calc.theme.name.text())
    rows = [(_("Case type"), kind_text + cite(kind.citation))]
    rows.append((_("Enterprises"), str(calc.count)))
    if calc.tier:  # the tier and its cap are one line of §叁: cited once, after the cap
        rows.append((_("Tier"), _("{tier} ({span} enterprises)").format(tier=calc.tier.name, span=calc.tier.span())))
        rows.append((_("Budget cap"), _("{amount} (tax included)").format(amount=format_money(calc.tier.cap))
                     + cite(calc.tier.citation)))
    else:
        first = kind.tiers[0]
        rows.append((_("Tier"), _("none: {short} short of the minimum of {minimum}").format(
            short=calc.short_by, minimum=kind.minimum) + cite(first.citation)))
    if calc.next_tier and calc.to_next_tier is not None:
        rows.append((_("Next tier"), ngettext("{more} more reaches tier {tier}, cap {amount}", "{more} more reach tier {tier}, cap {amount}",
                                               calc.to_next_tier).format(
            more=calc.to_next_tier, tier=calc.next_tier.name, amount=format_money(calc.next_tier.cap))
            + cite(calc.next_tier.citation)))
    due = ""
    if calc.letters_due:
        due = _(", due {date}").format(date=calc.letters_due.formatted())
    rows.append((_("Letters of intent at proposal"), _("{letters} ({percent}% of {count}, rounded up){due}").format(
        letters=calc.letters_needed, percent=calc.letters_percent, count=calc.count, due=due)
        + cite(edition.letters.citation + ("；" + calc.letters_due.citation if calc.letters_due else ""))))
    rows.append((_("Replacing letters"), _("at most {n} of them after admission ({percent}%)").format(
        n=calc.letters_replaceable, percent=calc.replacement_percent) + cite(edition.letters.replacement_citation)))
    limit = edition.eligibility.employee_limit
    if calc.over_nine_allowed:
        over = _("at most {n} per case, each with its need stated and committee approval").format(n=calc.over_nine_allowed)
    else:
        over = _("none: every enterprise must have {limit} or fewer regular employees").format(limit=limit)
    rows.append((_("Enterprises over {limit} employees").format(limit=limit), over + cite(kind.over_nine_citation)))
    bonus = edition.review.startup_bonus
    rows.append((_("Startup bonus"), _yes_no_unknown(calc.startup_bonus) + " — " + _(
        "the solution's company registered on or after {date}").format(date=format_date(bonus.registered_on_or_after))
        + cite(bonus.citation)))
    rows.append((_("Township bonus"), township_text(calc.township) + cite(edition.review.township_bonus.citation)))
    return rows


def _is_zh() -> bool:
    return current_locale() != "en"


def township_text(result: TownshipResult) -> str:
    groups = "–".join(str(g) for g in (result.groups[0], result.groups[-1])) if result.groups else ""
    if result.status == YES:
        return _("yes: {n} of {total} enterprises are in townships of groups {groups}").format(
            n=result.in_bonus_groups, total=result.total, groups=groups)
    if result.status == NO:
        return _("no: none of the {total} enterprises is in a township of groups {groups}").format(
            total=result.total, groups=groups)
    if result.total == 0:
        return _("unknown: it depends on the enterprises' townships (groups {groups})").format(groups=groups)
    return _("unknown: the township groups are not available yet ({known} of {total} known)").format(
        known=result.known, total=result.total)


def days_text(days: int) -> str:
    if days == 0:
        return _("today or under way")
    return ngettext("{days} day left", "{days} days left", days).format(days=days)


def checklist_text(calc: Calculation, edition: Edition) -> str:
    """The documents checklist (§陸) and the days left to each upcoming date."""
    lines = [_("Documents to upload (§陸):")]
    lines += [f"□ {d.name.text()}：{d.detail.text()}{cite(d.citation)}" if _is_zh()
              else f"□ {d.name.text()}: {d.detail.text()}{cite(d.citation)}" for d in calc.documents]
    if calc.dates_left:
        lines += ["", _("Dates:")]
        for left in calc.dates_left:
            lines.append(_("{label}: {date}, {left}").format(
                label=left.date.label.text(), date=left.date.formatted(), left=days_text(left.days))
                + cite(left.date.citation))
    else:
        lines += ["", _("All the dates of the {year} edition have passed.").format(year=edition.year)]
    return "\n".join(lines)


def dates_text(calc: Calculation, edition: Edition, most: int = 4) -> str:
    """The next dates and the days left to each (the documents are a button away: short on a phone)."""
    if not calc.dates_left:
        return _("All the dates of the {year} edition have passed.").format(year=edition.year)
    lines = [_("Dates:")]
    for left in calc.dates_left[:most]:
        lines.append(_("{label}: {date}, {left}").format(
            label=left.date.label.text(), date=left.date.formatted(), left=days_text(left.days))
            + cite(left.date.citation))
    lines.append(_("The documents to upload (§陸) are under the button below."))
    return "\n".join(lines)


def calculation_messages(calc: Calculation, edition: Edition, covers_today: bool = True) -> list[Message]:
    """The result (its key figures first, the rest on the next pages), the checklist with dates, the system link."""
    card = Card(title=_("Proposal calculation ({year} edition)").format(year=edition.year),
                rows=tuple(result_rows(calc, edition)),
                footer=edition_notice(edition, covers_today))
    messages: list[Message] = [fitted(card), Text(dates_text(calc, edition), (
        Choice(_("Documents"), "faq:documents_required"), Choice(_("Key dates"), "faq:timeline"), contact_button()))]
    system = edition.link("proposal_system")
    if system:
        messages.insert(1, Link(_("Proposals are sent through the online proposal system.") + cite(system.citation),
                                system.label.text(), system.url))
    return messages


# -- the dialog ------------------------------------------------------------------------------------


def _edition(ctx: Context) -> Edition:
    return edition_in(ctx)[0]


def _case_type_choices(ctx: Context) -> list[Choice]:
    return [Choice(t.button.text(), k) for k, t in _edition(ctx).case_types.items()]


def _case_type(raw: str, ctx: Context) -> str:
    return case_type_key(raw, _edition(ctx))


def _has_themes(ctx: Context) -> bool:
    kind = _edition(ctx).case_types.get(ctx.values.get("case_type"))
    return bool(kind and kind.themes)


def _theme_choices(ctx: Context) -> list[Choice]:
    kind = _edition(ctx).case_types.get(ctx.values.get("case_type"))
    return [Choice(t.button.text(), t.key) for t in (kind.themes if kind else ())]


def _theme(raw: str, ctx: Context) -> str:
    kind = _edition(ctx).case_types.get(ctx.values.get("case_type"))
    key = command_key(raw)
    for theme in (kind.themes if kind else ()):
        names = {command_key(theme.key), command_key(theme.name.zh_TW), command_key(theme.name.en),
                 command_key(theme.button.zh_TW), command_key(theme.button.en)}
        if key in names or command_key(theme.name.zh_TW).rstrip("型") in key:
            return theme.key
    raise Refused(_("Please tap one of the themes, or Not sure."))


def enterprise_count(raw: str, ctx: Context) -> int:
    """The number of enterprises in the case ("60", "60家", "五十家"), with the reason when it cannot be one."""
    text = re.sub(r"(家企業|家|間|個|enterprises?)$", "", normalise(raw).replace(" ", "").replace(",", ""))
    text = re.sub(r"^(?:約|大約|共|總共|about|around)", "", text)
    if re.fullmatch(r"[-−]\d+(?:\.\d+)?", text):
        raise Refused(_("A number of enterprises cannot be negative. Please type how many enterprises the case "
                        "brings, for example 60."))
    if re.fullmatch(r"\d*\.\d+", text):
        raise Refused(_("Please type a whole number of enterprises, for example 60."))
    count = int(text) if re.fullmatch(r"\d{1,9}", text) else chinese_number(text)  # the one parser (cn2an)
    if count is None:
        raise Refused(_("Please type the number of enterprises as a number, for example 60."))
    if count < 1:
        raise Refused(_("A case brings at least one enterprise. Please type how many, for example 60."))
    if count > MAX_COUNT:
        raise Refused(_("{count} enterprises is more than any case brings. Please check the number (at most {max})."
                        ).format(count=count, max=MAX_COUNT))
    return count


def registration_date(raw: str, ctx: Context) -> str:
    """The vendor's registration date, ROC ("108/5/1", "108年5月1日") or western; or Skip."""
    key = command_key(raw)
    if key in (SKIP, "略過", "跳過"):
        return SKIP
    text = normalise(raw).replace(" ", "")
    try:
        first = int(re.split(r"[/\-年.]", text)[0])
        if first >= 1911:
            year, month, day = (int(p) for p in re.split(r"[/\-.]", text)[:3])
            day_ = date(year, month, day)
        else:
            day_ = parse_roc(text.replace(".", "/"))
    except (ValueError, IndexError):
        raise Refused(_("Please type the date like 108/5/1, or tap Skip."))
    if day_ > clock_today():
        raise Refused(_("That date is in the future; please type the registration date, or tap Skip."))
    return day_.isoformat()


def _finish(ctx: Context) -> Outcome:
    edition, covers = edition_in(ctx)
    values = ctx.values
    registered = values.get("startup_registered_on")
    registered_on = date.fromisoformat(registered) if registered not in (None, SKIP, NOT_SURE) else None
    calc = calculate(values["case_type"], values["count"], edition, theme=values.get("theme"),
                     startup_registered_on=registered_on, towns=(ctx.data or {}).get("towns"),
                     township_group=ctx.township_group, today=ctx.clock().date())
    ctx.data["calculation"] = {"case_type": calc.case_type.key, "count": calc.count,
                               "theme": calc.theme.key if calc.theme else None,
                               "tier": calc.tier.name if calc.tier else None, "edition": edition.year}
    return Outcome(messages=calculation_messages(calc, edition, covers or not notice_due(ctx)),
                   data={"calculation": ctx.data["calculation"]})


def _intro(ctx: Context) -> list[Message]:
    edition, covers = edition_in(ctx)
    ctx.data["edition"] = edition.year
    return [Text(_("Let's work out what your case means: tier, budget cap, letters of intent and dates.")
                 + "\n" + edition_notice(edition, covers or not notice_due(ctx)))]


def calculator_dialog() -> Dialog:
    """The 提案試算 dialog: case type, theme (數位共融), number of enterprises, startup date."""
    steps = [
        Step("case_type", N_("Which kind of case are you proposing?"), validate=_case_type,
             choices=_case_type_choices, label=N_("Case type")),
        Step("theme", N_("Which theme does your 數位共融 case take?"), validate=_theme, choices=_theme_choices,
             when=_has_themes, not_sure=True, label=N_("Theme")),
        Step("count", N_("How many enterprises will the case coach? Type the number."), validate=enterprise_count,
             label=N_("Enterprises")),
        Step("startup_registered_on", N_("For the startup bonus: when was the company that offers the cloud solution "
                                         "registered? Type the date (for example 108/5/1), or tap Skip."),
             validate=registration_date, choices=(Choice(N_("Skip"), SKIP),), not_sure=True,
             label=N_("Registered on")),
    ]
    return Dialog(name=NAME, steps=steps, finish=_finish, intro=_intro, title=N_("the proposal calculation"))


def calculator_intent() -> Intent:
    """The entry point: "提案試算" (or the menu's "calculator") starts the calculator dialog."""
    return Intent(NAME, PHRASES, lambda ctx, text: Outcome(start=NAME))


# What dialogs.main picks up.
DIALOGS = {NAME: calculator_dialog()}
INTENTS = [calculator_intent()]
