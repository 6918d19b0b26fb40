"""`gonghao edition purge YEAR [--confirm]`: the personal data of a program edition, deleted when its purpose ends.

個人資料保護法 §11: personal data is deleted once the purpose of its collection has ended. The
edition's period (storage/editions/<year>/edition.yaml) says when the program ends; before that
the command refuses. Without --confirm it only counts what would go. What is deleted and what
stays is storage.letters.purge_edition; the audit log records who purged which edition and the
counts, nothing that names a person.
"""
from __future__ import annotations

from datetime import timedelta

import click


class _DryRun(Exception):
    """Rolls the counting run back."""


def purge_command(year: int, confirm: bool, actor: str = "staff:cli") -> int:
    from bot.config import Config
    from bot.services import Services
    from dialogs.dates import TAIPEI, today
    from dialogs.edition import edition_for
    from storage.letters import purge_edition

    config = Config.from_env()
    edition, _covers = edition_for(case_edition=year)
    if edition.year != year:
        raise click.ClickException(f"there is no edition {year} under storage/editions")
    end = edition.period.end
    day = config.fixed_now.astimezone(TAIPEI).date() if config.fixed_now else today()  # GONGHAO_NOW, when set
    if end is not None and day <= end:
        raise click.ClickException(f"the {year} program runs until {end.isoformat()}: its data is still needed; "
                                   f"it can be purged from {(end + timedelta(days=1)).isoformat()} on.")
    services = Services(config)
    try:
        if services.config.database_url.startswith("sqlite") or not services.config.uses_redis:
            services.db.upgrade()  # the embedded default keeps its schema up to date itself
        db = services.db
        if not confirm:
            counts = {}
            try:
                with db.session() as s:
                    counts = purge_edition(s, year, store=None)
                    raise _DryRun()
            except _DryRun:
                pass
            click.echo(_summary(year, counts, done=False))
            click.echo(f"Nothing was deleted. Run `gonghao edition purge {year} --confirm` to delete it.")
            return 0
        with db.session() as s:
            counts = purge_edition(s, year, store=getattr(services, "store", None))
        db.audit(actor, "edition.purged", f"edition:{year}", **counts)
        click.echo(_summary(year, counts, done=True))
        return 0
    finally:
        services.close()


def _summary(year: int, counts: dict, done: bool) -> str:
    verb = "deleted" if done else "would delete"
    return (f"edition {year}: {counts.get('cases', 0)} cases (kept); {verb} {counts.get('letters', 0)} letters and "
            f"{counts.get('memberships', 0)} memberships of {counts.get('people', 0)} people, "
            f"{counts.get('forgotten', 0)} of whom have nothing in another edition and are forgotten entirely.")
