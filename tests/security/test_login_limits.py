"""Login throttling that cannot be turned against a staff member: by (account, address) and by address, with a
growing wait; the owner of the account signs in from elsewhere while someone guesses."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import time_machine

from tests.roster_support import console  # noqa: F401

PASSWORD = "a long enough password"
ATTACKER, AMY_DESK = "203.0.113.66", "198.51.100.5"


def try_login(console, name, password, address, headers=None, app=None):
    client = (app or console.app).test_client()
    token = console.token(client)
    return client.post("/staff/login", data={"name": name, "password": password, "csrf_token": token},
                       environ_base={"REMOTE_ADDR": address}, headers=headers or {})


def test_a_guesser_is_slowed_down_more_and_more_but_the_account_owner_still_signs_in(console):
    console.client("amy", "admin")
    start = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False) as clock:
        for _ in range(5):
            assert try_login(console, "amy", "guess guess guess", ATTACKER).status_code == 401
        refused = try_login(console, "amy", PASSWORD, ATTACKER)  # even the right password, from there, now
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) == 60
        assert "請等候 1 分鐘後再試一次" in refused.get_data(as_text=True)

        # meanwhile amy, at her desk, signs in at once
        assert try_login(console, "amy", PASSWORD, AMY_DESK).status_code == 302

        clock.shift(timedelta(seconds=61))  # the guesser waited: one more guess, then twice as long to wait
        assert try_login(console, "amy", "guess again guess", ATTACKER).status_code == 401
        assert try_login(console, "amy", PASSWORD, ATTACKER).headers["Retry-After"] == "120"
        clock.shift(timedelta(seconds=121))
        assert try_login(console, "amy", "and again guess", ATTACKER).status_code == 401
        assert try_login(console, "amy", PASSWORD, ATTACKER).headers["Retry-After"] == "240"
        assert try_login(console, "amy", PASSWORD, AMY_DESK).status_code == 302


def test_guessing_many_accounts_from_one_address_slows_that_address_only(console):
    console.client("amy", "admin")
    for n in range(20):
        assert try_login(console, f"staff{n}", "guess guess guess", ATTACKER).status_code == 401
    assert try_login(console, "amy", PASSWORD, ATTACKER).status_code == 429
    assert try_login(console, "amy", PASSWORD, AMY_DESK).status_code == 302


def test_without_proxy_hops_a_forged_x_forwarded_for_changes_nothing(console):
    console.client("amy", "admin")
    for n in range(5):  # the guesser pretends to come from amy's desk, then from elsewhere each time
        forged = {"X-Forwarded-For": AMY_DESK if n == 0 else f"192.0.2.{n}"}
        assert try_login(console, "amy", "guess guess guess", ATTACKER, forged).status_code == 401
    assert try_login(console, "amy", PASSWORD, ATTACKER, {"X-Forwarded-For": "192.0.2.99"}).status_code == 429
    assert try_login(console, "amy", PASSWORD, AMY_DESK).status_code == 302


def test_behind_one_proxy_the_address_is_the_one_the_proxy_saw(console, tmp_path):
    from bot import create_app

    config = console.services.config.model_copy(update={"proxy_hops": 1})
    app = create_app(config)
    app.testing = True
    try:
        console.client("amy", "admin")
        proxy = "10.0.0.2"
        for n in range(5):  # the client forges the left part; the proxy appends what it saw
            headers = {"X-Forwarded-For": f"192.0.2.{n}, {ATTACKER}"}
            assert try_login(console, "amy", "guess guess guess", proxy, headers, app=app).status_code == 401
        limited = try_login(console, "amy", PASSWORD, proxy, {"X-Forwarded-For": f"192.0.2.77, {ATTACKER}"}, app=app)
        assert limited.status_code == 429
        # amy behind the same proxy, from her own address: signed in
        assert try_login(console, "amy", PASSWORD, proxy, {"X-Forwarded-For": AMY_DESK}, app=app).status_code == 302
    finally:
        app.extensions["gonghao"].close()


def test_a_flood_of_login_posts_from_one_address_is_cut_off_before_any_password_is_hashed(console):
    statuses = [try_login(console, f"nobody{n}", "x", "192.0.2.200").status_code for n in range(31)]
    assert statuses[:20] == [401] * 20 and statuses[-1] == 429
