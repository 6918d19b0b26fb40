"""The outbox against the mock platform: what follows a reply, told apart by what LINE may have seen.

Counted at the mock: every answer reaches the user once, whatever happened to the call.
"""
from __future__ import annotations

import time
import uuid

import pytest

from bot import line_events as le
from bot.gateway import LineGateway, retry_key_for
from bot.outbox import Outbox
from storage.db import Database
from storage.models import Delivery

USER = "U4444444444444444444444444444444d"


@pytest.fixture()
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'outbox.sqlite3'}")
    database.upgrade()
    yield database
    database.engine.dispose()


def outbox_for(db, line, timeout=2.0, lease=5.0):
    return Outbox(db, LineGateway("token", line.url, timeout=timeout, pool_size=4), lease)


def record(outbox, db, line, age_seconds=0.0, token=True):
    event = le.text_event(USER, "hi", reply_token=line.issue_reply_token(USER) if token else None,
                          timestamp=int((time.time() - age_seconds) * 1000))
    with db.unit_of_work() as s:
        return outbox.add(s, event, USER, [{"type": "text", "text": f"answer {uuid.uuid4().hex[:6]}"}])


def row(db, event_id):
    with db.session() as s:
        return s.get(Delivery, event_id)


def sends(line):
    return [c.path.rsplit("/", 1)[1] for c in line.delivered()]


def test_a_fresh_token_replies_and_a_stale_one_pushes_with_the_event_key(db, line):
    outbox = outbox_for(db, line)
    fresh = record(outbox, db, line)
    assert outbox.send(fresh) == "sent"
    stale = record(outbox, db, line, age_seconds=55)
    assert outbox.send(stale) == "sent"
    assert sends(line) == ["reply", "push"]
    assert line.delivered()[1].headers["x-line-retry-key"] == retry_key_for(stale.event_id)
    outbox.flush()  # deliveries are recorded in batches
    assert row(db, fresh.event_id).messages == "[]"  # sent: nothing of the answer is kept


def test_a_reply_refused_with_a_server_error_is_pushed_once(db, line):
    outbox = outbox_for(db, line)
    line.fail_next(1, status=500, path_prefix="/v2/bot/message/reply")
    answer = record(outbox, db, line)
    assert outbox.send(answer) == "sent"
    assert sends(line) == ["push"]


def test_a_reply_answered_late_is_never_followed_by_a_push(db, line):
    outbox = outbox_for(db, line, timeout=0.3, lease=0.5)
    line.set_delay(0.6)  # LINE takes the reply, but answers after our timeout
    answer = record(outbox, db, line)
    assert outbox.send(answer) == "pending"
    assert row(db, answer.event_id).phase == "reply?"
    line.wait_for(lambda: line.delivered(), timeout=3)
    line.set_delay(0)
    deadline = time.time() + 10
    while row(db, answer.event_id).status != "sent" and time.time() < deadline:
        for again in outbox.due():  # the same token once more: LINE says it was used, so it got through
            outbox.send(again)
        time.sleep(0.05)
    assert row(db, answer.event_id).status == "sent"
    assert sends(line) == ["reply"]
    assert not [c for c in line.requests if c.path.endswith("/push")]


def test_a_sender_that_died_after_claiming_is_replaced_without_a_second_copy(db, line):
    outbox = outbox_for(db, line, lease=0.2)
    answer = record(outbox, db, line)
    outbox.gateway.reply_once(answer.reply_token, answer.messages)  # it wrote the reply, then died
    time.sleep(0.3)  # its claim lapses
    [taken] = outbox.due()
    assert taken.phase == "reply?"
    assert outbox.send(taken) == "sent"
    assert sends(line) == ["reply"]


def test_a_sender_that_lost_its_claim_cannot_push(db, line):
    outbox = outbox_for(db, line, lease=0.2)
    stalled = record(outbox, db, line)
    time.sleep(0.3)
    [taken] = outbox.due()  # another worker takes over and replies
    assert outbox.send(taken) == "sent"
    assert outbox.send(stalled) in ("lost claim", "sent")  # the stalled one wakes: its reply is refused, no push
    assert sends(line) == ["reply"]


def test_a_late_reply_that_may_have_gone_out_is_tried_again_as_a_reply_never_pushed(db, line):
    outbox = outbox_for(db, line, lease=0.2)
    answer = record(outbox, db, line, age_seconds=55)  # its sender died before writing it; the token is old
    with db.session() as s:
        s.get(Delivery, answer.event_id).phase = "reply"
    time.sleep(0.3)
    [taken] = outbox.due()
    assert outbox.send(taken) == "sent"
    assert sends(line) == ["reply"]


def test_past_the_tokens_life_a_refused_reply_is_left_unsure(db, line):
    outbox = outbox_for(db, line, lease=0.2)
    answer = record(outbox, db, line, age_seconds=70)
    outbox.gateway.reply_once(answer.reply_token, answer.messages)  # it had gone out, as it happens
    time.sleep(0.3)
    [taken] = outbox.due()
    assert outbox.send(taken) == "unsure"  # refused, and nobody can tell why any more: not pushed
    assert sends(line) == ["reply"]
    assert row(db, answer.event_id).status == "unsure"


def test_rate_limits_wait_for_retry_after_and_a_used_up_quota_holds(db, line):
    outbox = outbox_for(db, line)
    line.quota, line.usage = 5, 5
    held = record(outbox, db, line, token=False)
    assert outbox.send(held) == "held"
    assert not outbox.due()  # a held answer is not retried
    line.quota = None
    line.fail_next(1, status=429, path_prefix="/v2/bot/message/push")
    limited = record(outbox, db, line, token=False)
    assert outbox.send(limited) == "pending"
    assert row(db, limited.event_id).next_attempt_at > time.time() * 1000


def test_a_reply_that_may_have_gone_out_is_tried_again_after_1_2_4_then_8_seconds():
    from bot.outbox import maybe_retry_ms

    assert [maybe_retry_ms(n) for n in range(6)] == [1000, 2000, 4000, 8000, 8000, 8000]
