"""Issue 10 item 5, short messages: no bubble longer than about 12 lines on a phone.

The main dialogs are walked through the whole bot as an owner and a proposer would (eligibility
with each outcome, the letter with its summary, the calculator, every knowledge-base answer, 我的資料,
the tests, the roster), and every bubble LINE received is measured with the phone model of
tests/phone.py (20 full-width characters a line, explicit newlines, a button one line).
"""
from __future__ import annotations

import pytest

from bot.render import render_json
from dialogs import faq
from tests import phone
from tests.letter_support import answers, make_case, quick

OWNER = "U" + "5a" * 16
PROPOSER = "U" + "5b" * 16
OTHER = "U" + "5c" * 16


def until_done(bot, user: str, taps: list[str], then: str = "no", limit: int = 12) -> None:
    """Taps ``taps`` in order, then ``then`` until the dialog is over."""
    for value in taps:
        bot.taps(user, value)
    for _turn in range(limit):
        state = bot.services.store.load_state(user) or {}
        if not state.get("dialog"):
            return
        bot.taps(user, then)
    raise AssertionError("the dialog did not end")


def walk_the_eligibility_check(bot, user: str) -> None:
    until_done(bot, user, ["資格檢查", "company", "5"])  # eligible
    until_done(bot, user, ["資格檢查", "company", "12", "inclusion"])  # needs review: over 9 in 數位共融
    until_done(bot, user, ["資格檢查", "company", "4", "not_sure", "no", "no", "not_sure"])  # not sure: links
    until_done(bot, user, ["資格檢查", "none"])  # not eligible


def walk_the_calculator(bot, user: str) -> None:
    until_done(bot, user, ["提案試算", "popularization", "60"], then="skip")
    until_done(bot, user, ["提案試算", "inclusion", "regional", "35"], then="skip")
    until_done(bot, user, ["提案試算", "popularization", "20"], then="skip")


def walk_every_answer(bot, user: str) -> None:
    bot.says(user, "常見問題")
    kb = faq.KnowledgeBase.load(faq.DEFAULT_EDITION_DIR)
    for topic in kb.answerable:
        bot.taps(user, f"faq:{topic.id}")
    bot.says(user, "我想問一個很奇怪的問題")  # not sure: topics and the office


def walk_the_letter(bot, user: str, case) -> None:
    bot.says(user, case.owner_code)
    bot.taps(user, "agree")
    for answer in answers():
        bot.says(user, answer)
    bot.taps(user, "summary_all")
    bot.taps(user, "change:products")
    bot.says(user, "牛肉麵、滷肉飯、便當外送與各式小菜，另有中秋禮盒與年節團購")
    bot.says(user, "送出後還可以改嗎？")
    bot.taps(user, "confirm")
    for said in ("我的意向書", "更正", "撤回"):
        bot.says(user, said)
    bot.taps(user, "keep")


def walk_my_data_and_the_tests(bot, user: str) -> None:
    for said in ("我的資料", "前測", "後測", "已完成前測", "停止提醒", "恢復提醒", "主選單", "說明", "聯絡窗口"):
        bot.says(user, said)
    bot.says(user, "刪除我的資料")
    bot.taps(user, "keep")


def longest(bot, *users: str) -> list[tuple[int, str]]:
    found = []
    for user in users:
        for message in bot.line.messages_to(user):
            found += phone.bubbles(message)
    return sorted(found, key=lambda f: -f[0])


@pytest.mark.parametrize("bot", ["embedded"], indirect=True)
def test_no_bubble_of_the_main_dialogs_is_longer_than_twelve_lines(bot):
    quick(bot)
    case = make_case(bot.services)
    bot.follows(OWNER)
    walk_the_eligibility_check(bot, OWNER)
    walk_the_letter(bot, OWNER, case)
    walk_every_answer(bot, OWNER)
    walk_my_data_and_the_tests(bot, OWNER)
    bot.says(PROPOSER, case.proposer_code)
    walk_the_calculator(bot, PROPOSER)
    bot.says(PROPOSER, "名單狀態")
    measured = longest(bot, OWNER, PROPOSER)
    assert len(measured) > 120  # the walk reached every part
    too_long = [(lines, text[:60]) for lines, text in measured if lines > phone.LIMIT]
    assert too_long == [], "\n".join(f"{lines} lines: {text}" for lines, text in too_long)


@pytest.mark.parametrize("locale", ["zh_TW", "en"])
def test_every_answer_of_the_knowledge_base_fits_in_either_language(locale):
    """A long answer (English takes more room) is said in two texts, cut between sentences; zh_TW fits in one."""
    kb = faq.KnowledgeBase.load(faq.DEFAULT_EDITION_DIR)
    for topic in kb.answerable:
        messages = faq.topic_messages(topic, locale)
        measured = [lines for message in render_json(messages) for lines, _text in phone.bubbles(message)]
        assert max(measured) <= phone.LIMIT, (topic.id, measured)
        assert len(messages) == 1 or locale == "en", topic.id
        assert [len(m.choices) for m in messages] == [0] * (len(messages) - 1) + [len(topic.buttons)]  # under the last
