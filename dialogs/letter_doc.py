"""The filled 附件二 (企業合作意向書) as a Word document, and the signed links that serve it.

`build_docx` lays the letter out like the form of the guidelines (附件二): the title with the
plan's name, section 一 (the enterprise's data, plus the roster facts of 附件一 柒.1), section 二
(the case's solution, from the case), the undertakings 三–六, the personal-data statement 七,
and the signature block with a blank box for the company seals (公司大小章).

Links are signed with the configured secret (itsdangerous) and expire: a leaked link stops
working after `LINK_MAX_AGE`, and a changed one is refused. No Flask here: `bot.downloads`
serves what this module builds.
"""
from __future__ import annotations

import io
import json
from datetime import datetime, timezone
from typing import Optional, Protocol
from urllib.parse import quote

from itsdangerous import URLSafeTimedSerializer

from common import townships
from dialogs.dates import TAIPEI, roc_year
from dialogs.validators import display_phone

LINK_MAX_AGE = 7 * 24 * 3600  # a download link works for 7 days
INVITE_MAX_AGE = 90 * 24 * 3600
DEFAULT_PUBLIC_URL = "http://127.0.0.1:8000"
_LETTER_SALT = "gonghao-letter-docx"
_INVITE_SALT = "gonghao-invite-qr"

# The form's texts (附件二 of the 112 guidelines; 臺 as in official names).
PREAMBLE = ("本計畫為協助我國小微型企業數位賦能，從轉念、轉骨到轉型，推動小微型企業數位化或數位優化。"
            "導入雲端服務解決方案及數位應用工具，具備數位應用及營運之能力，提升企業經營管理效率及優化服務流程體驗…等。"
            "在此原則下，特與{proposer}簽訂本企業合作意向書，以作為雙方進一步合作計畫之基礎。")
UNDERTAKINGS = {
    "三": ("參與本計畫之企業，充分了解不得重複參與下列計畫輔導或補助：\n"
          "(一)110 至 112 年「雲世代產業數位轉型計畫」等相關計畫\n"
          "(二)經濟部「推動中小型店家數位轉型補助方案」"),
    "四": "不得於當年度同時接受經濟部中小企業處其他計畫輔導",
    "五": "在本計畫不洩漏企業之商業資訊承諾下，輔導之企業須配合進行不定期雲服務使用查驗抽測、電訪關懷，並撰寫相關問卷調查。",
    "六": "本合作意向書一旦簽署後即立刻生效，並表示雙方對於本合作意向書內容的同意。",
}
STATEMENT = (
    "中華民國資訊軟體協會(以下簡稱本會)為執行推動企業數位共好計畫，協助我國小微型企業數位賦能，導入新興科技應用，"
    "促進企業經營管理效率及優化服務流程體驗之目的，所蒐集、處理或利用之個人資料依「中華民國個人資料保護法」辦理。",
    "(一) 蒐集之個人資料項目：企業負責人姓名、性別、E-mail，及企業聯絡人姓名、職稱、行動電話、E-mail。",
    "(二) 個人資料使用目的和範圍：提供經濟部中小企業處瞭解本計畫之執行狀況、作為計畫執行結果的統計分析，"
    "以及作為日後不定期的推廣之用，包括通知或邀請提供上述個人資料之中小企業從業人員相關訊息與活動。",
    "(三) 個人資料使用地區：中華民國境內。",
    "(四) 上述個人資料為執行計畫所必需，如不同意提供上述第一項之個人資料，或提供不完全者，本會得拒絕其參加本計畫的輔導。",
    "(五) 本會得因政府之規定或蒐集之目的消失時，依照個人資料保護法第 11 條進行個資的刪除及停止處理利用，將不另行通知提供個資之當事人。",
    "(六) 依個人資料保護法第 3 條之規定，個人資料當事人可行使修正、停止處理及刪除之權利，行使方式如下：",
    "⚫ 以書面查詢：地址為臺北市大同區承德路二段 239 號 6 樓。",
    "⚫ 以電子郵件查詢：privacy@cisanet.org.tw。",
    "(七) 個人同意中華民國資訊軟體協會根據以上「推動企業數位共好計畫」個人資料蒐集與利用聲明」蒐集與利用本人個人資料。",
)


# -- links ------------------------------------------------------------------------------------
class LinkSecrets(Protocol):
    """What signs the links and where they point: bot.config.Config, or the dialogs' Context.links."""

    secret_key: str
    channel_secret: str
    public_url: str


