"""What every response and request of the web process gets: headers, body limits, the client's address.

- Headers on every response, downloads and error pages included: ``X-Content-Type-Options:
  nosniff``, a Content-Security-Policy with ``frame-ancestors 'none'`` (the staff console sets
  its own, stricter for its pages), ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``
  (signed download links must not leak to other sites) and, in production, HSTS.
- Body limits per route: the app-wide MAX_CONTENT_LENGTH is the largest any route accepts (an
  import: what the console promises, plus the form around it); every other route lowers it
  before its body is read — staff forms to `FORM_MAX`. LINE's webhook (bot/webhook.py, in front of
  Flask) reads at most its own 1 MiB and sends the same headers (`headers`).
- Behind GONGHAO_PROXY_HOPS proxies, werkzeug's ProxyFix takes the client address from
  X-Forwarded-For, counted from the right (a client cannot choose it); the staff login limits
  key on that address.
- Flask-Limiter (Redis when there is one, memory otherwise) caps login posts per address, in
  front of the password hashing; the (account, address) backoff is in storage.staff.
"""
from __future__ import annotations

from flask import Flask, Response, request

FORM_MAX = 256 * 1024  # a staff form, a login
MULTIPART_MARGIN = 1024 * 1024  # the form fields and part headers around an uploaded file
HSTS = "max-age=31536000; includeSubDomains"
DEFAULT_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")
LOGIN_RATE = "30 per minute"  # login posts from one address, whatever the accounts


OWN_VALUE_ALLOWED = {"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"}  # a page may set its own


def headers(production: bool) -> list[tuple[str, str]]:
    """The headers every response carries (a page may choose its own of `OWN_VALUE_ALLOWED`)."""
    found = [("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", DEFAULT_CSP),
             ("X-Frame-Options", "DENY"), ("Referrer-Policy", "no-referrer")]
    return found + ([("Strict-Transport-Security", HSTS)] if production else [])


def import_body_max() -> int:
    from storage.imports import MAX_BYTES

    return MAX_BYTES + MULTIPART_MARGIN


def body_limit(endpoint: str | None) -> int:
    """The largest request body the route accepts."""
    if endpoint == "staff.import_upload":
        return import_body_max()
    return FORM_MAX


def init_app(app: Flask, config) -> None:
    """Wires the limits, the proxy setting, the login rate limiter and the headers into the app."""
    if config.proxy_hops > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=config.proxy_hops, x_proto=config.proxy_hops)
    app.config["MAX_CONTENT_LENGTH"] = import_body_max()
    app.before_request(_limit_body)
    production = config.production

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in headers(production):
            if name in OWN_VALUE_ALLOWED:
                response.headers.setdefault(name, value)
            else:
                response.headers[name] = value
        return response

    app.extensions["gonghao_limiter"] = _limiter(app, config)


def _limit_body() -> None:
    request.max_content_length = body_limit(request.endpoint)


def _limiter(app: Flask, config):
    from flask_limiter import Limiter

    storage = "memory://"
    if config.redis_url:
        storage = config.redis_url
    # swallow_errors + in-memory fallback: a Redis hiccup must not stop staff signing in (the per-account and
    # per-address backoff in the database still holds)
    return Limiter(lambda: request.remote_addr or "?", app=app, storage_uri=storage,
                   key_prefix=f"{config.redis_prefix}limiter", headers_enabled=False, swallow_errors=True,
                   in_memory_fallback_enabled=bool(config.redis_url))


def login_rate_limit(app: Flask):
    """A context manager that counts one login post against the address (429 past `LOGIN_RATE`)."""
    return app.extensions["gonghao_limiter"].limit(LOGIN_RATE, scope="staff-login")
