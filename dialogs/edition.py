"""The program edition (年度計畫) as data: load it, check it, choose the one that applies.

One YAML file per edition, ``storage/editions/<year>/edition.yaml`` (112 = 2023). It holds
every date, tier, cap, rule, document, link and contact of that year's guidelines, each
with the paragraph it comes from (its *citation*, shown by the bot). Staff add the next
year by adding a folder; ``check_edition_file`` (``gonghao edition check FILE``) lists
every problem in a file, in plain words, before the bot uses it.

The bot answers from the edition whose period covers today, or from the edition a case
belongs to. When none covers today it answers from the most recent one and says so
(`edition_notice`), because that year's dates may no longer hold.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
import time as time_module
from typing import Any, Iterable, Optional, Union

import yaml

from dialogs.dates import TAIPEI, format_date, parse_roc, today as clock_today
from dialogs.i18n import _, current_locale

EDITION_FILE = "edition.yaml"

# Dates the code relies on (reminders, the calculator, answers). Others may be added freely.
REQUIRED_DATES = (
    "registration_opens",
    "proposal_deadline",
    "letters_due",
    "selection_meeting",
    "tool_import_deadline",
    "coaching_ends",
)
REGISTRATION_TYPES = ("company", "commercial", "limited_partnership", "tax_only")
LOCALES = ("zh_TW", "en")


def editions_dir() -> Path:
    """Where the editions live: ``storage/editions`` of this repository."""
    return Path(__file__).resolve().parent.parent / "storage" / "editions"


# -- the edition, typed -------------------------------------------------------------------


@dataclass(frozen=True)
class Localised:
    """A text given in both languages by the data file."""

    zh_TW: str
    en: str

    def text(self) -> str:
        """The text in the locale being answered."""
        return self.en if current_locale() == "en" else self.zh_TW

    def __str__(self) -> str:
        return self.text()


@dataclass(frozen=True)
class Cited:
    """A rule or condition in words, with its paragraph."""

    text: Localised
    citation: str


@dataclass(frozen=True)
class Period:
    """The days this edition's rules answer for."""

    start: date
    end: date
    citation: str
    note: Optional[Localised] = None

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class EditionDate:
    """One date of the edition: a deadline, a meeting, a checkpoint."""

    key: str
    label: Localised
    day: date
    citation: str
    time: Optional[time] = None  # None: by the end of that day
    until: Optional[date] = None  # a window (e.g. "late March")
    tentative: bool = False
    note: Optional[Localised] = None
    shown: Optional[Localised] = None  # how the data wants the date written (e.g. 3月下旬)

    @property
    def moment(self) -> datetime:
        """The deadline as a moment in Asia/Taipei (end of day when no time is given)."""
        return datetime.combine(self.day, self.time or time(23, 59, 59), tzinfo=TAIPEI)

    @property
    def last_day(self) -> date:
        return self.until or self.day

    def formatted(self) -> str:
        """The date in the current locale, with its time, "tentative" when so."""
        if self.shown:
            return self.shown.text()
        if self.time:
            text = format_date(datetime.combine(self.day, self.time, tzinfo=TAIPEI))
        else:
            text = format_date(self.day)
        if self.until and self.until != self.day:
            text = _("{start} to {end}").format(start=text, end=format_date(self.until))
        if self.tentative:
            text = _("{date} (tentative)").format(date=text)
        return text


@dataclass(frozen=True)
class Tier:
    """A band of enterprise counts and its budget cap (NT$, tax included)."""

    name: str
    minimum: int
    maximum: Optional[int]  # None: no upper bound
    cap: int
    citation: str

    def holds(self, count: int) -> bool:
        return count >= self.minimum and (self.maximum is None or count <= self.maximum)

    def span(self) -> str:
        if self.maximum is None:
            return _("{min} or more").format(min=self.minimum)
        return _("{min} to {max}").format(min=self.minimum, max=self.maximum)


@dataclass(frozen=True)
class Theme:
    key: str
    name: Localised
    description: Localised
    citation: str
    button: Localised  # a short name for a button (≤ 20 characters)


@dataclass(frozen=True)
class CaseType:
    """數位普及輔導 or 數位共融輔導: tiers, themes and the over-9 allowance."""

    key: str
    name: Localised
    citation: str
    tiers: tuple[Tier, ...]
    themes: tuple[Theme, ...] = ()
    over_nine_max: int = 0
    over_nine_citation: str = ""
    button: Optional[Localised] = None  # a short name for a button (≤ 20 characters)

    def __post_init__(self):
        if self.button is None:
            object.__setattr__(self, "button", self.name)

    @property
    def minimum(self) -> int:
        return self.tiers[0].minimum

    def tier_for(self, count: int) -> Optional[Tier]:
        for tier in self.tiers:
            if tier.holds(count):
                return tier
        return None

    def next_tier(self, count: int) -> Optional[Tier]:
        """The first tier that starts above ``count``."""
        for tier in self.tiers:
            if tier.minimum > count:
                return tier
        return None

    def theme(self, key: str) -> Optional[Theme]:
        for theme in self.themes:
            if theme.key == key:
                return theme
        return None


