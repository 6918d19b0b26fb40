"""The staff console (/staff): cases and codes, rosters and letters, imports, exports, reminders, audit log.

Server-rendered pages (templates under bot/templates/staff/, zh_TW first, every text through
dialogs.i18n so the catalog check covers them), usable on a phone, no external assets.

Security:
- every page is behind a login (accounts: ``gonghao staff add NAME --role admin|viewer``,
  Argon2id hashes); anything else redirects to /staff/login;
- sessions live on the server (Flask-Login over storage.staff's ``staff_sessions``): the cookie
  holds only a random token; a session ends after GONGHAO_STAFF_IDLE_MINUTES without a request
  and GONGHAO_STAFF_SESSION_HOURS after signing in, and at once on logout, a password or role
  change, or an admin's "sign out everywhere" (/staff/sessions lists the live ones);
- session cookies HttpOnly, SameSite=Lax and Secure (Secure off only when app.testing or
  GONGHAO_ENV is not production); the session is renewed at login;
- CSRF: Flask-WTF's CSRFProtect checks every POST of this blueprint (other blueprints, such as
  LINE's webhook, are not affected);
- login attempts are throttled by (account, address) and by address, with a doubling wait,
  never by account alone (storage.staff); Flask-Limiter caps login posts per address;
- text typed into a form is refused when it holds control characters (dialogs.text.has_unsafe);
- viewers read and export; only admins change cases, codes and import;
- exports and code views are written to the audit log; pages are sent with no-store and a
  strict Content-Security-Policy.

Also here, outside /staff: ``/d/roster/<token>``, the proposer's signed, expiring download of
their own case's 附件一 roster as XLSX (the link is sent in the chat by dialogs.roster).
"""
from __future__ import annotations

import functools
import io
import os
import tempfile
from datetime import timedelta
from urllib.parse import quote

from flask import (Blueprint, Response, abort, current_app, g, redirect, render_template, request, send_file, session,
                   url_for)
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from itsdangerous import BadSignature, SignatureExpired

from dialogs.engine import Refused
from dialogs.i18n import _, use_locale
from dialogs.text import has_unsafe, scrub
from dialogs.validators import form_text

bp = Blueprint("staff", __name__, template_folder="templates")
csrf = CSRFProtect()
login_manager = LoginManager()

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PUBLIC_ENDPOINTS = {"staff.login", "staff.roster_download"}
TEXT_MAX = 200
LONG_MAX = 5000
AUDIT_PAGE = 100


@bp.record_once
def _setup(state) -> None:
    app = state.app
    services = app.extensions.get("gonghao")
    production = bool(services and services.config.production)
    app.config.setdefault("WTF_CSRF_CHECK_DEFAULT", False)  # checked for this blueprint's forms only
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", 8 * 3600)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
                      SESSION_COOKIE_SECURE=production and not app.testing,
                      PERMANENT_SESSION_LIFETIME=timedelta(hours=services.config.staff_session_hours if services else 8))
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.session_protection = None  # the server-side session row is the protection


class StaffUser(UserMixin):
    """A signed-in staff member for Flask-Login: the account and the token of this session."""

    def __init__(self, account, token: str, session_id: str):
        self.account, self.token, self.session_id = account, token, session_id

    def get_id(self) -> str:
        return self.token  # the cookie names the session, never the account


def _lifetimes() -> tuple[timedelta, timedelta]:
    config = _services().config
    return timedelta(minutes=config.staff_idle_minutes), timedelta(hours=config.staff_session_hours)


@login_manager.user_loader
def _load_staff(token: str):
    from storage.staff import session_account

    idle, lifetime = _lifetimes()
    found, session_id = session_account(_services().db, token, idle, lifetime)
    return StaffUser(found, token, session_id) if found is not None else None


def _services():
    return current_app.extensions["gonghao"]


# -- the gate ---------------------------------------------------------------------------------------
@bp.before_request
def _gate():
    g.staff = None
    if request.endpoint in PUBLIC_ENDPOINTS:
        if request.method == "POST":
            csrf.protect()
        return None
    found = current_user.account if current_user.is_authenticated else None
    if found is None:
        session.pop("_user_id", None)
        target = None
        if request.method == "GET" and request.path.startswith("/staff"):
            target = request.path + ("?" + request.query_string.decode("latin-1") if request.query_string else "")
        return redirect(url_for("staff.login", next=target))
    g.staff = found
    if request.method == "POST":
        csrf.protect()
    return None


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'none'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
    return response


