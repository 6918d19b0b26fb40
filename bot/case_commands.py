"""`gonghao case …`: staff set up cases and their codes (the staff console comes later).

    gonghao case create --edition 112 --proposer 某某股份有限公司 --plan 某某計畫 --type popularization \\
        --vendor 某某雲端股份有限公司 --solution 雲端POS --solution-content … --sla … --period … --other … --planned 60
    gonghao case list
    gonghao case codes CASE_ID [--qr FILE.png]
    gonghao case revoke CASE_ID --which proposer|owner
    gonghao case unlink CASE_ID --user LINE_USER_ID [--role proposer|owner]
    gonghao case letters CASE_ID

Every command is written to the audit log (actor ``staff:cli``).
"""
from __future__ import annotations

import click


def _database():
    from bot.services import database_from_env

    return database_from_env()


def _case_or_fail(session, case_id: int):
    from storage.letters import Case

    case = session.get(Case, case_id)
    if case is None:
        raise click.ClickException(f"there is no case {case_id} (see `gonghao case list`)")
    return case


@click.group("case")
def case_group():
    """Cases, their proposer and owner codes, and their letters of intent."""


@case_group.command("create")
@click.option("--edition", type=int, required=True, help="the program edition (ROC year), e.g. 112")
@click.option("--proposer", required=True, help="提案單位公司全名")
@click.option("--plan", required=True, help="計畫名稱")
@click.option("--type", "case_type", type=click.Choice(["popularization", "inclusion"]), required=True,
              help="數位普及輔導 (popularization) or 數位共融輔導 (inclusion)")
@click.option("--theme", default=None, help="for inclusion: regional, industry_chain or cross_industry")
@click.option("--vendor", required=True, help="雲端服務供應商全名")
@click.option("--solution", required=True, help="the cloud solution's name")
@click.option("--solution-content", default="", help="雲端服務解決方案項目內容")
@click.option("--sla", default="", help="服務水平協議 SLA 之說明")
@click.option("--period", default="", help="使用期間")
@click.option("--other", default="", help="計畫其他輔導內容")
@click.option("--integrated", default="", help="數位共融輔導: 整合性服務項目與內容 (附件二 二)")
@click.option("--planned", type=int, default=0, help="the planned number of enterprises")
def create(edition, proposer, plan, case_type, theme, vendor, solution, solution_content, sla, period, other,
           integrated, planned):
    """Creates a case and prints its two codes."""
    from dialogs.edition import edition_for
    from storage.letters import create_case

    ed, _covers = edition_for(case_edition=edition)
    if ed.year != edition:
        raise click.ClickException(f"there is no edition {edition} under storage/editions")
    kind = ed.case_types.get(case_type)
    if theme and (kind is None or kind.theme(theme) is None):
        known = ", ".join(t.key for t in kind.themes) if kind and kind.themes else "none for this type"
        raise click.ClickException(f"unknown theme {theme!r} for {case_type} (known: {known})")
    _config, db = _database()
    with db.session() as s:
        case = create_case(s, edition=edition, proposer_name=proposer, plan_name=plan, case_type=case_type,
                           theme=theme, vendor_name=vendor, solution_name=solution, solution_content=solution_content,
                           sla=sla, period=period, other_content=other, integrated_service=integrated,
                           planned_count=planned)
        case_id, proposer_code, owner_code = case.id, case.proposer_code, case.owner_code
    db.audit("staff:cli", "case.created", f"case:{case_id}", edition=edition, type=case_type)
    click.echo(f"case {case_id} created: 「{plan}」")
    click.echo(f"  proposer code: {proposer_code}")
    click.echo(f"  owners' code:  {owner_code}")
    click.echo(f"run `gonghao case codes {case_id}` for the owners' LINE link and QR code")


@case_group.command("list")
def list_cases():
    """Lists the cases with their owners and letters."""
    from sqlalchemy import func, select

    from storage.letters import Case, CaseMember, Letter

    _config, db = _database()
    with db.session() as s:
        cases = s.execute(select(Case).order_by(Case.id)).scalars().all()
        members = dict(s.execute(select(CaseMember.case_id, func.count()).where(CaseMember.role == "owner")
                                 .group_by(CaseMember.case_id)).all())
        sent = dict(s.execute(select(Letter.case_id, func.count()).where(Letter.status == "submitted")
                              .group_by(Letter.case_id)).all())
    if not cases:
        click.echo("no cases yet: `gonghao case create --help`")
        return
    click.echo("id  edition  type            planned  owners  letters  plan / proposer")
    for c in cases:
        click.echo(f"{c.id:<3} {c.edition:<8} {c.case_type:<15} {c.planned_count:<8} {members.get(c.id, 0):<7} "
                   f"{sent.get(c.id, 0):<8} 「{c.plan_name}」 {c.proposer_name}")


