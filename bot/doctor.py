"""``gonghao doctor``: one command a new operator runs against a configured deployment.

Each check prints one line: OK with what it found, or the problem and its fix in one sentence
(zh_TW by default, ``--language en``). The exit status is 0 when every check passed, 1 otherwise.

Checks: the channel secret and access token are set; LINE takes the token (GET /v2/bot/info);
the webhook URL LINE has is ours (``GONGHAO_PUBLIC_URL`` + ``/callback``) and in use (GET
/v2/bot/channel/webhook/endpoint; ``--set-webhook`` sets it with PUT, then asks LINE to test it,
POST /v2/bot/channel/webhook/test); Redis keeps its data over a restart (AOF or RDB snapshots);
the database answers and is migrated to every head; the owners' rich menu is deployed and current
(its name carries the hash of its definition and image, bot/richmenu.py); the clock agrees with
LINE's and Asia/Taipei is known; the month's message quota covers the reminders due in the next
30 days.
"""
from __future__ import annotations

import email.utils
import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Optional

from dialogs.i18n import _

MAX_CLOCK_SKEW = 30  # seconds
REMINDER_DAYS = 30


@dataclass
class Finding:
    """One line of the report."""

    name: str
    ok: bool
    text: str

    def line(self) -> str:
        return f"{'OK ' if self.ok else 'FIX'} {self.name}: {self.text}"


@dataclass
class LineAnswer:
    status: int  # 0: LINE could not be reached
    body: dict = field(default_factory=dict)
    date: Optional[datetime] = None  # LINE's clock (the Date header)
    error: str = ""


