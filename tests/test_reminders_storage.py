"""The reminders' tables on SQLite and PostgreSQL: claims, imports, self-reports."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from storage import reminders as store
from storage.db import Database
from tests.conftest import cleanup_backend, make_config


@pytest.fixture(params=["embedded", "production"])
def db(request):
    config, cleanup = make_config(request.param, "http://127.0.0.1:9")
    database = Database(config.database_url.replace("postgresql://", "postgresql+psycopg://"))
    database.upgrade()
    yield database
    database.engine.dispose()
    cleanup_backend(cleanup)


def key_of(members):
    return "batch-" + "-".join(members)


def test_a_claim_takes_only_people_nobody_claimed_and_names_its_batch_after_them(db):
    assert store.claim_batch(db, "r1", ["Ub", "Ua"], "zh_TW", "w1", key_of) == ("batch-Ua-Ub", ["Ua", "Ub"])
    assert store.claim_batch(db, "r1", ["Ub", "Uc", "Ud"], "zh_TW", "w2", key_of) == ("batch-Uc-Ud", ["Uc", "Ud"])
    assert store.claim_batch(db, "r1", ["Ua", "Uc"], "zh_TW", "w3", key_of) == ("", [])
    assert store.claim_batch(db, "r2", ["Ua"], "en", "w3", key_of) == ("batch-Ua", ["Ua"])  # another reminder
    assert store.mark_batch(db, "batch-Uc-Ud", store.SENT, "req-1") == 2
    rows = {(r["reminder_key"], r["user_id"]): r for r in store.send_log(db)}
    assert rows[("r1", "Uc")]["status"] == "sent" and rows[("r1", "Uc")]["request_id"] == "req-1"
    assert rows[("r1", "Ua")]["status"] == "claimed" and rows[("r1", "Ua")]["batch_key"] == "batch-Ua-Ub"
    assert store.sent_users(db, "r1") == {"Ua", "Ub", "Uc", "Ud"}


def test_a_stale_batch_is_taken_over_by_one_worker_only(db):
    store.claim_batch(db, "r1", ["Ua", "Ub"], "zh_TW", "dead", key_of)
    later = datetime.now(timezone.utc) + timedelta(minutes=10)
    assert store.stale_batches(db, datetime.now(timezone.utc) - timedelta(minutes=5)) == []
    [stale] = store.stale_batches(db, later)
    assert (stale.batch_key, stale.reminder_key, stale.user_ids) == ("batch-Ua-Ub", "r1", ("Ua", "Ub"))
    assert store.take_over_batch(db, stale.batch_key, later, "w1") is True
    assert store.take_over_batch(db, stale.batch_key, datetime.now(timezone.utc) - timedelta(seconds=1), "w2") is False


def test_assessment_results_are_checked_row_by_row_and_confirm_by_business_number(db):
    store.record_self_report(db, "Ux", "pre_test", tax_id="04595257")
    result = store.import_assessment_results(db, [
        {"統一編號": "04595257", "前後測": "前測", "日期": "112/4/29"},  # confirms the self-report
        {"統一編號": "12345675", "前後測": "post", "日期": "2023-11-20"},
        ("22099131", "後測", None),
        {"統一編號": "12345678", "前後測": "前測", "日期": "112/4/29"},  # checksum
        {"統一編號": "04595257", "前後測": "期中", "日期": "112/4/29"},
        {"統一編號": "04595257", "前後測": "後測", "日期": "112/13/1"},
    ])
    assert (result.confirmed, result.already) == (3, 0)
    assert [n for n, _reason in result.problems] == [4, 5, 6]
    again = store.import_assessment_results(db, [("12345675", "後測", "112/11/20")])
    assert (again.confirmed, again.already) == (0, 1)
    states = store.test_states(db, [("Ux", "04595257"), ("Uy", "12345675"), ("Uz", None)])
    assert states["Ux"].pre_test.state == "confirmed" and states["Ux"].pre_test.completed_on == date(2023, 4, 29)
    assert states["Ux"].pre_test.self_reported_at is not None
    assert states["Uy"].post_test.state == "confirmed" and states["Uy"].pre_test.state == "not_done"
    assert states["Uz"].pre_test.state == "not_done"


def test_a_self_report_stops_test_reminders_but_a_tool_import_needs_confirming(db):
    store.record_self_report(db, "Ux", "pre_test")
    assert store.record_self_report(db, "Ux", "pre_test") is False  # once is enough
    done = store.load_completions(db)
    assert done.done("pre_test", "Ux") and not done.done("post_test", "Ux")
    store.confirm_tool_import(db, case_id=7)
    done = store.load_completions(db)
    assert done.done("tool_import", "Uy", None, 7) and not done.done("tool_import", "Uy", None, 8)


def test_forgetting_a_user_removes_their_sends_and_self_reports(db):
    store.claim_batch(db, "r1", ["Ux"], "zh_TW", "w", key_of)
    store.record_self_report(db, "Ux", "post_test")
    with db.session() as s:
        assert store.forget_user(s, "Ux") == {"reminder_sends": 1, "self_reports": 1}
    assert store.send_log(db) == [] and not store.load_completions(db).done("post_test", "Ux")
