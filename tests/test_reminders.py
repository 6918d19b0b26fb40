"""The reminder calendar, its audiences and its words, without storage or LINE."""
from __future__ import annotations

from datetime import date, datetime

import pytest

from dialogs import reminders as plan
from dialogs.dates import TAIPEI
from dialogs.edition import all_editions
from dialogs.i18n import use_locale
from dialogs.reminders import CaseFacts, Facts, Member, StaticDirectory
from storage.reminders import Completions


def at(y, mo, d, h=0, mi=0):
    return datetime(y, mo, d, h, mi, tzinfo=TAIPEI)


@pytest.fixture(scope="module")
def events():
    return plan.calendar(editions=all_editions())


def keys(reminders):
    return sorted(r.key for r in reminders)


# -- the calendar comes from the edition's dates ----------------------------------------------------------


def test_the_edition_dates_make_the_calendar_each_with_its_audience_and_citation(events):
    by_key = {e.key: e for e in events}
    deadline = by_key["112:proposal_deadline:all_proposers"]
    assert deadline.starts == at(2023, 3, 16, 17, 0) and deadline.citation == "§伍.三"
    letters = by_key["112:letters_due:proposers_below_letters_target"]
    assert letters.deadline.date() == date(2023, 3, 18)  # two days after the deadline (§陸.四.(四))
    assert letters.citation == "§陸.四.(四)"
    tool = by_key["112:tool_import_deadline:owners_import_not_confirmed"]
    assert tool.deadline == at(2023, 7, 31, 23, 59).replace(second=59)  # by the end of 112/7/31
    assert tool.citation.startswith("§叁 雲端服務條件 1")
    assert "112:tool_import_deadline:proposers_import_not_confirmed" in by_key
    assert "112:proposal_deadline:owners_letter_not_submitted" in by_key
    checkpoints = [e for e in events if e.kind == "checkpoint"]
    assert [e.starts.date() for e in checkpoints] == [date(2023, 7, 15), date(2023, 11, 30)]
    assert {e.citation for e in checkpoints} == {"附件一 肆.二"}


def test_default_lead_times_are_a_week_a_day_and_the_morning_of_the_day(events):
    tool = next(e for e in events if e.key == "112:tool_import_deadline:owners_import_not_confirmed")
    assert [(r.lead, r.due, r.until) for r in plan.schedule(tool)] == [
        ("7d", at(2023, 7, 24, 8), at(2023, 7, 30, 8)),
        ("1d", at(2023, 7, 30, 8), at(2023, 7, 31, 8)),
        ("0d", at(2023, 7, 31, 8), tool.deadline),
    ]


@pytest.mark.parametrize("moment, due", [
    (at(2023, 7, 30, 7, 59), ["7d"]),  # the week-before reminder still (the sender holds it: quiet hours)
    (at(2023, 7, 30, 8, 0), ["1d"]),
    (at(2023, 7, 30, 22, 0), ["1d"]),  # due, but held until 08:00 by the sender
    (at(2023, 7, 31, 8, 0), ["0d"]),  # the day before was missed: only the latest goes
    (at(2023, 8, 1, 8, 0), []),  # over
])
def test_one_reminder_of_an_event_is_due_at_a_time(events, moment, due):
    tool = [e for e in events if e.key == "112:tool_import_deadline:owners_import_not_confirmed"]
    assert [r.lead for r in plan.due_reminders(tool, moment)] == due


@pytest.mark.parametrize("moment, quiet", [
    (at(2023, 7, 30, 7, 59), True), (at(2023, 7, 30, 8, 0), False), (at(2023, 7, 30, 20, 59), False),
    (at(2023, 7, 30, 21, 0), True), (at(2023, 7, 30, 23, 30), True), (at(2023, 7, 31, 0, 0), True),
])
def test_quiet_hours_are_21_to_08_in_taipei(moment, quiet):
    assert plan.in_quiet_hours(moment) is quiet


