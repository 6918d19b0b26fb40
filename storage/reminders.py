"""Reminders in the database: staff-added calendar events, every send, and who has done what.

- ``reminder_events``: events staff add to the calendar (pre-test and post-test windows with the
  assessment link, briefings, ad-hoc deadlines). The edition's own dates are not stored: they
  are read from the edition data (storage/editions/<year>/edition.yaml).
- ``reminder_sends``: one row per (reminder, LINE user), UNIQUE, so "exactly once per person"
  is kept by the database even with two workers. A row is inserted as ``claimed`` before the
  multicast and marked ``sent`` with LINE's request id after it.
- ``completion_reports``: the pre-test, post-test and tool import of an enterprise: an owner's
  self-report ("我已完成前測") and the program office's confirmation by import (統一編號).

The helpers here take a `storage.db.Database`; nothing here knows about LINE.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Iterable, Optional

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    delete,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from common.business_number import checksum_ok as business_number_checksum_ok
from common.dates import parse_roc
from common.i18n import _
from common.records import CaseFacts, Member
from storage.letters import OWNER, SUBMITTED, WITHDRAWN, Case, CaseMember, Letter
from storage.models import Base, LineUser, utcnow

EVENT_KINDS = ("pre_test", "post_test", "briefing", "deadline", "checkpoint")
COMPLETION_KINDS = ("pre_test", "post_test", "tool_import")
ASSESSMENT_KINDS = ("pre_test", "post_test")

# reminder_sends.status
CLAIMED = "claimed"  # taken by a worker, the multicast may or may not have reached LINE
SENT = "sent"  # LINE accepted it (or answered 409: an earlier attempt was accepted)
FAILED = "failed"  # LINE refused it for good (4xx other than 409/429)
EXPIRED = "expired"  # claimed too long ago for LINE's retry key to protect a re-send

_ID = BigInteger().with_variant(Integer, "sqlite")


class ReminderEvent(Base):
    """An event staff added to the calendar; the edition's own dates come from the edition file."""

    __tablename__ = "reminder_events"

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    edition: Mapped[Optional[int]] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))  # pre_test / post_test / briefing / deadline / checkpoint
    title_zh: Mapped[str] = mapped_column(String(200))
    title_en: Mapped[str] = mapped_column(String(200))
    starts_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ends_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    all_day: Mapped[bool] = mapped_column(Boolean, default=False)
    link: Mapped[Optional[str]] = mapped_column(String(1000))
    audience: Mapped[str] = mapped_column(String(64))  # a rule name of dialogs.reminders.RULES
    lead_times: Mapped[str] = mapped_column(String(100), default="")  # "open,7d,1d,0d"; "" = the default
    note_zh: Mapped[Optional[str]] = mapped_column(Text)
    note_en: Mapped[Optional[str]] = mapped_column(Text)
    citation: Mapped[Optional[str]] = mapped_column(String(100))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(128), default="staff")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReminderSend(Base):
    """One reminder to one LINE user: claimed, then sent (who, what, when, LINE request id)."""

    __tablename__ = "reminder_sends"
    __table_args__ = (
        UniqueConstraint("reminder_key", "user_id", name="uq_reminder_sends_key_user"),
        Index("ix_reminder_sends_status_claimed", "status", "claimed_at"),
    )

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    reminder_key: Mapped[str] = mapped_column(String(160))
    user_id: Mapped[str] = mapped_column(String(64))
    locale: Mapped[str] = mapped_column(String(8), default="zh_TW")
    status: Mapped[str] = mapped_column(String(12), default=CLAIMED)
    batch_key: Mapped[str] = mapped_column(String(64), index=True)  # the X-Line-Retry-Key of its multicast
    claimed_by: Mapped[Optional[str]] = mapped_column(String(100))
    claimed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    request_id: Mapped[Optional[str]] = mapped_column(String(64))
    error: Mapped[Optional[str]] = mapped_column(String(200))


class CompletionReport(Base):
    """Done or not: an enterprise's pre-test, post-test or tool import.

    ``subject`` says whose: ``user:<LINE user id>`` for a self-report by an owner whose
    統一編號 is not known yet, ``tax:<統一編號>`` for an enterprise, ``case:<id>`` for a whole case
    (tool import confirmed for every enterprise of a case).
    """

    __tablename__ = "completion_reports"
    __table_args__ = (UniqueConstraint("kind", "subject", name="uq_completion_reports_kind_subject"),)

    id: Mapped[int] = mapped_column(_ID, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))  # pre_test / post_test / tool_import
    subject: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    tax_id: Mapped[Optional[str]] = mapped_column(String(8), index=True)
    case_id: Mapped[Optional[str]] = mapped_column(String(64))
    self_reported_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    completed_on: Mapped[Optional[date]] = mapped_column(Date)  # the day given by the import
    source: Mapped[Optional[str]] = mapped_column(String(64))  # "chat" / the import's name


