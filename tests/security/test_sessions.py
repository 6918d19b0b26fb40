"""Staff sessions live on the server: a copied cookie dies at logout, idle and absolute expiry, password and role
changes, and an admin's "sign out everywhere"; the console lists the live sessions."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import time_machine

from storage.models import AuditEntry
from storage.staff import StaffAccount, StaffSession, add_account
from tests.roster_support import console  # noqa: F401

PASSWORD = "a long enough password"


def stolen(console, client):
    """Another browser holding a copy of ``client``'s session cookie (what an attacker who copied it has)."""
    thief = console.app.test_client()
    thief.set_cookie("session", client.get_cookie("session").value)
    return thief


def refused(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/staff/login")


def test_a_copied_cookie_stops_working_at_logout(console):
    admin = console.client("amy", "admin")
    thief = stolen(console, admin)
    assert thief.get("/staff/cases").status_code == 200
    admin.post("/staff/logout", data={"csrf_token": console.token(admin, "/staff/cases")})
    assert refused(thief.get("/staff/cases"))
    assert refused(admin.get("/staff/cases"))
    with console.db.session() as s:
        assert s.query(StaffSession).count() == 0
        assert [e.action for e in s.query(AuditEntry).filter(AuditEntry.action == "staff.logout")] == ["staff.logout"]


def test_the_cookie_holds_no_account_id_only_a_session_that_the_server_knows(console):
    admin = console.client("amy", "admin")
    with console.db.session() as s:
        (row,) = s.query(StaffSession).all()
    forged = console.app.test_client()
    with forged.session_transaction() as session:  # signed with the right key, naming no live session
        session["_user_id"] = row.id  # even the stored id (a hash) is not the token
        session["staff_id"] = 1
    assert refused(forged.get("/staff/cases"))
    assert admin.get("/staff/cases").status_code == 200


def test_a_session_ends_after_30_idle_minutes_and_after_8_hours_whatever_happens(console):
    start = datetime(2026, 11, 30, 1, 0, tzinfo=timezone.utc)
    with time_machine.travel(start, tick=False) as clock:
        idle = console.client("amy", "admin")
        busy = console.client("bob", "admin")
        clock.shift(timedelta(minutes=29))
        assert idle.get("/staff/cases").status_code == 200
        assert busy.get("/staff/cases").status_code == 200
        clock.shift(timedelta(minutes=20))
        assert busy.get("/staff/cases").status_code == 200
        clock.shift(timedelta(minutes=11))
        assert refused(idle.get("/staff/cases"))  # 31 minutes without a request

        for _ in range(21):  # a request every 20 minutes keeps it alive ... up to 8 hours after signing in
            assert busy.get("/staff/cases").status_code == 200
            clock.shift(timedelta(minutes=20))
        clock.shift(timedelta(minutes=1))
        assert refused(busy.get("/staff/cases"))  # 8 h 1 min after signing in, 21 minutes after its last request


def test_a_password_change_or_a_role_change_ends_every_session_of_the_account(console):
    admin = console.client("amy", "admin")
    laptop = stolen(console, admin)
    add_account(console.db, "amy", "admin", "a brand new long password")  # gonghao staff add amy (new password)
    assert refused(admin.get("/staff/cases")) and refused(laptop.get("/staff/cases"))

    viewer = console.client("ben", "admin")
    add_account(console.db, "ben", "viewer", PASSWORD)  # the same password, a smaller role
    assert refused(viewer.get("/staff/cases"))
    again = console.client()
    again.post("/staff/login", data={"name": "ben", "password": PASSWORD, "csrf_token": console.token(again)})
    assert again.get("/staff/cases/new").status_code == 403  # the new role, at once


def test_an_admin_signs_someone_out_everywhere_and_sees_every_live_session(console):
    amy = console.client("amy", "admin")
    bob_phone = console.client("bob", "viewer")
    bob_laptop = console.app.test_client()
    bob_laptop.post("/staff/login", data={"name": "bob", "password": PASSWORD, "csrf_token": console.token(bob_laptop)},
                    environ_base={"REMOTE_ADDR": "198.51.100.7"}, headers={"User-Agent": "BobLaptop/1.0"})
    page = amy.get("/staff/sessions").get_data(as_text=True)
    assert page.count("<td>bob") == 2 and page.count("<td>amy") == 1
    assert "198.51.100.7" in page and "BobLaptop/1.0" in page and "閒置 30 分鐘" in page

    with console.db.session() as s:
        bob = s.query(StaffAccount).filter_by(name="bob").one()
    token = console.token(amy, "/staff/sessions")
    # a viewer cannot sign others out
    assert bob_phone.post(f"/staff/accounts/{bob.id}/sign-out-everywhere",
                          data={"csrf_token": console.token(bob_phone, "/staff/sessions")}).status_code == 403
    # a viewer sees only their own sessions
    assert "<td>amy" not in bob_phone.get("/staff/sessions").get_data(as_text=True)
    response = amy.post(f"/staff/accounts/{bob.id}/sign-out-everywhere", data={"csrf_token": token})
    assert response.status_code == 302
    assert refused(bob_phone.get("/staff/cases")) and refused(bob_laptop.get("/staff/cases"))
    assert amy.get("/staff/cases").status_code == 200
    with console.db.session() as s:
        entry = s.query(AuditEntry).filter_by(action="staff.signed_out_everywhere").one()
    assert entry.actor == "staff:amy" and entry.subject == "staff:bob" and '"sessions": 2' in entry.detail


def test_ending_one_session_from_the_table(console):
    amy = console.client("amy", "admin")
    other = stolen(console, amy)
    with console.db.session() as s:
        (row,) = s.query(StaffSession).all()
    viewer = console.client("cy", "viewer")
    viewer.post("/staff/sessions/end", data={"session": row.id, "csrf_token": console.token(viewer, "/staff/sessions")})
    assert other.get("/staff/cases").status_code == 200  # a viewer cannot end someone else's
    amy.post("/staff/sessions/end", data={"session": row.id, "csrf_token": console.token(amy, "/staff/sessions")})
    assert refused(other.get("/staff/cases"))