def test_a_reminder_falling_in_quiet_hours_is_held_until_0800():
    assert plan.outside_quiet_hours(at(2023, 4, 2, 22, 15)) == at(2023, 4, 3, 8, 0)
    assert plan.outside_quiet_hours(at(2023, 4, 3, 6, 0)) == at(2023, 4, 3, 8, 0)
    assert plan.outside_quiet_hours(at(2023, 4, 3, 9, 30)) == at(2023, 4, 3, 9, 30)
    briefing = plan.CalendarEvent("b1", "briefing", "說明會", "Briefing", at(2023, 4, 10, 9, 0), "all_proposers",
                                  leads=("2h", "1d"))
    assert [(r.lead, r.due) for r in plan.schedule(briefing)] == [("1d", at(2023, 4, 9, 8)), ("2h", at(2023, 4, 10, 8))]


def test_a_test_window_reminds_when_it_opens_and_before_it_closes_never_before_it_opens():
    window = plan.CalendarEvent("s1", "pre_test", "數位能力評量前測", "Pre-test", at(2023, 4, 25), "owners_pre_test_not_done",
                                ends=at(2023, 4, 30), all_day=True)
    assert [(r.lead, r.due) for r in plan.schedule(window)] == [
        ("open", at(2023, 4, 25, 8)), ("1d", at(2023, 4, 29, 8)), ("0d", at(2023, 4, 30, 8))]


@pytest.mark.parametrize("text, leads", [("", ()), ("7d,1d,0d", ("7d", "1d", "0d")), ("open, 3d 2h", ("open", "3d", "2h"))])
def test_lead_times_are_read_from_staff_input(text, leads):
    assert plan.parse_leads(text) == leads


@pytest.mark.parametrize("text", ["7", "tomorrow", "7w"])
def test_lead_times_staff_cannot_mean_are_refused_in_words(text):
    with pytest.raises(ValueError, match="提前時間"):
        plan.parse_leads(text)


def test_upcoming_reminders_over_30_days_say_when_each_goes_out(events):
    upcoming = plan.upcoming_reminders(events, at(2023, 7, 20, 22, 0), at(2023, 8, 19, 22, 0))
    assert [(when, r.key) for when, r in upcoming if "owners_import" in r.key] == [
        (at(2023, 7, 24, 8), "112:tool_import_deadline:owners_import_not_confirmed:7d"),
        (at(2023, 7, 30, 8), "112:tool_import_deadline:owners_import_not_confirmed:1d"),
        (at(2023, 7, 31, 8), "112:tool_import_deadline:owners_import_not_confirmed:0d"),
    ]


# -- audiences, from fake rows ---------------------------------------------------------------------------


def facts(members, cases=(), done=None):
    directory = StaticDirectory(members, cases)
    return Facts(members=directory.members(), cases={str(c.case_id): c for c in directory.cases()},
                 done=done or Completions(), letters_percent={None: 10})


OWNERS = [
    Member("Ua", 1, "owner", tax_id="04595257", letter_status="submitted"),
    Member("Ub", 1, "owner", tax_id="12345675", letter_status="draft"),
    Member("Uc", 1, "owner"),
    Member("Ud", 2, "owner", tax_id="22099131", letter_status="submitted"),
]
PROPOSERS = [Member("Up1", 1, "proposer"), Member("Up2", 2, "proposer"), Member("Up3", 3, "proposer")]


def test_owners_whose_letter_is_not_submitted():
    assert plan.audience("owners_letter_not_submitted", facts(OWNERS + PROPOSERS)) == ["Ub", "Uc"]


def test_owners_whose_import_is_not_confirmed_by_enterprise_or_by_case():
    done = Completions()
    done.taxes["tool_import"].add("04595257")  # Ua's enterprise
    done.cases["tool_import"].add("2")  # all of case 2
    f = facts(OWNERS + PROPOSERS, done=done)
    assert plan.audience("owners_import_not_confirmed", f) == ["Ub", "Uc"]
    assert plan.audience("proposers_import_not_confirmed", f) == ["Up1"]


