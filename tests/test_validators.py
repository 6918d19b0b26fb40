"""The letter-of-intent validators: what an owner types, and what they are told.

Each table row reads as: the owner types X -> it is stored as Y, or the owner
is told Z (in zh_TW, as the bot answers).
"""
from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_file

from common import townships
from dialogs.engine import Context, Refused
from dialogs.i18n import catalog, use_locale
from dialogs.validators import (
    business_number_checksum_ok,
    display_county,
    display_phone,
    display_town,
    employees_over_limit,
    validate_address,
    validate_business_number,
    validate_company_name,
    validate_county,
    validate_email,
    validate_employees,
    validate_mobile,
    validate_person_name,
    validate_phone,
    validate_town,
)

ROOT = Path(__file__).resolve().parent.parent


def ctx(**values) -> Context:
    return Context(user_id="U-test", values=dict(values))


def refusal(validator, value, context=None) -> str:
    """The zh_TW reason the owner is given."""
    with use_locale("zh_TW"), pytest.raises(Refused) as refused:
        validator(value, context or ctx())
    return refused.value.message


# -- 統一編號 -----------------------------------------------------------------------
@pytest.mark.parametrize("typed, stored", [
    ("22099131", "22099131"),
    ("04541302", "04541302"),
    ("96979933", "96979933"),
    ("62140097", "62140097"),  # valid only under the divisible-by-5 rule (since 2023-04-01)
    ("04595252", "04595252"),  # idem
    ("10458575", "10458575"),  # 7th digit 7
    ("２２０９９１３１", "22099131"),  # full-width
    ("2209 9131", "22099131"),
    ("2209-9131", "22099131"),
    (" 22099131 ", "22099131"),
])
def test_business_number_accepted(typed, stored):
    assert validate_business_number(typed, ctx()) == stored


@pytest.mark.parametrize("typed, told", [
    ("22099132", "這個統一編號未通過財政部的檢查碼驗證，請對照登記證明文件上的號碼再確認。"),
    ("12345678", "這個統一編號未通過財政部的檢查碼驗證，請對照登記證明文件上的號碼再確認。"),
    ("00000000", "00000000 不是統一編號，請輸入登記證明文件上的號碼。"),
    ("1234567", "統一編號是 8 位數，您輸入了 7 位，請再確認。"),
    ("220991311", "統一編號是 8 位數，您輸入了 9 位，請再確認。"),
    ("2209913A", "統一編號只有數字，沒有英文字母或符號。請輸入 8 位數字。"),
    ("22O99131", "統一編號只有數字，沒有英文字母或符號。請輸入 8 位數字。"),  # letter O for zero
    ("統一編號", "請用數字輸入統一編號，共 8 位數。"),
    ("", "請輸入 8 位數的統一編號。"),
])
def test_business_number_refused(typed, told):
    assert refusal(validate_business_number, typed) == told


def test_checksum_rule_since_2023():
    # divisible by 10 under the old rule, by 5 under the new one
    assert business_number_checksum_ok("22099131")
    # divisible by 5 only: refused by the old rule, accepted now
    assert business_number_checksum_ok("62140097") and business_number_checksum_ok("04595252")
    assert not business_number_checksum_ok("22099132")
    assert not business_number_checksum_ok("1234567")


# -- 手機 -----------------------------------------------------------------------------
@pytest.mark.parametrize("typed, stored", [
    ("0912345678", "+886912345678"),
    ("０９１２－３４５－６７８", "+886912345678"),
    ("0912 345 678", "+886912345678"),
    ("0912-345678", "+886912345678"),
    ("(0912)345-678", "+886912345678"),
    ("+886 912 345 678", "+886912345678"),
    ("+886-912-345-678", "+886912345678"),
    ("+886 0912 345 678", "+886912345678"),  # the trunk 0 kept after +886
    ("886912345678", "+886912345678"),
])
def test_mobile_accepted(typed, stored):
    assert validate_mobile(typed, ctx()) == stored