@case_group.command("codes")
@click.argument("case_id", type=int)
@click.option("--qr", "qr_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="where to write the QR image of the owners' link (default: case-ID-owners-qr.png)")
def codes(case_id, qr_path):
    """Prints both codes and the owners' LINE link, and writes the link's QR code as a PNG."""
    from dialogs.letter_doc import join_text, line_invite_link, qr_png

    config, db = _database()
    with db.session() as s:
        case = _case_or_fail(s, case_id)
    db.audit("staff:cli", "case.codes_shown", f"case:{case_id}")
    click.echo(f"case {case.id}: 「{case.plan_name}」 ({case.proposer_name})")
    click.echo(f"  proposer code: {case.proposer_code}" + ("  [revoked]" if case.proposer_code_revoked else ""))
    click.echo(f"  owners' code:  {case.owner_code}" + ("  [revoked]" if case.owner_code_revoked else ""))
    if not config.bot_basic_id:
        click.echo(f"LINE_BOT_BASIC_ID is not set: no link or QR code. Owners can type 「{join_text(case.owner_code)}」.")
        return
    link = line_invite_link(config.bot_basic_id, case.owner_code)
    path = qr_path or f"case-{case.id}-owners-qr.png"
    with open(path, "wb") as fh:
        fh.write(qr_png(link))
    click.echo(f"  owners' LINE link: {link}")
    click.echo(f"  QR code written to {path}")


@case_group.command("revoke")
@click.argument("case_id", type=int)
@click.option("--which", type=click.Choice(["proposer", "owner"]), required=True)
def revoke(case_id, which):
    """Revokes a code and issues a new one (the old code stops working at once)."""
    from storage.letters import members_joined_with, reissue_code

    _config, db = _database()
    with db.session() as s:
        case = _case_or_fail(s, case_id)
        old = case.proposer_code if which == "proposer" else case.owner_code
        code = reissue_code(s, case, which)
        joined = [m.user_id for m in members_joined_with(s, case_id, old)]
    db.audit("staff:cli", "case.code_revoked", f"case:{case_id}", which=which, joined_with_it=len(joined))
    click.echo(f"the old {which} code of case {case_id} no longer works; the new one is {code}")
    if joined:
        click.echo(f"{len(joined)} joined with the old code and keep their access; to take it away:")
        for user_id in joined:
            click.echo(f"  gonghao case unlink {case_id} --user {user_id} --role {which}")
    if which == "owner":
        click.echo(f"run `gonghao case codes {case_id}` for the new link and QR code")


@case_group.command("letters")
@click.argument("case_id", type=int)
def letters(case_id):
    """Lists the case's letters with their flags and a download link for each document (logged)."""
    from sqlalchemy import select

    from dialogs.letter_doc import letter_url
    from storage.letters import Letter

    config, db = _database()
    with db.session() as s:
        case = _case_or_fail(s, case_id)
        rows = s.execute(select(Letter).where(Letter.case_id == case_id).order_by(Letter.id)).scalars().all()
    db.audit("staff:cli", "letters.listed", f"case:{case_id}", count=len(rows))
    click.echo(f"case {case.id}: 「{case.plan_name}」, {len(rows)} letters")
    for letter in rows:
        flags = ",".join(letter.flags) or "-"
        line = f"  letter {letter.id}  {letter.status:<9} v{letter.version}  {letter.business_number or '-':<8}  " \
               f"{letter.company_name or '-'}  flags: {flags}"
        if letter.status == "submitted":
            line += f"\n    {letter_url(config, letter.id, letter.version)}"
        click.echo(line)


@case_group.command("unlink")
@click.argument("case_id", type=int)
@click.option("--user", "user_id", required=True, help="the LINE user id (U…) to take access away from")
@click.option("--role", type=click.Choice(["proposer", "owner"]), default=None,
              help="only this role (default: every role the user has in the case)")
def unlink(case_id, user_id, role):
    """Takes a proposer's or an owner's access to a case away (from their next message on; audit-logged)."""
    from storage.letters import unlink_member

    _config, db = _database()
    with db.session() as s:
        _case_or_fail(s, case_id)
        result = unlink_member(s, case_id, user_id.strip(), role)
    if not result["roles"]:
        raise click.ClickException(f"{user_id} is not linked to case {case_id}")
    for removed in result["roles"]:
        db.audit("staff:cli", "case.member_unlinked", f"case:{case_id}", role=removed,
                 letter_withdrawn=result["letter_withdrawn"])
    click.echo(f"{user_id} is no longer linked to case {case_id} ({', '.join(result['roles'])})"
               + ("; their letter was withdrawn from the roster" if result["letter_withdrawn"] else ""))
