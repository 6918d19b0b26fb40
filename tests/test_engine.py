"""The dialog engine, as transcripts: one question at a time, back, cancel, change, refusals, questions."""
from __future__ import annotations

import pytest

from dialogs.cards import card_lines
from dialogs.engine import Context, Conversation, Dialog, Intent, Outcome, Refused, Step, classify
from dialogs.i18n import use_locale
from dialogs.messages import Card, Choice, Text


def whole_number(value, ctx):
    if not value.isdigit():
        raise Refused("請輸入整數。")
    return int(value)


SIZE = [Choice("Small", "small"), Choice("Large", "large")]
saved = {}


def finish(ctx):
    saved[ctx.user_id] = dict(ctx.values)
    return Outcome([Text("已送出。")])


DEMO = Dialog(
    "demo",
    [
        Step("name", "What is the company's name?", label="Name"),
        Step("size", "How big?", choices=SIZE, label="Size"),
        Step("staff", "How many staff?", validate=whole_number, label="Staff",
             when=lambda ctx: ctx.values.get("size") == "large"),
        Step("city", "Which city?", label="City"),
    ],
    finish=finish,
    summary_title="Please check",
)


def faq(text, ctx, inside):
    if "截止" in text:
        return [Text("112年3月16日(四) 17:00 截止。")]
    return None if inside else [Text("不確定")]


def _calculator(ctx, text):
    return Outcome([Text("試算：請輸入家數。")])


def _thanks(ctx, text):
    return Outcome([Text("不客氣！")])


INTENTS = [Intent("calculator", ["提案試算", "calculator"], _calculator),
           Intent("thanks", ["謝謝"], _thanks, anywhere=True),
           Intent("demo", ["demo"], lambda ctx, text: Outcome(start="demo"))]


@pytest.fixture()
def chat():
    conv = Conversation({"demo": DEMO}, INTENTS, faq, menu=lambda c: [Text("選單")], help_text=lambda c: [Text("說明")],
                        contact=lambda c: [Text("聯絡窗口：(02)2553-3988")], menu_choices=lambda c: [Choice("資格檢查")])

    class Chat:
        state = None

        def start(self):
            ctx = Context("U1")
            self.state, messages = conv.start("demo", ctx)
            return [m.text for m in messages]

        def says(self, text):
            ctx = Context("U1")
            with use_locale("zh_TW"):
                self.state, messages = conv.handle(self.state, text, ctx)
            self.last = messages
            return [m.text if isinstance(m, Text) else m for m in messages]

    saved.clear()
    return Chat()


def test_one_question_at_a_time_with_buttons_and_a_summary(chat):
    assert chat.start() == ["What is the company's name?"]
    assert chat.says("小明商行") == ["How big?"]
    assert [c.value for c in chat.last[0].choices] == ["small", "large"]
    assert chat.says("large") == ["How many staff?"]
    assert chat.says("１２") == ["Which city?"]  # full-width digits are normalised
    card = chat.says("臺北市")[0]
    assert isinstance(card, Card)
    assert ("City", "臺北市") in card.rows
    assert chat.says("confirm") == ["已送出。"]
    assert saved["U1"] == {"name": "小明商行", "size": "large", "staff": 12, "city": "臺北市"}


