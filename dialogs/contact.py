"""The program office's contact (§玖 計畫聯絡方式), from the edition in force."""
from __future__ import annotations

from dialogs.edition import contact_lines, edition_for


def contact_text() -> str:
    """The contact as one message, with its citation."""
    edition, _covers = edition_for()
    return "\n".join(contact_lines(edition))
