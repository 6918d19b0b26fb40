"""What the dialogs ask of storage: a typed repository, declared here and implemented by storage/.

The dialogs never open a database session: each `Context` carries a `Repository`
(storage.repository.StorageRepository in the bot, a fake in a test). Every method is one
question or one change in the program's words; in the bot each of them joins the transaction
of the event being answered, so a dialog's writes, its new state and its answer commit
together or not at all.

The records are read-only views (a case, a letter, a consent…): storage hands back its own
rows, which have these attributes; a dialog reads them and never changes them — a change is a
method here.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional, Protocol, Sequence

from common.records import Member

Detail = str | int | float | bool | None | Sequence[object]


# -- records -----------------------------------------------------------------------------------------
class CaseRecord(Protocol):
    """A proposer's case (提案案件) and its part of 附件二 二."""

    id: int
    edition: int
    proposer_name: str
    plan_name: str
    case_type: str
    theme: Optional[str]
    vendor_name: str
    solution_name: str
    solution_content: str
    sla: str
    period: str
    other_content: str
    integrated_service: str  # 共融案: 整合性服務項目與內容 (附件二 二)
    planned_count: int
    owner_code: str


class LetterRecord(Protocol):
    """One enterprise's letter of intent (附件二 一) and roster row (附件一 柒.1)."""

    id: int
    case_id: int
    user_id: str
    status: str
    version: int
    company_name: Optional[str]
    business_number: Optional[str]
    company_type: Optional[int]
    employees: Optional[int]
    county_code: Optional[str]
    town_code: Optional[str]
    products: Optional[str]
    other_programs: Optional[bool]
    other_program_names: Optional[str]
    contact_name: Optional[str]
    mobile: Optional[str]
    phone: Optional[str]
    phone_ext: Optional[str]
    email: Optional[str]
    representative: Optional[str]
    address: Optional[str]
    flag_over_nine: bool
    flag_conflict: bool
    flag_previous_program: bool
    flag_duplicate: bool
    screening: Optional[str]
    submitted_at: Optional[datetime]

    @property
    def flags(self) -> list[str]: ...


class MembershipRecord(Protocol):
    """A LINE user's role in a case."""

    id: int
    case_id: int
    role: str
    joined_at: datetime


class ConsentRecord(Protocol):
    """One answer to the personal-data notice."""

    notice_version: str
    agreed: bool
    at: datetime


class TestRecord(Protocol):
    """One pre- or post-test of one enterprise: not_done / self_reported / confirmed."""

    state: str


class SelfReportRecord(Protocol):
    """A test the owner said is done (or staff confirmed from an import)."""

    kind: str  # pre_test / post_test / tool_import
    self_reported_at: Optional[datetime]
    confirmed_at: Optional[datetime]


class EnterpriseTestsRecord(Protocol):
    """An owner's pre-test and post-test."""

    user_id: str
    pre_test: TestRecord
    post_test: TestRecord


class StaffEventRecord(Protocol):
    """A date staff added to the reminder calendar (a test window, a checkpoint)."""

    key: str
    kind: str
    title_zh: str
    title_en: Optional[str]
    starts_at: datetime
    ends_at: Optional[datetime]
    all_day: bool
    audience: str
    lead_times: Optional[str]
    link: Optional[str]
    note_zh: Optional[str]
    note_en: Optional[str]
    citation: Optional[str]
    edition: Optional[int]


class SavedLetter(Protocol):
    """A letter just sent or corrected: the letter, the columns that changed, and the previous
    programs its business number is listed in."""

    letter: LetterRecord
    changed: list[str]
    previous_programs: list[str]


# -- what the dialogs ask ------------------------------------------------------------------------------
class Cases(Protocol):
    """Cases, their invite codes and who is in them."""

    def case(self, case_id: int) -> Optional[CaseRecord]: ...

    def find_case_by_code(self, typed: str) -> tuple[Optional[CaseRecord], Optional[str]]:
        """(case, role) for a valid, unrevoked code; (None, None) otherwise (compared in constant time)."""

    def recent_code_attempts(self, user_id: str) -> list[datetime]:
        """When the user sent codes that did not work, in the last hour, oldest first."""

    def record_code_attempt(self, user_id: str) -> None: ...

    def add_member(self, case_id: int, user_id: str, role: str) -> bool:
        """Links the user to the case in ``role``; False when already linked."""

    def join_as_owner(self, case_id: int, user_id: str) -> None:
        """The owner is in the case and has a draft letter (no personal data yet)."""

    def memberships(self, user_id: str) -> list[tuple[MembershipRecord, CaseRecord]]: ...

    def roles_of(self, user_id: str) -> set[str]:
        """The roles the user has in cases (owner, proposer), empty when in none."""

    def memberships_of(self, user_id: str) -> list[Member]:
        """The user's places in cases as the reminders see them (with the letter's 統一編號)."""


