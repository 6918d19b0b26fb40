"""SQLAlchemy models of the foundation: LINE users, accepted events, deliveries, state, audit.

The other modules' tables (storage.letters, .reminders, .staff) are registered on `Base.metadata` by
storage/__init__.py, which imports them after this module.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Base(DeclarativeBase):
    pass


class LineUser(Base):
    """A LINE user who talked to the account: locale, role and consent, no profile name."""

    __tablename__ = "line_users"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    language: Mapped[Optional[str]] = mapped_column(String(16))  # from the LINE profile
    locale: Mapped[str] = mapped_column(String(8), default="zh_TW")
    role: Mapped[Optional[str]] = mapped_column(String(16))  # owner / proposer
    followed: Mapped[bool] = mapped_column(Boolean, default=True)
    blocked_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    consent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    consent_version: Mapped[Optional[str]] = mapped_column(String(32))
    reminders_paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AcceptedEvent(Base):
    """A webhook event we acknowledged; on the embedded default it is also the queue."""

    __tablename__ = "accepted_events"

    webhook_event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[Optional[str]] = mapped_column(String(64), index=True)
    event_type: Mapped[str] = mapped_column(String(32))
    event_timestamp: Mapped[int] = mapped_column(BigInteger)
    is_redelivery: Mapped[bool] = mapped_column(Boolean, default=False)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="queued", index=True)  # queued / done / dead
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    user_key: Mapped[str] = mapped_column(String(64), default="")  # the user, or the event id when none
    ripe_at: Mapped[int] = mapped_column(BigInteger, default=0)  # ms: taken no earlier (timestamp order)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed attempts (outages do not count)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)  # ms
    reason: Mapped[Optional[str]] = mapped_column(String(200))  # why it was dead-lettered (no personal data)
    reserved_by: Mapped[Optional[str]] = mapped_column(String(64))  # the worker that will take it (spreads work)
    reserved_until: Mapped[int] = mapped_column(BigInteger, default=0)  # ms; then anyone may


class Delivery(Base):
    """What the bot answered to one event, kept until it is sent (the outbox)."""

    __tablename__ = "deliveries"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[Optional[str]] = mapped_column(String(64))
    reply_token: Mapped[Optional[str]] = mapped_column(String(255))
    event_timestamp: Mapped[int] = mapped_column(BigInteger, default=0)
    messages: Mapped[str] = mapped_column(Text)
    # sending (claimed) / pending (to try again) / sent / unsure (a reply that may have reached LINE,
    # its token now stale: never pushed) / failed (LINE refused) / held (the month's quota is used up)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    method: Mapped[Optional[str]] = mapped_column(String(8))
    request_id: Mapped[Optional[str]] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[Optional[datetime]] = mapped_column(DateTime(timezone=True))
    claim: Mapped[Optional[str]] = mapped_column(String(32))  # the sender that holds it (a fencing token)
    claimed_until: Mapped[int] = mapped_column(BigInteger, default=0)  # ms
    phase: Mapped[str] = mapped_column(String(8), default="reply")  # reply / push
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[int] = mapped_column(BigInteger, default=0)  # ms
    reason: Mapped[Optional[str]] = mapped_column(String(200))


class DialogState(Base):
    """A user's conversation state, versioned, written in the same transaction as the event it answers."""

    __tablename__ = "dialog_states"

    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    state: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    version: Mapped[int] = mapped_column(Integer, default=0)  # +1 on every write: fences a stale worker


class AuditEntry(Base):
    """Who did what: staff exports, data changes, deletions (no personal data in detail)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[Optional[str]] = mapped_column(String(128))
    detail: Mapped[Optional[str]] = mapped_column(Text)