# -- opting out ------------------------------------------------------------------------------------


def set_reminders_paused(db, user_id: str, paused: bool) -> None:
    """"停止提醒" / "恢復提醒": takes effect for the very next send."""
    with db.session() as s:
        user = s.get(LineUser, user_id)
        if user is None:
            s.add(LineUser(user_id=user_id, reminders_paused=paused))
        else:
            user.reminders_paused = paused


def reminders_paused(db, user_id: str) -> bool:
    with db.session() as s:
        user = s.get(LineUser, user_id)
        return bool(user and user.reminders_paused)


# -- staff-added events ----------------------------------------------------------------------------


def add_event(db, *, kind: str, title_zh: str, title_en: str, starts_at: datetime, audience: str,
              ends_at: Optional[datetime] = None, all_day: bool = False, link: Optional[str] = None,
              lead_times: str = "", note_zh: Optional[str] = None, note_en: Optional[str] = None,
              citation: Optional[str] = None, edition: Optional[int] = None, key: Optional[str] = None,
              created_by: str = "staff") -> ReminderEvent:
    """Adds an event to the calendar (callers check the rule name and lead times first)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(EVENT_KINDS)}")
    if starts_at.tzinfo is None or (ends_at is not None and ends_at.tzinfo is None):
        raise ValueError("event times need a time zone")
    with db.session() as s:
        row = ReminderEvent(key=key or "", kind=kind, title_zh=title_zh, title_en=title_en, starts_at=starts_at,
                            ends_at=ends_at, all_day=all_day, link=link, audience=audience, lead_times=lead_times,
                            note_zh=note_zh, note_en=note_en, citation=citation, edition=edition,
                            created_by=created_by)
        s.add(row)
        s.flush()
        if not key:
            row.key = f"staff{row.id}"
    db.audit(created_by, "reminder_event_added", row.key, kind=kind, audience=audience)
    return row


def staff_events(db, include_inactive: bool = False) -> list[ReminderEvent]:
    with db.session() as s:
        query = select(ReminderEvent).order_by(ReminderEvent.starts_at)
        if not include_inactive:
            query = query.where(ReminderEvent.active.is_(True))
        return list(s.scalars(query))


# -- who has done what -----------------------------------------------------------------------------


@dataclass
class Completions:
    """Who is done, per kind: by LINE user, by 統一編號, by case."""

    users: dict[str, set] = field(default_factory=lambda: {k: set() for k in COMPLETION_KINDS})
    taxes: dict[str, set] = field(default_factory=lambda: {k: set() for k in COMPLETION_KINDS})
    cases: dict[str, set] = field(default_factory=lambda: {k: set() for k in COMPLETION_KINDS})
    confirmed_only: bool = False

    def done(self, kind: str, user_id: str, tax_id: Optional[str] = None, case_id=None) -> bool:
        return (user_id in self.users[kind] or (tax_id is not None and tax_id in self.taxes[kind])
                or (case_id is not None and str(case_id) in self.cases[kind]))


def load_completions(db) -> Completions:
    """Everything reported or confirmed.

    Pre/post tests count as done on the owner's self-report (the bot stops reminding; the
    import later confirms it); a tool import counts only once the program office confirms it.
    """
    found = Completions()
    with db.session() as s:
        for kind, user_id, tax_id, case_id, reported, confirmed in s.execute(select(
                CompletionReport.kind, CompletionReport.user_id, CompletionReport.tax_id, CompletionReport.case_id,
                CompletionReport.self_reported_at, CompletionReport.confirmed_at)):
            if kind not in found.users:
                continue
            if confirmed is None and (reported is None or kind == "tool_import"):
                continue
            if user_id:
                found.users[kind].add(user_id)
            if tax_id:
                found.taxes[kind].add(tax_id)
            if case_id and not user_id and not tax_id:
                found.cases[kind].add(str(case_id))
    return found


def record_self_report(db, user_id: str, kind: str, tax_id: Optional[str] = None, case_id=None,
                       at: Optional[datetime] = None) -> bool:
    """An owner says "我已完成前測"; False when it had already been recorded or confirmed."""
    if kind not in ASSESSMENT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(ASSESSMENT_KINDS)}")
    at = at or utcnow()
    subject = f"tax:{tax_id}" if tax_id else f"user:{user_id}"
    with db.session() as s:
        row = s.scalar(select(CompletionReport).where(CompletionReport.kind == kind,
                                                      CompletionReport.subject == subject))
        if row is None:
            s.add(CompletionReport(kind=kind, subject=subject, user_id=user_id, tax_id=tax_id,
                                   case_id=str(case_id) if case_id is not None else None,
                                   self_reported_at=at, source="chat"))
            return True
        if row.user_id is None:
            row.user_id = user_id
        if row.self_reported_at is None and row.confirmed_at is None:
            row.self_reported_at = at
            return True
        return False


@dataclass
class ImportResult:
    """What an import did: rows confirmed, rows that were already confirmed, and rows refused."""

    confirmed: int = 0
    already: int = 0
    problems: list[tuple[int, str]] = field(default_factory=list)  # (row number from 1, reason)


KIND_WORDS = {
    "pre": "pre_test", "pre_test": "pre_test", "pretest": "pre_test", "前測": "pre_test",
    "post": "post_test", "post_test": "post_test", "posttest": "post_test", "後測": "post_test",
    "import": "tool_import", "tool_import": "tool_import", "導入": "tool_import", "工具導入": "tool_import",
}


def _row_fields(row) -> tuple:
    if isinstance(row, dict):
        lowered = {str(k).strip().lower(): v for k, v in row.items()}
        pick = lambda *names: next((lowered[n] for n in names if n in lowered), None)  # noqa: E731
        return (pick("統一編號", "統編", "tax_id", "business_number"), pick("前後測", "kind", "test", "type", "項目"),
                pick("日期", "date", "completed_on", "完成日期"))
    values = list(row) + [None, None, None]
    return values[0], values[1], values[2]


def read_day(value) -> Optional[date]:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    first = text.replace("年", "/").replace("-", "/").split("/")[0]
    if first.isdigit() and int(first) >= 1911:
        return date.fromisoformat(text.replace("/", "-")[:10]) if "-" in text or "/" in text else None
    return parse_roc(text)


def import_completions(db, rows: Iterable, kinds: tuple = COMPLETION_KINDS, source: str = "import",
                       actor: str = "staff", at: Optional[datetime] = None) -> ImportResult:
    """Confirms rows (統一編號, kind, date); every row is checked and refusals say why."""
    result = ImportResult()
    at = at or utcnow()
    wanted: dict[tuple[str, str], Optional[date]] = {}
    for number, row in enumerate(rows, start=1):
        raw_tax, raw_kind, raw_day = _row_fields(row)
        tax_id = "".join(str(raw_tax or "").split())
        kind = KIND_WORDS.get(str(raw_kind or "").strip().lower().replace("-", "_").replace(" ", "_"))
        if not (len(tax_id) == 8 and tax_id.isdigit() and business_number_checksum_ok(tax_id)):
            result.problems.append((number, _("not a valid 統一編號: {value!r}").format(value=raw_tax)))
            continue
        if kind not in kinds:
            result.problems.append((number, _("should be one of {kinds}, not {value!r}").format(
                kinds=", ".join(kinds), value=raw_kind)))
            continue
        try:
            day = read_day(raw_day)
        except (ValueError, IndexError):
            result.problems.append((number, _("not a date: {value!r}").format(value=raw_day)))
            continue
        wanted[(kind, tax_id)] = day
    with db.session() as s:
        existing = {}
        subjects = [f"tax:{t}" for _k, t in wanted]
        for start in range(0, len(subjects), 500):
            for row in s.scalars(select(CompletionReport).where(
                    CompletionReport.subject.in_(subjects[start:start + 500]))):
                existing[(row.kind, row.subject)] = row
        for (kind, tax_id), day in wanted.items():
            row = existing.get((kind, f"tax:{tax_id}"))
            if row is None:
                s.add(CompletionReport(kind=kind, subject=f"tax:{tax_id}", tax_id=tax_id, confirmed_at=at,
                                       completed_on=day, source=source))
                result.confirmed += 1
            elif row.confirmed_at is not None:
                result.already += 1
            else:
                row.confirmed_at, row.completed_on, row.source = at, day, source
                result.confirmed += 1
    db.audit(actor, "completions_imported", source, confirmed=result.confirmed, already=result.already,
             refused=len(result.problems), kinds=list(kinds))
    return result


def import_assessment_results(db, rows: Iterable, source: str = "assessment import",
                              actor: str = "staff") -> ImportResult:
    """The program office's assessment results: rows of (統一編號, pre/post or 前測/後測, date)."""
    return import_completions(db, rows, ASSESSMENT_KINDS, source=source, actor=actor)


