"""Signed, expiring downloads: the filled 附件二 of a letter, and the QR code of a case's invite link.

The links are made by dialogs.letter_doc (itsdangerous, GONGHAO_SECRET_KEY). A changed link
gets 403, an expired one (or one for a letter that was withdrawn or deleted) 410, each with a
short page in Traditional Chinese that says what to do. A letter link serves exactly the version
it names; a link to a version that was since replaced gets 410 and says so. Every response
carries the headers of bot.security (nosniff, CSP with frame-ancestors 'none', HSTS in production).
"""
from __future__ import annotations

import io
from html import escape

from flask import Blueprint, Response, current_app, send_file
from itsdangerous import BadSignature, SignatureExpired

from dialogs.dates import roc_short
from dialogs.letter import edition_of
from dialogs.letter_doc import build_docx, qr_png, line_invite_link, read_invite_token, read_letter_token
from storage.letters import SUBMITTED, Case, Consent, Letter

bp = Blueprint("downloads", __name__)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def _page(status: int, title: str, text: str) -> Response:
    html = (f'<!doctype html><html lang="zh-Hant-TW"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(title)}</title></head>'
            f'<body style="font-family: sans-serif; max-width: 36em; margin: 3em auto; padding: 0 1em">'
            f'<h1 style="font-size: 1.3em">{escape(title)}</h1><p>{escape(text)}</p>'
            f'<p style="color: #666">共好小幫手・推動企業數位共好計畫</p></body></html>')
    return Response(html, status=status, mimetype="text/html", headers={"Cache-Control": "no-store"})


def _expired() -> Response:
    return _page(410, "下載連結已過期", "這個下載連結已超過有效期限。請回到 LINE 對話輸入「我的意向書」，取得新的下載連結。")


def _tampered() -> Response:
    return _page(403, "下載連結無效", "這個下載連結不完整或已被更改。請回到 LINE 對話輸入「我的意向書」，取得新的下載連結。")


def _replaced(current: int) -> Response:
    from dialogs.i18n import _, use_locale

    with use_locale("zh_TW"):
        return _page(410, _("This letter of intent was replaced"),
                     _("This link is for an earlier version of the letter; it is now version {version}. Type "
                       "我的意向書 in the LINE chat for a link to the current one.").format(version=current))


@bp.get("/d/letter/<token>")
def letter_document(token: str):
    services = current_app.extensions["gonghao"]
    try:
        payload = read_letter_token(services.config, token)
    except SignatureExpired:
        return _expired()
    except BadSignature:
        return _tampered()
    with services.db.session() as s:
        letter = s.get(Letter, int(payload.get("l", 0)))
        if letter is None or letter.status != SUBMITTED:
            return _page(410, "意向書已撤回或刪除", "這份企業合作意向書已撤回或刪除，無法下載。如需重新填寫，請在 LINE 對話輸入「我的意向書」。")
        if payload.get("v") != letter.version:  # the link names one version: never serve another
            return _replaced(letter.version)
        case = s.get(Case, letter.case_id)
        consent = (s.query(Consent).filter(Consent.user_id == letter.user_id, Consent.agreed.is_(True))
                   .order_by(Consent.at.desc()).first())
    edition = edition_of(case)
    deadline = edition.dates.get("tool_import_deadline")
    data = build_docx(case, letter, tool_deadline=roc_short(deadline.day) if deadline else "",
                      consent_at=consent.at if consent else None,
                      notice_version=consent.notice_version if consent else "")
    services.db.audit("download", "letter.document", f"letter:{letter.id}", version=letter.version)
    name = f"企業合作意向書-{letter.business_number or letter.id}.docx"
    response = send_file(io.BytesIO(data), mimetype=DOCX, as_attachment=True, download_name=name)
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/d/invite/<token>.png")
def invite_qr(token: str):
    services = current_app.extensions["gonghao"]
    try:
        payload = read_invite_token(services.config, token)
    except SignatureExpired:
        return _page(410, "QR code 已過期", "這個 QR code 連結已過期，請向計畫辦公室索取新的邀請碼。")
    except BadSignature:
        return _page(403, "QR code 連結無效", "這個 QR code 連結不完整或已被更改。")
    with services.db.session() as s:
        case = s.get(Case, int(payload.get("c", 0)))
    if case is None or case.owner_code != payload.get("k") or case.owner_code_revoked:
        return _page(410, "邀請碼已停用", "這個邀請碼已停用，請向提案單位索取新的邀請碼。")
    if not services.config.bot_basic_id:
        return _page(404, "尚未設定 LINE 帳號", "尚未設定 LINE_BOT_BASIC_ID，無法產生邀請連結。")
    png = qr_png(line_invite_link(services.config.bot_basic_id, case.owner_code))
    return Response(png, mimetype="image/png", headers={"Cache-Control": "private, max-age=3600"})