def _secret(config: LinkSecrets) -> str:
    """The signing key: GONGHAO_SECRET_KEY (required in production), else a development fallback."""
    return config.secret_key or config.channel_secret or "gonghao-development-only"


def public_base(config: LinkSecrets) -> str:
    return (config.public_url or DEFAULT_PUBLIC_URL).rstrip("/")


def letter_token(config: LinkSecrets, letter_id: int, version: int) -> str:
    return URLSafeTimedSerializer(_secret(config), salt=_LETTER_SALT).dumps({"l": letter_id, "v": version})


def read_letter_token(config: LinkSecrets, token: str, max_age: int = LINK_MAX_AGE) -> dict:
    """The letter a token names; raises itsdangerous' SignatureExpired or BadSignature."""
    return URLSafeTimedSerializer(_secret(config), salt=_LETTER_SALT).loads(token, max_age=max_age)


def letter_url(config: LinkSecrets, letter_id: int, version: int) -> str:
    return f"{public_base(config)}/d/letter/{letter_token(config, letter_id, version)}"


def invite_token(config: LinkSecrets, case_id: int, code: str) -> str:
    return URLSafeTimedSerializer(_secret(config), salt=_INVITE_SALT).dumps({"c": case_id, "k": code})


def read_invite_token(config: LinkSecrets, token: str, max_age: int = INVITE_MAX_AGE) -> dict:
    return URLSafeTimedSerializer(_secret(config), salt=_INVITE_SALT).loads(token, max_age=max_age)


def invite_qr_url(config: LinkSecrets, case_id: int, code: str) -> str:
    return f"{public_base(config)}/d/invite/{invite_token(config, case_id, code)}.png"


def join_text(code: str) -> str:
    """What the owners' link types into the chat."""
    return f"加入 {code}"


def line_invite_link(basic_id: str, code: str) -> str:
    """A LINE link that opens the chat with the account and types the join text (LINE URL scheme)."""
    return f"https://line.me/R/oaMessage/{basic_id}/?{quote(join_text(code), safe='')}"


def qr_png(url: str) -> bytes:
    import qrcode

    image = qrcode.make(url, box_size=8, border=2)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


# -- how the letter's values are written on the form ----------------------------------------------
def national_phone(e164: Optional[str], extension: Optional[str] = "") -> str:
    if not e164:
        return ""
    return display_phone({"e164": e164, "extension": extension or ""})


def place(letter) -> str:
    county = townships.county(letter.county_code or "")
    town = townships.town(letter.town_code or "")
    return (county.name if county else "") + (town.name if town else "")


def roc_date(moment: Optional[datetime]) -> tuple[str, str, str]:
    if moment is None:
        return "", "", ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(TAIPEI)
    return str(roc_year(local.date())), str(local.month), str(local.day)


# -- the document ---------------------------------------------------------------------------------
class _Writer:
    """A Word document with the form's styles, and the two things it is made of: paragraphs and table cells."""

    def __init__(self):
        from docx import Document
        from docx.enum.table import WD_TABLE_ALIGNMENT
        from docx.enum.text import WD_ALIGN_PARAGRAPH
        from docx.oxml.ns import qn
        from docx.shared import Cm, Pt

        self.Cm, self.Pt, self.center, self.right = Cm, Pt, WD_ALIGN_PARAGRAPH.CENTER, WD_ALIGN_PARAGRAPH.RIGHT
        self.table_center = WD_TABLE_ALIGNMENT.CENTER
        self.doc = Document()
        section = self.doc.sections[0]
        section.page_height, section.page_width = Cm(29.7), Cm(21.0)  # A4
        section.left_margin = section.right_margin = Cm(2.0)
        section.top_margin = section.bottom_margin = Cm(1.8)
        normal = self.doc.styles["Normal"]
        normal.font.size = Pt(12)
        normal.font.name = "Times New Roman"
        normal.element.rPr.rFonts.set(qn("w:eastAsia"), "標楷體")

    def para(self, text: str = "", bold: bool = False, size: Optional[int] = None, align=None, space_after: int = 4):
        p = self.doc.add_paragraph()
        run = p.add_run(text)
        run.bold = bold
        if size:
            run.font.size = self.Pt(size)
        if align is not None:
            p.alignment = align
        p.paragraph_format.space_after = self.Pt(space_after)
        return p

    def table(self, rows: int, cols: int):
        table = self.doc.add_table(rows=rows, cols=cols)
        table.style = "Table Grid"
        table.alignment = self.table_center
        return table

    @staticmethod
    def cell(table, row: int, col: int, text: str, bold: bool = False, merge_to: Optional[int] = None):
        target = table.cell(row, col)
        if merge_to is not None:
            target = target.merge(table.cell(row, merge_to))
        target.text = ""
        p = target.paragraphs[0]
        for i, line in enumerate(str(text or "").split("\n")):
            if i:
                p = target.add_paragraph()
            p.add_run(line).bold = bold
        return target


