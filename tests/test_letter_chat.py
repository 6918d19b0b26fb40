"""The letter of intent in the chat, as an owner lives it (both backends, through the mock LINE platform)."""
from __future__ import annotations

import json

import pytest
import time_machine
from datetime import datetime, timedelta, timezone

from bot import create_app, start_embedded
from dialogs.letter_doc import docx_text, invite_qr_url
from storage import letters as store
from tests.conftest import Harness
from tests.letter_support import (OWNER, answers, every_redis_value, every_row, join_and_fill, last_buttons,
                                  letter_row, make_case, path_of, quick, uris)

OWNER_ID = "U" + "0a" * 16
OTHER_ID = "U" + "0b" * 16


@pytest.fixture()
def chat(bot):
    return quick(bot)


def test_an_owner_joins_fills_in_changes_sends_and_downloads_the_letter(chat):
    bot = chat
    case = make_case(bot.services)
    code = case.owner_code

    # the owners' LINE link types "加入 J-…"; people also type it in lower case
    said = bot.says(OWNER_ID, "加入 " + code.lower())
    assert said[0] == "歡迎加入好客雲端股份有限公司的「好客數位共好計畫」！我會協助您填寫企業合作意向書。"
    notice = said[1:4]  # the whole notice, in three texts a phone shows whole
    assert notice[0].startswith("在詢問您的企業資料之前") and "一、蒐集者：中華民國資訊軟體協會" in notice[0]
    assert notice[1].startswith("三、個人資料類別") and notice[2].startswith("五、您的權利")
    assert "privacy@cisanet.org.tw" in notice[2] and "臺北市大同區承德路二段239號6樓" in notice[2]
    assert notice[2].endswith("聲明版本 112-1。")
    assert said[4:] == ["您是否同意中華民國資訊軟體協會依上述聲明蒐集與利用您的個人資料？"]
    assert last_buttons(bot, OWNER_ID) == [("我同意", "agree"), ("我不同意", "decline")]
    with bot.services.db.session() as s:  # nothing about the person before the consent
        assert s.query(store.Letter).count() == 0

    said = bot.taps(OWNER_ID, "agree")
    assert said[0].startswith("謝謝您。已於 ") and "聲明版本 112-1" in said[0]
    assert said[1].startswith("您要加入的案件（附件二 二）")  # the case's part is shown, not asked
    assert "好客POS雲端收銀" in said[1] and "112年5月1日至113年4月30日" in said[1]
    assert said[-1] == "請問企業名稱？（請填登記的全名）"

    transcript = [
        ("好客小吃店", "統一編號是多少？（8 位數字）"),
        ("22099132", "這個統一編號未通過財政部的檢查碼驗證，請對照登記證明文件上的號碼再確認。"),
        ("22099131", "企業型態是哪一種？"),
        ("公司/商業登記", "員工人數有幾人？"),
        ("12人", "⚠ 員工 12 人已超過 9 人。數位普及輔導的輔導對象為 9 人(含)以下之小微型企業（§叁 輔導對象"),
        ("more", "其他縣市："),
        ("臺北市", "在臺北市的哪個鄉鎮市區？請點選按鈕，或直接輸入名稱。"),
        ("大安", "主要服務或產品是什麼？"),
        (OWNER["products"], "今年企業是否參與或申請其他政府相關輔導或補助計畫？"),
        ("無", "聯絡人是哪一位？請輸入全名。"),
        (OWNER["contact"], "聯絡人的手機號碼？"),
        ("０９１２－３４５－６７８", "企業的電話（含區碼）？有分機請寫在「轉」或「#」後面。"),
        (OWNER["phone"], "E-mail 是？"),
        ("wang.xiaoming@example", "「@」後面的網域需要有「.」，例如 gmail.com 或 company.com.tw。"),
        (OWNER["email"], "企業的代表人是哪一位？（與登記資料相同）"),
        (OWNER["representative"], "企業地址？"),
        (OWNER["address"], "意向書第二項：企業同意接受推動企業數位共好計畫輔導，並最遲於 112年7月31日(一) 完成導入"),
        ("好", "意向書第三項："),
        ("我同意", "意向書第四項："),
        ("同意", "意向書第五項："),
        ("agree", "意向書第六項："),
    ]
    for typed, expected in transcript:
        said = bot.says(OWNER_ID, typed)
        assert said[0].startswith(expected), (typed, said)
        if typed == "12人":  # a warning that cites the rule, not a refusal
            assert said[0].endswith("企業在哪裡？請選擇縣市，或直接輸入（例如：臺北市大安區）。")
        if typed == "more":  # the second page of counties: LINE shows at most 13 buttons
            labels = [label for label, _data in last_buttons(bot, OWNER_ID)]
            assert len(labels) <= 13 and "臺東縣" in labels and labels[-1] == "更多…"
    said = bot.says(OWNER_ID, "同意")
    assert said[-1] == ("請確認您的企業合作意向書\n企業名稱: 好客小吃店\n統一編號: 22099131\n⚠ 待確認事項: 員工超過 9 人\n"
                        "承諾事項（附件二 二～六）: 5 項都已同意")  # the key figures; the rest one tap away
    every_field = bot.taps(OWNER_ID, "summary_all")[0]
    for shown in ("企業名稱: 好客小吃店", "統一編號: 22099131", "員工人數: 12 人 ⚠ 超過 9 人，待確認（§叁 輔導對象）", "縣市: 臺北市", "鄉鎮市區: 大安區",
                  "手機: 0912-345-678", "電話: (02)2553-3988 轉 603", "E-mail: " + OWNER["email"],
                  "代表人: 林大同", "六、簽署後生效: 已同意"):
        assert shown in every_field, shown

    # a change from the summary, then the summary again
    said = bot.taps(OWNER_ID, "change:company_name")
    assert said == ["請問企業名稱？（請填登記的全名）"]
    said = bot.says(OWNER_ID, "好客小吃店有限公司")
    assert said[0] == "已修改：\n企業名稱: 好客小吃店有限公司"
    assert said[1].startswith("請確認您的企業合作意向書\n企業名稱: 好客小吃店有限公司\n")

    said = bot.taps(OWNER_ID, "confirm")
    assert said[0] == "謝謝您！「好客數位共好計畫」的企業合作意向書已送給好客雲端股份有限公司與計畫辦公室。"
    assert "已標記待確認：員工超過 9 人" in said[1]
    assert said[2].startswith("您的企業合作意向書已填好，是 Word 檔。")

    letter = letter_row(bot.services, OWNER_ID, case.id)
    assert (letter.status, letter.version, letter.company_name, letter.business_number) == \
        ("submitted", 1, "好客小吃店有限公司", "22099131")
    assert (letter.company_type, letter.employees, letter.county_code, letter.town_code) == (1, 12, "63000", "63000030")
    assert (letter.mobile, letter.phone, letter.phone_ext) == ("+886912345678", "+886225533988", "603")
    assert (letter.email, letter.other_programs, letter.flag_over_nine) == (OWNER["email"], False, True)
    assert json.loads(letter.undertakings) == {"二": True, "三": True, "四": True, "五": True, "六": True}
    assert letter.undertakings_at is not None and letter.submitted_at is not None

    # the download: a filled 附件二 through a signed link
    url = uris(bot, OWNER_ID)[-1]
    assert url.startswith("http://127.0.0.1:8000/d/letter/")
    response = bot.client.get(path_of(url))
    assert response.status_code == 200
    assert response.mimetype.endswith("wordprocessingml.document")
    text = docx_text(response.data)
    for expected in ("112 年推動企業數位共好計畫-「好客數位共好計畫」", "企業合作意向書", "好客小吃店有限公司", "22099131",
                     "■依法設立之企業(公司登/商登)", "員工人數：12 人", "王小明", "0912-345-678",
                     "(02)2553-3988 轉 603", OWNER["email"], "臺北市/大安區", OWNER["products"], "林大同",
                     OWNER["address"], "好客POS雲端收銀", "公司大小章", "privacy@cisanet.org.tw"):
        assert expected in text, expected

    # a changed link is refused; an old one has expired
    assert bot.client.get(path_of(url)[:-3] + "abc").status_code == 403
    with time_machine.travel(datetime.now(timezone.utc) + timedelta(days=8), tick=False):
        expired = bot.client.get(path_of(url))
    assert expired.status_code == 410 and "已過期" in expired.get_data(as_text=True)

    # the audit log knows what happened, never to whom
    rows = every_row(bot.services)["audit_log"]
    assert any("letter.submitted" in r for r in rows) and any("letter.document" in r for r in rows)
    assert not [r for r in rows if "王小明" in r or "912345678" in r or "example.com" in r or OWNER_ID in r]


