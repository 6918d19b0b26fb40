"""The program edition (年度計畫) the dialogs answer from: which one applies, and how its facts are written.

The data of each year is ``storage/editions/<year>/edition.yaml``, read and checked by the
models of dialogs.edition_data (pydantic). Staff add the next year by adding a folder;
``gonghao edition check FILE`` lists every problem in a file, in plain words, before the bot
uses it.

The bot answers from the edition whose period covers today, or from the edition a case
belongs to. When none covers today it answers from the most recent one and says so
(`edition_notice`), because that year's dates may no longer hold.
"""
from __future__ import annotations

import functools
import time as time_module
from datetime import date, datetime
from pathlib import Path
from typing import Callable, Iterable, Optional, Protocol, Union

from dialogs.dates import format_date, today as clock_today
from dialogs.edition_data import (CaseType, Document, Edition, EditionDate, EditionError, Localised, Theme, Tier,
                                  read_file)
from dialogs.i18n import _, current_locale

__all__ = ["CaseType", "Document", "Edition", "EditionDate", "EditionError", "Localised", "Theme", "Tier",
           "all_editions", "check_edition_file", "cite", "contact_lines", "current_contact", "edition_check_command",
           "edition_files", "edition_for", "edition_in", "edition_notice", "editions_dir", "format_money",
           "load_edition"]

EDITION_FILE = "edition.yaml"


def editions_dir() -> Path:
    """Where the editions live: ``storage/editions`` of this repository."""
    return Path(__file__).resolve().parent.parent / "storage" / "editions"


def check_edition_file(path) -> list[str]:
    """Every problem in an edition file, in plain words, each with where it is ([] when fine)."""
    return read_file(Path(path))[1]


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
    edition, problems = read_file(path)
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


class EditionAsker(Protocol):
    """What `edition_in` reads of a dialog's Context."""

    edition: Optional["Edition"]
    data: dict
    clock: Callable[[], datetime]


def edition_in(ctx: EditionAsker) -> tuple[Edition, bool]:
    """The edition a dialog should answer from, for a dialog `Context`.

    ``ctx.edition`` (set by the bot or a test) wins; otherwise the case's edition
    (``ctx.data["edition"]``) or the one covering today.
    """
    today = ctx.clock().date()
    if ctx.edition is not None:
        return ctx.edition, ctx.edition.covers(today)
    return edition_for(today, (ctx.data or {}).get("edition"))


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
