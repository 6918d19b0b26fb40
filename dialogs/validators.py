"""Validators of the letter of intent (附件二) and its roster row (附件一 柒.1).

Each has the engine's signature ``validate_x(value, ctx) -> clean value`` and
raises ``Refused`` with a reason the owner understands. They normalise first:
full-width digits and letters become half-width (NFKC), 台 becomes 臺 where the
field is a place, spaces and hyphens go where the field allows them.
Pure functions: no storage, no network (e-mail is checked without DNS).
"""
from __future__ import annotations

import re
import unicodedata
from typing import Any, Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email as _email_validator

from common import townships
from common.business_number import checksum_ok as business_number_checksum_ok
from common.text import FIELD_MAX, FormTextRefused, form_text as _form_text
from dialogs.engine import Refused, is_plain_question
from dialogs.i18n import _
from dialogs.text import chinese_number, has_unsafe, normalise

EMPLOYEES_MAX = 9999
EMPLOYEES_LIMIT = 9  # 附件一: enterprises of fewer than 10 employees (the dialog warns above it)
NAME_MIN, NAME_MAX = 2, 100
ADDRESS_MIN = 6

_SPACES_HYPHENS = re.compile(r"[\s\-‐‑‒–—―−_]+")


def _nfkc(value: Any) -> str:
    """NFKC and trimmed, without 台→臺 (for names and e-mail, which keep what was typed)."""
    text = unicodedata.normalize("NFKC", str(value or ""))
    return re.sub(r"\s+", " ", text).strip()


# -- 統一編號 ------------------------------------------------------------------
def validate_business_number(value: str, ctx=None) -> str:
    """統一編號: 8 digits with the MOF checksum; returns the 8 digits."""
    text = _SPACES_HYPHENS.sub("", normalise(value))
    if not text:
        raise Refused(_("Please type the 8-digit business number (統一編號)."))
    if not text.isdigit():
        if re.search(r"\d", text):
            raise Refused(_("A business number has digits only, no letters or signs. Please type its 8 digits."))
        raise Refused(_("Please type the business number in digits: it has 8 digits."))
    if len(text) != 8:
        raise Refused(_("A business number has 8 digits; you typed {count}. Please check it.").format(count=len(text)))
    if text == "00000000":
        raise Refused(_("00000000 is not a business number. Please type the number on your registration certificate."))
    if not business_number_checksum_ok(text):
        raise Refused(_("This business number does not pass the Ministry of Finance check. "
                        "Please check the number on your registration certificate."))
    return text


# -- 手機 ------------------------------------------------------------------------
_PHONE_CHARS = re.compile(r"[\s\-‐‑‒–—―−_.()/\[\]]+")


def _phone_digits(text: str) -> str:
    """Removes the separators people put into phone numbers."""
    return _PHONE_CHARS.sub("", text)


def _parse_tw(number: str) -> Optional[phonenumbers.PhoneNumber]:
    try:
        return phonenumbers.parse(number, "TW")
    except phonenumbers.NumberParseException:
        return None


def _international_prefix(digits: str) -> str:
    """'+8860912…' and '8860912…' lose the trunk 0 people add after +886."""
    if digits.startswith("00886"):
        digits = "+" + digits[2:]
    if digits.startswith("886") and len(digits) >= 11:
        digits = "+" + digits
    if digits.startswith("+8860"):
        digits = "+886" + digits[5:]
    return digits


def validate_mobile(value: str, ctx=None) -> str:
    """手機: 09 + 8 digits, or +886 9…; returns E.164 "+8869XXXXXXXX"."""
    text = normalise(value)
    if not text:
        raise Refused(_("Please type the mobile number, for example 0912-345-678."))
    digits = _international_prefix(_phone_digits(text))
    if re.search(r"[^\d+]", digits) or digits.count("+") > 1 or "+" in digits[1:]:
        raise Refused(_("A mobile number has digits only, for example 0912-345-678."))
    if digits.startswith("+") and not digits.startswith("+886"):
        raise Refused(_("Please give a Taiwanese mobile number (09…, or +886 9…)."))
    national = digits[4:] if digits.startswith("+886") else digits
    national = national[1:] if national.startswith("0") else national
    if national and not national.startswith("9"):
        raise Refused(_("This looks like a landline number. Please type a mobile number starting with 09."))
    if len(national) != 9:
        raise Refused(_("A mobile number has 10 digits starting with 09; you typed {count}.")
                      .format(count=len(national) + 1))
    parsed = _parse_tw("+886" + national)
    if parsed is None or not phonenumbers.is_valid_number(parsed) or \
            phonenumbers.number_type(parsed) not in (phonenumbers.PhoneNumberType.MOBILE,
                                                     phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE):
        raise Refused(_("This is not a valid Taiwanese mobile number. Please check it."))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


