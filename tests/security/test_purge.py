"""個資法 §11: once an edition's program has ended, one audited command deletes the personal data gathered for it."""
from __future__ import annotations

from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from storage import letters as store
from storage.models import AuditEntry
from tests.letter_support import every_row
from tests.roster_support import add_owner, console, link_proposer, make_case, valid_numbers  # noqa: F401

PROPOSER = "U" + "6a" * 16


def purge(console, *args, now=None):
    env = {"DATABASE_URL": console.url, "REDIS_URL": ""}
    if now:
        env["GONGHAO_NOW"] = now
    return CliRunner().invoke(main, ["edition", "purge", *args], env=env)


def test_an_edition_is_purged_after_its_program_ends_with_one_audited_command(console):
    numbers = valid_numbers(22_099_000)
    case = make_case(console.services)
    link_proposer(console.services, case.id, PROPOSER)
    owners = [add_owner(console.services, case.id, n, number=next(numbers)) for n in (1, 2)]
    later = make_case(console.services, edition=113, plan_name="下一年的計畫")
    both = add_owner(console.services, later.id, 3, number=next(numbers))
    with console.db.session() as s:  # one owner of 112 is in a 113 case as well
        store.add_member(s, case.id, both, store.OWNER)

    refused = purge(console, "112", "--confirm", now="2023-06-01T09:00+08:00")
    assert refused.exit_code != 0 and "runs until 2023-11-30" in refused.output

    dry = purge(console, "112")
    assert dry.exit_code == 0, dry.output
    assert "would delete 2 letters and 4 memberships of 4 people" in dry.output and "Nothing was deleted" in dry.output
    with console.db.session() as s:
        assert s.query(store.Letter).count() == 3

    done = purge(console, "112", "--confirm")
    assert done.exit_code == 0, done.output
    assert "deleted 2 letters and 4 memberships of 4 people, 3 of whom" in done.output
    rows = every_row(console.services)
    text = "\n".join("\n".join(r) for r in rows.values())
    for who in owners + [PROPOSER]:
        assert who not in text
    assert "王小明" in "\n".join(rows["letters"])  # the 113 letter stays
    with console.db.session() as s:
        assert s.get(store.Case, case.id) is not None  # the case (an organisation) stays
        assert [m.user_id for m in store.members_of_case(s, later.id)] == [both]
        entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "edition.purged")).one()
    assert entry.actor == "staff:cli" and entry.subject == "edition:112" and '"letters": 2' in entry.detail
