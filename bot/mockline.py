"""The mock LINE platform: the only fake in the project (tests, the console, the benchmarks).

A local HTTP server (aiohttp on an event loop in a background thread, so a delayed answer
never holds up another request) that answers the Messaging API endpoints the bot uses the
way LINE does, and refuses what LINE would refuse:

- every request body is validated against LINE's own OpenAPI description
  (``bot/line_openapi/messaging-api.yml``), following its ``type`` discriminators into
  message, action, template and Flex objects;
- the documented limits the description does not encode (text length in UTF-16 units,
  labels, postback data, altText, Flex sizes, bubbles per carousel, ...) are checked after;
- reply tokens are single use; ``X-Line-Retry-Key`` is a UUID, only on push and
  multicast, and a key already accepted answers 409 without delivering again.

The channel's endpoints answer from attributes tests set: ``GET /v2/bot/info`` (``bot_info``),
the webhook URL (``GET``/``PUT /v2/bot/channel/webhook/endpoint``: ``webhook_endpoint``,
``webhook_active``) and ``POST /v2/bot/channel/webhook/test``, which really posts an empty,
signed event list (``channel_secret``) to the URL as LINE does and reports the answer. LINE wants
an https webhook URL; the mock takes http too for loopback addresses. With ``access_tokens`` set,
any other bearer token is refused with 401 as LINE refuses a wrong or revoked token.

The rich menu endpoints keep their menus, images and the default in the mock
(``rich_menus``, ``rich_menu_images``, ``default_rich_menu``); the image upload (LINE's
api-data host, here the same base URL) checks type, size and dimensions with Pillow.

Every request is recorded (``requests``), the accepted sends are ``delivered()``, and faults
can be injected: ``set_delay`` (every answer, or only those to one path, waits; a delayed
request is still accepted when its delay ends, even if the client gave up on it: LINE too
delivers what it received), ``fail_next`` and ``fail_for`` (a status for a number of requests
or for a while, with a ``Retry-After`` header if asked), and ``quota`` (push and multicast
answer LINE's monthly-limit 429 once it is used up); ``GET /__stats`` tells another
process the counts per route and status and when the last send was accepted. Run it on its own with
``python -m bot.mockline --port 8081 [--delay 0.1] [--quiet]``.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import hmac
import io
import itertools
import json
import re
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

import yaml
from aiohttp import web
import fastjsonschema
from jsonschema import Draft7Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from bot.heap import freeze_startup_heap

SPEC = Path(__file__).with_name("line_openapi") / "messaging-api.yml"

# Documented limits that messaging-api.yml does not encode (lengths are UTF-16 code units).
MAX_TEXT = 5000
MAX_ALT_TEXT = 1500
MAX_QUICK_REPLY_ITEMS = 13
MAX_LABEL = 20  # quick reply and template actions
MAX_FLEX_LABEL = 40  # actions inside Flex messages
MAX_ACTION_DATA = 300  # postback data, displayText, message-action text
MAX_URI = 1000
MAX_BUBBLE_BYTES = 30_000  # "30 KB", read strictly: compact UTF-8 JSON of the bubble
MAX_CAROUSEL_BYTES = 50_000
MAX_BUBBLES = 12
MAX_TEMPLATE_BUTTONS = 4
MAX_TEMPLATE_COLUMNS = 10
MAX_RICH_MENU_AREAS = 20
RICH_MENU_WIDTH = (800, 2500)  # the rich menu (and its image): width 800-2500, height 250 or more,
RICH_MENU_MIN_HEIGHT = 250  # width / height at least 1.45
RICH_MENU_MIN_RATIO = 1.45
MAX_RICH_MENU_IMAGE = 1_000_000  # "1 MB", read strictly
RICH_MENU_IMAGE_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}

REPLY, PUSH, MULTICAST = "/v2/bot/message/reply", "/v2/bot/message/push", "/v2/bot/message/multicast"
LOADING, QUOTA, CONSUMPTION = "/v2/bot/chat/loading/start", "/v2/bot/message/quota", "/v2/bot/message/quota/consumption"
PROFILE_PREFIX = "/v2/bot/profile/"
RICH_MENU, RICH_MENU_LIST, DEFAULT_RICH_MENU = "/v2/bot/richmenu", "/v2/bot/richmenu/list", "/v2/bot/user/all/richmenu"
BOT_INFO, WEBHOOK_ENDPOINT, WEBHOOK_TEST = "/v2/bot/info", "/v2/bot/channel/webhook/endpoint", "/v2/bot/channel/webhook/test"
SENDS = (REPLY, PUSH, MULTICAST)
BODY_SCHEMAS = {REPLY: "ReplyMessageRequest", PUSH: "PushMessageRequest", MULTICAST: "MulticastRequest",
                LOADING: "ShowLoadingAnimationRequest", RICH_MENU: "RichMenuRequest",
                WEBHOOK_ENDPOINT: "SetWebhookEndpointRequest", WEBHOOK_TEST: "TestWebhookEndpointRequest"}
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
QUOTABLE = {"text", "textV2", "sticker", "image", "video"}  # messages that get a quoteToken back
UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
URI_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")

AUTH_FAILED = "Authentication failed. Confirm that the access token in the authorization header is valid."
INVALID_REPLY_TOKEN = "Invalid reply token"
RETRY_KEY_ACCEPTED = "The retry key is already accepted"


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------------------
# LINE's OpenAPI schemas as JSON Schema, compiled once
# ---------------------------------------------------------------------------------------

def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[1]


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _oas30_to_json_schema(node):
    """``nullable: true`` becomes a "null" type; everything else JSON Schema already reads."""
    if isinstance(node, dict):
        node = {key: _oas30_to_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        return node
    if isinstance(node, list):
        return [_oas30_to_json_schema(item) for item in node]
    return node


COMMON_TYPES = ("text", "postback", "flex", "bubble", "box", "button", "separator", "message", "uri", "image",
                "carousel", "filler", "span", "icon", "buttons", "confirm", "sticker")


def _most_common_first(item) -> int:
    return COMMON_TYPES.index(item[0]) if item[0] in COMMON_TYPES else len(COMMON_TYPES)


def convert_schemas(schemas: dict) -> dict:
    """Turns OpenAPI 3.0 ``discriminator`` mappings into plain JSON Schema (draft 7).

    A discriminated schema ``X`` becomes a dispatcher: its ``type`` must be one of the
    mapped values, then a chain ``if type == v then $ref mapping[v] else if ...`` (the types
    we send most come first: every failed ``if`` costs the compiled validator an exception).
    Its own properties move to ``X__base``; the mapped schemas, which say
    ``allOf: [$ref X]``, point there instead.
    """
    parents: dict[str, set[str]] = {}
    for name, schema in schemas.items():
        for target in (schema.get("discriminator") or {}).get("mapping", {}).values():
            parents.setdefault(_ref_name(target), set()).add(name)
    out = {}
    for name, schema in schemas.items():
        schema = _oas30_to_json_schema(schema)
        if name in parents and "allOf" in schema:
            schema["allOf"] = [_ref(_ref_name(part["$ref"]) + "__base")
                               if "$ref" in part and _ref_name(part["$ref"]) in parents[name] else part
                               for part in schema["allOf"]]
        discriminator = schema.pop("discriminator", None)
        if discriminator and discriminator.get("mapping"):
            prop, mapping = discriminator["propertyName"], discriminator["mapping"]
            out[name + "__base"] = schema
            ordered = sorted(mapping.items(), key=_most_common_first)
            for i, (value, target) in enumerate(ordered):  # each "else" a $ref: no deep nesting in compiled code
                out[f"{name}__{i}"] = {"if": {"properties": {prop: {"const": value}}}, "then": _ref(_ref_name(target)),
                                       **({"else": _ref(f"{name}__{i + 1}")} if i + 1 < len(ordered) else {})}
            out[name] = {"type": "object", "required": [prop], "properties": {prop: {"enum": list(mapping)}},
                         "allOf": [_ref(f"{name}__0")]}
        else:
            out[name] = schema
    return out


def _is_uri(value) -> bool:
    return not isinstance(value, str) or bool(URI_RE.match(value))


_formats = FormatChecker(formats=())
_formats.checks("uri")(_is_uri)
# fastjsonschema refuses formats it does not know; the spec's numeric and binary ones are not checked
_FAST_FORMATS = {"uri": _is_uri, **{name: (lambda value: True) for name in
                                    ("int32", "int64", "double", "binary", "uuid", "date-time", "^[0-9]{8}$")}}


@lru_cache(maxsize=1)
def request_validators() -> dict[str, tuple[Callable, Any]]:
    """Per request path: (a fast compiled check, a jsonschema validator that explains failures)."""
    with open(SPEC, encoding="utf-8") as fh:
        spec = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    components = {"schemas": convert_schemas(spec["components"]["schemas"])}
    compiled = {}
    for path, name in BODY_SCHEMAS.items():
        schema = {"$schema": "http://json-schema.org/draft-07/schema#", **_ref(name), "components": components}
        compiled[path] = (fastjsonschema.compile(schema, formats=_FAST_FORMATS, use_default=False),
                          Draft7Validator(schema, format_checker=_formats))
    return compiled


def _property(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _details(error: ValidationError) -> list[dict]:
    """One LINE-style detail ({message, property}) per schema error."""
    where, schema, kind = _property(error.absolute_path), error.schema, error.validator
    if kind == "required":
        missing = [name for name in error.validator_value if isinstance(error.instance, dict) and name not in error.instance]
        return [{"message": "must be specified", "property": _property([*error.absolute_path, name])}
                for name in missing or error.validator_value[:1]]
    if kind in ("minItems", "maxItems"):
        message = f"Size must be between {schema.get('minItems', 0)} and {schema.get('maxItems', 'unlimited')}"
    elif kind in ("minLength", "maxLength"):
        message = f"Length must be between {schema.get('minLength', 0)} and {schema.get('maxLength', 'unlimited')}"
    elif kind in ("minimum", "maximum"):
        message = f"Value must be between {schema.get('minimum', '-')} and {schema.get('maximum', '-')}"
    elif kind in ("enum", "const"):
        message = "Invalid value"
    elif kind == "type":
        message = f"must be of type {error.validator_value}"
    elif kind == "format":
        message = f"Invalid {error.validator_value}"
    else:
        message = error.message
    return [{"message": message, "property": where}]


# ---------------------------------------------------------------------------------------
# The documented limits the schemas do not encode
# ---------------------------------------------------------------------------------------

def _too_long(value, limit) -> bool:
    return isinstance(value, str) and utf16_units(value) > limit


def _check_action(action, where: str, label_limit: int, problems: list) -> None:
    if not isinstance(action, dict):
        return
    if _too_long(action.get("label"), label_limit):
        problems.append((f"Length must be between 0 and {label_limit}", f"{where}.label"))
    for key in ("data", "displayText", "text", "fillInText"):
        if _too_long(action.get(key), MAX_ACTION_DATA):
            problems.append((f"Length must be between 0 and {MAX_ACTION_DATA}", f"{where}.{key}"))
    if _too_long(action.get("uri"), MAX_URI):
        problems.append((f"Length must be between 0 and {MAX_URI}", f"{where}.uri"))


def _walk_actions(node, where: str, label_limit: int, problems: list) -> None:
    """Checks every action (``action``, ``defaultAction``, ``actions[]``) anywhere below node."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _walk_actions(item, f"{where}[{i}]", label_limit, problems)
    elif isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}"
            if key in ("action", "defaultAction"):
                _check_action(value, path, label_limit, problems)
            elif key == "actions" and isinstance(value, list):
                for i, action in enumerate(value):
                    _check_action(action, f"{path}[{i}]", label_limit, problems)
            else:
                _walk_actions(value, path, label_limit, problems)


