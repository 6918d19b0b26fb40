"""The owners' rich menu: what it holds, its image, and `gonghao richmenu deploy` against the mock LINE platform."""
from __future__ import annotations

import io
import json
import urllib.error
import urllib.request

import pytest
from click.testing import CliRunner
from PIL import Image

from bot import richmenu
from bot.richmenu import ENTRIES, NAME_PREFIX, build, deploy, line_apis
from tests.conftest import IN_CI, TOKEN, cleanup_backend, make_config

USER = "U3333333333333333333333333333333c"


@pytest.fixture(scope="module")
def menu():
    """The menu as `gonghao richmenu deploy` builds it (a CJK font is needed to draw it)."""
    try:
        return build()
    except richmenu.FontNotFound as exc:
        if IN_CI:
            pytest.fail(f"CI=true: {exc}")
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def smaller(menu):
    """A changed definition: the first four entries only."""
    return build(menu.entries[:4])


def apis(line):
    return line_apis(TOKEN, line.url)


def changes(line) -> list[str]:
    """The requests that changed something on the platform."""
    return [f"{c.method} {c.path}" for c in line.requests if c.method != "GET"]


# -- what the menu holds ---------------------------------------------------------------------------

def test_the_owners_menu_in_reading_order(menu):
    assert [(a["action"]["displayText"], a["action"]["data"]) for a in menu.body["areas"]] == [
        ("資格檢查", "eligibility"),
        ("常見問題", "faq"),
        ("我的進度", "my letter"),
        ("我的資料", "my data"),
        ("聯絡窗口", "contact"),
    ]
    assert menu.body["chatBarText"] == "主選單"
    assert all(a["action"]["type"] == "postback" for a in menu.body["areas"])


def test_every_entry_sends_a_value_of_the_conversation_menu():
    from dialogs.main import MENU

    assert {e.value for e in ENTRIES} <= {row[1] for row in MENU}  # (label, value sent, ...)


def test_the_rich_menu_and_the_quick_replies_send_the_same_values(menu):
    """The quick replies under every answer (dialogs.main.menu_choices) offer what the rich menu offers."""
    from dialogs.engine import Context
    from dialogs.main import menu_choices

    quick = [c.value for c in menu_choices(Context(USER))]
    on_rich_menu = [a["action"]["data"] for a in menu.body["areas"]]
    assert set(on_rich_menu) == {v for v in quick if v in {e.value for e in ENTRIES}}


@pytest.fixture()
def services(line):
    from bot.services import Services

    config, cleanup = make_config("embedded", line.url)
    services = Services(config)
    services.db.upgrade()
    yield services
    services.close()
    cleanup_backend(cleanup)


def test_every_button_is_understood_by_the_conversation(menu, services):
    from dialogs.i18n import _, use_locale
    from dialogs.main import build_conversation
    from handlers.common import context_for

    conversation = build_conversation()
    with use_locale("zh_TW"):
        not_understood = {_("Sorry, I did not understand that."), _("I am not sure I understood your question.")}
        for area in menu.body["areas"]:
            data = area["action"]["data"]
            _state, messages = conversation.handle(None, data, context_for(services, USER, "zh_TW"))
            said = " ".join(str(getattr(m, "text", "") or getattr(m, "title", "")) for m in messages)
            assert messages and said.strip(), data
            assert not any(phrase in said for phrase in not_understood), (data, said)


def test_an_entry_the_conversation_does_not_understand_is_left_off():
    unknown = richmenu.Entry("roster-of-nothing", "FAQ")
    kept = richmenu.understood_entries((*ENTRIES[:2], unknown))
    assert kept == list(ENTRIES[:2])


# -- the image and LINE's limits ------------------------------------------------------------------

@pytest.mark.parametrize("count", [1, 3, 4, 5, 6, 8])
def test_the_grid_tiles_the_image_without_gaps_or_overlaps(count):
    (width, height), cells = richmenu.grid(count)
    assert width == 2500 and height == (843 if count <= 3 else 1686)
    assert sum(w * h for _x, _y, w, h in cells) == width * height
    for x, y, w, h in cells:
        assert 0 <= x and 0 <= y and x + w <= width and y + h <= height


