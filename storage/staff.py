"""The staff console's tables: accounts, login attempts, imports and the township groups.

- ``staff_accounts``: who may use /staff, with a role (``admin`` changes, ``viewer`` reads) and
  a password hashed with Argon2id (argon2-cffi). No password is ever stored or logged.
- ``staff_login_attempts``: every login try (name, client address, when, whether it worked).
  Tries are throttled by (account, address) and by address alone, never by account alone: after
  `MAX_FAILED_LOGINS` failures of one account from one address (or `MAX_FAILED_PER_ADDRESS` from
  one address, whatever the accounts) that address waits, 1 minute, then twice as long after
  each further failure, up to `MAX_BACKOFF`. Someone guessing from one address never locks the
  account for its owner at another address.
- ``staff_sessions``: the signed-in browsers (server-side sessions). The cookie holds a random
  token; the row, keyed on its SHA-256, ends after `idle` without a request or `lifetime` after
  sign-in, and at once on logout, a password or role change, or an admin's "sign out everywhere".
- ``imports``: each file staff imported (kind, name, SHA-256, rows accepted and refused, the
  checked rows kept between the preview and the confirmation, who and when).
- ``township_groups``: town code → digital-development group (1–5), the table the proposer
  calculator and the roster status read for the township bonus (§柒 備註2).

Migration: storage/migrations/versions/0004_staff.py.
"""
from __future__ import annotations

import hashlib
import secrets
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import Boolean, DateTime, Integer, String, Text, delete, func, select
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, utcnow

ADMIN, VIEWER = "admin", "viewer"
ROLES = (ADMIN, VIEWER)
MAX_FAILED_LOGINS = 5  # of one account from one address
MAX_FAILED_PER_ADDRESS = 20  # from one address, whatever the accounts
LOGIN_WINDOW = timedelta(hours=1)  # failures older than this are forgotten
FIRST_BACKOFF = timedelta(minutes=1)
MAX_BACKOFF = timedelta(minutes=30)
SESSION_TOUCH = timedelta(seconds=60)  # last_seen_at is written at most this often
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


class StaffSession(Base):
    """A signed-in staff browser: the cookie's token (hashed), the account, when, from where."""

    __tablename__ = "staff_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # SHA-256 of the cookie's token
    staff_id: Mapped[int] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    address: Mapped[str] = mapped_column(String(64), default="")
    agent: Mapped[str] = mapped_column(String(200), default="")


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
        ended = 0 if created else end_sessions_of(s, account.id)  # a new password or role: sign in again
    db.audit(actor, "staff.account_added" if created else "staff.account_updated", f"staff:{name}", role=role,
             sessions_ended=ended)
    return account


def accounts(db) -> list[StaffAccount]:
    with db.session() as s:
        return list(s.scalars(select(StaffAccount).order_by(StaffAccount.name)))


def account(db, account_id: int) -> Optional[StaffAccount]:
    with db.session() as s:
        found = s.get(StaffAccount, account_id)
        return found if found is not None and found.active else None


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _wait(failures: list[datetime], allowed: int, now: datetime) -> timedelta:
    """How long to wait after ``failures`` (newest last) when ``allowed`` are free: doubling backoff."""
    if len(failures) < allowed:
        return timedelta(0)
    backoff = min(FIRST_BACKOFF * (2 ** (len(failures) - allowed)), MAX_BACKOFF)
    return max(timedelta(0), _aware(failures[-1]) + backoff - now)


def login_wait(db, name: str, ip: str, now: Optional[datetime] = None) -> timedelta:
    """How long this address must wait before trying this account again (zero: it may try now)."""
    now = now or datetime.now(timezone.utc)
    since = now - LOGIN_WINDOW
    with db.session() as s:
        base = select(StaffLoginAttempt.at).where(StaffLoginAttempt.ip == ip[:64], StaffLoginAttempt.ok.is_(False),
                                                   StaffLoginAttempt.at > since).order_by(StaffLoginAttempt.at)
        by_address = list(s.scalars(base))
        by_pair = list(s.scalars(base.where(StaffLoginAttempt.name == name[:NAME_MAX])))
        last_ok = s.scalar(select(func.max(StaffLoginAttempt.at)).where(
            StaffLoginAttempt.ip == ip[:64], StaffLoginAttempt.name == name[:NAME_MAX], StaffLoginAttempt.ok.is_(True)))
    if last_ok is not None:  # a success from this address forgives this account's earlier failures
        by_pair = [at for at in by_pair if _aware(at) > _aware(last_ok)]
    return max(_wait(by_pair, MAX_FAILED_LOGINS, now), _wait(by_address, MAX_FAILED_PER_ADDRESS, now))