def test_after_sending_the_owner_sees_corrects_and_withdraws_the_letter(chat):
    bot = chat
    case = make_case(bot.services)
    join_and_fill(bot, OWNER_ID, case.owner_code)
    letter = letter_row(bot.services, OWNER_ID, case.id)

    said = bot.says(OWNER_ID, "我的意向書")  # short on a phone: the status and the enterprise; the rest one tap away
    assert said[0] == "「好客數位共好計畫」企業合作意向書\n狀態: 已送出，第 1 版\n企業名稱: 好客小吃店\n統一編號: 22099131"
    assert said[1].startswith("您的企業合作意向書已填好")
    said = bot.taps(OWNER_ID, f"letter_fields:{letter.id}")
    assert "手機: 0912-345-678" in said[0] and said[-1] == "若有錯誤，請點欄位旁的「修改」。"

    said = bot.says(OWNER_ID, "更正")
    assert said[0] == "要更正哪一欄？請點該欄旁的「修改」。"
    assert "手機: 0912-345-678" in said[1]  # every field, "change" beside each
    said = bot.taps(OWNER_ID, f"fix:mobile:{letter.id}")
    assert said == ["更正「好客數位共好計畫」意向書的「手機」，目前是：0912-345-678。如要保持原樣，請輸入「取消」。",
                    "聯絡人的手機號碼？"]
    said = bot.says(OWNER_ID, "02-2553-3988")
    assert said[0] == "這看起來是市話號碼，請輸入 09 開頭的手機號碼。"
    said = bot.says(OWNER_ID, "0987 654 321")
    assert said[0] == "已更正。您的意向書現在是第 2 版，提案單位與計畫辦公室看到的是新版本。"
    assert "Word" in said[-1]

    with bot.services.db.session() as s:
        row = s.get(store.Letter, letter.id)
        assert (row.version, row.mobile) == (2, "+886987654321")
        old = s.query(store.LetterVersion).filter_by(letter_id=letter.id).one()
        assert (old.version, json.loads(old.data)["mobile"]) == (1, "+886912345678")
    corrected = [r for r in every_row(bot.services)["audit_log"] if "letter.corrected" in r]
    assert len(corrected) == 1 and "mobile" in corrected[0] and "912345678" not in corrected[0]

    # the county and its district are corrected together
    bot.taps(OWNER_ID, f"fix:county:{letter.id}")
    said = bot.says(OWNER_ID, "台中")
    assert said[0].startswith("在臺中市的哪個鄉鎮市區？請點選按鈕，或直接輸入名稱。\n(中區、東區、南區、西區、北區、西屯區")
    assert len(last_buttons(bot, OWNER_ID)) == 13  # 12 districts and "more"
    said = bot.says(OWNER_ID, "西屯區")
    assert said[0].startswith("已更正。您的意向書現在是第 3 版")
    assert letter_row(bot.services, OWNER_ID, case.id).town_code == "66000060"

    # withdrawing asks first
    said = bot.says(OWNER_ID, "撤回")
    assert said[0].startswith("確定要撤回「好客數位共好計畫」的企業合作意向書嗎？")
    assert bot.taps(OWNER_ID, "keep") == ["您的意向書維持不變。"]
    assert letter_row(bot.services, OWNER_ID, case.id).status == "submitted"
    bot.says(OWNER_ID, "撤回")
    said = bot.taps(OWNER_ID, "withdraw")
    assert said[0].startswith("「好客數位共好計畫」的企業合作意向書已撤回。")
    assert letter_row(bot.services, OWNER_ID, case.id).status == "withdrawn"
    assert bot.client.get(path_of(uris(bot, OWNER_ID)[-1])).status_code == 410  # no document for a withdrawn letter


