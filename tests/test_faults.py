"""The fault matrix (issue 9, item 7): each fault production can meet, small enough for the suite.

One row per test, PostgreSQL + Redis, the webhook in this process and the workers as real
processes (SIGKILL and SIGSTOP are real). Outcomes are counted where the user sees them:
for every event the webhook answered 200, the sends the mock LINE platform accepted with its
reply token or its push retry key — exactly one, in the user's order, never the apology —
and in the database: a letter sent in the middle of a fault is one ``letters`` row, one
``letter.submitted`` audit entry and one confirmation. The larger version, with more users
and the real 60 s restart, is ``bench/faults.py``.

Set GONGHAO_FAULT_FIGURES=/some/file.jsonl to have each row append its figures there.
"""
from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from bot import line_events as le
from bot.gateway import retry_key_for
from bot.mockline import PUSH, REPLY
from tests.fault_support import (BOT_FRESH_SECONDS, LINE_TOKEN_LIFE, FaultBot, Owners, PrivateRedis, TcpProxy,
                                 wait_until)

REPLY_PATH, SENDS = REPLY, "/v2/bot/message/"


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


def users(n: int) -> list[str]:
    return [f"U{uuid.uuid4().hex}" for _ in range(n)]


def burst(bot: FaultBot, people: list[str], per_user: int, age: float = 0.0, extra: list | None = None,
          batch: int = 10) -> list[dict]:
    """Each user says ``per_user`` things (users interleaved, as LINE batches them); returns the events."""
    events = [bot.text(user, "聯絡窗口", age=age) for _ in range(per_user) for user in people] + (extra or [])
    for start in range(0, len(events), batch):
        bot.post(events[start:start + batch])
    return events


def warm_up(bot: FaultBot, timeout: float = 20.0) -> None:
    """One event from a user of its own, answered: the worker(s) are up."""
    event = bot.text(f"U{uuid.uuid4().hex}", "聯絡窗口")
    assert bot.post([event]) == 200
    assert bot.wait_answered([event], timeout), f"no worker answered; see {bot.log}"


def shown(figures: dict) -> str:
    return json.dumps(figures, ensure_ascii=False)


def record(row: str, figures: dict) -> dict:
    path = os.environ.get("GONGHAO_FAULT_FIGURES")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"row": row, **figures}, ensure_ascii=False) + "\n")
    return figures


def assert_exactly_once(row: str, bot: FaultBot, events: list[dict], owners: Owners | None = None,
                        timeout: float = 20.0) -> dict:
    """Every accepted event answered once, in order, never with the apology; the owners' letters once."""
    bot.wait_answered(events, timeout)
    bot.settle(quiet=1.0)
    out = bot.outcomes(events)
    accepted = [e["webhookEventId"] for e in events if e["webhookEventId"] in bot.accepted]
    figures = {**out.count(accepted), "not accepted": len(events) - len(accepted),
               "out of order": len(out.order_problems), "apologies": out.apologies}
    if owners:
        figures.update(owners.all_once())
    record(row, figures)
    assert figures["once"] == figures["events"], shown(figures)
    assert len(accepted) == len(events), shown(figures)  # LINE's redelivery got every event in
    assert out.order_problems == [] and out.apologies == 0, shown(figures)
    if owners:
        n = len(owners.users)
        once = (figures["letters once"], figures["audit once"], figures["confirmed once"])
        assert once == (n, n, n), shown(figures)
    return figures


# -- LINE misbehaves ------------------------------------------------------------------------

def test_line_slower_than_the_client_timeout(make_bot, line):
    """Replies take 2 s, the client gives up after 1 s: LINE has the reply, so no push may follow."""
    bot = make_bot(GONGHAO_LINE_TIMEOUT="1")
    bot.start_worker()
    warm_up(bot)
    line.set_delay(2, path=REPLY_PATH)
    events = burst(bot, users(8), 2)
    assert_exactly_once("LINE slower than the client timeout", bot, events)


def test_line_500_for_a_while(make_bot, line):
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    line.fail_for(2, status=500, path_prefix=SENDS)
    events = burst(bot, users(8), 2)
    assert_exactly_once("LINE 500 for 2 s", bot, events)


