"""The LINE gateway: the only module that calls the Messaging API.

- One call, one outcome (`Result`): delivered; surely not delivered (nothing was
  written, or LINE answered 5xx); *maybe* delivered (the request was written and
  then the answer did not come); rate limited (with LINE's ``Retry-After``); the
  month's quota used up; refused. The outbox (`bot/outbox.py`) decides what follows:
  a reply that may have reached LINE is never followed by a push.
- Push and multicast carry an ``X-Line-Retry-Key`` (a 409 means LINE already accepted
  that key: delivered).
- The timeout covers the whole call (connecting, writing, waiting, reading), not
  each socket read; connections are pooled and reused.
- ``x-line-request-id`` is logged; message contents and names never are.

The sends (reply, push, multicast, loading animation) and the profile are plain
JSON over keep-alive connections of our own (`Connection`: a socket, and httptools'
parser for the answers) kept in a small pool, with the
SDK's headers and its ``ApiException`` for refusals: the generated ``MessagingApi``
methods re-validate every argument with pydantic and parse every answer into
models, and urllib3 adds its own layers; together they cost more CPU than the
rest of an answer. The messages are the SDK's message models (from
``bot.render``) or their JSON dicts. Quota look-ups still use ``MessagingApi``.
"""
from __future__ import annotations

import http.client
import json
import logging
import random
import socket
import ssl
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional, Sequence
from urllib.parse import quote, urlsplit

import httptools
import urllib3
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi
from linebot.v3.messaging.exceptions import ApiException

from bot import metrics
from bot.logs import bind_line_request
from storage.db import WATCHDOG

log = logging.getLogger("gonghao.gateway")

REPLY_TOKEN_FRESH_SECONDS = 50
REPLY, PUSH, MULTICAST = "/v2/bot/message/reply", "/v2/bot/message/push", "/v2/bot/message/multicast"
LOADING = "/v2/bot/chat/loading/start"
RETRY_NAMESPACE = uuid.UUID("6f1c7c1e-8f0a-4a59-9a55-7d1f3c2b9e01")


def retry_key_for(name: str) -> str:
    """A stable retry key for one logical send (the same after a crash and restart)."""
    return str(uuid.uuid5(RETRY_NAMESPACE, name))


class DeliveryFailed(Exception):
    """LINE could not be reached or kept refusing; the caller keeps the message for later."""


class QuotaExhausted(DeliveryFailed):
    """LINE answered 429 because the month's message quota is used up: retrying cannot help."""


QUOTA_MESSAGE = "monthly limit"  # in LINE's 429 body when the quota, not the rate, is the problem

DELIVERED, NOT_SENT, MAYBE, LIMITED, QUOTA, REFUSED = "delivered", "not_sent", "maybe", "limited", "quota", "refused"


@dataclass
class Result:
    """What one call to LINE came to."""

    outcome: str  # one of DELIVERED, NOT_SENT, MAYBE, LIMITED, QUOTA, REFUSED
    status: int = 0  # LINE's HTTP status (0: no answer)
    request_id: str = ""
    retry_after: float = 0.0  # seconds, for LIMITED
    detail: str = ""  # LINE's message (never ours: it holds no personal data)


class NotWritten(Exception):
    """The request never left: connecting failed (refused, DNS, connect timeout)."""


def retry_after_seconds(headers, default: float = 1.0) -> float:
    """LINE's Retry-After (seconds) when it sent one."""
    try:
        return max(0.0, float(_header(headers, "retry-after")))
    except (TypeError, ValueError):
        return default


@dataclass
class Sent:
    method: str  # reply / push / multicast / none
    request_id: str = ""


def _header(headers, name: str) -> str:
    if not headers:
        return ""
    for key, value in dict(headers).items():
        if key.lower() == name:
            return value
    return ""


def as_json(message) -> dict:
    """A message as LINE's JSON: an SDK model's ``to_dict()``, a dict as it is."""
    return message if isinstance(message, dict) else message.to_dict()


def _text(body) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return body or ""


def _message(body) -> str:
    """LINE's ``message`` from an error body ('' when there is none)."""
    try:
        found = json.loads(_text(body) or "{}").get("message", "")
        return found if isinstance(found, str) else ""
    except (ValueError, AttributeError):
        return ""


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status is None or exc.status >= 500 or exc.status == 429
    return isinstance(exc, (urllib3.exceptions.HTTPError, http.client.HTTPException, TimeoutError, ConnectionError,
                            OSError))


