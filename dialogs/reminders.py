"""Reminders and the capability pre/post tests (§捌.四.(七)): the calendar, who is reminded, what they read.

The calendar is the edition's dates (never dates in code) plus events staff add:

- the proposal deadline (§伍.三) for every proposer contact, and for owners whose letter of
  intent is not submitted yet;
- the 10% letters due two days after it (§陸.四.(四)) for proposers whose case is below the target;
- the tool import by 112/7/31 (§叁 雲端服務條件 1) for owners whose import is not confirmed
  (and their proposers);
- the checkpoints (附件一 肆.二) for proposers;
- staff-added events: pre-test and post-test windows with the assessment link, briefings,
  ad-hoc deadlines, each with an audience rule of `RULES`.

Each event has lead times (default: 7 days before, the day before, and the morning of the day;
a window also gets a reminder the morning it opens). A reminder is sent from its time until the
next one of the same event is due (or the event has passed), never in quiet hours (21:00–08:00
Asia/Taipei: held until 08:00), once per person. Everything reads `dialogs.dates.now()`.

Who is in a case comes from a `Directory` (the cases and letters storage provides the real one);
what people have done comes from `storage.reminders` (self-reports and imports).
Nothing here imports Flask or LINE: delivery is `bot.reminders`.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Callable, Iterable, Optional, Protocol

from common.records import CaseFacts, Member
from dialogs.dates import TAIPEI, format_date, now as clock_now
from dialogs.edition import all_editions, cite
from dialogs.engine import Context, Intent, Outcome
from dialogs.i18n import N_, _, current_locale
from dialogs.messages import Choice, Link, Message, Text
from dialogs.repository import StaffEventRecord

log = logging.getLogger("gonghao.reminders")

MORNING = time(8, 0)  # reminders go out from 08:00 …
QUIET_FROM = time(21, 0)  # … and never from 21:00 to 08:00 Asia/Taipei
DEFAULT_LEADS = ("7d", "1d", "0d")
WINDOW_LEADS = ("open", "7d", "1d", "0d")
STOP_WORD = "停止提醒"
RESUME_WORD = "恢復提醒"

_LEAD = re.compile(r"^(open|(\d{1,3})([dh]))$")


# -- who is in which case (the audience interface) ------------------------------------------------


class Directory(Protocol):
    """Where the audiences come from. The cases-and-letters storage provides the real one."""

    def members(self) -> Iterable[Member]: ...

    def cases(self) -> Iterable[CaseFacts]: ...

    def memberships_of(self, user_id: str) -> list[Member]: ...


class StaticDirectory:
    """A directory from lists (tests, the benchmark, and a bot without cases yet)."""

    def __init__(self, members: Iterable[Member] = (), cases: Iterable[CaseFacts] = ()):
        self._members = list(members)
        self._cases = list(cases)
        self._by_user: dict[str, list[Member]] = {}
        for m in self._members:
            self._by_user.setdefault(m.user_id, []).append(m)

    def members(self) -> list[Member]:
        return self._members

    def cases(self) -> list[CaseFacts]:
        return self._cases

    def memberships_of(self, user_id: str) -> list[Member]:
        return list(self._by_user.get(user_id, ()))


# -- audience rules --------------------------------------------------------------------------------


@dataclass
class Facts:
    """Everything the rules read, gathered once per run."""

    members: list[Member]
    cases: dict[str, CaseFacts]
    done: object  # storage.reminders.Completions: .done(kind, user_id, tax_id, case_id)
    letters_percent: dict[Optional[int], int] = field(default_factory=dict)  # edition -> 10

    def owners(self, edition=None) -> list[Member]:
        return [m for m in self.members if m.role == "owner" and _same_edition(m.edition, edition)]

    def proposers(self, edition=None) -> list[Member]:
        return [m for m in self.members if m.role == "proposer" and _same_edition(m.edition, edition)]

    def owner_done(self, kind: str, m: Member) -> bool:
        return self.done.done(kind, m.user_id, m.tax_id, m.case_id)


def _same_edition(member_edition, event_edition) -> bool:
    return member_edition is None or event_edition is None or int(member_edition) == int(event_edition)


@dataclass(frozen=True)
class Rule:
    """An audience: who gets an event's reminders, and the sentence that says why they do."""

    name: str
    select: Callable[[Facts, Optional[int]], Iterable[str]]
    why: str = ""  # a msgid
    description: str = ""  # a msgid for staff