def test_line_429_with_retry_after_for_a_while(make_bot, line):
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    line.fail_for(2, status=429, path_prefix=SENDS, retry_after=1)
    events = burst(bot, users(8), 2)
    figures = assert_exactly_once("LINE 429 with Retry-After for 2 s", bot, events)
    throttled = line.stats[(PUSH, 429)] + line.stats[(REPLY, 429)]
    assert throttled <= 3 * len(events), (throttled, shown(figures))  # Retry-After honoured, not hammered


def test_monthly_quota_used_up_holds_pushes_without_a_storm(make_bot, line):
    """Pushes answer 429 "monthly limit": each is tried once and held; fresh events are still replied to."""
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    line.quota = 0
    fresh = burst(bot, users(4), 1)
    stale = burst(bot, users(4), 1, age=BOT_FRESH_SECONDS + 5)  # reply token too old: only a push can answer
    keys = {retry_key_for(e["webhookEventId"]) for e in stale}

    def push_attempts():
        return [c for c in line.requests if c.path == PUSH and c.headers.get("x-line-retry-key") in keys]

    assert bot.wait_answered(fresh, 20)
    wait_until(lambda: {c.headers["x-line-retry-key"] for c in push_attempts()} == keys, 20, "a push for each")
    first_round = time.monotonic()
    wait_until(lambda: time.monotonic() - first_round > 3 or len(push_attempts()) > len(keys), 5, "the watch")
    held = bot.sql("SELECT count(*) FROM deliveries WHERE status = 'held'")[0][0]
    out = bot.outcomes(fresh + stale)
    figures = record("monthly quota used up", {
        **out.count(e["webhookEventId"] for e in fresh), "stale events": len(stale),
        "push attempts in 3 s": len(push_attempts()), "held rows": held})
    assert figures["once"] == len(fresh) and figures["twice"] == 0, shown(figures)
    assert len(push_attempts()) == len(keys), shown(figures)  # one try each, no storm
    assert held == len(stale), shown(figures)  # kept for when the quota is raised, not retried


# -- the worker dies or stalls -----------------------------------------------------------------

def until_part_answered(bot: FaultBot, events: list[dict], share: float = 0.25, timeout: float = 20.0) -> None:
    wait_until(lambda: bot.outcomes(events).count(e["webhookEventId"] for e in events)["never"]
               <= len(events) * (1 - share), timeout, f"{share:.0%} of the burst answered", step=0.02)


def test_worker_killed_mid_burst_and_restarted_at_once(make_bot, line):
    bot = make_bot()
    owners = Owners(bot, 3)
    bot.start_worker()
    owners.fill_in()
    line.set_delay(0.1)
    events = burst(bot, users(30), 3, extra=owners.confirms())
    worker = bot.workers[-1]
    until_part_answered(bot, events)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    bot.start_worker()
    assert_exactly_once("worker SIGKILLed mid-burst, restarted at once", bot, events, owners)


def test_worker_killed_and_restarted_after_the_reply_tokens_expired(make_bot, line):
    """The restart comes after the tokens went stale (events aged instead of waiting 60 s):
    replies that reached LINE before the kill must not be pushed again."""
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    age = BOT_FRESH_SECONDS - 4
    line.reply_token_ttl = LINE_TOKEN_LIFE - age  # LINE too refuses them once the event is a minute old
    line.set_delay(0.3, path=REPLY_PATH)
    events = burst(bot, users(30), 2, age=age)
    worker = bot.workers[-1]
    until_part_answered(bot, events)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    oldest_young = max(e["timestamp"] for e in events) / 1000
    wait_until(lambda: time.time() - oldest_young > BOT_FRESH_SECONDS + 1, 15, "every reply token to be stale")
    bot.start_worker()
    assert_exactly_once("worker SIGKILLed, restarted after the tokens expired", bot, events)


