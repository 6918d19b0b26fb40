"""The mock LINE platform answers as LINE does: what it accepts, what it refuses, and its faults.

Requests go over real HTTP, with urllib for raw bodies and with line-bot-sdk v3 (the client
the bot uses) for the happy paths, so the SDK and the mock are shown to agree.
"""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from linebot.v3.messaging import (
    ApiClient,
    Configuration,
    FlexBox,
    FlexBubble,
    FlexButton,
    FlexMessage,
    FlexText,
    MessagingApi,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    TextMessage,
)
from linebot.v3.messaging.exceptions import ApiException

from bot.mockline import MAX_BUBBLE_BYTES, MockLine

USER = "U1111111111111111111111111111111a"
OTHER = "U2222222222222222222222222222222b"
EMOJI = "\U0001F600"  # two UTF-16 units


def call(line, path, body=None, method="POST", headers=None, token="test-access-token"):
    """(status, json body, headers) of one raw request to the mock."""
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(line.url + path, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null"), response.headers
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null"), error.headers


def reply(line, *messages, token=None, headers=None):
    token = token or line.issue_reply_token(USER)
    return call(line, "/v2/bot/message/reply", {"replyToken": token, "messages": list(messages)}, headers=headers)


def push(line, *messages, key=None, to=USER):
    headers = {"X-Line-Retry-Key": key} if key else None
    return call(line, "/v2/bot/message/push", {"to": to, "messages": list(messages)}, headers=headers)


def sdk(line) -> MessagingApi:
    return MessagingApi(ApiClient(Configuration(host=line.url, access_token="test-access-token")))


def text(value="hello", **extra):
    return {"type": "text", "text": value, **extra}


def quick_reply(n, label="choice"):
    return {"items": [{"type": "action", "action": {"type": "postback", "label": label, "data": f"pick={i}"}}
                      for i in range(n)]}


def bubble(lines=1, filler=""):
    return {"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
        {"type": "text", "text": f"line {i}{filler}", "wrap": True} for i in range(lines)]}}


def flex(contents):
    return {"type": "flex", "altText": "a card", "contents": contents}


# -- what LINE accepts --------------------------------------------------------------------

def test_a_valid_text_reply_is_accepted_through_the_sdk(line):
    token = line.issue_reply_token(USER)
    response = sdk(line).reply_message_with_http_info(
        ReplyMessageRequest(reply_token=token, messages=[TextMessage(text="您好")]), _request_timeout=5)
    assert response.status_code == 200
    assert response.data.sent_messages[0].id and response.data.sent_messages[0].quote_token
    assert response.headers["x-line-request-id"]
    [delivered] = line.delivered()
    assert delivered.path == "/v2/bot/message/reply" and delivered.to == [USER]
    assert delivered.headers["authorization"] == "Bearer test-access-token"
    assert line.texts_to(USER) == ["您好"]


def test_sdk_flex_message_with_quick_reply_is_accepted(line):
    card = FlexMessage(alt_text="報名狀態", contents=FlexBubble(body=FlexBox(layout="vertical", contents=[
        FlexText(text="已加入 12 家"), FlexButton(action=PostbackAction(label="查看名冊", data="roster"))])),
        quick_reply=QuickReply(items=[QuickReplyItem(action=PostbackAction(label="主選單", data="menu"))]))
    sdk(line).push_message(PushMessageRequest(to=USER, messages=[card]), x_line_retry_key=str(uuid.uuid4()),
                           _request_timeout=5)
    assert line.texts_to(USER) == ["報名狀態"]
    assert line.messages_to(USER)[0]["contents"]["body"]["contents"][1]["action"]["data"] == "roster"


ACCEPTED = [
    ("text of exactly 5,000 UTF-16 units, emoji counted twice", [text("a" * 4998 + EMOJI)]),
    ("five messages", [text()] * 5),
    ("13 quick replies with 20-character labels", [text(quickReply=quick_reply(13, "x" * 20))]),
    ("postback data of 300", [text(quickReply={"items": [
        {"type": "action", "action": {"type": "postback", "label": "ok", "data": "d" * 300}}]})]),
    ("carousel of 12 bubbles", [flex({"type": "carousel", "contents": [bubble()] * 12})]),
    ("image", [{"type": "image", "originalContentUrl": "https://example.com/a.png",
                "previewImageUrl": "https://example.com/a-small.png"}]),
    ("confirm template", [{"type": "template", "altText": "確認", "template": {"type": "confirm", "text": "送出？", "actions": [
        {"type": "postback", "label": "是", "data": "yes"}, {"type": "message", "label": "否", "text": "否"}]}}]),
]


@pytest.mark.parametrize("messages", [m for _, m in ACCEPTED], ids=[name for name, _ in ACCEPTED])
def test_accepted_messages(line, messages):
    status, body, headers = reply(line, *messages)
    assert status == 200, body
    assert len(body["sentMessages"]) == len(messages)
    assert len(line.delivered()) == 1