def test_owners_who_have_not_done_the_pre_test_self_reported_or_imported():
    done = Completions()
    done.users["pre_test"].add("Uc")  # said 我已完成前測
    done.taxes["pre_test"].add("12345675")  # Ub's result imported
    f = facts(OWNERS, done=done)
    assert plan.audience("owners_pre_test_not_done", f) == ["Ua", "Ud"]
    assert plan.audience("owners_post_test_not_done", f) == ["Ua", "Ub", "Uc", "Ud"]


def test_proposers_below_the_10_percent_letters_target_rounded_up():
    cases = [CaseFacts(1, planned=50, letters_submitted=4),  # needs 5
             CaseFacts(2, planned=50, letters_submitted=5),  # enough
             CaseFacts(3, planned=None, letters_submitted=0)]  # nobody joined yet: still below
    assert plan.audience("proposers_below_letters_target", facts(PROPOSERS, cases)) == ["Up1", "Up3"]


def test_each_person_once_even_with_two_cases_and_only_their_edition():
    members = [Member("Up", 1, "proposer", edition=112), Member("Up", 2, "proposer", edition=112),
               Member("Uq", 3, "proposer", edition=113)]
    assert plan.audience("all_proposers", facts(members), 112) == ["Up"]
    assert plan.audience("all_proposers", facts(members)) == ["Up", "Uq"]


# -- what they read -----------------------------------------------------------------------------------------


def test_the_reminder_reads_in_roc_dates_in_zh_tw_and_western_dates_in_english(events):
    tool = next(e for e in events if e.key == "112:tool_import_deadline:owners_import_not_confirmed")
    day_before = plan.schedule(tool)[1]
    with use_locale("zh_TW"):
        zh = plan.reminder_messages(day_before, at(2023, 7, 30, 8))
    with use_locale("en"):
        en = plan.reminder_messages(day_before, at(2023, 7, 30, 8))
    assert zh[0].text.splitlines()[0] == "【提醒】雲工具導入完成期限：112年7月31日(一)（就是明天）。"
    assert "執行單位尚未確認貴企業已完成雲工具導入" in zh[0].text
    assert "§叁 雲端服務條件 1" in zh[0].text
    assert zh[-1].text == "不想再收到提醒，請回覆「停止提醒」。"
    assert [c.value for c in zh[-1].choices] == ["停止提醒"]
    assert en[0].text.startswith("Reminder: Deadline to finish importing the cloud tools, Mon 31 Jul 2023 (that is tomorrow).")
    assert en[-1].choices[0].label == "Stop reminders" and en[-1].choices[0].value == "停止提醒"


def test_a_reminder_with_a_link_carries_a_link_button():
    window = plan.CalendarEvent("s1", "pre_test", "數位能力評量前測", "Capability pre-test", at(2023, 4, 1), "owners_pre_test_not_done",
                                ends=at(2023, 4, 30), all_day=True, link="https://example.org/pre")
    opening = plan.schedule(window)[0]
    with use_locale("zh_TW"):
        messages = plan.reminder_messages(opening, at(2023, 4, 1, 8))
    assert messages[0].text.startswith("【開始了】數位能力評量前測：112年4月1日(六)至112年4月30日(日)。")
    assert messages[1].url == "https://example.org/pre"


# -- LINE's 200 multicasts a second ---------------------------------------------------------------------------


def test_the_token_bucket_keeps_any_one_second_within_200_calls():
    import time

    from bot.reminders import TokenBucket

    bucket, stamps = TokenBucket(rate=200), []
    for _ in range(260):
        bucket.take()
        stamps.append(time.monotonic())
    busiest = max(sum(1 for t in stamps[i:] if t - stamps[i] < 1.0) for i in range(len(stamps)))
    assert busiest <= 200
    assert stamps[-1] - stamps[0] < 1.6  # and it does not hold back more than it must
