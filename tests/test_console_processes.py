"""Two `gonghao chat` consoles at once, as a newcomer starts them in two terminals.

Both run in the same directory, so on the same instance/ SQLite file, each with its own
in-process worker and its own mock LINE platform. Each talks as its own user, at the same
time, a burst of messages. Each must print exactly its own user's answers, one per
message; each console's mock must have received exactly its own user's answers, each
once, as replies (a reply token goes back to the platform that issued it); and nothing
else may be printed (no log lines, no tracebacks).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

# Runs `gonghao chat` as the command line does; when it ends, writes what its mock LINE
# platform accepted (to whom, and the texts) to the file named by GONGHAO_TEST_MOCK_LOG.
CONSOLE = r"""
import json, os, sys
from bot import mockline

stop = mockline.MockLine.stop

def stop_and_tell(self):
    calls = [{"path": c.path, "to": list(c.to), "texts": [mockline.message_text(m) for m in c.messages]}
             for c in self.delivered()]
    with open(os.environ["GONGHAO_TEST_MOCK_LOG"], "w") as out:
        json.dump(calls, out)
    stop(self)

mockline.MockLine.stop = stop_and_tell
from bot.cli import main
main(["chat", "--user", sys.argv[1]])
"""
PROMPT = "你> "
# Each user asks things whose answers tell them apart; the same question always gets the same answer.
BURSTS = {"U" + "a1" * 16: ["說明", "聯絡窗口"] * 8,
          "U" + "b2" * 16: ["常見問題", "你好"] * 8}


def console_env() -> dict:
    """A newcomer's environment: nothing configured, so the embedded defaults (instance/ SQLite)."""
    keep = {k: v for k, v in os.environ.items()
            if not k.startswith(("GONGHAO_", "LINE_", "DATABASE_", "REDIS_", "PROMETHEUS_"))}
    return dict(keep, PYTHONUNBUFFERED="1")


def start(user: str, where) -> subprocess.Popen:
    """The console, with the user's whole burst already typed (it reads one line after each answer)."""
    typed = where / f"typed-{user}.txt"
    typed.write_text("".join(line + "\n" for line in BURSTS[user]), encoding="utf-8")
    env = dict(console_env(), GONGHAO_TEST_MOCK_LOG=str(where / f"mock-{user}.json"))
    with typed.open() as stdin:
        return subprocess.Popen([sys.executable, "-c", CONSOLE, user], cwd=where, env=env, text=True,
                                stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def answers(stdout: str) -> list[str]:
    """The bot's answer to the follow, then to each line typed, as printed."""
    chunks = stdout.split(PROMPT)
    assert chunks[-1].strip() == "", "the console ended before its last prompt"
    return [chunk.strip() for chunk in chunks[:-1]]


def test_two_consoles_on_one_instance_each_get_their_own_answers_once(tmp_path):
    consoles = {user: start(user, tmp_path) for user in BURSTS}  # both at once, on a fresh instance/
    try:
        with ThreadPoolExecutor(len(consoles)) as pool:
            outputs = dict(zip(consoles, pool.map(lambda p: p.communicate(timeout=180)[:2], consoles.values())))
    finally:
        for console in consoles.values():
            if console.poll() is None:
                console.kill()
    for user, (stdout, stderr) in outputs.items():
        other = next(u for u in consoles if u != user)
        assert consoles[user].returncode == 0, stderr
        assert stderr == "", f"the console printed log lines or errors:\n{stderr}"
        printed = answers(stdout)
        assert len(printed) == 1 + len(BURSTS[user]), printed  # the follow, then each line
        assert all("bot> " in answer for answer in printed), printed  # none of them empty
        by_question: dict[str, set] = {}
        for question, answer in zip(BURSTS[user], printed[1:]):
            by_question.setdefault(question, set()).add(answer)
        assert all(len(seen) == 1 for seen in by_question.values()), "the same question answered differently"
        calls = json.loads((tmp_path / f"mock-{user}.json").read_text())  # what its own mock LINE accepted
        assert [call["to"] for call in calls] == [[user]] * (1 + len(BURSTS[user])), "answers at the wrong mock"
        assert {call["path"] for call in calls} == {"/v2/bot/message/reply"}, "an answer was pushed, not replied"
        assert other not in json.dumps(calls)
