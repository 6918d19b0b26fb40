"""名單狀態 in the chat, as a proposer contact lives it (both backends, through the mock LINE platform)."""
from __future__ import annotations

import io
from urllib.parse import urlparse

import openpyxl
import pytest
import time_machine
from datetime import datetime, timedelta, timezone

from dialogs.messages import Card, Carousel, Choice, from_dict, to_dict
from tests.letter_support import last_buttons, quick, uris
from tests.roster_support import add_owner, link_proposer, make_case, twelve_owner_case, user_id

PROPOSER = "U" + "0c" * 16
STRANGER = "U" + "0d" * 16


@pytest.fixture()
def chat(bot):
    return quick(bot)


def card_lines(text: str) -> dict[str, str]:
    """The altText of a card ("title\\nlabel: value\\n…"), or of its pages, as {label: value}."""
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def carousels(bot, user: str) -> list[dict]:
    """The carousels of enterprises (the status, when long, is a carousel of its pages too)."""
    return [m["contents"] for m in bot.line.messages_to(user)
            if m.get("type") == "flex" and m["contents"]["type"] == "carousel" and m["altText"].startswith("企業第")]


def bubble_texts(bubble: dict) -> list[str]:
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "text":
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bubble)
    return found


def test_a_proposer_sees_the_numbers_and_flags_of_their_case(chat):
    bot = chat
    case, _other, duplicated = twelve_owner_case(bot.services)
    said = bot.says(PROPOSER, case.proposer_code)
    assert said[0].startswith("您已成為「好客數位共好計畫」")

    said = bot.says(PROPOSER, "名單狀態")
    assert said[0].startswith("「好客數位共好計畫」名單狀態")
    rows = card_lines(said[0])
    assert rows["已加入企業"] == "12（預定 60 家）"
    assert rows["合作意向書"] == "已送出 5、填寫中 1、未開始 6"
    assert rows["提案時應附意向書"].startswith("6 份（60 家的 10%，無條件進位）：⚠ 尚缺 1 份")
    assert rows["目前級距"].startswith("未達級距：再增加 38 家可達最低 50 家（級距 A，上限新臺幣150萬元）")
    assert rows["員工超過 9 人"].startswith("⚠ 1 家（本類型不得納入）")
    assert rows["統編與其他案件重複"] == "1"
    assert rows["當年度參與其他計畫"] == "0"
    assert rows["列於前期計畫名單"] == "0"
    assert rows["資格檢查結果不符"] == "0"
    assert rows["已完成前測"] == "0 / 12" and rows["已完成後測"] == "0 / 12"
    assert said[1].startswith("本案的預定輔導企業彙總表（附件一）Excel 檔")
    assert said[2] == "企業第 1–12 家，共 12 家"  # the carousel's altText

    (carousel,) = carousels(bot, PROPOSER)
    assert len(carousel["contents"]) == 12
    texts = [bubble_texts(b) for b in carousel["contents"]]
    assert texts[0][0] == "1. 第1號小店" and "已送出" in texts[0]
    assert "22099000" not in texts[0]
    assert duplicated in texts[1] and "⚠ 統一編號重複" in texts[1]
    assert any(t.startswith("⚠ 12 人") for t in texts[3]) and "⚠ 員工超過 9 人" in texts[3]
    assert [i for i, t in enumerate(texts) if any(x.startswith("⚠") for x in t[1:])] == [1, 3]
    assert texts[5][0] == "6. 第6號小店" and "填寫中" in texts[5]
    assert texts[6][0] == "7. 第 7 家企業（尚未填寫）" and "未開始" in texts[6]
    # no contact data of the owners in the chat
    assert not any("王小明" in t or "0912" in t or "@" in t for bubble in texts for t in bubble)


