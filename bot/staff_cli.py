"""`gonghao staff …`, `gonghao export …`, `gonghao import …`: the console's accounts, exports and imports.

    gonghao staff add NAME --role admin|viewer      (the password is asked twice, never echoed)
    gonghao staff list
    gonghao export roster|letters|tests --case ID | --edition 112 --format xlsx|csv -o FILE
    gonghao import previous-program|assessments|township-groups FILE [--confirm]

Without --confirm an import only shows what it would do and every refused row with its line
number and reason. Exports and imports are written to the audit log (actor ``staff:cli``, or
``staff:NAME`` with --as NAME).
"""
from __future__ import annotations

import click

from dialogs.i18n import _


def _database():
    from bot.services import database_from_env

    return database_from_env()


def _actor(name) -> str:
    return f"staff:{name}" if name else "staff:cli"


# -- accounts ---------------------------------------------------------------------------------------
@click.group("staff")
def staff_group():
    """Staff console accounts."""


@staff_group.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "viewer"]), required=True,
              help="admin: may change cases and import; viewer: may only read and export")
@click.password_option("--password", prompt=True, confirmation_prompt=True,
                       help="asked when not given (never put it on the command line in production)")
def staff_add(name, role, password):
    """Creates a console account, or sets a new password and role for an existing one."""
    from storage.staff import add_account

    _config, db = _database()
    try:
        add_account(db, name, role, password)
    except ValueError as problem:
        raise click.ClickException(str(problem))
    click.echo(_("Account {name} ({role}) is ready: log in at /staff/login.").format(name=name, role=role))


@staff_group.command("list")
def staff_list():
    """Lists the console accounts (no passwords)."""
    from storage.staff import accounts

    _config, db = _database()
    for account in accounts(db):
        last = account.last_login_at.isoformat(timespec="minutes") if account.last_login_at else "-"
        click.echo(f"{account.name:<24} {account.role:<7} {'active' if account.active else 'disabled':<9} {last}")


# -- exports -----------------------------------------------------------------------------------------
@click.command("export")
@click.argument("kind", type=click.Choice(["roster", "letters", "tests"]))
@click.option("--case", "case_id", type=int, default=None, help="one case")
@click.option("--edition", type=int, default=None, help="every case of an edition (ROC year), e.g. 112")
@click.option("--format", "fmt", type=click.Choice(["xlsx", "csv"]), default="xlsx", show_default=True)
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="the file to write")
@click.option("--as", "as_name", default=None, help="the staff member's name for the audit log")
def export_command(kind, case_id, edition, fmt, output, as_name):
    """Exports the 附件一 roster, the letters or the pre/post-test status (audit-logged)."""
    from bot.exports import export

    if (case_id is None) == (edition is None):
        raise click.UsageError(_("Give either --case ID or --edition YEAR."))
    config, db = _database()
    if case_id is not None:
        from storage.letters import Case

        with db.session() as s:
            if s.get(Case, case_id) is None:
                raise click.ClickException(_("There is no case {id}.").format(id=case_id))
    rows = export(db, kind, fmt, output, case_id=case_id, edition=edition, actor=_actor(as_name), config=config)
    click.echo(_("{rows} rows written to {path}.").format(rows=rows, path=output))


# -- imports ------------------------------------------------------------------------------------------
@click.command("import")
@click.argument("kind", type=click.Choice(["previous-program", "assessments", "township-groups"]))
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--confirm", is_flag=True, help="apply the accepted rows (without it nothing is written)")
@click.option("--as", "as_name", default=None, help="the staff member's name for the audit log")
def import_command(kind, path, confirm, as_name):
    """Imports a CSV or XLSX file: shows every refused row first; --confirm applies it in one transaction."""
    from storage import imports

    _config, db = _database()
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        preview = imports.preview(db, kind, path, data, actor=_actor(as_name))
    except imports.FileProblem as problem:
        raise click.ClickException(str(problem))
    click.echo(preview_text(preview))
    if not confirm:
        click.echo(_("Nothing was imported. Run the same command with --confirm to import the accepted rows."))
        return
    batch_id = preview.batch_id
    del preview, data  # the checked rows are kept in the database; confirm reads them from there
    result = imports.confirm(db, batch_id, actor=_actor(as_name))
    click.echo(_("Imported: {new} new, {changed} changed, {unchanged} already there.").format(
        new=result.get("new", 0), changed=result.get("changed", 0), unchanged=result.get("unchanged", 0)))


def preview_text(preview) -> str:
    from storage.imports import kind_name

    lines = [_("{kind}: {total} rows, {accepted} accepted, {rejected} refused.").format(
        kind=kind_name(preview.kind), total=preview.total, accepted=preview.accepted, rejected=len(preview.problems))]
    for line, reason in preview.problems:
        lines.append("  " + _("line {line}: {reason}").format(line=line, reason=reason))
    changes = preview.changes
    lines.append(_("Confirming would add {new}, change {changed} and leave {unchanged} as they are.").format(
        new=changes.get("new", 0), changed=changes.get("changed", 0), unchanged=changes.get("unchanged", 0)))
    if preview.same_file_confirmed_at:
        lines.append(_("The same file was imported before; importing it again changes nothing."))
    return "\n".join(lines)
