"""The staff console's case form (WTForms): a table of bad input, each refused with its sentence."""
from __future__ import annotations

import pytest

from storage.letters import Case
from tests.roster_support import console  # noqa: F401
from tests.test_staff_console import NEW_CASE


@pytest.mark.parametrize("change, field, said", [
    ({"proposer_name": ""}, "proposer_name", "此欄必填"),
    ({"plan_name": "  "}, "plan_name", "此欄必填"),
    ({"plan_name": "計" * 201}, "plan_name", "200"),
    ({"sla": "x" * 5001}, "sla", "5000"),
    ({"edition": "999"}, "edition", None),
    ({"case_type": "kiosk"}, "case_type", None),
    ({"theme": "no_such_theme"}, "theme", None),
    ({"planned_count": "many"}, "planned_count", "100000"),
    ({"planned_count": "100001"}, "planned_count", "100000"),
], ids=["empty", "blank", "long", "long-text", "edition", "case-type", "theme", "count-word", "count-big"])
def test_a_bad_case_form_is_refused_and_nothing_is_saved(console, change, field, said):  # noqa: F811
    admin = console.client("amy", "admin")
    token = console.token(admin, "/staff/cases/new")
    response = admin.post("/staff/cases/new", data=dict(NEW_CASE, csrf_token=token, **change))
    page = response.get_data(as_text=True)
    assert response.status_code == 400 and 'class="field-error"' in page
    if said:
        assert said in page
    with console.db.session() as s:
        assert s.query(Case).count() == 0


def test_the_form_cleans_what_it_keeps(console):  # noqa: F811
    """Spaces around a value are trimmed (control characters are refused: tests/security/test_input.py)."""
    admin = console.client("amy", "admin")
    token = console.token(admin, "/staff/cases/new")
    response = admin.post("/staff/cases/new", data=dict(NEW_CASE, csrf_token=token, case_type="popularization",
                                                        theme="regional", plan_name=" 好客計畫 ",
                                                        planned_count=""))
    assert response.status_code == 302
    with console.db.session() as s:
        case = s.query(Case).one()
    assert (case.plan_name, case.theme, case.planned_count) == ("好客計畫", None, 0)