def test_more_pages_through_the_enterprises_twelve_at_a_time(chat):
    bot = chat
    case = make_case(bot.services, planned_count=0)
    for n in range(1, 15):
        add_owner(bot.services, case.id, n, submitted=False)
    link_proposer(bot.services, case.id, PROPOSER)
    said = bot.says(PROPOSER, "roster")
    assert card_lines(said[0])["已加入企業"] == "14"
    assert card_lines(said[0])["提案時應附意向書"].startswith("2 份（14 家的 10%")  # planned not set: the joined count
    assert said[-1] == "企業第 1–12 家，共 14 家"
    assert last_buttons(bot, PROPOSER)[0] == ("更多", f"roster:{case.id}:2")

    said = bot.taps(PROPOSER, f"roster:{case.id}:2")
    assert said[0] == "企業第 13–14 家，共 14 家"
    assert [len(c["contents"]) for c in carousels(bot, PROPOSER)] == [12, 2]


def test_owners_and_other_proposers_see_nothing_of_the_case(chat):
    bot = chat
    case, other, _number = twelve_owner_case(bot.services)
    owner = user_id(case.id, 1)
    said = bot.says(owner, "名單狀態")
    assert said[0].startswith("名單狀態僅供提案單位聯絡人查看")
    said = bot.taps(owner, f"roster:{case.id}")  # a hand-made postback
    assert said[0].startswith("名單狀態僅供提案單位聯絡人查看")

    link_proposer(bot.services, other.id, STRANGER)
    said = bot.taps(STRANGER, f"roster:{case.id}:1")
    assert said[0].startswith("名單狀態僅供提案單位聯絡人查看")
    said = bot.says(STRANGER, "名單狀態")  # their own case only
    assert said[0].startswith("「別人的計畫」名單狀態")
    assert "好客" not in " ".join(said)


def test_a_proposer_of_two_cases_chooses_one(chat):
    bot = chat
    first = make_case(bot.services)
    second = make_case(bot.services, plan_name="第二個計畫")
    link_proposer(bot.services, first.id, PROPOSER)
    link_proposer(bot.services, second.id, PROPOSER)
    said = bot.says(PROPOSER, "名單狀態")
    assert said == ["您是 2 個案件的提案單位聯絡人，要查看哪一案？"]
    assert last_buttons(bot, PROPOSER) == [("好客數位共好計畫", f"roster:{first.id}"),
                                           ("第二個計畫", f"roster:{second.id}")]
    said = bot.taps(PROPOSER, f"roster:{second.id}")
    assert said[0].startswith("「第二個計畫」名單狀態")
    assert said[-1] == "目前還沒有企業加入。企業負責人可用邀請碼 {} 加入本案。".format(second.owner_code)


def test_the_proposer_downloads_the_roster_through_a_signed_link_that_expires(chat):
    bot = chat
    case, _other, duplicated = twelve_owner_case(bot.services)
    link_proposer(bot.services, case.id, PROPOSER)
    bot.says(PROPOSER, "名單狀態")
    (link,) = [u for u in uris(bot, PROPOSER) if "/d/roster/" in u]
    path = urlparse(link).path
    response = bot.client.get(path)
    assert response.status_code == 200
    sheet = openpyxl.load_workbook(io.BytesIO(response.data), read_only=True).worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:2] == ("序", "統編") and len(rows) == 13
    assert rows[2][1] == duplicated and "duplicate" in rows[2][9]

    assert bot.client.get(path[:-3] + "abc").status_code == 403
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(hours=25)):
        assert bot.client.get(path).status_code == 410
    with bot.services.db.session() as s:  # no longer the proposer contact: the link stops working
        from storage.letters import CaseMember
        s.query(CaseMember).filter(CaseMember.user_id == PROPOSER).delete()
    assert bot.client.get(path).status_code == 410


def test_a_carousel_survives_the_outbox_and_keeps_within_line_limits():
    from bot.render import carousel_flex

    cards = tuple(Card(f"企業 {i}", rows=(("標記", "⚠ " + "很長的說明" * 300),)) for i in range(15))
    message = Carousel(cards, "企業")
    assert from_dict(to_dict(message)) == message
    rendered = carousel_flex(message).to_dict()
    import json

    size = len(json.dumps(rendered["contents"], ensure_ascii=False, separators=(",", ":")).encode())
    assert 1 <= len(rendered["contents"]["contents"]) <= 12 and size <= 50_000
    assert carousel_flex(Carousel((Card("一", rows=(("a", "b"),), actions=(Choice("更多", "more"),)),))).to_dict()[
        "contents"]["type"] == "carousel"