def test_cancel_and_back_work_and_the_letter_resumes_after_a_restart(chat):
    bot = chat
    case = make_case(bot.services)
    bot.says(OWNER_ID, case.owner_code)
    bot.taps(OWNER_ID, "agree")
    assert bot.taps(OWNER_ID, "change:mobile")[0] == "這個按鈕屬於較早的訊息。請先回答下面的問題，或輸入「取消」停止填寫。"
    bot.says(OWNER_ID, "好客小吃店")
    assert bot.says(OWNER_ID, "上一步") == ["請問企業名稱？（請填登記的全名）"]
    bot.says(OWNER_ID, "好客小吃店")
    said = bot.says(OWNER_ID, "取消")
    assert said == ["要放棄企業合作意向書已填的 1 項答案（企業名稱）嗎？放棄後無法復原。"]  # asked first
    said = bot.taps(OWNER_ID, "discard")
    assert said == ["已取消，剛才填的答案已刪除。",
                    "您仍在「好客數位共好計畫」案件中，企業合作意向書尚未送出。要重新填寫，請輸入「填寫意向書」。"]

    # the letter is still there as a draft; "fill it in" starts again
    said = bot.says(OWNER_ID, "我的意向書")
    assert said == ["您在「好客數位共好計畫」的意向書尚未送出。"]
    assert last_buttons(bot, OWNER_ID) == [("繼續填寫", f"fill:{case.id}")]
    said = bot.taps(OWNER_ID, f"fill:{case.id}")
    assert said[-1] == "請問企業名稱？（請填登記的全名）"
    for answer in answers()[:4]:
        bot.says(OWNER_ID, answer)

    # the server restarts: a new app on the same database (and Redis), and the owner goes on
    config = bot.services.config
    if bot.backend == "embedded":
        bot.services.inprocess_worker.stop()
    else:
        bot.stop_worker()
    app = create_app(config)
    start_embedded(app)
    again = quick_harness(bot, app)
    try:
        said = again.says(OWNER_ID, "台北市大安區")
        assert said == ["主要服務或產品是什麼？"]
        for answer in answers()[5:]:
            said = again.says(OWNER_ID, answer)
        assert "請確認您的企業合作意向書" in said[-1] and "企業名稱: 好客小吃店" in said[-1]
        assert again.says(OWNER_ID, "上一步")[0].startswith("意向書第六項：")  # back works from the summary too
    finally:
        stop_harness(again)


