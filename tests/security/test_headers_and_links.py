"""Every response carries nosniff, a CSP with frame-ancestors 'none' (downloads and error pages too), HSTS in
production; a signed letter link serves exactly the version it names."""
from __future__ import annotations


import pytest

from dialogs.letter_doc import letter_token
from dialogs.roster import roster_token
from storage import letters as store
from tests.roster_support import add_owner, console, make_case, valid_numbers  # noqa: F401


def assert_protected(response):
    headers = response.headers
    assert headers["X-Content-Type-Options"] == "nosniff", response.request.path
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"], response.request.path
    assert headers["X-Frame-Options"] == "DENY"


def submitted_letter(console):
    case = make_case(console.services)
    owner = add_owner(console.services, case.id, 1, number=next(valid_numbers(22_099_000)))
    with console.db.session() as s:
        return case, store.letter_of(s, case.id, owner)


def test_every_response_carries_the_protective_headers(console):
    case, letter = submitted_letter(console)
    config = console.services.config
    client = console.app.test_client()
    admin = console.client("amy", "admin")
    with console.db.session() as s:
        member = s.scalars(store.select(store.CaseMember)).first()
    responses = [
        client.get(f"/d/letter/{letter_token(config, letter.id, letter.version)}"),  # the .docx itself
        client.get(f"/d/roster/{roster_token(config, case.id, member.id)}"),  # not a proposer: a 410 page
        client.get("/d/letter/forged-token"),  # 403 page
        client.get("/d/invite/forged.png"),
        client.get("/staff/login"),
        client.get("/no/such/page"),  # 404
        client.post("/callback", data=b"{}", headers={"Content-Type": "application/json"}),  # the webhook's 4xx
        admin.get(f"/staff/cases/{case.id}/qr.png"),
        admin.post("/staff/exports", data={"kind": "roster", "format": "csv", "scope": "case", "case": case.id,
                                           "csrf_token": console.token(admin, "/staff/exports")}),
    ]
    assert responses[0].mimetype.endswith("wordprocessingml.document")
    for response in responses:
        assert_protected(response)
        assert "Strict-Transport-Security" not in response.headers  # not in development


def test_production_sends_hsts(console, tmp_path):
    from bot import create_app, init_database

    config = console.services.config.model_copy(update={"env": "production",
                                                        "database_url": f"sqlite:///{tmp_path / 'p.sqlite3'}"})
    app = create_app(config)
    init_database(app)
    try:
        for path in ("/staff/login", "/d/letter/forged", "/nothing"):
            response = app.test_client().get(path)
            assert response.headers["Strict-Transport-Security"].startswith("max-age=31536000")
            assert_protected(response)
    finally:
        app.extensions["gonghao"].close()


def test_a_letter_link_serves_exactly_the_version_it_names(console):
    _case, letter = submitted_letter(console)
    config = console.services.config
    client = console.app.test_client()
    first = f"/d/letter/{letter_token(config, letter.id, 1)}"
    assert client.get(first).status_code == 200
    with console.db.session() as s:  # the owner corrects the letter: version 2
        row = s.get(store.Letter, letter.id)
        store.snapshot(s, row)
        row.version, row.products = 2, "外送便當"
    old = client.get(first)
    assert old.status_code == 410 and "這份意向書已有新版本" in old.get_data(as_text=True)
    assert "目前已是第 2 版" in old.get_data(as_text=True)
    assert client.get(f"/d/letter/{letter_token(config, letter.id, 3)}").status_code == 410  # a future version
    assert client.get(f"/d/letter/{letter_token(config, letter.id, 2)}").status_code == 200


@pytest.mark.parametrize("version", ["1", None, 0])
def test_a_link_naming_no_proper_version_is_not_served(console, version):
    _case, letter = submitted_letter(console)
    from itsdangerous import URLSafeTimedSerializer
    from dialogs import letter_doc

    signer = URLSafeTimedSerializer(letter_doc._secret(console.services.config), salt=letter_doc._LETTER_SALT)
    token = signer.dumps({"l": letter.id, "v": version} if version is not None else {"l": letter.id})
    assert console.app.test_client().get(f"/d/letter/{token}").status_code == 410