@dataclass(frozen=True)
class Program:
    """A program whose enterprises may not take part (限制條件 1)."""

    key: str
    name: Localised
    citation: str
    check_link: Optional[str] = None  # a key of Edition.links


@dataclass(frozen=True)
class EligibilityRules:
    registration_accepted: tuple[str, ...]
    registration_citation: str
    employee_limit: int
    employee_citation: str
    over_nine_conditions: Localised
    over_nine_citation: str
    conflicting_programs: tuple[Program, ...]
    agencies: tuple[Localised, ...]
    agencies_citation: str
    other_sme_program: Cited
    existing_customer: Cited
    industry: Cited


@dataclass(frozen=True)
class LetterRules:
    at_proposal_percent: int
    citation: str
    due: str  # a key of Edition.dates
    replacement_max_percent: int
    replacement_citation: str
    all_after_admission: Cited

    def needed(self, count: int) -> int:
        """Letters of intent needed at proposal: the percentage of ``count``, rounded up."""
        return -(-max(count, 0) * self.at_proposal_percent // 100)

    def replaceable(self, letters: int) -> int:
        """How many of ``letters`` may be replaced after admission (not more than the share)."""
        return letters * self.replacement_max_percent // 100


@dataclass(frozen=True)
class Document:
    key: str
    name: Localised
    detail: Localised
    citation: str


@dataclass(frozen=True)
class ReviewItem:
    key: str
    name: Localised
    weight: int
    citation: str


@dataclass(frozen=True)
class StartupBonus:
    name: Localised
    registered_on_or_after: date
    citation: str
    note: Optional[Localised] = None


@dataclass(frozen=True)
class TownshipBonus:
    name: Localised
    groups: tuple[int, ...]
    citation: str
    link: Optional[str] = None


@dataclass(frozen=True)
class Review:
    citation: str
    items: tuple[ReviewItem, ...]
    startup_bonus: StartupBonus
    township_bonus: TownshipBonus


@dataclass(frozen=True)
class Phone:
    number: str
    extension: str = ""
    name: str = ""

    def text(self) -> str:
        if self.extension:
            return _("{number} ext. {extension} {name}").format(
                number=self.number, extension=self.extension, name=self.name).strip()
        return f"{self.number} {self.name}".strip()


@dataclass(frozen=True)
class Contact:
    unit: Localised
    phones: tuple[Phone, ...]
    fax: str
    email: str
    address: Localised
    facebook: str
    citation: str


@dataclass(frozen=True)
class LinkEntry:
    key: str
    label: Localised
    url: str
    citation: str


@dataclass(frozen=True)
class Edition:
    """One year's program: its dates, case types, rules and links, all cited."""

    year: int
    name: Localised
    source: str
    period: Period
    dates: dict[str, EditionDate]
    case_types: dict[str, CaseType]
    eligibility: EligibilityRules
    letters: LetterRules
    documents: tuple[Document, ...]
    review: Review
    cloud_conditions: tuple[Cited, ...]
    contact: Contact
    links: dict[str, LinkEntry]
    path: Optional[Path] = field(default=None, compare=False)

    def __repr__(self) -> str:
        return f"Edition({self.year}, {self.period.start}..{self.period.end}, {self.path})"

    def covers(self, day: date) -> bool:
        return self.period.covers(day)

    def date(self, key: str) -> EditionDate:
        return self.dates[key]

    @property
    def checkpoints(self) -> list[EditionDate]:
        return [d for k, d in self.dates.items() if k.startswith("checkpoint")]

    def upcoming(self, day: date) -> list[EditionDate]:
        """Dates whose day (or window) has not passed on ``day``, soonest first."""
        return sorted((d for d in self.dates.values() if d.last_day >= day), key=lambda d: d.day)

    def link(self, key: Optional[str]) -> Optional[LinkEntry]:
        return self.links.get(key) if key else None

    def case_type(self, key: str) -> CaseType:
        return self.case_types[key]


class EditionError(ValueError):
    """An edition file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


# -- reading and checking -------------------------------------------------------------------

_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_MISSING = object()


class _Reader:
    """Reads the raw YAML into typed values, noting every problem with where it is."""

    def __init__(self):
        self.problems: list[str] = []

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}" if where else message)

    def mapping(self, value: Any, where: str) -> dict:
        if value is _MISSING:
            return {}
        if not isinstance(value, dict):
            self.problem(where, _("should be a group of keys (key: value), not {value!r}").format(value=value))
            return {}
        return value

    def get(self, data: dict, key: str, where: str, required: bool = True) -> Any:
        if key not in data or data[key] is None:
            if required:
                self.problem(_join(where, key), _("is missing"))
            return _MISSING
        return data[key]

    def text(self, data: dict, key: str, where: str, required: bool = True) -> str:
        value = self.get(data, key, where, required)
        if value is _MISSING:
            return ""
        if not isinstance(value, (str, int)) or isinstance(value, bool) or not str(value).strip():
            self.problem(_join(where, key), _("should be a text, not {value!r}").format(value=value))
            return ""
        return str(value).strip()

    def citation(self, data: dict, where: str, key: str = "citation") -> str:
        value = self.get(data, key, where, required=False)
        if value is _MISSING or not str(value).strip():
            self.problem(_join(where, key), _("the citation is missing (the paragraph of the guidelines, e.g. \"§伍.三\")"))
            return ""
        if not isinstance(value, str):
            self.problem(_join(where, key), _("should be a text, not {value!r}").format(value=value))
            return ""
        return value.strip()

    def localised(self, data: dict, key: str, where: str, required: bool = True) -> Optional[Localised]:
        value = self.get(data, key, where, required)
        if value is _MISSING:
            return Localised("", "") if required else None
        spot = _join(where, key)
        if not isinstance(value, dict):
            self.problem(spot, _("needs the text in both languages: {example}").format(example="{zh_TW: …, en: …}"))
            return Localised(str(value), str(value))
        texts = {}
        for locale in LOCALES:
            text = value.get(locale)
            if not isinstance(text, str) or not text.strip():
                self.problem(spot, _("the {locale} text is missing").format(locale=locale))
                text = ""
            texts[locale] = text.strip()
        return Localised(**texts)

    def whole(self, data: dict, key: str, where: str, minimum: int = 1, required: bool = True,
              message: Optional[str] = None) -> Optional[int]:
        value = self.get(data, key, where, required)
        if value is _MISSING:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            if message is None:
                message = (_("should be a positive whole number, not {value!r}") if minimum >= 1
                           else _("should be a whole number of at least {minimum}, not {value!r}"))
            self.problem(_join(where, key), message.format(value=value, minimum=minimum))
            return None
        return value

    def when(self, value: Any, where: str) -> tuple[Optional[date], Optional[time]]:
        """Reads "112/3/16", "112/3/16 17:00", "2023-03-16 17:00" or a YAML date."""
        if isinstance(value, datetime):
            moment = value if value.tzinfo is None else value.astimezone(TAIPEI).replace(tzinfo=None)
            return moment.date(), moment.time().replace(second=0, microsecond=0)
        if isinstance(value, date):
            return value, None
        if not isinstance(value, str) or not value.strip():
            self.problem(where, _("should be a date such as \"112/3/16\" or \"112/3/16 17:00\", not {value!r}").format(value=value))
            return None, None
        text = value.strip().replace("T", " ")
        day_part, _sep, time_part = text.partition(" ")
        try:
            first = int(re.split(r"[/\-年]", day_part)[0])
            if first >= 1911:
                year, month, day_ = (int(p) for p in re.split(r"[/\-]", day_part)[:3])
                day = date(year, month, day_)
            else:
                day = parse_roc(day_part)
        except (ValueError, IndexError):
            self.problem(where, _("is not a real date: {value!r} (write \"112/3/16\" or \"112/3/16 17:00\")").format(value=value))
            return None, None
        at = None
        if time_part.strip():
            match = _TIME.match(time_part.strip())
            if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
                self.problem(where, _("the time should look like 17:00, not {value!r}").format(value=time_part.strip()))
            else:
                at = time(int(match.group(1)), int(match.group(2)))
        return day, at


def _join(where: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{where}[{key + 1}]"
    return f"{where} → {key}" if where else str(key)


def _read_edition(raw: Any, path: Optional[Path]) -> tuple[Optional[Edition], list[str]]:
    r = _Reader()
    if not isinstance(raw, dict):
        r.problem("", _("the file should hold the keys of an edition (edition, period, dates, …)"))
        return None, r.problems

    year = r.whole(raw, "edition", "")
    if year is not None and path is not None and path.parent.name.isdigit() and int(path.parent.name) != year:
        r.problem("edition", _("the file says edition {year} but its folder is {folder}").format(
            year=year, folder=path.parent.name))
    name = r.localised(raw, "name", "")
    source = r.text(raw, "source", "", required=False)
    zone = raw.get("timezone", "Asia/Taipei")
    if zone != "Asia/Taipei":
        r.problem("timezone", _("all times are Asia/Taipei; found {value!r}").format(value=zone))

    # period
    p = r.mapping(r.get(raw, "period", ""), "period")
    p_start, _t1 = r.when(p["start"], "period → start") if "start" in p else (None, None)
    p_end, _t2 = r.when(p["end"], "period → end") if "end" in p else (None, None)
    for key in ("start", "end"):
        if p and key not in p:
            r.problem(_join("period", key), _("is missing"))
    if p_start and p_end and p_start > p_end:
        r.problem("period", _("starts ({start}) after it ends ({end})").format(start=p_start, end=p_end))
    period = Period(p_start or date.min, p_end or date.min, r.citation(p, "period") if p else "",
                    r.localised(p, "note", "period", required=False))

    # dates
    dates_raw = r.mapping(r.get(raw, "dates", ""), "dates")
    dates: dict[str, EditionDate] = {}
    pending_after: list[tuple[str, dict]] = []
    for key, entry in dates_raw.items():
        where = _join("dates", key)
        entry = r.mapping(entry, where)
        if not entry:
            continue
        if "after" in entry and "at" not in entry:
            pending_after.append((key, entry))
            continue
        dates_entry = _read_date(r, key, entry, where, None)
        if dates_entry:
            dates[key] = dates_entry
    for key, entry in pending_after:  # "two days after the proposal deadline"
        where = _join("dates", key)
        after = r.mapping(entry["after"], _join(where, "after"))
        base_key = after.get("date")
        days = r.whole(after, "days", _join(where, "after"), minimum=0)
        base = dates.get(base_key)
        if base is None:
            r.problem(_join(where, "after"), _("refers to the date {key!r}, which is not in dates").format(key=base_key))
            continue
        if days is None:
            continue
        dates_entry = _read_date(r, key, entry, where, (base.day + timedelta(days=days), None))  # 「二日內」: no time
        if dates_entry:
            dates[key] = dates_entry
    if dates_raw or "dates" in raw:
        for key in REQUIRED_DATES:
            if key not in dates_raw:
                r.problem(_join("dates", key), _("is missing (the bot needs this date)"))
        if not any(k.startswith("checkpoint") for k in dates_raw):
            r.problem("dates", _("no checkpoint (checkpoint_1, …) is given"))
    _check_order(r, dates, period)
    dates = dict(sorted(dates.items(), key=lambda kv: (kv[1].day, kv[1].time or time(23, 59))))

    # case types
    types_raw = r.mapping(r.get(raw, "case_types", ""), "case_types")
    case_types: dict[str, CaseType] = {}
    for key, entry in types_raw.items():
        case_type = _read_case_type(r, key, r.mapping(entry, _join("case_types", key)), _join("case_types", key))
        if case_type:
            case_types[key] = case_type
    if "case_types" in raw and not types_raw:
        r.problem("case_types", _("no case type is given"))

    links = _read_links(r, r.mapping(r.get(raw, "links", ""), "links"))
    eligibility = _read_eligibility(r, r.mapping(r.get(raw, "eligibility", ""), "eligibility"), links)
    letters = _read_letters(r, r.mapping(r.get(raw, "letters", ""), "letters"), dates)

    docs_raw = r.get(raw, "documents", "")
    documents = []
    if docs_raw is not _MISSING:
        if not isinstance(docs_raw, list) or not docs_raw:
            r.problem("documents", _("should be a list of documents"))
        else:
            for i, entry in enumerate(docs_raw):
                where = _join("documents", i)
                entry = r.mapping(entry, where)
                documents.append(Document(r.text(entry, "key", where), r.localised(entry, "name", where),
                                          r.localised(entry, "detail", where), r.citation(entry, where)))

    review = _read_review(r, r.mapping(r.get(raw, "review", ""), "review"), links)

    cloud_raw = r.get(raw, "cloud_conditions", "")
    cloud = []
    if cloud_raw is not _MISSING:
        if not isinstance(cloud_raw, list) or not cloud_raw:
            r.problem("cloud_conditions", _("should be a list of conditions"))
        else:
            for i, entry in enumerate(cloud_raw):
                where = _join("cloud_conditions", i)
                entry = r.mapping(entry, where)
                cloud.append(Cited(r.localised(entry, "text", where), r.citation(entry, where)))

    contact = _read_contact(r, r.mapping(r.get(raw, "contact", ""), "contact"))

    if r.problems:
        return None, r.problems
    edition = Edition(
        year=year, name=name, source=source, period=period, dates=dates, case_types=case_types,
        eligibility=eligibility, letters=letters, documents=tuple(documents), review=review,
        cloud_conditions=tuple(cloud), contact=contact, links=links, path=path,
    )
    return edition, []


def _read_date(r: _Reader, key: str, entry: dict, where: str, derived) -> Optional[EditionDate]:
    if derived is not None:
        day, at = derived
    elif "at" not in entry:
        r.problem(_join(where, "at"), _("is missing"))
        return None
    else:
        day, at = r.when(entry["at"], _join(where, "at"))
    until = None
    if "until" in entry:
        until, _t = r.when(entry["until"], _join(where, "until"))
        if until and day and until < day:
            r.problem(_join(where, "until"), _("ends before it starts"))
    tentative = entry.get("tentative", False)
    if not isinstance(tentative, bool):
        r.problem(_join(where, "tentative"), _("should be true or false"))
        tentative = False
    label = r.localised(entry, "label", where)
    citation = r.citation(entry, where)
    note = r.localised(entry, "note", where, required=False)
    shown = r.localised(entry, "shown", where, required=False)
    if day is None:
        return None
    return EditionDate(key=key, label=label, day=day, citation=citation, time=at, until=until,
                       tentative=tentative, note=note, shown=shown)


def _check_order(r: _Reader, dates: dict[str, EditionDate], period: Period) -> None:
    def before(first: str, second: str, message: str):
        a, b = dates.get(first), dates.get(second)
        if a and b and a.moment >= b.moment:
            r.problem("dates", message.format(first=first, second=second))

    before("registration_opens", "proposal_deadline", _("{first} should come before {second}"))
    before("proposal_deadline", "letters_due", _("{first} should come before {second}"))
    before("proposal_deadline", "tool_import_deadline", _("{first} should come before {second}"))
    ends = dates.get("coaching_ends")
    if ends and period.end != date.min and ends.day > period.end:
        r.problem("dates → coaching_ends", _("is after the end of the edition's period ({end})").format(end=period.end))
    for key, entry in dates.items():
        if key.startswith("checkpoint") and ends and entry.day > ends.day:
            r.problem(_join("dates", key), _("is after the end of coaching"))


def _read_case_type(r: _Reader, key: str, entry: dict, where: str) -> Optional[CaseType]:
    if not entry:
        return None
    name = r.localised(entry, "name", where)
    citation = r.citation(entry, where)
    over_nine = r.whole(entry, "over_nine_max", where, minimum=0)
    over_nine_citation = r.citation(entry, where, "over_nine_citation")
    tiers: list[Tier] = []
    tiers_raw = r.get(entry, "tiers", where)
    if tiers_raw is not _MISSING:
        if not isinstance(tiers_raw, list) or not tiers_raw:
            r.problem(_join(where, "tiers"), _("should be a list of tiers (A, B, …)"))
        else:
            for i, t in enumerate(tiers_raw):
                spot = _join(_join(where, "tiers"), i)
                t = r.mapping(t, spot)
                tier_name = r.text(t, "tier", spot)
                low = r.whole(t, "min", spot)
                high = r.whole(t, "max", spot, required=False)
                cap = r.whole(t, "cap", spot, message=_("the budget cap should be a positive amount in NT$, not {value!r}"))
                tier_citation = r.citation(t, spot)
                if low is not None and high is not None and high < low:
                    r.problem(spot, _("max ({max}) is below min ({min})").format(max=high, min=low))
                    continue
                if low is not None:  # kept even with a bad cap, so overlaps are reported in the same run
                    tiers.append(Tier(tier_name, low, high, cap or 0, tier_citation))
            tiers.sort(key=lambda t: t.minimum)
            names = [t.name for t in tiers]
            if len(set(names)) != len(names):
                r.problem(_join(where, "tiers"), _("two tiers have the same name"))
            for lower, upper in zip(tiers, tiers[1:]):
                if lower.maximum is None or lower.maximum >= upper.minimum:
                    r.problem(_join(where, "tiers"), _("tiers {a} and {b} overlap").format(a=lower.name, b=upper.name))
                elif lower.maximum + 1 < upper.minimum:
                    r.problem(_join(where, "tiers"), _("counts {low} to {high} fall in no tier (between {a} and {b})").format(
                        low=lower.maximum + 1, high=upper.minimum - 1, a=lower.name, b=upper.name))
                elif 0 < upper.cap < lower.cap:
                    r.problem(_join(where, "tiers"), _("tier {b} has a lower cap than tier {a}").format(a=lower.name, b=upper.name))
    themes = []
    themes_raw = entry.get("themes") or []
    if not isinstance(themes_raw, list):
        r.problem(_join(where, "themes"), _("should be a list of themes"))
        themes_raw = []
    for i, t in enumerate(themes_raw):
        spot = _join(_join(where, "themes"), i)
        t = r.mapping(t, spot)
        theme_name = r.localised(t, "name", spot)
        themes.append(Theme(r.text(t, "key", spot), theme_name, r.localised(t, "description", spot),
                            r.citation(t, spot), _button(r, t, spot, theme_name)))
    if not tiers:
        return None
    return CaseType(key, name, citation, tuple(tiers), tuple(themes), over_nine or 0, over_nine_citation,
                    _button(r, entry, where, name))


BUTTON_MAX = 20  # LINE quick-reply labels


def _button(r: _Reader, entry: dict, where: str, name: Localised) -> Localised:
    """The optional short ``button`` name (the full name when absent); LINE allows 20 characters."""
    button = r.localised(entry, "button", where, required=False)
    spot = _join(where, "button") if button else _join(where, "name")
    button = button or name
    for locale in LOCALES:
        text = getattr(button, locale)
        if len(text) > BUTTON_MAX:
            r.problem(spot, _("{text!r} is too long for a button ({n} characters, at most {max}); add a shorter \"button\"").format(
                text=text, n=len(text), max=BUTTON_MAX))
    return button


def _read_links(r: _Reader, raw: dict) -> dict[str, LinkEntry]:
    links = {}
    for key, entry in raw.items():
        where = _join("links", key)
        entry = r.mapping(entry, where)
        url = r.text(entry, "url", where)
        if url and not url.startswith(("https://", "http://")):
            r.problem(_join(where, "url"), _("should start with https://"))
        links[key] = LinkEntry(key, r.localised(entry, "label", where), url, r.citation(entry, where))
    return links


def _check_link_key(r: _Reader, key: Any, where: str, links: dict) -> Optional[str]:
    if key in (None, ""):
        return None
    if key not in links:
        r.problem(where, _("refers to the link {key!r}, which is not in links").format(key=key))
        return None
    return key


def _read_eligibility(r: _Reader, raw: dict, links: dict) -> Optional[EligibilityRules]:
    if not raw:
        return None
    reg = r.mapping(r.get(raw, "registration", "eligibility"), "eligibility → registration")
    accepted = reg.get("accepted") or []
    if not isinstance(accepted, list) or not accepted:
        r.problem("eligibility → registration → accepted", _("should list the accepted registrations"))
        accepted = []
    for item in accepted:
        if item not in REGISTRATION_TYPES:
            r.problem("eligibility → registration → accepted", _("unknown registration {value!r} (known: {known})").format(
                value=item, known=", ".join(REGISTRATION_TYPES)))
    emp = r.mapping(r.get(raw, "employees", "eligibility"), "eligibility → employees")
    limit = r.whole(emp, "max", "eligibility → employees") if emp else None
    over = r.mapping(r.get(raw, "over_nine", "eligibility"), "eligibility → over_nine")
    programs = []
    progs_raw = r.get(raw, "conflicting_programs", "eligibility")
    if progs_raw is not _MISSING:
        if not isinstance(progs_raw, list) or not progs_raw:
            r.problem("eligibility → conflicting_programs", _("should be a list of programs"))
        else:
            for i, entry in enumerate(progs_raw):
                where = _join("eligibility → conflicting_programs", i)
                entry = r.mapping(entry, where)
                key = r.text(entry, "key", where)
                if key and not re.fullmatch(r"[a-z0-9_]+", key):
                    r.problem(_join(where, "key"), _("use lower-case letters, digits and _ only"))
                programs.append(Program(key, r.localised(entry, "name", where), r.citation(entry, where),
                                        _check_link_key(r, entry.get("check_link"), _join(where, "check_link"), links)))
    ag = r.mapping(r.get(raw, "agencies", "eligibility"), "eligibility → agencies")
    agencies = []
    if ag:
        listed = ag.get("list")
        if not isinstance(listed, list) or not listed:
            r.problem("eligibility → agencies → list", _("should list the agencies of 註4"))
        else:
            for i, item in enumerate(listed):
                agencies.append(r.localised({"x": item}, "x", _join("eligibility → agencies → list", i)))
    def cited(key: str) -> Cited:
        entry = r.mapping(r.get(raw, key, "eligibility"), _join("eligibility", key))
        if not entry:
            return Cited(Localised("", ""), "")
        return Cited(r.localised(entry, "text", _join("eligibility", key)), r.citation(entry, _join("eligibility", key)))

    return EligibilityRules(
        registration_accepted=tuple(accepted),
        registration_citation=r.citation(reg, "eligibility → registration") if reg else "",
        employee_limit=limit or 0,
        employee_citation=r.citation(emp, "eligibility → employees") if emp else "",
        over_nine_conditions=r.localised(over, "conditions", "eligibility → over_nine") if over else Localised("", ""),
        over_nine_citation=r.citation(over, "eligibility → over_nine") if over else "",
        conflicting_programs=tuple(programs),
        agencies=tuple(agencies),
        agencies_citation=r.citation(ag, "eligibility → agencies") if ag else "",
        other_sme_program=cited("other_sme_program"),
        existing_customer=cited("existing_customer"),
        industry=cited("industry"),
    )


def _read_letters(r: _Reader, raw: dict, dates: dict) -> Optional[LetterRules]:
    if not raw:
        return None
    percent = r.whole(raw, "at_proposal_percent", "letters")
    if percent is not None and percent > 100:
        r.problem("letters → at_proposal_percent", _("should be at most 100"))
    replacement = r.whole(raw, "replacement_max_percent", "letters", minimum=0)
    if replacement is not None and replacement > 100:
        r.problem("letters → replacement_max_percent", _("should be at most 100"))
    due = r.text(raw, "due", "letters")
    if due and due not in dates:
        r.problem("letters → due", _("refers to the date {key!r}, which is not in dates").format(key=due))
    after = r.mapping(r.get(raw, "all_after_admission", "letters"), "letters → all_after_admission")
    return LetterRules(
        at_proposal_percent=percent or 0,
        citation=r.citation(raw, "letters"),
        due=due,
        replacement_max_percent=replacement or 0,
        replacement_citation=r.citation(raw, "letters", "replacement_citation"),
        all_after_admission=Cited(r.localised(after, "text", "letters → all_after_admission"),
                                  r.citation(after, "letters → all_after_admission")) if after else Cited(Localised("", ""), ""),
    )


def _read_review(r: _Reader, raw: dict, links: dict) -> Optional[Review]:
    if not raw:
        return None
    items = []
    items_raw = r.get(raw, "items", "review")
    if items_raw is not _MISSING:
        if not isinstance(items_raw, list) or not items_raw:
            r.problem("review → items", _("should be a list of review items"))
        else:
            for i, entry in enumerate(items_raw):
                where = _join("review → items", i)
                entry = r.mapping(entry, where)
                items.append(ReviewItem(r.text(entry, "key", where), r.localised(entry, "name", where),
                                        r.whole(entry, "weight", where) or 0, r.citation(entry, where)))
            total = sum(item.weight for item in items)
            if total != 100:
                r.problem("review → items", _("the weights add up to {total}%, not 100%").format(total=total))
    sb = r.mapping(r.get(raw, "startup_bonus", "review"), "review → startup_bonus")
    since = None
    if sb:
        if "registered_on_or_after" in sb:
            since, _t = r.when(sb["registered_on_or_after"], "review → startup_bonus → registered_on_or_after")
        else:
            r.problem("review → startup_bonus → registered_on_or_after", _("is missing"))
    startup = StartupBonus(r.localised(sb, "name", "review → startup_bonus") if sb else Localised("", ""),
                           since or date.min, r.citation(sb, "review → startup_bonus") if sb else "",
                           r.localised(sb, "note", "review → startup_bonus", required=False) if sb else None)
    tb = r.mapping(r.get(raw, "township_bonus", "review"), "review → township_bonus")
    groups = tb.get("groups") if tb else None
    if tb and (not isinstance(groups, list) or not groups or not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in groups)):
        r.problem("review → township_bonus → groups", _("should list the group numbers, e.g. [3, 4]"))
        groups = []
    township = TownshipBonus(r.localised(tb, "name", "review → township_bonus") if tb else Localised("", ""),
                             tuple(groups or ()), r.citation(tb, "review → township_bonus") if tb else "",
                             _check_link_key(r, tb.get("link"), "review → township_bonus → link", links) if tb else None)
    return Review(r.citation(raw, "review"), tuple(items), startup, township)


def _read_contact(r: _Reader, raw: dict) -> Optional[Contact]:
    if not raw:
        return None
    phones = []
    phones_raw = r.get(raw, "phones", "contact")
    if phones_raw is not _MISSING:
        if not isinstance(phones_raw, list) or not phones_raw:
            r.problem("contact → phones", _("should be a list of phone numbers"))
        else:
            for i, entry in enumerate(phones_raw):
                where = _join("contact → phones", i)
                entry = r.mapping(entry, where)
                phones.append(Phone(r.text(entry, "number", where), r.text(entry, "extension", where, required=False),
                                    r.text(entry, "name", where, required=False)))
    email = r.text(raw, "email", "contact")
    if email and "@" not in email:
        r.problem("contact → email", _("is not an e-mail address: {value!r}").format(value=email))
    return Contact(
        unit=r.localised(raw, "unit", "contact"),
        phones=tuple(phones),
        fax=r.text(raw, "fax", "contact", required=False),
        email=email,
        address=r.localised(raw, "address", "contact"),
        facebook=r.text(raw, "facebook", "contact", required=False),
        citation=r.citation(raw, "contact"),
    )


def _read_file(path: Path) -> tuple[Optional[Edition], list[str]]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, [_("the file does not exist")]
    except (OSError, UnicodeDecodeError) as error:
        return None, [_("the file cannot be read as UTF-8 text ({error})").format(error=error)]
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        message = _("the YAML is not well formed ({problem})").format(
            problem=getattr(error, "problem", None) or str(error))
        if mark is not None:
            message = _("line {line}").format(line=mark.line + 1) + ": " + message
        return None, [message]
    return _read_edition(raw, Path(path))


def check_edition_file(path) -> list[str]:
    """Every problem in an edition file, in plain words, each with where it is ([] when fine)."""
    return _read_file(Path(path))[1]


def load_edition(path) -> Edition:
    """Reads and checks an edition file; raises `EditionError` listing every problem."""
    path = Path(path)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        stamp = 0
    return _load_cached(path.resolve(), stamp)


@functools.lru_cache(maxsize=32)
def _load_cached(path: Path, stamp: int) -> Edition:
    edition, problems = _read_file(path)
    if problems:
        raise EditionError(path, problems)
    return edition


def edition_files(dirs: Optional[Iterable[Union[str, Path]]] = None) -> list[Path]:
    """The edition files found in ``dirs`` (``<dir>/<year>/edition.yaml``)."""
    found = []
    for folder in (dirs if dirs is not None else [editions_dir()]):
        found += sorted(Path(folder).glob(f"*/{EDITION_FILE}"))
    return found


_RECENT_SECONDS = 1.0
_recent: dict = {}  # the default folder's editions, re-read at most once a second (every answer asks)


def all_editions(dirs: Optional[Iterable[Union[str, Path]]] = None) -> list[Edition]:
    """Every edition in ``dirs`` (default: storage/editions), oldest first; raises on a broken file.

    For the default folder the list is kept for a second: a file a staff member adds or
    changes is seen within that second, and answers do not each list the folder.
    """
    if dirs is None:
        stamp, editions = _recent.get("default", (0.0, None))
        if editions is not None and time_module.monotonic() - stamp < _RECENT_SECONDS:
            return editions
        editions = _all_editions(None)
        _recent["default"] = (time_module.monotonic(), editions)
        return editions
    return _all_editions(dirs)


def _all_editions(dirs) -> list[Edition]:
    editions: dict[int, Edition] = {}
    for path in edition_files(dirs):
        edition = load_edition(path)
        editions[edition.year] = edition  # a later directory overrides an earlier one
    return [editions[y] for y in sorted(editions)]


def edition_for(day: Optional[date] = None, case_edition=None,
                dirs: Optional[Iterable[Union[str, Path]]] = None) -> tuple[Edition, bool]:
    """The edition to answer from on ``day`` and whether its period covers that day.

    The case's own edition (a year or an `Edition`) comes first; then the edition whose
    period covers the day (the newest if several); else the most recent edition that had
    started by then, with ``covers_today`` False so the bot can say its dates may have changed.
    """
    day = day or clock_today()
    if isinstance(case_edition, Edition):
        return case_edition, case_edition.covers(day)
    editions = all_editions(dirs)
    if not editions:
        raise LookupError(f"no edition file under {list(dirs) if dirs is not None else editions_dir()}")
    if case_edition not in (None, ""):
        for edition in editions:
            if str(edition.year) == str(case_edition):
                return edition, edition.covers(day)
    covering = [e for e in editions if e.covers(day)]
    if covering:
        return covering[-1], True
    started = [e for e in editions if e.period.start <= day]
    return (started[-1] if started else editions[-1]), False


def edition_in(ctx) -> tuple[Edition, bool]:
    """The edition a dialog should answer from, for a dialog `Context`.

    ``ctx.services.edition`` (set by the bot or a test) wins; otherwise the case's
    edition (``ctx.data["edition"]``) or the one covering today.
    """
    services = getattr(ctx, "services", None)
    fixed = getattr(services, "edition", None) if services is not None else None
    if isinstance(services, dict):
        fixed = services.get("edition")
    if isinstance(fixed, Edition):
        return fixed, fixed.covers(clock_today())
    return edition_for(clock_today(), (getattr(ctx, "data", None) or {}).get("edition"))


# -- how the bot writes edition facts ----------------------------------------------------------


def format_money(amount: int) -> str:
    """NT$1,500,000 in English; 新臺幣150萬元 in zh_TW."""
    if current_locale() == "en":
        return f"NT${amount:,}"
    if amount % 10000 == 0:
        return f"新臺幣{amount // 10000:,}萬元"
    return f"新臺幣{amount:,}元"


def cite(citation: str) -> str:
    """A citation as the bot writes it after a sentence: （§伍.三） / (§伍.三)."""
    if not citation:
        return ""
    text = _("(see {citation})").format(citation=citation)
    return " " + text if current_locale() == "en" else text


def edition_notice(edition: Edition, covers_today: bool) -> str:
    """Says which year's rules are quoted, and warns when that edition has ended."""
    if covers_today:
        return _("Based on the {year} edition's guidelines ({name}).").format(year=edition.year, name=edition.name.text())
    return _("No edition covers today, so this quotes the most recent one, the {year} edition ({name}); "
             "its dates and amounts may have changed, please check with the program office.").format(
        year=edition.year, name=edition.name.text())


def contact_lines(edition: Edition) -> list[str]:
    """The program office's contact (§玖) as lines of text."""
    c = edition.contact
    lines = [c.unit.text()]
    lines += [_("Phone: {phone}").format(phone=p.text()) for p in c.phones]
    if c.fax:
        lines.append(_("Fax: {fax}").format(fax=c.fax))
    lines.append(_("E-mail: {email}").format(email=c.email))
    lines.append(_("Address: {address}").format(address=c.address.text()))
    if c.facebook:
        lines.append(_("Facebook: {url}").format(url=c.facebook))
    lines.append(cite(c.citation))
    return lines


def current_contact(day: Optional[date] = None) -> dict:
    """The program office's contact (§玖) from the edition in force, in the current locale."""
    edition, _covers = edition_for(day)
    c = edition.contact
    return {
        "unit": c.unit.text(),
        "phones": [p.text() for p in c.phones],
        "fax": c.fax,
        "email": c.email,
        "address": c.address.text(),
        "facebook": c.facebook,
        "citation": c.citation,
        "edition": edition.year,
    }


def edition_check_command(path) -> int:
    """``gonghao edition check FILE``: prints every problem; 0 when the file is fine, 1 otherwise."""
    problems = check_edition_file(path)
    if problems:
        print(_("{path}: {count} problem(s)").format(path=path, count=len(problems)))
        for problem in problems:
            print(f"  - {problem}")
        return 1
    edition = load_edition(path)
    print(_("{path}: edition {year} is fine ({dates} dates, {types} case types, period {start} to {end}).").format(
        path=path, year=edition.year, dates=len(edition.dates), types=len(edition.case_types),
        start=format_date(edition.period.start), end=format_date(edition.period.end)))
    return 0