def quick_harness(bot, app) -> Harness:
    services = app.extensions["gonghao"]
    harness = Harness(bot.backend, app, bot.line, services)
    if bot.backend == "production":
        harness.start_worker()
    return quick(harness)


def stop_harness(harness: Harness) -> None:
    if harness.backend == "production":
        harness.stop_worker()
    else:
        harness.services.inprocess_worker.stop()
    harness.services.db.engine.dispose()


def test_two_owners_of_one_business_in_two_cases_are_both_flagged(chat):
    bot = chat
    first, second = make_case(bot.services), make_case(bot.services, plan_name="第二個計畫", proposer_name="乙公司")
    join_and_fill(bot, OWNER_ID, first.owner_code)
    said = join_and_fill(bot, OTHER_ID, second.owner_code, owner={**OWNER, "contact": "陳美麗"})
    assert any("今年另有一份企業合作意向書使用相同的統一編號" in t for t in said)
    assert not any("好客數位共好計畫" in t for t in said)  # nothing about the other case or its owner
    assert letter_row(bot.services, OWNER_ID, first.id).flag_duplicate
    assert letter_row(bot.services, OTHER_ID, second.id).flag_duplicate

    # once one is withdrawn, the other is no longer a duplicate
    bot.says(OWNER_ID, "撤回")
    bot.taps(OWNER_ID, "withdraw")
    assert not letter_row(bot.services, OTHER_ID, second.id).flag_duplicate


def test_a_business_on_the_previous_program_list_is_flagged(chat):
    bot = chat
    case = make_case(bot.services)
    with bot.services.db.session() as s:
        s.add(store.PreviousProgram(business_number=OWNER["number"], program_name="111年雲世代產業數位轉型計畫"))
    said = join_and_fill(bot, OWNER_ID, case.owner_code)
    assert any("計畫辦公室的名單顯示此統一編號曾參與111年雲世代產業數位轉型計畫" in t for t in said)
    letter = letter_row(bot.services, OWNER_ID, case.id)
    assert letter.flag_previous_program and not letter.flag_duplicate


