"""The webhook as LINE calls it: signatures, envelopes, duplicates, standby, odd events."""
from __future__ import annotations

import json
import time

import pytest

from bot import line_events as le
from tests.conftest import SECRET
from tests.poison import text_that_always_fails

USER = "U1111111111111111111111111111111a"


def test_signed_text_event_gets_exactly_one_reply(bot):
    response = bot.post([le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))])
    assert response.status_code == 200
    bot.wait_idle()
    sent = bot.line.delivered()
    assert len(sent) == 1
    assert sent[0].path == "/v2/bot/message/reply"


def test_tampered_body_is_refused_and_nothing_is_sent(bot):
    body = le.envelope([le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))])
    signature = le.sign(SECRET, body)
    tampered = body.replace("聯絡窗口".encode(), "主選單".encode())
    assert bot.post([], body=tampered, signature=signature).status_code == 400
    assert bot.post([], body=body, signature=False).status_code == 400
    assert bot.post([], body=body, signature=le.sign("another-secret", body)).status_code == 400
    bot.wait_idle()
    assert bot.line.delivered() == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"destination": "x"}', b'{"events": {}}', "\udcff".encode("utf-8", "surrogatepass")])
def test_unparseable_envelopes_get_400(bot, body):
    assert bot.post([], body=body).status_code == 400


def test_verify_with_no_events_gets_200(bot):
    assert bot.post([]).status_code == 200


def test_body_over_one_mebibyte_gets_413(bot):
    body = le.envelope([le.text_event(USER, "x" * (1024 * 1024))])
    assert bot.post([], body=body).status_code == 413


def test_same_event_delivered_twice_is_answered_once(bot):
    event = le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))
    assert bot.post([event]).status_code == 200
    again = json.loads(json.dumps(event))
    again["deliveryContext"]["isRedelivery"] = True
    assert bot.post([again]).status_code == 200
    bot.wait_idle()
    assert len(bot.line.delivered()) == 1


def test_standby_mode_sends_nothing(bot):
    event = le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER), mode="standby")
    assert bot.post([event]).status_code == 200
    bot.wait_idle()
    assert bot.line.delivered() == []


def test_odd_events_are_skipped_and_the_rest_answered(bot):
    good = le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))
    odd = [{"type": "somethingNew", "webhookEventId": "01ODD", "timestamp": le.now_ms(), "source": {"type": "user", "userId": USER}},
           {"type": "message"}, "not an object", {"type": "join", "webhookEventId": "01JOIN", "timestamp": 1,
                                                  "source": {"type": "group", "groupId": "G1"}}]
    assert bot.post(odd + [good]).status_code == 200
    bot.wait_idle()
    assert len(bot.line.delivered()) == 1


def test_non_text_message_gets_a_polite_note(bot):
    answers = bot._send(le.sticker_event(USER, reply_token=bot.token(USER)), USER, True)
    assert answers == ["我只看得懂文字喔。請輸入您的回答，或點選下方按鈕。"]


def test_health_reports_database_and_redis(bot):
    response = bot.client.get("/healthz")
    assert response.status_code == 200
    assert response.json["database"] is True
    if bot.backend == "production":
        assert response.json["redis"] is True


def test_queue_down_means_503_so_line_redelivers(bot, monkeypatch):
    def broken(events):
        raise ConnectionError("queue down")

    monkeypatch.setattr(bot.services.queue, "accept", broken)
    assert bot.post([le.text_event(USER, "hi", reply_token=bot.token(USER))]).status_code == 503


def test_slow_line_does_not_slow_the_webhook(bot):
    bot.line.set_delay(2.0)
    users = [f"U{i:032d}" for i in range(5)]
    started = time.time()
    for user in users:
        assert bot.post([le.text_event(user, "聯絡窗口", reply_token=bot.token(user))]).status_code == 200
    assert time.time() - started < 2.0
    bot.wait_idle(timeout=30)
    assert len(bot.line.delivered()) == 5


def test_line_failing_for_a_while_then_answers_arrive(bot):
    bot.line.fail_for(2.0, status=500)
    started = time.time()
    assert bot.post([le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))]).status_code == 200
    assert time.time() - started < 2.0
    bot.wait_idle(timeout=60)
    delivered = bot.line.delivered()
    assert len(delivered) == 1
    assert delivered[0].path == "/v2/bot/message/push"  # the reply failed once; never retried as a reply
    assert delivered[0].headers.get("x-line-retry-key")


OTHER = "U5555555555555555555555555555555e"


def test_poison_events_never_cost_the_good_ones_in_the_same_request(bot):
    poison = [
        le.text_event("U" + "f" * 70, "聯絡窗口", reply_token=bot.token(USER)),  # not a LINE user id
        {**le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER)), "source": {"type": "user", "userId": 12345}},
        {**le.text_event(USER, "x"), "timestamp": 10 ** 30},
        le.text_event(OTHER, "聯\ud800絡\x00窗口", reply_token=bot.token(OTHER)),  # lone surrogate and NUL: scrubbed
    ]
    good = le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))
    body = json.dumps({"destination": "U0", "events": poison + [good]}, ensure_ascii=True).encode()
    assert bot.post(None, body=body).status_code == 200
    bot.wait_idle()
    assert len(bot.line.texts_to(USER)) >= 1 and len(bot.line.texts_to(OTHER)) >= 1
    assert len(bot.line.delivered()) == 2  # the two usable events, once each


def test_a_body_nested_too_deep_gets_400(bot):
    body = b'{"events": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert bot.post(None, body=body).status_code == 400


def test_an_event_that_keeps_failing_is_dead_lettered_and_its_user_told_once(bot, monkeypatch):
    text_that_always_fails(monkeypatch, "boom")
    bot.services.queue.retry_base_ms = 10
    poison = le.text_event(USER, "boom", reply_token=bot.token(USER))
    good = le.text_event(OTHER, "聯絡窗口", reply_token=bot.token(OTHER))
    assert bot.post([poison, good]).status_code == 200
    bot.wait_idle(timeout=30)
    assert bot.line.texts_to(USER) == ["抱歉，這則訊息我們沒辦法處理。請換個說法再試一次，或與計畫辦公室聯絡。"]
    assert len(bot.line.texts_to(OTHER)) == 1
    with bot.services.db.session() as s:
        from storage.models import AcceptedEvent

        dead = s.get(AcceptedEvent, poison["webhookEventId"])
        assert (dead.status, dead.attempts) == ("dead", 4)
        assert dead.reason == "ValueError while handling the event"  # what failed, never what was said
    after = le.text_event(USER, "聯絡窗口", reply_token=bot.token(USER))  # the user's next message is answered
    assert bot.post([after]).status_code == 200
    bot.wait_idle()
    assert len(bot.line.texts_to(USER)) == 2
