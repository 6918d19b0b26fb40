"""The input boundary where a person types: control characters, NUL and lone surrogates are refused in staff forms
with a clear message, and removed (and said so) in the terminal chat."""
from __future__ import annotations

import pytest

from storage.letters import Case
from tests.roster_support import console  # noqa: F401

CASE_FORM = dict(edition="112", case_type="popularization", theme="", proposer_name="好客雲端股份有限公司",
                 plan_name="好客數位共好計畫", vendor_name="好客雲端股份有限公司", solution_name="好客POS",
                 solution_content="雲端POS", sla="99.5%", period="112年5月1日至113年4月30日", other_content="",
                 planned_count="60")


@pytest.mark.parametrize("typed", ["好客\x00數位", "好客\x1b[31m數位", "好客\x7f數位", "好客\u0085數位"])
def test_a_staff_form_with_control_characters_is_refused_and_says_why(console, typed):
    admin = console.client("amy", "admin")
    response = admin.post("/staff/cases/new", data=dict(CASE_FORM, plan_name=typed,
                                                        csrf_token=console.token(admin, "/staff/cases/new")))
    assert response.status_code == 400
    assert "此欄含有看不見的控制字元" in response.get_data(as_text=True)
    with console.db.session() as s:
        assert s.query(Case).count() == 0
    fine = admin.post("/staff/cases/new", data=dict(CASE_FORM, plan_name="好客\t數位\n共好",
                                                    csrf_token=console.token(admin, "/staff/cases/new")))
    assert fine.status_code == 302  # tabs and line breaks are ordinary text


@pytest.mark.parametrize("language, note", [("zh-Hant", "已將其移除"), ("en", "were removed from what you typed")])
def test_the_terminal_chat_removes_control_characters_and_says_so(line, tmp_path, language, note):
    from bot.config import Config
    from bot.console import ConsoleChat

    config = Config(database_url=f"sqlite:///{tmp_path / 'chat.sqlite3'}", secret_key="k", reminders=False)
    chat = ConsoleChat("U" + "7e" * 16, language=language, config=config, mock=line)
    try:
        chat.follow()
        answer = chat.say("截止日\x00是哪天\x1b")
        first, rest = answer.split("\n\n", 1)
        assert note in first and rest.strip()  # said so, and the question was answered
        assert "\x00" not in answer
    finally:
        chat.services.inprocess_worker.stop()  # not chat.close(): the mock platform is the test session's
        chat.services.close()
