"""Cases, invite codes, letters of intent (附件二) and consents: models and the queries on them.

A *case* (提案案件) is set up by staff; it has two codes: the proposer's (``P-…``) links a
proposer contact's LINE account to it, the owners' (``J-…``) lets enterprise owners join it.
An owner who joins and agrees to the personal-data notice gets a *letter* (status draft);
when the letter dialog is confirmed the letter holds every field of 附件二 一 and of the
roster row of 附件一 柒.1 and its status becomes submitted. A correction makes a new
version; the old values go to ``letter_versions`` (the audit log records only that a change
happened, never the values). ``previous_programs`` is the list of enterprises of earlier or
conflicting programs that staff import; a business number found there flags the letter.

Personal data lives only in ``letters`` and ``letter_versions`` (and transiently in the
dialog state); `delete_user_data` removes it.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone
from typing import Iterable, Optional

from sqlalchemy import (Boolean, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint, delete, event,
                        func, select, update)
from sqlalchemy.orm import Mapped, Session, mapped_column

from common.letters import (  # noqa: F401  (the vocabulary is read from here too)
                            CASE_TYPES, CODE_ALPHABET, CODE_ATTEMPTS_PER_HOUR, CODE_LENGTH, COMPANY_REGISTERED, DRAFT,
                            INCLUSION, LETTER_FIELDS, OWNER, OWNER_PREFIX, PERSONAL_FIELDS, POPULARIZATION, PROPOSER,
                            PROPOSER_PREFIX, ROLE_OF_PREFIX, SUBMITTED, TAX_REGISTERED, WITHDRAWN, canonical_code,
                            new_code, same_code)
from storage.models import Base, LineUser, utcnow



# -- models -------------------------------------------------------------------------------------
class Case(Base):
    """A proposer's case (提案案件) and its part of 附件二 二 (the solution, from the proposal)."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    edition: Mapped[int] = mapped_column(Integer, index=True)  # ROC year, e.g. 112
    proposer_name: Mapped[str] = mapped_column(String(200))  # 提案單位公司全名
    plan_name: Mapped[str] = mapped_column(String(200))  # 計畫名稱
    case_type: Mapped[str] = mapped_column(String(16))  # popularization / inclusion
    theme: Mapped[Optional[str]] = mapped_column(String(32))  # regional / industry_chain / cross_industry
    vendor_name: Mapped[str] = mapped_column(String(200))  # 雲端服務供應商全名
    solution_name: Mapped[str] = mapped_column(String(200))
    solution_content: Mapped[str] = mapped_column(Text, default="")
    sla: Mapped[str] = mapped_column(Text, default="")  # 服務水平協議 SLA 之說明
    period: Mapped[str] = mapped_column(String(200), default="")  # 使用期間
    other_content: Mapped[str] = mapped_column(Text, default="")  # 計畫其他輔導內容
    integrated_service: Mapped[str] = mapped_column(Text, default="", server_default="")  # 共融案: 整合性服務項目與內容
    planned_count: Mapped[int] = mapped_column(Integer, default=0)  # 預定輔導家數
    proposer_code: Mapped[str] = mapped_column(String(20), unique=True)
    owner_code: Mapped[str] = mapped_column(String(20), unique=True)
    proposer_code_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    owner_code_revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseMember(Base):
    """A LINE user's role in a case: proposer contact or enterprise owner (several cases are fine)."""

    __tablename__ = "case_members"
    __table_args__ = (UniqueConstraint("case_id", "user_id", "role", name="uq_case_member"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    role: Mapped[str] = mapped_column(String(16))
    joined_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    joined_code: Mapped[Optional[str]] = mapped_column(String(20))  # the code used (revoking it can unlink them)


class Letter(Base):
    """One enterprise's letter of intent (附件二 一) and roster row (附件一 柒.1) in one case."""

    __tablename__ = "letters"
    __table_args__ = (UniqueConstraint("case_id", "user_id", name="uq_letter_case_user"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)  # the owner's LINE user
    status: Mapped[str] = mapped_column(String(16), default=DRAFT, index=True)
    version: Mapped[int] = mapped_column(Integer, default=0)  # 1 at the first submission
    company_name: Mapped[Optional[str]] = mapped_column(String(200))  # 企業名稱
    business_number: Mapped[Optional[str]] = mapped_column(String(8), index=True)  # 統一編號
    company_type: Mapped[Optional[int]] = mapped_column(Integer)  # 1 公司/商業登記, 2 稅籍登記
    employees: Mapped[Optional[int]] = mapped_column(Integer)  # 員工人數
    county_code: Mapped[Optional[str]] = mapped_column(String(5))  # 縣市 (MOI code)
    town_code: Mapped[Optional[str]] = mapped_column(String(8))  # 鄉鎮市區 (MOI code)
    products: Mapped[Optional[str]] = mapped_column(String(300))  # 主要服務/產品
    other_programs: Mapped[Optional[bool]] = mapped_column(Boolean)  # 當年度參與/申請政府相關計畫
    other_program_names: Mapped[Optional[str]] = mapped_column(String(300))
    contact_name: Mapped[Optional[str]] = mapped_column(String(100))  # 聯絡人
    mobile: Mapped[Optional[str]] = mapped_column(String(20))  # 手機, E.164
    phone: Mapped[Optional[str]] = mapped_column(String(20))  # 電話, E.164
    phone_ext: Mapped[Optional[str]] = mapped_column(String(10))  # 分機
    email: Mapped[Optional[str]] = mapped_column(String(254))
    representative: Mapped[Optional[str]] = mapped_column(String(100))  # 代表人
    address: Mapped[Optional[str]] = mapped_column(String(300))  # 地址
    undertakings: Mapped[Optional[str]] = mapped_column(Text)  # JSON: {"三": true, ...} (附件二 三–六)
    undertakings_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    flag_over_nine: Mapped[bool] = mapped_column(Boolean, default=False)
    flag_conflict: Mapped[bool] = mapped_column(Boolean, default=False)  # declared another program this year
    flag_previous_program: Mapped[bool] = mapped_column(Boolean, default=False)  # in the imported list
    flag_duplicate: Mapped[bool] = mapped_column(Boolean, default=False)  # same 統編 in another letter
    screening: Mapped[Optional[str]] = mapped_column(Text)  # JSON of the screening answers, if any
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    withdrawn_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    def values(self) -> dict:
        return {name: getattr(self, name) for name in LETTER_FIELDS}

    @property
    def flags(self) -> list[str]:
        return [name for name in ("over_nine", "conflict", "previous_program", "duplicate")
                if getattr(self, f"flag_{name}")]


class LetterVersion(Base):
    """The values a letter had before a correction or a new submission (personal data: deleted with it)."""

    __tablename__ = "letter_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    letter_id: Mapped[int] = mapped_column(ForeignKey("letters.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    data: Mapped[str] = mapped_column(Text)  # JSON of LETTER_FIELDS
    replaced_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Consent(Base):
    """An answer to the personal-data notice (個資法 §8): who, which notice version, agreed or not, when."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    notice_version: Mapped[str] = mapped_column(String(32))
    agreed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScreeningRecord(Base):
    """An owner's latest eligibility screening (資格檢查): it goes with their letter when they send one."""

    __tablename__ = "screenings"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    record: Mapped[str] = mapped_column(Text)  # JSON: answers, outcome, edition, at
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def save_screening(session: Session, user_id: str, record: dict) -> None:
    """Keeps the owner's latest screening (one row per LINE user)."""
    row = session.get(ScreeningRecord, user_id)
    text = json.dumps(record, ensure_ascii=False)
    if row is None:
        session.add(ScreeningRecord(user_id=user_id, record=text))
    else:
        row.record, row.at = text, utcnow()


def latest_screening(session: Session, user_id: str) -> Optional[str]:
    row = session.get(ScreeningRecord, user_id)
    return row.record if row is not None else None


class PreviousProgram(Base):
    """An enterprise of an earlier or conflicting program, from a list staff import."""

    __tablename__ = "previous_programs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    business_number: Mapped[str] = mapped_column(String(8), index=True)
    program_name: Mapped[str] = mapped_column(String(200))
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CodeAttempt(Base):
    """A wrong or refused code someone sent (for the per-user limit); kept one day.

    Keyed on a one-way hash of the LINE user id (`attempt_key`): no personal data, so it is kept
    when the user deletes their data — deleting cannot reset the guess limit.
    """

    __tablename__ = "code_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_hash: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)


# -- cases and codes --------------------------------------------------------------------------
def create_case(session: Session, **fields) -> Case:
    case = Case(proposer_code=new_code(PROPOSER_PREFIX), owner_code=new_code(OWNER_PREFIX), **fields)
    session.add(case)
    session.flush()
    return case


def reissue_code(session: Session, case: Case, role: str) -> str:
    """Revokes the case's current ``role`` code and issues a new one (the old one stops working)."""
    if role == PROPOSER:
        case.proposer_code, case.proposer_code_revoked = new_code(PROPOSER_PREFIX), False
        return case.proposer_code
    case.owner_code, case.owner_code_revoked = new_code(OWNER_PREFIX), False
    return case.owner_code


def find_case_by_code(session: Session, typed: str) -> tuple[Optional[Case], Optional[str]]:
    """(case, role) for a valid, unrevoked code; (None, None) otherwise.

    Every case's code of that role is compared in constant time, so neither the answer nor
    its timing tells whether a similar code exists.
    """
    code = canonical_code(typed)
    if code is None:
        return None, None
    role = ROLE_OF_PREFIX[code[0]]
    column, revoked = ((Case.proposer_code, Case.proposer_code_revoked) if role == PROPOSER
                       else (Case.owner_code, Case.owner_code_revoked))
    found = None
    for case_id, stored, is_revoked in session.execute(select(Case.id, column, revoked)).all():
        if same_code(code, stored) and not is_revoked:
            found = case_id
    if found is None:
        return None, None
    return session.get(Case, found), role


def attempt_key(user_id: str) -> str:
    """The one-way hash of a LINE user id that the guess limit is kept under."""
    return hashlib.sha256(("gonghao:code-attempt:" + (user_id or "")).encode()).hexdigest()


def recent_code_attempts(session: Session, user_id: str, now: Optional[datetime] = None) -> list[datetime]:
    now = now or datetime.now(timezone.utc)
    rows = session.execute(select(CodeAttempt.at).where(CodeAttempt.user_hash == attempt_key(user_id),
                                                        CodeAttempt.at > now - timedelta(hours=1))
                           .order_by(CodeAttempt.at)).scalars().all()
    return [_aware(at) for at in rows]


def record_code_attempt(session: Session, user_id: str) -> None:
    now = datetime.now(timezone.utc)
    session.execute(delete(CodeAttempt).where(CodeAttempt.at < now - timedelta(days=1)))
    session.add(CodeAttempt(user_hash=attempt_key(user_id), at=now))


def add_member(session: Session, case_id: int, user_id: str, role: str) -> bool:
    """Links the user to the case in ``role``; False when already linked.

    The case's current code of that role is recorded: it is the code they joined with (a revoked
    code finds no case), so revoking it can offer to unlink them.
    """
    exists = session.execute(select(CaseMember.id).where(CaseMember.case_id == case_id, CaseMember.user_id == user_id,
                                                         CaseMember.role == role)).first()
    if exists:
        return False
    case = session.get(Case, case_id)
    code = None if case is None else (case.proposer_code if role == PROPOSER else case.owner_code)
    session.add(CaseMember(case_id=case_id, user_id=user_id, role=role, joined_code=code))
    user = session.get(LineUser, user_id)
    if user is not None and (user.role is None or role == OWNER):
        user.role = role
    return True


ROLES = "gonghao_roles"  # session.info: {user: roles} read for a worker's batch, while no membership changed


def prefetch_roles(session: Session, user_ids: list[str]) -> None:
    """Reads the roles of several users at once for `roles_of` in this transaction (a worker's batch)."""
    found: dict[str, set[str]] = {user_id: set() for user_id in user_ids}
    for user_id, role in session.execute(select(CaseMember.user_id, CaseMember.role)
                                         .where(CaseMember.user_id.in_(list(user_ids)))):
        found[user_id].add(role)
    session.info[ROLES] = found


def roles_of(session: Session, user_id: str) -> set[str]:
    """The roles the user has in cases (owner, proposer); from the batch's read unless memberships changed since."""
    known = session.info.get(ROLES)
    if known is not None and user_id in known and not _members_pending(session):
        return set(known[user_id])
    return set(session.execute(select(CaseMember.role).where(CaseMember.user_id == user_id)).scalars())


def _members_pending(session: Session) -> bool:
    if any(isinstance(obj, CaseMember) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(ROLES, None)
        return True
    return False


@event.listens_for(Session, "before_flush")
def _flushing_members(session: Session, _context, _instances) -> None:
    if ROLES in session.info:
        _members_pending(session)


@event.listens_for(Session, "do_orm_execute")
def _forget_roles(state) -> None:
    """A bulk change of case_members (a deletion, a staff tool) drops what a batch read of the roles."""
    if (state.is_update or state.is_delete) and ROLES in state.session.info:
        table = getattr(state.statement, "table", None)
        if table is None or getattr(table, "name", None) == CaseMember.__tablename__:
            state.session.info.pop(ROLES, None)


def memberships(session: Session, user_id: str) -> list[tuple[CaseMember, Case]]:
    return list(session.execute(select(CaseMember, Case).join(Case, Case.id == CaseMember.case_id)
                                .where(CaseMember.user_id == user_id).order_by(CaseMember.id)).all())


# -- consent ------------------------------------------------------------------------------------
def record_consent(session: Session, user_id: str, version: str, agreed: bool) -> Consent:
    consent = Consent(user_id=user_id, notice_version=version, agreed=agreed, at=datetime.now(timezone.utc))
    session.add(consent)
    user = session.get(LineUser, user_id)
    if user is not None:
        user.consent_at = consent.at if agreed else None
        user.consent_version = version if agreed else None
    return consent


def has_consent(session: Session, user_id: str, version: str) -> bool:
    """True when the user's latest answer to this notice version was "agree"."""
    latest = session.execute(select(Consent).where(Consent.user_id == user_id, Consent.notice_version == version)
                             .order_by(Consent.at.desc(), Consent.id.desc()).limit(1)).scalar_one_or_none()
    return bool(latest and latest.agreed)


# -- letters ------------------------------------------------------------------------------------
def letter_of(session: Session, case_id: int, user_id: str) -> Optional[Letter]:
    return session.execute(select(Letter).where(Letter.case_id == case_id, Letter.user_id == user_id)
                           ).scalar_one_or_none()


def ensure_draft(session: Session, case_id: int, user_id: str) -> Letter:
    """The user's letter in the case, created as an empty draft (no personal data) if there is none."""
    letter = letter_of(session, case_id, user_id)
    if letter is None:
        letter = Letter(case_id=case_id, user_id=user_id, status=DRAFT, version=0)
        session.add(letter)
        session.flush()
    return letter


def letters_of_user(session: Session, user_id: str) -> list[tuple[Letter, Case]]:
    return list(session.execute(select(Letter, Case).join(Case, Case.id == Letter.case_id)
                                .where(Letter.user_id == user_id).order_by(Letter.id)).all())


def snapshot(session: Session, letter: Letter) -> None:
    """Keeps the letter's current values as its old version (before a correction or a new submission)."""
    if letter.version <= 0:
        return
    session.add(LetterVersion(letter_id=letter.id, version=letter.version, status=letter.status,
                              data=json.dumps(letter.values(), ensure_ascii=False, default=str)))


def in_previous_programs(session: Session, business_number: str) -> list[str]:
    return list(session.execute(select(PreviousProgram.program_name)
                                .where(PreviousProgram.business_number == business_number)).scalars())


def refresh_flags(session: Session, business_numbers: Iterable[Optional[str]]) -> None:
    """Recomputes the duplicate and previous-program flags of every letter with these numbers.

    Two submitted letters with the same 統一編號 in cases of the same edition are both flagged;
    a withdrawn or deleted letter no longer counts.
    """
    for number in {n for n in business_numbers if n}:
        rows = session.execute(select(Letter, Case.edition).join(Case, Case.id == Letter.case_id)
                               .where(Letter.business_number == number)).all()
        listed = bool(in_previous_programs(session, number))
        submitted_by_edition: dict[int, int] = {}
        for letter, edition in rows:
            if letter.status == SUBMITTED:
                submitted_by_edition[edition] = submitted_by_edition.get(edition, 0) + 1
        for letter, edition in rows:
            letter.flag_previous_program = listed
            letter.flag_duplicate = letter.status == SUBMITTED and submitted_by_edition.get(edition, 0) > 1


def other_letters_with_number(session: Session, letter: Letter) -> int:
    """How many other submitted letters of the same edition carry this letter's 統一編號."""
    case = session.get(Case, letter.case_id)
    return session.execute(select(func.count()).select_from(Letter).join(Case, Case.id == Letter.case_id)
                           .where(Letter.business_number == letter.business_number, Letter.id != letter.id,
                                  Letter.status == SUBMITTED, Case.edition == case.edition)).scalar_one()


# -- the owner's rights (個資法 §3) ----------------------------------------------------------------
def delete_user_data(session: Session, user_id: str, store=None) -> dict:
    """Deletes everything personal about the user in these tables; returns counts for an anonymous audit entry.

    (storage.repository also forgets their reminder sends and self-reports: storage.reminders.forget_user.)

    Removes their letters (and old versions), consents and case memberships (the code-guess
    limit, kept under a one-way hash of the user id, stays),
    clears the consent fields of their LINE user row, blanks what the bot answered them (the
    outbox holds summaries with their data) and their dialog state.
    """
    letters = session.execute(select(Letter).where(Letter.user_id == user_id)).scalars().all()
    numbers = [letter.business_number for letter in letters]
    cases = sorted({letter.case_id for letter in letters})
    submitted = sum(1 for letter in letters if letter.status == SUBMITTED)
    ids = [letter.id for letter in letters]
    if ids:
        session.execute(delete(LetterVersion).where(LetterVersion.letter_id.in_(ids)))
        session.execute(delete(Letter).where(Letter.id.in_(ids)))
    session.execute(delete(Consent).where(Consent.user_id == user_id))
    session.execute(delete(ScreeningRecord).where(ScreeningRecord.user_id == user_id))
    members = session.execute(delete(CaseMember).where(CaseMember.user_id == user_id)).rowcount
    # code_attempts stay: keyed on a one-way hash, they name no one, and the guess limit must survive
    user = session.get(LineUser, user_id)
    if user is not None:
        user.consent_at = None
        user.consent_version = None
        user.role = None
    session.flush()
    refresh_flags(session, numbers)
    if store is not None:
        store.forget(user_id, session)  # the answers sent to them (they hold their data) and their dialog state
    return {"letters": len(ids), "submitted": submitted, "cases": cases, "memberships": members}


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# -- taking access back ------------------------------------------------------------------------------
def members_of_case(session: Session, case_id: int, role: Optional[str] = None) -> list[CaseMember]:
    query = select(CaseMember).where(CaseMember.case_id == case_id).order_by(CaseMember.id)
    if role is not None:
        query = query.where(CaseMember.role == role)
    return list(session.execute(query).scalars())


def members_joined_with(session: Session, case_id: int, code: str) -> list[CaseMember]:
    """Who joined the case with ``code`` (the proposer or owners' code that was just revoked)."""
    return list(session.execute(select(CaseMember).where(CaseMember.case_id == case_id,
                                                         CaseMember.joined_code == code)
                                .order_by(CaseMember.id)).scalars())


def unlink_member(session: Session, case_id: int, user_id: str, role: Optional[str] = None) -> dict:
    """Takes the user's access to the case away: their membership (of ``role``, or every role) ends.

    An owner's letter in the case is withdrawn (it leaves the roster and its counts; the owner can
    still see or delete their own data). What is returned names no one: the roles removed and
    whether a letter was withdrawn, for the audit log.
    """
    query = select(CaseMember).where(CaseMember.case_id == case_id, CaseMember.user_id == user_id)
    if role is not None:
        query = query.where(CaseMember.role == role)
    found = list(session.execute(query).scalars())
    roles = sorted({m.role for m in found})
    for member in found:
        session.delete(member)
    withdrawn = False
    if OWNER in roles:
        letter = letter_of(session, case_id, user_id)
        if letter is not None and letter.status != WITHDRAWN:
            letter.status, letter.withdrawn_at = WITHDRAWN, datetime.now(timezone.utc)
            withdrawn = True
            session.flush()
            refresh_flags(session, [letter.business_number])
    session.flush()
    user = session.get(LineUser, user_id)
    if user is not None and user.role in roles:
        left = {m.role for m, _c in memberships(session, user_id)}
        user.role = OWNER if OWNER in left else (PROPOSER if PROPOSER in left else None)
    return {"roles": roles, "letter_withdrawn": withdrawn}


# -- the end of a program edition (個資法 §11) ---------------------------------------------------------
def purge_edition(session: Session, edition: int, store=None) -> dict:
    """Deletes the personal data gathered for an edition, once its purpose has ended.

    Every letter (and its old versions) and every membership of the edition's cases goes; a
    person with nothing in another edition is forgotten entirely (`delete_user_data`: consents,
    screening, reminders, dialog state and what the bot answered them). The cases themselves
    (organisations, not persons) and the audit log stay. Returns counts only.
    """
    case_ids = list(session.execute(select(Case.id).where(Case.edition == edition)).scalars())
    if not case_ids:
        return {"cases": 0, "people": 0, "forgotten": 0, "letters": 0, "memberships": 0}
    users = set(session.execute(select(CaseMember.user_id).where(CaseMember.case_id.in_(case_ids))).scalars())
    users |= set(session.execute(select(Letter.user_id).where(Letter.case_id.in_(case_ids))).scalars())
    elsewhere = set(session.execute(select(CaseMember.user_id).where(CaseMember.case_id.not_in(case_ids))).scalars())
    elsewhere |= set(session.execute(select(Letter.user_id).where(Letter.case_id.not_in(case_ids))).scalars())
    letter_ids = list(session.execute(select(Letter.id).where(Letter.case_id.in_(case_ids))).scalars())
    numbers = list(session.execute(select(Letter.business_number).where(Letter.id.in_(letter_ids))).scalars()) \
        if letter_ids else []
    if letter_ids:
        session.execute(delete(LetterVersion).where(LetterVersion.letter_id.in_(letter_ids)))
        session.execute(delete(Letter).where(Letter.id.in_(letter_ids)))
    members = session.execute(delete(CaseMember).where(CaseMember.case_id.in_(case_ids))).rowcount
    forgotten = 0
    for user_id in sorted(users - elsewhere):
        delete_user_data(session, user_id, store)
        forgotten += 1
    session.flush()
    refresh_flags(session, numbers)
    return {"cases": len(case_ids), "people": len(users), "forgotten": forgotten, "letters": len(letter_ids),
            "memberships": members}