def confirm_tool_import(db, *, tax_id: Optional[str] = None, case_id=None, on: Optional[date] = None,
                        actor: str = "staff") -> None:
    """Confirms the tool import of one enterprise (統一編號) or of a whole case."""
    if not tax_id and case_id is None:
        raise ValueError("give a 統一編號 or a case")
    subject = f"tax:{tax_id}" if tax_id else f"case:{case_id}"
    with db.session() as s:
        row = s.scalar(select(CompletionReport).where(CompletionReport.kind == "tool_import",
                                                      CompletionReport.subject == subject))
        if row is None:
            s.add(CompletionReport(kind="tool_import", subject=subject, tax_id=tax_id,
                                   case_id=None if tax_id else str(case_id), confirmed_at=utcnow(),
                                   completed_on=on, source="staff"))
        elif row.confirmed_at is None:
            row.confirmed_at, row.completed_on = utcnow(), on
    db.audit(actor, "tool_import_confirmed", subject)


@dataclass(frozen=True)
class TestState:
    """One test of one enterprise: not done, self-reported, or confirmed by import."""

    state: str  # not_done / self_reported / confirmed
    self_reported_at: Optional[datetime] = None
    confirmed_at: Optional[datetime] = None
    completed_on: Optional[date] = None


@dataclass(frozen=True)
class EnterpriseTests:
    user_id: str
    tax_id: Optional[str]
    pre_test: TestState
    post_test: TestState


