"""Messages that fit a phone (dialogs.cards): the estimate, a long card as pages, long texts in parts."""
from __future__ import annotations

import pytest

from dialogs.cards import card_lines, fitted, pages, phone_lines, text_parts
from dialogs.i18n import use_locale
from dialogs.messages import Card, Carousel, Choice


@pytest.mark.parametrize("text, lines", [
    ("", 1),
    ("一" * 20, 1),
    ("一" * 21, 2),
    ("a" * 40, 1),  # half-width characters take half a place
    ("a" * 41, 2),
    ("甲\n\n乙", 3),  # every newline starts a line, an empty one too
])
def test_a_line_holds_twenty_full_width_characters(text, lines):
    assert phone_lines(text) == lines


def test_a_card_that_fits_stays_one_card():
    card = Card("標題", rows=(("企業名稱", "好客小吃店"),), actions=(Choice("確認送出", "confirm"),))
    assert card_lines(card) == 4 and fitted(card) is card


def test_a_long_card_becomes_pages_with_every_row_in_order_and_the_buttons_last():
    rows = tuple((f"欄位{n}", "內容" * (n % 4 * 5 + 1)) for n in range(15))
    card = Card("請確認", rows=rows, actions=(Choice("確認送出", "confirm"),), footer="說明",
                row_actions=tuple(Choice("修改", f"change:{n}") for n in range(15)))
    with use_locale("zh_TW"):
        shown = fitted(card, "全部欄位")
    assert isinstance(shown, Carousel) and len(shown.cards) > 2
    assert [row for page in shown.cards for row in page.rows] == list(rows)
    assert [a.value for page in shown.cards for a in page.row_actions] == [f"change:{n}" for n in range(15)]
    assert all(card_lines(page) <= 12 for page in shown.cards)
    assert [bool(page.actions) for page in shown.cards] == [False] * (len(shown.cards) - 1) + [True]
    assert shown.cards[-1].footer == "說明" and shown.cards[0].title == f"全部欄位（1/{len(shown.cards)}）"


def test_pages_never_exceed_twelve_bubbles():
    card = Card("長", rows=tuple((f"{n}", "x") for n in range(200)))
    with use_locale("en"):
        assert len(pages(card, "Long")) == 12


def test_long_texts_are_cut_between_paragraphs_then_sentences():
    assert text_parts(["甲" * 100, "乙" * 100]) == ["甲" * 100 + "\n" + "乙" * 100]
    english = " ".join(f"Sentence number {n} is about the program." for n in range(30))
    parts = text_parts([english, "(Source: §玖)"])
    assert len(parts) == 3 and all(phone_lines(p) <= 12 for p in parts)
    assert " ".join(parts).replace("\n", " ") == english + " (Source: §玖)"
    chinese = "。".join("第" + str(n) + "句說明計畫的規定內容" for n in range(40)) + "。"
    assert "".join(text_parts([chinese])) == chinese
