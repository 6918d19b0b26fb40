"""The loading animation is shown only when an answer takes more than a moment."""
from __future__ import annotations

import time

from bot.worker import LoadingAnimations


def test_an_answer_taking_long_shows_the_animation_once_and_a_quick_one_never():
    shown = []
    loading = LoadingAnimations(shown.append, after=0.1, tick=0.02)
    quick = loading.watch("Uquick")
    loading.done(quick)  # answered at once
    slow = loading.watch("Uslow")
    time.sleep(0.3)
    loading.done(slow)
    time.sleep(0.1)
    assert shown == ["Uslow"]