def test_states(db, people: Iterable[tuple[str, Optional[str]]]) -> dict[str, EnterpriseTests]:
    """{user id: its pre/post test states} for (user id, 統一編號 or None) pairs."""
    people = list(people)
    users = [u for u, _t in people]
    taxes = [t for _u, t in people if t]
    rows: list[CompletionReport] = []
    with db.session() as s:
        for chunk_start in range(0, max(len(users), len(taxes)), 500):
            u_chunk, t_chunk = users[chunk_start:chunk_start + 500], taxes[chunk_start:chunk_start + 500]
            condition = CompletionReport.user_id.in_(u_chunk)
            if t_chunk:
                condition = condition | CompletionReport.tax_id.in_(t_chunk)
            rows += list(s.scalars(select(CompletionReport).where(
                CompletionReport.kind.in_(ASSESSMENT_KINDS), condition)))
    out = {}
    for user_id, tax_id in people:
        states = {}
        for kind in ASSESSMENT_KINDS:
            mine = [r for r in rows if r.kind == kind and (r.user_id == user_id or (tax_id and r.tax_id == tax_id))]
            confirmed = next((r for r in mine if r.confirmed_at), None)
            reported = next((r for r in mine if r.self_reported_at), None)
            if confirmed:
                states[kind] = TestState("confirmed", reported.self_reported_at if reported else None,
                                         confirmed.confirmed_at, confirmed.completed_on)
            elif reported:
                states[kind] = TestState("self_reported", reported.self_reported_at)
            else:
                states[kind] = TestState("not_done")
        out[user_id] = EnterpriseTests(user_id, tax_id, states["pre_test"], states["post_test"])
    return out


def test_status_for_case(db, case_id, directory=None) -> list[EnterpriseTests]:
    """The pre/post test state of every owner of a case, for the proposer's roster (§捌.四.(七)).

    ``directory`` is the audience source (dialogs.reminders.Directory); by default the
    cases-and-letters tables.
    """
    if directory is None:
        directory = LettersDirectory(db)
    owners = [m for m in directory.members() if m.role == "owner" and str(m.case_id) == str(case_id)]
    states = test_states(db, [(m.user_id, m.tax_id) for m in owners])
    return [states[m.user_id] for m in owners]


# -- sends -----------------------------------------------------------------------------------------


def sent_users(db, reminder_key: str) -> set[str]:
    """Everyone who has a row for this reminder (claimed, sent, failed): they are not sent it again."""
    with db.session() as s:
        return set(s.scalars(select(ReminderSend.user_id).where(ReminderSend.reminder_key == reminder_key)))


