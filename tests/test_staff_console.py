"""The staff console: behind a login, CSRF on every form, limited login tries, viewers read only."""
from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from click.testing import CliRunner

from dialogs.i18n import catalog
from storage.letters import Case
from storage.models import AuditEntry
from storage.staff import StaffAccount
from tests.roster_support import add_owner, console, make_case, valid_numbers  # noqa: F401

TEMPLATES = Path(__file__).resolve().parent.parent / "bot" / "templates"
NEW_CASE = dict(edition="112", case_type="inclusion", theme="regional", proposer_name="好客雲端股份有限公司",
                plan_name="好客區域共好計畫", vendor_name="好客雲端股份有限公司", solution_name="好客POS",
                solution_content="雲端POS", sla="99.5%", period="112年5月1日至113年4月30日", other_content="",
                planned_count="35")


def staff_paths(app) -> list[tuple[str, str]]:
    """(method, path) of every /staff route, with 1 for each id."""
    found = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/staff") or rule.endpoint == "staff.login":
            continue
        path = re.sub(r"<(?:int:)?\w+>", "1", rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((method, path))
    return found


def test_without_a_login_every_staff_page_redirects_to_the_login_page(console):
    client = console.client()
    paths = staff_paths(console.app)
    assert len(paths) >= 20
    for method, path in paths:
        response = client.open(path, method=method)
        assert response.status_code == 302, (method, path)
        assert response.headers["Location"].startswith("/staff/login"), (method, path)
    assert client.get("/staff/cases?edition=112").headers["Location"] == "/staff/login?next=/staff/cases?edition%3D112"
    page = client.get("/staff/login").get_data(as_text=True)
    assert "登入計畫辦公室後台" in page and 'name="csrf_token"' in page


def test_a_form_posted_without_its_csrf_token_is_refused(console):
    admin = console.client("amy", "admin")
    response = admin.post("/staff/cases/new", data=NEW_CASE)
    assert response.status_code == 400 and "表單已過期或無效" in response.get_data(as_text=True)
    response = admin.post("/staff/cases/new", data=dict(NEW_CASE, csrf_token="forged"))
    assert response.status_code == 400
    with console.db.session() as s:
        assert s.query(Case).count() == 0
    # the login form is protected too
    assert console.client().post("/staff/login", data={"name": "amy", "password": "x"}).status_code == 400


def test_an_admin_creates_and_edits_a_case_and_revokes_a_code(console):
    admin = console.client("amy", "admin")
    token = console.token(admin, "/staff/cases/new")
    response = admin.post("/staff/cases/new", data=dict(NEW_CASE, csrf_token=token))
    assert response.status_code == 302
    page = admin.get(response.headers["Location"]).get_data(as_text=True)
    with console.db.session() as s:
        case = s.query(Case).one()
    assert case.plan_name == "好客區域共好計畫" and case.theme == "regional" and case.planned_count == 35
    assert case.proposer_code in page and case.owner_code in page
    assert f'src="/staff/cases/{case.id}/qr.png"' in page
    assert admin.get(f"/staff/cases/{case.id}/qr.png").data.startswith(b"\x89PNG")

    bad = admin.post(f"/staff/cases/{case.id}/edit", data=dict(NEW_CASE, plan_name="", planned_count="many",
                                                                 csrf_token=token))
    assert bad.status_code == 400
    text = bad.get_data(as_text=True)
    assert "此欄必填。" in text and "請輸入 0 到 100000 的整數。" in text
    admin.post(f"/staff/cases/{case.id}/edit", data=dict(NEW_CASE, planned_count="40", csrf_token=token))
    admin.post(f"/staff/cases/{case.id}/revoke", data={"which": "owner", "csrf_token": token})
    with console.db.session() as s:
        changed = s.get(Case, case.id)
    assert changed.planned_count == 40 and changed.owner_code != case.owner_code
    assert changed.proposer_code == case.proposer_code
    actions = [e.action for e in _audit(console)]
    assert {"case.created", "case.edited", "case.code_revoked", "case.codes_shown"} <= set(actions)
    assert all(e.actor == "staff:amy" for e in _audit(console) if e.action.startswith("case."))


def test_a_viewer_reads_and_exports_but_changes_nothing(console):
    case = make_case(console.services)
    add_owner(console.services, case.id, 1, number=next(valid_numbers(22_099_000)))
    viewer = console.client("ben", "viewer")
    token = console.token(viewer, "/staff/cases")
    page = viewer.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "第1號小店" in page and "停用企業邀請碼" not in page
    assert viewer.get("/staff/cases/new").status_code == 403
    assert viewer.post(f"/staff/cases/{case.id}/revoke", data={"which": "owner", "csrf_token": token}).status_code == 403
    response = viewer.post("/staff/exports", data={"kind": "roster", "format": "csv", "scope": "case",
                                                   "case": case.id, "csrf_token": token})
    assert response.status_code == 200 and response.data.startswith(b"\xef\xbb\xbf")
    assert "filename*=UTF-8''" in response.headers["Content-Disposition"]
    exported = [e for e in _audit(console) if e.action == "export.roster"]
    assert [(e.actor, e.subject) for e in exported] == [("staff:ben", f"case:{case.id}")]
    assert '"rows": 1' in exported[0].detail


def test_login_tries_are_limited_and_passwords_are_hashed(console):
    console.client("amy", "admin")
    client = console.client()
    for _ in range(5):
        response = client.post("/staff/login", data={"name": "amy", "password": "wrong password!",
                                                     "csrf_token": console.token(client)})
        assert response.status_code == 401 and "帳號或密碼不正確" in response.get_data(as_text=True)
    response = client.post("/staff/login", data={"name": "amy", "password": "a long enough password",
                                                 "csrf_token": console.token(client)})
    assert response.status_code == 429 and "登入失敗次數過多" in response.get_data(as_text=True)
    with console.db.session() as s:
        stored = s.query(StaffAccount).one().password_hash
    assert stored.startswith("$argon2id$") and "a long enough password" not in stored


def test_session_cookies_are_httponly_lax_and_secure_in_production(console, tmp_path):
    admin = console.client()
    response = admin.get("/staff/login")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # app.testing
    assert response.headers["X-Frame-Options"] == "DENY" and "frame-ancestors 'none'" in \
        response.headers["Content-Security-Policy"]

    from bot import create_app, init_database

    config = console.services.config.model_copy(update={"env": "production",
                                                        "database_url": f"sqlite:///{tmp_path / 'prod.sqlite3'}"})
    app = create_app(config)
    init_database(app)
    try:
        cookie = app.test_client().get("/staff/login").headers["Set-Cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    finally:
        app.extensions["gonghao"].close()


def test_staff_add_asks_for_the_password_and_every_page_speaks_zh_tw(console):
    from bot.cli import main

    env = {"DATABASE_URL": console.url, "REDIS_URL": ""}
    result = CliRunner().invoke(main, ["staff", "add", "carol", "--role", "viewer"], env=env,
                                input="a long enough password\na long enough password\n")
    assert result.exit_code == 0, result.output
    assert "帳號 carol（viewer）已可使用" in result.output and "a long enough password" not in result.output
    result = CliRunner().invoke(main, ["staff", "add", "dave", "--role", "admin"], env=env, input="short\nshort\n")
    assert result.exit_code != 0

    viewer = console.client("erin", "viewer")
    for path in ("/staff/cases", "/staff/editions", "/staff/imports", "/staff/exports", "/staff/reminders",
                 "/staff/audit"):
        response = viewer.get(path)
        assert response.status_code == 200, path
        assert 'lang="zh-Hant-TW"' in response.get_data(as_text=True)


def test_every_text_of_the_console_templates_has_a_zh_tw_translation():
    translations = catalog("zh_TW")
    found = {message if isinstance(message, str) else message[0]
             for _f, _l, message, _c, _ctx in extract_from_dir(
                 TEMPLATES, method_map=[("**.html", "jinja2.ext:babel_extract")], keywords={"_": None})}
    assert len(found) > 50
    assert sorted(m for m in found if m not in translations) == []


def _audit(console):
    with console.db.session() as s:
        return list(s.query(AuditEntry).order_by(AuditEntry.id))


def test_the_console_writes_dates_as_roc_dates(console):
    """Issue 10 item 6: ROC dates where a person reads them (exports keep ISO for machines)."""
    viewer = console.client("frank", "viewer")
    page = viewer.get("/staff/editions").get_data(as_text=True)
    assert "112年1月1日(日) – 112年11月30日(四)" in page
    viewer.get("/staff/cases")
    audit = viewer.get("/staff/audit").get_data(as_text=True)
    import re

    assert re.search(r"<td[^>]*>1\d\d年\d{1,2}月\d{1,2}日\([一二三四五六日]\) \d\d:\d\d</td>", audit)