# -- what LINE refuses, by the spec or by the documented limits ---------------------------

REFUSED = [
    ("six messages", [text()] * 6, "messages"),
    ("text of 5,001 UTF-16 units (an emoji counts 2)", [text("a" * 4999 + EMOJI)], "messages[0].text"),
    ("quick reply with 14 items", [text(quickReply=quick_reply(14))], "messages[0].quickReply.items"),
    ("quick reply label of 21 characters", [text(quickReply=quick_reply(1, "x" * 21))],
     "messages[0].quickReply.items[0].action.label"),
    ("postback data of 301", [text(quickReply={"items": [
        {"type": "action", "action": {"type": "postback", "label": "ok", "data": "d" * 301}}]})],
     "messages[0].quickReply.items[0].action.data"),
    ("unknown message type", [{"type": "hologram", "text": "hi"}], "messages[0].type"),
    ("text message without text", [{"type": "text"}], "messages[0].text"),
    ("message without type", [{"text": "hi"}], "messages[0].type"),
    ("unknown action type", [text(quickReply={"items": [{"type": "action", "action": {"type": "teleport"}}]})],
     "messages[0].quickReply.items[0].action.type"),
    ("altText of 1,501", [{**flex(bubble()), "altText": "a" * 1501}], "messages[0].altText"),
    ("flex carousel of 13 bubbles", [flex({"type": "carousel", "contents": [bubble()] * 13})],
     "messages[0].contents.contents"),
    ("flex bubble over 30 KB", [flex(bubble(lines=40, filler="x" * (MAX_BUBBLE_BYTES // 40)))], "messages[0].contents"),
    ("flex box with a bad layout", [flex({"type": "bubble", "body": {"type": "box", "layout": "diagonal", "contents": []}})],
     "messages[0].contents.body.layout"),
    ("flex component of unknown type", [flex({"type": "bubble", "body": {"type": "box", "layout": "vertical",
                                                                          "contents": [{"type": "marquee"}]}})],
     "messages[0].contents.body.contents[0].type"),
    ("flex button label of 41", [flex({"type": "bubble", "body": {"type": "box", "layout": "vertical", "contents": [
        {"type": "button", "action": {"type": "postback", "label": "x" * 41, "data": "d"}}]}})],
     "messages[0].contents.body.contents[0].action.label"),
    ("buttons template with 5 actions", [{"type": "template", "altText": "t", "template": {
        "type": "buttons", "text": "t", "actions": [{"type": "message", "label": "a", "text": "a"}] * 5}}],
     "messages[0].template.actions"),
    ("image without a URL", [{"type": "image", "originalContentUrl": "not a url", "previewImageUrl": "https://e.com/a.png"}],
     "messages[0].originalContentUrl"),
    ("no messages at all", [], "messages"),
]


@pytest.mark.parametrize("messages, prop", [(m, p) for _, m, p in REFUSED], ids=[name for name, _, _ in REFUSED])
def test_refused_messages(line, messages, prop):
    status, body, headers = reply(line, *messages)
    assert status == 400
    assert body["message"].startswith("The request body has")
    assert prop in [detail["property"] for detail in body["details"]], body
    assert headers["x-line-request-id"]
    assert line.delivered() == []


REFUSED_REQUESTS = [
    ("retry key on a reply", lambda line: reply(line, text(), headers={"X-Line-Retry-Key": str(uuid.uuid4())}), 400),
    ("retry key that is not a UUID", lambda line: push(line, text(), key="not-a-uuid"), 400),
    ("reply token never issued", lambda line: reply(line, text(), token="made-up-token"), 400),
    ("no access token", lambda line: call(line, "/v2/bot/message/push", {"to": USER, "messages": [text()]}, token=None), 401),
    ("empty access token", lambda line: call(line, "/v2/bot/message/push", {"to": USER, "messages": [text()]}, token=""), 401),
    ("unknown endpoint", lambda line: call(line, "/v2/bot/message/broadcastx", {"messages": [text()]}), 404),
    ("GET on the reply endpoint", lambda line: call(line, "/v2/bot/message/reply", method="GET"), 404),
    ("body that is not JSON", lambda line: call(line, "/v2/bot/message/push", b"{not json"), 400),
    ("push without a recipient", lambda line: call(line, "/v2/bot/message/push", {"messages": [text()]}), 400),
    ("multicast to 501 users", lambda line: call(line, "/v2/bot/message/multicast",
                                                 {"to": [f"U{i:032d}" for i in range(501)], "messages": [text()]}), 400),
    ("loading for 7 seconds", lambda line: call(line, "/v2/bot/chat/loading/start", {"chatId": USER, "loadingSeconds": 7}), 400),
    ("loading without a chat", lambda line: call(line, "/v2/bot/chat/loading/start", {"loadingSeconds": 5}), 400),
]


@pytest.mark.parametrize("send, status", [(s, c) for _, s, c in REFUSED_REQUESTS], ids=[n for n, _, _ in REFUSED_REQUESTS])
def test_refused_requests(line, send, status):
    answered, body, headers = send(line)
    assert answered == status
    assert isinstance(body["message"], str) and body["message"]
    assert headers["x-line-request-id"]
    assert line.delivered() == []


def test_a_reply_token_works_once(line):
    token = line.issue_reply_token(USER)
    assert reply(line, text("first"), token=token)[0] == 200
    status, body, _ = reply(line, text("second"), token=token)
    assert (status, body) == (400, {"message": "Invalid reply token"})
    assert line.texts_to(USER) == ["first"]


def test_without_strict_tokens_any_token_works_once_and_rt_tokens_name_their_user(line):
    line.strict_tokens = False
    assert reply(line, text("to someone"), token="0f3e9b2c7a")[0] == 200
    assert reply(line, text("again"), token="0f3e9b2c7a")[0] == 400
    assert reply(line, text("to the other"), token=f"rt-{OTHER}-bench-17")[0] == 200
    assert line.texts_to(OTHER) == ["to the other"]


def test_push_with_the_same_retry_key_twice_is_409_and_one_delivery(line):
    key, api = str(uuid.uuid4()), sdk(line)
    request = PushMessageRequest(to=USER, messages=[TextMessage(text="提醒：前測")])
    first = api.push_message_with_http_info(request, x_line_retry_key=key, _request_timeout=5)
    with pytest.raises(ApiException) as refused:
        api.push_message_with_http_info(request, x_line_retry_key=key, _request_timeout=5)
    assert refused.value.status == 409
    assert json.loads(refused.value.body)["message"] == "The retry key is already accepted"
    assert refused.value.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert line.texts_to(USER) == ["提醒：前測"]


def test_a_retry_key_refused_by_a_fault_can_be_retried(line):
    key = str(uuid.uuid4())
    line.fail_next(1, status=500)
    assert push(line, text("once"), key=key)[0] == 500
    assert push(line, text("once"), key=key)[0] == 200
    assert push(line, text("once"), key=key)[0] == 409
    assert line.texts_to(USER) == ["once"]


def test_multicast_answers_empty_and_reaches_everyone(line):
    users = [f"U{i:032d}" for i in range(500)]
    status, body, _ = call(line, "/v2/bot/message/multicast", {"to": users, "messages": [text("通知")]},
                           headers={"X-Line-Retry-Key": str(uuid.uuid4())})
    assert (status, body) == (200, {})
    assert line.texts_to(users[0]) == line.texts_to(users[-1]) == ["通知"]
    assert call(line, "/v2/bot/message/quota/consumption", method="GET")[1] == {"totalUsage": 500}


def test_quota_runs_out_with_429(line):
    line.quota = 1
    assert call(line, "/v2/bot/message/quota", method="GET")[1] == {"type": "limited", "value": 1}
    assert push(line, text())[0] == 200
    assert push(line, text())[0] == 429


# -- profiles and the loading animation ---------------------------------------------------

def test_profiles_default_to_zh_hant_and_tests_can_set_the_language(line):
    api = sdk(line)
    assert api.get_profile(USER, _request_timeout=5).language == "zh-Hant"
    line.profiles[OTHER] = "en"
    assert api.get_profile(OTHER, _request_timeout=5).language == "en"
    line.profiles[OTHER] = {"displayName": "陳老闆", "language": "ja"}
    profile = api.get_profile(OTHER, _request_timeout=5)
    assert (profile.user_id, profile.display_name, profile.language) == (OTHER, "陳老闆", "ja")


def test_loading_animation_is_accepted_with_202(line):
    assert call(line, "/v2/bot/chat/loading/start", {"chatId": USER, "loadingSeconds": 20})[:2] == (202, {})


# -- faults -------------------------------------------------------------------------------

def test_delay_holds_every_answer_but_not_the_others(line):
    line.set_delay(0.3)
    started = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(lambda i: push(line, text(f"m{i}"), key=str(uuid.uuid4()))[0], range(20)))
    elapsed = time.monotonic() - started
    assert statuses == [200] * 20
    assert 0.3 <= elapsed < 1.5  # concurrent, not 20 × 0.3 s


def test_fail_next_then_normal_answers(line):
    line.fail_next(2, status=500)
    assert [push(line, text())[0] for _ in range(3)] == [500, 500, 200]
    line.fail_next(1, status=429)
    status, body, headers = push(line, text())
    assert (status, body) == (429, {"message": "Too Many Requests"})
    assert headers.get("Retry-After") is None
    assert len(line.delivered()) == 1


def test_fail_for_a_while(line):
    line.fail_for(0.3, status=503)
    assert push(line, text())[0] == 503
    assert line.wait_for(lambda: push(line, text())[0] == 200, timeout=5)  # once the while is over
    assert len(line.delivered()) == 1


def test_429_with_retry_after_for_a_while_on_one_path(line):
    line.fail_for(0.3, status=429, path_prefix="/v2/bot/message/push", retry_after=2)
    status, body, headers = push(line, text())
    assert (status, body, headers.get("Retry-After")) == (429, {"message": "Too Many Requests"}, "2")
    assert reply(line, text())[0] == 200  # another path is not limited
    line.wait_for(lambda: push(line, text())[0] == 200, timeout=2)
    line.fail_next(1, status=429, retry_after=1)
    assert push(line, text())[2].get("Retry-After") == "1"


def test_the_monthly_limit_is_a_429_without_retry_after_and_replies_still_work(line):
    line.quota = 0
    status, body, headers = push(line, text())
    assert (status, body["message"], headers.get("Retry-After")) == (429, "You have reached your monthly limit.", None)
    assert reply(line, text())[0] == 200


def test_a_delay_can_apply_to_one_path_only(line):
    line.set_delay(0.5, path="/v2/bot/message/reply")
    started = time.monotonic()
    assert push(line, text())[0] == 200
    assert time.monotonic() - started < 0.4
    assert reply(line, text())[0] == 200
    assert time.monotonic() - started >= 0.5
    assert line.delay_for("/v2/bot/message/reply") == 0.5 and line.delay_for("/v2/bot/message/push") == 0


def test_a_delayed_send_is_accepted_when_its_delay_ends_even_if_the_client_gave_up(line):
    line.set_delay(0.6, path="/v2/bot/message/reply")
    token = line.issue_reply_token(USER)
    request = urllib.request.Request(line.url + "/v2/bot/message/reply", method="POST", data=json.dumps(
        {"replyToken": token, "messages": [text("slow")]}).encode(), headers={
        "Authorization": "Bearer test-access-token", "Content-Type": "application/json"})
    with pytest.raises(OSError):  # the client's timeout: it cannot know whether LINE took it
        urllib.request.urlopen(request, timeout=0.2)
    assert line.texts_to(USER) == []
    assert line.wait_for(lambda: line.texts_to(USER) == ["slow"], timeout=3)


def test_reset_forgets_path_delays_and_faults(line):
    line.set_delay(1, path="/v2/bot/message/reply")
    line.fail_for(10, status=429, retry_after=5)
    line.fail_next(3, status=500, retry_after=5)
    line.quota = 0
    line.reset()
    assert line.delay_for("/v2/bot/message/reply") == 0 and line.path_delays == {}
    status, _body, headers = push(line, text())
    assert (status, headers.get("Retry-After")) == (200, None)


def test_wait_for_sees_a_late_delivery_and_gives_up_on_time(line):
    threading.Timer(0.2, lambda: push(line, text("late"))).start()
    assert line.wait_for(lambda: line.texts_to(USER) == ["late"], timeout=5)
    with pytest.raises(AssertionError):
        line.wait_for(lambda: len(line.delivered()) > 1, timeout=0.2)


def test_requests_are_recorded_and_reset_forgets_them(line):
    push(line, text("kept"), key="123e4567-e89b-12d3-a456-426614174000")
    call(line, "/nowhere", method="GET")
    first, second = line.requests
    assert (first.method, first.path, first.status, first.json["to"]) == ("POST", "/v2/bot/message/push", 200, USER)
    assert first.headers["x-line-retry-key"] == "123e4567-e89b-12d3-a456-426614174000"
    assert first.response["sentMessages"][0]["id"] and first.time > 0
    assert (second.status, second.response) == (404, {"message": "Not found"})
    line.set_delay(1)
    line.reset()
    assert line.requests == [] and line.delay == 0
    assert push(line, text("kept"), key="123e4567-e89b-12d3-a456-426614174000")[0] == 200  # keys forgotten too


def test_runs_standalone_and_prints_its_url():
    process = subprocess.Popen([sys.executable, "-m", "bot.mockline", "--port", "0", "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")

        class Remote:
            pass

        remote = Remote()
        remote.url = url
        status, body, _ = call(remote, "/v2/bot/message/reply", {"replyToken": "anything", "messages": [text()]})
        assert status == 200  # standalone: any reply token, once
    finally:
        process.terminate()
        process.wait(10)


def test_port_zero_picks_a_free_port_for_each_mock():
    with MockLine() as one, MockLine() as two:
        assert one.url != two.url
        assert call(two, "/v2/bot/message/quota", method="GET")[1] == {"type": "none"}
