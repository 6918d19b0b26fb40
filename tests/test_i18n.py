"""Every sentence the bot can say has its zh_TW text; ROC dates as forms write them."""
from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

from babel.messages.extract import extract_from_dir

from dialogs.dates import TAIPEI, roc_long, roc_short, parse_roc
from dialogs.i18n import catalog, normalise_locale, use_locale, _

ROOT = Path(__file__).resolve().parent.parent
KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}


def used_msgids() -> dict[str, str]:
    found = {}
    for package in ("bot", "handlers", "dialogs", "storage", "common"):
        for filename, _lineno, message, _comments, _context in extract_from_dir(
                ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS):
            if isinstance(message, tuple):  # ngettext: the singular msgid carries the plural forms
                message = message[0]
            if isinstance(message, str) and message:
                found[message] = f"{package}/{filename}"
    return found


def test_every_message_has_a_zh_tw_translation():
    translations = catalog("zh_TW")
    missing = {msgid: where for msgid, where in used_msgids().items() if msgid not in translations}
    assert not missing, "messages without zh_TW text:\n" + "\n".join(f"{w}: {m!r}" for m, w in missing.items())


def test_no_msgid_has_two_texts_in_two_catalogs():
    """The catalogs are merged into one: a msgid translated twice would say one area's text in the other's
    place (the letter's 地址 once read 來源位址, the staff console's word for a request's address)."""
    from babel.messages.pofile import read_po

    texts: dict[str, dict[str, str]] = {}
    for po in sorted((ROOT / "locales" / "zh_TW" / "LC_MESSAGES").glob("*.po")):
        with po.open("rb") as fh:
            for message in read_po(fh):
                msgid = message.id[0] if isinstance(message.id, tuple) else message.id
                text = message.string[0] if isinstance(message.string, tuple) else message.string
                if msgid and text:
                    texts.setdefault(msgid, {})[po.name] = text
    assert {m: t for m, t in texts.items() if len(set(t.values())) > 1} == {}


def test_zh_tw_texts_write_tai_as_in_official_names():
    offenders = [s for s in catalog("zh_TW").values() if "台北" in s or "台中" in s or "台南" in s or "台灣" in s]
    assert offenders == []


def test_translations_keep_their_placeholders():
    import re

    for msgid, text in catalog("zh_TW").items():
        assert set(re.findall(r"{\w+}", msgid)) == set(re.findall(r"{\w+}", text)), msgid


def test_locale_comes_from_the_line_profile_language():
    assert normalise_locale("zh-Hant") == "zh_TW"
    assert normalise_locale("zh-TW") == "zh_TW"
    assert normalise_locale("en") == "en"
    assert normalise_locale("en-US") == "en"
    assert normalise_locale(None) == "zh_TW"
    assert normalise_locale("ja") == "zh_TW"


def test_the_same_msgid_speaks_both_languages():
    with use_locale("zh_TW"):
        assert _("Cancelled. Nothing was saved.") == "已取消，沒有儲存任何資料。"
    with use_locale("en"):
        assert _("Cancelled. Nothing was saved.") == "Cancelled. Nothing was saved."


def test_roc_dates_as_government_forms_write_them():
    assert roc_short(date(2023, 3, 16)) == "112/3/16"
    assert roc_long(datetime(2023, 3, 16, 17, 0, tzinfo=TAIPEI)) == "112年3月16日(四) 17:00"
    assert roc_long(date(2023, 7, 31)) == "112年7月31日(一)"
    assert parse_roc("112/3/16") == date(2023, 3, 16)
    assert parse_roc("112年7月31日") == date(2023, 7, 31)


def test_plurals_follow_each_language():
    from datetime import timedelta

    from dialogs.dates import describe_days_left, today
    from dialogs.i18n import ngettext

    with use_locale("en"):
        assert ngettext("{n} day left", "{n} days left", 1).format(n=1) == "1 day left"
        assert ngettext("{n} day left", "{n} days left", 2).format(n=2) == "2 days left"
    with use_locale("zh_TW"):
        assert ngettext("{n} day left", "{n} days left", 1).format(n=1) == "還有 1 天"
        assert ngettext("{n} day left", "{n} days left", 5).format(n=5) == "還有 5 天"
    with use_locale("en"):
        assert describe_days_left(today() + timedelta(days=1)) == "1 day left"
        assert describe_days_left(today() + timedelta(days=3)) == "3 days left"


def test_the_catalogs_compile_to_mo_files_that_are_not_committed():
    from common.i18n import LOCALES_DIR, compile_catalogs

    compile_catalogs()
    mo = sorted(LOCALES_DIR.glob("zh_TW/LC_MESSAGES/*.mo"))
    assert [p.stem for p in mo] == sorted(p.stem for p in LOCALES_DIR.glob("zh_TW/LC_MESSAGES/*.po"))
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    assert "*.mo" in ignored