@pytest.mark.parametrize("typed, told", [
    ("", "請輸入手機號碼，例如 0912-345-678。"),
    ("02-2553-3988", "這看起來是市話號碼，請輸入 09 開頭的手機號碼。"),
    ("0912-345-67", "手機號碼是 09 開頭的 10 位數字，您輸入了 9 位。"),
    ("09123456789", "手機號碼是 09 開頭的 10 位數字，您輸入了 11 位。"),
    ("0912abc678", "手機號碼只有數字，例如 0912-345-678。"),
    ("+81 90 1234 5678", "請提供臺灣的手機號碼（09 開頭，或 +886 9 開頭）。"),
])
def test_mobile_refused(typed, told):
    assert refusal(validate_mobile, typed) == told


# -- 電話 -----------------------------------------------------------------------------
@pytest.mark.parametrize("typed, e164, extension", [
    ("(02)2553-3988 轉 603", "+886225533988", "603"),
    ("（０２）２５５３－３９８８轉６０３", "+886225533988", "603"),
    ("02-2553-3988#603", "+886225533988", "603"),
    ("02-2553-3988 分機 603", "+886225533988", "603"),
    ("02 2553 3988 ext. 603", "+886225533988", "603"),
    ("02-25533988 x603", "+886225533988", "603"),
    ("02-2553-3988", "+886225533988", ""),
    ("037-123456", "+88637123456", ""),
    ("(049)234-5678", "+886492345678", ""),
    ("+886 2 2553 3988", "+886225533988", ""),
    ("0912-345-678", "+886912345678", ""),  # a mobile is a phone too
])
def test_phone_accepted(typed, e164, extension):
    assert validate_phone(typed, ctx()) == {"e164": e164, "extension": extension}


@pytest.mark.parametrize("typed, told", [
    ("", "請輸入含區碼的電話號碼，例如 (02)2553-3988。"),
    ("2553-3988", "請在號碼前加上區碼，例如 (02)2553-3988 或 (04)2345-6789。"),
    ("02-1234", "這個電話號碼太短了，請輸入區碼和完整號碼，例如 (037)123-456。"),
    ("02-2553-3988-6031", "這個電話號碼太長了。如有分機，請寫在「轉」或「#」後面，例如 (02)2553-3988 轉 603。"),
    ("00-1234-5678", "這不是有效的臺灣電話號碼，請確認區碼和號碼。"),
    ("+1 415 555 2671", "請提供含區碼的臺灣電話號碼，例如 (02)2553-3988。"),
    ("02-2553-3988 轉", "請在「轉」或「#」後面輸入分機號碼，例如 (02)2553-3988 轉 603。"),
    ("02-2553-3988 轉 12345678", "分機號碼最多 6 位數，請再確認。"),
    ("02-2553-3988 請找王先生", "電話號碼只能有數字（分機前可寫「轉」或「#」），例如 (02)2553-3988 轉 603。"),
])
def test_phone_refused(typed, told):
    assert refusal(validate_phone, typed) == told


def test_phone_shown_as_written_in_taiwan():
    assert display_phone({"e164": "+886225533988", "extension": "603"}) == "(02)2553-3988 轉 603"
    assert display_phone({"e164": "+886912345678", "extension": ""}) == "0912-345-678"


# -- E-mail -----------------------------------------------------------------------------
@pytest.mark.parametrize("typed, stored", [
    ("wang@example.com.tw", "wang@example.com.tw"),
    ("Wang@Example.COM.TW", "Wang@example.com.tw"),  # the domain in lower case
    ("ｗａｎｇ＠ｇｍａｉｌ．ｃｏｍ", "wang@gmail.com"),  # full-width
    ("wang@gmail。com", "wang@gmail.com"),  # the ideographic full stop of a Chinese keyboard
    (" wang @ gmail.com ", "wang@gmail.com"),
    ("mailto:wang@gmail.com", "wang@gmail.com"),
])
def test_email_accepted(typed, stored):
    assert validate_email(typed, ctx()) == stored