def test_a_step_that_no_longer_applies_is_skipped_and_dropped(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("large")
    chat.says("12")
    chat.says("臺中市")
    assert chat.says("change:size") == ["How big?"]
    changed, card = chat.says("Small")
    assert changed == "已修改：\nSize: Small"
    assert isinstance(card, Card) and all(label != "Staff" for label, _ in card.rows)
    chat.says("確認送出")
    assert saved["U1"] == {"name": "小明商行", "size": "small", "city": "臺中市"}


def test_change_from_the_summary_asks_only_that_field(chat):
    chat.start()
    for answer in ("小明商行", "small", "臺中市"):
        chat.says(answer)
    assert chat.says("change:name") == ["What is the company's name?"]
    changed, card = chat.says("大明商行")
    assert changed == "已修改：\nName: 大明商行"
    assert ("Name", "大明商行") in card.rows
    assert chat.says("change:name") == ["What is the company's name?"]
    assert chat.says("大明商行")[0] == "沒有變更。"


def test_back_goes_to_the_previous_question(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("large")
    assert chat.says("上一步") == ["How big?"]
    assert chat.says("上一步") == ["What is the company's name?"]
    assert chat.says("上一步") == ["這已經是第一題了。", "What is the company's name?"]


def test_cancel_always_works_and_asks_before_it_discards_answers(chat):
    chat.start()
    assert chat.says("取消") == ["已取消，沒有儲存任何資料。"]  # nothing answered yet: nothing to lose
    chat.start()
    chat.says("小明商行")
    chat.says("large")
    assert chat.says("取消") == ["要放棄這份表單已填的 2 項答案（Name、Size）嗎？放棄後無法復原。"]
    assert [c.value for c in chat.last[0].choices] == ["discard", "keep_draft"]
    assert chat.says("keep_draft") == ["好的，填答都保留著。", "How many staff?"]
    chat.says("取消")
    assert chat.says("discard") == ["已取消，剛才填的答案已刪除。"]
    assert chat.state["dialog"] is None and saved == {} and "paused" not in chat.state
    assert chat.says("cancel") == ["目前沒有進行中的項目可以取消。"]


def test_three_refusals_offer_the_program_office(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("large")
    assert chat.says("很多") == ["請輸入整數。", "How many staff?"]
    assert chat.says("十幾個") == ["請輸入整數。", "How many staff?"]
    assert chat.says("不知道") == ["請輸入整數。", "聯絡窗口：(02)2553-3988", "How many staff?"]


def test_a_question_in_the_middle_is_answered_and_the_dialog_resumes(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("large")
    assert chat.says("請問截止日是什麼時候？") == ["112年3月16日(四) 17:00 截止。", "How many staff?"]
    assert chat.says("5") == ["Which city?"]


def test_state_is_plain_data_so_it_survives_a_restart(chat):
    import json

    chat.start()
    chat.says("小明商行")
    chat.state = json.loads(json.dumps(chat.state))  # what Redis or the database gives back
    assert chat.says("small") == ["Which city?"]


def test_menu_and_help_win_inside_a_dialog(chat):
    chat.start()
    assert chat.says("說明") == ["說明", "What is the company's name?"]
    assert chat.says("主選單") == ["選單"]  # nothing answered yet: nothing to keep
    assert chat.state["dialog"] is None


# -- item 1: input is classified before it fills a field --------------------------------------------
def test_classify_is_one_small_rule_for_every_step():
    name, size = DEMO.step("name"), DEMO.step("size")
    ctx = Context("U1")
    with use_locale("zh_TW"):
        assert classify("小明商行", name, ctx, INTENTS) == "answer"
        assert classify("calculator", name, ctx, INTENTS) == "global"  # a rich-menu postback
        assert classify("提案試算", name, ctx, INTENTS) == "global"
        assert classify("謝謝", name, ctx, INTENTS) == "small_talk"
        assert classify("這裡要寫什麼？", name, ctx, INTENTS) == "question"
        assert classify("請問聯絡人要填誰", name, ctx, INTENTS) == "question"
        assert classify("幾米咖啡館", name, ctx, INTENTS) == "maybe_question"
        assert classify("Small", size, ctx, INTENTS) == "answer"  # a button of the step always answers it


def test_a_menu_tap_in_a_dialog_pauses_it_and_nothing_is_stored(chat):
    chat.start()
    chat.says("小明商行")
    said = chat.says("calculator")
    assert said == ["已為您保留這份表單的填答。之後點「繼續填寫」或直接輸入「繼續填寫」，就會從剛才停下的地方接著填。",
                    "試算：請輸入家數。"]
    assert chat.state["dialog"] is None
    assert chat.last[-1].choices[0].value == "resume"  # "go on" comes first under the answer
    assert chat.says("resume") == ["從剛才停下的地方繼續填寫這份表單。", "How big?"]
    assert chat.state["values"] == {"name": "小明商行"}


def test_small_talk_is_answered_and_the_step_asked_again(chat):
    chat.start()
    assert chat.says("謝謝") == ["不客氣！", "What is the company's name?"]
    assert chat.state["values"] == {}


def test_a_known_question_is_answered_and_the_step_asked_again(chat):
    chat.start()
    assert chat.says("截止日是哪天？") == ["112年3月16日(四) 17:00 截止。", "What is the company's name?"]
    assert chat.state["values"] == {}


def test_an_unknown_question_is_never_stored_silently(chat):
    chat.start()
    said = chat.says("我的公司叫什麼名字？")
    assert said == ["我找不到「我的公司叫什麼名字?」的答案。這是您要填在「Name」的內容嗎？"]
    assert [c.value for c in chat.last[0].choices] == ["keep_answer", "not_answer"]
    assert chat.state["values"] == {}
    assert chat.says("not_answer") == ["What is the company's name?"]
    assert chat.says("哪裡好餐廳") == ["「哪裡好餐廳」是您要填在「Name」的內容嗎？"]  # a question word inside
    assert chat.says("keep_answer") == ["How big?"]  # one tap keeps it
    assert chat.state["values"] == {"name": "哪裡好餐廳"}


def test_a_new_answer_instead_of_the_tap_is_taken_as_the_answer(chat):
    chat.start()
    chat.says("怎麼填？")
    assert chat.says("小明商行") == ["How big?"]
    assert chat.state["values"] == {"name": "小明商行"}


# -- item 2: drafts are never lost by navigation -------------------------------------------------------
def test_the_menu_keeps_the_draft_and_go_on_resumes_at_the_exact_step(chat):
    chat.start()
    for answer in ("小明商行", "large", "12"):
        chat.says(answer)
    said = chat.says("主選單")
    assert said[0].startswith("已為您保留這份表單的填答") and said[1] == "選單"
    assert chat.says("繼續填寫") == ["從剛才停下的地方繼續填寫這份表單。", "Which city?"]
    assert chat.state["values"] == {"name": "小明商行", "size": "large", "staff": 12}


def test_starting_the_same_dialog_again_resumes_it(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("主選單")
    assert chat.says("demo") == ["從剛才停下的地方繼續填寫這份表單。", "How big?"]


def test_cancel_after_the_menu_asks_about_the_kept_draft(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("主選單")
    assert chat.says("取消") == ["要放棄這份表單已填的 1 項答案（Name）嗎？放棄後無法復原。"]
    assert chat.says("discard") == ["已取消，剛才填的答案已刪除。"]
    assert "paused" not in chat.state
    assert chat.says("繼續填寫") == ["目前沒有填到一半的項目。"]


def test_back_while_changing_from_the_summary_returns_to_the_summary(chat):
    chat.start()
    for answer in ("小明商行", "small", "臺中市"):
        chat.says(answer)
    assert chat.says("change:name") == ["What is the company's name?"]
    card = chat.says("上一步")[0]
    assert isinstance(card, Card) and ("Name", "小明商行") in card.rows  # the old value is back
    assert chat.says("confirm") == ["已送出。"]
    assert saved["U1"]["name"] == "小明商行"


def test_a_summary_button_tapped_again_while_changing_a_field_is_not_an_answer(chat):
    chat.start()
    for answer in ("小明商行", "small", "臺中市"):
        chat.says(answer)
    chat.says("change:name")
    said = chat.says("confirm")  # the earlier summary's 確認送出, while the name is asked
    assert said == ["這個按鈕屬於較早的訊息。請先回答下面的問題，或輸入「取消」停止填寫。", "What is the company's name?"]
    assert chat.says("summary_all")[-1] == "What is the company's name?"
    assert "name" not in chat.state["values"]


def test_a_long_summary_is_its_key_figures_and_every_field_is_one_tap_away():
    fields = [Step(f"f{n}", f"Field {n}?", label=f"Field {n}") for n in range(10)]
    long = Dialog("long", fields, finish, summary_title="Please check",
                  key_figures=lambda ctx: [("Field 0", ctx.values["f0"], "f0"), ("Filled in", "10", None)])
    conv = Conversation({"long": long}, [], faq, menu=lambda c: [], help_text=lambda c: [], contact=lambda c: [],
                        menu_choices=lambda c: [])
    ctx = Context("U2")
    with use_locale("zh_TW"):
        state, _said = conv.start("long", ctx)
        for n in range(10):
            state, said = conv.handle(state, f"答案{n}", ctx)
        (card,) = said
        assert card.rows == (("Field 0", "答案0"), ("Filled in", "10"))
        assert [a.value if a else None for a in card.row_actions] == ["change:f0", None]
        assert [a.value for a in card.actions] == ["confirm", "summary_all"]
        state, said = conv.handle(state, "summary_all", ctx)
    pages, prompt = said
    assert [row for page in pages.cards for row in page.rows] == [(f"Field {n}", f"答案{n}") for n in range(10)]
    assert all(card_lines(page) <= 12 for page in pages.cards)
    assert [c.value for c in prompt.choices] == ["confirm", "summary", "cancel"]


def test_a_question_at_the_summary_gets_a_short_prompt_not_the_card(chat):
    chat.start()
    for answer in ("小明商行", "small", "臺中市"):
        chat.says(answer)
    said = chat.says("截止日是哪天？")
    assert said == ["112年3月16日(四) 17:00 截止。", "都填好了。請點「確認送出」，或點「查看摘要」修改欄位。"]
    assert isinstance(chat.says("summary")[0], Card)


def test_a_draft_expires_after_its_time_and_the_person_is_told(chat):
    import time_machine
    from datetime import datetime, timedelta, timezone

    chat.start()
    chat.says("小明商行")
    chat.says("主選單")
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=29)):
        assert chat.says("繼續填寫")[-1] == "How big?"  # 29 days later: still there
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=60)):
        said = chat.says("繼續填寫")
    assert said[0] == "您未完成的填答已保留 30 天，現在已過期，請重新開始。"


def test_a_notice_is_said_once_a_day_and_remembered_with_the_state(chat):
    from dialogs.engine import Context as Ctx

    ctx = Ctx("U1")
    assert ctx.once_a_day("edition_notice", "2026-11-30") is True
    assert ctx.once_a_day("edition_notice", "2026-11-30") is False
    assert ctx.once_a_day("edition_notice", "2026-12-01") is True


def test_the_contact_offer_is_one_line_and_a_button():
    from dialogs.main import contact_offer

    with use_locale("zh_TW"):
        (offer,) = contact_offer(Context("U1"))
    assert offer.text.count("\n") == 1 and "(02)2553-3988 轉 603" in offer.text
    assert [c.value for c in offer.choices] == ["contact"]
