"""Ten messages from one user at the same moment are handled one at a time, in order."""
from __future__ import annotations

import threading

from dialogs.engine import Dialog, Intent, Outcome, Step
from dialogs.messages import Text
from bot import line_events as le

USER = "U2222222222222222222222222222222b"


def _install_counting_dialog(services):
    """A dialog of ten free-text steps; each question repeats what came before."""
    steps = [Step(f"a{i}", (lambda ctx, i=i: "so far: " + ",".join(ctx.values.get(f"a{j}", "") for j in range(i))))
             for i in range(10)]
    dialog = Dialog("count", steps, finish=lambda ctx: Outcome([Text("done: " + ",".join(ctx.values[f"a{i}"] for i in range(10)))]))
    conv = services.conversation
    conv.dialogs["count"] = dialog
    conv.intents.insert(0, Intent("count", ["count"], lambda ctx, text: Outcome(start="count")))


def test_ten_messages_at_once_are_handled_in_order(bot):
    _install_counting_dialog(bot.services)
    bot.says(USER, "count")
    # the reorder window covers how far apart "at once" arrives: ten threads on a busy 2-core machine
    # can take longer than the default 250 ms to post (the window is what orders them, whatever its length)
    bot.services.queue.reorder_ms = 3000
    base = le.now_ms()
    events = [le.text_event(USER, f"m{i}", reply_token=bot.token(USER), timestamp=base + i) for i in range(10)]
    # ten separate webhook requests arriving at the same moment, in shuffled order
    order = [3, 0, 7, 1, 9, 2, 5, 8, 4, 6]
    barrier = threading.Barrier(len(order))

    def post(i):
        barrier.wait()
        assert bot.post([events[i]]).status_code == 200

    threads = [threading.Thread(target=post, args=(i,)) for i in order]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    bot.wait_idle()
    texts = bot.line.texts_to(USER)
    assert texts[-1] == "done: " + ",".join(f"m{i}" for i in range(10))
    assert sum(t.startswith("done:") for t in texts) == 1


def test_ten_events_in_one_request_are_handled_in_timestamp_order(bot):
    _install_counting_dialog(bot.services)
    bot.says(USER, "count")
    base = le.now_ms()
    events = [le.text_event(USER, f"m{i}", reply_token=bot.token(USER), timestamp=base + i) for i in range(10)]
    assert bot.post(list(reversed(events))).status_code == 200
    bot.wait_idle()
    assert bot.line.texts_to(USER)[-1] == "done: " + ",".join(f"m{i}" for i in range(10))
