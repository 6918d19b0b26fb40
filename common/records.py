"""Records that storage reads and the dialogs reason about: who is in which case, and the case's facts."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Member:
    """A LINE user's place in a case: an enterprise owner or a proposer contact."""

    user_id: str
    case_id: object
    role: str  # "owner" / "proposer"
    tax_id: Optional[str] = None  # the enterprise's 統一編號, from its letter (owners)
    letter_status: Optional[str] = None  # None (no letter yet) / draft / submitted / withdrawn
    edition: Optional[int] = None


@dataclass(frozen=True)
class CaseFacts:
    """What the reminders need to know about a case."""

    case_id: object
    planned: Optional[int] = None  # enterprises planned; None: count the owners who joined
    letters_submitted: int = 0
    edition: Optional[int] = None