def excluded_users(db) -> tuple[set[str], set[str]]:
    """(users who blocked the account, users who said 停止提醒)."""
    with db.session() as s:
        blocked = set(s.scalars(select(LineUser.user_id).where(LineUser.followed.is_(False))))
        paused = set(s.scalars(select(LineUser.user_id).where(LineUser.reminders_paused.is_(True))))
    return blocked, paused


def locales_of(db) -> dict[str, str]:
    """Users whose locale is not the default (zh_TW); everyone else reads zh_TW."""
    with db.session() as s:
        return dict(s.execute(select(LineUser.user_id, LineUser.locale).where(LineUser.locale != "zh_TW")).all())


def send_log(db, reminder_key: Optional[str] = None, limit: int = 1000) -> list[dict]:
    """The record of sends (who, what, when, LINE request id), newest first."""
    with db.session() as s:
        query = select(ReminderSend).order_by(ReminderSend.id.desc()).limit(limit)
        if reminder_key:
            query = query.where(ReminderSend.reminder_key == reminder_key)
        return [dict(reminder_key=r.reminder_key, user_id=r.user_id, status=r.status, locale=r.locale,
                     sent_at=r.sent_at, request_id=r.request_id, batch_key=r.batch_key, error=r.error)
                for r in s.scalars(query)]


def audit_detail(entry) -> dict:
    return json.loads(entry.detail) if entry.detail else {}


_CLAIM_SQL = {
    # one statement and a handful of parameters for a whole batch, whatever its size
    "postgresql": "INSERT INTO reminder_sends (reminder_key, user_id, locale, status, batch_key, claimed_by, claimed_at) "
                  "SELECT :reminder_key, u, :locale, :status, :batch_key, :worker, :now "
                  "FROM unnest(CAST(:users AS varchar[])) AS u "
                  "ON CONFLICT (reminder_key, user_id) DO NOTHING RETURNING user_id",
    "sqlite": "INSERT INTO reminder_sends (reminder_key, user_id, locale, status, batch_key, claimed_by, claimed_at) "
              "SELECT :reminder_key, value, :locale, :status, :batch_key, :worker, :now "
              "FROM json_each(:users) WHERE true "
              "ON CONFLICT (reminder_key, user_id) DO NOTHING RETURNING user_id",
}


def _claim_statement(db, users: list[str]):
    dialect = db.engine.dialect.name
    if dialect == "postgresql":
        users_param = bindparam("users", value=users, type_=ARRAY(String()))
    else:
        users_param = bindparam("users", value=json.dumps(users), type_=Text())
    return text(_CLAIM_SQL["postgresql" if dialect == "postgresql" else "sqlite"]).bindparams(
        users_param, bindparam("now", type_=DateTime(timezone=True)))


def claim_batch(db, reminder_key: str, user_ids: list[str], locale: str, worker: str, key_for) -> tuple[str, list[str]]:
    """Claims what nobody has claimed yet of ``user_ids`` for this reminder, in one transaction.

    Returns (batch key, the users claimed). The rows are inserted as ``claimed`` with
    ON CONFLICT DO NOTHING, so a second worker claiming the same people gets none of them;
    the batch key (the multicast's X-Line-Retry-Key) is ``key_for(claimed users)``, derived
    from the members actually claimed, and on their rows before the commit.
    """
    if not user_ids:
        return "", []
    wanted = sorted(set(user_ids))
    hoped = key_for(wanted)  # usually every one of them is claimed
    statement = _claim_statement(db, wanted)
    with db.session() as s:
        claimed = sorted(s.scalars(statement, dict(reminder_key=reminder_key, locale=locale, status=CLAIMED,
                                                   batch_key=hoped, worker=worker[:100], now=utcnow())).all())
        if not claimed:
            return "", []
        if len(claimed) == len(wanted):
            return hoped, claimed
        batch_key = key_for(claimed)
        s.execute(ReminderSend.__table__.update()
                  .where(ReminderSend.reminder_key == reminder_key, ReminderSend.batch_key == hoped,
                         ReminderSend.user_id.in_(claimed))
                  .values(batch_key=batch_key))
    return batch_key, claimed