@bp.errorhandler(CSRFError)
def _csrf_refused(error):
    return _message(400, _("This form has expired or is not valid. Please reload the page and try again."))


def admin_only(view):
    @functools.wraps(view)
    def wrapped(*args, **kwargs):
        if g.staff is None or not g.staff.can_change:
            return _message(403, _("Your account can read but not change. Ask an administrator."))
        return view(*args, **kwargs)

    return wrapped


def _actor() -> str:
    return f"staff:{g.staff.name}" if getattr(g, "staff", None) is not None else "staff"


def _render(template: str, http_status: int = 200, **context):
    with use_locale("zh_TW"):
        html = render_template(f"staff/{template}", _=_, staff=getattr(g, "staff", None), nav=_nav(), **context)
    return Response(html, status=http_status, mimetype="text/html")


def _nav():
    return [("staff.cases", _("Cases")), ("staff.editions", _("Editions")), ("staff.imports", _("Imports")),
            ("staff.exports", _("Exports")), ("staff.reminders", _("Reminders")), ("staff.audit", _("Audit log")),
            ("staff_status.status", _("System status")), ("staff.sessions", _("Sessions"))]


def _message(status: int, text: str):
    return _render("message.html", http_status=status, text=text)


def client_address() -> str:
    """The client's address for the login limits. Behind a reverse proxy set GONGHAO_PROXY_HOPS to the number of
    proxies in front of the app (1 on most platforms): bot.security then reads it from X-Forwarded-For, counted
    from the right, so a client cannot choose it."""
    return request.remote_addr or "?"


# -- login --------------------------------------------------------------------------------------------
@bp.route("/staff/login", methods=["GET", "POST"])
def login():
    next_path = request.values.get("next") or ""
    if not next_path.startswith("/staff") or next_path.startswith("//"):
        next_path = ""
    if request.method == "POST":
        from bot.security import login_rate_limit

        with login_rate_limit(current_app):
            return _login_post(next_path)
    return _render("login.html", error="", next=next_path)