# -- 電話 ------------------------------------------------------------------------
# 轉 603, 分機 603, 分機號碼603, #603, ext. 603, ext603, x603, 內線 603
_EXTENSION = re.compile(r"(?:轉接?|分機(?:號碼)?|內線|#|extension|ext\.?|x)\s*[:：]?\s*(\d*)\s*$", re.IGNORECASE)


def validate_phone(value: str, ctx=None) -> dict:
    """電話: area code and number, with an optional extension; landlines and mobiles.

    Returns {"e164": "+886225533988", "extension": "603" or ""}.
    """
    text = normalise(value)
    if not text:
        raise Refused(_("Please type the phone number with its area code, for example (02)2553-3988."))
    extension = ""
    match = _EXTENSION.search(text)
    if match:
        extension = match.group(1)
        if not extension:
            raise Refused(_("Please type the extension's digits after 轉 or #, for example (02)2553-3988 轉 603."))
        if len(extension) > 6:
            raise Refused(_("An extension has at most 6 digits. Please check it."))
        text = text[:match.start()].strip()
    digits = _international_prefix(_phone_digits(text))
    if not digits:
        raise Refused(_("Please type the phone number with its area code, for example (02)2553-3988."))
    if re.search(r"[^\d+]", digits) or "+" in digits[1:]:
        raise Refused(_("A phone number has digits only (and 轉 or # before an extension), "
                        "for example (02)2553-3988 轉 603."))
    if digits.startswith("+") and not digits.startswith("+886"):
        raise Refused(_("Please give a Taiwanese phone number, with its area code, for example (02)2553-3988."))
    if not digits.startswith("+") and not digits.startswith("0"):
        if 5 <= len(digits) <= 8:
            raise Refused(_("Please add the area code in front, for example (02)2553-3988 or (04)2345-6789."))
        raise Refused(_("A Taiwanese phone number starts with 0 and its area code, for example (02)2553-3988."))
    national = digits[4:] if digits.startswith("+886") else digits[1:]
    if len(national) < 8:
        raise Refused(_("This phone number is too short. Please type the area code and the whole number, "
                        "for example (037)123-456."))
    if len(national) > 10:
        raise Refused(_("This phone number is too long. If it has an extension, write it after 轉 or #, "
                        "for example (02)2553-3988 轉 603."))
    parsed = _parse_tw("+886" + national)
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise Refused(_("This is not a valid Taiwanese phone number. Please check the area code and the number."))
    return {"e164": phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164), "extension": extension}


def display_phone(value: Any, ctx=None) -> str:
    """A stored phone (dict or E.164 string) the one way people read it: 0912-345-678, (02)2553-3988 轉 603."""
    if isinstance(value, dict):
        e164, extension = value.get("e164", ""), value.get("extension", "")
    else:
        e164, extension = str(value or ""), ""
    shown = _national_text(e164)
    return f"{shown} 轉 {extension}" if extension else shown


def _national_text(e164: str) -> str:
    if len(e164) == 13 and e164.startswith("+8869") and e164[1:].isdigit():
        return f"0{e164[4:7]}-{e164[7:10]}-{e164[10:]}"  # a mobile (fast: exports)
    parsed = _parse_tw(e164)
    if parsed is None:
        return e164
    national = str(parsed.national_number)
    area = phonenumbers.length_of_geographical_area_code(parsed)
    if not area or area >= len(national):
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    code, rest = national[:area], national[area:]
    split = {8: 4, 7: 3, 6: 3, 5: 1}.get(len(rest))
    number = f"{rest[:split]}-{rest[split:]}" if split else rest
    return f"(0{code}){number}"


