"""The filled 附件二 as a Word document, the staff commands for cases, and the invite codes."""
from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime, timezone

import pytest

from tests.conftest import IN_CI
from click.testing import CliRunner

from bot.cli import main as cli
from dialogs.engine import Intent
from dialogs.letter_doc import build_docx, docx_text, line_invite_link
from dialogs.roles import CODE_PATTERN
from storage import letters as store
from storage.db import Database
from storage.models import AuditEntry
from tests.letter_support import CASE, OWNER


def a_letter(**changes) -> tuple[store.Case, store.Letter]:
    case = store.Case(id=1, proposer_code="P-AAAAA-AAAAA", owner_code="J-AAAAA-AAAAA", **CASE)
    fields = dict(id=7, case_id=1, user_id="U1", status="submitted", version=1, company_name=OWNER["company"],
                  business_number=OWNER["number"], company_type=2, employees=4, county_code="10015",
                  town_code="10015010", products=OWNER["products"], other_programs=True,
                  other_program_names="112年地方型SBIR", contact_name=OWNER["contact"], mobile="+886912345678",
                  phone="+88638234567", phone_ext="12", email=OWNER["email"], representative=OWNER["representative"],
                  address="花蓮縣花蓮市中山路1號", submitted_at=datetime(2023, 3, 10, 2, 0, tzinfo=timezone.utc))
    fields.update(changes)
    return case, store.Letter(**fields)


def test_the_document_is_laid_out_like_the_form_and_holds_every_field():
    case, letter = a_letter()
    text = docx_text(build_docx(case, letter, tool_deadline="112/7/31",
                                consent_at=datetime(2023, 3, 9, 8, 30, tzinfo=timezone.utc), notice_version="112-1"))
    in_order = ["附件二", "112 年推動企業數位共好計畫-「好客數位共好計畫」", "企業合作意向書",
                "特與好客雲端股份有限公司簽訂本企業合作意向書", "一、 企業基本資料", "二、 同意接受推動企業數位共好計畫輔導，並最遲於 112/7/31",
                "三、 參與本計畫之企業", "四、 不得於當年度同時接受經濟部中小企業處其他計畫輔導", "五、 在本計畫不洩漏企業之商業資訊承諾下",
                "六、 本合作意向書一旦簽署後即立刻生效", "七、 個人資料蒐集與利用聲明", "臺北市大同區承德路二段 239 號 6 樓",
                "privacy@cisanet.org.tw", "中華民國 112 年 3 月 9 日 16:30", "聲明版本 112-1",
                "立約人用印並同意本企業合作意向書以上規定並會遵守之", "中華民國 112 年 3 月 10 日"]
    positions = [text.find(part) for part in in_order]
    assert -1 not in positions, [p for p, at in zip(in_order, positions) if at == -1]
    assert positions == sorted(positions)
    for field in ("好客小吃店", "22099131", "□依法設立之企業(公司登/商登)", "■依法辦理稅籍登記", "員工人數：4 人",
                  "王小明", "0912-345-678", "(03)823-4567 轉 12", OWNER["email"], "花蓮縣/花蓮市", OWNER["products"],
                  "■是：112年地方型SBIR", "林大同", "花蓮縣花蓮市中山路1號",
                  # the case's part (附件二 二)
                  "雲端服務解決方案-好客雲端股份有限公司", "好客POS雲端收銀", "112年5月1日至113年4月30日",
                  "雲端POS、線上點餐與會員管理", "SLA：服務可用率99.5%", "教育訓練3場、行銷活動1場",
                  # the signature block, with a blank place for the seals
                  "公司名稱：好客小吃店", "代表人：林大同", "電  話：(03)823-4567 轉 12", "地  址：花蓮縣花蓮市中山路1號",
                  "統一編號：22099131", "公司大小章"):
        assert field in text, field


def test_an_inclusion_case_states_its_integrated_service():
    """附件二 二: 「共融案需說明整合性服務項目與內容」, from the case, never asked of the owner."""
    from dialogs.i18n import use_locale
    from dialogs.letter import case_card

    case, letter = a_letter()
    case.case_type, case.theme = "inclusion", "regional"
    case.integrated_service = "商圈共通會員點數平台，串接各店POS與LINE官方帳號"
    text = docx_text(build_docx(case, letter))
    assert "⚫ 共融案需說明整合性服務項目與內容\n商圈共通會員點數平台，串接各店POS與LINE官方帳號" in text
    with use_locale("zh_TW"):
        assert ("整合性服務項目與內容", "商圈共通會員點數平台，串接各店POS與LINE官方帳號") in case_card(case).rows
    case.case_type = "popularization"
    assert "整合性服務" not in docx_text(build_docx(case, letter))


@pytest.mark.skipif(shutil.which("soffice") is None and shutil.which("libreoffice") is None and not IN_CI,
                    reason="LibreOffice is not installed (scripts/test installs it when run as root)")
def test_the_document_opens_in_libreoffice(tmp_path):
    case, letter = a_letter(other_programs=False, other_program_names=None)
    source = tmp_path / "letter.docx"
    source.write_bytes(build_docx(case, letter))
    office = shutil.which("soffice") or shutil.which("libreoffice")
    subprocess.run([office, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless", "--convert-to", "pdf",
                    "--outdir", str(tmp_path), str(source)], check=True, timeout=120, capture_output=True)
    pdf = tmp_path / "letter.pdf"
    assert pdf.exists() and pdf.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert "22099131" in text


