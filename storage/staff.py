"""The staff console's tables: accounts, login attempts, imports and the township groups.

- ``staff_accounts``: who may use /staff, with a role (``admin`` changes, ``viewer`` reads) and
  a password hashed with Argon2id (argon2-cffi). No password is ever stored or logged.
- ``staff_login_attempts``: every login try (name, client address, when, whether it worked);
  more than `MAX_FAILED_LOGINS` failures in `LOGIN_WINDOW` for an account or for an address
  refuse further tries until the window has passed.
- ``imports``: each file staff imported (kind, name, SHA-256, rows accepted and refused, the
  checked rows kept between the preview and the confirmation, who and when).
- ``township_groups``: town code → digital-development group (1–5), the table the proposer
  calculator and the roster status read for the township bonus (§柒 備註2).

Migration: storage/migrations/versions/0004_staff.py.
"""
from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import Boolean, DateTime, Integer, String, Text, func, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow

ADMIN, VIEWER = "admin", "viewer"
ROLES = (ADMIN, VIEWER)
MAX_FAILED_LOGINS = 5
LOGIN_WINDOW = timedelta(minutes=15)
NAME_MAX = 64
PASSWORD_MIN = 10


class StaffAccount(Base):
    """A program-office account of the staff console."""

    __tablename__ = "staff_accounts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), unique=True)
    role: Mapped[str] = mapped_column(String(16), default=VIEWER)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_login_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))

    @property
    def can_change(self) -> bool:
        return self.role == ADMIN


class StaffLoginAttempt(Base):
    """One login try: the account name typed, the client address, when, and whether it worked."""

    __tablename__ = "staff_login_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_MAX), index=True)
    ip: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    ok: Mapped[bool] = mapped_column(Boolean, default=False)


class ImportBatch(Base):
    """An import: previewed (rows checked and kept), then confirmed (applied in one transaction)."""

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))  # previous-program / assessments / township-groups
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    status: Mapped[str] = mapped_column(String(16), default="previewed")  # previewed / confirmed / discarded
    total: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    rejected: Mapped[int] = mapped_column(Integer, default=0)
    rows: Mapped[str] = mapped_column(Text, default="[]")  # JSON: the accepted rows, normalised
    problems: Mapped[str] = mapped_column(Text, default="[]")  # JSON: [[line, reason], ...]
    result: Mapped[Optional[str]] = mapped_column(Text)  # JSON: what the confirmation changed
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    confirmed_by: Mapped[Optional[str]] = mapped_column(String(128))
    confirmed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))


class TownshipGroup(Base):
    """A township's digital-development group (國發會 鄉鎮市區數位發展分類), imported by staff."""

    __tablename__ = "township_groups"

    town_code: Mapped[str] = mapped_column(String(8), primary_key=True)
    grp: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# -- passwords ----------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    from argon2 import PasswordHasher

    return PasswordHasher().hash(password)


def check_password(stored: str, password: str) -> bool:
    from argon2 import PasswordHasher
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return PasswordHasher().verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


_DUMMY_HASH: list[str] = []


def _dummy_hash() -> str:
    if not _DUMMY_HASH:
        _DUMMY_HASH.append(hash_password("not-a-password-" + str(time.time())))
    return _DUMMY_HASH[0]


# -- accounts -----------------------------------------------------------------------------------
def add_account(db, name: str, role: str, password: str, actor: str = "staff:cli") -> StaffAccount:
    """Creates an account, or sets a new password and role for an existing one."""
    name = (name or "").strip()
    if not name or len(name) > NAME_MAX:
        raise ValueError(f"the name must have 1 to {NAME_MAX} characters")
    if role not in ROLES:
        raise ValueError(f"the role must be one of {', '.join(ROLES)}")
    if len(password or "") < PASSWORD_MIN:
        raise ValueError(f"the password must have at least {PASSWORD_MIN} characters")
    hashed = hash_password(password)
    with db.session() as s:
        account = s.scalar(select(StaffAccount).where(StaffAccount.name == name))
        created = account is None
        if created:
            account = StaffAccount(name=name, role=role, password_hash=hashed, active=True)
            s.add(account)
        else:
            account.role, account.password_hash, account.active = role, hashed, True
        s.flush()
    db.audit(actor, "staff.account_added" if created else "staff.account_updated", f"staff:{name}", role=role)
    return account