@pytest.mark.parametrize("typed, told", [
    ("a@b", "「@」後面的網域需要有「.」，例如 gmail.com 或 company.com.tw。"),
    ("wang.gmail.com", "E-mail 需要有「@」，例如 name@example.com.tw。"),
    ("a@@b.com", "E-mail 只會有一個「@」，請輸入一個地址就好。"),
    ("@gmail.com", "「@」前面少了帳號名稱，例如 name@example.com.tw。"),
    ("wang@", "「@」後面少了網域，例如 name@gmail.com。"),
    ("wang xiao@gmail.com", "E-mail 裡不會有空格，請再確認。"),
    ("wang@gmail..com", "這個 E-mail 格式不正確，請再確認，例如 name@example.com.tw。"),
    ("", "請輸入 E-mail，例如 name@example.com.tw。"),
])
def test_email_refused(typed, told):
    assert refusal(validate_email, typed) == told


# -- 員工人數 ---------------------------------------------------------------------------
@pytest.mark.parametrize("typed, stored", [
    ("5", 5), ("5人", 5), ("５", 5), ("5 people", 5), ("5 名員工", 5), ("約 8 人", 8),
    ("0", 0), ("五人", 5), ("十二", 12), ("1,200", 1200), ("9999", 9999),
])
def test_employees_accepted(typed, stored):
    assert validate_employees(typed, ctx()) == stored


@pytest.mark.parametrize("typed, told", [
    ("5.5", "員工人數請輸入整數，例如 5。"),
    ("-1", "員工人數不能是負數。"),
    ("five", "請用數字輸入員工人數，例如 5。"),
    ("很多", "請用數字輸入員工人數，例如 5。"),
    ("10000", "這個人數超出本計畫服務的企業規模，請再確認。"),
    ("", "請輸入員工人數，例如 5。"),
])
def test_employees_refused(typed, told):
    assert refusal(validate_employees, typed) == told


def test_more_than_nine_employees_is_for_the_dialog_to_warn():
    assert validate_employees("12", ctx()) == 12  # accepted
    assert employees_over_limit(12) and employees_over_limit(10)
    assert not employees_over_limit(9) and not employees_over_limit(0)
    assert not employees_over_limit(12, limit=20)


# -- 企業名稱, 代表人, 聯絡人 ------------------------------------------------------------
@pytest.mark.parametrize("validator, typed, stored", [
    (validate_company_name, "共好科技有限公司", "共好科技有限公司"),
    (validate_company_name, "台灣積體電路製造股份有限公司", "台灣積體電路製造股份有限公司"),  # 台 as registered
    (validate_company_name, "ＡＢＣ 小吃店", "ABC 小吃店"),
    (validate_person_name, " 王小明 ", "王小明"),
    (validate_person_name, "陳台生", "陳台生"),  # a person's name is never changed
    (validate_person_name, "Mary Chen", "Mary Chen"),
])
def test_names_accepted(validator, typed, stored):
    assert validator(typed, ctx()) == stored


@pytest.mark.parametrize("validator, typed, told", [
    (validate_company_name, "", "請輸入登記的企業名稱。"),
    (validate_person_name, "   ", "請輸入姓名。"),
    (validate_person_name, "王", "名稱太短了，請至少輸入 2 個字。"),
    (validate_company_name, "共" * 51, "名稱太長了，最多 50 個字。"),  # the box on 附件二
    (validate_company_name, "https://gonghao.example.com", "請輸入名稱本身，不是網址。"),
    (validate_company_name, "www.example.com.tw", "請輸入名稱本身，不是網址。"),
    (validate_person_name, "wang@gmail.com", "請輸入名稱本身，不是 E-mail。"),
    (validate_person_name, "0912-345-678", "這看起來是一串號碼，請輸入名稱。"),
    (validate_company_name, "共好\x00科技", "名稱裡有看不見的控制字元，請重新輸入。"),
    (validate_person_name, "王\u200b小明", "名稱裡有看不見的控制字元，請重新輸入。"),
])
def test_names_refused(validator, typed, told):
    assert refusal(validator, typed) == told