def _json_bytes(value) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def _check_flex(contents: dict, where: str, problems: list) -> None:
    if contents.get("type") == "bubble" and _json_bytes(contents) > MAX_BUBBLE_BYTES:
        problems.append((f"Size of the bubble must be at most {MAX_BUBBLE_BYTES} bytes", where))
    if contents.get("type") == "carousel":
        bubbles = contents.get("contents") or []
        if len(bubbles) > MAX_BUBBLES:
            problems.append((f"Size must be between 1 and {MAX_BUBBLES}", f"{where}.contents"))
        if _json_bytes(contents) > MAX_CAROUSEL_BYTES:
            problems.append((f"Size of the carousel must be at most {MAX_CAROUSEL_BYTES} bytes", where))
        for i, bubble in enumerate(bubbles):
            if isinstance(bubble, dict) and _json_bytes(bubble) > MAX_BUBBLE_BYTES:
                problems.append((f"Size of the bubble must be at most {MAX_BUBBLE_BYTES} bytes", f"{where}.contents[{i}]"))
    _walk_actions(contents, where, MAX_FLEX_LABEL, problems)


def _check_template(template: dict, where: str, problems: list) -> None:
    kind, actions, columns = template.get("type"), template.get("actions") or [], template.get("columns") or []
    if kind == "buttons" and not 1 <= len(actions) <= MAX_TEMPLATE_BUTTONS:
        problems.append((f"Size must be between 1 and {MAX_TEMPLATE_BUTTONS}", f"{where}.actions"))
    if kind == "confirm" and len(actions) != 2:
        problems.append(("Size must be between 2 and 2", f"{where}.actions"))
    if kind in ("carousel", "image_carousel") and not 1 <= len(columns) <= MAX_TEMPLATE_COLUMNS:
        problems.append((f"Size must be between 1 and {MAX_TEMPLATE_COLUMNS}", f"{where}.columns"))
    _walk_actions(template, where, MAX_LABEL, problems)