class Letters(Protocol):
    """Letters of intent and the screening answers that go with them."""

    def letter(self, letter_id: int) -> Optional[LetterRecord]: ...

    def letter_of(self, case_id: int, user_id: str) -> Optional[LetterRecord]: ...

    def letters_of_user(self, user_id: str) -> list[tuple[LetterRecord, CaseRecord]]: ...

    def letter_versions(self, user_id: str) -> dict[int, int]:
        """{letter id: how many earlier versions are kept} for the user's letters."""

    def submit_letter(self, case_id: int, user_id: str, columns: dict[str, object], undertakings: str,
                      at: datetime, employees_limit: int) -> SavedLetter:
        """Writes the answers onto the user's letter as a new submitted version (the old one is kept)."""

    def correct_letter(self, letter_id: int, columns: dict[str, object], employees_limit: int) -> SavedLetter:
        """Writes a correction as a new version; ``changed`` is empty (and nothing is written) when nothing changed."""

    def withdraw_letter(self, letter_id: int, at: datetime) -> None: ...

    def save_screening(self, user_id: str, record: dict[str, object]) -> None:
        """Keeps the owner's latest eligibility screening; a letter sent later carries it."""

    def latest_screening(self, user_id: str) -> Optional[str]:
        """The owner's latest eligibility screening as stored (JSON), or None."""


class Consents(Protocol):
    """The personal-data notice (個資法 §8) and the owner's rights (§3)."""

    def has_consent(self, user_id: str, notice_version: str) -> bool: ...

    def record_consent(self, user_id: str, notice_version: str, agreed: bool) -> datetime:
        """Records the answer; returns when it was given."""

    def consents(self, user_id: str) -> list[ConsentRecord]: ...

    def user_locale(self, user_id: str) -> Optional[str]: ...

    def delete_user_data(self, user_id: str) -> dict[str, Detail]:
        """Deletes everything personal about the user (also their dialog state and what the bot answered
        them); returns counts for an anonymous audit entry."""


class Rosters(Protocol):
    """What a proposer's roster status reads."""

    def owner_rows(self, case_id: int) -> list[tuple[str, Optional[LetterRecord]]]:
        """(user id, letter or None) of every owner who joined the case, in the order they joined."""

    def tests_of_case(self, case_id: int) -> list[EnterpriseTestsRecord]: ...

    def dialog_state(self, user_id: str) -> Optional[dict[str, object]]:
        """The user's saved dialog state (the roster shows "in progress" while they answer)."""

    def township_group(self, town_code: str) -> Optional[int]:
        """The digital-development group (1–5) staff imported for a township, or None."""


class Reminders(Protocol):
    """Opting out of reminders and the owners' own pre/post-test reports."""

    def set_reminders_paused(self, user_id: str, paused: bool) -> None: ...

    def reminders_paused(self, user_id: str) -> bool: ...

    def self_reports(self, user_id: str) -> list[SelfReportRecord]:
        """The tests the user reported done (我的資料 lists them)."""

    def staff_events(self) -> list[StaffEventRecord]: ...

    def test_state(self, user_id: str, tax_id: Optional[str], kind: str) -> str:
        """not_done / self_reported / confirmed, for ``kind`` pre_test or post_test."""

    def record_self_report(self, user_id: str, kind: str, tax_id: Optional[str], case_id: Optional[object]) -> bool:
        """The owner says the test is done; False when it was already recorded or confirmed."""


class AuditLog(Protocol):
    def audit(self, actor: str, action: str, subject: Optional[str] = None, **detail: Detail) -> None:
        """One audit-log entry; never anything that identifies a person in ``detail``."""


class Repository(Cases, Letters, Consents, Rosters, Reminders, AuditLog, Protocol):
    """Everything the dialogs ask of storage."""


def unknown_township_group(town_code: str) -> Optional[int]:
    """The lookup when no township groups were imported: nothing is known."""
    return None


__all__ = ["AuditLog", "CaseRecord", "Cases", "ConsentRecord", "Consents", "EnterpriseTestsRecord", "Letters",
           "LetterRecord", "Member", "MembershipRecord", "Reminders", "Repository", "Rosters", "SavedLetter",
           "StaffEventRecord", "TestRecord", "unknown_township_group"]