@dataclass
class Response:
    status: int
    headers: dict  # names lower-cased
    data: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection: the request written in one ``sendall``, the answer read by
    httptools' parser (llhttp, in C). Through http.client, the email package's header parsing and
    the response object cost about a fifth of an answer's CPU in the worker (bench/webhook/notes.md).

    Raises `NotWritten` when it cannot connect, ``OSError`` or ``http.client.HTTPException`` once the
    request may have left (the gateway calls that *maybe* delivered).
    """

    def __init__(self, host: str, port: int, context: Optional[ssl.SSLContext]):
        self.host, self.port, self.context = host, port, context
        self.host_header = host if port in (80, 443) else f"{host}:{port}"
        self.sock: Optional[socket.socket] = None

    def connect(self, timeout: float) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.host)
        except OSError as exc:
            raise NotWritten(type(exc).__name__) from exc
        self.sock = sock

    def close(self) -> None:
        sock, self.sock = self.sock, None
        if sock is not None:
            sock.close()

    def request(self, method: str, path: str, body: Optional[bytes], headers: dict) -> tuple[Response, bool]:
        """(LINE's answer, whether the connection may be used again)."""
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host_header}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        return _Answer().read(self.sock)


class _Answer:
    """httptools' callbacks, collecting one response."""

    def __init__(self):
        self.headers: dict[str, str] = {}
        self.chunks: list[bytes] = []
        self.head_done = self.complete = self.keep_alive = False
        self.parser = httptools.HttpResponseParser(self)

    def on_header(self, name: bytes, value: bytes) -> None:
        key = name.decode("latin-1").lower()
        text = value.decode("latin-1")
        self.headers[key] = f"{self.headers[key]}, {text}" if key in self.headers else text

    def on_headers_complete(self) -> None:
        self.head_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()  # the parser forgets it once the message is over

    def read(self, sock: socket.socket) -> tuple[Response, bool]:
        parser = self.parser
        while not self.complete:
            data = sock.recv(65536)
            if not data:
                return self._closed()
            try:
                parser.feed_data(data)
            except httptools.HttpParserError as exc:
                raise http.client.HTTPException(f"unparseable answer ({type(exc).__name__})") from exc
        status = parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (never asked for): the real one follows
            return _Answer().read(sock)
        return Response(status, self.headers, b"".join(self.chunks)), self.keep_alive

    def _closed(self) -> tuple[Response, bool]:
        """The server closed the connection: complete only for an answer that runs until the close."""
        framed = "content-length" in self.headers or "chunked" in self.headers.get("transfer-encoding", "").lower()
        if not self.head_done:
            raise http.client.RemoteDisconnected("LINE closed the connection without an answer")
        if framed:
            raise http.client.IncompleteRead(b"".join(self.chunks))
        return Response(self.parser.get_status_code(), self.headers, b"".join(self.chunks)), False


