"""Dates the way Taiwanese government forms write them, and the one clock.

Babel has no ROC (民國) calendar, so these small helpers do it: year - 1911.
Everything is in Asia/Taipei. `now()` is the only clock the bot reads; `fix_clock`
stops it at a moment (``GONGHAO_NOW`` in the configuration, for demos and acceptance runs),
and tests move it with time-machine.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Optional
from common.dates import ROC_OFFSET, TAIPEI, parse_roc, roc_year
from dialogs.i18n import _, current_locale, ngettext

__all__ = ["ROC_OFFSET", "TAIPEI", "parse_roc", "roc_year", "now", "today", "roc_short", "roc_long", "western_long",
           "format_date", "days_left", "describe_days_left", "fix_clock"]

_WEEKDAYS_ZH = "一二三四五六日"


FIXED_NOW: Optional[datetime] = None  # set by fix_clock


def fix_clock(moment: Optional[datetime]) -> None:
    """Stops the bot's clock at ``moment`` (None: the real time again)."""
    global FIXED_NOW
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=TAIPEI)
    FIXED_NOW = moment


def now() -> datetime:
    """The current time in Asia/Taipei, or the moment `fix_clock` fixed."""
    if FIXED_NOW is not None:
        return FIXED_NOW.astimezone(TAIPEI)
    return datetime.now(TAIPEI)


def today() -> date:
    return now().date()


def roc_short(d: date) -> str:
    """112/3/16"""
    return f"{roc_year(d)}/{d.month}/{d.day}"


def roc_long(d: date | datetime) -> str:
    """112年3月16日(四), with ' 17:00' when given a datetime."""
    text = f"{roc_year(d)}年{d.month}月{d.day}日({_WEEKDAYS_ZH[d.weekday()]})"
    if isinstance(d, datetime):
        d = d.astimezone(TAIPEI)
        text += f" {d:%H:%M}"
    return text


def western_long(d: date | datetime) -> str:
    """Thu 16 Mar 2023, with ' 17:00' when given a datetime."""
    text = f"{d:%a} {d.day} {d:%b %Y}"
    if isinstance(d, datetime):
        d = d.astimezone(TAIPEI)
        text += f" {d:%H:%M}"
    return text


def format_date(d: date | datetime) -> str:
    """A date for the current locale: ROC style in zh_TW, western in en."""
    return western_long(d) if current_locale() == "en" else roc_long(d)


def days_left(target: date, today_: date | None = None) -> int:
    return (target - (today_ or today())).days


def describe_days_left(target: date) -> str:
    """'還有 5 天' / 'in 5 days' / 'today' / 'passed'."""
    n = days_left(target)
    if n > 0:
        return ngettext("{n} day left", "{n} days left", n).format(n=n)
    if n == 0:
        return _("today")
    return _("already passed")
