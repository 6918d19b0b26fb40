"""The rows of the fault matrix (issue 9, item 7), at a scale: small in the test suite, large in bench/faults.py.

Each row starts a bot of its own (``FaultBot``: PostgreSQL schema, Redis prefix, workers as
processes), breaks one thing, and returns its figures: events, answered once / twice /
never at the mock, out of order, apologies, and for the rows with owners the letters, the
audit entries of their submission and the confirmations counted once. ``problems`` lists
what went wrong (empty: the row holds).
"""
from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

from bot import line_events as le
from bot.gateway import retry_key_for
from bot.mockline import PUSH, REPLY
from tests.fault_support import (BOT_FRESH_SECONDS, LINE_TOKEN_LIFE, FaultBot, Owners, PrivateRedis, TcpProxy,
                                 wait_until)

SENDS = "/v2/bot/message/"


@dataclass(frozen=True)
class Scale:
    users: int = 8  # users in a burst
    per_user: int = 2  # what each says in it
    owners: int = 3  # owners who send their letter in the middle of the fault
    outage: float = 3.0  # seconds PostgreSQL is away
    restart_after: Optional[float] = None  # seconds before the killed worker restarts; None: events aged instead
    timeout: float = 20.0  # seconds every event may take to be answered once the fault is over


SMALL = Scale()
LARGE = Scale(users=120, per_user=3, owners=10, outage=12.0, restart_after=60.0, timeout=180.0)

MakeBot = Callable[..., FaultBot]


def users(n: int) -> list[str]:
    return [f"U{uuid.uuid4().hex}" for _ in range(n)]


def burst(bot: FaultBot, people: list[str], per_user: int, age: float = 0.0, extra: Optional[list] = None,
          batch: int = 10) -> list[dict]:
    """Each user says ``per_user`` things (users interleaved, as LINE batches them); returns the events."""
    events = [bot.text(user, "聯絡窗口", age=age) for _ in range(per_user) for user in people] + (extra or [])
    for start in range(0, len(events), batch):
        bot.post(events[start:start + batch])
    return events


def warm_up(bot: FaultBot, timeout: float = 30.0) -> None:
    """One event from a user of its own, answered: the worker(s) are up."""
    event = bot.text(f"U{uuid.uuid4().hex}", "聯絡窗口")
    assert bot.post([event]) == 200
    assert bot.wait_answered([event], timeout), f"no worker answered; see {bot.log}"


def until_part_answered(bot: FaultBot, events: list[dict], share: float = 0.25, timeout: float = 30.0) -> None:
    wait_until(lambda: bot.outcomes(events).count(e["webhookEventId"] for e in events)["never"]
               <= len(events) * (1 - share), timeout, f"{share:.0%} of the burst answered", step=0.02)


def exactly_once(row: str, bot: FaultBot, events: list[dict], scale: Scale, owners: Optional[Owners] = None) -> dict:
    """The figures of a row whose every event must be answered once, in order, never with the apology."""
    bot.wait_answered(events, scale.timeout)
    bot.settle(quiet=1.0)
    out = bot.outcomes(events)
    accepted = [e["webhookEventId"] for e in events if e["webhookEventId"] in bot.accepted]
    figures = {"row": row, **out.count(accepted), "not accepted": len(events) - len(accepted),
               "out of order": len(out.order_problems), "apologies": out.apologies}
    problems = [f"{figures[k]} {k}" for k in ("twice", "never", "not accepted", "out of order", "apologies")
                if figures[k]]
    if owners:
        figures.update(owners.all_once())
        problems += [f"{k}: {figures[k]} of {len(owners.users)}" for k in ("letters once", "audit once",
                                                                            "confirmed once")
                     if figures[k] != len(owners.users)]
    figures["problems"] = problems
    if problems:  # where the missing or doubled answers stand, for whoever reads the failure
        figures["rows"] = bot.row_counts()
    return figures


# -- LINE misbehaves ------------------------------------------------------------------------------