def test_two_workers_one_stopped_past_its_lease_then_resumed(make_bot, line):
    bot = make_bot()
    owners = Owners(bot, 3)
    bot.start_worker()
    bot.start_worker()
    owners.fill_in()
    line.set_delay(0.2, path=REPLY_PATH)
    events = burst(bot, users(30), 3, extra=owners.confirms())
    stalled = bot.workers[0]
    until_part_answered(bot, events)
    stalled.send_signal(signal.SIGSTOP)
    stopped_at = time.monotonic()
    bot.wait_answered(events, 20)  # the other worker takes over once the lease (2 s) is over
    wait_until(lambda: time.monotonic() - stopped_at > 3.5, 5, "the lease to be long over")
    stalled.send_signal(signal.SIGCONT)
    assert_exactly_once("two workers, one SIGSTOPped past its lease then resumed", bot, events, owners)


# -- PostgreSQL goes away -------------------------------------------------------------------------

def pg_outage(make_bot, line, mode: str, row: str):
    with TcpProxy(target=("127.0.0.1", 5432)) as proxy:
        bot = make_bot(proxy=proxy)
        owners = Owners(bot, 3)
        bot.start_worker()
        owners.fill_in()
        people = users(20)
        line.set_delay(0.05)
        events = burst(bot, people, 2, extra=owners.confirms())
        getattr(proxy, mode)()
        began = time.monotonic()
        while time.monotonic() - began < 3:  # events keep coming during the outage
            events += burst(bot, people[:4], 1)
            time.sleep(0.3)
        proxy.pass_()
        assert_exactly_once(row, bot, events, owners, timeout=30)


def test_postgresql_refusing_connections_for_a_while(make_bot, line):
    pg_outage(make_bot, line, "refuse", "PostgreSQL refusing connections for 3 s")


def test_postgresql_silent_for_a_while(make_bot, line):
    pg_outage(make_bot, line, "silent", "PostgreSQL silent (black hole) for 3 s")


# -- Redis restarts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("aof", [True, False], ids=["aof", "no-persistence"])
def test_redis_restarted(make_bot, line, aof):
    redis = PrivateRedis(aof=aof).start()
    try:
        bot = make_bot(redis_url=redis.url)
        bot.start_worker()
        warm_up(bot)
        line.set_delay(0.05)
        people = users(20)
        events = burst(bot, people, 2)
        until_part_answered(bot, events)
        redis.restart()
        events += burst(bot, people, 1)
        assert_exactly_once(f"Redis restarted ({'AOF' if aof else 'no persistence'})", bot, events)
    finally:
        redis.close()


# -- poison events ---------------------------------------------------------------------------------------

def test_poison_events_mixed_with_good_ones(make_bot, line):
    """Bad events in the same request as good ones: the good are answered once, the bad end
    (refused at the webhook, or dead-lettered with the user told once), nothing is retried forever."""
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    good_users = users(3)
    good = [bot.text(u, "聯絡窗口") for u in good_users]
    long_id = "U" + "a" * 69
    integer = le.text_event("placeholder", "聯絡窗口", reply_token=line.issue_reply_token("12345"),
                            timestamp=bot.timestamp(12345))
    integer["source"]["userId"] = 12345
    surrogate = bot.text(f"U{uuid.uuid4().hex}", "我想問\ud800截止日")
    poison = [bot.text(long_id, "聯絡窗口"), integer, surrogate]
    request = [good[0], poison[0], good[1], poison[1], poison[2], good[2]]
    status = bot.post(request)
    deep = b'{"destination":"U' + b"0" * 32 + b'","events":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    deep_status = bot.post([], body=deep)
    bot.wait_answered(good, 15)
    bot.settle(quiet=2)
    out = bot.outcomes(good + poison)
    rows = bot.event_status()
    endings = []
    for event in poison:
        event_id, user = event["webhookEventId"], event["source"]["userId"]
        told = out.answered[event_id] + (out.other_sends.get(user, 0) if isinstance(user, str) else 0)
        endings.append((rows.get(event_id, "refused"), told))
    figures = record("poison events mixed with good ones", {
        **out.count(e["webhookEventId"] for e in good), "request status": status, "deep body status": deep_status,
        "poison endings": endings})
    assert status == 200 and deep_status == 400, shown(figures)
    assert figures["once"] == len(good), shown(figures)
    for ending, told in endings:
        assert (ending, told) in (("refused", 0), ("dead", 1), ("done", 1)), shown(figures)