# -- 地址 -------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, stored", [
    ("台北市大同區承德路一段70號", "臺北市大同區承德路一段70號"),
    ("103 臺北市大同區承德路一段７０號", "103 臺北市大同區承德路一段70號"),
    ("新竹縣竹北市光明六路10號", "新竹縣竹北市光明六路10號"),
    ("台東市中華路一段1號", "臺東市中華路一段1號"),  # a county's city, named alone
    ("臺北縣板橋市文化路1號", "臺北縣板橋市文化路1號"),  # the former county's name
])
def test_address_accepted(typed, stored):
    assert validate_address(typed, ctx()) == stored


@pytest.mark.parametrize("typed, told", [
    ("", "請輸入地址，例如 臺北市大同區承德路一段70號。"),
    ("臺北市", "這個地址太短了，請輸入完整地址，例如 臺北市大同區承德路一段70號。"),
    ("大同區承德路一段70號", "地址請包含縣市，例如 臺北市大同區承德路一段70號。"),
    ("No. 70, Chengde Rd.", "地址請包含縣市，例如 臺北市大同區承德路一段70號。"),
])
def test_address_refused(typed, told):
    assert refusal(validate_address, typed) == told


# -- 所在地 --------------------------------------------------------------------------------
@pytest.mark.parametrize("typed, code", [
    ("臺北市", "63000"), ("台北市", "63000"), ("台北", "63000"), ("63000", "63000"), ("Taipei", "63000"),
    ("新竹市", "10018"), ("新竹縣", "10004"), ("臺北縣", "65000"), ("臺北市大安區", "63000"),
    ("板橋區", "65000"),  # a town found in one county only
])
def test_county_accepted(typed, code):
    assert validate_county(typed, ctx()) == code


@pytest.mark.parametrize("typed, told", [
    ("", "請選擇縣市。"),
    ("新竹", "您是指新竹市還是新竹縣？請選擇一個。"),
    ("嘉義", "您是指嘉義市還是嘉義縣？請選擇一個。"),
    ("大安", "「大安」是鄉鎮市區，請先選擇它所在的縣市。"),
    ("火星", "「火星」不是臺灣的縣市，請點選按鈕，或輸入縣市名稱，例如 臺北市。"),
])
def test_county_refused(typed, told):
    assert refusal(validate_county, typed) == told


@pytest.mark.parametrize("county, typed, code", [
    ("63000", "大安區", "63000030"),
    ("63000", "大安", "63000030"),
    ("63000", "台北市大安區", "63000030"),
    ("63000", "63000030", "63000030"),
    ("66000", "大安", "66000220"),  # 臺中市大安區
    ("65000", "板橋市", "65000010"),  # the name before 2010
    ("10014", "台東市", "10014010"),
    ("10018", "東區", "10018010"),
    ("10020", "東區", "10020010"),
])
def test_town_accepted(county, typed, code):
    assert validate_town(typed, ctx(county=county)) == code


@pytest.mark.parametrize("county, typed, told", [
    ("65000", "大安", "大安區在臺北市還是臺中市，不在新北市。請選擇新北市的鄉鎮市區，或回上一步修改縣市。"),
    ("63000", "板橋", "板橋區在新北市，不在臺北市。請選擇臺北市的鄉鎮市區，或回上一步修改縣市。"),
    ("63000", "火星區", "臺北市沒有叫「火星區」的鄉鎮市區，請點選按鈕選擇。"),
    ("63000", "", "請選擇臺北市的鄉鎮市區。"),
    (None, "大安", "請先選擇縣市。"),
])
def test_town_refused(county, typed, told):
    assert refusal(validate_town, typed, ctx(county=county)) == told


def test_location_shown_by_name():
    assert display_county("63000") == "臺北市"
    assert display_town("63000030") == "大安區"


# -- the township table ------------------------------------------------------------------
def test_table_has_every_county_and_town():
    all_counties = townships.counties()
    assert len(all_counties) == 22
    assert all_counties[:3] == [townships.county("10017"), townships.county("63000"), townships.county("65000")]
    assert sum(len(townships.towns(c.code)) for c in all_counties) == 368
    assert [t.name for t in townships.towns("63000")][:3] == ["松山區", "信義區", "大安區"]
    assert "台" not in "".join(c.name for c in all_counties)


