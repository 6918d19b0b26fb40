"""`gonghao chat`: talk to the bot in a terminal, as a LINE user, through the real path.

Each line typed becomes a signed webhook request (as LINE would send it), goes
through the queue, the dialogs and the LINE gateway to a mock LINE platform on
loopback; what arrives there is printed as LINE would show it. Buttons are
numbered: typing #2 taps the second; a plain number is sent as text (an answer
such as 5 employees), as LINE would send it.

Each console is its own LINE platform with one user: its worker answers only that
user's events, so two consoles on the same instance/ file (two terminals) each get
their own answers, and each exactly once.
"""
from __future__ import annotations

import logging
import re
import time

from sqlalchemy import text as sql

from bot import line_events
from bot.config import Config
from dialogs.text import scrub

SECRET = "console-channel-secret"
TAP = re.compile(r"[#＃]\s*(\d{1,2})")  # "#2" taps the second button
TOKEN = "console-access-token"
# An event is answered when it is no longer queued and its answer (if any) no longer open.
ANSWERED = sql("SELECT e.status, d.status FROM accepted_events e LEFT JOIN deliveries d "
               "ON d.event_id = e.webhook_event_id WHERE e.webhook_event_id = :id")


def flex_lines(node, lines: list, actions: list) -> None:
    """Flattens a Flex component tree into text lines and numbered buttons."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "bubble" and lines and lines[-1] != "—":  # the cards of a carousel, one after the other
            lines.append("—")
        if kind == "text" and node.get("text", "").strip():
            lines.append(node["text"])
        elif kind == "button":
            actions.append(node["action"])
            lines.append(f"  [{len(actions)}] {node['action'].get('label', '')}")
        for key in ("header", "hero", "body", "footer"):
            if key in node:
                flex_lines(node[key], lines, actions)
        for child in node.get("contents", []) if isinstance(node.get("contents"), list) else [node.get("contents")]:
            if child is not None:
                flex_lines(child, lines, actions)


def show(message: dict, actions: list) -> str:
    """What LINE would show for one message; its buttons are appended to ``actions``."""
    lines: list[str] = []
    kind = message.get("type")
    if kind == "text":
        lines.append(message["text"])
    elif kind == "flex":
        flex_lines(message["contents"], lines, actions)
    elif kind == "image":
        lines.append(f"[image] {message.get('originalContentUrl')}")
    else:
        lines.append(f"[{kind}]")
    for item in (message.get("quickReply") or {}).get("items", []):
        actions.append(item["action"])
        lines.append(f"  ({len(actions)}) {item['action'].get('label', '')}")
    return "\n".join(lines)


class ConsoleChat:
    """A LINE user in a terminal, sending through the app to the mock platform."""

    def __init__(self, user_id: str, language: str = "zh-Hant", config: Config | None = None, mock=None):
        from bot import create_app, start_embedded
        from bot.mockline import MockLine

        self.user_id = user_id
        self.language = language
        self.mock = mock or MockLine().start()
        self.mock.profiles[user_id] = {"userId": user_id, "displayName": "Console", "language": language}
        base = config or Config.from_env()
        port = None if base.public_url else _free_port()  # nothing serves the links yet: this console does
        self.config = base.model_copy(update=dict(channel_secret=SECRET, channel_access_token=TOKEN,
                                                  line_api_base_url=self.mock.url, env="development",
                                                  secret_key=base.secret_key or development_key(),
                                                  public_url=base.public_url or f"http://127.0.0.1:{port}"))
        self.app = create_app(self.config)
        start_embedded(self.app, user=user_id)  # SQLite: a worker for this console's user only
        self.server = _serve(self.app, port) if port else None
        self.services = self.app.extensions["gonghao"]
        self.worker = getattr(self.services, "inprocess_worker", None)
        if self.worker is None:  # PostgreSQL: a worker of the console's own, in a thread
            from bot.worker import Worker

            self.services.db.upgrade()
            self.worker = Worker(self.services, threads=4).start()
        self.client = self.app.test_client()
        self.actions: list = []
        self.seen = 0

    def post(self, event: dict) -> str:
        """Sends the event through the webhook; its id."""
        body = line_events.envelope([event])
        response = self.client.post("/callback", data=body, headers={
            "Content-Type": "application/json", "x-line-signature": line_events.sign(SECRET, body)})
        if response.status_code != 200:
            raise RuntimeError(f"the webhook answered {response.status_code}")
        return event["webhookEventId"]

    def wait(self, event_id: str, timeout: float = 15) -> bool:
        """Waits until the event is answered (another console's work is not waited for); False after ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self._answered(event_id):
            if time.monotonic() > deadline:
                return False
            self.worker.wake.set()
            time.sleep(0.02)
        return True

    def _answered(self, event_id: str) -> bool:
        with self.services.db.connection() as conn:
            row = conn.execute(ANSWERED, {"id": event_id}).first()
        return row is None or row[0] != "queued" and row[1] not in ("pending", "sending")

    def new_messages(self) -> list[dict]:
        """What arrived for this console's user since the last look (never another user's answers)."""
        delivered = self.mock.messages_to(self.user_id)
        fresh, self.seen = delivered[self.seen:], len(delivered)
        return fresh

    def follow(self) -> str:
        token = self.mock.issue_reply_token(self.user_id)
        return self.answer(self.post(line_events.follow_event(self.user_id, reply_token=token)))

    def say(self, text: str) -> str:
        """Sends what the user typed (control characters are removed, and the user told); #2 taps the second
        button, a plain number is text."""
        from dialogs.i18n import _, normalise_locale, use_locale
        from dialogs.text import has_unsafe, scrub

        note = ""
        if has_unsafe(text):
            text = scrub(text)
            with use_locale(normalise_locale(self.language)):
                note = _("(Invisible control characters were removed from what you typed.)") + "\n\n"
        return note + self._say(text)

    def _say(self, text: str) -> str:
        token = self.mock.issue_reply_token(self.user_id)
        action = self._action_for(text)
        if action and action.get("type") == "postback":
            event = line_events.postback_event(self.user_id, action["data"], reply_token=token)
        elif action and action.get("type") == "message":
            event = line_events.text_event(self.user_id, action["text"], reply_token=token)
        elif action and action.get("type") == "uri":
            return f"(opens {action['uri']})"
        else:
            event = line_events.text_event(self.user_id, text, reply_token=token)
        return self.answer(self.post(event))

    def _action_for(self, text: str):
        match = TAP.fullmatch(text.strip())
        if match and 1 <= int(match.group(1)) <= len(self.actions):
            return self.actions[int(match.group(1)) - 1]
        return None

    def answer(self, event_id: str) -> str:
        self.wait(event_id)
        self.actions = []
        return "\n\n".join(show(m, self.actions) for m in self.new_messages())

    def close(self):
        self.worker.stop()
        self.mock.stop()
        if self.server is not None:
            self.server.shutdown()


def development_key() -> str:
    """A signing key kept in instance/ for development, so printed links stay valid after a restart."""
    from bot.config import INSTANCE_DIR

    path = INSTANCE_DIR / "development-secret-key"
    if not path.exists():
        import secrets

        INSTANCE_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(app, port: int):
    """The console's own web server on loopback: the download links it prints open in a browser."""
    import threading

    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", port, app, threaded=True)
    threading.Thread(target=server.serve_forever, name="gh-console-web", daemon=True).start()
    return server


def run_console(user_id: str, language: str = "zh-Hant") -> int:
    """The interactive loop of `gonghao chat`."""
    quiet_logs()
    chat = ConsoleChat(user_id, language)
    print("共好小幫手 — console (type a message; #2 taps button 2; Ctrl-D to leave)\n")
    try:
        print(indent(chat.follow()))
        while True:
            try:
                text = input("\n你> " if language.startswith("zh") else "\nyou> ")
            except EOFError:
                print()
                return 0
            if text.strip():
                print(indent(chat.say(text)))
    except KeyboardInterrupt:
        print()
        return 0
    finally:
        chat.close()


def quiet_logs() -> None:
    """No log lines in the chat: below WARNING they are dropped here (GONGHAO_LOG_LEVEL=DEBUG keeps them all).

    Only the console: every other command logs as configured (`bot.logs.configure`).
    """
    root = logging.getLogger()
    if root.level > logging.DEBUG:
        root.setLevel(max(root.level, logging.WARNING))


def indent(text: str) -> str:
    return "\n".join("bot> " + line if i == 0 else "     " + line for i, line in enumerate(text.splitlines()))
