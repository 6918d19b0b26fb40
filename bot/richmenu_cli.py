"""`gonghao richmenu deploy` and `gonghao richmenu image -o FILE` (see bot/richmenu.py)."""
from __future__ import annotations

import click


@click.group("richmenu")
def richmenu():
    """The rich menus on LINE: the owners' (the default) and the proposers' (linked per user)."""


def _build():
    from bot.richmenu import FontNotFound, build

    try:
        return build()
    except FontNotFound as exc:
        raise click.ClickException(str(exc)) from exc


@richmenu.command("deploy")
def deploy_command():
    """Creates the rich menu, uploads its image and makes it the default; does nothing if it already is."""
    from linebot.v3.messaging.exceptions import ApiException

    from bot.config import Config
    from bot.richmenu import deploy, line_apis

    config = Config.from_env()
    if not config.channel_access_token:
        raise click.ClickException("LINE_CHANNEL_ACCESS_TOKEN is not set: the Messaging API needs it.")
    menu = _build()
    api, blob = line_apis(config.channel_access_token, config.line_api_base_url)
    try:
        result = deploy(menu, api, blob, timeout=config.line_timeout)
    except ApiException as exc:
        raise click.ClickException(f"LINE refused ({exc.status}): {exc.body!r}") from exc
    except Exception as exc:  # timeouts, connection errors: deploying again is safe
        raise click.ClickException(f"LINE could not be reached ({type(exc).__name__}); deploy again.") from exc
    for step in result.steps:
        click.echo(step)
    click.echo(f"default rich menu: {result.name} ({result.rich_menu_id}): "
               + ", ".join(e.value for e in menu.entries))
    from bot.richmenu import build_proposers, deploy_linked

    proposers = build_proposers()
    try:
        linked = deploy_linked(proposers, api, blob, timeout=config.line_timeout)
    except ApiException as exc:
        raise click.ClickException(f"LINE refused ({exc.status}): {exc.body!r}") from exc
    for step in linked.steps:
        click.echo(step)
    click.echo(f"proposers' rich menu (linked to each proposer contact): {linked.name} ({linked.rich_menu_id}): "
               + ", ".join(e.value for e in proposers.entries))


@richmenu.command("image")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True),
              help="where to write the PNG")
def image_command(output):
    """Writes the rich menu's image (PNG) to look at before deploying."""
    menu = _build()
    with open(output, "wb") as fh:
        fh.write(menu.image)
    width, height = menu.size
    click.echo(f"{output}: {width}×{height} PNG, {len(menu.image)} bytes, {len(menu.entries)} areas, {menu.name}")