class Connections:
    """Keep-alive HTTP/1.1 connections to the API host, each used by one thread at a time.

    A connection the server has closed while it sat idle is noticed before reuse (it
    reads as ready) and replaced; an error during a request closes the connection and
    is raised, never retried here (the gateway decides: a reply is never retried).
    """

    def __init__(self, base_url: str, timeout: float, keep: int):
        parts = urlsplit(base_url)
        https = parts.scheme == "https"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (443 if https else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.keep = keep
        self.idle: list[Connection] = []
        self.lock = threading.Lock()
        self.context = ssl.create_default_context() if https else None

    def _take(self) -> Connection:
        conn = None
        with self.lock:
            if self.idle:
                conn = self.idle.pop()
        if conn is not None and urllib3.util.wait.wait_for_read(conn.sock, timeout=0.0):
            conn.close()  # closed by the server (or something unexpected is waiting): a new one
            conn = None
        return conn or Connection(self.host, self.port, self.context)

    def request(self, method: str, path: str, body: Optional[bytes], headers: dict,
                timeout: Optional[float] = None) -> Response:
        """One request within ``timeout`` seconds in all; NotWritten when it could not even connect."""
        timeout = timeout or self.timeout
        conn = self._take()
        ticket = WATCHDOG.arm(timeout, _closer(conn))  # the whole call, not each read
        try:
            if conn.sock is None:
                conn.connect(timeout)
            else:
                conn.sock.settimeout(timeout)
            response, reusable = conn.request(method, self.prefix + path, body, headers)
        except BaseException:
            conn.close()
            raise
        finally:
            WATCHDOG.disarm(ticket)
        if reusable:
            with self.lock:
                if len(self.idle) < self.keep:
                    self.idle.append(conn)
                    conn = None
        if conn is not None:
            conn.close()
        return response

    def close(self) -> None:
        with self.lock:
            idle, self.idle = self.idle, []
        for conn in idle:
            conn.close()


def _closer(conn):
    def close() -> None:
        sock = conn.sock
        if sock is not None:
            log.warning("a LINE call outlived its timeout; closing its connection")
            sock.shutdown(socket.SHUT_RDWR)
    return close


class LineGateway:
    """Sends the bot's messages to LINE (or to the mock platform in tests)."""

    def __init__(self, access_token: str, base_url: str, timeout: float = 10.0, pool_size: int = 64,
                 max_attempts: int = 8, max_backoff: float = 30.0, sleep: Callable[[float], None] = time.sleep):
        configuration = Configuration(host=base_url, access_token=access_token or "unset")
        configuration.connection_pool_maxsize = pool_size
        configuration.retries = 0  # we decide what is retried, never a reply
        self.client = ApiClient(configuration)
        self.api = MessagingApi(self.client)
        self.base_url = base_url.rstrip("/")
        self.connections = Connections(self.base_url, timeout, pool_size)
        self.headers = {**self.client.default_headers, "Accept": "application/json"}
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.max_backoff = max_backoff
        self.sleep = sleep

    # -- answering an event: one call each, the outbox decides what follows ---------------
    def reply_once(self, reply_token: str, messages: Sequence) -> Result:
        """One reply (never retried here)."""
        return self._once("reply", REPLY, {"replyToken": reply_token, "messages": [as_json(m) for m in messages]})

    def push_once(self, to: str, messages: Sequence, key: str) -> Result:
        """One push with ``X-Line-Retry-Key`` = key (a 409 counts as delivered)."""
        return self._once("push", PUSH, {"to": to, "messages": [as_json(m) for m in messages]}, key)

    def _once(self, method: str, path: str, body: dict, key: Optional[str] = None) -> Result:
        try:
            response = self._post(path, body, key)
        except ApiException as exc:
            return self._refusal(method, exc)
        except NotWritten as exc:
            log.warning("%s not sent: could not connect (%s)", method, exc)
            return Result(NOT_SENT)
        except (OSError, http.client.HTTPException, urllib3.exceptions.HTTPError) as exc:  # written, then no answer
            log.warning("%s may or may not have reached LINE (%s)", method, type(exc).__name__)
            return Result(MAYBE)
        request_id = _header(response.headers, "x-line-request-id")
        with bind_line_request(request_id):
            log.info("%s sent", method)
        return Result(DELIVERED, response.status, request_id)

    @staticmethod
    def _refusal(method: str, exc: ApiException) -> Result:
        status, detail = exc.status or 0, _message(exc.body)
        request_id = _header(exc.headers, "x-line-request-id")
        if status == 409:  # the retry key was accepted before: delivered
            accepted = _header(exc.headers, "x-line-accepted-request-id")
            log.info("%s already accepted request_id=%s", method, accepted)
            return Result(DELIVERED, status, accepted)
        if status == 429:
            if QUOTA_MESSAGE in detail.lower():
                log.error("%s refused: the month's message quota is used up request_id=%s", method, request_id)
                return Result(QUOTA, status, request_id, detail=detail)
            wait = retry_after_seconds(exc.headers)
            log.warning("%s rate limited; retry after %.1fs request_id=%s", method, wait, request_id)
            return Result(LIMITED, status, request_id, retry_after=wait)
        if status >= 500:
            log.warning("%s failed status=%s request_id=%s", method, status, request_id)
            return Result(NOT_SENT, status, request_id)
        log.warning("%s refused status=%s request_id=%s", method, status, request_id)
        return Result(REFUSED, status, request_id, detail=detail)

    # -- push and multicast -------------------------------------------------------
    def push(self, to: str, messages: Sequence, key: str) -> Sent:
        """Pushes with ``X-Line-Retry-Key`` = key, retrying transient failures with that key."""
        body = {"to": to, "messages": [as_json(m) for m in messages]}
        return self._with_retries("push", key, lambda: self._post(PUSH, body, key))

    def multicast(self, to: Sequence[str], messages: Sequence, key: str) -> Sent:
        """Multicasts to at most 500 users with a retry key."""
        if len(to) > 500:
            raise ValueError("multicast takes at most 500 users")
        body = {"to": list(to), "messages": [as_json(m) for m in messages]}
        return self._with_retries("multicast", key, lambda: self._post(MULTICAST, body, key))

    def _post(self, path: str, body: dict, retry_key: Optional[str] = None, timeout: Optional[float] = None):
        """One POST with an explicit timeout; ``ApiException`` (status, headers, body) unless 2xx."""
        headers = {**self.headers, "Content-Type": "application/json"}
        if retry_key:
            headers["X-Line-Retry-Key"] = retry_key
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        return self._call("POST", path, data, headers, timeout)

    def _call(self, method: str, path: str, data: Optional[bytes], headers: dict,
              timeout: Optional[float] = None) -> Response:
        try:
            response = self.connections.request(method, path, data, headers, timeout or self.timeout)
        except BaseException:
            metrics.line_call(path, "error")
            raise
        metrics.line_call(path, response.status)
        if not 200 <= response.status <= 299:
            exc = ApiException(status=response.status, reason=http.client.responses.get(response.status, ""))
            exc.body, exc.headers = response.data, response.headers
            raise exc
        return response

    def _with_retries(self, method: str, key: str, call) -> Sent:
        delay = 0.5
        for attempt in range(1, self.max_attempts + 1):
            try:
                response = call()
                request_id = _header(response.headers, "x-line-request-id")
                log.info("%s sent request_id=%s", method, request_id)
                return Sent(method, request_id)
            except ApiException as exc:
                if exc.status == 409:  # the retry key was already accepted: it was delivered
                    request_id = _header(exc.headers, "x-line-accepted-request-id")
                    log.info("%s already accepted request_id=%s", method, request_id)
                    return Sent(method, request_id)
                if exc.status == 429 and QUOTA_MESSAGE in _message(exc.body).lower():
                    log.error("%s refused: the month's message quota is used up", method)
                    raise QuotaExhausted(f"{method}: monthly quota used up") from exc
                if not _is_transient(exc):
                    log.error("%s refused status=%s request_id=%s", method, exc.status,
                              _header(exc.headers, "x-line-request-id"))
                    raise DeliveryFailed(f"{method} refused with {exc.status}") from exc
                wait = retry_after_seconds(exc.headers, delay * 4) if exc.status == 429 else delay
                log.warning("%s attempt %d failed status=%s; retrying in %.1fs", method, attempt, exc.status, wait)
            except Exception as exc:
                if not isinstance(exc, NotWritten) and not _is_transient(exc):
                    raise
                wait = delay
                log.warning("%s attempt %d failed (%s); retrying in %.1fs", method, attempt, type(exc).__name__, wait)
            if attempt == self.max_attempts:
                break
            self.sleep(min(wait, self.max_backoff) * (0.8 + 0.4 * random.random()))
            delay = min(delay * 2, self.max_backoff)
        raise DeliveryFailed(f"{method} failed {self.max_attempts} times")

    # -- the rest --------------------------------------------------------------------
    def profile_language(self, user_id: str) -> Optional[str]:
        """The language of a user's LINE profile, or None when it cannot be had."""
        try:
            response = self._call("GET", f"/v2/bot/profile/{quote(user_id, safe='')}", None, dict(self.headers))
            return json.loads(response.data).get("language")
        except Exception as exc:
            log.info("profile unavailable (%s)", type(exc).__name__)
            return None

    def show_loading(self, user_id: str, seconds: int = 5) -> None:
        """Shows the typing animation while a slow answer is prepared (best effort)."""
        try:
            self._post(LOADING, {"chatId": user_id, "loadingSeconds": seconds}, timeout=min(self.timeout, 3.0))
        except Exception as exc:
            log.info("loading animation not shown (%s)", type(exc).__name__)

    def quota(self) -> tuple[Optional[int], int]:
        """(monthly limit or None when unlimited, messages used this month)."""
        quota = self.api.get_message_quota(_request_timeout=self.timeout)
        used = self.api.get_message_quota_consumption(_request_timeout=self.timeout)
        limit = quota.value if getattr(quota, "type", "") == "limited" else None
        return limit, used.total_usage