def _owners_not_done(kind: str):
    def select(facts: Facts, edition):
        return [m.user_id for m in facts.owners(edition) if not facts.owner_done(kind, m)]
    return select


def _proposers_of_cases_with_owners_not_done(kind: str):
    def select(facts: Facts, edition):
        cases = {str(m.case_id) for m in facts.owners(edition) if not facts.owner_done(kind, m)}
        return [m.user_id for m in facts.proposers(edition) if str(m.case_id) in cases]
    return select


def _letters_needed(planned: int, percent: int) -> int:
    return -(-max(planned, 0) * percent // 100)


def _proposers_below_letters_target(facts: Facts, edition):
    owners_per_case: dict[str, int] = {}
    for m in facts.owners(edition):
        owners_per_case[str(m.case_id)] = owners_per_case.get(str(m.case_id), 0) + 1
    percent = facts.letters_percent.get(edition, facts.letters_percent.get(None, 10))
    below = set()
    for key, case in facts.cases.items():
        planned = case.planned if case.planned is not None else owners_per_case.get(key, 0)
        if case.letters_submitted < max(1, _letters_needed(planned, percent)):
            below.add(key)
    return [m.user_id for m in facts.proposers(edition) if str(m.case_id) in below]


RULES: dict[str, Rule] = {rule.name: rule for rule in (
    Rule("all_proposers", lambda f, e: [m.user_id for m in f.proposers(e)], "",
         N_("every proposer contact")),
    Rule("all_owners", lambda f, e: [m.user_id for m in f.owners(e)], "",
         N_("every enterprise owner who joined a case")),
    Rule("all_members", lambda f, e: [m.user_id for m in f.members if _same_edition(m.edition, e)], "",
         N_("every proposer contact and enterprise owner")),
    Rule("owners_letter_not_submitted",
         lambda f, e: [m.user_id for m in f.owners(e) if m.letter_status != "submitted"],
         N_("Your letter of intent (附件二) is not submitted yet. Please finish it in this chat so that your "
            "proposer can upload it in time."),
         N_("owners whose letter of intent is not submitted")),
    Rule("proposers_below_letters_target", _proposers_below_letters_target,
         N_("Your case does not yet have letters of intent from at least 10% of its enterprises (rounded up)."),
         N_("proposers whose case is below the 10% letters target")),
    Rule("owners_pre_test_not_done", _owners_not_done("pre_test"),
         N_("Our records show that your enterprise has not done the pre-test yet. When you have, reply "
            "我已完成前測."),
         N_("owners who have not done the pre-test")),
    Rule("owners_post_test_not_done", _owners_not_done("post_test"),
         N_("Our records show that your enterprise has not done the post-test yet. When you have, reply "
            "我已完成後測."),
         N_("owners who have not done the post-test")),
    Rule("owners_import_not_confirmed", _owners_not_done("tool_import"),
         N_("The program office has not yet confirmed the import of your cloud tool. Please finish it with "
            "your proposer (the cloud service vendor) before the deadline."),
         N_("owners whose tool import is not confirmed")),
    Rule("proposers_import_not_confirmed", _proposers_of_cases_with_owners_not_done("tool_import"),
         N_("Some enterprises of your case have no confirmed tool import yet."),
         N_("proposers of cases with an enterprise whose tool import is not confirmed")),
    Rule("proposers_pre_test_incomplete", _proposers_of_cases_with_owners_not_done("pre_test"),
         N_("Some enterprises of your case have not done the pre-test yet; please help them (§捌.四.(七))."),
         N_("proposers of cases with an enterprise that has not done the pre-test")),
    Rule("proposers_post_test_incomplete", _proposers_of_cases_with_owners_not_done("post_test"),
         N_("Some enterprises of your case have not done the post-test yet; please help them (§捌.四.(七))."),
         N_("proposers of cases with an enterprise that has not done the post-test")),
)}


def audience(rule_name: str, facts: Facts, edition: Optional[int] = None) -> list[str]:
    """The LINE users an audience rule selects (each once, in a stable order)."""
    rule = RULES[rule_name]
    return sorted(set(rule.select(facts, edition)))


# -- the calendar ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarEvent:
    """A dated thing to remind people of."""

    key: str  # "112:tool_import_deadline:owners_import_not_confirmed" or "staff7"
    kind: str  # deadline / checkpoint / pre_test / post_test / briefing
    title_zh: str
    title_en: str
    starts: datetime  # Asia/Taipei
    audience: str
    ends: Optional[datetime] = None  # a window (pre-test from … to …)
    all_day: bool = False  # no time of day: "by the end of that day"
    leads: tuple[str, ...] = ()
    link: Optional[str] = None
    note_zh: str = ""
    note_en: str = ""
    citation: str = ""
    edition: Optional[int] = None
    source: str = "edition"  # edition / staff

    def title(self) -> str:
        return self.title_en if current_locale() == "en" else self.title_zh

    def note(self) -> str:
        return (self.note_en if current_locale() == "en" else self.note_zh) or ""

    @property
    def is_window(self) -> bool:
        return self.ends is not None

    @property
    def deadline(self) -> datetime:
        """The moment it is over: its end (or start), the end of the day when no time is given."""
        moment = (self.ends or self.starts).astimezone(TAIPEI)
        if self.all_day:
            return datetime.combine(moment.date(), time(23, 59, 59), tzinfo=TAIPEI)
        return moment

    def lead_times(self) -> tuple[str, ...]:
        return self.leads or (WINDOW_LEADS if self.is_window else DEFAULT_LEADS)

    def when_text(self) -> str:
        """The date (or window) in the current locale, ROC style in zh_TW."""
        def one(moment: datetime):
            moment = moment.astimezone(TAIPEI)
            return format_date(moment.date() if self.all_day else moment)
        if self.is_window:
            return _("{start} to {end}").format(start=one(self.starts), end=one(self.ends))
        return one(self.starts)


# (date key or prefix, kind, audience rule, link key of the edition)
EDITION_PLAN: tuple[tuple[str, str, str, Optional[str]], ...] = (
    ("proposal_deadline", "deadline", "all_proposers", "proposal_system"),
    ("proposal_deadline", "deadline", "owners_letter_not_submitted", None),
    ("letters_due", "deadline", "proposers_below_letters_target", "proposal_system"),
    ("tool_import_deadline", "deadline", "owners_import_not_confirmed", None),
    ("tool_import_deadline", "deadline", "proposers_import_not_confirmed", None),
    ("checkpoint", "checkpoint", "all_proposers", None),
)


def edition_events(edition) -> list[CalendarEvent]:
    """The events of one edition, from its dates (dialogs.edition.Edition)."""
    events = []
    for date_key, kind, rule, link_key in EDITION_PLAN:
        keys = [k for k in edition.dates if k == date_key or (date_key == "checkpoint" and k.startswith("checkpoint"))]
        for key in keys:
            entry = edition.dates[key]
            starts = datetime.combine(entry.day, entry.time or time(0, 0), tzinfo=TAIPEI)
            ends = None
            if entry.until and entry.until != entry.day:
                ends = datetime.combine(entry.until, entry.time or time(0, 0), tzinfo=TAIPEI)
            link = edition.link(link_key)
            events.append(CalendarEvent(
                key=f"{edition.year}:{key}:{rule}", kind=kind, title_zh=entry.label.zh_TW, title_en=entry.label.en,
                starts=starts, ends=ends, all_day=entry.time is None, audience=rule,
                link=link.url if link else None, note_zh=entry.note.zh_TW if entry.note else "",
                note_en=entry.note.en if entry.note else "", citation=entry.citation, edition=edition.year))
    return events


def staff_event(row: StaffEventRecord) -> CalendarEvent:
    """A calendar event from a stored staff event (storage.reminders.ReminderEvent)."""
    return CalendarEvent(
        key=row.key, kind=row.kind, title_zh=row.title_zh, title_en=row.title_en,
        starts=row.starts_at.astimezone(TAIPEI), ends=row.ends_at.astimezone(TAIPEI) if row.ends_at else None,
        all_day=bool(row.all_day), audience=row.audience, leads=parse_leads(row.lead_times or ""), link=row.link,
        note_zh=row.note_zh or "", note_en=row.note_en or "", citation=row.citation or "", edition=row.edition,
        source="staff")


def calendar(staff_events: Iterable[StaffEventRecord] = (), editions=None) -> list[CalendarEvent]:
    """Every event: the editions' dates and the staff-added events (storage.reminders.staff_events)."""
    if editions is None:
        editions = all_editions()
    events = [e for edition in editions for e in edition_events(edition)]
    events += [staff_event(row) for row in staff_events]
    return sorted(events, key=lambda e: (e.starts, e.key))


def letters_percent(editions) -> dict[Optional[int], int]:
    found = {e.year: e.letters.at_proposal_percent for e in editions}
    if editions:
        found[None] = editions[-1].letters.at_proposal_percent
    return found


# -- when -------------------------------------------------------------------------------------------


def parse_leads(text: str) -> tuple[str, ...]:
    """"open,7d,1d,0d" → ("open", "7d", "1d", "0d"); "" → () (the default)."""
    leads = []
    for part in re.split(r"[,\s]+", (text or "").strip().lower()):
        if not part:
            continue
        if not _LEAD.match(part):
            raise ValueError(_("A lead time is a number of days (7d), of hours (2h), or open; not {value!r}.").format(
                value=part))
        if part not in leads:
            leads.append(part)
    return tuple(leads)


def in_quiet_hours(moment: datetime) -> bool:
    """21:00–08:00 Asia/Taipei."""
    t = moment.astimezone(TAIPEI).time()
    return t >= QUIET_FROM or t < MORNING


def outside_quiet_hours(moment: datetime) -> datetime:
    """The moment itself, or 08:00 next when it falls in quiet hours."""
    moment = moment.astimezone(TAIPEI)
    if not in_quiet_hours(moment):
        return moment
    day = moment.date() + timedelta(days=1) if moment.time() >= QUIET_FROM else moment.date()
    return datetime.combine(day, MORNING, tzinfo=TAIPEI)


@dataclass(frozen=True)
class Reminder:
    """One lead time of one event: sent from ``due`` until ``until``."""

    event: CalendarEvent
    lead: str
    due: datetime
    until: datetime

    @property
    def key(self) -> str:
        return f"{self.event.key}:{self.lead}"

    def due_at(self, moment: datetime) -> bool:
        return self.due <= moment < self.until


def _raw_due(event: CalendarEvent, lead: str) -> datetime:
    if lead == "open":
        start = event.starts.astimezone(TAIPEI)
        return max(start, datetime.combine(start.date(), MORNING, tzinfo=TAIPEI))
    match = _LEAD.match(lead)
    amount, unit = int(match.group(2)), match.group(3)
    deadline = event.deadline
    if unit == "h":
        return deadline - timedelta(hours=amount)
    return datetime.combine(deadline.date() - timedelta(days=amount), MORNING, tzinfo=TAIPEI)


def schedule(event: CalendarEvent) -> list[Reminder]:
    """The event's reminders in time order; each is superseded by the next one."""
    moments = []
    opens = None
    if event.is_window and "open" in event.lead_times():
        opens = outside_quiet_hours(_raw_due(event, "open"))
    for lead in event.lead_times():
        due = outside_quiet_hours(_raw_due(event, lead))
        if lead == "open" and not event.is_window:
            continue
        if opens is not None and lead != "open" and due < opens:
            continue  # not reminded to do a test before its window opens
        if due < event.deadline:
            moments.append((due, lead))
    moments.sort()
    reminders = []
    for i, (due, lead) in enumerate(moments):
        until = moments[i + 1][0] if i + 1 < len(moments) else event.deadline
        if due < until:
            reminders.append(Reminder(event, lead, due, until))
    return reminders


def due_reminders(events: Iterable[CalendarEvent], moment: Optional[datetime] = None) -> list[Reminder]:
    """The reminders whose time has come and not passed (the caller holds them in quiet hours)."""
    moment = moment or clock_now()
    return [r for e in events for r in schedule(e) if r.due_at(moment)]


def upcoming_reminders(events: Iterable[CalendarEvent], start: datetime, end: datetime) -> list[tuple[datetime, Reminder]]:
    """(when it would go out, reminder) for every reminder sent between ``start`` and ``end``."""
    found = []
    for event in events:
        for reminder in schedule(event):
            if reminder.until <= start or reminder.due > end:
                continue
            at = outside_quiet_hours(max(reminder.due, start))
            if at < reminder.until and at <= end:
                found.append((at, reminder))
    return sorted(found, key=lambda pair: (pair[0], pair[1].key))


def find_reminder(events: Iterable[CalendarEvent], key: str) -> Optional[Reminder]:
    for event in events:
        if key.startswith(event.key + ":"):
            for reminder in schedule(event):
                if reminder.key == key:
                    return reminder
            lead = key[len(event.key) + 1:]
            if _LEAD.match(lead):  # a lead that never falls due (test sends may still want it)
                due = outside_quiet_hours(_raw_due(event, lead))
                return Reminder(event, lead, due, event.deadline)
    return None


# -- what people read --------------------------------------------------------------------------------


def _when_left(deadline: datetime, moment: datetime) -> str:
    days = (deadline.astimezone(TAIPEI).date() - moment.astimezone(TAIPEI).date()).days
    if days <= 0:
        return _("that is today")
    if days == 1:
        return _("that is tomorrow")
    return _("in {n} days").format(n=days)


def reminder_messages(reminder: Reminder, moment: Optional[datetime] = None) -> list[Message]:
    """The reminder in the current locale (the caller sets each recipient's locale)."""
    moment = moment or clock_now()
    event = reminder.event
    if reminder.lead == "open":
        head = _("Now open: {title}, {when}.").format(title=event.title(), when=event.when_text())
    else:
        head = _("Reminder: {title}, {when} ({left}).").format(
            title=event.title(), when=event.when_text(), left=_when_left(event.deadline, moment))
    lines = [head]
    why = RULES[event.audience].why if event.audience in RULES else ""
    if why:
        lines.append(_(why))
    if event.note():
        lines.append(event.note())
    if event.citation:
        lines.append(cite(event.citation).strip())
    stop = Text(_("To stop these reminders, reply 停止提醒."), (Choice(_("Stop reminders"), STOP_WORD),))
    messages: list[Message] = [Text("\n".join(lines))]
    if event.link:
        messages.append(Link(_("{title}: open the link below.").format(title=event.title()), _("Open the link"),
                             event.link))
    return messages + [stop]


# -- the chat: opting out, the pre/post tests ------------------------------------------------------------


def _stop(ctx: Context, text: str) -> Outcome:
    """"停止提醒": nothing more until "恢復提醒"."""
    if ctx.repo is not None:
        ctx.repo.set_reminders_paused(ctx.user_id, True)
    return Outcome([Text(_("Reminders are off: I will not send you any more reminders. Reply 恢復提醒 to turn them "
                           "back on. You can still ask me anything."), (Choice(_("Resume reminders"), RESUME_WORD),))])


def _resume(ctx: Context, text: str) -> Outcome:
    """"恢復提醒": reminders again, from the next one."""
    if ctx.repo is not None:
        ctx.repo.set_reminders_paused(ctx.user_id, False)
    return Outcome([Text(_("Reminders are on again. I will remind you of the deadlines that concern you. "
                           "Reply 停止提醒 to turn them off."))])


def _test_events(ctx: Context, kind: str) -> list[CalendarEvent]:
    if ctx.repo is None:
        return []
    return [staff_event(row) for row in ctx.repo.staff_events() if row.kind == kind]


def _current_window(events: list[CalendarEvent], moment: datetime) -> Optional[CalendarEvent]:
    """The window running now, else the next one, else the last one."""
    if not events:
        return None
    running = [e for e in events if e.starts <= moment <= e.deadline]
    if running:
        return running[0]
    coming = [e for e in events if e.starts > moment]
    if coming:
        return min(coming, key=lambda e: e.starts)
    return max(events, key=lambda e: e.deadline)


def _my_tax_id(ctx: Context) -> tuple[Optional[str], object]:
    """The 統一編號 and case of the user's enterprise, when a letter gave it."""
    if ctx.repo is None:
        return None, None
    memberships = ctx.repo.memberships_of(ctx.user_id)
    owners = [m for m in memberships if m.role == "owner"]
    with_tax = [m for m in owners if m.tax_id]
    if with_tax:
        return with_tax[0].tax_id, with_tax[0].case_id
    return None, owners[0].case_id if owners else None


_TEST_NAMES = {"pre_test": N_("pre-test"), "post_test": N_("post-test")}
_DONE_WORDS = {"pre_test": "我已完成前測", "post_test": "我已完成後測"}


def _test_info(kind: str):
    def action(ctx: Context, text: str) -> Outcome:
        """Shows the assessment link and window, and whether the user's enterprise has done it."""
        moment = ctx.clock()
        name = _(_TEST_NAMES[kind])
        event = _current_window(_test_events(ctx, kind), moment)
        messages: list[Message] = []
        if event is None:
            messages.append(Text(_("The program office has not announced the {test} window yet. The capability "
                                   "assessment is done before and after the coaching, with your proposer's help; I "
                                   "will remind you when it opens.").format(test=name) + cite("§捌.四.(七)")))
        else:
            if moment > event.deadline:
                line = _("The {test} window was {when}; it has closed.")
            elif moment < event.starts:
                line = _("The {test} opens {when}.")
            else:
                line = _("The {test} is open {when}.")
            body = [event.title(), line.format(test=name, when=event.when_text())]
            if event.note():
                body.append(event.note())
            body.append(cite(event.citation or "§捌.四.(七)").strip())
            messages.append(Text("\n".join(body)))
            if event.link and moment <= event.deadline:
                messages.append(Link(_("Open the assessment here:"), _("Open the {test}").format(test=name),
                                     event.link))
        state = _my_test_state(ctx, kind)
        if state == "confirmed":
            messages.append(Text(_("Your {test} is confirmed by the program office. Thank you!").format(test=name)))
        elif state == "self_reported":
            messages.append(Text(_("You told me your {test} is done; the program office will confirm it from the "
                                   "assessment results.").format(test=name)))
        else:
            messages.append(Text(_("When you have done it, reply {words} and I will stop reminding you.").format(
                words=_DONE_WORDS[kind]), (Choice(_DONE_WORDS[kind]),)))
        return Outcome(messages)
    return action


def _my_test_state(ctx: Context, kind: str) -> str:
    if ctx.repo is None:
        return "not_done"
    tax_id, _case = _my_tax_id(ctx)
    return ctx.repo.test_state(ctx.user_id, tax_id, kind)


def _test_done(kind: str):
    def action(ctx: Context, text: str) -> Outcome:
        """Records the owner's own report that the test is done; its reminders stop at once."""
        name = _(_TEST_NAMES[kind])
        if ctx.repo is None:
            return Outcome([Text(_("Sorry, I cannot record that right now. Please try again later."))])
        tax_id, case_id = _my_tax_id(ctx)
        if _my_test_state(ctx, kind) == "confirmed":
            return Outcome([Text(_("Your {test} is already confirmed by the program office. Thank you!").format(
                test=name))])
        new = ctx.repo.record_self_report(ctx.user_id, kind, tax_id, case_id)
        if not new:
            return Outcome([Text(_("I already have your {test} as done. Thank you!").format(test=name))])
        return Outcome([Text(_("Thank you! I have noted that your {test} is done (reported by you on {day}); no "
                               "more {test} reminders. The program office confirms it from the assessment "
                               "results.").format(test=name, day=format_date(ctx.clock().date())))])
    return action


INTENTS = [
    Intent("reminders_stop", [N_("stop reminders"), STOP_WORD, "暫停提醒", "關閉提醒", "取消提醒", "不要提醒",
                              "不要再提醒", "pause reminders"], _stop, anywhere=True,
           pattern=r"(?:請|拜託)?(?:不要|別|不用|不必)(?:再|一直)?(?:提醒|通知|傳提醒|傳通知)(?:我)?(?:了|啦)?[!！。.~～]*"
                   r"|(?:please )?stop (?:sending )?(?:me )?(?:reminders|notifications)"),
    Intent("reminders_resume", [N_("resume reminders"), RESUME_WORD, "開啟提醒", "打開提醒", "重新提醒",
                                "繼續提醒", "turn on reminders"], _resume, anywhere=True),
    Intent("pre_test_done", [N_("I have done the pre-test"), _DONE_WORDS["pre_test"], "已完成前測", "完成前測",
                             "前測完成", "前測已完成", "我完成前測了", "我做完前測了", "前測做完了",
                             "pre-test done", "done the pre-test"], _test_done("pre_test"), anywhere=True),
    Intent("post_test_done", [N_("I have done the post-test"), _DONE_WORDS["post_test"], "已完成後測", "完成後測",
                              "後測完成", "後測已完成", "我完成後測了", "我做完後測了", "後測做完了",
                              "post-test done", "done the post-test"], _test_done("post_test"), anywhere=True),
    Intent("pre_test", [N_("pre-test"), "前測", "數位能力評量前測", "能力評量前測", "前測連結", "pretest", "pre test"],
           _test_info("pre_test")),
    Intent("post_test", [N_("post-test"), "後測", "數位能力評量後測", "能力評量後測", "後測連結", "posttest",
                         "post test"], _test_info("post_test")),
]

DIALOGS: dict = {}


# -- for staff: rules and lead times in words ------------------------------------------------------------


def describe_rule(name: str) -> str:
    rule = RULES.get(name)
    return _(rule.description) if rule and rule.description else name


def check_rule(name: str) -> str:
    if name not in RULES:
        raise ValueError(_("Unknown audience {name!r}; one of: {names}.").format(name=name, names=", ".join(RULES)))
    return name