def _login_post(next_path: str):
    from storage.staff import login as check_login, start_session

    name = (request.form.get("name") or "").strip()
    found, outcome, wait = check_login(_services().db, name, request.form.get("password") or "", client_address())
    if found is not None:
        token = start_session(_services().db, found, client_address(), request.user_agent.string)
        session.clear()  # a new session at login (no fixation)
        session.permanent = True
        login_user(StaffUser(found, token, ""))
        return redirect(next_path or url_for("staff.cases"))
    minutes = max(1, -(-int(wait.total_seconds()) // 60))
    if outcome == "limited":
        error = _("Too many failed logins from this address. Please wait {minutes} minutes and try again.").format(
            minutes=minutes)
    else:
        error = _("The name or the password is not right.")
    response = _render("login.html", http_status=429 if outcome == "limited" else 401, error=error, next=next_path)
    if outcome == "limited":
        response.headers["Retry-After"] = str(max(1, int(wait.total_seconds())))
    return response


@bp.post("/staff/logout")
def logout():
    from storage.staff import end_session

    end_session(_services().db, current_user.token)
    _services().db.audit(_actor(), "staff.logout", f"staff:{g.staff.name}")
    logout_user()
    session.clear()
    return redirect(url_for("staff.login"))


# -- sessions -------------------------------------------------------------------------------------------
@bp.get("/staff/sessions")
def sessions():
    from storage.exports import local_time
    from storage.staff import active_sessions

    idle, lifetime = _lifetimes()
    rows = active_sessions(_services().db, idle, lifetime, None if g.staff.can_change else g.staff.id)
    return _render("sessions.html", rows=rows, current=current_user.session_id, local_time=local_time,
                   idle=idle, lifetime=lifetime)


@bp.post("/staff/sessions/end")
def session_end():
    """Ends one session: one's own, or anyone's for an admin."""
    from storage.staff import end_session_by_id

    session_id = request.form.get("session") or ""
    ended = end_session_by_id(_services().db, session_id, None if g.staff.can_change else g.staff.id)
    if ended:
        _services().db.audit(_actor(), "staff.session_ended", f"session:{session_id[:12]}")
    return redirect(url_for("staff.sessions"))


@bp.post("/staff/accounts/<int:staff_id>/sign-out-everywhere")
@admin_only
def sign_out_everywhere(staff_id: int):
    """An admin ends every session of an account at once (a lost laptop, someone who left)."""
    from storage.staff import StaffAccount, sign_out_everywhere as end_all

    db = _services().db
    with db.session() as s:
        found = s.get(StaffAccount, staff_id)
    if found is None:
        abort(404)
    ended = end_all(db, staff_id)
    db.audit(_actor(), "staff.signed_out_everywhere", f"staff:{found.name}", sessions=ended)
    return redirect(url_for("staff.sessions"))


@bp.get("/staff/")
@bp.get("/staff")
def home():
    return redirect(url_for("staff.cases"))


# -- editions ------------------------------------------------------------------------------------------
@bp.get("/staff/editions")
def editions():
    from dialogs.edition import all_editions

    with use_locale("zh_TW"):
        found = list(reversed(all_editions()))
    from dialogs.dates import roc_long

    return _render("editions.html", editions=found, roc=roc_long)


# -- cases ----------------------------------------------------------------------------------------------
CASE_FIELDS = ("proposer_name", "plan_name", "vendor_name", "solution_name", "solution_content", "sla", "period",
               "other_content", "integrated_service")
REQUIRED_FIELDS = ("proposer_name", "plan_name", "vendor_name", "solution_name")
LONG_FIELDS = ("solution_content", "sla", "other_content", "integrated_service")


def shown_time(moment) -> str:
    """A time as staff read it: the ROC date and the time in Asia/Taipei (exports keep ISO for machines)."""
    from datetime import timezone

    from dialogs.dates import TAIPEI, roc_long

    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return roc_long(moment.astimezone(TAIPEI))


def _case_or_404(case_id: int):
    from storage.letters import Case

    with _services().db.session() as s:
        case = s.get(Case, case_id)
    if case is None:
        abort(404)
    return case


@bp.get("/staff/cases")
def cases():
    from sqlalchemy import func, select

    from storage.letters import OWNER, SUBMITTED, WITHDRAWN, Case, CaseMember, Letter

    edition = request.args.get("edition", type=int)
    with _services().db.session() as s:
        query = select(Case).order_by(Case.id.desc())
        if edition:
            query = query.where(Case.edition == edition)
        found = list(s.scalars(query))
        owners = dict(s.execute(select(CaseMember.case_id, func.count()).where(CaseMember.role == OWNER)
                                .group_by(CaseMember.case_id)).all())
        sent = dict(s.execute(select(Letter.case_id, func.count()).where(Letter.status == SUBMITTED)
                              .group_by(Letter.case_id)).all())
        gone = dict(s.execute(select(Letter.case_id, func.count()).where(Letter.status == WITHDRAWN)
                              .group_by(Letter.case_id)).all())
    rows = [(c, owners.get(c.id, 0) - gone.get(c.id, 0), sent.get(c.id, 0)) for c in found]
    return _render("cases.html", rows=rows, edition=edition, editions=_edition_years())


def _edition_years() -> list[int]:
    from dialogs.edition import all_editions

    return [e.year for e in reversed(all_editions())]


def _case_form_context(values: dict, errors: dict, case=None):
    from dialogs.edition import all_editions

    with use_locale("zh_TW"):
        found = list(reversed(all_editions()))
        types = {e.year: [(k, t.name.text(), [(th.key, th.name.text()) for th in t.themes])
                          for k, t in e.case_types.items()] for e in found}
    return dict(values=values, errors=errors, case=case, editions=[e.year for e in found], types=types)


def _read_case_form() -> tuple[dict, dict]:
    from dialogs.edition import edition_for

    form = request.form
    values = {name: (form.get(name) or "").strip() for name in CASE_FIELDS}
    values.update(edition=(form.get("edition") or "").strip(), case_type=(form.get("case_type") or "").strip(),
                  theme=(form.get("theme") or "").strip(), planned_count=(form.get("planned_count") or "0").strip())
    errors = {}
    for name in REQUIRED_FIELDS:
        if not values[name]:
            errors[name] = _("Please fill this in.")
    for name, value in values.items():
        if has_unsafe(value):  # NUL, control characters, lone surrogates: refused where a person typed them
            errors[name] = _("This holds invisible control characters (often pasted from another program). "
                             "Please type it again.")
    for name in CASE_FIELDS:
        limit = LONG_MAX if name in LONG_FIELDS else TEXT_MAX
        if name in errors:
            continue  # said already (control characters)
        if len(values[name]) > limit:
            errors[name] = _("At most {n} characters.").format(n=limit)
        else:
            try:  # the case's part of 附件二 is printed: the same normaliser as the owners' answers
                values[name] = form_text(values[name], "", questions=False) if name not in LONG_FIELDS \
                    else scrub(values[name]).strip()
            except Refused as refusal:
                errors[name] = refusal.message
    edition = None
    if values["edition"].isdigit():
        edition, _covers = edition_for(case_edition=int(values["edition"]))
        if edition.year != int(values["edition"]):
            edition = None
    if edition is None:
        errors["edition"] = _("Please choose an edition.")
    kind = edition.case_types.get(values["case_type"]) if edition else None
    if edition and kind is None:
        errors["case_type"] = _("Please choose a case type.")
    if values["theme"] and (kind is None or kind.theme(values["theme"]) is None):
        errors["theme"] = _("This theme does not belong to the case type.")
    if kind is not None and not kind.themes:
        values["theme"] = ""
    if not values["planned_count"].isdigit() or int(values["planned_count"]) > 100000:
        errors["planned_count"] = _("Please type a whole number from 0 to 100000.")
    return values, errors


def _case_columns(values: dict) -> dict:
    columns = {name: values[name] for name in CASE_FIELDS}
    columns.update(edition=int(values["edition"]), case_type=values["case_type"], theme=values["theme"] or None,
                   planned_count=int(values["planned_count"]))
    return columns


@bp.route("/staff/cases/new", methods=["GET", "POST"])
@admin_only
def case_new():
    from storage.letters import create_case

    if request.method == "GET":
        years = _edition_years()
        return _render("case_form.html", **_case_form_context(
            {"edition": str(years[0]) if years else "", "planned_count": "0", "case_type": "popularization"}, {}))
    values, errors = _read_case_form()
    if errors:
        return _render("case_form.html", http_status=400, **_case_form_context(values, errors))
    db = _services().db
    with db.session() as s:
        case = create_case(s, **_case_columns(values))
        case_id = case.id
    db.audit(_actor(), "case.created", f"case:{case_id}", edition=int(values["edition"]), type=values["case_type"])
    return redirect(url_for("staff.case", case_id=case_id))


@bp.route("/staff/cases/<int:case_id>/edit", methods=["GET", "POST"])
@admin_only
def case_edit(case_id: int):
    from storage.letters import Case

    case = _case_or_404(case_id)
    if request.method == "GET":
        values = {name: getattr(case, name) or "" for name in CASE_FIELDS}
        values.update(edition=str(case.edition), case_type=case.case_type, theme=case.theme or "",
                      planned_count=str(case.planned_count or 0))
        return _render("case_form.html", **_case_form_context(values, {}, case))
    values, errors = _read_case_form()
    if errors:
        return _render("case_form.html", http_status=400, **_case_form_context(values, errors, case))
    db = _services().db
    with db.session() as s:
        row = s.get(Case, case_id)
        changed = []
        for name, value in _case_columns(values).items():
            if getattr(row, name) != value:
                setattr(row, name, value)
                changed.append(name)
    db.audit(_actor(), "case.edited", f"case:{case_id}", fields=changed)
    return redirect(url_for("staff.case", case_id=case_id))


@bp.get("/staff/cases/<int:case_id>")
def case(case_id: int):
    from dialogs.letter_doc import join_text, line_invite_link
    from dialogs.roster import STATUS_NAMES, ROSTER_FLAG_NAMES, TEST_NAMES, roster_status, status_card
    from sqlalchemy import select

    from storage import letters as store
    from storage.exports import local_time, place
    from storage.letters import WITHDRAWN, Letter

    case = _case_or_404(case_id)
    services = _services()
    with use_locale("zh_TW"):
        status = roster_status(services, case_id)
        card = status_card(status)
    with services.db.session() as s:
        withdrawn = list(s.scalars(select(Letter).where(Letter.case_id == case_id, Letter.status == WITHDRAWN)
                                   .order_by(Letter.id)))
        members = store.members_of_case(s, case_id)
    services.db.audit(_actor(), "case.codes_shown", f"case:{case_id}")
    link = line_invite_link(services.config.bot_basic_id, case.owner_code) if services.config.bot_basic_id else ""
    return _render("case.html", case=case, card=card, status=status, withdrawn=withdrawn,
                   place=place, status_names=STATUS_NAMES, flag_names=ROSTER_FLAG_NAMES, test_names=TEST_NAMES,
                   join_text=join_text(case.owner_code), invite_link=link, members=members,
                   role_names=_role_names(), local_time=local_time)


def _role_names() -> dict:
    return {"proposer": _("Proposer contact"), "owner": _("Enterprise owner")}


@bp.get("/staff/cases/<int:case_id>/qr.png")
def case_qr(case_id: int):
    from dialogs.letter_doc import line_invite_link, qr_png

    case = _case_or_404(case_id)
    basic_id = _services().config.bot_basic_id
    if not basic_id or case.owner_code_revoked:
        abort(404)
    return Response(qr_png(line_invite_link(basic_id, case.owner_code)), mimetype="image/png",
                    headers={"Cache-Control": "private, no-store"})


@bp.post("/staff/cases/<int:case_id>/revoke")
@admin_only
def case_revoke(case_id: int):
    from storage.letters import PROPOSER, OWNER, Case, reissue_code

    which = request.form.get("which")
    if which not in (PROPOSER, OWNER):
        abort(400)
    from storage.exports import local_time
    from storage.letters import members_joined_with

    db = _services().db
    with db.session() as s:
        row = s.get(Case, case_id)
        if row is None:
            abort(404)
        old_code = row.proposer_code if which == PROPOSER else row.owner_code
        new_code = reissue_code(s, row, which)
        joined = members_joined_with(s, case_id, old_code)
    db.audit(_actor(), "case.code_revoked", f"case:{case_id}", which=which, joined_with_it=len(joined))
    return _render("revoked.html", case=row, new_code=new_code, members=joined, role_names=_role_names(),
                   local_time=local_time)


@bp.post("/staff/cases/<int:case_id>/unlink")
@admin_only
def case_unlink(case_id: int):
    """Takes access to the case away from the people named (``user`` + ``role``, or ``member`` = user:role)."""
    from storage.letters import OWNER, PROPOSER, unlink_member

    _case_or_404(case_id)
    wanted = [tuple(v.rsplit(":", 1)) for v in request.form.getlist("member") if ":" in v]
    if request.form.get("user"):
        wanted.append((request.form["user"], request.form.get("role") or ""))
    db = _services().db
    for user_id, role in wanted:
        if role not in (PROPOSER, OWNER):
            abort(400)
        with db.session() as s:
            result = unlink_member(s, case_id, user_id, role)
        if result["roles"]:
            db.audit(_actor(), "case.member_unlinked", f"case:{case_id}", role=role,
                     letter_withdrawn=result["letter_withdrawn"])
    return redirect(url_for("staff.case", case_id=case_id))


# -- letters --------------------------------------------------------------------------------------------
@bp.get("/staff/letters/<int:letter_id>")
def letter(letter_id: int):
    from sqlalchemy import func, select

    from dialogs.letter import STATUS_NAMES, letter_rows
    from dialogs.roster import ROSTER_FLAG_NAMES
    from storage.exports import letter_flags
    from storage.letters import Case, Letter, LetterVersion

    db = _services().db
    with db.session() as s:
        row = s.get(Letter, letter_id)
        if row is None:
            abort(404)
        case = s.get(Case, row.case_id)
        versions = s.scalar(select(func.count()).select_from(LetterVersion).where(LetterVersion.letter_id == letter_id))
    with use_locale("zh_TW"):
        fields = [(label, value) for label, value, _field in letter_rows(row)]
        flags = [_(ROSTER_FLAG_NAMES[f]) for f in letter_flags(row, case.edition)]
        status = _(STATUS_NAMES.get(row.status, row.status))
    db.audit(_actor(), "letter.viewed", f"letter:{letter_id}")
    return _render("letter.html", letter=row, case=case, fields=fields, flags=flags, status=status,
                   versions=versions, submitted_at=shown_time(row.submitted_at), updated_at=shown_time(row.updated_at))


@bp.get("/staff/letters/<int:letter_id>/document")
def letter_document(letter_id: int):
    """The filled 附件二, served by bot.downloads through a freshly signed link."""
    from dialogs.letter_doc import letter_token
    from storage.letters import SUBMITTED, Letter

    services = _services()
    with services.db.session() as s:
        row = s.get(Letter, letter_id)
        if row is None or row.status != SUBMITTED:
            abort(404)
        version = row.version
    services.db.audit(_actor(), "letter.document_requested", f"letter:{letter_id}", version=version)
    return redirect(url_for("downloads.letter_document", token=letter_token(services.config, letter_id, version)))


# -- exports ---------------------------------------------------------------------------------------------
@bp.get("/staff/exports")
def exports():
    from storage.letters import Case
    from sqlalchemy import select

    with _services().db.session() as s:
        found = list(s.scalars(select(Case).order_by(Case.id.desc())))
    return _render("exports.html", cases=found, editions=_edition_years(),
                   chosen_case=request.args.get("case", type=int))


@bp.post("/staff/exports")
def export_download():
    from storage.exports import FORMATS, KINDS

    kind, fmt = request.form.get("kind"), request.form.get("format")
    scope = request.form.get("scope") or "case"
    case_id = request.form.get("case", type=int) if scope == "case" else None
    edition = request.form.get("edition", type=int) if scope == "edition" else None
    if kind not in KINDS or fmt not in FORMATS or (case_id is None and edition is None):
        return _message(400, _("Please choose what to export, for which case or edition, and the format."))
    if case_id is not None:
        _case_or_404(case_id)
    return send_export(kind, fmt, case_id, edition, _actor())


def _attachment(name: str) -> str:
    ascii_name = name.encode("ascii", "ignore").decode() or "export"
    return f"attachment; filename=\"{ascii_name.lstrip('-')}\"; filename*=UTF-8''{quote(name)}"


def send_export(kind: str, fmt: str, case_id, edition, actor: str) -> Response:
    """Streams a CSV (rows written as they are read) or sends an XLSX built in a temporary file."""
    from storage.exports import audit_export, csv_chunks, filename, make_table, write_xlsx

    services = _services()
    table = make_table(services.db, kind, case_id, edition, services.config)
    name = filename(kind, fmt, case_id, edition)
    if fmt == "csv":
        counter = [0]

        def generate():
            complete = False
            try:
                yield from csv_chunks(table, counter)
                complete = True
            finally:
                audit_export(services.db, actor, table, fmt, counter[0], complete)

        return Response(generate(), mimetype="text/csv; charset=utf-8",
                        headers={"Content-Disposition": _attachment(name), "Cache-Control": "private, no-store"})
    handle, path = tempfile.mkstemp(prefix="gonghao-export-", suffix=".xlsx")
    os.close(handle)
    try:
        rows = write_xlsx(table, path)
        audit_export(services.db, actor, table, fmt, rows)
        response = send_file(path, mimetype=XLSX, as_attachment=True, download_name=name, max_age=0)
    except BaseException:
        os.remove(path)
        raise
    response.call_on_close(lambda: os.path.exists(path) and os.remove(path))
    response.headers["Cache-Control"] = "private, no-store"
    return response


# -- imports ---------------------------------------------------------------------------------------------
@bp.get("/staff/imports")
def imports():
    from storage import imports as store

    return _render("imports.html", recent=store.recent(_services().db), kinds=store.KINDS, kind_name=store.kind_name,
                   error="")


@bp.post("/staff/imports")
@admin_only
def import_upload():
    from storage import imports as store

    kind = request.form.get("kind")
    upload = request.files.get("file")
    db = _services().db
    error = ""
    if kind not in store.KINDS:
        error = _("Please choose what the file holds.")
    elif upload is None or not upload.filename:
        error = _("Please choose a CSV or XLSX file.")
    else:
        data = upload.read(store.MAX_BYTES + 1)
        try:
            with use_locale("zh_TW"):
                preview = store.preview(db, kind, upload.filename, data, actor=_actor())
        except store.FileProblem as problem:
            error = str(problem)
        else:
            return redirect(url_for("staff.import_preview", batch_id=preview.batch_id))
    return _render("imports.html", http_status=400, recent=store.recent(db), kinds=store.KINDS, kind_name=store.kind_name,
                   error=error)


@bp.get("/staff/imports/<int:batch_id>")
def import_preview(batch_id: int):
    from storage import imports as store

    preview = store.load_preview(_services().db, batch_id)
    if preview is None:
        abort(404)
    return _render("import_preview.html", preview=preview, kind_name=store.kind_name)


@bp.post("/staff/imports/<int:batch_id>/confirm")
@admin_only
def import_confirm(batch_id: int):
    from storage import imports as store

    try:
        store.confirm(_services().db, batch_id, actor=_actor())
    except LookupError:
        abort(404)
    except store.AlreadyDone:
        pass
    return redirect(url_for("staff.import_preview", batch_id=batch_id))


@bp.post("/staff/imports/<int:batch_id>/discard")
@admin_only
def import_discard(batch_id: int):
    from storage import imports as store

    store.discard(_services().db, batch_id, actor=_actor())
    return redirect(url_for("staff.imports"))


# -- reminders and audit ---------------------------------------------------------------------------------
@bp.get("/staff/reminders")
def reminders():
    from bot.reminders import preview

    days = min(max(request.args.get("days", 30, type=int), 1), 366)
    problem = ""
    try:
        items = preview(_services(), days=days)
    except Exception:  # the calendar is shown even when the reminders part is not set up
        current_app.logger.exception("reminders preview failed")
        items, problem = [], _("The reminders could not be previewed; see the server log.")
    return _render("reminders.html", items=items, days=days, problem=problem)


@bp.get("/staff/audit")
def audit():
    from sqlalchemy import func, select

    from storage.models import AuditEntry

    page = max(request.args.get("page", 1, type=int), 1)
    action = (request.args.get("action") or "").strip()[:64]
    with _services().db.session() as s:
        query = select(AuditEntry).order_by(AuditEntry.id.desc())
        counting = select(func.count()).select_from(AuditEntry)
        if action:
            query = query.where(AuditEntry.action.startswith(action))
            counting = counting.where(AuditEntry.action.startswith(action))
        total = s.scalar(counting)
        entries = list(s.scalars(query.offset((page - 1) * AUDIT_PAGE).limit(AUDIT_PAGE)))
    return _render("audit.html", entries=entries, page=page, action=action, local_time=shown_time,
                   more=page * AUDIT_PAGE < total, total=total)


# -- the proposer's download (outside /staff) --------------------------------------------------------------
@bp.get("/d/roster/<token>")
def roster_download(token: str):
    from bot.downloads import _page
    from dialogs.roster import read_roster_token
    from storage.exports import audit_export, filename, roster_table, write_xlsx
    from storage.letters import PROPOSER, CaseMember

    services = _services()
    with use_locale("zh_TW"):
        try:
            payload = read_roster_token(services.config, token)
        except SignatureExpired:
            return _page(410, _("The download link has expired"),
                         _("This link is older than 24 hours. Type 名單狀態 in the LINE chat for a new one."))
        except BadSignature:
            return _page(403, _("The download link is not valid"),
                         _("This link is incomplete or was changed. Type 名單狀態 in the LINE chat for a new one."))
        case_id, member_id = int(payload.get("c", 0)), int(payload.get("m", 0))
        with services.db.session() as s:
            member = s.get(CaseMember, member_id)
            allowed = member is not None and member.case_id == case_id and member.role == PROPOSER
        if not allowed:
            return _page(410, _("The download link no longer works"),
                         _("You are no longer the proposer contact of this case."))
    table = roster_table(services.db, case_id=case_id)
    out = io.BytesIO()
    rows = write_xlsx(table, out)
    audit_export(services.db, "proposer", table, "xlsx", rows)
    out.seek(0)
    response = send_file(out, mimetype=XLSX, as_attachment=True, download_name=filename("roster", "xlsx", case_id))
    response.headers["Cache-Control"] = "private, no-store"
    return response
