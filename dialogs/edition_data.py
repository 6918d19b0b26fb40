"""The program edition (年度計畫) file as pydantic models: one model per section, each with its citation.

One YAML file per edition, ``storage/editions/<year>/edition.yaml`` (112 = 2023): every date,
tier, cap, rule, document, link and contact of that year's guidelines, each with the paragraph
it comes from (its *citation*, shown by the bot). pydantic reads and checks it; `problems`
turns its errors into sentences in the program's words, each with where it is
(``case_types → popularization → tiers[1] → cap: …``), so ``gonghao edition check FILE`` lists
every problem before the bot uses the file.

Adding a field to the edition is adding it to its model here (with its type and citation) and
using it; nothing else reads the file.
"""
from __future__ import annotations

import re
from datetime import date, datetime, time as Time, timedelta
from pathlib import Path
from typing import Annotated, Any, Optional

import yaml
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt,
                      ValidationError, field_validator, model_validator)

from dialogs.dates import TAIPEI, format_date, parse_roc
from dialogs.i18n import _, current_locale

# Dates the code relies on (reminders, the calculator, answers). Others may be added freely.
REQUIRED_DATES = ("registration_opens", "proposal_deadline", "letters_due", "selection_meeting",
                  "tool_import_deadline", "coaching_ends")
REGISTRATION_TYPES = ("company", "commercial", "limited_partnership", "tax_only")
LOCALES = ("zh_TW", "en")
BUTTON_MAX = 20  # LINE quick-reply labels
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")


class EditionError(ValueError):
    """An edition file that cannot be used; ``problems`` lists every reason."""

    def __init__(self, path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


# -- the pieces every section uses ------------------------------------------------------------------
def _citation(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("the citation is missing (the paragraph of the guidelines, e.g. \"§伍.三\")"))
    return value.strip()


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        raise ValueError(_("should be a text, not {value!r}").format(value=value))
    return str(value).strip()


def _when(value: Any) -> tuple[date, Optional[Time]]:
    """Reads "112/3/16", "112/3/16 17:00", "2023-03-16 17:00" or a YAML date."""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is None else value.astimezone(TAIPEI).replace(tzinfo=None)
        return moment.date(), moment.time().replace(second=0, microsecond=0)
    if isinstance(value, date):
        return value, None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("should be a date such as \"112/3/16\" or \"112/3/16 17:00\", not {value!r}").format(
            value=value))
    day_part, _sep, time_part = value.strip().replace("T", " ").partition(" ")
    try:
        first = int(re.split(r"[/\-年]", day_part)[0])
        if first >= 1911:
            year, month, day_ = (int(p) for p in re.split(r"[/\-]", day_part)[:3])
            day = date(year, month, day_)
        else:
            day = parse_roc(day_part)
    except (ValueError, IndexError):
        raise ValueError(_("is not a real date: {value!r} (write \"112/3/16\" or \"112/3/16 17:00\")").format(
            value=value)) from None
    if not time_part.strip():
        return day, None
    match = _TIME.match(time_part.strip())
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise ValueError(_("the time should look like 17:00, not {value!r}").format(value=time_part.strip()))
    return day, Time(int(match.group(1)), int(match.group(2)))


def _day(value: Any) -> date:
    return _when(value)[0]


def _url(value: str) -> str:
    if not value.startswith(("https://", "http://")):
        raise ValueError(_("should start with https://"))
    return value


