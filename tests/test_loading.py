"""The loading animation is shown only when an answer takes more than a moment."""
from __future__ import annotations

import threading

from bot.worker import LoadingAnimations


def test_an_answer_taking_long_shows_the_animation_once_and_a_quick_one_never():
    shown = []
    changed = threading.Condition()

    def show(user_id: str) -> None:
        with changed:
            shown.append(user_id)
            changed.notify_all()

    def seen(user_id: str) -> bool:
        with changed:
            return changed.wait_for(lambda: user_id in shown, timeout=5)

    loading = LoadingAnimations(show, after=0.1, tick=0.02)
    quick = loading.watch("Uquick")
    loading.done(quick)  # answered at once
    slow = loading.watch("Uslow")
    assert seen("Uslow")  # its moment passed while it was still open
    loading.done(slow)
    probe = loading.watch("Uprobe")  # due after the slow one: once it shows, the timer has looked again since
    assert seen("Uprobe")
    loading.done(probe)
    assert shown == ["Uslow", "Uprobe"]  # the quick one never, the slow one once
