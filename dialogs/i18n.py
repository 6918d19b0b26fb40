"""The gettext names the dialogs and everything above them import.

The catalogs are read in common.i18n (storage's import checks speak too); this module is the
dialogs' own spelling of it, so a dialog never reaches past its layer for a sentence.
"""
from __future__ import annotations

from common.i18n import (DEFAULT_LOCALE, LOCALES_DIR, SUPPORTED, N_, _, catalog, current_locale, gettext,
                         ngettext, normalise_locale, use_locale)

__all__ = ["DEFAULT_LOCALE", "LOCALES_DIR", "SUPPORTED", "N_", "_", "catalog", "current_locale", "gettext",
           "ngettext", "normalise_locale", "use_locale"]
