"""The owners' rich menu on LINE: defined here as data, its image drawn by code, deployed idempotently.

The entries are values of ``dialogs.main.MENU`` (the quick replies under every answer send
the same values), each a postback whose ``data`` is that value and whose ``displayText`` is
the zh_TW label. An entry is put on the menu only when the conversation understands its value
(an intent matches it), so the menu never carries a button that leads nowhere.

Layout: up to 3 entries in one row (2500×843), 4 to 8 in two rows (2500×1686, the top row
taking the odd one). The image is a clean grid: each cell the zh_TW label, and the English one
smaller below, in a Traditional Chinese font found on the machine (``fc-list :lang=zh-tw``;
Debian's ``fonts-noto-cjk``), or the one ``GONGHAO_CJK_FONT`` names ("/path/font.ttc" or
"/path/font.ttc#3" for a face of a collection).

Deploying (``gonghao richmenu deploy``) is idempotent: the menu's ``name`` is
``gonghao-owners-`` and a hash of its definition and image. Already the default: nothing is
done. Created but not the default: it is made the default. Otherwise it is created, its image
uploaded and it is made the default; then every other menu of ours (same prefix) is deleted.
Menus that are not ours are never deleted.
"""
from __future__ import annotations

import functools
import hashlib
import io
import json
import logging
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from bot.config import Config
from dialogs.i18n import _, N_, use_locale

log = logging.getLogger("gonghao.richmenu")

NAME_PREFIX = "gonghao-owners-"
WIDTH, FULL_HEIGHT, COMPACT_HEIGHT = 2500, 1686, 843
MAX_ENTRIES = 8  # two rows of four at most: the labels stay legible
MAX_IMAGE_BYTES = 1_000_000  # LINE: "1 MB" (read strictly)
MAX_LABEL = 20  # action labels
MAX_CHAT_BAR_TEXT = 14
LINE_API = "https://api.line.me"
LINE_DATA_API = "https://api-data.line.me"  # where rich menu images go (setRichMenuImage)
FONT_ENV = "GONGHAO_CJK_FONT"
# Without fontconfig: where Debian's fonts-noto-cjk puts its files (face 3 is Noto Sans CJK TC).
FALLBACK_FONTS = (("/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc", 3),
                  ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 3))
FONT_HELP = (f"No Traditional Chinese font was found for the rich menu image. Install one "
             f"(apt-get install fonts-noto-cjk) or set {FONT_ENV}=/path/to/font.ttc (add #N for a face of a collection).")

# Colours of the image (a calm teal on white; no icons).
BACKGROUND = (255, 255, 255)
CARD = (238, 246, 245)
ACCENT = (15, 118, 110)
LABEL = (19, 78, 74)
SUBLABEL = (90, 110, 108)


@dataclass(frozen=True)
class Entry:
    """One button of the rich menu: the value it sends (a dialogs.main.MENU value) and its label msgid."""

    value: str
    label: str


# The owners' menu, in reading order (left to right, top to bottom): the default for everyone.
ENTRIES: tuple[Entry, ...] = (
    Entry("eligibility", N_("Eligibility check")),
    Entry("faq", N_("FAQ")),
    Entry("my letter", N_("My progress")),
    Entry("my data", N_("My data")),
    Entry("contact", N_("Contact")),
)
# The proposers' menu, linked to a proposer contact when they join a case with its proposer code.
PROPOSER_ENTRIES: tuple[Entry, ...] = (
    Entry("roster", N_("Roster status")),
    Entry("calculator", N_("Proposal calculator")),
    Entry("faq", N_("FAQ")),
    Entry("my data", N_("My data")),
    Entry("contact", N_("Contact")),
)
PROPOSER_PREFIX = "gonghao-proposers-"
CHAT_BAR_TEXT = N_("Main menu")


class FontNotFound(RuntimeError):
    """No font on this machine can write the labels."""


# ---------------------------------------------------------------------------------------
# The definition
# ---------------------------------------------------------------------------------------

def understood_entries(entries: Sequence[Entry] = ENTRIES, conversation=None) -> list[Entry]:
    """The entries whose value the conversation understands (an intent matches it)."""
    if conversation is None:
        from dialogs.main import build_conversation

        conversation = build_conversation()
    return [e for e in entries if any(intent.matches(e.value) for intent in conversation.intents)]


