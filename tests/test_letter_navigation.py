"""The letter of intent when the owner wanders: questions, menu taps, the menu, cancel, back, odd text.

Transcripts through the whole bot (both backends, the mock LINE platform), one per point of
issue 10's items 1–3, and the full letter of its "Done when".
"""
from __future__ import annotations

import csv
import re
import io

import pytest

from dialogs.letter_doc import docx_text
from bot.exports import export
from tests import phone
from tests.letter_support import OWNER, answers, last_buttons, letter_row, make_case, path_of, quick, uris

OWNER_ID = "U" + "1c" * 16
ASK_NAME = "請問企業名稱？（請填登記的全名）"
ASK_CONTACT = "聯絡人是哪一位？請輸入全名。"
ASK_PRODUCTS = "主要服務或產品是什麼？"


@pytest.fixture()
def chat(bot):
    return quick(bot)


def start_letter(bot, case) -> None:
    bot.says(OWNER_ID, case.owner_code)
    assert bot.taps(OWNER_ID, "agree")[-1] == ASK_NAME


def answer_up_to(bot, count: int) -> list[str]:
    said = []
    for answer in answers()[:count]:
        said = bot.says(OWNER_ID, answer)
    return said


def card_buttons(message: dict) -> list[tuple[str, str]]:
    """(label, data) of every postback button of a Flex message, top to bottom, page after page."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "button" and node["action"].get("type") == "postback":
                found.append((node["action"]["label"], node["action"]["data"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("contents"))
    return found


def draft_values(bot) -> dict:
    state = bot.services.store.load_state(OWNER_ID) or {}
    return dict(state.get("values") or {})


# -- item 1: input is classified before it fills a field -----------------------------------------------
def test_a_menu_tap_at_a_question_pauses_the_letter_and_fills_nothing(chat):
    bot = chat
    case = make_case(bot.services)
    start_letter(bot, case)
    said = bot.taps(OWNER_ID, "faq")  # 常見問題 on the rich menu, at 企業名稱
    assert said == ["可以直接用自己的話問我，或點選下方的常見問題："]  # nothing answered yet: nothing to keep
    assert letter_row(bot.services, OWNER_ID, case.id).company_name is None
    assert bot.taps(OWNER_ID, f"fill:{case.id}")[-1] == ASK_NAME
    answer_up_to(bot, 5)
    said = bot.taps(OWNER_ID, "calculator")  # 提案試算 at 主要服務
    assert said[0] == ("已為您保留企業合作意向書的填答。之後點「繼續填寫」或直接輸入「繼續填寫」，"
                       "就會從剛才停下的地方接著填。")
    assert "products" not in (bot.services.store.load_state(OWNER_ID)["paused"][-1]["values"])
    assert bot.says(OWNER_ID, "取消") == ["已取消，沒有儲存任何資料。"]  # the calculator, which had no answers
    assert last_buttons(bot, OWNER_ID)[0] == ("繼續填寫", "resume")  # the letter waits
    assert bot.taps(OWNER_ID, "resume")[-1] == ASK_PRODUCTS
    assert len(draft_values(bot)) == 6


def test_a_known_question_at_a_free_text_step_is_answered_and_asked_again(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    said = bot.says(OWNER_ID, "稅籍登記可以嗎？")
    assert said[0].startswith("可以。小微型企業包含「僅辦理稅籍登記之營利事業」")
    assert said[-1] == ASK_NAME
    assert draft_values(bot) == {}


def test_a_question_we_do_not_know_is_never_stored(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    answer_up_to(bot, 7)
    said = bot.says(OWNER_ID, "聯絡人要填老闆還是員工？")
    assert "contact_name" not in draft_values(bot)
    assert said[-1] == ASK_CONTACT
    said = bot.says(OWNER_ID, "我的公司叫什麼名字？")
    assert said[0].startswith("這看起來是一個問題，不是答案。") and "contact_name" not in draft_values(bot)


def test_text_that_may_be_a_question_is_kept_only_after_one_tap(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    said = bot.says(OWNER_ID, "可以吃早午餐")  # a real name with a question word in it
    assert said == ["「可以吃早午餐」是您要填在「企業名稱」的內容嗎？"]
    assert last_buttons(bot, OWNER_ID) == [("是，就填這個", "keep_answer"), ("否", "not_answer")]
    assert draft_values(bot) == {}
    assert bot.taps(OWNER_ID, "keep_answer") == ["統一編號是多少？（8 位數字）"]
    assert draft_values(bot) == {"company_name": "可以吃早午餐"}


# -- item 2: drafts are never lost by navigation ----------------------------------------------------
def test_the_menu_and_go_on_keep_a_fourteen_answer_draft(chat):
    bot = chat
    case = make_case(bot.services)
    start_letter(bot, case)
    answer_up_to(bot, 13)  # 14 values: 臺北市大安區 answers county and town
    before = draft_values(bot)
    assert len(before) == 14
    said = bot.says(OWNER_ID, "主選單")
    assert said[0].startswith("已為您保留企業合作意向書的填答")
    assert last_buttons(bot, OWNER_ID)[0] == ("繼續填寫", "resume")
    said = bot.says(OWNER_ID, "我的意向書")
    assert said == ["您在「好客數位共好計畫」的意向書尚未送出。"]
    said = bot.taps(OWNER_ID, f"fill:{case.id}")  # its 繼續填寫 button
    assert said == ["從剛才停下的地方繼續填寫企業合作意向書。", said[-1]]
    assert said[-1].startswith("意向書第二項：企業同意接受推動企業數位共好計畫輔導，並最遲於 112年7月31日(一) 完成導入")
    assert draft_values(bot) == before


def test_cancel_asks_and_says_what_will_be_lost(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    answer_up_to(bot, 2)
    said = bot.says(OWNER_ID, "取消")
    assert said == ["要放棄企業合作意向書已填的 2 項答案（企業名稱、統一編號）嗎？放棄後無法復原。"]
    assert last_buttons(bot, OWNER_ID) == [("確定放棄", "discard"), ("繼續填寫", "keep_draft")]
    assert bot.taps(OWNER_ID, "keep_draft") == ["好的，填答都保留著。", "企業型態是哪一種？"]
    assert len(draft_values(bot)) == 2


def test_back_during_a_change_from_the_summary_returns_to_the_summary(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    said = answer_up_to(bot, len(answers()))
    assert "請確認您的企業合作意向書" in said[-1]
    assert bot.taps(OWNER_ID, "change:email") == ["E-mail 是？"]
    assert bot.says(OWNER_ID, "上一步") == [SHORT_SUMMARY]
    assert draft_values(bot)["undertaking_六"] == "agree"  # no undertaking was cleared
    assert draft_values(bot)["email"] == OWNER["email"]


def test_a_question_at_the_summary_gets_a_short_answer(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    answer_up_to(bot, len(answers()))
    said = bot.says(OWNER_ID, "截止日是哪天？")
    assert said[0].startswith("提案申請截止時間為112年3月16日")
    assert said[-1] == "都填好了。請點「確認送出」，或點「查看摘要」修改欄位。"
    assert len(said) == 2


# -- item 5: short messages ------------------------------------------------------------------------
SHORT_SUMMARY = ("請確認您的企業合作意向書\n企業名稱: 好客小吃店\n統一編號: 22099131\n聯絡人: 王小明 0912-345-678\n"
                 "承諾事項（附件二 二～六）: 5 項都已同意")
EVERY_FIELD = ("company_name", "business_number", "company_type", "employees", "county", "town", "products",
               "other_programs", "contact_name", "mobile", "phone", "email", "representative", "address",
               "undertaking_二", "undertaking_三", "undertaking_四", "undertaking_五", "undertaking_六")


def test_the_summary_is_a_short_card_and_every_field_is_one_tap_away(chat):
    bot = chat
    case = make_case(bot.services)
    start_letter(bot, case)
    assert answer_up_to(bot, len(answers()))[-1] == SHORT_SUMMARY
    summary = bot.line.messages_to(OWNER_ID)[-1]
    assert [lines for lines, _text in phone.bubbles(summary)] == [11]  # a phone shows it whole (≤ 12 lines)
    assert card_buttons(summary) == [("修改", "change:company_name"), ("修改", "change:business_number"),
                                     ("修改", "change:contact_name"), ("確認送出", "confirm"),
                                     ("看全部欄位／修改", "summary_all")]

    said = bot.taps(OWNER_ID, "summary_all")  # every field, in pages a phone shows whole, "change" beside each
    assert said[-1] == "要修改請點欄位旁的「修改」；都正確就點「確認送出」。"
    assert last_buttons(bot, OWNER_ID) == [("確認送出", "confirm"), ("查看摘要", "summary"), ("取消", "cancel")]
    pages = bot.line.messages_to(OWNER_ID)[-2]
    assert len(phone.bubbles(pages)) > 1 and all(lines <= phone.LIMIT for lines, _text in phone.bubbles(pages))
    assert [data for _label, data in card_buttons(pages)] == [f"change:{field}" for field in EVERY_FIELD]
    assert "地址: 臺北市大安區和平東路一段1號" in said[0] and "五、配合查驗抽測與問卷: 已同意" in said[0]

    assert bot.taps(OWNER_ID, "change:email") == ["E-mail 是？"]
    assert bot.says(OWNER_ID, "上一步") == [SHORT_SUMMARY]  # back at the summary, nothing changed
    bot.taps(OWNER_ID, "change:email")
    assert bot.says(OWNER_ID, "ming@example.com.tw") == ["已修改：\nE-mail: ming@example.com.tw", SHORT_SUMMARY]
    assert bot.says(OWNER_ID, "修改聯絡人") == [ASK_CONTACT]  # typed, not tapped
    said = bot.says(OWNER_ID, "王大明")
    assert said == ["已修改：\n聯絡人: 王大明", SHORT_SUMMARY.replace("王小明", "王大明")]
    assert any("已送給" in t for t in bot.taps(OWNER_ID, "confirm"))
    letter = letter_row(bot.services, OWNER_ID, case.id)
    assert (letter.email, letter.contact_name, letter.products) == ("ming@example.com.tw", "王大明", OWNER["products"])


# -- item 3: fields accept what the paper form accepts ---------------------------------------------
@pytest.mark.parametrize("at, typed, told", [
    (0, "🍜阿明小吃店", "請不要使用表情符號或圖案：意向書要印出來簽名用印。"),
    (5, "滷肉飯\u202e便當", "內容裡有看不見的控制字元，請重新輸入。"),  # a right-to-left override
    (5, "這裡要寫什麼？", "這看起來是一個問題，不是答案。請直接輸入主要服務或產品；如果想發問，可以點「常見問題」。"),
    (5, "滷肉飯" * 20, "這超過表格欄位能容納的長度：最多 50 個字。"),
    (12, "臺北市大安區和平東路一段1號🏠", "請不要使用表情符號或圖案：意向書要印出來簽名用印。"),
])
def test_fields_refuse_what_the_paper_form_cannot_hold(chat, at, typed, told):
    bot = chat
    start_letter(bot, make_case(bot.services))
    before = answer_up_to(bot, at)
    said = bot.says(OWNER_ID, typed)
    assert said[0] == told
    assert said[-1] == (before[-1] if before else ASK_NAME)


# -- the full letter of "Done when" ----------------------------------------------------------------------
def test_a_wandering_owner_sends_exactly_the_intended_letter(chat, tmp_path):
    """Three questions, two menu taps, 主選單, back again, two changes from the summary, then send."""
    bot = chat
    case = make_case(bot.services)
    start_letter(bot, case)
    plan = answers()
    asked_questions = {1: "稅籍登記可以嗎？", 6: "截止日是哪天？", 12: "員工超過9人可以嗎？"}
    menu_taps = {3: "faq", 9: "calculator"}
    for index, answer in enumerate(plan):
        if index in asked_questions:
            said = bot.says(OWNER_ID, asked_questions[index])
            assert len(said) == 2 and "（依據：" in said[0], said  # answered with its paragraph, then asked again
        if index in menu_taps:
            said = bot.taps(OWNER_ID, menu_taps[index])
            assert said[0].startswith("已為您保留企業合作意向書的填答")
            if menu_taps[index] == "calculator":
                bot.says(OWNER_ID, "主選單")  # leaves the calculator; the letter stays aside
            assert bot.taps(OWNER_ID, "resume")[0] == "從剛才停下的地方繼續填寫企業合作意向書。"
        if index == 11:
            said = bot.says(OWNER_ID, "主選單")
            assert said[0].startswith("已為您保留企業合作意向書的填答")
            assert bot.says(OWNER_ID, "我的意向書") == ["您在「好客數位共好計畫」的意向書尚未送出。"]
            bot.taps(OWNER_ID, f"fill:{case.id}")
        said = bot.says(OWNER_ID, answer)
    assert "請確認您的企業合作意向書" in said[-1]

    # two changes from the summary (one of them abandoned with 上一步 first)
    assert bot.taps(OWNER_ID, "change:products") == [ASK_PRODUCTS]
    assert bot.says(OWNER_ID, "上一步") == [SHORT_SUMMARY]
    bot.taps(OWNER_ID, "change:products")
    assert bot.says(OWNER_ID, "牛肉麵與小菜") == ["已修改：\n主要服務/產品: 牛肉麵與小菜", SHORT_SUMMARY]
    bot.taps(OWNER_ID, "change:employees")
    assert bot.says(OWNER_ID, "七人") == ["已修改：\n員工人數: 7 人", SHORT_SUMMARY]
    said = bot.taps(OWNER_ID, "confirm")
    assert any("已送給" in t for t in said), said

    letter = letter_row(bot.services, OWNER_ID, case.id)
    intended = dict(company_name=OWNER["company"], business_number=OWNER["number"], company_type=1, employees=7,
                    county_code="63000", town_code="63000030", products="牛肉麵與小菜", other_programs=False,
                    contact_name=OWNER["contact"], mobile="+886912345678", phone="+886225533988", phone_ext="603",
                    email=OWNER["email"], representative=OWNER["representative"], address=OWNER["address"])
    assert {k: getattr(letter, k) for k in intended} == intended

    document = docx_text(bot.client.get(path_of(uris(bot, OWNER_ID)[-1])).data)
    for expected in (OWNER["company"], OWNER["number"], "員工人數：7 人", "牛肉麵與小菜", OWNER["contact"],
                     OWNER["representative"], OWNER["address"], OWNER["email"]):
        assert expected in document, expected
    for stray in ("faq", "calculator", "稅籍登記可以嗎", "截止日", "滷肉飯", "主選單"):
        assert stray not in document, stray

    path = tmp_path / "roster.csv"
    assert export(bot.services.db, "roster", "csv", str(path), case_id=case.id) == 1
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8-sig"))))
    assert rows[1][:8] == ["1", OWNER["number"], "7", OWNER["company"], "臺北市/大安區", "牛肉麵與小菜", "1", "否"]


# -- item 8: 我的資料 shows everything kept; 刪除我的資料 works from inside any dialog ------------------------
def test_my_data_shows_everything_and_delete_works_from_inside_the_letter(chat):
    from storage import letters as store
    from storage.reminders import record_self_report, set_reminders_paused

    bot = chat
    case = make_case(bot.services)
    with bot.services.db.session() as s:
        store.save_screening(s, OWNER_ID, {"answers": {"registration": "company", "employees": "5"},
                                            "outcome": "eligible", "edition": 112, "at": "2023-03-01T09:00:00+08:00"})
    record_self_report(bot.services.db, OWNER_ID, "pre_test")
    set_reminders_paused(bot.services.db, OWNER_ID, True)
    start_letter(bot, case)
    answer_up_to(bot, 4)

    said = bot.says(OWNER_ID, "我的資料")  # inside the letter: it pauses, shows, and the letter waits
    shown = "\n".join(said)
    assert "• 您在 112年3月1日(三) 09:00 做的資格檢查：看起來符合資格；這 2 項答案會隨您送出的意向書一起提供。" in shown
    assert "已完成數位能力評量前測" in shown
    assert "• 提醒：依您的要求已停止（輸入「恢復提醒」可再收到）。" in shown
    assert "• 對話中未完成的填答：企業合作意向書，共 4 項，保留到 " in shown

    bot.says(OWNER_ID, "繼續填寫")
    said = bot.says(OWNER_ID, "刪除我的資料")  # from inside the letter again
    assert said[0].startswith("已為您保留企業合作意向書的填答") and "無法復原" in said[1]
    said = bot.taps(OWNER_ID, "delete")
    assert said[0].startswith("完成：您的個人資料已刪除。")
    state = bot.services.store.load_state(OWNER_ID) or {}
    assert not state.get("paused") and not state.get("values")  # the chat's draft went with the rest
    assert OWNER["company"] not in str(state)
    assert bot.says(OWNER_ID, "繼續填寫") == ["目前沒有填到一半的項目。"]


# -- item 4: the bot knows its own steps and small talk -------------------------------------------------
def test_small_talk_is_answered_briefly_even_inside_the_letter(chat):
    bot = chat
    start_letter(bot, make_case(bot.services))
    assert bot.says(OWNER_ID, "謝謝") == ["不客氣！還有問題隨時問我。", ASK_NAME]
    said = bot.says(OWNER_ID, "你是真人嗎")
    assert said[0].startswith("我是共好小幫手，是自動回覆的聊天機器人") and said[-1] == ASK_NAME
    assert draft_values(bot) == {}


def test_questions_about_the_bots_own_steps_lead_to_the_feature(chat):
    bot = chat
    said = bot.says(OWNER_ID, "意向書要蓋大小章嗎")
    assert said[-1].startswith("要。附件二的立約人欄有「公司大小章」")
    assert said[0].startswith("目前沒有涵蓋今天的年度計畫")  # no edition covers today (the tests run after 112)
    said = bot.says(OWNER_ID, "資料填錯了怎麼改")
    assert said == [said[-1]] and said[-1].startswith("送出後仍可更正")  # item 5: that notice once a day
    assert ("更正", "correct") in last_buttons(bot, OWNER_ID)
    said = bot.says(OWNER_ID, "不要再提醒我了")
    from storage.reminders import reminders_paused
    assert reminders_paused(bot.services.db, OWNER_ID)


# -- item 6: one way to write dates and phones ---------------------------------------------------------
def test_phones_and_the_consent_time_are_written_one_way(chat):
    bot = chat
    bot.says(OWNER_ID, make_case(bot.services).owner_code)
    said = bot.taps(OWNER_ID, "agree")
    assert re.match(r"謝謝您。已於 1\d\d年\d{1,2}月\d{1,2}日\([一二三四五六日]\) \d\d:\d\d 記錄您的同意", said[0]), said[0]
    said = answer_up_to(bot, len(answers()))
    assert "聯絡人: 王小明 0912-345-678" in said[-1]
    said = bot.taps(OWNER_ID, "summary_all")
    assert "手機: 0912-345-678" in said[0] and "電話: (02)2553-3988 轉 603" in said[0]


def test_a_nul_in_the_products_never_reaches_the_letter_and_sending_works(chat):
    bot = chat
    case = make_case(bot.services)
    start_letter(bot, case)
    plan = answers()
    plan[5] = "滷肉飯\x00便當"
    for answer in plan:
        bot.says(OWNER_ID, answer)
    assert "主要服務/產品: 滷肉飯便當" in bot.taps(OWNER_ID, "summary_all")[0]  # removed where text enters the bot
    said = bot.taps(OWNER_ID, "confirm")
    assert any("已送給" in t for t in said), said
    assert letter_row(bot.services, OWNER_ID, case.id).products == "滷肉飯便當"


def test_a_half_filled_letter_is_reminded_once_before_it_expires(chat):
    from datetime import datetime, timedelta

    import time_machine

    from bot.reminders import ReminderSender
    from dialogs.dates import TAIPEI

    bot = chat
    start_letter(bot, make_case(bot.services))
    answer_up_to(bot, 3)
    soon = datetime.now(TAIPEI).replace(hour=10, minute=0) + timedelta(days=28)
    before = len(bot.line.messages_to(OWNER_ID))
    with time_machine.travel(soon - timedelta(days=5), tick=False):
        ReminderSender(bot.services).run_once()  # not yet: more than three days left
    assert len(bot.line.messages_to(OWNER_ID)) == before
    with time_machine.travel(soon, tick=False):
        ReminderSender(bot.services).run_once()
        ReminderSender(bot.services).run_once()  # once only
    (reminder,) = bot.line.messages_to(OWNER_ID)[before:]
    assert reminder["text"].startswith("您填到一半的企業合作意向書會保留到 ")
    assert [i["action"]["data"] for i in reminder["quickReply"]["items"]] == ["resume"]
    assert bot.taps(OWNER_ID, "resume")[-1] == "員工人數有幾人？"


# -- item 9: rule fidelity ------------------------------------------------------------------------------
def test_a_shared_business_number_states_no_rule_the_guidelines_do_not_contain():
    from dialogs.i18n import use_locale
    from dialogs.letter import own_flag_messages
    from storage.letters import Letter

    letter = Letter(flag_duplicate=True, flag_previous_program=False, flag_over_nine=False, flag_conflict=False)
    with use_locale("zh_TW"):
        assert own_flag_messages(letter, []) == ["⚠ 今年另有一份企業合作意向書使用相同的統一編號，計畫辦公室會與您確認。"]


def test_the_ten_percent_letters_are_due_on_a_day_without_a_time():
    from datetime import date

    from dialogs.calculator import calculate
    from dialogs.edition import edition_for
    from dialogs.i18n import use_locale

    edition = edition_for(case_edition=112)[0]
    due = calculate("popularization", 60, edition, today=date(2023, 3, 1)).letters_due
    with use_locale("zh_TW"):
        assert due.formatted() == "112年3月18日(六)"  # §陸.四.(四): 申請截止日後二日內, no hour given