def accounts(db) -> list[StaffAccount]:
    with db.session() as s:
        return list(s.scalars(select(StaffAccount).order_by(StaffAccount.name)))


def account(db, account_id: int) -> Optional[StaffAccount]:
    with db.session() as s:
        found = s.get(StaffAccount, account_id)
        return found if found is not None and found.active else None


def failed_logins(db, name: str, ip: str, now: Optional[datetime] = None) -> int:
    """Failed tries in the window for this account or from this address (whichever is more)."""
    since = (now or datetime.now(timezone.utc)) - LOGIN_WINDOW
    with db.session() as s:
        by_name = s.scalar(select(func.count()).select_from(StaffLoginAttempt).where(
            StaffLoginAttempt.name == name[:NAME_MAX], StaffLoginAttempt.ok.is_(False), StaffLoginAttempt.at > since))
        by_ip = s.scalar(select(func.count()).select_from(StaffLoginAttempt).where(
            StaffLoginAttempt.ip == ip[:64], StaffLoginAttempt.ok.is_(False), StaffLoginAttempt.at > since))
    return max(by_name or 0, by_ip or 0)


def login(db, name: str, password: str, ip: str) -> tuple[Optional[StaffAccount], str]:
    """(account, "ok") on success; (None, "limited" | "wrong") otherwise. Every try is recorded."""
    name = (name or "").strip()[:NAME_MAX]
    ip = (ip or "?")[:64]
    now = datetime.now(timezone.utc)
    if failed_logins(db, name, ip, now) >= MAX_FAILED_LOGINS:
        with db.session() as s:
            s.add(StaffLoginAttempt(name=name, ip=ip, at=now, ok=False))
        return None, "limited"
    with db.session() as s:
        found = s.scalar(select(StaffAccount).where(StaffAccount.name == name, StaffAccount.active.is_(True)))
        # the same work whether the account exists or not, so timing tells nothing
        good = check_password(found.password_hash if found else _dummy_hash(), password or "") and found is not None
        s.add(StaffLoginAttempt(name=name, ip=ip, at=now, ok=good))
        s.execute(StaffLoginAttempt.__table__.delete().where(StaffLoginAttempt.at < now - timedelta(days=30)))
        if good:
            found.last_login_at = now
            if _needs_rehash(found.password_hash):
                found.password_hash = hash_password(password)
    if good:
        db.audit(f"staff:{name}", "staff.login", f"staff:{name}")
        return found, "ok"
    return None, "wrong"


def _needs_rehash(stored: str) -> bool:
    from argon2 import PasswordHasher

    try:
        return PasswordHasher().check_needs_rehash(stored)
    except Exception:
        return False


# -- township groups ------------------------------------------------------------------------------
class TownshipGroups:
    """``lookup(town_code) -> group or None`` over the imported table, cached for a short while.

    The calculator's `TownshipGroup` protocol; an import clears the cache of this process at
    once, other processes see it within `TTL` seconds.
    """

    TTL = 60.0
    _generation = 0  # bumped by every import in this process

    def __init__(self, db):
        self.db = db
        self._table: Optional[dict[str, int]] = None
        self._loaded_at = 0.0
        self._seen_generation = -1
        self._lock = threading.Lock()

    @classmethod
    def changed(cls) -> None:
        cls._generation += 1

    def table(self) -> dict[str, int]:
        with self._lock:
            fresh = (self._table is not None and time.monotonic() - self._loaded_at < self.TTL
                     and self._seen_generation == TownshipGroups._generation)
            if not fresh:
                try:
                    with self.db.session() as s:
                        self._table = dict(s.execute(select(TownshipGroup.town_code, TownshipGroup.grp)).all())
                except Exception:  # the table is not there yet (migration not applied)
                    self._table = {}
                self._loaded_at = time.monotonic()
                self._seen_generation = TownshipGroups._generation
            return self._table

    def __call__(self, town_code: str) -> Optional[int]:
        if not town_code:
            return None
        return self.table().get(str(town_code))


def township_group(db, town_code: str) -> Optional[int]:
    """One lookup straight from the database (no cache)."""
    with db.session() as s:
        return s.scalar(select(TownshipGroup.grp).where(TownshipGroup.town_code == str(town_code)))