def grid(count: int) -> tuple[tuple[int, int], list[tuple[int, int, int, int]]]:
    """(size, [(x, y, width, height)] per entry): one row up to 3, else two rows, cells tiling the image."""
    if not 1 <= count <= MAX_ENTRIES:
        raise ValueError(f"a rich menu here has 1 to {MAX_ENTRIES} entries, not {count}")
    rows = [count] if count <= 3 else [count - count // 2, count // 2]
    height = COMPACT_HEIGHT if len(rows) == 1 else FULL_HEIGHT
    cells = []
    for r, in_row in enumerate(rows):
        top, bottom = round(r * height / len(rows)), round((r + 1) * height / len(rows))
        for c in range(in_row):
            left, right = round(c * WIDTH / in_row), round((c + 1) * WIDTH / in_row)
            cells.append((left, top, right - left, bottom - top))
    return (WIDTH, height), cells


def labels(entries: Sequence[Entry], locale: str) -> list[str]:
    with use_locale(locale):
        return [_(e.label) for e in entries]


def definition(entries: Sequence[Entry]) -> dict:
    """The rich menu as createRichMenu takes it (camelCase JSON), without its name."""
    (width, height), cells = grid(len(entries))
    zh = labels(entries, "zh_TW")
    with use_locale("zh_TW"):
        chat_bar = _(CHAT_BAR_TEXT)
    areas = [{"bounds": {"x": x, "y": y, "width": w, "height": h},
              "action": {"type": "postback", "label": label[:MAX_LABEL], "data": entry.value, "displayText": label}}
             for entry, label, (x, y, w, h) in zip(entries, zh, cells)]
    return {"size": {"width": width, "height": height}, "selected": True,
            "chatBarText": chat_bar[:MAX_CHAT_BAR_TEXT], "areas": areas}


# ---------------------------------------------------------------------------------------
# The image
# ---------------------------------------------------------------------------------------

def _font_spec(text: str) -> tuple[str, int]:
    path, _sep, index = text.partition("#")
    return path, int(index or 0)


def _fc_list(lang: str) -> list[tuple[str, int, str, str]]:
    if not shutil.which("fc-list"):
        return []
    try:
        out = subprocess.run(["fc-list", "-f", "%{file}|%{index}|%{family[0]}|%{style[0]}\n", f":lang={lang}"],
                             capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    found = []
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) == 4 and parts[1].isdigit():
            found.append((parts[0], int(parts[1]), parts[2], parts[3]))
    return found


def _preference(font: tuple[str, int, str, str], bold: bool) -> tuple:
    _path, _index, family, style = font
    family, style = family.lower(), style.lower()
    return ("tc" not in family.split() and "traditional" not in family,  # a Traditional Chinese face first
            "serif" in family and "sans" not in family,  # sans before serif
            "mono" in family,
            ("bold" in style) != bold,  # the weight asked for
            family, font[0], font[1])


@functools.lru_cache(maxsize=4)
def find_cjk_font(bold: bool = True) -> tuple[str, int]:
    """(file, face index) of a font that writes Traditional Chinese; FontNotFound when there is none."""
    configured = Config.from_env().cjk_font.strip()
    if configured:
        path, index = _font_spec(configured)
        if not Path(path).is_file():
            raise FontNotFound(f"{FONT_ENV}={configured}: no such file. " + FONT_HELP)
        return path, index
    for lang in ("zh-tw", "zh"):
        fonts = [f for f in _fc_list(lang) if Path(f[0]).is_file()]
        if fonts:
            best = min(fonts, key=lambda f: _preference(f, bold))
            return best[0], best[1]
    for path, index in (FALLBACK_FONTS if bold else FALLBACK_FONTS[1:]):  # no fontconfig
        if Path(path).is_file():
            return path, index
    raise FontNotFound(FONT_HELP)


@functools.lru_cache(maxsize=32)
def _font(size: int, bold: bool):
    from PIL import ImageFont

    path, index = find_cjk_font(bold)
    try:
        return ImageFont.truetype(path, size, index=index)
    except OSError as exc:
        raise FontNotFound(f"{path} (face {index}) could not be loaded ({exc}). " + FONT_HELP) from exc


def _fitted(draw, text: str, size: int, bold: bool, max_width: int):
    """The font at ``size``, smaller until text fits max_width."""
    while True:
        font = _font(size, bold)
        if draw.textlength(text, font=font) <= max_width or size <= 24:
            return font
        size -= 4


def render_image(entries: Sequence[Entry]) -> bytes:
    """The menu's PNG: one card per entry with its zh_TW label and, smaller, its English one."""
    from PIL import Image, ImageDraw

    (width, height), cells = grid(len(entries))
    zh, en = labels(entries, "zh_TW"), labels(entries, "en")
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    gap = 18
    for (x, y, w, h), big, small in zip(cells, zh, en):
        box = (x + gap, y + gap, x + w - gap - 1, y + h - gap - 1)
        draw.rounded_rectangle(box, radius=48, fill=CARD)
        draw.rounded_rectangle((x + w / 2 - 90, box[1] + 64, x + w / 2 + 90, box[1] + 80), radius=8, fill=ACCENT)
        inner = w - 2 * gap - 120
        big_font = _fitted(draw, big, 150, True, inner)
        small_font = _fitted(draw, small, 64, False, inner)
        middle_x, middle_y = x + w / 2, y + h / 2 + 20
        draw.text((middle_x, middle_y - 10), big, font=big_font, fill=LABEL, anchor="md")
        draw.text((middle_x, middle_y + 50), small, font=small_font, fill=SUBLABEL, anchor="ma")
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > MAX_IMAGE_BYTES:  # a flat design is far below; keep LINE's limit even so
        out = io.BytesIO()
        image.convert("P", palette=Image.Palette.ADAPTIVE, colors=64).save(out, format="PNG", optimize=True)
        data = out.getvalue()
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"the rich menu image is {len(data)} bytes, over LINE's {MAX_IMAGE_BYTES}")
    return data


