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


def test_a_fresh_token_is_used_to_reply(gateway, line):
    sent = gateway.deliver(USER, line.issue_reply_token(USER), int(time.time() * 1000), hello(), retry_key_for("e1"))
    assert sent.method == "reply" and sent.request_id
    assert [c.path for c in line.delivered()] == ["/v2/bot/message/reply"]
    assert "x-line-retry-key" not in line.delivered()[0].headers


def test_a_stale_token_means_a_push_with_a_retry_key(gateway, line):
    minute_ago = int((time.time() - 60) * 1000)
    sent = gateway.deliver(USER, line.issue_reply_token(USER), minute_ago, hello(), retry_key_for("e2"))
    assert sent.method == "push"
    call = line.delivered()[0]
    assert call.path == "/v2/bot/message/push" and call.headers["x-line-retry-key"] == retry_key_for("e2")


def test_a_failed_reply_is_never_retried_as_a_reply(gateway, line):
    line.fail_next(1, status=500, path_prefix="/v2/bot/message/reply")
    sent = gateway.deliver(USER, line.issue_reply_token(USER), int(time.time() * 1000), hello(), retry_key_for("e3"))
    assert sent.method == "push"
    replies = [c for c in line.requests if c.path.endswith("/reply")]
    assert len(replies) == 1


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


def test_the_profile_language_is_read(gateway, line):
    line.profiles[USER] = {"userId": USER, "displayName": "x", "language": "en"}
    assert gateway.profile_language(USER) == "en"