def mark_batch(db, batch_key: str, status: str, request_id: str = "", error: str = "") -> int:
    """Marks a claimed batch sent (with LINE's request id) or failed; returns the rows changed."""
    values = dict(status=status, request_id=request_id[:64] or None, error=error[:200] or None)
    if status == SENT:
        values["sent_at"] = utcnow()
    with db.session() as s:
        result = s.execute(ReminderSend.__table__.update()
                           .where(ReminderSend.batch_key == batch_key, ReminderSend.status == CLAIMED)
                           .values(**values))
        return result.rowcount


@dataclass(frozen=True)
class StaleBatch:
    batch_key: str
    reminder_key: str
    locale: str
    user_ids: tuple[str, ...]
    claimed_at: datetime


def stale_batches(db, older_than: datetime) -> list[StaleBatch]:
    """Batches claimed before ``older_than`` and never marked: their worker died mid-send."""
    groups: dict[str, dict] = {}
    with db.session() as s:
        for batch_key, reminder_key, locale, user_id, claimed_at in s.execute(
                select(ReminderSend.batch_key, ReminderSend.reminder_key, ReminderSend.locale, ReminderSend.user_id,
                       ReminderSend.claimed_at)
                .where(ReminderSend.status == CLAIMED, ReminderSend.claimed_at < older_than)):
            group = groups.setdefault(batch_key, dict(reminder_key=reminder_key, locale=locale, users=[],
                                                      claimed_at=claimed_at))
            group["users"].append(user_id)
    return [StaleBatch(k, g["reminder_key"], g["locale"], tuple(sorted(g["users"])), g["claimed_at"])
            for k, g in groups.items()]


def take_over_batch(db, batch_key: str, older_than: datetime, worker: str) -> bool:
    """Takes a stale batch for a re-send; only one worker wins (the others see it fresh again)."""
    with db.session() as s:
        result = s.execute(ReminderSend.__table__.update()
                           .where(ReminderSend.batch_key == batch_key, ReminderSend.status == CLAIMED,
                                  ReminderSend.claimed_at < older_than)
                           .values(claimed_at=utcnow(), claimed_by=worker[:100]))
        return result.rowcount > 0


# -- the audience source -------------------------------------------------------------------------


class LettersDirectory:
    """Members and cases read from the cases-and-letters tables (storage.letters, migration 0002).

    An owner whose letter is withdrawn is not taking part (for now): no owner reminders for them.
    A case's planned count of 0 means "not set": the rules count the owners who joined.
    """

    def __init__(self, db):
        self.db = db

    def _query(self, user_id: Optional[str] = None):

        query = (select(CaseMember.user_id, CaseMember.case_id, CaseMember.role, Case.edition,
                        Letter.business_number, Letter.status)
                 .join(Case, Case.id == CaseMember.case_id)
                 .outerjoin(Letter, (Letter.case_id == CaseMember.case_id) & (Letter.user_id == CaseMember.user_id)
                            & (CaseMember.role == OWNER))
                 .order_by(CaseMember.id))
        if user_id is not None:
            query = query.where(CaseMember.user_id == user_id)
        with self.db.session() as s:
            rows = s.execute(query).all()
        return [Member(user_id=u, case_id=case_id, role=role, tax_id=tax or None, letter_status=status,
                       edition=edition)
                for u, case_id, role, edition, tax, status in rows
                if not (role == OWNER and status == WITHDRAWN)]

    def members(self):
        return self._query()

    def memberships_of(self, user_id: str):
        return self._query(user_id)

    def cases(self):

        submitted = (select(Letter.case_id, func.count(Letter.id).label("n"))
                     .where(Letter.status == SUBMITTED).group_by(Letter.case_id).subquery())
        with self.db.session() as s:
            rows = s.execute(select(Case.id, Case.planned_count, Case.edition, submitted.c.n)
                             .outerjoin(submitted, submitted.c.case_id == Case.id)).all()
        return [CaseFacts(case_id=case_id, planned=planned or None, letters_submitted=n or 0, edition=edition)
                for case_id, planned, edition, n in rows]


def forget_user(session, user_id: str) -> dict:
    """For the owner's "delete my data": their reminder sends and self-reports (imports by 統一編號 stay)."""
    sends = session.execute(delete(ReminderSend).where(ReminderSend.user_id == user_id)).rowcount
    reports = session.execute(delete(CompletionReport).where(CompletionReport.user_id == user_id,
                                                             CompletionReport.confirmed_at.is_(None))).rowcount
    session.execute(CompletionReport.__table__.update().where(CompletionReport.user_id == user_id)
                    .values(user_id=None))
    return {"reminder_sends": sends, "self_reports": reports}