def check_limits(body: dict) -> list[tuple[str, str]]:
    """(message, property) for each documented limit a schema-valid body breaks."""
    problems: list[tuple[str, str]] = []
    if body.get("loadingSeconds") is not None and body["loadingSeconds"] % 5:
        problems.append(("must be a multiple of 5", "loadingSeconds"))
    for i, message in enumerate(body.get("messages") or []):
        where, kind = f"messages[{i}]", message.get("type")
        if kind in ("text", "textV2") and _too_long(message.get("text"), MAX_TEXT):
            problems.append((f"Length must be between 0 and {MAX_TEXT}", f"{where}.text"))
        if _too_long(message.get("altText"), MAX_ALT_TEXT):
            problems.append((f"Length must be between 0 and {MAX_ALT_TEXT}", f"{where}.altText"))
        items = (message.get("quickReply") or {}).get("items") or []
        if len(items) > MAX_QUICK_REPLY_ITEMS:
            problems.append((f"Size must be between 0 and {MAX_QUICK_REPLY_ITEMS}", f"{where}.quickReply.items"))
        for j, item in enumerate(items):
            _check_action(item.get("action"), f"{where}.quickReply.items[{j}].action", MAX_LABEL, problems)
        if kind == "flex":
            _check_flex(message.get("contents") or {}, f"{where}.contents", problems)
        elif kind == "template":
            _check_template(message.get("template") or {}, f"{where}.template", problems)
        elif kind == "imagemap":
            _walk_actions(message, where, MAX_LABEL, problems)
    return problems


def check_rich_menu(body: dict) -> list[tuple[str, str]]:
    """(message, property) for each rule of a rich menu that RichMenuRequest does not encode."""
    problems: list[tuple[str, str]] = [("must be specified", key) for key in ("size", "selected", "name", "chatBarText",
                                                                             "areas") if key not in body]
    size = body.get("size") or {}
    width, height = size.get("width"), size.get("height")
    if "size" in body:
        problems += [("must be specified", f"size.{key}") for key in ("width", "height") if key not in size]
    problems += _size_problems(width, height)
    areas = body.get("areas") or []
    if len(areas) > MAX_RICH_MENU_AREAS:
        problems.append((f"Size must be between 0 and {MAX_RICH_MENU_AREAS}", "areas"))
    for i, area in enumerate(areas):
        problems += _area_problems(area, f"areas[{i}]", width, height)
    return problems


def _size_problems(width, height) -> list[tuple[str, str]]:
    problems = []
    if isinstance(width, int) and not RICH_MENU_WIDTH[0] <= width <= RICH_MENU_WIDTH[1]:
        problems.append((f"Value must be between {RICH_MENU_WIDTH[0]} and {RICH_MENU_WIDTH[1]}", "size.width"))
    if isinstance(height, int) and height < RICH_MENU_MIN_HEIGHT:
        problems.append((f"Value must be at least {RICH_MENU_MIN_HEIGHT}", "size.height"))
    if isinstance(width, int) and isinstance(height, int) and height and width / height < RICH_MENU_MIN_RATIO:
        problems.append((f"The aspect ratio (width / height) must be at least {RICH_MENU_MIN_RATIO}", "size"))
    return problems


