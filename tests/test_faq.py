"""Free-text questions: answered from the 112 knowledge base, on meaning, with the paragraph cited.

Figures of the whole question set are in bench/RESULTS.md (`.venv/bin/python bench/faq_eval.py`).
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from dialogs import faq
from dialogs.engine import Context, Conversation, Dialog, Outcome, Step
from dialogs.i18n import use_locale
from dialogs.messages import Choice, Text

ROOT = Path(__file__).resolve().parent.parent
EDITION = ROOT / "storage" / "editions" / "112"
sys.path.insert(0, str(ROOT / "bench"))
import faq_eval  # noqa: E402


@pytest.fixture(scope="module")
def kb():
    return faq.KnowledgeBase.load(EDITION)


def ask(kb, text, locale="zh_TW"):
    return kb.answer(text, locale)


# -- typical questions ------------------------------------------------------------------------

TYPICAL = [
    # as owners and proposers type them                     topic
    ("截止日是哪天", "proposal_deadline"),
    ("只有稅籍登記可以參加嗎", "tax_registration_only"),
    ("計畫書最多幾頁", "plan_format"),
    ("我們公司12個人還能申請嗎", "employee_limit"),
    ("台北的店可以嗎", "location"),
    ("要準備什麼文件", "documents_required"),
    ("意向書要交幾份", "letters_rule"),
    ("顧問要來店裡幾次", "basic_work_items"),
    ("去年有參加雲世代，今年還可以嗎", "conflicting_programs"),
    ("我本來就在用這家廠商的POS，還可以參加嗎", "existing_customer"),
    ("普及跟共融有什麼不一樣", "case_types"),
    ("共融案可以放幾家大於9人的企業", "over_nine_exception"),
    ("有什麼可以加分的", "bonus_items"),
    ("前測後測是什麼", "capability_tests"),
    ("要去哪個網站提案", "how_to_submit"),
    ("有問題要打給誰", "contact"),
    ("When is the deadline?", "proposal_deadline"),
    ("What documents do I have to upload?", "documents_required"),
    ("I only have a tax registration, can I join?", "tax_registration_only"),
]


@pytest.mark.parametrize("question, topic", TYPICAL)
def test_a_typical_question_gets_its_topic_outright(kb, question, topic):
    answer = ask(kb, question)
    assert answer.confident, question
    assert answer.topic.id == topic


def test_the_answer_cites_its_paragraph_in_the_users_language(kb):
    zh = faq.answer_question("計畫書最多幾頁", "zh_TW", kb)
    assert len(zh) == 1 and isinstance(zh[0], Text)
    assert "50頁" in zh[0].text and zh[0].text.endswith("（依據：§陸.一；附件一）")
    en = faq.answer_question("How many pages can the proposal be?", "en", kb)
    assert "50 pages" in en[0].text and en[0].text.endswith("(Source: §陸.一；附件一)")


# -- what must not matter -------------------------------------------------------------------------

VARIANTS = [
    # the same question written differently: 台/臺, full-width/half-width, word order, synonyms
    ("台北的店可以嗎", "臺北的店可以嗎"),
    ("計畫書最多50頁嗎", "計畫書最多５０頁嗎"),
    ("KPI要怎麼訂", "ＫＰＩ要怎麼訂"),
    ("我們公司12個人還能申請嗎", "我們公司１２個人還能申請嗎"),
    ("截止日是哪天", "哪天是截止日"),
    ("截止日是哪天", "申請期限到什麼時候"),
    ("提案最後一天是幾號", "deadline是哪天"),
    ("要準備什麼文件", "需要哪些資料"),
    ("雲世代計畫有參加過可以嗎", "參加過雲世代計畫可以嗎"),
]


@pytest.mark.parametrize("one, other", VARIANTS)
def test_writing_the_question_differently_gives_the_same_topic(kb, one, other):
    assert kb.match(one)[0].topic.id == kb.match(other)[0].topic.id


def test_tai_and_full_width_give_exactly_the_same_scores(kb):
    a = [(m.topic.id, m.score) for m in kb.match("台北的店可以嗎？")]
    b = [(m.topic.id, m.score) for m in kb.match("臺北的店可以嗎?")]
    assert a == b


# -- not sure -----------------------------------------------------------------------------------------

OUT_OF_SCOPE = ["今天天氣如何", "你們有賣便當嗎", "勞保怎麼加保", "哈哈哈", "Tell me a joke", "發票中獎號碼"]


@pytest.mark.parametrize("question", OUT_OF_SCOPE)
def test_an_out_of_scope_question_is_not_answered(kb, question):
    assert not ask(kb, question).confident


def test_not_sure_offers_the_closest_topics_and_the_office(kb):
    answer = ask(kb, "提案可以用紙本寄過去嗎")  # close to how_to_submit, but not sure enough
    assert not answer.confident and answer.topic is None
    assert answer.suggestions[0].id == "how_to_submit"


def test_the_not_sure_reply_has_buttons_and_the_phone_and_email():
    messages = faq.answer_question("今天天氣如何", "zh_TW", EDITION, inside_dialog=False)
    assert len(messages) == 1
    reply = messages[0]
    assert "確定" in reply.text
    assert "(02)2553-3988" in reply.text and "cisaims@cisanet.org.tw" in reply.text
    assert 1 <= len(reply.choices) <= 3
    for choice in reply.choices:
        assert choice.value.startswith("faq:") and len(choice.label) <= 20

    en = faq.answer_question("what's the weather today", "en", EDITION)[0]
    assert "not sure" in en.text and "cisaims@cisanet.org.tw" in en.text
    assert "ext. 603, 383, 835" in en.text


def test_a_tapped_topic_is_answered_directly(kb):
    messages = faq.answer_question("faq:letters_deadline", "zh_TW", kb)
    assert "二日內" in messages[0].text and "§陸.四.(四)" in messages[0].text
    assert kb.topic("letters_deadline").id == "letters_deadline"
    assert kb.topic("no_such_topic") is None
    assert kb.topic("oos_small_talk") is None  # out-of-scope anchors are never shown


def test_inside_a_dialog_only_a_confident_answer_interrupts(kb):
    assert faq.answer_question("今天天氣如何", "zh_TW", kb, inside_dialog=True) is None
    assert faq.answer_question("截止日是哪天", "zh_TW", kb, inside_dialog=True)


def test_a_question_in_the_middle_of_a_dialog_is_answered_and_the_dialog_goes_on(kb):
    dialog = Dialog("demo", [Step("name", "What is the company's name?")], finish=lambda ctx: Outcome([Text("done")]))
    conv = Conversation(
        {"demo": dialog}, [],
        lambda text, ctx, inside: faq.answer_question(text, ctx.locale, kb, inside),
        menu=lambda c: [Text("menu")], help_text=lambda c: [Text("help")],
        contact=lambda c: [Text("contact")], menu_choices=lambda c: [Choice("menu")])
    ctx = Context("U1")
    with use_locale("zh_TW"):
        state, _ = conv.start("demo", ctx)
        state, messages = conv.handle(state, "截止日是哪天？", Context("U1"))
    assert "112年3月16日" in messages[0].text and "§伍.三" in messages[0].text
    assert messages[-1].text == "What is the company's name?"
    assert state["dialog"] == "demo"


# -- the knowledge base itself ----------------------------------------------------------------------


def test_every_topic_has_both_languages_a_citation_and_short_titles(kb):
    assert len(kb.answerable) >= 40
    for topic in kb.answerable:
        assert topic.answer.get("zh_TW") and topic.answer.get("en"), topic.id
        assert topic.title.get("zh_TW") and topic.title.get("en"), topic.id
        assert all(len(t) <= 20 for t in topic.title.values()), topic.id
        assert re.match(r"^(§|附件|註)", topic.citation), topic.id
        assert topic.phrasings.get("zh_TW") and topic.phrasings.get("en"), topic.id


def test_what_the_guidelines_do_not_say_is_said_plainly(kb):
    for topic in kb.answerable:
        if not topic.stated:
            assert "規範沒有" in topic.answer["zh_TW"] or "規範未" in topic.answer["zh_TW"], topic.id
            assert "not" in topic.answer["en"], topic.id
            assert "計畫辦公室" in topic.answer["zh_TW"] and "program office" in topic.answer["en"], topic.id


def test_official_names_write_tai_as_臺(kb):
    for topic in kb.answerable:
        assert not re.search(r"台(北|中|南|東|灣|幣)", topic.answer["zh_TW"]), topic.id


def test_the_contact_comes_from_the_knowledge_base_as_in_the_guidelines(kb):
    contact = kb.contact
    assert contact.phone == "(02)2553-3988"
    assert contact.email == "cisaims@cisanet.org.tw"
    assert [e.split()[0] for e in contact.extensions] == ["603", "383", "835"]
    assert "臺北市大同區承德路二段239號6樓" in kb.topic("contact").answer["zh_TW"]


def test_key_facts_of_the_guidelines_are_in_the_answers(kb):
    facts = {
        "proposal_deadline": ["112年3月16日", "17:00"],
        "registration_opens": ["112年2月17日", "17:00"],
        "tool_import_deadline": ["112年7月31日"],
        "checkpoints": ["112年7月15日", "112年11月30日", "35%", "65%"],
        "coaching_period": ["112年11月30日"],
        "employee_limit": ["9人", "至多3家"],
        "letters_rule": ["10%", "50%"],
        "plan_format": ["50頁", "40MB"],
        "tiers_budget": ["150萬", "200萬", "176萬", "220萬"],
        "how_to_submit": ["https://www.cisa.tw/365"],
        "basic_work_items": ["至少3次", "現地輔導", "至少3場", "至少1場"],
    }
    for topic_id, needed in facts.items():
        for text in needed:
            assert text in kb.topic(topic_id).answer["zh_TW"], (topic_id, text)


# -- the question set and speed ---------------------------------------------------------------------------


def test_the_question_set_reaches_the_targets(kb):
    questions = faq_eval.load_questions()
    assert len(questions) >= 100
    assert sum(q["topic"] == "out_of_scope" for q in questions) >= 20
    ids = {t.id for t in kb.answerable}
    assert {q["topic"] for q in questions} - {"out_of_scope"} <= ids
    figures = faq_eval.evaluate(kb, questions)["figures"]["all"]
    assert figures["top1"] >= 0.9, figures
    assert figures["refusal"] >= 0.9, figures


def test_each_split_is_no_worse_than_before_the_bots_own_topics(kb):
    """Issue 10: owner steps and small talk ≥ 90%, and dev, test and fresh no worse than before they came
    (bench/RESULTS.md: dev answered outright 98.6%, test top-1 87.5%, fresh top-1 96.9%)."""
    figures = faq_eval.evaluate(kb, faq_eval.load_questions())["figures"]
    assert figures["dev"]["answered"] >= 73 / 74 and figures["dev"]["refusal"] == 1.0, figures["dev"]
    assert figures["test"]["top1"] >= 0.875, figures["test"]  # 63 of 72 then; 64 of 73 now (one relabelled)
    assert figures["fresh"]["top1"] >= 31 / 32 and figures["fresh"]["answered"] >= 29 / 32, figures["fresh"]
    assert figures["owner"]["answered"] >= 0.9, figures["owner"]
    assert figures["chat"]["answered"] >= 0.9 and figures["chat"]["refusal"] >= 0.9, figures["chat"]


def test_the_bots_own_topics_never_lower_a_program_topics_score(kb):
    data = yaml.safe_load((EDITION / "faq.yaml").read_text(encoding="utf-8"))
    data["topics"] = [t for t in data["topics"] if t.get("tier", "program") == "program"]
    program_only = faq.KnowledgeBase.from_data(data)
    assert len(program_only.topics) < len(kb.topics)
    for question in ("截止日是哪天", "意向書要交幾份", "可以把工作外包給別家公司嗎", "刪除我的資料", "謝謝"):
        alone = {m.topic.id: m.score for m in program_only.match(question)}
        for match in kb.match(question):
            if match.topic.id in alone:
                assert match.score >= alone[match.topic.id], (question, match)


def test_eval_questions_are_not_copied_into_the_knowledge_base(kb):
    phrasings = {faq.normalise(p) for t in kb.topics for ps in t.phrasings.values() for p in ps}
    copied = [q["q"] for q in faq_eval.load_questions() if faq.normalise(str(q["q"])) in phrasings]
    assert copied == []


def test_a_match_takes_well_under_ten_milliseconds(kb):
    questions = [q["q"] for q in faq_eval.load_questions()]
    start = time.perf_counter()
    for q in questions:
        kb.match(q)
    assert (time.perf_counter() - start) / len(questions) < 0.005


def test_loading_is_cached(kb):
    assert faq.KnowledgeBase.load(EDITION) is kb
    assert faq.KnowledgeBase.load(EDITION / "faq.yaml") is kb


def test_loading_prints_nothing():
    code = ("from dialogs.faq import KnowledgeBase; "
            f"KnowledgeBase.load({str(EDITION)!r}).match('截止日是哪天')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""


def test_a_knowledge_base_is_plain_data(tmp_path):
    data = yaml.safe_load((EDITION / "faq.yaml").read_text(encoding="utf-8"))
    data["topics"] = [t for t in data["topics"] if t["id"] in ("proposal_deadline", "contact", "plan_format")]
    for t in data["topics"]:
        if t["id"] == "proposal_deadline":
            t["answer"]["zh_TW"] = "提案申請截止時間為113年3月15日（五）17:00。"
    path = tmp_path / "faq.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    other = faq.KnowledgeBase.load(tmp_path)
    messages = faq.answer_question("截止日是哪天", "zh_TW", tmp_path)
    assert "113年3月15日" in messages[0].text
    assert other.contact.email == "cisaims@cisanet.org.tw"