# -- codes ----------------------------------------------------------------------------------------------
def test_codes_are_long_random_and_easy_to_type():
    codes = {store.new_code("J") for _ in range(200)}
    assert len(codes) == 200
    for code in codes:
        assert re.fullmatch(r"J-[2-9A-HJ-NP-Z]{5}-[2-9A-HJ-NP-Z]{5}", code)  # no 0/O/1/I
    assert len(store.CODE_ALPHABET) ** store.CODE_LENGTH >= 2 ** 40


@pytest.mark.parametrize("typed, stored", [
    ("J-7KQ4M-XR2PT", "J-7KQ4M-XR2PT"),
    ("j-7kq4m-xr2pt", "J-7KQ4M-XR2PT"),
    ("加入 J-7KQ4M-XR2PT", "J-7KQ4M-XR2PT"),
    ("ｊ－７ｋｑ４ｍ－ｘｒ２ｐｔ", None),  # full width is made half width by the engine before this (tidy)
    ("J 7KQ4M XR2PT", "J-7KQ4M-XR2PT"),
    ("p-7kq4mxr2pt", "P-7KQ4M-XR2PT"),
    ("J-7KQ4M-XR2P", None),  # too short
    ("J-7KQ4M-XR2PO", None),  # O is not in the alphabet
    ("X-7KQ4M-XR2PT", None),  # no such prefix
])
def test_typed_codes_are_read_loosely(typed, stored):
    assert store.canonical_code(typed) == stored


@pytest.mark.parametrize("text, is_code", [
    ("J-7KQ4M-XR2PT", True), ("加入 j-7kq4m-xr2pt", True), ("P 7KQ4M XR2PT", True), ("J-ABC", True),
    ("截止日是哪天", False), ("Python", False), ("J", False), ("我要加入", False),
])
def test_what_counts_as_a_code_attempt(text, is_code):
    assert Intent("code", [], None, pattern=CODE_PATTERN).matches(text) is is_code


def test_the_owners_link_opens_the_chat_with_the_code_typed_in():
    assert line_invite_link("@gonghao", "J-7KQ4M-XR2PT") == \
        "https://line.me/R/oaMessage/@gonghao/?%E5%8A%A0%E5%85%A5%20J-7KQ4M-XR2PT"


# -- the staff commands ------------------------------------------------------------------------------------
def test_staff_create_list_show_and_revoke_codes(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    monkeypatch.chdir(tmp_path)
    env = {"DATABASE_URL": url, "REDIS_URL": "", "LINE_BOT_BASIC_ID": "@gonghao", "GONGHAO_ENV": "development"}
    runner = CliRunner()

    result = runner.invoke(cli, ["case", "create", "--edition", "112", "--proposer", "好客雲端股份有限公司",
                                 "--plan", "好客數位共好計畫", "--type", "inclusion", "--theme", "regional",
                                 "--vendor", "好客雲端股份有限公司", "--solution", "好客POS", "--solution-content", "雲端POS",
                                 "--sla", "99.5%", "--period", "112/5/1-113/4/30", "--other", "教育訓練",
                                 "--planned", "35"], env=env)
    assert result.exit_code == 0, result.output
    proposer, owner = re.findall(r"[PJ]-[0-9A-Z]{5}-[0-9A-Z]{5}", result.output)
    assert proposer.startswith("P-") and owner.startswith("J-")

    result = runner.invoke(cli, ["case", "list"], env=env)
    assert result.exit_code == 0 and "好客數位共好計畫" in result.output and "inclusion" in result.output

    result = runner.invoke(cli, ["case", "codes", "1"], env=env)
    assert result.exit_code == 0, result.output
    assert proposer in result.output and owner in result.output
    assert "https://line.me/R/oaMessage/@gonghao/?%E5%8A%A0%E5%85%A5%20" + owner in result.output
    assert (tmp_path / "case-1-owners-qr.png").read_bytes().startswith(b"\x89PNG")

    result = runner.invoke(cli, ["case", "revoke", "1", "--which", "owner"], env=env)
    assert result.exit_code == 0, result.output
    new = re.findall(r"J-[0-9A-Z]{5}-[0-9A-Z]{5}", result.output)[-1]
    db = Database(url)
    with db.session() as s:
        assert store.find_case_by_code(s, owner) == (None, None)
        case, role = store.find_case_by_code(s, new.lower())
        assert (case.id, role) == (1, "owner")
        assert store.find_case_by_code(s, proposer)[1] == "proposer"
        audit = [row.action for row in s.query(AuditEntry).order_by(AuditEntry.id)]
    assert audit[:2] == ["case.created", "case.codes_shown"] and "case.code_revoked" in audit
    db.engine.dispose()

    bad = runner.invoke(cli, ["case", "create", "--edition", "112", "--proposer", "x", "--plan", "y", "--type",
                              "popularization", "--theme", "regional", "--vendor", "v", "--solution", "s"], env=env)
    assert bad.exit_code != 0 and "unknown theme" in bad.output
