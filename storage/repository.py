"""The dialogs' repository (dialogs.repository.Repository), on the database.

Each method is one `with db.session() as s:` block. Inside the worker, `Database.session()`
joins the transaction of the event being answered, so everything a dialog writes commits with
its new state and its answer, or not at all. The rows handed back are loaded before the block
ends (the sessions do not expire them) and are only read by the dialogs.

storage/ never imports dialogs/: this class matches the protocol by its shape.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable, Optional, Protocol

from sqlalchemy import func, select

from common.records import Member
from storage import letters as store
from storage import reminders
from storage.db import Database


class ConversationStore(Protocol):
    """The part of storage.state the repository uses: the saved dialog state, and forgetting a user."""

    def load_state(self, user_id: str) -> Optional[dict]: ...

    def forget(self, user_id: str, session=None) -> None: ...


class Directory(Protocol):
    """Who is in which case, as the reminders see it (storage.reminders.LettersDirectory by default)."""

    def memberships_of(self, user_id: str) -> list[Member]: ...


@dataclass
class SavedLetter:
    letter: store.Letter
    changed: list[str] = field(default_factory=list)
    previous_programs: list[str] = field(default_factory=list)


class StorageRepository:
    """dialogs.repository.Repository over one `Database` (and the conversation store, for the dialog state)."""

    def __init__(self, db: Database, conversations: Optional[ConversationStore] = None,
                 directory: Optional[Directory] = None,
                 township_groups: Optional[Callable[[str], Optional[int]]] = None):
        self.db = db
        self.conversations = conversations
        self.directory: Directory = directory or reminders.LettersDirectory(db)
        self._township_groups = township_groups

    # -- cases and codes -------------------------------------------------------------------------------
    def case(self, case_id: int) -> Optional[store.Case]:
        with self.db.session() as s:
            return s.get(store.Case, int(case_id))

    def find_case_by_code(self, typed: str) -> tuple[Optional[store.Case], Optional[str]]:
        with self.db.session() as s:
            return store.find_case_by_code(s, typed)

    def recent_code_attempts(self, user_id: str) -> list[datetime]:
        with self.db.session() as s:
            return store.recent_code_attempts(s, user_id)

    def record_code_attempt(self, user_id: str) -> None:
        with self.db.session() as s:
            store.record_code_attempt(s, user_id)

    def add_member(self, case_id: int, user_id: str, role: str) -> bool:
        with self.db.session() as s:
            return store.add_member(s, case_id, user_id, role)

    def join_as_owner(self, case_id: int, user_id: str) -> None:
        with self.db.session() as s:
            store.add_member(s, case_id, user_id, store.OWNER)
            store.ensure_draft(s, case_id, user_id)

    def memberships(self, user_id: str) -> list[tuple[store.CaseMember, store.Case]]:
        with self.db.session() as s:
            return [(member, case) for member, case in store.memberships(s, user_id)]

    def roles_of(self, user_id: str) -> set[str]:
        with self.db.session() as s:
            return store.roles_of(s, user_id)

    def memberships_of(self, user_id: str) -> list[Member]:
        return list(self.directory.memberships_of(user_id))

    # -- letters -----------------------------------------------------------------------------------------
    def letter(self, letter_id: int) -> Optional[store.Letter]:
        with self.db.session() as s:
            return s.get(store.Letter, int(letter_id))

    def letter_of(self, case_id: int, user_id: str) -> Optional[store.Letter]:
        with self.db.session() as s:
            return store.letter_of(s, case_id, user_id)

    def letters_of_user(self, user_id: str) -> list[tuple[store.Letter, store.Case]]:
        with self.db.session() as s:
            return [(letter, case) for letter, case in store.letters_of_user(s, user_id)]

    def letter_versions(self, user_id: str) -> dict[int, int]:
        with self.db.session() as s:
            rows = s.execute(select(store.LetterVersion.letter_id, func.count())
                             .join(store.Letter, store.Letter.id == store.LetterVersion.letter_id)
                             .where(store.Letter.user_id == user_id)
                             .group_by(store.LetterVersion.letter_id)).all()
        return {letter_id: count for letter_id, count in rows}

    def submit_letter(self, case_id: int, user_id: str, columns: dict[str, object], undertakings: str,
                      at: datetime, employees_limit: int) -> SavedLetter:
        with self.db.session() as s:
            store.add_member(s, case_id, user_id, store.OWNER)
            letter = store.ensure_draft(s, case_id, user_id)
            old_number = letter.business_number
            store.snapshot(s, letter)
            changed = _apply(letter, columns, employees_limit)
            letter.undertakings, letter.undertakings_at = undertakings, at
            letter.screening = store.latest_screening(s, user_id) or letter.screening  # 資格檢查 goes with it
            letter.status = store.SUBMITTED
            letter.version = (letter.version or 0) + 1
            letter.submitted_at, letter.withdrawn_at = at, None
            return self._saved(s, letter, old_number, changed)

    def correct_letter(self, letter_id: int, columns: dict[str, object], employees_limit: int) -> SavedLetter:
        with self.db.session() as s:
            letter = s.get(store.Letter, int(letter_id))
            if all(getattr(letter, column) == value for column, value in columns.items()):
                return SavedLetter(letter)  # what the letter already says: no new version
            old_number = letter.business_number
            store.snapshot(s, letter)  # the old version keeps the values before the change
            changed = _apply(letter, columns, employees_limit)
            letter.version += 1
            return self._saved(s, letter, old_number, changed)

    @staticmethod
    def _saved(s, letter: store.Letter, old_number: Optional[str], changed: list[str]) -> SavedLetter:
        s.flush()
        store.refresh_flags(s, [old_number, letter.business_number])
        programs = store.in_previous_programs(s, letter.business_number) if letter.business_number else []
        s.flush()
        s.refresh(letter)
        return SavedLetter(letter, changed, programs)

    def withdraw_letter(self, letter_id: int, at: datetime) -> None:
        with self.db.session() as s:
            letter = s.get(store.Letter, int(letter_id))
            letter.status, letter.withdrawn_at = store.WITHDRAWN, at
            s.flush()
            store.refresh_flags(s, [letter.business_number])

    def save_screening(self, user_id: str, record: dict[str, object]) -> None:
        with self.db.session() as s:
            store.save_screening(s, user_id, record)

    def latest_screening(self, user_id: str) -> Optional[str]:
        with self.db.session() as s:
            return store.latest_screening(s, user_id)

    # -- consent and the owner's rights -------------------------------------------------------------------
    def has_consent(self, user_id: str, notice_version: str) -> bool:
        with self.db.session() as s:
            return store.has_consent(s, user_id, notice_version)

    def record_consent(self, user_id: str, notice_version: str, agreed: bool) -> datetime:
        with self.db.session() as s:
            return store.record_consent(s, user_id, notice_version, agreed).at

    def consents(self, user_id: str) -> list[store.Consent]:
        with self.db.session() as s:
            return list(s.scalars(select(store.Consent).where(store.Consent.user_id == user_id)
                                  .order_by(store.Consent.at)))

    def user_locale(self, user_id: str) -> Optional[str]:
        with self.db.session() as s:
            user = s.get(store.LineUser, user_id)
            return user.locale if user is not None else None

    def delete_user_data(self, user_id: str) -> dict:
        with self.db.session() as s:
            counts = store.delete_user_data(s, user_id, store=self.conversations)
            counts.update(reminders.forget_user(s, user_id))
        return counts

    # -- rosters -------------------------------------------------------------------------------------------
    def owner_rows(self, case_id: int) -> list[tuple[str, Optional[store.Letter]]]:
        with self.db.session() as s:
            rows = s.execute(select(store.CaseMember.user_id, store.Letter)
                             .outerjoin(store.Letter, (store.Letter.case_id == store.CaseMember.case_id)
                                        & (store.Letter.user_id == store.CaseMember.user_id))
                             .where(store.CaseMember.case_id == case_id, store.CaseMember.role == store.OWNER)
                             .order_by(store.CaseMember.id)).all()
        return [(user_id, letter) for user_id, letter in rows]

    def tests_of_case(self, case_id: int) -> list[reminders.EnterpriseTests]:
        return reminders.test_status_for_case(self.db, case_id)

    def dialog_state(self, user_id: str) -> Optional[dict]:
        if self.conversations is None:
            return None
        return self.conversations.load_state(user_id)

    def township_group(self, town_code: str) -> Optional[int]:
        return self._township_groups(town_code) if self._township_groups is not None else None

    # -- reminders -----------------------------------------------------------------------------------------
    def set_reminders_paused(self, user_id: str, paused: bool) -> None:
        reminders.set_reminders_paused(self.db, user_id, paused)

    def reminders_paused(self, user_id: str) -> bool:
        return reminders.reminders_paused(self.db, user_id)

    def self_reports(self, user_id: str) -> list[reminders.CompletionReport]:
        with self.db.session() as s:
            return list(s.scalars(select(reminders.CompletionReport)
                                  .where(reminders.CompletionReport.user_id == user_id)))

    def staff_events(self) -> list[reminders.ReminderEvent]:
        return reminders.staff_events(self.db)

    def test_state(self, user_id: str, tax_id: Optional[str], kind: str) -> str:
        states = reminders.test_states(self.db, [(user_id, tax_id)])[user_id]
        return (states.pre_test if kind == "pre_test" else states.post_test).state

    def record_self_report(self, user_id: str, kind: str, tax_id: Optional[str], case_id: Optional[object]) -> bool:
        return reminders.record_self_report(self.db, user_id, kind, tax_id=tax_id, case_id=case_id)

    # -- audit ---------------------------------------------------------------------------------------------
    def audit(self, actor: str, action: str, subject: Optional[str] = None, **detail) -> None:
        self.db.audit(actor, action, subject, **detail)


def _apply(letter: store.Letter, columns: dict[str, object], employees_limit: int) -> list[str]:
    """Writes the columns onto the letter; returns the names of those that changed. The over-9 and
    other-program flags follow the letter's values."""
    changed = []
    for column, value in columns.items():
        if getattr(letter, column) != value:
            setattr(letter, column, value)
            changed.append(column)
    letter.flag_over_nine = (letter.employees or 0) > employees_limit
    letter.flag_conflict = bool(letter.other_programs)
    return changed
