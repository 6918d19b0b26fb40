"""The fault matrix (issue 9, item 7): each fault production can meet, small enough for the suite.

One row per test (``tests/fault_matrix.py``), PostgreSQL + Redis, the webhook in this
process and the workers as real processes (SIGKILL and SIGSTOP are real). Outcomes are
counted where the user sees them: for every event the webhook answered 200, the sends the
mock LINE platform accepted with its reply token or its push retry key — exactly one, in
the user's order, never the apology — and in the database: a letter sent in the middle of
a fault is one ``letters`` row, one ``letter.submitted`` audit entry and one confirmation.
The larger version, with more users and the real 60 s restart, is ``bench/faults.py``.

Set GONGHAO_FAULT_FIGURES=/some/file.jsonl to have each row append its figures there.
"""
from __future__ import annotations

import json
import os

import pytest

from tests import fault_matrix
from tests.fault_support import FaultBot


@pytest.fixture()
def make_bot(line, tmp_path):
    bots = []

    def make(**kwargs) -> FaultBot:
        bot = FaultBot(line, tmp_path, **kwargs)
        bots.append(bot)
        return bot

    yield make
    for bot in bots:
        bot.close()


@pytest.mark.parametrize("row", fault_matrix.ROWS, ids=[row.__name__ for row in fault_matrix.ROWS])
def test_fault_matrix_row(make_bot, line, row):
    figures = row(make_bot, line)
    path = os.environ.get("GONGHAO_FAULT_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(figures, ensure_ascii=False) + "\n")
    assert figures["problems"] == [], json.dumps(figures, ensure_ascii=False)
