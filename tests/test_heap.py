"""Start-up's objects stay out of the garbage collector's walks (bot/heap.py).

A full collection in a web process walked the ~250,000 objects of the app, the dialogs and the editions
(120-210 ms on the benchmark's machine) while every thread waited, the webhook's acknowledgements too; in the
worker the knowledge bases were built at the first question and walked ever after. Each test runs in a process
of its own: freezing the test runner's heap would change every test after it.
"""
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(tmp_path, code: str) -> list[int]:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'heap.sqlite3'}", "GONGHAO_REMINDERS": "off",
           "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    env.pop("REDIS_URL", None)
    (tmp_path / "prom").mkdir()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return [int(word) for word in done.stdout.split()]


def test_gunicorn_freezes_the_built_app_before_it_forks_the_web_workers(tmp_path):
    frozen, walked, frozen_before = _run(tmp_path, """
        import gc, runpy
        import bot
        app = bot.create_app()
        before = gc.get_freeze_count()
        hooks = runpy.run_path("gunicorn.conf.py")
        hooks["on_starting"](None)
        print(gc.get_freeze_count(), len(gc.get_objects()), before)
    """)
    assert frozen_before == 0
    assert frozen > 100_000  # the app: its routes, the dialogs, the editions, SQLAlchemy's models
    assert walked < frozen / 100  # what a full collection still walks


def test_the_worker_builds_the_knowledge_bases_then_freezes_them_with_the_rest(tmp_path):
    built, frozen, walked = _run(tmp_path, """
        import gc
        from bot.worker import ready_to_answer
        from dialogs import faq
        frozen = ready_to_answer()
        print(faq._load_cached.cache_info().currsize, frozen, len(gc.get_objects()))
    """)
    assert built >= 1  # the first question does not build one (1-2 s)
    assert frozen > 100_000
    assert walked < frozen / 100


def test_the_standalone_mock_line_freezes_what_it_keeps_every_so_many_requests(tmp_path):
    """The benchmark's mock LINE platform keeps every send; its full collections walked them all (~250 ms at
    45,000 sends kept, every answer in flight waiting), which LINE itself never makes us wait for."""
    before, after_two, after_three = _run(tmp_path, """
        import gc, json, urllib.request
        from bot.mockline import MockLine
        mock = MockLine(freeze_every=3).start()
        def push():
            request = urllib.request.Request(mock.url + "/v2/bot/message/push", method="POST",
                data=json.dumps({"to": "U" + "0" * 32, "messages": [{"type": "text", "text": "hi"}]}).encode(),
                headers={"Content-Type": "application/json", "Authorization": "Bearer t"})
            urllib.request.urlopen(request, timeout=10).read()
        counts = [gc.get_freeze_count()]
        push(); push()
        counts.append(gc.get_freeze_count())
        push()
        counts.append(gc.get_freeze_count())
        print(*counts)
    """)
    assert before == after_two == 0
    assert after_three > 0
