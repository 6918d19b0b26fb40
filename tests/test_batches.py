"""The worker decides several users' events in one transaction on PostgreSQL (bot/worker.py decide_batch).

What must hold as it would one event at a time: every user answered once, a poison event costing
nobody else, two owners joining side by side each getting their own role's buttons, and the roles
read for the batch never outliving a change of membership made inside it.
"""
from __future__ import annotations

import uuid

import pytest
from sqlalchemy import delete

from bot import line_events as le
from storage import letters as store
from storage.models import AcceptedEvent
from tests.letter_support import last_buttons, make_case, quick
from tests.poison import text_that_always_fails

production = pytest.mark.parametrize("bot", ["production"], indirect=True)


def users(n: int) -> list[str]:
    return [f"U{uuid.uuid4().hex}" for _ in range(n)]


def queue_then_work(bot, events: list[dict]) -> None:
    """The events arrive while the worker is stopped, so it takes them together, as after a burst."""
    bot.stop_worker()
    assert bot.post(events).status_code == 200
    bot.start_worker()
    bot.wait_idle(timeout=60)


@production
def test_a_burst_from_many_users_is_answered_once_each(bot):
    quick(bot)
    people = users(40)
    queue_then_work(bot, [le.text_event(u, "聯絡窗口", reply_token=bot.token(u)) for u in people])
    assert [len(bot.line.texts_to(u)) for u in people] == [1] * len(people)
    assert len(bot.line.delivered()) == len(people)


@production
def test_a_poison_event_in_a_batch_costs_the_other_users_nothing(bot, monkeypatch):
    text_that_always_fails(monkeypatch, "boom")
    quick(bot)
    bot.services.queue.retry_base_ms = 10
    good, bad = users(12), users(1)[0]
    events = [le.text_event(u, "聯絡窗口", reply_token=bot.token(u)) for u in good]
    poison = le.text_event(bad, "boom", reply_token=bot.token(bad))
    queue_then_work(bot, events[:6] + [poison] + events[6:])
    assert [len(bot.line.texts_to(u)) for u in good] == [1] * len(good)
    assert bot.line.texts_to(bad) == ["抱歉，這則訊息我們沒辦法處理。請換個說法再試一次，或與計畫辦公室聯絡。"]
    with bot.services.db.session() as s:
        assert s.get(AcceptedEvent, poison["webhookEventId"]).status == "dead"


@production
def test_owners_and_a_proposer_joining_side_by_side_each_get_their_roles_buttons(bot):
    quick(bot)
    case = make_case(bot.services)
    owners, proposer = users(3), users(1)[0]
    people = owners + [proposer]
    for person in people:
        bot.says(person, "你好")
    joins = [le.text_event(u, case.owner_code, reply_token=bot.token(u)) for u in owners]
    queue_then_work(bot, joins + [le.text_event(proposer, case.proposer_code, reply_token=bot.token(proposer))])
    queue_then_work(bot, [le.postback_event(u, "agree", reply_token=bot.token(u)) for u in owners])  # the notice
    queue_then_work(bot, [le.text_event(u, "主選單", reply_token=bot.token(u)) for u in people])
    for person in people:
        values = {data for _label, data in last_buttons(bot, person)}
        mine, theirs = ("roster", "my letter") if person == proposer else ("my letter", "roster")
        assert mine in values and theirs not in values, (person == proposer, values)


@production
def test_roles_read_for_a_batch_give_way_to_a_membership_changed_in_it(bot):
    case = make_case(bot.services)
    person = users(1)[0]
    with bot.services.db.session() as s:
        store.prefetch_roles(s, [person])
        assert store.roles_of(s, person) == set()
        store.add_member(s, case.id, person, store.OWNER)  # not flushed yet
        assert store.roles_of(s, person) == {store.OWNER}
        s.flush()
        store.prefetch_roles(s, [person])
        assert store.roles_of(s, person) == {store.OWNER}
        s.execute(delete(store.CaseMember).where(store.CaseMember.user_id == person))
        assert store.roles_of(s, person) == set()


@production
def test_users_the_bot_has_not_met_have_their_profiles_asked_side_by_side(bot):
    """A batch must not wait for one profile after another: 12 new users at 0.5 s a profile would take
    6 s in a row; asked side by side they all come back within about one delay."""
    from bot.mockline import PROFILE_PREFIX

    quick(bot)
    bot.line.set_delay(0.5, path=PROFILE_PREFIX)
    people = users(12)
    queue_then_work(bot, [le.text_event(u, "聯絡窗口", reply_token=bot.token(u)) for u in people])
    assert [len(bot.line.texts_to(u)) for u in people] == [1] * len(people)
    answered = sorted(call.time for call in bot.line.requests if call.path.startswith(PROFILE_PREFIX))
    assert len(answered) == len(people)
    assert answered[-1] - answered[0] < 2.5, answered  # in a row: at least 5.5 s between the first and the last


@production
def test_the_worker_waits_quietly_while_its_places_are_full(bot, monkeypatch):
    """While batches taken fill the worker's places, its loop sleeps until places free up; it had
    turned thousands of times a second (a fifth of the worker's CPU under load)."""
    import threading

    from bot.worker import EventProcessor, Worker

    turns, deciding = [], threading.Event()
    real_turn, real_decide = Worker.turn, EventProcessor.decide_batch
    monkeypatch.setattr(Worker, "turn", lambda self: turns.append(1) or real_turn(self))

    def slow_decide(self, ids):
        deciding.set()
        threading.Event().wait(1.5)  # a slow database, say
        return real_decide(self, ids)
    quick(bot)
    people = users(48)  # more than the 32 places of a worker with 16 threads
    assert bot.post([le.follow_event(u, reply_token=bot.token(u)) for u in people]).status_code == 200
    bot.wait_idle(timeout=60)  # known to the bot now: their next events go in batches
    welcomed = [len(bot.line.texts_to(u)) for u in people]
    monkeypatch.setattr(EventProcessor, "decide_batch", slow_decide)
    bot.stop_worker()
    assert bot.post([le.text_event(u, "聯絡窗口", reply_token=bot.token(u)) for u in people]).status_code == 200
    bot.start_worker()
    assert deciding.wait(10)
    turns.clear()
    threading.Event().wait(1.0)  # watching the loop while the batches are being decided
    assert len(turns) < 50
    bot.wait_idle(timeout=60)
    assert [len(bot.line.texts_to(u)) - before for u, before in zip(people, welcomed)] == [1] * len(people)


@production
def test_a_batch_whose_state_another_worker_moved_writes_nothing(bot):
    """The version fences a batch's states as it fences one (a stalled worker's batch cannot commit)."""
    from storage.state import StaleState

    store, db = bot.services.store, bot.services.db
    first, second, newcomer = users(3)
    store.save_state(first, {"step": 1})
    store.save_state(second, {"step": 1})
    with db.session() as s:
        read = store.load_many(s, [first, second])
    store.save_state(second, {"step": 2})  # another worker got there first
    with pytest.raises(StaleState):
        with db.session() as s:
            store.save_many(s, [(first, {"step": 3}, read[first][1]), (second, {"step": 3}, read[second][1]),
                                (newcomer, {"step": 3}, -1)])
    with db.session() as s:
        after = store.load_many(s, [first, second, newcomer])
    assert [after.get(user, (None, -1))[0] for user in (first, second, newcomer)] == [{"step": 1}, {"step": 2}, None]