def _cap(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(_("the budget cap should be a positive amount in NT$, not {value!r}").format(value=value))
    return value


Citation = Annotated[str, BeforeValidator(_citation)]
Text = Annotated[str, BeforeValidator(_text)]
When = Annotated[tuple[date, Optional[Time]], BeforeValidator(_when)]
Day = Annotated[date, BeforeValidator(_day)]
Url = Annotated[Text, AfterValidator(_url)]
Amount = Annotated[int, BeforeValidator(_cap)]
Positive = Annotated[StrictInt, Field(ge=1)]
Count = Annotated[StrictInt, Field(ge=0)]
Percent = Annotated[StrictInt, Field(ge=1, le=100)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)


def _keyed(entries: Any) -> Any:
    """Each entry of a mapping learns its own key (``dates: {proposal_deadline: {…}}``)."""
    if not isinstance(entries, dict):
        return entries
    return {key: ({**entry, "key": key} if isinstance(entry, dict) else entry) for key, entry in entries.items()}


class Localised(Model):
    """A text given in both languages by the data file."""

    zh_TW: str
    en: str

    @model_validator(mode="before")
    @classmethod
    def _both(cls, value: Any) -> Any:
        if isinstance(value, Localised):
            return value
        if not isinstance(value, dict):
            raise ValueError(_("needs the text in both languages: {example}").format(example="{zh_TW: …, en: …}"))
        for locale in LOCALES:
            text = value.get(locale)
            if not isinstance(text, str) or not text.strip():
                raise ValueError(_("the {locale} text is missing").format(locale=locale))
        return {locale: value[locale].strip() for locale in LOCALES}

    def text(self) -> str:
        """The text in the locale being answered."""
        return self.en if current_locale() == "en" else self.zh_TW

    def __str__(self) -> str:
        return self.text()


def _button_fits(button: Localised) -> Localised:
    for text in (button.zh_TW, button.en):
        if len(text) > BUTTON_MAX:
            raise ValueError(_("{text!r} is too long for a button ({n} characters, at most {max}); add a shorter "
                               "\"button\"").format(text=text, n=len(text), max=BUTTON_MAX))
    return button


Button = Annotated[Localised, AfterValidator(_button_fits)]


def _name_as_button(data: Any) -> Any:
    """A case type or theme without a short ``button`` name shows its name on the button."""
    if isinstance(data, dict) and data.get("button") is None and "name" in data:
        return {**data, "button": data["name"]}
    return data


class Cited(Model):
    """A rule or condition in words, with its paragraph."""

    text: Localised
    citation: Citation


# -- the sections ----------------------------------------------------------------------------------------
class Period(Model):
    """The days this edition's rules answer for."""

    start: Day
    end: Day
    citation: Citation
    note: Optional[Localised] = None

    @model_validator(mode="after")
    def _in_order(self) -> "Period":
        if self.start > self.end:
            raise ValueError(_("starts ({start}) after it ends ({end})").format(start=self.start, end=self.end))
        return self

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


class After(Model):
    """A date given as so many days after another ("two days after the proposal deadline")."""

    date: str
    days: Count


class EditionDate(Model):
    """One date of the edition: a deadline, a meeting, a checkpoint."""

    key: str
    at: Optional[When] = None  # None only while it is given `after` another date
    after: Optional[After] = None
    until: Optional[Day] = None  # a window (e.g. "late March")
    tentative: StrictBool = False
    label: Localised
    citation: Citation
    note: Optional[Localised] = None
    shown: Optional[Localised] = None  # how the data wants the date written (e.g. 3月下旬)

    @model_validator(mode="after")
    def _has_a_day(self) -> "EditionDate":
        if self.at is None and self.after is None:
            raise ValueError("at: " + _("is missing"))
        if self.at is not None and self.until is not None and self.until < self.at[0]:
            raise ValueError("until: " + _("ends before it starts"))
        return self

    @property
    def day(self) -> date:
        return self.at[0]

    @property
    def time(self) -> Optional[Time]:
        """The hour, or None: by the end of that day."""
        return self.at[1]

    @property
    def moment(self) -> datetime:
        """The deadline as a moment in Asia/Taipei (end of day when no time is given)."""
        return datetime.combine(self.day, self.time or Time(23, 59, 59), tzinfo=TAIPEI)

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


class Tier(Model):
    """A band of enterprise counts and its budget cap (NT$, tax included)."""

    name: Text = Field(alias="tier")
    minimum: Positive = Field(alias="min")
    maximum: Optional[Positive] = Field(default=None, alias="max")  # None: no upper bound
    cap: Amount
    citation: Citation

    @model_validator(mode="after")
    def _in_order(self) -> "Tier":
        if self.maximum is not None and self.maximum < self.minimum:
            raise ValueError(_("max ({max}) is below min ({min})").format(max=self.maximum, min=self.minimum))
        return self

    def holds(self, count: int) -> bool:
        return count >= self.minimum and (self.maximum is None or count <= self.maximum)

    def span(self) -> str:
        if self.maximum is None:
            return _("{min} or more").format(min=self.minimum)
        return _("{min} to {max}").format(min=self.minimum, max=self.maximum)


class Theme(Model):
    key: Text
    name: Localised
    description: Localised
    citation: Citation
    button: Optional[Button] = None  # a short name for a button (≤ 20 characters); the name when absent

    _button = model_validator(mode="before")(_name_as_button)


class CaseType(Model):
    """數位普及輔導 or 數位共融輔導: tiers, themes and the over-9 allowance."""

    key: str
    name: Localised
    citation: Citation
    tiers: tuple[Tier, ...] = Field(min_length=1)
    themes: tuple[Theme, ...] = ()
    over_nine_max: Count = 0
    over_nine_citation: Citation
    button: Optional[Button] = None  # a short name for a button (≤ 20 characters); the name when absent

    @field_validator("themes", mode="before")
    @classmethod
    def _no_themes(cls, value: Any) -> Any:
        return () if value is None else value

    @field_validator("tiers")
    @classmethod
    def _tiers_follow(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        tiers = tuple(sorted(tiers, key=lambda t: t.minimum))
        if len({t.name for t in tiers}) != len(tiers):
            raise ValueError(_("two tiers have the same name"))
        for lower, upper in zip(tiers, tiers[1:]):
            if lower.maximum is None or lower.maximum >= upper.minimum:
                raise ValueError(_("tiers {a} and {b} overlap").format(a=lower.name, b=upper.name))
            if lower.maximum + 1 < upper.minimum:
                raise ValueError(_("counts {low} to {high} fall in no tier (between {a} and {b})").format(
                    low=lower.maximum + 1, high=upper.minimum - 1, a=lower.name, b=upper.name))
            if upper.cap < lower.cap:
                raise ValueError(_("tier {b} has a lower cap than tier {a}").format(a=lower.name, b=upper.name))
        return tiers

    _button = model_validator(mode="before")(_name_as_button)

    @property
    def minimum(self) -> int:
        return self.tiers[0].minimum

    def tier_for(self, count: int) -> Optional[Tier]:
        return next((tier for tier in self.tiers if tier.holds(count)), None)

    def next_tier(self, count: int) -> Optional[Tier]:
        """The first tier that starts above ``count``."""
        return next((tier for tier in self.tiers if tier.minimum > count), None)

    def theme(self, key: str) -> Optional[Theme]:
        return next((theme for theme in self.themes if theme.key == key), None)


class Program(Model):
    """A program whose enterprises may not take part (限制條件 1)."""

    key: Annotated[Text, Field(pattern=r"^[a-z0-9_]+$")]
    name: Localised
    citation: Citation
    check_link: Optional[str] = None  # a key of Edition.links


def _registration(value: str) -> str:
    if value not in REGISTRATION_TYPES:
        raise ValueError(_("unknown registration {value!r} (known: {known})").format(
            value=value, known=", ".join(REGISTRATION_TYPES)))
    return value


class Registration(Model):
    accepted: tuple[Annotated[str, AfterValidator(_registration)], ...] = Field(min_length=1)
    citation: Citation


class Employees(Model):
    max: Positive
    citation: Citation


class OverNine(Model):
    conditions: Localised
    citation: Citation


class Agencies(Model):
    list: tuple[Localised, ...] = Field(min_length=1)
    citation: Citation


class EligibilityRules(Model):
    """§叁 輔導對象 and 限制條件, §貳.一: what the screening checks."""

    registration: Registration
    employees: Employees
    over_nine: OverNine
    conflicting_programs: tuple[Program, ...] = Field(min_length=1)
    agency_list: Agencies = Field(alias="agencies")
    other_sme_program: Cited
    existing_customer: Cited
    industry: Cited

    # the names the screening reads
    @property
    def registration_accepted(self) -> tuple[str, ...]:
        return self.registration.accepted

    @property
    def registration_citation(self) -> str:
        return self.registration.citation

    @property
    def employee_limit(self) -> int:
        return self.employees.max

    @property
    def employee_citation(self) -> str:
        return self.employees.citation

    @property
    def over_nine_conditions(self) -> Localised:
        return self.over_nine.conditions

    @property
    def over_nine_citation(self) -> str:
        return self.over_nine.citation

    @property
    def agencies(self) -> tuple[Localised, ...]:
        return self.agency_list.list

    @property
    def agencies_citation(self) -> str:
        return self.agency_list.citation


class LetterRules(Model):
    at_proposal_percent: Percent
    citation: Citation
    due: Text  # a key of Edition.dates
    replacement_max_percent: Annotated[StrictInt, Field(ge=0, le=100)]
    replacement_citation: Citation
    all_after_admission: Cited

    def needed(self, count: int) -> int:
        """Letters of intent needed at proposal: the percentage of ``count``, rounded up."""
        return -(-max(count, 0) * self.at_proposal_percent // 100)

    def replaceable(self, letters: int) -> int:
        """How many of ``letters`` may be replaced after admission (not more than the share)."""
        return letters * self.replacement_max_percent // 100


class Document(Model):
    key: Text
    name: Localised
    detail: Localised
    citation: Citation


class ReviewItem(Model):
    key: Text
    name: Localised
    weight: Positive
    citation: Citation


class StartupBonus(Model):
    name: Localised
    registered_on_or_after: Day
    citation: Citation
    note: Optional[Localised] = None


class TownshipBonus(Model):
    name: Localised
    groups: tuple[Positive, ...] = Field(min_length=1)
    citation: Citation
    link: Optional[str] = None  # a key of Edition.links


class Review(Model):
    citation: Citation
    items: tuple[ReviewItem, ...] = Field(min_length=1)
    startup_bonus: StartupBonus
    township_bonus: TownshipBonus

    @field_validator("items")
    @classmethod
    def _weights(cls, items: tuple[ReviewItem, ...]) -> tuple[ReviewItem, ...]:
        total = sum(item.weight for item in items)
        if total != 100:
            raise ValueError(_("the weights add up to {total}%, not 100%").format(total=total))
        return items


class Phone(Model):
    number: Text
    extension: str = ""
    name: str = ""

    def text(self) -> str:
        if self.extension:
            return _("{number} ext. {extension} {name}").format(
                number=self.number, extension=self.extension, name=self.name).strip()
        return f"{self.number} {self.name}".strip()


def _email(value: str) -> str:
    if "@" not in value:
        raise ValueError(_("is not an e-mail address: {value!r}").format(value=value))
    return value


class Contact(Model):
    """The program office (§玖)."""

    unit: Localised
    phones: tuple[Phone, ...] = Field(min_length=1)
    fax: str = ""
    email: Annotated[Text, AfterValidator(_email)]
    address: Localised
    facebook: str = ""
    citation: Citation


class LinkEntry(Model):
    key: str
    label: Localised
    url: Url
    citation: Citation


class Edition(Model):
    """One year's program: its dates, case types, rules and links, all cited."""

    year: Positive = Field(alias="edition")
    name: Localised
    source: str = ""
    timezone: str = "Asia/Taipei"
    period: Period
    dates: dict[str, EditionDate]
    case_types: dict[str, CaseType] = Field(min_length=1)
    eligibility: EligibilityRules
    letters: LetterRules
    documents: tuple[Document, ...] = Field(min_length=1)
    review: Review
    cloud_conditions: tuple[Cited, ...] = Field(min_length=1)
    contact: Contact
    links: dict[str, LinkEntry]
    path: Optional[Path] = Field(default=None, exclude=True)

    _keys = field_validator("dates", "case_types", "links", mode="before")(_keyed)

    @field_validator("timezone")
    @classmethod
    def _taipei(cls, zone: str) -> str:
        if zone != "Asia/Taipei":
            raise ValueError(_("all times are Asia/Taipei; found {value!r}").format(value=zone))
        return zone

    @field_validator("dates")
    @classmethod
    def _needed_dates(cls, dates: dict[str, EditionDate]) -> dict[str, EditionDate]:
        missing = [key for key in REQUIRED_DATES if key not in dates]
        if missing:
            raise ValueError("\n".join(f"dates → {key}: " + _("is missing (the bot needs this date)")
                                       for key in missing))
        if not any(key.startswith("checkpoint") for key in dates):
            raise ValueError(_("no checkpoint (checkpoint_1, …) is given"))
        return dates

    @model_validator(mode="after")
    def _references(self) -> "Edition":
        """The dates given after another, their order, and every reference to a date or a link."""
        problems = self._resolve_dates() + self._date_order() + self._links_found()
        if self.letters.due not in self.dates:
            problems.append("letters → due: " + _("refers to the date {key!r}, which is not in dates").format(
                key=self.letters.due))
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _resolve_dates(self) -> list[str]:
        dates, problems = dict(self.dates), []
        for key, entry in self.dates.items():
            if entry.at is None:
                base = dates.get(entry.after.date)
                if base is None or base.at is None:
                    problems.append(f"dates → {key} → after: " + _(
                        "refers to the date {key!r}, which is not in dates").format(key=entry.after.date))
                    continue
                # 「二日內」 gives no hour: the derived date is due by the end of its day
                dates[key] = entry.model_copy(update={"at": (base.day + timedelta(days=entry.after.days), None)})
        if not problems:
            object.__setattr__(self, "dates", dict(sorted(dates.items(), key=lambda kv: kv[1].moment)))
        return problems

    def _date_order(self) -> list[str]:
        problems = []
        for first, second in (("registration_opens", "proposal_deadline"), ("proposal_deadline", "letters_due"),
                              ("proposal_deadline", "tool_import_deadline")):
            a, b = self.dates.get(first), self.dates.get(second)
            if a and b and a.at and b.at and a.moment >= b.moment:
                problems.append("dates: " + _("{first} should come before {second}").format(first=first, second=second))
        ends = self.dates.get("coaching_ends")
        if ends and ends.at and ends.day > self.period.end:
            problems.append("dates → coaching_ends: " + _("is after the end of the edition's period ({end})").format(
                end=self.period.end))
        for key, entry in self.dates.items():
            if key.startswith("checkpoint") and ends and entry.at and ends.at and entry.day > ends.day:
                problems.append(f"dates → {key}: " + _("is after the end of coaching"))
        return problems

    def _links_found(self) -> list[str]:
        wanted = [(f"eligibility → conflicting_programs[{i + 1}] → check_link", p.check_link)
                  for i, p in enumerate(self.eligibility.conflicting_programs)]
        wanted.append(("review → township_bonus → link", self.review.township_bonus.link))
        return [f"{where}: " + _("refers to the link {key!r}, which is not in links").format(key=key)
                for where, key in wanted if key and key not in self.links]

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


# -- reading a file, and pydantic's errors in the program's words ----------------------------------------
def _where(loc: tuple) -> str:
    where = ""
    for part in loc:
        if isinstance(part, int):
            where += f"[{part + 1}]"
        elif not str(part).startswith(("function-", "tuple[", "json-or-python")):
            where = f"{where} → {part}" if where else str(part)
    return where


def _message(error: dict) -> str:
    """One pydantic error as the program says it."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    field = str(error["loc"][-1]) if error["loc"] else ""
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "missing":
        return _citation_missing() if field.endswith("citation") else _("is missing")
    if kind == "extra_forbidden":
        return _("is not a key of an edition file (a typing mistake?)")
    if kind in ("greater_than_equal", "int_type", "int_parsing"):
        if ctx.get("ge", 1) >= 1:
            return _("should be a positive whole number, not {value!r}").format(value=value)
        return _("should be a whole number of at least {minimum}, not {value!r}").format(minimum=ctx.get("ge", 0),
                                                                                        value=value)
    if kind == "less_than_equal":
        return _("should be at most 100") if ctx.get("le") == 100 else _("should be at most {maximum}").format(maximum=ctx.get("le"))
    if kind in ("too_short", "list_type", "tuple_type"):
        return _("should be a list with at least one entry")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return _("should be a group of keys (key: value), not {value!r}").format(value=value)
    if kind == "bool_type":
        return _("should be true or false")
    if kind == "string_pattern_mismatch":
        return _("use lower-case letters, digits and _ only")
    return _("should be a text, not {value!r}").format(value=value)


def _citation_missing() -> str:
    return _("the citation is missing (the paragraph of the guidelines, e.g. \"§伍.三\")")


def problems(error: ValidationError) -> list[str]:
    """Every problem pydantic found, as "where: what" sentences."""
    found = []
    for item in error.errors(include_url=False):
        where = _where(item["loc"])
        for line in _message(item).split("\n"):
            found.append(f"{where}: {line}" if where and not line.startswith(where) else line)
    return found


def read_edition(raw: Any, path: Optional[Path] = None) -> tuple[Optional[Edition], list[str]]:
    """(edition, []) for good data, (None, every problem) otherwise."""
    if not isinstance(raw, dict):
        return None, [_("the file should hold the keys of an edition (edition, period, dates, …)")]
    try:
        edition = Edition.model_validate(raw)
    except ValidationError as error:
        return None, problems(error)
    if path is not None and path.parent.name.isdigit() and int(path.parent.name) != edition.year:
        return None, ["edition: " + _("the file says edition {year} but its folder is {folder}").format(
            year=edition.year, folder=path.parent.name)]
    return edition.model_copy(update={"path": path}), []


def read_file(path: Path) -> tuple[Optional[Edition], list[str]]:
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
    return read_edition(raw, Path(path))