@dataclass
class Doctor:
    """The checks against one configuration (bot.config.Config)."""

    config: object
    set_webhook: bool = False
    db: object = None
    redis: object = None
    _bot_info: Optional[LineAnswer] = None

    # -- LINE ------------------------------------------------------------------------------
    def line(self, method: str, path: str, body: Optional[dict] = None) -> LineAnswer:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.config.line_api_base_url + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.config.channel_access_token}",
            **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=min(self.config.line_timeout, 15)) as answer:
                return LineAnswer(answer.status, _json(answer.read()), _date(answer.headers.get("Date")))
        except urllib.error.HTTPError as exc:
            return LineAnswer(exc.code, _json(exc.read()), _date(exc.headers.get("Date")))
        except Exception as exc:
            return LineAnswer(0, error=type(exc).__name__)

    def bot_info(self) -> LineAnswer:
        if self._bot_info is None:
            self._bot_info = self.line("GET", "/v2/bot/info")
        return self._bot_info

    def _unreachable(self, name: str, answer: LineAnswer) -> Finding:
        if answer.status == 401:
            return Finding(name, False, _("LINE refused the access token. Issue a new long-lived channel access token "
                                          "in the LINE Developers console and set LINE_CHANNEL_ACCESS_TOKEN."))
        if answer.status == 0:
            return Finding(name, False, _("LINE could not be reached ({error}). Check the network and "
                                          "LINE_API_BASE_URL.").format(error=answer.error))
        return Finding(name, False, _("LINE answered {status}. Run the doctor again; if it persists, see LINE's "
                                      "status page.").format(status=answer.status))

    # -- the checks ------------------------------------------------------------------------
    def check_credentials(self) -> Finding:
        name = _("Channel secret and token")
        missing = [n for n, v in (("LINE_CHANNEL_SECRET", self.config.channel_secret),
                                  ("LINE_CHANNEL_ACCESS_TOKEN", self.config.channel_access_token)) if not v]
        if missing:
            return Finding(name, False, _("{names} not set. Copy them from the LINE Developers console "
                                          "(Basic settings and Messaging API tabs).").format(names=", ".join(missing)))
        return Finding(name, True, _("both set"))

    def check_token(self) -> Finding:
        name = _("Access token")
        answer = self.bot_info()
        if answer.status != 200:
            return self._unreachable(name, answer)
        return Finding(name, True, _("LINE accepts it: {name} ({basic_id})").format(
            name=answer.body.get("displayName", "?"), basic_id=answer.body.get("basicId", "?")))

    def expected_webhook(self) -> str:
        return (self.config.public_url or "").rstrip("/") + "/callback"

    def check_webhook(self) -> Finding:
        name = _("Webhook URL")
        if not self.config.public_url:
            return Finding(name, False, _("GONGHAO_PUBLIC_URL is not set. Set it to the bot's public https address "
                                          "(without /callback)."))
        expected = self.expected_webhook()
        if self.set_webhook:
            answer = self.line("PUT", "/v2/bot/channel/webhook/endpoint", {"endpoint": expected})
            if answer.status != 200:
                if answer.status == 400:
                    return Finding(name, False, _("LINE refused {url} as the webhook URL. It must be an https "
                                                  "address LINE can reach.").format(url=expected))
                return self._unreachable(name, answer)
        answer = self.line("GET", "/v2/bot/channel/webhook/endpoint")
        if answer.status == 404:
            return Finding(name, False, _("No webhook URL is set with LINE. Run gonghao doctor --set-webhook, or set "
                                          "{url} in the console's Messaging API tab.").format(url=expected))
        if answer.status != 200:
            return self._unreachable(name, answer)
        registered = answer.body.get("endpoint", "")
        if registered != expected:
            return Finding(name, False, _("LINE sends the events to {registered}, not to {url}. Run gonghao doctor "
                                          "--set-webhook, or correct it in the console's Messaging API tab.").format(
                registered=registered, url=expected))
        if not answer.body.get("active"):
            return Finding(name, False, _("{url} is registered but \"Use webhook\" is off. Turn it on in the "
                                          "console's Messaging API tab.").format(url=expected))
        if self.set_webhook:
            return self._webhook_test(name, expected)
        return Finding(name, True, _("{url}, in use").format(url=expected))

    def _webhook_test(self, name: str, expected: str) -> Finding:
        answer = self.line("POST", "/v2/bot/channel/webhook/test", {"endpoint": expected})
        if answer.status != 200:
            return self._unreachable(name, answer)
        if not answer.body.get("success"):
            return Finding(name, False, _("{url} is set, but LINE's test got {status} ({reason}). Check that the web "
                                          "process is running and reachable and that LINE_CHANNEL_SECRET is "
                                          "right.").format(url=expected, status=answer.body.get("statusCode"),
                                                           reason=answer.body.get("reason", "")))
        return Finding(name, True, _("{url} set, in use, and LINE's test was answered 200").format(url=expected))

    def check_redis(self) -> Finding:
        from bot.checks import redis_persistence

        name = _("Redis persistence")
        if self.redis is None:
            if self.config.production:
                return Finding(name, False, _("REDIS_URL is not set. Production needs Redis; set REDIS_URL."))
            return Finding(name, True, _("Redis is not used (the embedded default)"))
        try:
            kept, facts = redis_persistence(self.redis)
        except Exception as exc:
            return Finding(name, False, _("Redis does not answer ({error}). Start it or correct REDIS_URL.").format(
                error=type(exc).__name__))
        if not facts["aof_enabled"] and not getattr(self.config, "allow_volatile_redis", False):
            if kept:
                return Finding(name, False, _("Redis only takes snapshots (save \"{save}\"): in production the "
                                              "processes refuse to start without AOF. Set appendonly yes in "
                                              "redis.conf.").format(save=facts["save"]))
            return Finding(name, False, _("Redis keeps nothing over a restart (no AOF, no snapshots): the rate limits "
                                          "start again after a restart. Set appendonly yes in redis.conf."))
        return Finding(name, True, _("on (appendonly {aof}, save \"{save}\")").format(
            aof="yes" if facts["aof_enabled"] else "no", save=facts["save"] if facts["save"] is not None else "?"))

    def check_database(self) -> Finding:
        from bot.checks import migrations_at_head

        name = _("Database")
        kind = "PostgreSQL" if self.db.url.startswith("postgresql") else "SQLite"
        try:
            at_head, missing = migrations_at_head(self.db)
        except Exception as exc:
            return Finding(name, False, _("{kind} does not answer ({error}). Start it or correct DATABASE_URL.").format(
                kind=kind, error=type(exc).__name__))
        if not at_head:
            return Finding(name, False, _("{kind} answers but misses the migrations {missing}. Run gonghao db "
                                          "upgrade.").format(kind=kind, missing=", ".join(missing) or "?"))
        if self.config.production and kind != "PostgreSQL":
            return Finding(name, False, _("Production needs PostgreSQL. Set DATABASE_URL=postgresql://…"))
        return Finding(name, True, _("{kind} answers and is migrated").format(kind=kind))

    def check_rich_menu(self) -> Finding:
        from linebot.v3.messaging.exceptions import ApiException

        from bot.richmenu import NAME_PREFIX, FontNotFound, build, default_rich_menu_id, line_apis

        name = _("Rich menu")
        try:
            menu = build()
        except FontNotFound:
            return Finding(name, False, _("No Traditional Chinese font to draw the menu with. Install fonts-noto-cjk "
                                          "or set GONGHAO_CJK_FONT."))
        api, _blob = line_apis(self.config.channel_access_token, self.config.line_api_base_url)
        timeout = min(self.config.line_timeout, 15)
        try:
            default = default_rich_menu_id(api, timeout)
            names = {m.rich_menu_id: m.name for m in api.get_rich_menu_list(_request_timeout=timeout).richmenus or []}
        except ApiException as exc:
            return self._unreachable(name, LineAnswer(exc.status or 0, error=str(exc.reason)))
        except Exception as exc:
            return self._unreachable(name, LineAnswer(0, error=type(exc).__name__))
        current = names.get(default or "", "")
        if current == menu.name:
            return Finding(name, True, _("{name} is the default").format(name=menu.name))
        if current.startswith(NAME_PREFIX):
            return Finding(name, False, _("An older menu ({found}) is the default. Run gonghao richmenu "
                                          "deploy.").format(found=current))
        return Finding(name, False, _("The owners' rich menu is not the default. Run gonghao richmenu deploy."))

    def check_clock(self) -> Finding:
        from dialogs.dates import TAIPEI

        name = _("Clock and time zone")
        if self.config.now:
            return Finding(name, False, _("GONGHAO_NOW fixes the bot's clock (for demos). Unset it in production."))
        now = datetime.now(timezone.utc)
        line_clock = self.bot_info().date
        taipei = now.astimezone(TAIPEI)
        if line_clock is not None and abs((now - line_clock).total_seconds()) > MAX_CLOCK_SKEW:
            return Finding(name, False, _("This machine's clock is {seconds} s off LINE's. Turn on time "
                                          "synchronisation (NTP, e.g. systemd-timesyncd or chrony).").format(
                seconds=int((now - line_clock).total_seconds())))
        return Finding(name, True, _("Asia/Taipei {time} (UTC{offset}){agree}").format(
            time=taipei.strftime("%Y-%m-%d %H:%M"), offset=taipei.strftime("%z")[:3],
            agree=_(", agrees with LINE's clock") if line_clock is not None else ""))

    def check_quota(self, preview: Callable) -> Finding:
        name = _("Message quota")
        quota = self.line("GET", "/v2/bot/message/quota")
        used = self.line("GET", "/v2/bot/message/quota/consumption")
        if quota.status != 200 or used.status != 200:
            return self._unreachable(name, quota if quota.status != 200 else used)
        try:
            items = preview(REMINDER_DAYS)
        except Exception as exc:
            return Finding(name, False, _("The reminders of the next 30 days could not be listed ({error}). Check "
                                          "the database and gonghao reminders preview.").format(error=type(exc).__name__))
        this_month, next_month = _needs_by_month(items, datetime.now(timezone.utc))
        if quota.body.get("type") != "limited":
            return Finding(name, True, _("no monthly limit; the reminders of the next 30 days need {n} "
                                         "messages").format(n=this_month + next_month))
        limit, spent = int(quota.body.get("value", 0)), int(used.body.get("totalUsage", 0))
        remaining = max(limit - spent, 0)
        if this_month > remaining or next_month > limit:
            return Finding(name, False, _("The reminders of the next 30 days need {this} messages this month and "
                                          "{next} next month, but {remaining} of {limit} remain this month. Upgrade "
                                          "the plan in LINE Official Account Manager, or narrow the "
                                          "reminders.").format(this=this_month, next=next_month,
                                                               remaining=remaining, limit=limit))
        return Finding(name, True, _("{remaining} of {limit} left this month; the reminders of the next 30 days need "
                                     "{this} this month and {next} next month").format(
            remaining=remaining, limit=limit, this=this_month, next=next_month))

    def run(self, preview: Callable) -> list[Finding]:
        findings = [self.check_credentials()]
        if self.config.channel_access_token:
            findings += [self.check_token(), self.check_webhook()]
        findings += [self.check_redis(), self.check_database()]
        if self.config.channel_access_token:
            findings += [self.check_rich_menu(), self.check_clock(), self.check_quota(preview)]
        else:
            findings.append(self.check_clock())
        return findings