def login(db, name: str, password: str, ip: str) -> tuple[Optional[StaffAccount], str, timedelta]:
    """(account, "ok", 0) on success; (None, "limited" | "wrong", wait) otherwise. Every checked try is recorded.

    A try while the address must wait is refused without checking the password (and not recorded,
    so waiting is enough).
    """
    name = (name or "").strip()[:NAME_MAX]
    ip = (ip or "?")[:64]
    now = datetime.now(timezone.utc)
    wait = login_wait(db, name, ip, now)
    if wait > timedelta(0):
        return None, "limited", wait
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
        return found, "ok", timedelta(0)
    return None, "wrong", login_wait(db, name, ip)


def _needs_rehash(stored: str) -> bool:
    from argon2 import PasswordHasher

    try:
        return PasswordHasher().check_needs_rehash(stored)
    except Exception:
        return False


# -- server-side sessions ----------------------------------------------------------------------
def _session_id(token: str) -> str:
    return hashlib.sha256(("gonghao:staff-session:" + (token or "")).encode()).hexdigest()


def start_session(db, account: StaffAccount, address: str, agent: str) -> str:
    """A new session for the account; returns the token for the cookie (only its hash is stored)."""
    token = secrets.token_urlsafe(32)
    now = datetime.now(timezone.utc)
    with db.session() as s:
        s.add(StaffSession(id=_session_id(token), staff_id=account.id, created_at=now, last_seen_at=now,
                           address=(address or "")[:64], agent=(agent or "")[:200]))
    return token


def session_account(db, token: str, idle: timedelta, lifetime: timedelta,
                    now: Optional[datetime] = None) -> tuple[Optional[StaffAccount], Optional[str]]:
    """(account, session id) of a live session; (None, None) when it ended, expired or never was.

    An expired session is deleted; a live one is marked seen (at most once a minute).
    """
    if not token or not isinstance(token, str):
        return None, None
    now = now or datetime.now(timezone.utc)
    key = _session_id(token)
    with db.session() as s:
        row = s.get(StaffSession, key)
        if row is None:
            return None, None
        if _aware(row.last_seen_at) + idle < now or _aware(row.created_at) + lifetime < now:
            s.delete(row)
            return None, None
        found = s.get(StaffAccount, row.staff_id)
        if found is None or not found.active:
            s.delete(row)
            return None, None
        if now - _aware(row.last_seen_at) > SESSION_TOUCH:
            row.last_seen_at = now
    return found, key


def end_session(db, token: str) -> None:
    with db.session() as s:
        s.execute(delete(StaffSession).where(StaffSession.id == _session_id(token)))


def end_session_by_id(db, session_id: str, staff_id: Optional[int] = None) -> int:
    """Ends one session by its id (as the console lists it); with ``staff_id`` only if it is theirs."""
    with db.session() as s:
        query = delete(StaffSession).where(StaffSession.id == session_id)
        if staff_id is not None:
            query = query.where(StaffSession.staff_id == staff_id)
        return s.execute(query).rowcount


def end_sessions_of(session, staff_id: int) -> int:
    """Ends every session of an account (inside the caller's transaction); returns how many."""
    return session.execute(delete(StaffSession).where(StaffSession.staff_id == staff_id)).rowcount


def sign_out_everywhere(db, staff_id: int) -> int:
    with db.session() as s:
        return end_sessions_of(s, staff_id)


def active_sessions(db, idle: timedelta, lifetime: timedelta, staff_id: Optional[int] = None) -> list[tuple]:
    """(session, account) of every live session, most recent first; expired ones are removed on the way."""
    now = datetime.now(timezone.utc)
    with db.session() as s:
        s.execute(delete(StaffSession).where((StaffSession.last_seen_at < now - idle)
                                             | (StaffSession.created_at < now - lifetime)))
        query = (select(StaffSession, StaffAccount).join(StaffAccount, StaffAccount.id == StaffSession.staff_id)
                 .order_by(StaffSession.last_seen_at.desc()))
        if staff_id is not None:
            query = query.where(StaffSession.staff_id == staff_id)
        return [tuple(row) for row in s.execute(query).all()]


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
