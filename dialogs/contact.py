"""The program office's contact (§玖 計畫聯絡方式), from the edition in force."""
from __future__ import annotations

from typing import Optional

from dialogs.edition import Edition, cite, contact_lines, edition_for
from dialogs.i18n import _
from dialogs.messages import Choice

CONTACT = "contact"  # what the "聯絡窗口" button sends: the whole contact block


def contact_text() -> str:
    """The contact as one message, with its citation."""
    edition, _covers = edition_for()
    return "\n".join(contact_lines(edition))


def contact_line(edition: Optional[Edition] = None) -> str:
    """The contact in one line (the first phone and the e-mail), for the end of a longer answer."""
    edition = edition or edition_for()[0]
    c = edition.contact
    phone = c.phones[0].text() if c.phones else ""
    return _("Program office: {phone}, {email}").format(phone=phone, email=c.email) + cite(c.citation)


def contact_button() -> Choice:
    return Choice(_("Contact"), CONTACT)
