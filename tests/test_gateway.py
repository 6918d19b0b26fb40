"""The LINE gateway against the mock platform: reply while fresh, push with a retry key otherwise."""
from __future__ import annotations

import time

import pytest
from linebot.v3.messaging import TextMessage

from bot.gateway import DeliveryFailed, LineGateway, retry_key_for

USER = "U3333333333333333333333333333333c"


@pytest.fixture()
def gateway(line):
    return LineGateway("token", line.url, timeout=2.0, pool_size=4, max_attempts=4, sleep=lambda s: None)


def hello():
    return [TextMessage(text="您好")]


def test_a_reply_is_one_call_and_says_it_was_delivered(gateway, line):
    result = gateway.reply_once(line.issue_reply_token(USER), hello())
    assert result.outcome == "delivered" and result.request_id
    assert [c.path for c in line.delivered()] == ["/v2/bot/message/reply"]
    assert "x-line-retry-key" not in line.delivered()[0].headers


def test_a_used_reply_token_is_refused_not_retried(gateway, line):
    token = line.issue_reply_token(USER)
    gateway.reply_once(token, hello())
    again = gateway.reply_once(token, hello())
    assert again.outcome == "refused" and again.status == 400
    assert len([c for c in line.requests if c.path.endswith("/reply")]) == 2 and len(line.delivered()) == 1


def test_a_server_error_means_surely_not_delivered(gateway, line):
    line.fail_next(1, status=500, path_prefix="/v2/bot/message/reply")
    assert gateway.reply_once(line.issue_reply_token(USER), hello()).outcome == "not_sent"


def test_a_refused_connection_means_surely_not_delivered():
    closed = LineGateway("token", "http://127.0.0.1:9", timeout=1.0, pool_size=1)
    assert closed.reply_once("rt-x", hello()).outcome == "not_sent"


def test_a_reply_answered_after_the_timeout_may_have_been_delivered(line):
    gateway = LineGateway("token", line.url, timeout=0.3, pool_size=2)
    line.set_delay(0.6)
    result = gateway.reply_once(line.issue_reply_token(USER), hello())
    assert result.outcome == "maybe"
    line.wait_for(lambda: line.delivered(), timeout=3)  # LINE took it after all (and nothing is left in flight)


def test_the_quota_used_up_is_told_apart_from_the_rate_limit(gateway, line):
    line.quota, line.usage = 10, 10
    assert gateway.push_once(USER, hello(), retry_key_for("q1")).outcome == "quota"
    line.quota = None
    line.fail_next(1, status=429, path_prefix="/v2/bot/message/push")
    limited = gateway.push_once(USER, hello(), retry_key_for("q2"))
    assert limited.outcome == "limited" and limited.retry_after > 0


@pytest.mark.parametrize("status", [500, 503, 429])
def test_push_is_retried_with_the_same_key_on_transient_failures(gateway, line, status):
    line.fail_next(2, status=status, path_prefix="/v2/bot/message/push")
    gateway.push(USER, hello(), retry_key_for("e4"))
    pushes = [c for c in line.requests if c.path.endswith("/push")]
    assert len(pushes) == 3 and len({c.headers["x-line-retry-key"] for c in pushes}) == 1
    assert len(line.delivered()) == 1


def test_a_repeated_retry_key_counts_as_delivered(gateway, line):
    gateway.push(USER, hello(), retry_key_for("e5"))
    again = gateway.push(USER, hello(), retry_key_for("e5"))  # LINE answers 409: already accepted
    assert again.method == "push" and len(line.delivered()) == 1


def test_a_refused_push_is_not_retried(gateway, line):
    with pytest.raises(DeliveryFailed):
        gateway.push(USER, [TextMessage(text="x" * 5001)], retry_key_for("e6"))
    assert len([c for c in line.requests if c.path.endswith("/push")]) == 1


def test_giving_up_after_the_attempts(gateway, line):
    line.fail_for(30, status=500)
    with pytest.raises(DeliveryFailed):
        gateway.push(USER, hello(), retry_key_for("e7"))
    assert len([c for c in line.requests if c.path.endswith("/push")]) == 4


def test_a_slow_platform_times_out(line):
    gateway = LineGateway("token", line.url, timeout=0.3, pool_size=2, max_attempts=2, sleep=lambda s: None)
    line.set_delay(1.0)
    started = time.time()
    with pytest.raises(DeliveryFailed):
        gateway.push(USER, hello(), retry_key_for("e8"))
    assert time.time() - started < 2.0
    # the mock finishes the delayed requests before the next test starts (it shares the mock)
    line.wait_for(lambda: len([c for c in line.requests if c.path.endswith("/push")]) == 2, timeout=5)


def test_the_profile_language_is_read(gateway, line):
    line.profiles[USER] = {"userId": USER, "displayName": "x", "language": "en"}
    assert gateway.profile_language(USER) == "en"