def test_declining_the_notice_ends_politely_and_stores_nothing_personal(chat):
    bot = chat
    case = make_case(bot.services)
    bot.says(OWNER_ID, case.owner_code)
    said = bot.taps(OWNER_ID, "decline")
    assert said[0].startswith("了解。我沒有儲存您的任何資料，也不會再詢問。")
    rows = every_row(bot.services)
    assert rows["letters"] == [] and rows["case_members"] == [] and rows["letter_versions"] == []
    assert len(rows["consents"]) == 1 and "112-1" in rows["consents"][0]  # the answer itself: declined
    with bot.services.db.session() as s:
        assert s.query(store.Consent).one().agreed is False
    state = bot.services.store.load_state(OWNER_ID)
    assert not (state or {}).get("dialog") and not (state or {}).get("values")
    # the next message is not taken as an answer
    assert not any("統一編號" in t for t in bot.says(OWNER_ID, "好客小吃店"))


def test_delete_my_data_leaves_nothing_personal_in_any_table(chat):
    bot = chat
    case = make_case(bot.services)
    join_and_fill(bot, OWNER_ID, case.owner_code)
    letter = letter_row(bot.services, OWNER_ID, case.id)
    bot.taps(OWNER_ID, f"fix:email:{letter.id}")
    bot.says(OWNER_ID, "old.wang@example.org")  # a second version, so letter_versions has a row too

    said = bot.says(OWNER_ID, "我的資料")
    assert said[0].startswith("以下是我保存的所有關於您的資料：") and "同意" in said[0]
    assert "「好客數位共好計畫」企業合作意向書" in said[1] and "王小明" in said[1] and "保存的舊版本數: 1" in said[1]
    assert last_buttons(bot, OWNER_ID) == [("更正", "correct"), ("刪除我的資料", "delete my data")]

    said = bot.taps(OWNER_ID, "delete my data")
    assert "無法復原" in said[0] and "提案單位與計畫辦公室將不再有這份資料" in said[0]
    said = bot.taps(OWNER_ID, "delete")
    assert said[0].startswith("完成：您的個人資料已刪除。")

    personal = (OWNER["contact"], OWNER["representative"], "912345678", "0912 345 678", "0912-345-678", "2553-3988", "25533988", "wang.xiaoming",
                "old.wang", OWNER["address"], OWNER["company"], OWNER["number"])
    leftovers = {table: [r for r in rows if any(p in r for p in personal)]
                 for table, rows in every_row(bot.services).items()}
    assert {t: r for t, r in leftovers.items() if r} == {}
    assert [v for v in every_redis_value(bot.services) if any(p in v for p in personal)] == []
    deleted = [r for r in every_row(bot.services)["audit_log"] if "data.deleted" in r]
    assert len(deleted) == 1 and OWNER_ID not in deleted[0]
    assert bot.says(OWNER_ID, "我的資料")[0].endswith("• 沒有其他資料：沒有意向書，也沒有個人資料。")


