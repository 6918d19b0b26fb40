"""Reminders as the people get them: on both backends, against the mock LINE platform, the clock moved.

Who is in which case comes from a small directory of our own (the cases-and-letters storage
provides the real one); what people have done is in the database.
"""
from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime

import pytest
import time_machine
from click.testing import CliRunner

from bot.reminders import ReminderSender, batch_retry_key, preview, send_test_reminder
from dialogs.dates import TAIPEI
from dialogs.reminders import CaseFacts, Member, StaticDirectory
from storage.models import AuditEntry, LineUser
from storage import reminders as store
from storage.reminders import add_event, confirm_tool_import, import_assessment_results, send_log

TOOL_1D = "112:tool_import_deadline:owners_import_not_confirmed:1d"


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=TAIPEI)


def user(name: str) -> str:
    return "U" + name.encode().hex().ljust(32, "0")[:32]


def multicasts(line):
    return [c for c in line.delivered() if c.path.endswith("/multicast")]


def reminded(line) -> Counter:
    """How many reminder multicasts reached each user."""
    return Counter(u for c in multicasts(line) for u in c.to)


def run_at(sender, moment):
    with time_machine.travel(moment, tick=False):
        return sender.run_once()


def many_owners(n, case_id=1):
    return [Member(user(f"owner{i}"), case_id, "owner") for i in range(n)]


# -- the day before the tool import deadline -------------------------------------------------------------

A, B, C, D, E, P1, P2 = (user(x) for x in ("ownerA", "ownerB", "ownerC", "ownerD", "ownerE", "prop1", "prop2"))


def test_day_before_the_tool_import_deadline_only_unconfirmed_owners_get_it_once_from_0800(bot):
    services, line = bot.services, bot.line
    services.reminder_directory = StaticDirectory([
        Member(A, 1, "owner", tax_id="04595257"), Member(B, 1, "owner", tax_id="12345675"), Member(C, 1, "owner"),
        Member(E, 1, "owner"), Member(D, 2, "owner"), Member(P1, 1, "proposer"), Member(P2, 2, "proposer")])
    confirm_tool_import(services.db, tax_id="04595257")  # A's enterprise
    confirm_tool_import(services.db, case_id=2)  # all of case 2 (D)
    with services.db.session() as s:
        s.add(LineUser(user_id=E, locale="en"))
    sender = ReminderSender(services)

    assert run_at(sender, at(2023, 7, 29, 22, 0)).held  # 22:00: held for the morning
    assert run_at(sender, at(2023, 7, 30, 7, 59)).quiet
    assert multicasts(line) == []
    report = run_at(sender, at(2023, 7, 30, 8, 0))
    assert TOOL_1D in report.due
    for later in (at(2023, 7, 30, 8, 1), at(2023, 7, 30, 12, 0), at(2023, 7, 30, 22, 0)):
        run_at(ReminderSender(services), later)

    assert reminded(line) == {B: 1, C: 1, E: 1, P1: 1}
    assert line.texts_to(B) == [
        "【提醒】雲工具導入完成期限：112年7月31日(一)（就是明天）。\n"
        "執行單位尚未確認貴企業已完成雲工具導入，請在期限前與提案單位（雲端服務供應商）一起完成。\n"
        "（§叁 雲端服務條件 1；附件二 二）",
        "不想再收到提醒，請回覆「停止提醒」。"]
    assert line.texts_to(E)[0].startswith("Reminder: Deadline to finish importing the cloud tools, Mon 31 Jul 2023")
    assert "您的提案中還有企業的雲工具導入尚未確認" in line.texts_to(P1)[0]
    log = {row["user_id"]: row for row in send_log(services.db, TOOL_1D)}
    assert set(log) == {B, C, E}
    assert {row["status"] for row in log.values()} == {"sent"}
    assert all(row["request_id"] and row["sent_at"] for row in log.values())
    assert log[E]["locale"] == "en"


# -- two workers, a crash ----------------------------------------------------------------------------------


