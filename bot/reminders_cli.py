"""`gonghao reminders ...`: run, preview, add events, test-send, import assessment results.

Every command reads the one clock (``GONGHAO_NOW`` fixes it for demos and acceptance runs).
"""
from __future__ import annotations

import csv
import sys
import threading
from datetime import date, datetime, time

import click

from dialogs.i18n import _


def _services():
    from bot.config import Config, use_clock
    from bot.services import Services

    config = Config.from_env()
    use_clock(config)
    services = Services(config)
    if services.db.url.startswith("sqlite"):
        services.db.upgrade()  # the embedded default: the web process may not have run yet
    return services


def parse_moment(text: str) -> tuple[datetime, bool]:
    """"112/4/1", "112/4/1 17:00", "2023-04-01" or "2023-04-01 17:00" (Asia/Taipei) → (moment, time given)."""
    from dialogs.dates import TAIPEI, parse_roc

    value = text.strip().replace("T", " ")
    day_part, _sep, time_part = value.partition(" ")
    first = day_part.replace("年", "/").replace("-", "/").split("/")[0]
    if first.isdigit() and int(first) >= 1911:
        day = date.fromisoformat(day_part.replace("/", "-"))
    else:
        day = parse_roc(day_part)
    at = time(0, 0)
    if time_part.strip():
        hours, minutes = time_part.strip()[:5].split(":")
        at = time(int(hours), int(minutes))
    return datetime.combine(day, at, tzinfo=TAIPEI), bool(time_part.strip())


@click.group("reminders")
def reminders():
    """Reminders: run, preview, add events, test-send, import assessment results."""


@reminders.command("run-once")
def run_once_command():
    """Sends what is due now (once per person), then stops."""
    from bot.reminders import run_once

    report = run_once(_services())
    click.echo(report.summary())
    for warning in report.warnings:
        click.echo(_("Warning: {text}").format(text=warning), err=True)


@reminders.command("run")
@click.option("--interval", default=30.0, type=float, help="seconds between runs")
def run_command(interval):
    """Sends reminders as they fall due until stopped (the worker process does this too)."""
    import signal

    from bot.reminders import run_reminders_forever

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_reminders_forever(_services(), stop, interval=interval)


@reminders.command("preview")
@click.option("--days", default=30, type=int, show_default=True)
@click.option("--all-recipients", is_flag=True, help="list every recipient, not the first 10")
def preview_command(days, all_recipients):
    """Who would receive what and when over the next days (with today's audiences)."""
    from bot.reminders import preview
    from dialogs.dates import format_date, now

    items = preview(_services(), days=days)
    click.echo(_("Reminders from {start} for {days} days: {count}").format(
        start=format_date(now()), days=days, count=len(items)))
    for item in items:
        click.echo("")
        click.echo(f"{item.when_zh}  {item.key}")
        click.echo("  " + _("{title} — to {audience}: {count} people {locales}").format(
            title=item.title_zh, audience=item.audience_zh, count=len(item.recipients),
            locales=", ".join(f"{k} {v}" for k, v in sorted(item.by_locale.items()))))
        shown = item.recipients if all_recipients else item.recipients[:10]
        if shown:
            more = "" if len(shown) == len(item.recipients) else f" … (+{len(item.recipients) - len(shown)})"
            click.echo("  " + " ".join(shown) + more)
        for line in item.text_zh.splitlines():
            click.echo("  | " + line)


@reminders.command("list")
def list_command():
    """The calendar: the edition's dates and the staff-added events, with their reminders."""
    from dialogs import reminders as plan
    from dialogs.dates import format_date
    from storage.reminders import staff_events

    services = _services()
    for event in plan.calendar(staff_events(services.db)):
        click.echo(f"{event.key}  [{event.kind}, {event.source}]  {event.title_zh} — {event.when_text()}")
        click.echo("  " + _("audience: {audience}").format(audience=plan.describe_rule(event.audience)))
        for reminder in plan.schedule(event):
            click.echo(f"    {reminder.key}  {format_date(reminder.due)}")