# -- E-mail ------------------------------------------------------------------------
def validate_email(value: str, ctx=None) -> str:
    """E-mail: syntax only (no DNS); returns the normalised address (domain in lower case)."""
    text = _nfkc(value).replace("。", ".").replace("｡", ".")
    if text.lower().startswith("mailto:"):
        text = text[7:]
    text = re.sub(r"\s*([@.])\s*", r"\1", text).strip()
    if not text:
        raise Refused(_("Please type the e-mail address, for example name@example.com.tw."))
    if "@" not in text:
        raise Refused(_("An e-mail address needs an @, for example name@example.com.tw."))
    if text.count("@") > 1:
        raise Refused(_("An e-mail address has only one @. Please type one address."))
    local, domain = text.split("@")
    if not local:
        raise Refused(_("The part before the @ is missing, for example name@example.com.tw."))
    if not domain:
        raise Refused(_("The part after the @ is missing, for example name@gmail.com."))
    if re.search(r"\s", text):
        raise Refused(_("An e-mail address has no spaces. Please check it."))
    if "." not in domain:
        raise Refused(_("The part after the @ needs a dot, for example gmail.com or company.com.tw."))
    try:
        result = _email_validator(text, check_deliverability=False)
    except EmailNotValidError:
        raise Refused(_("This e-mail address is not valid. Please check it, for example name@example.com.tw."))
    return result.normalized


# -- 員工人數 ---------------------------------------------------------------------
_PEOPLE_WORDS = re.compile(r"(?:人|名|位|員工|persons?|people|employees?|staff|pax)+$", re.IGNORECASE)


def validate_employees(value: str, ctx=None) -> int:
    """員工人數: a whole number 0–9999 ("5", "5人", "５", "5 people", "五人")."""
    text = normalise(value).lower()
    if not text:
        raise Refused(_("Please type the number of employees, for example 5."))
    text = _PEOPLE_WORDS.sub("", text.replace(" ", "")).strip()
    text = re.sub(r"^(?:員工人數|員工|人數|約|大約|共|總共|about|around)+[:：]?", "", text)
    if re.fullmatch(r"\d{1,3}(?:,\d{3})+", text):
        text = text.replace(",", "")
    if re.fullmatch(r"-\s*\d+(?:\.\d+)?", text):
        raise Refused(_("The number of employees cannot be negative."))
    if re.fullmatch(r"\d*[.,]\d+", text):
        raise Refused(_("Please type a whole number of employees, for example 5."))
    number: Optional[int] = int(text) if text.isdigit() else chinese_number(text)
    if number is None:
        raise Refused(_("Please type the number of employees in digits, for example 5."))
    if number > EMPLOYEES_MAX:
        raise Refused(_("That is more employees than this program is for. Please check the number."))
    return number


def employees_over_limit(n: int, limit: int = EMPLOYEES_LIMIT) -> bool:
    """True above the limit (附件一: fewer than 10 employees); the dialog warns, it does not refuse."""
    return n > limit


# -- free text that goes on the paper form ----------------------------------------------------
def form_text(value: Any, kind: str, what: Optional[str] = None, questions: bool = True) -> str:
    """The one normaliser of free text that goes on 附件二 / 附件一 (common.text.form_text), refusing as a dialog
    does: control characters, emoji and text that is plainly a question (unless ``questions`` is False:
    staff texts may ask), each with a reason, and text longer than the form's box (``FIELD_MAX[kind]``).
    """
    def question(text: str) -> Optional[str]:
        if not is_plain_question(text):
            return None
        return _("This reads like a question, not an answer. Please type {what} itself; "
                 "to ask something, tap 常見問題 (FAQ).").format(what=what or _("the answer"))

    try:
        return _form_text(value, kind, question if questions else None)
    except FormTextRefused as refusal:
        raise Refused(refusal.message) from None


# -- 企業名稱, 代表人, 聯絡人 -------------------------------------------------------
_URL = re.compile(r"(?:https?://|www\.|\b[\w-]+\.(?:com|net|org|tw|io|biz|info)\b)", re.IGNORECASE)


def _check_name(text: str, empty: str, kind: str = "company_name", what: str = "") -> str:
    if not text:
        raise Refused(empty)
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in text) or has_unsafe(text):
        raise Refused(_("The name contains invisible control characters. Please type it again."))
    text = form_text(text, "", what)
    if "@" in text:
        raise Refused(_("Please type the name itself, not an e-mail address."))
    if _URL.search(text):
        raise Refused(_("Please type the name itself, not a web address."))
    if re.fullmatch(r"[\d\s+()#-]+", text):
        raise Refused(_("This looks like a number. Please type the name."))
    if len(text) < NAME_MIN:
        raise Refused(_("The name is too short: please type at least {min} characters.").format(min=NAME_MIN))
    limit = FIELD_MAX.get(kind, NAME_MAX)
    if len(text) > limit:
        raise Refused(_("The name is too long: at most {max} characters.").format(max=limit))
    return text