# ---------------------------------------------------------------------------------------
# The menu: definition + image + name
# ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RichMenu:
    entries: tuple[Entry, ...]
    body: dict  # the createRichMenu request, name included
    image: bytes = field(repr=False)  # PNG

    @property
    def name(self) -> str:
        return self.body["name"]

    @property
    def size(self) -> tuple[int, int]:
        return self.body["size"]["width"], self.body["size"]["height"]


def fingerprint(body: dict, image: bytes) -> str:
    """A short hash of the definition and the image: the version carried in the menu's name."""
    digest = hashlib.sha256(json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode())
    digest.update(image)
    return digest.hexdigest()[:16]


def build(entries: Optional[Sequence[Entry]] = None, prefix: str = NAME_PREFIX) -> RichMenu:
    """The owners' rich menu: the understood ENTRIES (or ``entries``), its definition, image and name."""
    entries = tuple(understood_entries() if entries is None else entries)
    body = definition(entries)
    image = render_image(entries)
    body = {**body, "name": prefix + fingerprint(body, image)}
    return RichMenu(entries, body, image)


def build_proposers() -> RichMenu:
    """The proposers' rich menu (名單狀態, 提案試算 …), linked per user."""
    return build(understood_entries(PROPOSER_ENTRIES), PROPOSER_PREFIX)


# ---------------------------------------------------------------------------------------
# Deploying through the Messaging API
# ---------------------------------------------------------------------------------------

def data_host(base_url: str) -> str:
    """Where setRichMenuImage goes: api-data.line.me for LINE itself, else the configured base URL (the mock)."""
    base = base_url.rstrip("/")
    return LINE_DATA_API if base == LINE_API else base


def line_apis(access_token: str, base_url: str):
    """(MessagingApi, MessagingApiBlob) for the base URL; no automatic retries (deploy again instead)."""
    from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, MessagingApiBlob

    def client(host: str):
        configuration = Configuration(host=host, access_token=access_token or "unset")
        configuration.retries = 0
        return ApiClient(configuration)

    return MessagingApi(client(base_url.rstrip("/"))), MessagingApiBlob(client(data_host(base_url)))


@dataclass
class Deployment:
    rich_menu_id: str
    name: str
    steps: list[str] = field(default_factory=list)  # what was done, for the operator
    changed: bool = False


def default_rich_menu_id(api, timeout: float) -> Optional[str]:
    from linebot.v3.messaging.exceptions import ApiException

    try:
        return api.get_default_rich_menu_id(_request_timeout=timeout).rich_menu_id
    except ApiException as exc:
        if exc.status == 404:  # no default rich menu
            return None
        raise


