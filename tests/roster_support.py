"""Shared pieces of the roster, export, import and staff-console tests: cases full of owners, fast.

The owners' letters are written straight into the tables (the letter dialog itself is tested in
test_letter_chat.py); the flags are set as the letter dialog sets them, then `refresh_flags`.
"""
from __future__ import annotations

from datetime import datetime, timezone
from itertools import count

import pytest

from dialogs.validators import business_number_checksum_ok
from storage import letters as store
from tests.letter_support import CASE


def valid_numbers(start: int = 10_000_000):
    """Valid 統一編號 (checksum), in order from ``start``; with start < 10,000,000 they have leading zeros."""
    for n in count(start):
        text = f"{n:08d}"
        if business_number_checksum_ok(text):
            yield text


def user_id(case_id: int, n: int) -> str:
    return f"U{case_id:08x}{n:024x}"


def add_owner(services, case_id: int, n: int, *, submitted: bool = True, number: str = "", employees: int = 5,
              name: str = "", products: str = "便當與小吃", county: str = "63000", town: str = "63000030",
              other_programs: bool = False, other_names: str = "", started: bool = False,
              screening: str = "") -> str:
    """An owner who joined the case; with ``submitted`` their letter is sent with these values."""
    uid = user_id(case_id, n)
    with services.db.session() as s:
        store.add_member(s, case_id, uid, store.OWNER)
        letter = store.ensure_draft(s, case_id, uid)
        if submitted or started:
            letter.company_name = name or f"第{n}號小店"
            letter.business_number = number or None
            letter.company_type = 1
            letter.employees = employees
            letter.county_code, letter.town_code = county, town
            letter.products = products
            letter.other_programs = other_programs
            letter.other_program_names = other_names or None
            letter.flag_over_nine = employees > 9
            letter.flag_conflict = other_programs
        letter.screening = screening or None
        if submitted:
            letter.contact_name, letter.mobile, letter.email = "王小明", "+886912345678", "owner@example.com.tw"
            letter.status, letter.version = store.SUBMITTED, 1
            letter.submitted_at = datetime.now(timezone.utc)
        s.flush()
        store.refresh_flags(s, [letter.business_number])
    return uid


def make_case(services, **changes) -> store.Case:
    with services.db.session() as s:
        return store.create_case(s, **{**CASE, **changes})


def link_proposer(services, case_id: int, uid: str) -> None:
    with services.db.session() as s:
        store.add_member(s, case_id, uid, store.PROPOSER)


def twelve_owner_case(services):
    """The issue's case: 12 joined owners, 5 submitted, one with 12 employees, one duplicate in another case
    (and of the 7 not submitted, one in progress).

    Returns (case, other case, the duplicated 統編).
    """
    numbers = valid_numbers(22_099_000)
    case = make_case(services, planned_count=60)
    other = make_case(services, plan_name="別人的計畫", proposer_name="別家雲端股份有限公司", planned_count=50)
    duplicated = next(numbers)
    for n in range(1, 13):
        if n <= 5:
            add_owner(services, case.id, n, number=duplicated if n == 2 else next(numbers),
                      employees=12 if n == 4 else 3)
        else:  # the 6th has begun filling in, the others have not
            add_owner(services, case.id, n, submitted=False, started=n == 6)
    add_owner(services, other.id, 1, number=duplicated)
    return case, other, duplicated


# -- the app without LINE traffic: the staff console, exports and imports, on both databases ------------
class Console:
    """The app on one database (no worker), with helpers to log in to /staff and post its forms."""

    def __init__(self, backend: str, app, services, url: str):
        self.backend, self.app, self.services, self.url = backend, app, services, url
        self.db = services.db

    def client(self, name: str = "", role: str = "admin", password: str = "a long enough password"):
        """A test client, logged in as a new account ``name`` when given."""
        from storage.staff import add_account

        client = self.app.test_client()
        if name:
            add_account(self.db, name, role, password)
            response = client.post("/staff/login", data={"name": name, "password": password,
                                                         "csrf_token": self.token(client)})
            assert response.status_code == 302, response.data
        return client

    @staticmethod
    def token(client, path: str = "/staff/login") -> str:
        import re

        page = client.get(path).get_data(as_text=True)
        return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def console(request, tmp_path):
    from bot import create_app, init_database
    from bot.config import Config
    from tests.conftest import drop_pg_schema, pg_schema_url, require_production_backends

    schema = None
    if request.param == "postgresql":
        require_production_backends()
        url, schema = pg_schema_url()
    else:
        url = f"sqlite:///{tmp_path / 'console.sqlite3'}"
    config = Config(database_url=url, secret_key="test-secret-key", channel_secret="s", channel_access_token="t",
                    line_api_base_url="http://127.0.0.1:9", bot_basic_id="@gonghao")
    app = create_app(config)
    init_database(app)
    app.testing = True
    services = app.extensions["gonghao"]
    yield Console(request.param, app, services, url)
    services.close()
    if schema:
        drop_pg_schema(schema)