def line_slower_than_the_client_timeout(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    """Replies take 2 s while the client gives up after 1 s: LINE has those replies, so no push may
    follow. Once LINE took the first reply of every user it is quick again, and the rest is answered."""
    bot = make_bot(GONGHAO_LINE_TIMEOUT="1")
    bot.start_worker()
    warm_up(bot)
    line.set_delay(2, path=REPLY)
    people = users(scale.users)
    events = burst(bot, people, scale.per_user)
    first = events[:len(people)]  # each user's first event (the burst interleaves users)
    try:
        wait_until(lambda: bot.outcomes(first).count(e["webhookEventId"] for e in first)["never"] == 0,
                   scale.timeout, "LINE to take every first reply (slowly)")
    finally:
        line.set_delay(0, path=REPLY)
    return exactly_once("LINE slower than the client timeout (1 s) until it took a reply for every user "
                        "(replies take 2 s)", bot, events, scale)


def line_500_for_a_while(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    line.fail_for(2, status=500, path_prefix=SENDS)
    events = burst(bot, users(scale.users), scale.per_user)
    return exactly_once("LINE 500 for 2 s", bot, events, scale)


def line_429_with_retry_after(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    line.fail_for(2, status=429, path_prefix=SENDS, retry_after=1)
    events = burst(bot, users(scale.users), scale.per_user)
    figures = exactly_once("LINE 429 with Retry-After: 1 for 2 s", bot, events, scale)
    figures["429 answers"] = line.stats[(PUSH, 429)] + line.stats[(REPLY, 429)]
    if figures["429 answers"] > 3 * len(events):  # Retry-After honoured, LINE not hammered
        figures["problems"].append(f"{figures['429 answers']} requests answered 429")
    return figures


def monthly_quota_used_up(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    """Pushes answer 429 "monthly limit": each is tried once and held; fresh events are still replied to."""
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    line.quota = 0
    half = max(1, scale.users // 2)
    fresh = burst(bot, users(half), 1)
    stale = burst(bot, users(half), 1, age=BOT_FRESH_SECONDS + 5)  # token too old: only a push can answer
    keys = {retry_key_for(e["webhookEventId"]) for e in stale}

    def push_attempts():
        return [c for c in list(line.requests) if c.path == PUSH and c.headers.get("x-line-retry-key") in keys]

    bot.wait_answered(fresh, scale.timeout)
    try:
        wait_until(lambda: {c.headers["x-line-retry-key"] for c in push_attempts()} == keys, scale.timeout,
                   "a push for each")
    except AssertionError:
        pass
    watch = time.monotonic()
    wait_until(lambda: time.monotonic() - watch > 3 or len(push_attempts()) > len(keys), 5, "the watch")
    out = bot.outcomes(fresh + stale)
    held = bot.sql("SELECT count(*) FROM deliveries WHERE status = 'held'")[0][0]
    figures = {"row": "the month's push quota used up", **out.count(e["webhookEventId"] for e in fresh),
               "stale events": len(stale), "push attempts in 3 s": len(push_attempts()), "held rows": held}
    figures["problems"] = [p for p, bad in (
        ("fresh events not replied to once", figures["once"] != len(fresh)),
        ("pushes tried more than once each (a push storm)", len(push_attempts()) > len(keys)),
        ("a stale event's push never tried", len({c.headers["x-line-retry-key"] for c in push_attempts()}) < len(keys)),
        ("stale answers not held (deliveries.status = 'held')", held != len(stale))) if bad]
    return figures


# -- the worker dies or stalls ---------------------------------------------------------------------

def kill(worker) -> None:
    worker.send_signal(signal.SIGKILL)
    worker.wait()


def worker_killed_restarted_at_once(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    bot = make_bot()
    owners = Owners(bot, scale.owners)
    bot.start_worker()
    owners.fill_in(timeout=scale.timeout)
    line.set_delay(0.1)
    events = burst(bot, users(scale.users * 4), scale.per_user + 1, extra=owners.confirms())
    until_part_answered(bot, events)
    kill(bot.workers[-1])
    bot.start_worker()
    return exactly_once("worker SIGKILLed mid-burst, restarted at once", bot, events, scale, owners)


def worker_killed_restarted_later(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    """The restart comes after the reply tokens went stale: replies that reached LINE before the
    kill must not be pushed again. The suite ages the events instead of waiting a minute."""
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    age = 0.0 if scale.restart_after else BOT_FRESH_SECONDS - 4
    line.reply_token_ttl = LINE_TOKEN_LIFE - age  # LINE too refuses them once the event is a minute old
    line.set_delay(0.3, path=REPLY)
    events = burst(bot, users(scale.users * 4), scale.per_user, age=age)
    until_part_answered(bot, events)
    kill(bot.workers[-1])
    killed = time.monotonic()
    if scale.restart_after:
        wait_until(lambda: time.monotonic() - killed >= scale.restart_after, scale.restart_after + 5, "the restart")
    else:
        youngest = max(e["timestamp"] for e in events) / 1000
        wait_until(lambda: time.time() - youngest > BOT_FRESH_SECONDS + 1, 15, "every reply token to be stale")
    bot.start_worker()
    label = f"{scale.restart_after:.0f} s later" if scale.restart_after else "after the tokens went stale"
    return exactly_once(f"worker SIGKILLed mid-burst, restarted {label}", bot, events, scale)


def two_workers_one_stopped_past_its_lease(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    bot = make_bot()
    owners = Owners(bot, scale.owners)
    bot.start_worker()
    bot.start_worker()
    owners.fill_in(timeout=scale.timeout)
    line.set_delay(0.2, path=REPLY)
    events = burst(bot, users(scale.users * 4), scale.per_user + 1, extra=owners.confirms())
    stalled = bot.workers[0]
    until_part_answered(bot, events)
    stalled.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    bot.wait_answered(events, scale.timeout)  # the other worker takes over once the lease (2 s) is over
    wait_until(lambda: time.monotonic() - stopped > 3.5, 5, "the lease to be long over")
    stalled.send_signal(signal.SIGCONT)
    return exactly_once("two workers, one SIGSTOPped past its lease (2 s), then resumed", bot, events, scale,
                        owners)


# -- PostgreSQL goes away ----------------------------------------------------------------------------

def postgresql_outage(make_bot: MakeBot, line, mode: str, scale: Scale = SMALL) -> dict:
    """``mode``: "refuse" (connections refused and cut) or "silent" (a black hole), for ``scale.outage`` s,
    while events keep coming; owners send their letters just before it begins."""
    with TcpProxy(target=("127.0.0.1", 5432)) as proxy:
        bot = make_bot(proxy=proxy)
        owners = Owners(bot, scale.owners)
        bot.start_worker()
        owners.fill_in(timeout=scale.timeout)
        people = users(scale.users * 2)
        line.set_delay(0.05)
        events = burst(bot, people, scale.per_user, extra=owners.confirms())
        getattr(proxy, mode)()
        began = time.monotonic()
        while time.monotonic() - began < scale.outage:  # events keep coming
            events += burst(bot, people[:4], 1)
            time.sleep(0.3)
        proxy.pass_()
        what = "refusing connections" if mode == "refuse" else "silent (a black hole)"
        return exactly_once(f"PostgreSQL {what} for {scale.outage:.0f} s", bot, events, scale, owners)


def postgresql_refusing(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    return postgresql_outage(make_bot, line, "refuse", scale)


def postgresql_silent(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    return postgresql_outage(make_bot, line, "silent", scale)


# -- Redis restarts -------------------------------------------------------------------------------------

def redis_restarted(make_bot: MakeBot, line, aof: bool, scale: Scale = SMALL) -> dict:
    redis = PrivateRedis(aof=aof).start()
    try:
        bot = make_bot(redis_url=redis.url)
        bot.start_worker()
        warm_up(bot)
        line.set_delay(0.05)
        people = users(scale.users * 2)
        events = burst(bot, people, scale.per_user)
        until_part_answered(bot, events)
        redis.restart()
        events += burst(bot, people, 1)
        return exactly_once(f"Redis restarted ({'AOF' if aof else 'no persistence'})", bot, events, scale)
    finally:
        redis.close()


def redis_restarted_aof(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    return redis_restarted(make_bot, line, True, scale)


def redis_restarted_without_persistence(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    return redis_restarted(make_bot, line, False, scale)


# -- poison events -------------------------------------------------------------------------------------

DEEP_BODY = b'{"destination":"U' + b"0" * 32 + b'","events":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}"


def poison_events(make_bot: MakeBot, line, scale: Scale = SMALL) -> dict:
    """Bad events in the same request as good ones: the good are answered once, the bad end (refused
    at the webhook, or dead-lettered with the user told once), nothing is retried forever; a body
    nested 100,000 deep is a 400."""
    bot = make_bot()
    bot.start_worker()
    warm_up(bot)
    good = [bot.text(u, "聯絡窗口") for u in users(max(3, scale.users // 2))]
    integer = le.text_event("placeholder", "聯絡窗口", reply_token=line.issue_reply_token("12345"),
                            timestamp=bot.timestamp(12345))
    integer["source"]["userId"] = 12345
    poison = [bot.text("U" + "a" * 69, "聯絡窗口"), integer, bot.text(f"U{uuid.uuid4().hex}", "我想問\ud800截止日")]
    request = good[:1] + poison[:1] + good[1:2] + poison[1:] + good[2:]
    status = bot.post(request)
    deep_status = bot.post([], body=DEEP_BODY)
    bot.wait_answered(good, scale.timeout / 2)
    bot.settle(quiet=2)
    out = bot.outcomes(good + poison)
    rows = bot.event_status()
    endings = []
    for event in poison:
        event_id, user = event["webhookEventId"], event["source"]["userId"]
        told = out.answered[event_id] + (out.other_sends.get(user, 0) if isinstance(user, str) else 0)
        endings.append([rows.get(event_id, "refused"), told])
    figures = {"row": "poison events mixed with good ones", **out.count(e["webhookEventId"] for e in good),
               "request status": status, "deep body status": deep_status, "poison (status, told)": endings}
    figures["problems"] = [p for p, bad in (
        (f"the mixed request answered {status}", status != 200),
        (f"the deep body answered {deep_status}", deep_status != 400),
        ("good events not answered once", figures["once"] != len(good)),
        ("a poison event neither refused nor dead-lettered and told once (or answered once)",
         any(tuple(e) not in (("refused", 0), ("dead", 1), ("done", 1)) for e in endings))) if bad]
    return figures


ROWS = [line_slower_than_the_client_timeout, line_500_for_a_while, line_429_with_retry_after, monthly_quota_used_up,
        worker_killed_restarted_at_once, worker_killed_restarted_later, two_workers_one_stopped_past_its_lease,
        postgresql_refusing, postgresql_silent, redis_restarted_aof, redis_restarted_without_persistence,
        poison_events]
