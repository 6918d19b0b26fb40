"""The vocabulary of cases and letters: roles, statuses, the letter's fields, and invite codes.

A case has two codes: the proposer's (``P-…``) links a proposer contact's LINE account to it,
the owners' (``J-…``) lets enterprise owners join it. storage.letters keeps them; the dialogs
read what people type with `canonical_code`.
"""
from __future__ import annotations

import hmac
import re
import secrets
from typing import Optional

# -- codes ------------------------------------------------------------------------------------
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # 32 symbols: no 0/O, no 1/I
CODE_LENGTH = 10  # 10 symbols × 5 bits = 50 bits
PROPOSER_PREFIX, OWNER_PREFIX = "P", "J"
PROPOSER, OWNER = "proposer", "owner"
ROLE_OF_PREFIX = {PROPOSER_PREFIX: PROPOSER, OWNER_PREFIX: OWNER}
CODE_ATTEMPTS_PER_HOUR = 10

POPULARIZATION, INCLUSION = "popularization", "inclusion"
CASE_TYPES = (POPULARIZATION, INCLUSION)

DRAFT, SUBMITTED, WITHDRAWN = "draft", "submitted", "withdrawn"
COMPANY_REGISTERED, TAX_REGISTERED = 1, 2  # 附件一 柒.1 企業型態: 1 公司/商業登記, 2 稅籍登記

# The letter's own fields (the owner's answers), in the order of the form.
PERSONAL_FIELDS = ("contact_name", "mobile", "phone", "phone_ext", "email", "representative", "address")
LETTER_FIELDS = ("company_name", "business_number", "company_type", "employees", "county_code", "town_code",
                 "products", "other_programs", "other_program_names") + PERSONAL_FIELDS


def new_code(prefix: str) -> str:
    """A code such as ``J-7KQ4M-XR2PT``: 50 random bits from an alphabet without 0/O/1/I."""
    symbols = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return f"{prefix}-{symbols[:5]}-{symbols[5:]}"


def canonical_code(text: str) -> Optional[str]:
    """What someone typed ("j 7kq4m xr2pt", "加入 J-7KQ4M-XR2PT") as a stored code, or None."""
    text = re.sub(r"^\s*(?:加入|join)\s*", "", text or "", flags=re.IGNORECASE)
    compact = re.sub(r"[\s\-_‐‑‒–—―−]+", "", text).upper()
    if len(compact) != CODE_LENGTH + 1 or compact[0] not in ROLE_OF_PREFIX:
        return None
    body = compact[1:]
    if any(ch not in CODE_ALPHABET for ch in body):
        return None
    return f"{compact[0]}-{body[:5]}-{body[5:]}"


def same_code(a: str, b: str) -> bool:
    """Constant-time comparison of two codes."""
    return hmac.compare_digest((a or "").encode(), (b or "").encode())