def test_the_image_is_within_lines_limits_and_matches_the_menu_size(menu):
    assert len(menu.image) <= 1_000_000
    with Image.open(io.BytesIO(menu.image)) as image:
        assert image.format == "PNG"
        assert image.size == menu.size == (2500, 1686)
    width, height = menu.size
    assert 800 <= width <= 2500 and height >= 250 and width / height >= 1.45
    areas = menu.body["areas"]
    assert 1 <= len(areas) <= 20
    for area in areas:
        b = area["bounds"]
        assert b["x"] + b["width"] <= width and b["y"] + b["height"] <= height
        assert len(area["action"]["label"]) <= 20 and len(area["action"]["data"]) <= 300
    assert len(menu.body["chatBarText"]) <= 14 and len(menu.name) <= 300


def test_the_name_carries_a_hash_of_definition_and_image(menu, smaller):
    assert menu.name.startswith(NAME_PREFIX) and smaller.name.startswith(NAME_PREFIX)
    assert menu.name != smaller.name
    assert build(menu.entries).name == menu.name  # the same definition draws the same image


def test_without_a_chinese_font_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setattr(richmenu, "_fc_list", lambda lang: [])
    monkeypatch.setattr(richmenu, "FALLBACK_FONTS", (("/nonexistent/font.ttc", 3),) * 2)
    monkeypatch.delenv(richmenu.FONT_ENV, raising=False)
    richmenu.find_cjk_font.cache_clear()
    richmenu._font.cache_clear()
    try:
        with pytest.raises(richmenu.FontNotFound, match="fonts-noto-cjk"):
            richmenu.render_image(ENTRIES)
        monkeypatch.setenv(richmenu.FONT_ENV, "/nonexistent/font.ttc#3")
        with pytest.raises(richmenu.FontNotFound, match="GONGHAO_CJK_FONT"):
            richmenu.find_cjk_font()
    finally:
        richmenu.find_cjk_font.cache_clear()
        richmenu._font.cache_clear()


def test_images_go_to_the_data_host_on_line_and_to_the_base_url_elsewhere():
    assert richmenu.data_host("https://api.line.me") == "https://api-data.line.me"
    assert richmenu.data_host("http://127.0.0.1:8081/") == "http://127.0.0.1:8081"


# -- deploying ------------------------------------------------------------------------------------

def test_deploy_creates_uploads_and_sets_the_default(line, menu):
    result = deploy(menu, *apis(line), timeout=5)
    assert result.changed
    assert changes(line) == ["POST /v2/bot/richmenu", f"POST /v2/bot/richmenu/{result.rich_menu_id}/content",
                             f"POST /v2/bot/user/all/richmenu/{result.rich_menu_id}"]
    upload = next(c for c in line.requests if c.path.endswith("/content"))
    assert upload.status == 200 and upload.headers["content-type"] == "image/png"
    assert line.default_rich_menu == result.rich_menu_id
    assert line.rich_menu_images[result.rich_menu_id] == menu.image
    stored = line.rich_menus[result.rich_menu_id]
    assert stored["name"] == menu.name and stored["areas"] == menu.body["areas"]


def test_deploying_twice_changes_nothing_the_second_time(line, menu):
    first = deploy(menu, *apis(line), timeout=5)
    line.requests.clear()
    second = deploy(menu, *apis(line), timeout=5)
    assert (second.changed, second.rich_menu_id) == (False, first.rich_menu_id)
    assert changes(line) == []
    assert "nothing to do" in second.steps[0]


def test_a_changed_definition_replaces_the_old_menu_and_deletes_it(line, menu, smaller):
    old = deploy(menu, *apis(line), timeout=5)
    new = deploy(smaller, *apis(line), timeout=5)
    assert new.rich_menu_id != old.rich_menu_id
    assert line.default_rich_menu == new.rich_menu_id
    assert list(line.rich_menus) == [new.rich_menu_id]
    made_default = changes(line).index(f"POST /v2/bot/user/all/richmenu/{new.rich_menu_id}")
    assert changes(line).index(f"DELETE /v2/bot/richmenu/{old.rich_menu_id}") > made_default


def test_our_menu_that_is_not_the_default_is_made_default_and_others_menus_are_kept(line, menu):
    ours = deploy(menu, *apis(line), timeout=5).rich_menu_id
    api, blob = apis(line)
    foreign = create_raw(line, {**menu.body, "name": "campaign 2024"}, menu.image)
    api.set_default_rich_menu(foreign, _request_timeout=5)
    line.requests.clear()
    result = deploy(menu, api, blob, timeout=5)
    assert changes(line) == [f"POST /v2/bot/user/all/richmenu/{ours}"]
    assert line.default_rich_menu == ours and foreign in line.rich_menus