def _area_problems(area: dict, where: str, width, height) -> list[tuple[str, str]]:
    problems = [("must be specified", f"{where}.{key}") for key in ("bounds", "action") if key not in area]
    bounds = area.get("bounds")
    if isinstance(bounds, dict):
        problems += [("must be specified", f"{where}.bounds.{key}") for key in ("x", "y", "width", "height")
                     if key not in bounds]
        x, y = bounds.get("x", 0), bounds.get("y", 0)
        right, bottom = x + bounds.get("width", 1), y + bounds.get("height", 1)
        if isinstance(width, int) and isinstance(height, int) and (right > width or bottom > height):
            problems.append(("The area must be within the size of the rich menu", f"{where}.bounds"))
    _check_action(area.get("action"), f"{where}.action", MAX_LABEL, problems)
    return problems


def validate_body(path: str, body) -> list[dict]:
    """LINE-style details of everything wrong with a request body; empty when LINE would accept it."""
    fast, explain = request_validators()[path]
    try:
        fast(body)
    except fastjsonschema.JsonSchemaValueException:
        errors = sorted(explain.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
        details = [detail for error in errors for detail in _details(error)]
        return details or [{"message": "Invalid request body", "property": ""}]
    problems = check_rich_menu(body) if path == RICH_MENU else check_limits(body)
    return [{"message": message, "property": where} for message, where in problems]


def rich_menu_route(method: str, path: str) -> tuple[str, str, str] | None:
    """(operation, rich menu ID or "", route) when the request is one of the rich menu endpoints."""
    if path == RICH_MENU:
        return ("create", "", RICH_MENU) if method == "POST" else None
    if path == RICH_MENU_LIST:
        return ("list", "", RICH_MENU_LIST) if method == "GET" else None
    if path == DEFAULT_RICH_MENU:
        return ("get default", "", DEFAULT_RICH_MENU) if method == "GET" else None
    match = re.fullmatch(r"/v2/bot/richmenu/([^/]+)/content", path)
    if match:
        return ("upload", match[1], RICH_MENU + "/{richMenuId}/content") if method == "POST" else None
    match = re.fullmatch(DEFAULT_RICH_MENU + r"/([^/]+)", path)
    if match:
        return ("set default", match[1], DEFAULT_RICH_MENU + "/{richMenuId}") if method == "POST" else None
    match = re.fullmatch(r"/v2/bot/user/([^/]+)/richmenu/([^/]+)", path)
    if match and match[1] != "all":  # linkRichMenuIdToUser
        return ("link", f"{match[1]}|{match[2]}", "/v2/bot/user/{userId}/richmenu/{richMenuId}") \
            if method == "POST" else None
    match = re.fullmatch(r"/v2/bot/user/([^/]+)/richmenu", path)
    if match and match[1] != "all":  # getRichMenuIdOfUser, unlinkRichMenuIdFromUser
        return {"GET": ("get user", match[1], "/v2/bot/user/{userId}/richmenu"),
                "DELETE": ("unlink", match[1], "/v2/bot/user/{userId}/richmenu")}.get(method)
    match = re.fullmatch(RICH_MENU + r"/([^/]+)", path)
    if match:
        return ("delete", match[1], RICH_MENU + "/{richMenuId}") if method == "DELETE" else None
    return None


def image_problem(raw: bytes, content_type: str, size: dict) -> str:
    """Why LINE would refuse this rich menu image ("" when it would take it)."""
    from PIL import Image, UnidentifiedImageError

    kind = RICH_MENU_IMAGE_TYPES.get(content_type.split(";")[0].strip().lower())
    if kind is None:
        return "Content-Type must be image/png or image/jpeg"
    if len(raw) > MAX_RICH_MENU_IMAGE:
        return f"The image must be at most {MAX_RICH_MENU_IMAGE} bytes"
    try:
        with Image.open(io.BytesIO(raw)) as image:
            found, dimensions = image.format, image.size
    except (UnidentifiedImageError, OSError):
        return "The image could not be read"
    if found != kind:
        return f"The image is not {kind} as its Content-Type says"
    if dimensions != (size.get("width"), size.get("height")):
        return "The image size must match the size of the rich menu"
    return ""


# ---------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------

@dataclass
class Call:
    """One request as the mock saw it, and what it answered."""

    method: str
    path: str
    headers: dict  # names lower-cased
    json: Any  # None when the body was empty or not JSON
    status: int
    response: Any
    time: float
    request_id: str
    to: list = field(default_factory=list)  # the users a send reached (reply: the token's user, if known)

    @property
    def messages(self) -> list:
        return self.json.get("messages", []) if isinstance(self.json, dict) else []


def message_text(message: dict) -> str | None:
    """What a user reads first: a text's text, a Flex or template message's altText."""
    if message.get("type") in ("text", "textV2"):
        return message.get("text")
    return message.get("altText")


def _error(message: str, details: list | None = None) -> dict:
    return {"message": message, "details": details} if details else {"message": message}


class MockLine:
    """The LINE Messaging API on 127.0.0.1, for tests (``with MockLine() as line: ...``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, delay: float = 0.0, strict_tokens: bool = True,
                 verbose: bool = False, keep: int | None = None, freeze_every: int | None = None):
        self.host, self.port = host, port
        # What the mock keeps (calls, used tokens, retry keys) grows with every send, and Python's full
        # collection walked all of it: ~250 ms at 45,000 sends kept, every answer in flight waiting (LINE
        # does not pause for our bookkeeping). Every ``freeze_every`` requests, what is kept leaves the
        # collector's walks (`gc.freeze`; refcounting still frees what is trimmed).
        self._freeze_every = freeze_every
        self._recorded = 0
        self.verbose = verbose
        self._strict_default = strict_tokens
        self._keep = keep
        self._lock = threading.RLock()
        self._changed = threading.Condition()
        self._ids = itertools.count(600_000_000_000_000_000)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.profiles: dict[str, Any] = {}
        self.reset()
        self.delay = delay
        request_validators()  # compile the schemas now, not on the first request

    # -- lifecycle -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "MockLine":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()
        app = web.Application(client_max_size=4 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)

        def serve():
            asyncio.set_event_loop(self._loop)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
            self._loop.run_until_complete(runner.setup())
            self._loop.run_until_complete(web.SockSite(runner, sock, backlog=4096).start())
            ready.set()
            self._loop.run_forever()
            self._loop.run_until_complete(runner.cleanup())
            self._loop.close()

        self._thread = threading.Thread(target=serve, name=f"mockline-{self.port}", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the mock LINE platform did not start")
        return self

    def stop(self) -> None:
        if self._thread and self._loop:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> "MockLine":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what tests set ------------------------------------------------------------------
    def reset(self) -> None:
        """Forgets every request, token, retry key and fault; profiles and quota too.

        A request still being answered (a delayed one) belongs to what came before: it is answered 503
        and leaves no trace, so one test's slow request never shows up in the next test.
        """
        with self._lock:
            self._generation = getattr(self, "_generation", 0) + 1
            self.requests: list[Call] = []
            self.stats: Counter = Counter()  # (route, status) -> count; survives ``keep`` trimming
            self.last_send: float | None = None  # time.time() of the last accepted reply/push/multicast
            self.delay = 0.0
            self.path_delays: dict[str, float] = {}  # path prefix -> seconds (set_delay(..., path=...))
            self.strict_tokens = self._strict_default
            self.reply_token_ttl: float | None = None  # seconds; None: tokens do not expire
            self.quota: int | None = None  # monthly push/multicast limit; None: no limit
            self.usage = 0
            self.profiles.clear()
            self._issued: dict[str, tuple[str, float]] = {}
            self._used: set[str] = set()
            self._retry_keys: dict[str, tuple[str, dict]] = {}
            self._fail_count, self._fail_status, self._fail_prefix, self._fail_retry_after = 0, 500, "", None
            self._fail_until, self._fail_until_status, self._fail_until_prefix = 0.0, 500, ""
            self._fail_until_retry_after: int | None = None
            self.rich_menus: dict[str, dict] = {}  # richMenuId -> the rich menu as GET answers it
            self.rich_menu_images: dict[str, bytes] = {}
            self.default_rich_menu: str | None = None
            self.access_tokens: set[str] | None = None  # None: any bearer token is taken
            self.bot_info = {"userId": "U" + "7" * 32, "basicId": "@gonghao", "displayName": "共好小幫手",
                             "chatMode": "bot", "markAsReadMode": "auto"}
            self.webhook_endpoint: str | None = None
            self.webhook_active = True
            self.channel_secret: str | None = None  # signs the webhook test's request
            self.user_rich_menus: dict[str, str] = {}  # userId -> richMenuId linked to that user

    def issue_reply_token(self, user_id: str) -> str:
        """A reply token as a webhook event would carry it, valid once, for ``user_id``."""
        token = f"rt-{user_id}-{secrets.token_hex(8)}"
        with self._lock:
            self._issued[token] = (user_id, time.monotonic())
        return token

    def set_delay(self, seconds: float, path: str = "") -> None:
        """Every answer waits this long, or only those to paths starting with ``path`` (others are not held up).

        A delayed request is answered, and a send accepted, when its delay ends, whether or
        not the client is still waiting for the answer.
        """
        with self._lock:
            if path:
                self.path_delays[path] = seconds
            else:
                self.delay = seconds

    def delay_for(self, path: str) -> float:
        """How long a request to ``path`` waits now."""
        with self._lock:
            return max([self.delay] + [s for prefix, s in self.path_delays.items() if path.startswith(prefix)])

    def fail_next(self, n: int = 1, status: int = 500, path_prefix: str = "", retry_after: int | None = None) -> None:
        """The next n requests (to paths starting with path_prefix) answer ``status`` (and ``Retry-After``)."""
        with self._lock:
            self._fail_count, self._fail_status, self._fail_prefix = n, status, path_prefix
            self._fail_retry_after = retry_after

    def fail_for(self, seconds: float, status: int = 500, path_prefix: str = "", retry_after: int | None = None) -> None:
        """Every request (to paths starting with path_prefix) answers ``status`` for the next ``seconds``.

        ``retry_after``: the answers carry ``Retry-After: <seconds>``, as a rate limit would.
        """
        with self._lock:
            self._fail_until, self._fail_until_status = time.monotonic() + seconds, status
            self._fail_until_prefix, self._fail_until_retry_after = path_prefix, retry_after

    # -- what tests read -----------------------------------------------------------------
    def delivered(self) -> list[Call]:
        """The reply, push and multicast calls LINE accepted, in order."""
        with self._lock:
            return [c for c in self.requests if c.path in SENDS and c.status == 200]

    def messages_to(self, user_id: str) -> list[dict]:
        return [m for c in self.delivered() if user_id in c.to for m in c.messages]

    def texts_to(self, user_id: str) -> list[str]:
        """The text (or altText) of every message delivered to the user, in order."""
        return [t for t in map(message_text, self.messages_to(user_id)) if t is not None]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 5.0):
        """Waits until predicate() is true and returns its value; AssertionError after timeout."""
        deadline = time.monotonic() + timeout
        while True:
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"the mock LINE platform did not see it within {timeout} s")
            with self._changed:
                self._changed.wait(min(remaining, 0.05))

    # -- answering -----------------------------------------------------------------------
    def stats_report(self, keys: bool = False) -> dict:
        """What ``GET /__stats`` answers: counts per route and status, accepted sends, the last one's time.

        With ``keys``: per accepted send still kept, [path, reply token or retry key, users reached, the time
        (``time.time()``) the mock accepted it, after any ``delay``].
        """
        with self._lock:
            report = {"counts": {f"{route} {status}": n for (route, status), n in self.stats.items()},
                      "sends": {path.rsplit("/", 1)[1]: self.stats[(path, 200)] for path in SENDS},
                      "last_send": self.last_send, "now": time.time()}
            if keys:
                report["keys"] = [[c.path, c.json.get("replyToken") if c.path == REPLY else c.headers.get(
                    "x-line-retry-key", ""), c.to, c.time] for c in self.requests if c.path in SENDS and c.status == 200]
        return report

    async def _handle(self, request: web.Request) -> web.Response:
        if request.path == "/__stats" and request.method == "GET":  # for a benchmark in another process
            return web.json_response(self.stats_report(keys=request.query.get("keys") == "1"))
        generation = self._generation
        raw = await request.read()
        delay = self.delay_for(request.path)
        if delay > 0:
            await asyncio.sleep(delay)
        if generation != self._generation:  # reset while it waited: forget it
            return web.json_response({"message": "The mock LINE platform was reset"}, status=503)
        request_id = uuid.uuid4().hex
        headers = {k.lower(): v for k, v in request.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = ...  # not JSON
        if request.method == "POST" and request.path == WEBHOOK_TEST:
            status, payload, extra, to = await self._webhook_test(headers, body)
        else:
            status, payload, extra, to = self._answer(request.method, request.path, headers, body, request_id, raw)
        call = Call(request.method, request.path, headers, None if body is ... else body, status, payload,
                    time.time(), request_id, to)
        rich = rich_menu_route(call.method, call.path)
        route = rich[2] if rich else PROFILE_PREFIX + "{userId}" if call.path.startswith(PROFILE_PREFIX) else call.path
        with self._lock:
            self.requests.append(call)
            self.stats[(route, status)] += 1
            if status == 200 and call.path in SENDS:
                self.last_send = call.time
            if self._keep and len(self.requests) > self._keep * 1.1:  # trim now and then, not on every request
                del self.requests[: len(self.requests) - self._keep]
            self._recorded += 1
            if self._freeze_every and self._recorded % self._freeze_every == 0:
                gc.freeze()
        with self._changed:
            self._changed.notify_all()
        if self.verbose:
            print(f"{request.method} {request.path} {status}", file=sys.stderr, flush=True)
        return web.json_response(payload, status=status, headers={"x-line-request-id": request_id, **extra})

    def _answer(self, method: str, path: str, headers: dict, body, request_id: str,
                raw: bytes = b"") -> tuple[int, dict, dict, list]:
        """(status, body, extra headers, users reached) for one request."""
        rich = rich_menu_route(method, path)
        refused = self._refusal(method, path, headers, rich is not None)
        if refused:
            return refused
        if rich:
            with self._lock:
                return self._rich_menu(rich[0], rich[1], headers, body, raw)
        if method == "GET":
            return self._get(path)
        refused = self._bad_send(path, headers, body)
        if refused:
            return refused
        if path == WEBHOOK_ENDPOINT:
            return self._set_webhook(body["endpoint"])
        if path == LOADING:
            return 202, {}, {}, []
        with self._lock:
            return self._send(path, body, headers.get("x-line-retry-key"), request_id)

    def _refusal(self, method: str, path: str, headers: dict, rich: bool):
        """404 for an unknown route, 401 without a token, or the fault a test injected; None otherwise."""
        known = rich or (method == "POST" and path in (*SENDS, LOADING)) or (method == "GET" and (
            path in (QUOTA, CONSUMPTION, BOT_INFO, WEBHOOK_ENDPOINT) or (
                path.startswith(PROFILE_PREFIX) and len(path) > len(PROFILE_PREFIX)))) or (
            method == "PUT" and path == WEBHOOK_ENDPOINT)
        if not known:
            return 404, _error("Not found"), {}, []
        if not self._authorised(headers):
            return 401, _error(AUTH_FAILED), {}, []
        fault, extra = self._fault(path)
        if fault:
            return fault, _error("Too Many Requests" if fault == 429 else HTTPStatus(fault).phrase), extra, []
        return None

    @staticmethod
    def _bad_send(path: str, headers: dict, body):
        """400 with LINE's details for a send LINE would refuse; None when it would accept it."""
        if not headers.get("content-type", "").startswith("application/json"):
            return 400, _error("Content-Type must be application/json"), {}, []
        if body is ...:
            return 400, _error("The request body could not be parsed as JSON"), {}, []
        retry_key = headers.get("x-line-retry-key")
        if retry_key is not None and path not in (PUSH, MULTICAST):
            return 400, _error("The X-Line-Retry-Key header cannot be used with this API"), {}, []
        if retry_key is not None and not UUID_RE.match(retry_key):
            return 400, _error("The value of the X-Line-Retry-Key header is invalid", [
                {"message": "must be a UUID in hexadecimal format", "property": "X-Line-Retry-Key"}]), {}, []
        details = validate_body(path, body)
        if details:
            return 400, _error(f"The request body has {len(details)} error(s)", details), {}, []
        return None

    def _fault(self, path: str) -> tuple[int, dict]:
        """(status, extra headers) of an injected fault for this request; (0, {}) when there is none."""
        with self._lock:
            if self._fail_count > 0 and path.startswith(self._fail_prefix):
                self._fail_count -= 1
                status, retry_after = self._fail_status, self._fail_retry_after
            elif time.monotonic() < self._fail_until and path.startswith(self._fail_until_prefix):
                status, retry_after = self._fail_until_status, self._fail_until_retry_after
            else:
                return 0, {}
        return status, ({} if retry_after is None else {"Retry-After": str(retry_after)})

    def _authorised(self, headers: dict) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        return self.access_tokens is None or token.strip() in self.access_tokens

    @staticmethod
    def _webhook_url_problem(url: str) -> str:
        """Why LINE would not take this webhook URL ("" when it would)."""
        parts = urlsplit(url)
        if parts.scheme == "https" and parts.hostname:
            return ""
        if parts.scheme == "http" and parts.hostname and parts.netloc.split(":")[0] in LOOPBACK_HOSTS:
            return ""  # the mock's allowance for tests on loopback
        return "Invalid webhook endpoint URL"

    def _set_webhook(self, endpoint: str) -> tuple[int, dict, dict, list]:
        problem = self._webhook_url_problem(endpoint)
        if problem:
            return 400, _error(problem, [{"message": "must be a valid https URL", "property": "endpoint"}]), {}, []
        with self._lock:
            self.webhook_endpoint = endpoint
        return 200, {}, {}, []

    async def _webhook_test(self, headers: dict, body) -> tuple[int, dict, dict, list]:
        """Posts an empty, signed event list to the webhook URL and reports what it answered, as LINE does."""
        if not self._authorised(headers):
            return 401, _error(AUTH_FAILED), {}, []
        if body is ...:
            return 400, _error("The request body could not be parsed as JSON"), {}, []
        body = body if body is not None else {}
        details = validate_body(WEBHOOK_TEST, body)
        if details:
            return 400, _error(f"The request body has {len(details)} error(s)", details), {}, []
        endpoint = body.get("endpoint") or self.webhook_endpoint
        if not endpoint:
            return 400, _error("The webhook endpoint URL is not set"), {}, []
        if self._webhook_url_problem(endpoint):
            return 400, _error("Invalid webhook endpoint URL"), {}, []
        payload = json.dumps({"destination": self.bot_info["userId"], "events": []}).encode()
        signature = base64.b64encode(hmac.new((self.channel_secret or "").encode(), payload,
                                              hashlib.sha256).digest()).decode()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000Z"
        try:
            import aiohttp

            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
                async with session.post(endpoint, data=payload, headers={
                        "Content-Type": "application/json", "x-line-signature": signature,
                        "User-Agent": "LineBotWebhook/2.0"}) as answer:
                    code = answer.status
        except Exception as exc:  # LINE: no answer is status 0 and a reason
            return 200, {"success": False, "timestamp": stamp, "statusCode": 0, "reason": "COULD_NOT_CONNECT",
                         "detail": type(exc).__name__}, {}, []
        return 200, {"success": code == 200, "timestamp": stamp, "statusCode": code,
                     "reason": "OK" if code == 200 else "ERROR_STATUS_CODE", "detail": str(code)}, {}, []

    def _get(self, path: str) -> tuple[int, dict, dict, list]:
        if path == BOT_INFO:
            return 200, dict(self.bot_info), {}, []
        if path == WEBHOOK_ENDPOINT:
            if not self.webhook_endpoint:
                return 404, _error("The webhook endpoint URL is not set"), {}, []
            return 200, {"endpoint": self.webhook_endpoint, "active": self.webhook_active}, {}, []
        if path == QUOTA:
            return 200, ({"type": "none"} if self.quota is None else {"type": "limited", "value": self.quota}), {}, []
        if path == CONSUMPTION:
            return 200, {"totalUsage": self.usage}, {}, []
        user_id = path[len(PROFILE_PREFIX):]
        profile = {"userId": user_id, "displayName": "LINE user", "language": "zh-Hant"}
        custom = self.profiles.get(user_id)
        profile.update(custom if isinstance(custom, dict) else {"language": custom} if custom else {})
        return 200, profile, {}, []

    def _rich_menu(self, operation: str, menu_id: str, headers: dict, body, raw: bytes) -> tuple[int, dict, dict, list]:
        if operation == "create":
            if not headers.get("content-type", "").startswith("application/json"):
                return 400, _error("Content-Type must be application/json"), {}, []
            if body is ...:
                return 400, _error("The request body could not be parsed as JSON"), {}, []
            details = validate_body(RICH_MENU, body)
            if details:
                return 400, _error(f"The request body has {len(details)} error(s)", details), {}, []
            menu_id = "richmenu-" + secrets.token_hex(16)
            self.rich_menus[menu_id] = {"richMenuId": menu_id, **{key: body[key] for key in (
                "size", "selected", "name", "chatBarText", "areas")}}
            return 200, {"richMenuId": menu_id}, {}, []
        if operation == "list":
            return 200, {"richmenus": list(self.rich_menus.values())}, {}, []
        if operation == "get default":
            if self.default_rich_menu is None:
                return 404, _error("no default richmenu"), {}, []
            return 200, {"richMenuId": self.default_rich_menu}, {}, []
        if operation in ("link", "get user", "unlink"):
            return self._user_rich_menu(operation, menu_id)
        menu = self.rich_menus.get(menu_id)
        if menu is None:
            return 404, _error("richmenu not found"), {}, []
        if operation == "upload":
            if menu_id in self.rich_menu_images:
                return 400, _error("An image has already been uploaded to the richmenu"), {}, []
            problem = image_problem(raw, headers.get("content-type", ""), menu["size"])
            if problem:
                return 400, _error(problem), {}, []
            self.rich_menu_images[menu_id] = raw
            return 200, {}, {}, []
        if operation == "set default":
            if menu_id not in self.rich_menu_images:
                return 400, _error("must upload richmenu image before applying it to user"), {}, []
            self.default_rich_menu = menu_id
            return 200, {}, {}, []
        del self.rich_menus[menu_id]  # delete: its users fall back to the default, as on LINE
        self.rich_menu_images.pop(menu_id, None)
        for user in [u for u, linked in self.user_rich_menus.items() if linked == menu_id]:
            del self.user_rich_menus[user]
        if self.default_rich_menu == menu_id:
            self.default_rich_menu = None
        return 200, {}, {}, []

    def _user_rich_menu(self, operation: str, target: str) -> tuple[int, dict, dict, list]:
        """A rich menu linked to one user (LINE: per-user menus win over the default)."""
        if operation == "link":
            user_id, menu_id = target.split("|", 1)
            if menu_id not in self.rich_menus:
                return 404, _error("richmenu not found"), {}, []
            if menu_id not in self.rich_menu_images:
                return 400, _error("must upload richmenu image before applying it to user"), {}, []
            self.user_rich_menus[user_id] = menu_id
            return 200, {}, {}, []
        if operation == "get user":
            if target not in self.user_rich_menus:
                return 404, _error("the user has no richmenu"), {}, []
            return 200, {"richMenuId": self.user_rich_menus[target]}, {}, []
        self.user_rich_menus.pop(target, None)  # unlink
        return 200, {}, {}, []

    def rich_menu_of(self, user_id: str) -> dict | None:
        """The rich menu this user sees: the one linked to them, else the default (None: no menu)."""
        menu_id = self.user_rich_menus.get(user_id) or self.default_rich_menu
        return self.rich_menus.get(menu_id) if menu_id else None

    def _reply_user(self, token: str) -> tuple[bool, str | None]:
        """Whether LINE takes this reply token now, and the user it was issued for."""
        issued = self._issued.get(token)
        if token in self._used or (self.strict_tokens and issued is None):
            return False, None
        if issued and self.reply_token_ttl is not None and time.monotonic() - issued[1] > self.reply_token_ttl:
            return False, None
        if issued:
            return True, issued[0]
        if token.startswith("rt-") and "-" in token[3:]:
            return True, token[3:].split("-", 1)[0]
        return True, None

    def _send(self, path: str, body: dict, retry_key: str | None, request_id: str) -> tuple[int, dict, dict, list]:
        if retry_key and retry_key in self._retry_keys:
            accepted_id, accepted = self._retry_keys[retry_key]
            return 409, {**_error(RETRY_KEY_ACCEPTED), **accepted}, {"x-line-accepted-request-id": accepted_id}, []
        if path == REPLY:
            ok, user = self._reply_user(body["replyToken"])
            if not ok:
                return 400, _error(INVALID_REPLY_TOKEN), {}, []
            self._used.add(body["replyToken"])
            to = [user] if user else []
        else:
            to = [body["to"]] if path == PUSH else list(body["to"])
            if self.quota is not None and self.usage + len(to) > self.quota:
                return 429, _error("You have reached your monthly limit."), {}, []
            self.usage += len(to)
        payload = {} if path == MULTICAST else {"sentMessages": [
            {"id": str(next(self._ids)), **({"quoteToken": secrets.token_urlsafe(24)} if m["type"] in QUOTABLE else {})}
            for m in body["messages"]]}
        if retry_key:
            self._retry_keys[retry_key] = (request_id, payload)
        return 200, payload, {}, to


# ---------------------------------------------------------------------------------------
# Standalone: python -m bot.mockline --port 8081 [--delay 0.1] [--quiet]
# ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.mockline", description="The mock LINE platform.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds before every answer")
    parser.add_argument("--quiet", action="store_true", help="do not print a line per request")
    parser.add_argument("--strict-tokens", action="store_true",
                        help="refuse reply tokens it did not issue (the default here: any token, once)")
    parser.add_argument("--keep", type=int, default=100_000, help="requests kept in memory")
    parser.add_argument("--freeze-every", type=int, default=5_000,
                        help="requests between two freezes of what is kept (gc.freeze; 0: never)")
    args = parser.parse_args(argv)
    mock = MockLine(args.host, args.port, delay=args.delay, strict_tokens=args.strict_tokens,
                    verbose=not args.quiet, keep=args.keep,
                    freeze_every=args.freeze_every or None).start()
    freeze_startup_heap()  # the schemas and the server, built once
    print(mock.url, flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    mock.stop()
    totals = Counter()
    for (path, status), count in mock.stats.items():
        totals[status] += count
    print("answered: " + ", ".join(f"{status}: {count}" for status, count in sorted(totals.items())),
          file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