def _enterprise_part(w: _Writer, case, letter) -> None:
    """一、企業基本資料, with the roster row of 附件一 柒.1 (預定輔導企業彙總表)."""
    w.para("一、 企業基本資料：", bold=True)
    t = w.table(8, 6)
    cell = w.cell
    cell(t, 0, 0, "企業名稱", bold=True)
    cell(t, 0, 1, letter.company_name, merge_to=3)
    cell(t, 0, 4, "統一編號", bold=True)
    cell(t, 0, 5, letter.business_number)
    cell(t, 1, 0, "企業型態", bold=True)
    registered = "■" if letter.company_type == 1 else "□"
    tax = "■" if letter.company_type == 2 else "□"
    cell(t, 1, 1, f"{registered}依法設立之企業(公司登/商登)    {tax}依法辦理稅籍登記", merge_to=5)
    cell(t, 2, 0, "企業規模", bold=True)
    cell(t, 2, 1, f"員工人數：{letter.employees if letter.employees is not None else ''} 人", merge_to=5)
    cell(t, 3, 0, "聯 絡 人", bold=True)
    cell(t, 3, 1, letter.contact_name)
    cell(t, 3, 2, "手 機", bold=True)
    cell(t, 3, 3, national_phone(letter.mobile))
    cell(t, 3, 4, "電 話", bold=True)
    cell(t, 3, 5, national_phone(letter.phone, letter.phone_ext))
    cell(t, 4, 0, "E-mail", bold=True)
    cell(t, 4, 1, letter.email, merge_to=5)
    cell(t, 5, 0, "所在地(縣市/鄉鎮)", bold=True)
    county = townships.county(letter.county_code or "")
    town = townships.town(letter.town_code or "")
    cell(t, 5, 1, f"{county.name if county else ''}/{town.name if town else ''}", merge_to=5)
    cell(t, 6, 0, "主要服務/產品", bold=True)
    cell(t, 6, 1, letter.products, merge_to=5)
    cell(t, 7, 0, f"{case.edition}年是否參與/申請政府相關輔導/補助計畫", bold=True)
    other = f"■是：{letter.other_program_names or ''}    □否" if letter.other_programs else "□是：    ■否"
    cell(t, 7, 1, other, merge_to=5)
    _widths(t, [w.Cm(x) for x in (3.4, 3.5, 1.8, 2.9, 2.3, 3.1)])


def _solution_part(w: _Writer, case, tool_deadline: str) -> None:
    """二、the solution, from the case."""
    w.para("")
    w.para(f"二、 同意接受推動企業數位共好計畫輔導，並最遲於 {tool_deadline} 完成導入以下雲端服務解決方案、"
           "數位應用工具及輔導內容：", bold=True)
    s = w.table(6, 2)
    cell = w.cell
    cell(s, 0, 0, f"雲端服務解決方案-{case.vendor_name}", bold=True, merge_to=1)
    cell(s, 1, 0, "方案名稱", bold=True)
    cell(s, 1, 1, case.solution_name)
    cell(s, 2, 0, "使用期間", bold=True)
    cell(s, 2, 1, case.period)
    content = f"⚫ 雲端服務解決方案項目內容與服務水平協議 SLA之說明\n{case.solution_content}"
    if case.sla:
        content += f"\nSLA：{case.sla}"
    if case.case_type == "inclusion":
        content += f"\n⚫ 共融案需說明整合性服務項目與內容\n{getattr(case, 'integrated_service', '') or ''}"
    cell(s, 3, 0, "內容", bold=True)
    cell(s, 3, 1, content)
    cell(s, 4, 0, "計畫其他輔導內容", bold=True, merge_to=1)
    cell(s, 5, 0, "內容", bold=True)
    cell(s, 5, 1, case.other_content)
    _widths(s, [w.Cm(3.4), w.Cm(13.6)])