def validate_company_name(value: str, ctx=None) -> str:
    """企業名稱 as registered; 台 is kept (a registered name may use it)."""
    return _check_name(_nfkc(value), _("Please type the enterprise's name as registered."), "company_name",
                       _("the enterprise's name"))


def validate_person_name(value: str, ctx=None) -> str:
    """代表人 / 聯絡人: a person's name; 台 is kept."""
    return _check_name(_nfkc(value), _("Please type the person's name."), "person_name", _("the name"))


def validate_products(value: str, ctx=None) -> str:
    """附件一 主要服務/產品: short free text as typed (台 kept)."""
    text = form_text(value, "products", _("the services or products"))
    if not text:
        raise Refused(_("Please type an answer."))
    return text


def validate_program_names(value: str, ctx=None) -> str:
    """附件一 是否參與/申請政府相關輔導/補助計畫: the names of the other programs."""
    text = form_text(value, "program_names", _("the programs' names"))
    if not text:
        raise Refused(_("Please type an answer."))
    return text


# -- 地址 ----------------------------------------------------------------------------
def validate_address(value: str, ctx=None) -> str:
    """地址: at least 6 characters with the county or city in it; returns it normalised (臺)."""
    text = normalise(value)
    if not text:
        raise Refused(_("Please type the address, for example 臺北市大同區承德路一段70號."))
    if any(unicodedata.category(ch) in ("Cc", "Cf") for ch in str(value or "")) or has_unsafe(str(value or "")):
        raise Refused(_("The address contains invisible control characters. Please type it again."))
    text = form_text(text, "address", _("the address"))
    if len(text.replace(" ", "")) < ADDRESS_MIN:
        raise Refused(_("This address is too short. Please type the whole address, "
                        "for example 臺北市大同區承德路一段70號."))
    if townships.find_county_in(text) is None:
        raise Refused(_("Please include the county or city in the address, for example 臺北市大同區承德路一段70號."))
    return text


# -- 所在地 ---------------------------------------------------------------------------
def validate_county(value: str, ctx=None) -> str:
    """縣市: a tapped code or a typed name ("台北", "臺北市大安區"); returns the county code."""
    text = normalise(value)
    if not text:
        raise Refused(_("Please choose the county or city."))
    found = townships.county_candidates(text)
    if len(found) > 1:
        raise Refused(_("Do you mean {choices}? Please choose one.")
                      .format(choices=_(" or ").join(c.name for c in found)))
    if len(found) == 1:
        return found[0].code
    county, _town = townships.parse_location(text)
    if county is not None:
        return county.code
    if townships.towns_named(text):
        raise Refused(_("“{text}” is a township or district. Please choose its county or city first.")
                      .format(text=text))
    raise Refused(_("“{text}” is not a county or city of Taiwan. Please choose one of the buttons, "
                    "or type its name, for example 臺北市.").format(text=text))


def validate_town(value: str, ctx=None) -> str:
    """鄉鎮市區 of the county in ctx.values["county"]; returns the town code."""
    county_code = (ctx.values.get("county") if ctx is not None else None) or ""
    county = townships.county(county_code)
    if county is None:
        raise Refused(_("Please choose the county or city first."))
    text = normalise(value)
    if not text:
        raise Refused(_("Please choose the township or district in {county}.").format(county=county.name))
    town = townships.find_town(county.code, text)
    if town is not None:
        return town.code
    elsewhere = [t for t in townships.towns_named(text) if t.county_code != county.code]
    if elsewhere:
        others = _(" or ").join(townships.county(t.county_code).name for t in elsewhere)
        raise Refused(_("{town} is in {other}, not in {county}. Please choose a township or district of {county}, "
                        "or go back to change the county.").format(town=elsewhere[0].name, other=others,
                                                                    county=county.name))
    raise Refused(_("{county} has no township or district called “{text}”. Please choose one of the buttons.")
                  .format(county=county.name, text=text))


def display_county(value: Any, ctx=None) -> str:
    county = townships.county(str(value or ""))
    return county.name if county else str(value or "")


def display_town(value: Any, ctx=None) -> str:
    town = townships.town(str(value or ""))
    return town.name if town else str(value or "")