def test_codes_wrong_revoked_limited_and_the_proposer_link(chat):
    bot = chat
    case = make_case(bot.services)
    wrong = "這個代碼無法使用。請向提供代碼的人確認；代碼的格式像 J-7KQ4M-XR2PT。這一小時內您還可以再試 {} 次。"
    near = case.owner_code[:-1] + ("2" if case.owner_code[-1] != "2" else "3")
    assert bot.says(OWNER_ID, near)[0] == wrong.format(9)  # one symbol off: the same answer as any other
    assert bot.says(OWNER_ID, "J-AAAAA-AAAAA")[0] == wrong.format(8)

    # the proposer's code links the proposer contact; one person may hold several cases
    bot.services.config = bot.services.config.model_copy(update={"bot_basic_id": "@gonghao"})
    said = bot.says(OTHER_ID, case.proposer_code.replace("-", " ").lower())
    assert said[0].startswith("您已成為「好客數位共好計畫」（案件 1）的提案單位聯絡人。") and case.owner_code in said[0]
    link = uris(bot, OTHER_ID)[-1]
    assert link.startswith("https://line.me/R/oaMessage/@gonghao/?%E5%8A%A0%E5%85%A5%20J-")
    # the QR image of the owners' link is served through a signed link too (LINE shows HTTPS images only)
    qr = invite_qr_url(bot.services.config, case.id, case.owner_code)
    image = bot.client.get(path_of(qr))
    assert image.status_code == 200 and image.data.startswith(b"\x89PNG")
    assert bot.client.get(path_of(qr).replace(".png", "x.png")).status_code == 403
    other = make_case(bot.services, plan_name="第二個計畫")
    bot.says(OTHER_ID, other.proposer_code)
    with bot.services.db.session() as s:
        roles = s.query(store.CaseMember).filter_by(user_id=OTHER_ID).all()
        assert sorted((m.case_id, m.role) for m in roles) == [(case.id, "proposer"), (other.id, "proposer")]

    # a revoked code gets the same answer as a wrong one; the new code works
    old = case.owner_code
    with bot.services.db.session() as s:
        new = store.reissue_code(s, s.get(store.Case, case.id), "owner")
    assert bot.says(OWNER_ID, old)[0] == wrong.format(7)
    assert bot.client.get(path_of(qr)).status_code == 410  # the old QR code no longer invites
    assert bot.says(OWNER_ID, new)[0].startswith("歡迎加入")
    bot.says(OWNER_ID, "取消")

    # ten codes that did not work in an hour: wait, and be told until when
    for _ in range(7):
        bot.says(OWNER_ID, "J-BBBBB-BBBBB")
    said = bot.says(OWNER_ID, new)
    assert said[0].startswith("您在一小時內傳送了 10 個無法使用的代碼。為了保護案件安全，請在 ")


def test_warnings_cite_the_rule_and_do_not_refuse(chat):
    bot = chat
    case = make_case(bot.services, case_type="inclusion", theme="regional")
    bot.says(OWNER_ID, case.owner_code)
    bot.taps(OWNER_ID, "agree")
    for answer in ("好客小吃店", "22099131", "稅籍登記"):
        bot.says(OWNER_ID, answer)
    said = bot.says(OWNER_ID, "12")
    assert said[0].startswith("⚠ 員工 12 人已超過 9 人。數位共融輔導案每案至多 3 家 9 人以上之企業")
    assert "（§叁 輔導對象（數位共融輔導））" in said[0]
    assert said[0].endswith("企業在哪裡？請選擇縣市，或直接輸入（例如：臺北市大安區）。")
    assert bot.says(OWNER_ID, "花蓮")[0].startswith("在花蓮縣的哪個鄉鎮市區？")
    bot.says(OWNER_ID, "花蓮市")
    bot.says(OWNER_ID, "民宿")
    assert bot.says(OWNER_ID, "有") == ["是哪些計畫？請輸入計畫名稱。"]
    said = bot.says(OWNER_ID, "112年地方型SBIR")
    assert said[0].startswith("⚠ 參與110至112年「雲世代產業數位轉型計畫」等相關計畫、經濟部「推動中小型店家數位轉型補助方案」的企業")
    assert "§叁 限制條件 2" in said[0] and said[0].endswith("聯絡人是哪一位？請輸入全名。")
    # going back and answering "none" drops the programs' names; the warning is not repeated
    bot.says(OWNER_ID, "上一步")
    assert bot.says(OWNER_ID, "上一步")[0] == "今年企業是否參與或申請其他政府相關輔導或補助計畫？"
    assert bot.says(OWNER_ID, "沒有") == ["聯絡人是哪一位？請輸入全名。"]


def test_the_screening_answers_go_with_the_letter(chat):
    bot = chat
    case = make_case(bot.services)
    said = bot.says(OWNER_ID, "資格檢查")
    assert "您的事業有哪一種登記" in said[-1]
    steps = 0
    while bot.services.store.load_state(OWNER_ID).get("dialog") and steps < 12:
        buttons = last_buttons(bot, OWNER_ID)
        no = [value for label, value in buttons if label in ("否", "公司登記")]
        bot.says(OWNER_ID, no[0] if no else "5")
        steps += 1
    join_and_fill(bot, OWNER_ID, case.owner_code)
    record = json.loads(letter_row(bot.services, OWNER_ID, case.id).screening)
    assert record["outcome"] == "eligible" and record["answers"]["employees"] == 5