def _needs_by_month(items, now: datetime) -> tuple[int, int]:
    """Messages the previewed reminders need in this calendar month and after it (LINE counts by month, JST)."""
    jst = timezone(timedelta(hours=9))
    month = now.astimezone(jst).strftime("%Y-%m")
    this_month = sum(len(i.recipients) for i in items if i.at.astimezone(jst).strftime("%Y-%m") == month)
    return this_month, sum(len(i.recipients) for i in items) - this_month


def _json(raw: bytes) -> dict:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _date(header: Optional[str]) -> Optional[datetime]:
    if not header:
        return None
    try:
        return email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None


@dataclass
class _Parts:
    """What the reminders preview needs, without the queue and the worker."""

    config: object
    db: object
    redis: object = None
    gateway: object = None
    reminder_directory: object = None  # as bot.services.Services: None reads the cases-and-letters tables


def run_doctor(config, set_webhook: bool = False, echo: Callable[[str], None] = print) -> int:
    """Runs every check, prints a line each, returns 0 when all passed."""
    from bot.config import normalise_database_url
    from bot.reminders import preview
    from storage.db import Database

    db = Database(normalise_database_url(config.database_url))
    redis = None
    if config.redis_url:
        import redis as redis_lib

        redis = redis_lib.Redis.from_url(config.redis_url, socket_timeout=5, socket_connect_timeout=3)
    doctor = Doctor(config, set_webhook=set_webhook, db=db, redis=redis)
    parts = _Parts(config, db, redis)
    started = time.monotonic()
    try:
        findings = doctor.run(lambda days: preview(parts, days=days))
    finally:
        db.engine.dispose()
        if redis is not None:
            redis.close()
    for finding in findings:
        echo(finding.line())
    failed = sum(not f.ok for f in findings)
    echo(_("{failed} of {total} checks need attention ({seconds:.1f} s).").format(
        failed=failed, total=len(findings), seconds=time.monotonic() - started) if failed else
         _("All {total} checks passed ({seconds:.1f} s).").format(total=len(findings),
                                                                 seconds=time.monotonic() - started))
    return 1 if failed else 0
