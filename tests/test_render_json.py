"""render_json (the worker's fast path) writes exactly the JSON the SDK's models would."""
from __future__ import annotations

import pytest

from bot.render import render, render_json
from dialogs.messages import Card, Choice, Image, Link, Text

MENU = tuple(Choice(label, value) for label, value in [("資格檢查", "eligibility"), ("提案試算", "calculator"),
                                                       ("聯絡窗口", "contact")])
ANSWERS = {
    "a plain text": [Text("你好")],
    "an empty text": [Text("")],
    "a text with choices": [Text("請選擇", MENU)],
    "more than 13 choices, long labels and data": [
        Text("選一個", tuple(Choice(f"很長很長很長很長很長很長很長的選項 {i}", "v" * 400) for i in range(20)))],
    "a text over 5,000 units, split": [Text(("第一段很長的說明。" * 400 + "\n") * 3, MENU)],
    "more than five messages, merged": [Text(f"第 {i} 則") for i in range(8)] + [Text("最後", MENU)],
    "a card, a link and an image among texts": [
        Text("摘要如下"), Card("意向書", rows=(("企業", "共好股份有限公司"), ("統編", "04595257")),
                               actions=(Choice("送出", "submit"),)),
        Link("下載文件", "下載", "https://example.com/doc.pdf"), Image("https://example.com/a.png"), Text("完成", MENU)],
}


@pytest.mark.parametrize("name", list(ANSWERS))
def test_render_json_equals_the_sdk_models_json(name):
    messages = ANSWERS[name]
    assert render_json(messages) == [m.to_dict() for m in render(messages)]


def test_more_than_five_messages_merge_the_texts_shortest_together_first():
    long = "\n".join(["一行"] * 11)
    messages = [Text(long), Text(long), Text("甲"), Text("乙"), Text(long), Text("丙"), Text("問題？", MENU)]
    texts = [m["text"] for m in render_json(messages)]
    assert texts == [long, long, "甲\n\n乙", long, "丙\n\n問題？"]  # no bubble of 23 lines
