"""The gateway's own HTTP/1.1 connections, against a server that answers exactly the bytes a test gives.

What LINE may send that the mock platform never does: a chunked body, an answer cut into many small
pieces, ``Connection: close``, an interim ``100 Continue``, a connection closed before or during the
answer. Counted where it shows: the outcome, and the connections the server accepted.
"""
from __future__ import annotations

import socket
import threading

import pytest

from bot.gateway import LineGateway

OK_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nx-line-request-id: req-1\r\n"


class ScriptedServer:
    """Accepts connections; answers each request with the next script entry: (pieces, close after)."""

    def __init__(self, script: list[tuple[list[bytes], bool]]):
        self.script = list(script)
        self.accepted = 0
        self.requests: list[bytes] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.accepted += 1
            threading.Thread(target=self._talk, args=(conn,), daemon=True).start()

    def _talk(self, conn: socket.socket) -> None:
        with conn:
            while self.script:
                request = self._request(conn)
                if request is None:
                    return
                self.requests.append(request)
                pieces, close = self.script.pop(0)
                for piece in pieces:
                    conn.sendall(piece)
                if close:
                    return

    @staticmethod
    def _request(conn: socket.socket):
        data = b""
        while b"\r\n\r\n" not in data:
            more = conn.recv(65536)
            if not more:
                return None
            data += more
        head, _, body = data.partition(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(body) < length:
            body += conn.recv(65536)
        return head + b"\r\n\r\n" + body

    def close(self) -> None:
        self.listener.close()


@pytest.fixture()
def server():
    made = []

    def start(*script):
        made.append(ScriptedServer(list(script)))
        return made[-1]
    yield start
    for one in made:
        one.close()


def send(url: str, times: int = 1) -> list:
    gateway = LineGateway("token", url, timeout=2.0, pool_size=2)
    return [gateway.reply_once(f"rt-{i}", [{"type": "text", "text": "您好"}]) for i in range(times)]


def test_a_chunked_answer_in_small_pieces_is_read_whole_and_the_connection_kept(server):
    chunked = OK_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n"
    pieces = [chunked[i:i + 3] for i in range(0, len(chunked), 3)]
    line = server((pieces, False), ([OK_HEAD + b"Content-Length: 2\r\n\r\n{}"], False))
    first, second = send(line.url, 2)
    assert (first.outcome, first.request_id) == ("delivered", "req-1") and second.outcome == "delivered"
    assert line.accepted == 1  # kept alive and used again
    request = line.requests[0]
    assert request.startswith(b"POST /v2/bot/message/reply HTTP/1.1\r\n")
    assert b"Authorization: Bearer token" in request and request.endswith('"您好"}]}'.encode())


def test_connection_close_is_not_used_again(server):
    closing = OK_HEAD + b"Content-Length: 2\r\nConnection: close\r\n\r\n{}"
    line = server(([closing], True), ([closing], True))
    assert [r.outcome for r in send(line.url, 2)] == ["delivered", "delivered"]
    assert line.accepted == 2


def test_an_interim_answer_is_skipped(server):
    line = server(([b"HTTP/1.1 100 Continue\r\n\r\n", OK_HEAD + b"Content-Length: 2\r\n\r\n{}"], False))
    assert send(line.url)[0].outcome == "delivered"


def test_an_answer_running_until_the_close_is_complete(server):
    line = server(([OK_HEAD + b"\r\n{}"], True))
    assert send(line.url)[0].outcome == "delivered"


@pytest.mark.parametrize("pieces", [
    [],  # closed without a word
    [OK_HEAD + b"Content-Length: 10\r\n\r\n{}"],  # closed in the middle of the body
    [b"HTTP/1.1 200 OK\r\nContent-Le"],  # closed in the middle of the headers
    [b"this is not HTTP\r\n\r\n"],  # not an answer at all
])
def test_a_request_written_and_then_no_whole_answer_may_have_been_delivered(server, pieces):
    line = server((pieces, True))
    assert send(line.url)[0].outcome == "maybe"


def test_refusals_keep_their_status_and_line_message(server):
    body = b'{"message":"Invalid reply token"}'
    line = server(([b"HTTP/1.1 400 Bad Request\r\nContent-Length: %d\r\n\r\n" % len(body) + body], False))
    result = send(line.url)[0]
    assert (result.outcome, result.status, result.detail) == ("refused", 400, "Invalid reply token")