def test_a_menu_left_without_its_image_is_replaced(line, menu):
    half_made = create_raw(line, menu.body)  # an earlier deploy stopped before the upload
    result = deploy(menu, *apis(line), timeout=5)
    assert result.rich_menu_id != half_made and line.default_rich_menu == result.rich_menu_id
    assert list(line.rich_menus) == [result.rich_menu_id]


def test_a_failed_upload_leaves_no_menu_behind(line, menu):
    line.fail_next(1, status=500, path_prefix="/v2/bot/richmenu/richmenu-")
    with pytest.raises(Exception):
        deploy(menu, *apis(line), timeout=5)
    assert line.rich_menus == {} and line.default_rich_menu is None
    assert deploy(menu, *apis(line), timeout=5).changed


def test_the_commands(line, menu, tmp_path):
    from bot.cli import main

    runner = CliRunner()
    out = tmp_path / "menu.png"
    result = runner.invoke(main, ["richmenu", "image", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == menu.image and "2500×1686 PNG" in result.output
    env = {"LINE_API_BASE_URL": line.url, "LINE_CHANNEL_ACCESS_TOKEN": TOKEN,
           "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}"}
    first = runner.invoke(main, ["richmenu", "deploy"], env=env)
    assert first.exit_code == 0, first.output
    assert "created " + menu.name in first.output and "made it the default" in first.output
    second = runner.invoke(main, ["richmenu", "deploy"], env=env)
    assert second.exit_code == 0 and "nothing to do" in second.output
    missing = runner.invoke(main, ["richmenu", "deploy"], env={**env, "LINE_CHANNEL_ACCESS_TOKEN": ""})
    assert missing.exit_code != 0 and "LINE_CHANNEL_ACCESS_TOKEN" in missing.output


# -- the mock refuses what LINE refuses -----------------------------------------------------------

def request(line, method, path, body=None, content_type="application/json"):
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    req = urllib.request.Request(line.url + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    if data is not None:
        req.add_header("Content-Type", content_type)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def create_raw(line, body, image=None) -> str:
    status, answer = request(line, "POST", "/v2/bot/richmenu", body)
    assert status == 200, answer
    if image is not None:
        assert request(line, "POST", f"/v2/bot/richmenu/{answer['richMenuId']}/content", image, "image/png")[0] == 200
    return answer["richMenuId"]


def png(width, height, kind="PNG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (255, 255, 255)).save(out, format=kind)
    return out.getvalue()


BODY = {"size": {"width": 2500, "height": 843}, "selected": False, "name": "test", "chatBarText": "選單",
        "areas": [{"bounds": {"x": 0, "y": 0, "width": 2500, "height": 843},
                   "action": {"type": "postback", "data": "faq", "displayText": "常見問題"}}]}
AREA = BODY["areas"][0]


@pytest.mark.parametrize("what, body, property_", [
    ("21 areas", {**BODY, "areas": [AREA] * 21}, "areas"),
    ("an area outside the image", {**BODY, "areas": [{**AREA, "bounds": {"x": 1, "y": 0, "width": 2500, "height": 843}}]},
     "areas[0].bounds"),
    ("a chat bar text of 15 characters", {**BODY, "chatBarText": "選" * 15}, "chatBarText"),
    ("a name of 301 characters", {**BODY, "name": "n" * 301}, "name"),
    ("no name", {k: v for k, v in BODY.items() if k != "name"}, "name"),
    ("a width over 2500", {**BODY, "size": {"width": 2600, "height": 843}}, "size.width"),
    ("too tall for its width", {**BODY, "size": {"width": 1000, "height": 843}}, "size"),
    ("an unknown action type", {**BODY, "areas": [{**AREA, "action": {"type": "teleport"}}]}, "areas[0].action.type"),
    ("postback data over 300", {**BODY, "areas": [{**AREA, "action": {**AREA["action"], "data": "x" * 301}}]},
     "areas[0].action.data"),
])
def test_the_mock_refuses_a_rich_menu_line_would_refuse(line, what, body, property_):
    status, answer = request(line, "POST", "/v2/bot/richmenu", body)
    assert status == 400, what
    assert property_ in [d["property"] for d in answer["details"]], answer
    assert line.rich_menus == {}


@pytest.mark.parametrize("what, image, content_type", [
    ("another size", png(2500, 1686), "image/png"),
    ("over 1 MB", png(2500, 843) + b"\0" * 1_000_000, "image/png"),
    ("not an image type", png(2500, 843), "application/octet-stream"),
    ("JPEG sent as PNG", png(2500, 843, "JPEG"), "image/png"),
    ("not an image", b"hello", "image/png"),
])
def test_the_mock_refuses_an_image_line_would_refuse(line, what, image, content_type):
    menu_id = create_raw(line, BODY)
    status, _answer = request(line, "POST", f"/v2/bot/richmenu/{menu_id}/content", image, content_type)
    assert status == 400, what
    assert menu_id not in line.rich_menu_images


def test_the_mock_keeps_rich_menus_as_line_does(line):
    menu_id = create_raw(line, BODY)
    assert request(line, "GET", "/v2/bot/user/all/richmenu") == (404, {"message": "no default richmenu"})
    assert request(line, "POST", f"/v2/bot/user/all/richmenu/{menu_id}")[0] == 400  # no image yet
    assert request(line, "POST", f"/v2/bot/richmenu/{menu_id}/content", png(2500, 843, "JPEG"), "image/jpeg")[0] == 200
    assert request(line, "POST", f"/v2/bot/richmenu/{menu_id}/content", png(2500, 843), "image/png")[0] == 400  # twice
    assert request(line, "POST", f"/v2/bot/user/all/richmenu/{menu_id}") == (200, {})
    assert request(line, "GET", "/v2/bot/user/all/richmenu") == (200, {"richMenuId": menu_id})
    status, listed = request(line, "GET", "/v2/bot/richmenu/list")
    assert status == 200 and [m["richMenuId"] for m in listed["richmenus"]] == [menu_id]
    assert request(line, "DELETE", f"/v2/bot/richmenu/{menu_id}") == (200, {})
    assert request(line, "GET", "/v2/bot/user/all/richmenu")[0] == 404  # deleting the default unsets it
    assert request(line, "DELETE", f"/v2/bot/richmenu/{menu_id}")[0] == 404
    assert request(line, "POST", "/v2/bot/user/all/richmenu/richmenu-unknown")[0] == 404
    assert line.stats[("/v2/bot/richmenu/{richMenuId}", 200)] == 1


# -- menus by role (issue 10 item 7) -------------------------------------------------------------------

def test_a_proposer_and_an_owner_each_see_their_own_rich_menu(bot, menu):
    """Deployed both; a proposer who joins with the proposer code gets the proposers' menu linked at LINE."""
    from bot.richmenu import RoleMenus, build_proposers, deploy_linked
    from tests.letter_support import make_case, quick

    quick(bot)
    owners = deploy(menu, *apis(bot.line), timeout=5)
    proposers = deploy_linked(build_proposers(), *apis(bot.line), timeout=5)
    again = deploy_linked(build_proposers(), *apis(bot.line), timeout=5)
    assert again.rich_menu_id == proposers.rich_menu_id and not again.changed  # idempotent
    bot.services.role_menus = RoleMenus(bot.services.config)  # the lead wires this in bot/services.py

    case = make_case(bot.services)
    proposer, owner = "U" + "d1" * 16, "U" + "d2" * 16
    bot.says(proposer, case.proposer_code)
    bot.says(owner, case.owner_code)
    assert bot.line.rich_menu_of(proposer)["richMenuId"] == proposers.rich_menu_id
    assert [a["action"]["data"] for a in bot.line.rich_menu_of(proposer)["areas"]] == [
        "roster", "calculator", "faq", "my data", "contact"]
    assert bot.line.rich_menu_of(owner)["richMenuId"] == owners.rich_menu_id  # the default
    assert "calculator" not in [a["action"]["data"] for a in bot.line.rich_menu_of(owner)["areas"]]

    # the quick replies follow the role too
    bot.says(proposer, "主選單")
    values = [item["action"]["data"] for item in bot.line.messages_to(proposer)[-1]["quickReply"]["items"]]
    assert "roster" in values and "eligibility" not in values
    bot.taps(owner, "agree")  # the personal-data notice: now an owner of the case
    bot.says(owner, "主選單")
    values = [item["action"]["data"] for item in bot.line.messages_to(owner)[-1]["quickReply"]["items"]]
    assert "roster" not in values and "calculator" not in values and "my letter" in values
