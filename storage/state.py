"""Per-user dialog state, in the database, versioned.

The state is read and written inside the event's unit of work (`Database.unit_of_work`),
together with everything else the event changes. Each write raises the version by one
and only succeeds on the version that was read: a worker that lost its turn (stopped
past its lease while another took the user's next event) cannot commit an old state.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Optional

from sqlalchemy import DateTime, bindparam, delete, insert, select, text as sql, update
from sqlalchemy.orm import Session

from storage.db import Database, Recordset, execute_rows
from storage.models import Delivery, DialogState

STATE_TTL = 30 * 24 * 3600  # a letter left half-way is resumed for a month
_LOAD = sql("SELECT state, expires_at, version FROM dialog_states WHERE user_id = :user").columns(
    DialogState.state, DialogState.expires_at, DialogState.version)
_LOAD_MANY = sql("SELECT user_id, state, expires_at, version FROM dialog_states WHERE user_id = ANY(:users)").columns(
    DialogState.user_id, DialogState.state, DialogState.expires_at, DialogState.version)
_SAVE = sql("UPDATE dialog_states SET state = :state, expires_at = :expires, version = version + 1 "
            "WHERE user_id = :user AND version = :version").bindparams(
    bindparam("expires", type_=DateTime(timezone=True)))
_CREATE = sql("INSERT INTO dialog_states (user_id, state, expires_at, version) VALUES (:user, :state, :expires, 0)"
              ).bindparams(bindparam("expires", type_=DateTime(timezone=True)))
# PostgreSQL: a batch's states in one statement each (storage.db.Recordset)
_STATES = Recordset(("user", "varchar"), ("state", "text"), ("expires", "timestamptz"), ("version", "integer"))
_SAVE_PG = ("UPDATE dialog_states d SET state = x.state, expires_at = x.expires, version = d.version + 1 "
            f'FROM {_STATES.rows} WHERE d.user_id = x."user" AND d.version = x.version')
_CREATE_PG = ('INSERT INTO dialog_states (user_id, state, expires_at, version) '
              f'SELECT x."user", x.state, x.expires, 0 FROM {_STATES.rows}')


class StaleState(Exception):
    """The state changed since it was read: another worker has answered this user since."""


class ConversationStore:
    """Dialog states in the ``dialog_states`` table."""

    def __init__(self, db: Database):
        self.db = db

    def load_state(self, user_id: str) -> Optional[dict]:
        """The user's state (or None), in its own read (or inside the current unit of work)."""
        with self.db.session() as s:
            return self.load(s, user_id)[0]

    def load(self, session: Session, user_id: str) -> tuple[Optional[dict], int]:
        """(state or None, version) for a write that follows in the same transaction."""
        row = session.execute(_LOAD, {"user": user_id}).first()
        if row is None:
            return None, -1
        state = json.loads(row.state) if _aware(row.expires_at) >= datetime.now(timezone.utc) else None
        return state, row.version

    def load_many(self, session: Session, user_ids: list[str]) -> dict[str, tuple[Optional[dict], int]]:
        """{user: (state or None, version)} for several users in one read (PostgreSQL; a worker's batch)."""
        found = {user_id: (None, -1) for user_id in user_ids}
        now = datetime.now(timezone.utc)
        for row in session.execute(_LOAD_MANY, {"users": list(user_ids)}):
            found[row.user_id] = (json.loads(row.state) if _aware(row.expires_at) >= now else None, row.version)
        return found

    def save_many(self, session: Session, changes: list[tuple[str, Optional[dict], int]],
                  ttl: int = STATE_TTL) -> None:
        """Writes several users' states read at their versions (see `save`) in two statements at most.

        StaleState when any of them moved since (or was deleted meanwhile): the caller then runs
        the batch's events one by one, where `save` tells which.
        """
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl)
        new, old = [], []
        for user_id, state, version in changes:
            row = {"user": user_id, "state": json.dumps(state, ensure_ascii=False), "expires": expires}
            if version < 0:
                new.append(row)
            else:
                old.append(dict(row, version=version))
        if self.db.postgres:
            if old and execute_rows(session, _SAVE_PG, _STATES, old) != len(old):
                raise StaleState("a batch's state")
            if new:
                execute_rows(session, _CREATE_PG, _STATES, [dict(row, version=0) for row in new])
            return
        if old and session.execute(_SAVE, old).rowcount != len(old):
            raise StaleState("a batch's state")
        if new:
            session.execute(_CREATE, new)

    def save(self, session: Session, user_id: str, state: Optional[dict], version: int,
             ttl: int = STATE_TTL) -> None:
        """Writes the state read at ``version`` (-1: there was none); StaleState if it moved since."""
        expires = datetime.now(timezone.utc) + timedelta(seconds=ttl)
        text = json.dumps(state if state is not None else None, ensure_ascii=False)
        if version < 0:
            session.execute(insert(DialogState).values(user_id=user_id, state=text, expires_at=expires, version=0))
            return
        done = session.execute(_SAVE, {"user": user_id, "version": version, "state": text, "expires": expires})
        if done.rowcount == 1:
            return
        if session.execute(select(DialogState.version).where(DialogState.user_id == user_id)).first() is not None:
            raise StaleState(user_id)
        # deleted in this very transaction (the owner deleted their data): start afresh
        session.execute(insert(DialogState).values(user_id=user_id, state=text, expires_at=expires, version=0))

    def save_state(self, user_id: str, state: Optional[dict], ttl: int = STATE_TTL) -> None:
        """Writes a state outside the event path (tests, staff tools)."""
        with self.db.session() as s:
            _, version = self.load(s, user_id)
            self.save(s, user_id, state, version, ttl)

    def forget(self, user_id: str, session: Optional[Session] = None) -> None:
        """Drops the user's state and blanks the answers kept for them (they hold their data)."""
        if session is None:
            with self.db.session() as s:
                return self.forget(user_id, s)
        session.execute(update(Delivery).where(Delivery.user_id == user_id).values(messages="[]", reply_token=None))
        session.execute(delete(DialogState).where(DialogState.user_id == user_id))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