@pytest.mark.parametrize("typed, county, town", [
    ("臺北市大安區", "臺北市", "大安區"),
    ("台北 大安", "臺北市", "大安區"),
    ("北市大安", "臺北市", "大安區"),
    ("新竹 東區", "新竹市", "東區"),  # the town settles which 新竹
    ("嘉義縣 太保", "嘉義縣", "太保市"),
    ("板橋區", "新北市", "板橋區"),
    ("苗栗", "苗栗縣", None),
    ("台北市", "臺北市", None),
    ("新竹", None, None),  # 新竹縣 or 新竹市
    ("大安", None, None),  # 臺北市 or 臺中市
    ("火星", None, None),
])
def test_parse_location(typed, county, town):
    found_county, found_town = townships.parse_location(typed)
    assert (found_county.name if found_county else None) == county
    assert (found_town.name if found_town else None) == town


def test_every_town_is_found_by_its_names():
    for county in townships.counties():
        short = county.name[:-1]
        for town in townships.towns(county.code):
            assert townships.find_town(county.code, town.name) == town
            assert townships.find_town(county.code, town.name[:-1]) == town, town
            assert townships.parse_location(county.name + town.name) == (county, town)
            assert townships.parse_location(f"{short.replace('臺', '台')} {town.name}") == (county, town)


# -- every message has its zh_TW translation ----------------------------------------------
def test_every_msgid_is_translated():
    translated = catalog("zh_TW")
    missing = []
    for source in ("dialogs/validators.py", "common/townships.py"):
        for _lineno, msgid, _comments, _context in extract_from_file(
                "python", ROOT / source, keywords={"_": None, "N_": None}):
            if msgid not in translated:
                missing.append(msgid)
    assert missing == []


@pytest.mark.parametrize("typed, number", [
    ("三", 3), ("十", 10), ("十二", 12), ("五十", 50), ("五十五", 55), ("兩百", 200), ("兩百零五", 205),
    ("一百五", 150), ("三千五", 3500), ("零", 0), ("百", None), ("十十", None), ("5", None), ("三人", None), ("", None),
])
def test_one_chinese_numeral_parser(typed, number):
    from dialogs.text import chinese_number

    assert chinese_number(typed) == number


@pytest.mark.parametrize("typed, number", [("五十人", 50), ("兩百", 200)])
def test_the_letter_and_the_screening_read_chinese_numerals_alike(typed, number):
    from dialogs.eligibility import employee_count

    assert validate_employees(typed) == number
    assert employee_count(typed, Context("U-test")) == number


# -- one normaliser for text that goes on the paper form (chat, console, imports, staff edits) ------------
@pytest.mark.parametrize("kind, typed, told", [
    ("company_name", "🍜阿明小吃店", "請不要使用表情符號或圖案：意向書要印出來簽名用印。"),
    ("products", "滷肉飯\x00便當", "內容裡有看不見的控制字元，請重新輸入。"),
    ("products", "滷肉飯\u202e便當", "內容裡有看不見的控制字元，請重新輸入。"),
    ("products", "這裡要寫什麼？", "這看起來是一個問題，不是答案。請直接輸入答案；如果想發問，可以點「常見問題」。"),
    ("address", "臺" * 81, "這超過表格欄位能容納的長度：最多 80 個字。"),
])
def test_form_text_refuses_what_paper_cannot_hold(kind, typed, told):
    from dialogs.validators import form_text

    assert refusal(lambda value, ctx=None: form_text(value, kind), typed) == told


def test_form_text_keeps_what_was_typed():
    from dialogs.validators import form_text

    assert form_text("  台灣ＰＯＳ　收銀 ", "products") == "台灣POS 收銀"
    assert form_text("要不要續約？", "", questions=False) == "要不要續約?"  # staff texts may ask


def test_an_import_row_with_an_emoji_is_refused_with_the_same_reason():
    from storage.imports import _check_previous

    row, problem = _check_previous(["22099131", "雲世代🚀計畫"], {"business_number": 0, "program_name": 1})
    assert row is None and problem == "請不要使用表情符號或圖案：意向書要印出來簽名用印。"
