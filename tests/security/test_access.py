"""Taking access back: staff unlink a proposer or an owner (console and CLI, audited), revoking a code offers to
unlink those who joined with it, and the unlinked proposer sees nothing of the case from the next message on.
The invite-code guess limit survives 刪除我的資料."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from storage import letters as store
from storage.models import AuditEntry
from tests.letter_support import every_row, quick, uris
from tests.roster_support import add_owner, console, link_proposer, make_case, valid_numbers  # noqa: F401

PROPOSER = "U" + "5a" * 16
OWNER = "U" + "5b" * 16
GUESSER = "U" + "5c" * 16


@pytest.fixture()
def chat(bot):
    return quick(bot)


def cli(services, *args):
    env = {"DATABASE_URL": services.config.database_url, "REDIS_URL": ""}
    return CliRunner().invoke(main, list(args), env=env)


def audit(db, action):
    with db.session() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))


def test_an_unlinked_proposer_sees_nothing_of_the_case_from_the_next_message_on(chat):
    bot = chat
    case = make_case(bot.services)
    add_owner(bot.services, case.id, 1, number=next(valid_numbers(22_099_000)))
    assert bot.says(PROPOSER, case.proposer_code)[0].startswith("您已成為「好客數位共好計畫」")
    assert bot.says(PROPOSER, "名單狀態")[0].startswith("「好客數位共好計畫」名單狀態")
    (link,) = [u for u in uris(bot, PROPOSER) if "/d/roster/" in u]
    assert bot.client.get(urlparse(link).path).status_code == 200

    revoked = cli(bot.services, "case", "revoke", str(case.id), "--which", "proposer")
    assert f"gonghao case unlink {case.id} --user {PROPOSER} --role proposer" in revoked.output  # offered
    result = cli(bot.services, "case", "unlink", str(case.id), "--user", PROPOSER)
    assert result.exit_code == 0, result.output
    assert f"{PROPOSER} is no longer linked to case {case.id} (proposer)" in result.output

    said = bot.says(PROPOSER, "名單狀態")
    assert said[0].startswith("名單狀態僅供提案單位聯絡人查看") and "好客數位共好計畫" not in " ".join(said)
    assert bot.client.get(urlparse(link).path).status_code == 410  # the link sent before no longer works
    (entry,) = audit(bot.services.db, "case.member_unlinked")
    assert entry.actor == "staff:cli" and entry.subject == f"case:{case.id}" and PROPOSER not in (entry.detail or "")

    again = cli(bot.services, "case", "unlink", str(case.id), "--user", PROPOSER)
    assert again.exit_code != 0 and "is not linked to case" in again.output


def test_revoking_a_code_offers_to_unlink_those_who_joined_with_it(console):
    case = make_case(console.services)
    link_proposer(console.services, case.id, PROPOSER)
    owner = add_owner(console.services, case.id, 1, number=next(valid_numbers(22_099_000)))
    admin = console.client("amy", "admin")
    token = console.token(admin, f"/staff/cases/{case.id}")

    page = admin.post(f"/staff/cases/{case.id}/revoke", data={"which": "proposer", "csrf_token": token})
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "有 1 人是用舊代碼加入的" in text
    assert f'value="{PROPOSER}:proposer" checked' in text and owner not in text  # the owner joined with another code

    response = admin.post(f"/staff/cases/{case.id}/unlink",
                          data={"member": f"{PROPOSER}:proposer", "csrf_token": token})
    assert response.status_code == 302
    with console.db.session() as s:
        assert [(m.user_id, m.role) for m in store.members_of_case(s, case.id)] == [(owner, "owner")]
    actions = [e.action for e in audit(console.db, "case.code_revoked") + audit(console.db, "case.member_unlinked")]
    assert actions == ["case.code_revoked", "case.member_unlinked"]
    assert all(e.actor == "staff:amy" for e in audit(console.db, "case.member_unlinked"))


def test_staff_unlink_an_owner_in_the_console_and_the_letter_leaves_the_roster(console):
    case = make_case(console.services)
    owner = add_owner(console.services, case.id, 1, number=next(valid_numbers(22_099_000)))
    admin = console.client("amy", "admin")
    page = admin.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert owner in page and "解除連結" in page
    viewer = console.client("ben", "viewer")
    token = console.token(viewer, f"/staff/cases/{case.id}")
    assert viewer.post(f"/staff/cases/{case.id}/unlink", data={"user": owner, "role": "owner",
                                                              "csrf_token": token}).status_code == 403
    token = console.token(admin, f"/staff/cases/{case.id}")
    admin.post(f"/staff/cases/{case.id}/unlink", data={"user": owner, "role": "owner", "csrf_token": token})
    with console.db.session() as s:
        assert store.members_of_case(s, case.id) == []
        assert store.letter_of(s, case.id, owner).status == store.WITHDRAWN
    (entry,) = audit(console.db, "case.member_unlinked")
    assert '"letter_withdrawn": true' in entry.detail


def test_the_code_guess_limit_survives_deleting_my_data_and_names_no_one(chat):
    bot = chat
    case = make_case(bot.services)
    bot.says(GUESSER, case.owner_code)
    bot.taps(GUESSER, "agree")  # a consent: now there is personal data to delete
    bot.says(GUESSER, "取消")
    for n in range(10):
        bot.says(GUESSER, f"J-AAAAA-AAAA{'ABCDEFGHJK'[n]}")
    assert bot.says(GUESSER, case.owner_code)[0].startswith("您在一小時內傳送了 10 個無法使用的代碼")

    bot.says(GUESSER, "刪除我的資料")
    said = bot.taps(GUESSER, "delete")
    assert said[0].startswith("完成：您的個人資料已刪除。"), said

    assert bot.says(GUESSER, case.owner_code)[0].startswith("您在一小時內傳送了 10 個無法使用的代碼")
    rows = every_row(bot.services)
    assert len(rows["code_attempts"]) >= 10
    assert not any(GUESSER in row for row in rows["code_attempts"])
