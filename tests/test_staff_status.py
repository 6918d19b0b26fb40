"""The staff status page: today's figures from the database, dead letters retried or discarded by admins only."""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import time_machine

from bot import heartbeat
from dialogs.dates import TAIPEI
from storage.models import AcceptedEvent, AuditEntry, Delivery
from tests.roster_support import console  # noqa: F401

USER = "U" + "89abcdef" * 4


def add(db, event_id, status="done", age=60.0, answered_after=None, reason=None, attempts=0, delivery=None):
    received = datetime.now(timezone.utc) - timedelta(seconds=age)
    with db.session() as s:
        s.add(AcceptedEvent(webhook_event_id=event_id, user_id=USER, user_key=USER, event_type="message",
                            event_timestamp=0, payload='{"text": "我的電話 0912345678"}', status=status,
                            received_at=received, reason=reason, attempts=attempts, next_attempt_at=123))
        if answered_after is not None or delivery:
            s.add(Delivery(event_id=event_id, user_id=USER, messages="[]", method="reply",
                           status=delivery or "sent", reason="429 quota" if delivery == "held" else None,
                           sent_at=received + timedelta(seconds=answered_after) if answered_after else None))


def page(client) -> str:
    response = client.get("/staff/status")
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_status_page_shows_today_the_queue_and_what_is_stuck(console):  # noqa: F811
    with time_machine.travel(datetime(2026, 11, 30, 12, 0, tzinfo=TAIPEI), tick=True):  # not just after midnight
        _status_page_today(console)


def _status_page_today(console):  # noqa: F811
    db = console.db
    for n, wait in enumerate((0.2, 0.4, 0.3, 1.5)):
        add(db, f"ev-done-{n}", answered_after=wait)
    add(db, "ev-yesterday", age=2 * 86400, answered_after=9.0)
    add(db, "ev-queued", status="queued", age=90)
    add(db, "ev-dead", status="dead", reason="the dialog failed 5 times (KeyError)", attempts=5)
    add(db, "ev-held", delivery="held")
    heartbeat.beat(db, "worker-host:1:abc")
    html = page(console.client("amy", "admin"))
    assert "系統狀態" in html
    assert "中位數 300 ms，95% 在 1.5 s 內，99% 在 1.5 s 內，最慢 1.5 s（共 4 則回覆）" in html
    assert "收到 7 則" in html
    assert re.search(r"1 個事件，最久的已等 1 min 3\d s", html)
    assert "1 個執行中" in html
    assert "ev-dead" in html and "the dialog failed 5 times (KeyError)" in html
    assert "ev-held" in html and "暫緩：本月額度已用完" in html
    assert "重試</button>" in html and "捨棄</button>" in html
    assert USER not in html and "0912345678" not in html


def test_admins_retry_and_discard_dead_letters_with_csrf_and_audit(console):  # noqa: F811
    db = console.db
    add(db, "ev-dead-1", status="dead", reason="boom", attempts=5)
    add(db, "ev-dead-2", status="dead", reason="boom", attempts=5)
    admin = console.client("amy", "admin")
    assert admin.post("/staff/status/dead/ev-dead-1/retry").status_code == 400  # no CSRF token
    token = console.token(admin, "/staff/status")
    response = admin.post("/staff/status/dead/ev-dead-1/retry", data={"csrf_token": token})
    assert response.status_code == 302 and response.headers["Location"] == "/staff/status"
    response = admin.post("/staff/status/dead/ev-dead-2/discard", data={"csrf_token": token})
    assert response.status_code == 302
    with db.session() as s:
        first, second = s.get(AcceptedEvent, "ev-dead-1"), s.get(AcceptedEvent, "ev-dead-2")
        assert (first.status, first.attempts, first.next_attempt_at) == ("queued", 0, 0)
        assert second.status == "discarded"
        audit = [(e.actor, e.action, e.subject) for e in s.query(AuditEntry).order_by(AuditEntry.id)
                 if e.action.startswith("dead_letter")]
    assert audit == [("staff:amy", "dead_letter_retry", "ev-dead-1"), ("staff:amy", "dead_letter_discard", "ev-dead-2")]
    # a second click finds nothing dead any more
    assert admin.post("/staff/status/dead/ev-dead-1/retry", data={"csrf_token": token}).status_code == 404
    assert "沒有無法處理的事件" in page(admin)


def test_viewers_see_the_status_but_cannot_retry(console):  # noqa: F811
    add(console.db, "ev-dead", status="dead", reason="boom", attempts=5)
    viewer = console.client("vic", "viewer")
    html = page(viewer)
    assert "ev-dead" in html and "重試</button>" not in html
    token = console.token(viewer, "/staff/status")
    response = viewer.post("/staff/status/dead/ev-dead/retry", data={"csrf_token": token})
    assert response.status_code == 403
    with console.db.session() as s:
        assert s.get(AcceptedEvent, "ev-dead").status == "dead"
    assert "背景處理程序尚未啟動" in html