def test_two_senders_started_together_send_each_reminder_once(bot):
    services, line = bot.services, bot.line
    owners = many_owners(1200)
    services.reminder_directory = StaticDirectory(owners)
    line.set_delay(0.01)
    start = threading.Barrier(2)
    reports, errors = [], []

    def worker(name):
        sender = ReminderSender(services, worker_id=name, batch_size=100, parallel=3)
        start.wait()
        try:
            reports.append(run_at(sender, at(2023, 7, 30, 8, 0)))
        except Exception as exc:  # pragma: no cover - shown by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"worker-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    counts = reminded(line)
    assert len(counts) == 1200 and set(counts.values()) == {1}
    assert sum(r.recipients for r in reports) == 1200
    assert all(len(c.to) <= 100 for c in multicasts(line))


class Killed(Exception):
    """The worker process died (SIGKILL), as far as the database and LINE can tell."""


class DiesMidRun(ReminderSender):
    """Sends batch 1; sends batch 2 but dies before marking it; dies holding batch 3 unsent."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = 0
        self.dead = False

    def _claim_and_send(self, *args):
        if self.dead:
            raise Killed()
        return super()._claim_and_send(*args)

    def _deliver(self, batch_key, users, messages):
        self.batches += 1
        if self.batches == 1:
            return super()._deliver(batch_key, users, messages)
        if self.batches == 2:
            self.gateway.multicast(list(users), messages, batch_key)  # LINE accepted it …
            raise Killed()  # … and the process is gone before the database hears of it
        self.dead = True  # batch 3: claimed, never sent; nothing after it is even claimed
        raise Killed()


def test_a_sender_killed_mid_batch_and_restarted_sends_the_rest_without_repeats(bot):
    services, line = bot.services, bot.line
    owners = many_owners(1200)
    services.reminder_directory = StaticDirectory(owners)
    with pytest.raises(Killed):
        run_at(DiesMidRun(services, batch_size=200, parallel=1), at(2023, 7, 30, 8, 0))
    assert sum(reminded(line).values()) == 400  # batches 1 and 2 reached LINE; batch 3 was claimed only

    restarted = ReminderSender(services, batch_size=200, stale_seconds=300)
    report = run_at(restarted, at(2023, 7, 30, 8, 1))  # the unclaimed rest goes; fresh claims wait
    assert report.recipients == 600 and report.resent_batches == 0
    report = run_at(restarted, at(2023, 7, 30, 8, 10))  # 9 minutes on, the stale claims are re-sent
    assert report.resent_batches == 2

    counts = reminded(line)
    assert len(counts) == 1200 and set(counts.values()) == {1}
    conflicts = [c for c in line.requests if c.path.endswith("/multicast") and c.status == 409]
    assert len(conflicts) == 1  # batch 2 again, same retry key: LINE says it already has it
    assert {row["status"] for row in send_log(services.db, TOOL_1D, limit=5000)} == {"sent"}
    batch_keys = {c.headers["x-line-retry-key"] for c in line.requests if c.path.endswith("/multicast")}
    assert batch_retry_key(TOOL_1D, sorted(u.user_id for u in owners)[:200]) in batch_keys


# -- opting out --------------------------------------------------------------------------------------------


def test_stop_reminders_means_nothing_until_resume(bot):
    services, line = bot.services, bot.line
    O, Q = user("ownerO"), user("ownerQ")
    services.reminder_directory = StaticDirectory([Member(O, 1, "owner"), Member(Q, 1, "owner")])
    answer = bot.says(O, "停止提醒")
    assert answer[0].startswith("已停止提醒：之後不會再傳提醒給您。")
    run_at(ReminderSender(services), at(2023, 7, 30, 8, 0))
    assert reminded(line) == {Q: 1}

    assert bot.says(O, "恢復提醒")[0].startswith("已恢復提醒")
    run_at(ReminderSender(services), at(2023, 7, 30, 9, 0))
    assert reminded(line) == {Q: 1, O: 1}


def test_an_owner_who_blocked_the_account_is_skipped(bot):
    services, line = bot.services, bot.line
    O, Q = user("ownerO"), user("ownerQ")
    services.reminder_directory = StaticDirectory([Member(O, 1, "owner"), Member(Q, 1, "owner")])
    services.users.set_followed(O, False)
    run_at(ReminderSender(services), at(2023, 7, 30, 8, 0))
    assert reminded(line) == {Q: 1}


# -- the pre/post tests ------------------------------------------------------------------------------------

X, Y, P = user("ownerX"), user("ownerY"), user("propP")
TAX_X, TAX_Y = "04595257", "12345675"


def test_an_owner_who_reports_the_pre_test_done_gets_no_more_pre_test_reminders(bot):
    services, line = bot.services, bot.line
    directory = StaticDirectory([Member(X, 1, "owner", tax_id=TAX_X), Member(Y, 1, "owner", tax_id=TAX_Y),
                                 Member(P, 1, "proposer")])
    services.reminder_directory = directory
    add_event(services.db, kind="pre_test", title_zh="數位能力評量前測", title_en="Capability pre-test",
              starts_at=at(2023, 4, 25), ends_at=at(2023, 4, 30), all_day=True, audience="owners_pre_test_not_done",
              link="https://assessment.example.org/pre", citation="§捌.四.(七)")

    with time_machine.travel(at(2023, 4, 26, 10, 0)):
        answer = bot.says(X, "前測")
        assert "前測開放填寫中，期間是112年4月25日(二)至112年4月30日(日)。" in answer[0]
        assert answer[1] == "請由這裡進入評量："
        assert answer[2] == "完成後請回覆「我已完成前測」，我就不會再提醒您。"
        answer = bot.says(X, "我已完成前測")
        assert answer[0].startswith("謝謝！已記下您完成前測（您於112年4月26日(三)回報）")
    run_at(ReminderSender(services), at(2023, 4, 29, 8, 0))
    assert reminded(line) == {Y: 1}
    assert "貴企業還沒有完成數位能力評量前測" in line.texts_to(Y)[0]

    roster = {t.user_id: t for t in store.test_status_for_case(services.db, 1, directory)}
    assert roster[X].pre_test.state == "self_reported" and roster[Y].pre_test.state == "not_done"
    result = import_assessment_results(services.db, [{"統一編號": TAX_Y, "前後測": "前測", "日期": "112/4/29"},
                                                     {"統一編號": "12345678", "前後測": "前測", "日期": "112/4/29"}])
    assert (result.confirmed, len(result.problems)) == (1, 1)
    roster = {t.user_id: t for t in store.test_status_for_case(services.db, 1, directory)}
    assert roster[Y].pre_test.state == "confirmed" and str(roster[Y].pre_test.completed_on) == "2023-04-29"
    assert roster[X].post_test.state == "not_done"

    run_at(ReminderSender(services), at(2023, 4, 30, 8, 0))
    assert reminded(line) == {Y: 1}
    with time_machine.travel(at(2023, 4, 30, 10, 0)):
        assert bot.says(Y, "前測")[-1] == "執行單位已確認您完成前測，謝謝！"


# -- the quota ----------------------------------------------------------------------------------------------


def test_a_send_larger_than_the_quota_left_warns_staff_instead_of_failing_half_way(bot):
    services, line = bot.services, bot.line
    services.reminder_directory = StaticDirectory(many_owners(1200))
    line.quota, line.usage = 1500, 1000  # 500 messages left this month
    report = run_at(ReminderSender(services), at(2023, 7, 30, 8, 0))
    assert report.held == [TOOL_1D] and "needs 1200 messages but only 500" in report.warnings[0]
    assert multicasts(line) == []
    with services.db.session() as s:
        warnings = s.query(AuditEntry).filter_by(action="reminder_quota_warning").all()
        assert [w.subject for w in warnings] == [TOOL_1D]

    line.quota = 100_000
    report = run_at(ReminderSender(services), at(2023, 7, 30, 9, 0))
    assert report.recipients == 1200 and line.usage == 2200
    with services.db.session() as s:
        assert [e.subject for e in s.query(AuditEntry).filter_by(action="reminder_large_send")] == [TOOL_1D]


# -- preview and test send ------------------------------------------------------------------------------------


def test_staff_preview_who_gets_what_when_and_test_send_to_themselves(bot):
    services, line = bot.services, bot.line
    services.reminder_directory = StaticDirectory([Member(B, 1, "owner"), Member(P1, 1, "proposer")],
                                                  [CaseFacts(1, planned=50, letters_submitted=5)])
    with time_machine.travel(at(2023, 7, 20, 22, 0), tick=False):
        items = preview(services, days=30)
    tool = [i for i in items if i.key.startswith("112:tool_import_deadline:owners")]
    assert [(i.at, i.recipients) for i in tool] == [
        (at(2023, 7, 24, 8), [B]), (at(2023, 7, 30, 8), [B]), (at(2023, 7, 31, 8), [B])]
    assert tool[0].text_zh.startswith("【提醒】雲工具導入完成期限：112年7月31日(一)（還有 7 天）。")
    assert [i.key for i in items if "checkpoint" in i.key] == []  # the next checkpoint is in November
    with time_machine.travel(at(2023, 7, 20, 22, 0), tick=False):
        later = {i.key: i for i in preview(services, days=135)}
    assert later["112:checkpoint_2:all_proposers:7d"].recipients == [P1]
    assert multicasts(line) == []  # a preview sends nothing

    staff = user("staff")
    request_id = send_test_reminder(services, staff, TOOL_1D, actor="cisa-lin")
    assert line.texts_to(staff)[0].startswith("【提醒】雲工具導入完成期限")
    assert [r["request_id"] for r in send_log(services.db) if r["user_id"] == staff] == [request_id]


def test_the_cli_adds_an_event_and_previews_with_gonghao_now(tmp_path, monkeypatch, line):
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("LINE_API_BASE_URL", line.url)
    monkeypatch.setenv("LINE_CHANNEL_ACCESS_TOKEN", "t")
    monkeypatch.setenv("GONGHAO_NOW", "2023-04-20T09:00:00+08:00")
    monkeypatch.setattr("dialogs.dates.FIXED_NOW", None)  # the commands fix the clock; put back after the test
    runner = CliRunner()
    added = runner.invoke(main, ["reminders", "add", "--kind", "pre_test", "--title-zh", "數位能力評量前測",
                                 "--title-en", "Capability pre-test", "--starts", "112/4/25", "--ends", "112/4/30",
                                 "--audience", "owners_pre_test_not_done", "--link", "https://example.org/pre"])
    assert added.exit_code == 0, added.output
    assert "112年4月25日(二)至112年4月30日(日)" in added.output
    shown = runner.invoke(main, ["reminders", "preview", "--days", "30"])
    assert shown.exit_code == 0, shown.output
    assert "112年4月25日(二) 08:00  staff1:open" in shown.output
    refused = runner.invoke(main, ["reminders", "add", "--kind", "briefing", "--title-zh", "說明會", "--title-en", "Briefing",
                                   "--starts", "112/5/2 14:00", "--audience", "everyone"])
    assert refused.exit_code != 0 and "everyone" in refused.output
    ran = runner.invoke(main, ["reminders", "run-once"])
    assert ran.exit_code == 0, ran.output


# -- the real directory: cases, members and letters (storage.letters) --------------------------------------


def test_audiences_come_from_the_cases_and_letters_tables(bot):
    from storage import letters

    services, line = bot.services, bot.line
    with services.db.session() as s:
        case = letters.create_case(s, edition=112, proposer_name="好雲股份有限公司", plan_name="好雲共好計畫",
                                   case_type="popularization", vendor_name="好雲股份有限公司", solution_name="好雲POS",
                                   planned_count=50)
        for who, role in ((P1, "proposer"), (A, "owner"), (B, "owner"), (C, "owner")):
            letters.add_member(s, case.id, who, role)
        s.add(letters.Letter(case_id=case.id, user_id=A, status="submitted", business_number="04595257"))
        s.add(letters.Letter(case_id=case.id, user_id=B, status="draft"))
        s.add(letters.Letter(case_id=case.id, user_id=C, status="withdrawn", business_number="12345675"))
        case_id = case.id
    confirm_tool_import(services.db, tax_id="04595257")
    run_at(ReminderSender(services), at(2023, 3, 15, 8, 0))  # the day before the proposal deadline
    # P1: the proposal deadline, and the letters due in 3 days (1 of the 5 needed); B: the letter; C withdrew
    assert reminded(line) == {P1: 2, B: 1}
    assert "您的企業合作意向書（附件二）還沒有送出" in line.texts_to(B)[0]
    run_at(ReminderSender(services), at(2023, 3, 17, 8, 0))  # the letters are due tomorrow
    assert reminded(line) == {P1: 3, B: 1}
    run_at(ReminderSender(services), at(2023, 7, 30, 8, 0))  # A's import is confirmed, B's is not
    assert reminded(line) == {P1: 4, B: 2}
    roster = store.test_status_for_case(services.db, case_id)
    assert [(t.user_id, t.tax_id, t.pre_test.state) for t in roster] == [(A, "04595257", "not_done"), (B, None, "not_done")]