@reminders.command("add")
@click.option("--kind", required=True, type=click.Choice(["pre_test", "post_test", "briefing", "deadline", "checkpoint"]))
@click.option("--title-zh", required=True)
@click.option("--title-en", required=True)
@click.option("--starts", required=True, help='"112/4/1" or "112/4/1 10:00" (Asia/Taipei)')
@click.option("--ends", default=None, help="the end of a window, e.g. the pre-test's last day")
@click.option("--audience", required=True, help="a rule, e.g. owners_pre_test_not_done (see --help-audiences)")
@click.option("--link", default=None, help="the assessment or meeting link")
@click.option("--leads", default="", help='lead times, e.g. "open,7d,1d,0d" (default: 7d,1d,0d; windows add open)')
@click.option("--note-zh", default=None)
@click.option("--note-en", default=None)
@click.option("--citation", default=None, help='the paragraph, e.g. "§捌.四.(七)"')
@click.option("--edition", default=None, type=int)
@click.option("--by", "actor", default="staff", help="who adds it (for the audit log)")
def add_command(kind, title_zh, title_en, starts, ends, audience, link, leads, note_zh, note_en, citation, edition,
                actor):
    """Adds an event to the calendar (a test window, a briefing, a deadline)."""
    from dialogs import reminders as plan
    from storage.reminders import add_event

    try:
        plan.check_rule(audience)
        plan.parse_leads(leads)
        start_at, start_timed = parse_moment(starts)
        end_at, end_timed = parse_moment(ends) if ends else (None, False)
    except ValueError as exc:
        raise click.ClickException(str(exc))
    if end_at is not None and end_at < start_at:
        raise click.ClickException(_("The end is before the start."))
    if link and not link.startswith(("https://", "http://")):
        raise click.ClickException(_("The link must start with https://"))
    row = add_event(_services().db, kind=kind, title_zh=title_zh, title_en=title_en, starts_at=start_at,
                    ends_at=end_at, all_day=not (start_timed or end_timed), link=link, lead_times=leads,
                    note_zh=note_zh, note_en=note_en, citation=citation or ("§捌.四.(七)" if kind.endswith("_test") else None),
                    edition=edition, audience=audience, created_by=actor)
    event = plan.staff_event(row)
    click.echo(_("Added {key}: {title}, {when}").format(key=row.key, title=title_zh, when=event.when_text()))
    for reminder in plan.schedule(event):
        click.echo(f"  {reminder.key}")


@reminders.command("test-send")
@click.option("--to", "to", required=True, help="your own LINE user id")
@click.argument("reminder_key")
@click.option("--by", "actor", default="staff")
def test_send_command(to, reminder_key, actor):
    """Sends one reminder to one LINE user now (try it on yourself first)."""
    from bot.reminders import send_test_reminder

    try:
        request_id = send_test_reminder(_services(), to, reminder_key, actor=actor)
    except LookupError as exc:
        raise click.ClickException(str(exc))
    click.echo(_("Sent (LINE request id {id}).").format(id=request_id or "-"))


@reminders.command("import-tests")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--by", "actor", default="staff")
def import_tests_command(path, actor):
    """Confirms pre/post tests from a CSV with columns 統一編號, 前後測 (前測/後測), 日期."""
    from storage.reminders import import_assessment_results

    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    result = import_assessment_results(_services().db, rows, source=path.rsplit("/", 1)[-1], actor=actor)
    click.echo(_("{confirmed} confirmed, {already} already confirmed, {refused} refused.").format(
        confirmed=result.confirmed, already=result.already, refused=len(result.problems)))
    for number, reason in result.problems:
        click.echo(_("line {number}: {reason}").format(number=number + 1, reason=reason), err=True)
    sys.exit(1 if result.problems else 0)
