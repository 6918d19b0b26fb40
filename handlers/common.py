"""What the handlers share: the dialogs' Context for a user, running the conversation, the dead-letter notice."""
from __future__ import annotations

from dialogs.engine import Context, Links
from dialogs.i18n import _, use_locale
from dialogs.messages import Text
from storage.repository import StorageRepository


def user_id_of(event: dict):
    return (event.get("source") or {}).get("userId")


def repository(services) -> StorageRepository:
    """The dialogs' repository over the bot's database, conversation store and township groups.

    ``services.reminder_directory`` (set by tests and benchmarks) replaces who-is-in-which-case.
    """
    return StorageRepository(services.db, conversations=services.store,
                             directory=services.reminder_directory,
                             township_groups=services.township_group)


def links(config) -> Links:
    """Where the dialogs' links point and what signs them, from the configuration."""
    return Links(public_url=config.public_url or "", secret_key=config.secret_key or "",
                 channel_secret=config.channel_secret or "", bot_basic_id=config.bot_basic_id or "")


def context_for(services, user_id: str, locale: str) -> Context:
    """Everything a dialog may know about this user and ask of the bot."""
    repo = repository(services)
    return Context(user_id=user_id, locale=locale, repo=repo, links=links(services.config),
                   township_group=repo.township_group)


def converse(event: dict, services, state, text: str):
    """Runs one input through the conversation in the user's locale."""
    user_id = user_id_of(event)
    if not user_id:
        return None, []  # groups and rooms: the bot talks 1:1 only
    locale = services.users.locale(user_id)
    with use_locale(locale):
        ctx = context_for(services, user_id, locale)
        result = services.conversation.handle(state, text, ctx)
    _apply_effects(services, user_id, ctx.effects)
    return result


def _apply_effects(services, user_id: str, effects: list) -> None:
    """The menu of the person's role (LINE's per-user rich menu, bot.richmenu.RoleMenus)."""
    for kind, value in effects:
        if kind == "rich_menu":
            services.role_menus.link(user_id, value)


def could_not_handle(services, user_id):
    """Said once when a message failed again and again and was set aside (dead-lettered)."""
    locale = services.users.cached_locale(user_id)
    with use_locale(locale):
        return [Text(_("Sorry, we could not handle that message. Please try saying it another way, "
                       "or contact the program office."))]
