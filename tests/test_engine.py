"""The dialog engine, as transcripts: one question at a time, back, cancel, change, refusals, questions."""
from __future__ import annotations

import pytest

from dialogs.engine import Context, Conversation, Dialog, Outcome, Refused, Step
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


@pytest.fixture()
def chat():
    conv = Conversation({"demo": DEMO}, [], faq, menu=lambda c: [Text("選單")], help_text=lambda c: [Text("說明")],
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
    card = chat.says("Small")[0]
    assert isinstance(card, Card) and all(label != "Staff" for label, _ in card.rows)
    chat.says("確認送出")
    assert saved["U1"] == {"name": "小明商行", "size": "small", "city": "臺中市"}


def test_change_from_the_summary_asks_only_that_field(chat):
    chat.start()
    for answer in ("小明商行", "small", "臺中市"):
        chat.says(answer)
    assert chat.says("change:name") == ["What is the company's name?"]
    card = chat.says("大明商行")[0]
    assert ("Name", "大明商行") in card.rows


def test_back_goes_to_the_previous_question(chat):
    chat.start()
    chat.says("小明商行")
    chat.says("large")
    assert chat.says("上一步") == ["How big?"]
    assert chat.says("上一步") == ["What is the company's name?"]
    assert chat.says("上一步") == ["這已經是第一題了。", "What is the company's name?"]


def test_cancel_always_works_and_keeps_nothing(chat):
    chat.start()
    chat.says("小明商行")
    assert chat.says("取消") == ["已取消，沒有儲存任何資料。"]
    assert chat.state["dialog"] is None and saved == {}
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
    assert chat.says("主選單") == ["選單"]
    assert chat.state["dialog"] is None