def deploy(menu: RichMenu, api, blob, timeout: float = 10.0) -> Deployment:
    """Makes ``menu`` the default rich menu, creating it if needed, then deletes our older menus."""
    from linebot.v3.messaging import RichMenuRequest
    from linebot.v3.messaging.exceptions import ApiException

    listed = api.get_rich_menu_list(_request_timeout=timeout).richmenus or []
    ours = [m for m in listed if (m.name or "").startswith(NAME_PREFIX)]
    default = default_rich_menu_id(api, timeout)
    result = Deployment(rich_menu_id="", name=menu.name)
    same = [m.rich_menu_id for m in ours if m.name == menu.name]
    if default in same:
        result.rich_menu_id = default
        result.steps.append(f"{menu.name} is already the default rich menu ({default}); nothing to do")
    else:
        for candidate in same:
            try:
                api.set_default_rich_menu(candidate, _request_timeout=timeout)
            except ApiException as exc:
                if exc.status != 400:
                    raise
                # created by a deploy that stopped before its image was uploaded: replaced below
                result.steps.append(f"{candidate} has no image; it will be replaced")
                continue
            result.rich_menu_id, result.changed = candidate, True
            result.steps.append(f"made {menu.name} ({candidate}) the default rich menu")
            break
    if not result.rich_menu_id:
        created = api.create_rich_menu(RichMenuRequest.from_dict(menu.body), _request_timeout=timeout).rich_menu_id
        result.changed = True
        result.steps.append(f"created {menu.name} ({created})")
        try:
            blob.set_rich_menu_image(created, menu.image, _headers={"Content-Type": "image/png"},
                                     _request_timeout=timeout)
            result.steps.append(f"uploaded its image ({len(menu.image)} bytes)")
            api.set_default_rich_menu(created, _request_timeout=timeout)
        except Exception:
            try:
                api.delete_rich_menu(created, _request_timeout=timeout)
            except Exception as exc:  # the next deploy deletes it
                log.warning("could not delete the half-made rich menu %s (%s)", created, type(exc).__name__)
            raise
        result.rich_menu_id = created
        result.steps.append("made it the default rich menu")
    if default and default != result.rich_menu_id and default not in {m.rich_menu_id for m in ours}:
        result.steps.append(f"the previous default {default} is not ours; it was left in place, no longer default")
    for old in ours:
        if old.rich_menu_id != result.rich_menu_id:
            api.delete_rich_menu(old.rich_menu_id, _request_timeout=timeout)
            result.changed = True
            result.steps.append(f"deleted the older menu {old.name} ({old.rich_menu_id})")
    return result


# ---------------------------------------------------------------------------------------
# Menus by role: the proposers' menu is linked to each proposer contact
# ---------------------------------------------------------------------------------------

def deploy_linked(menu: RichMenu, api, blob, timeout: float = 10.0) -> Deployment:
    """Creates a per-user menu (not the default) with its image when it is new; older ones of its prefix go.

    Users linked to a deleted older menu see the default until they are linked again (`link_role`).
    """
    from linebot.v3.messaging import RichMenuRequest

    prefix = menu.name[:menu.name.rindex("-") + 1]
    listed = api.get_rich_menu_list(_request_timeout=timeout).richmenus or []
    ours = [m for m in listed if (m.name or "").startswith(prefix)]
    result = Deployment(rich_menu_id="", name=menu.name)
    same = [m.rich_menu_id for m in ours if m.name == menu.name]
    if same:
        result.rich_menu_id = same[0]
        result.steps.append(f"{menu.name} is already there ({same[0]}); nothing to do")
    else:
        created = api.create_rich_menu(RichMenuRequest.from_dict(menu.body), _request_timeout=timeout).rich_menu_id
        blob.set_rich_menu_image(created, menu.image, _headers={"Content-Type": "image/png"}, _request_timeout=timeout)
        result.rich_menu_id, result.changed = created, True
        result.steps.append(f"created {menu.name} ({created}) with its image")
    for old in ours:
        if old.rich_menu_id != result.rich_menu_id:
            api.delete_rich_menu(old.rich_menu_id, _request_timeout=timeout)
            result.steps.append(f"deleted the older menu {old.name} ({old.rich_menu_id})")
    return result


class RoleMenus:
    """Links the menu of a person's role: proposers get the proposers' menu, everyone else the default."""

    def __init__(self, config):
        self.config = config
        self._proposer_menu: Optional[str] = None

    def _proposers_menu_id(self, api) -> Optional[str]:
        if self._proposer_menu is None:
            listed = api.get_rich_menu_list(_request_timeout=self.config.line_timeout).richmenus or []
            ours = [m.rich_menu_id for m in listed if (m.name or "").startswith(PROPOSER_PREFIX)]
            self._proposer_menu = ours[-1] if ours else None
        return self._proposer_menu

    def link(self, user_id: str, role: str) -> bool:
        """Links (proposer) or unlinks (owner) ``user_id``'s menu; False when LINE could not be told (logged)."""
        try:
            api, _blob = line_apis(self.config.channel_access_token, self.config.line_api_base_url)
            if role == "proposer":
                menu_id = self._proposers_menu_id(api)
                if menu_id is None:  # `gonghao richmenu deploy` has not made it yet: the default stays
                    return False
                api.link_rich_menu_id_to_user(user_id, menu_id, _request_timeout=self.config.line_timeout)
            else:
                api.unlink_rich_menu_id_from_user(user_id, _request_timeout=self.config.line_timeout)
            return True
        except Exception as exc:  # a menu is a convenience: the answer goes out all the same
            self._proposer_menu = None
            log.warning("could not link the %s rich menu (%s)", role, type(exc).__name__)
            return False