def _undertakings_and_statement(w: _Writer, consent_at: Optional[datetime], notice_version: str) -> None:
    """三–六, and 七 the personal-data statement, with when the owner agreed to it in the chat."""
    w.para("")
    for number, text in UNDERTAKINGS.items():
        w.para(f"{number}、 {text}")
    w.para("七、 個人資料蒐集與利用聲明", bold=True)
    for line in STATEMENT:
        w.para(line, size=11, space_after=2)
    if consent_at is not None:
        y, m, d = roc_date(consent_at)
        local = (consent_at if consent_at.tzinfo else consent_at.replace(tzinfo=timezone.utc)).astimezone(TAIPEI)
        w.para(f"（本人已於中華民國 {y} 年 {m} 月 {d} 日 {local:%H:%M} 在 LINE 對話中閱讀並同意本聲明"
               + (f"，聲明版本 {notice_version}" if notice_version else "") + "。）", size=10)


def _signature(w: _Writer, letter) -> None:
    """The signature block, with a box for the company seals (公司大小章), and the date."""
    w.para("")
    w.para("立約人用印並同意本企業合作意向書以上規定並會遵守之：", bold=True)
    sig = w.doc.add_table(rows=1, cols=2)
    sig.alignment = w.table_center
    left = sig.cell(0, 0)
    left.width = w.Cm(10)
    left.text = ""
    lines = [f"公司名稱：{letter.company_name or ''}", f"代表人：{letter.representative or ''}",
             f"電  話：{national_phone(letter.phone, letter.phone_ext)}", f"地  址：{letter.address or ''}",
             f"統一編號：{letter.business_number or ''}"]
    for i, line in enumerate(lines):
        p = left.paragraphs[0] if i == 0 else left.add_paragraph()
        p.add_run(line)
        p.paragraph_format.space_after = w.Pt(8)
    stamp = sig.cell(0, 1)
    stamp.width = w.Cm(7)
    stamp.text = ""
    stamp.paragraphs[0].add_run("公司大小章").font.size = w.Pt(10)
    _box(stamp)
    _row_height(sig.rows[0], w.Cm(6))
    y, m, d = roc_date(letter.submitted_at)
    w.para("")
    w.para(f"中華民國 {y or '    '} 年 {m or '    '} 月 {d or '    '} 日", align=w.center)


def build_docx(case, letter, tool_deadline: str = "112/7/31", consent_at: Optional[datetime] = None,
               notice_version: str = "") -> bytes:
    """The filled 附件二 of ``letter`` in ``case`` as .docx bytes."""
    w = _Writer()
    year = case.edition
    w.para("附件二", size=10, align=w.right)
    w.para(f"{year} 年推動企業數位共好計畫-「{case.plan_name}」", bold=True, size=16, align=w.center, space_after=0)
    w.para("企業合作意向書", bold=True, size=16, align=w.center, space_after=10)
    w.para(PREAMBLE.format(proposer=case.proposer_name))
    _enterprise_part(w, case, letter)
    _solution_part(w, case, tool_deadline)
    _undertakings_and_statement(w, consent_at, notice_version)
    _signature(w, letter)
    doc = w.doc
    doc.core_properties.title = f"{year} 年推動企業數位共好計畫-「{case.plan_name}」企業合作意向書"
    doc.core_properties.author = "共好小幫手"
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


def _widths(table, widths) -> None:
    """Fixed column widths (Word reads the cells' widths, LibreOffice the table grid)."""
    from docx.shared import Emu

    table.autofit = False
    for column, width in zip(table.columns, widths):
        column.width = width
    for row in table.rows:
        position = 0
        for tc in row._tr.tc_lst:
            span = tc.grid_span
            tc.width = Emu(sum(widths[position:position + span]))
            position += span


def _box(cell) -> None:
    """Draws a border around one table cell (the blank place for the seals)."""
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    tc_pr = cell._tc.get_or_add_tcPr()
    borders = OxmlElement("w:tcBorders")
    for side in ("top", "left", "bottom", "right"):
        element = OxmlElement(f"w:{side}")
        element.set(qn("w:val"), "single")
        element.set(qn("w:sz"), "8")
        element.set(qn("w:space"), "0")
        element.set(qn("w:color"), "000000")
        borders.append(element)
    tc_pr.append(borders)


def _row_height(row, height) -> None:
    from docx.enum.table import WD_ROW_HEIGHT_RULE

    row.height = height
    row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST


def docx_text(data: bytes) -> str:
    """All the text of a .docx (paragraphs and table cells), for checks and tests."""
    from docx import Document

    doc = Document(io.BytesIO(data))
    parts = [p.text for p in doc.paragraphs]
    for table in doc.tables:
        for row in table.rows:
            for c in row.cells:
                parts.append(c.text)
    return "\n".join(parts)


def undertakings_json(keys=("三", "四", "五", "六")) -> str:
    return json.dumps({k: True for k in keys}, ensure_ascii=False)
