"""`gonghao chat` for a newcomer: explicit button taps, and two consoles that keep to their own answers."""
from __future__ import annotations

import pytest

from bot.console import ConsoleChat
from tests.conftest import cleanup_backend, make_config


def test_two_consoles_see_only_their_own_answers_and_numbers_are_text(mock_line):
    config_one, cleanup_one = make_config("embedded", mock_line.url)
    config_two, cleanup_two = make_config("embedded", mock_line.url)
    first = ConsoleChat("U" + "c1" * 16, config=config_one, mock=mock_line)  # both talk to one LINE platform
    second = ConsoleChat("U" + "c2" * 16, config=config_two, mock=mock_line)
    try:
        first.follow()
        second.follow()
        asked = first.say("提案試算")
        assert "(1)" in asked  # the case types, as numbered buttons
        thanks = second.say("謝謝")
        assert thanks.startswith("不客氣") and asked.splitlines()[0] not in thanks  # its own answer only
        said = first.say("#1")  # "#1" taps the first button: a case type
        assert "家" in said  # now: how many enterprises
        said = first.say("60")
        said = first.say("1")  # a plain number is text: here a date that is not one, not a tap of (1)
        assert "(1)" in said and "略過" in said
        assert said.splitlines()[0] not in second.say("你好")
        # the links it prints point at a server this console runs: a changed link is refused there, not unreachable
        import urllib.error
        import urllib.request

        assert first.config.public_url.startswith("http://127.0.0.1:")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(first.config.public_url + "/d/letter/not-a-token", timeout=5)
        assert refused.value.code == 403
    finally:
        for console in (first, second):
            console.worker.stop()
            console.server.shutdown()
        cleanup_backend(cleanup_one)
        cleanup_backend(cleanup_two)
