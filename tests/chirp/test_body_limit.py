"""Request bodies over CHIRP_MAX_REQUEST_BYTES are refused with 413 before they are read, on
the real ASGI server (uvicorn), for every path: anonymous or signed in, page or API."""

from __future__ import annotations

import json
import select
import socket
import time

import pytest

from chirp.models import ApiToken
from imports.models import ImportJob
from tests.conftest import session_cookie_for, start_web_server

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 100_000


@pytest.fixture
def server(tmp_path):
    server = start_web_server(tmp_path, redis=False, CHIRP_MAX_REQUEST_BYTES=str(LIMIT))
    yield server
    server.process.terminate(10)


def _connect(server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _head(path: str, cookies: dict[str, str] | None = None, **headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1"]
    if cookies:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    lines += [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [("/api/scrape-jobs", False), ("/accounts/login/", False), ("/channels/import/", True)],
)
def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    server, alice, path, signed_in
):
    cookies = session_cookie_for(alice) if signed_in else None
    with _connect(server) as sock:
        # Headers only: the answer must come without a single byte of the body.
        sock.sendall(_head(path, cookies, Content_Length="400000000", Content_Type="text/plain"))
        status, headers, body = _read_response(sock)

    assert status == 413
    assert headers["connection"] == "close"
    if path.startswith("/api/"):
        assert headers["content-type"] == "application/json"
        assert "too large" in json.loads(body)["error"]
    else:
        assert headers["content-type"].startswith("text/html")
        assert b"too large" in body


def _send_chunked_until_stopped(sock: socket.socket, attempt: int) -> int:
    """Send up to `attempt` bytes of chunked body; stop as soon as the server answers, closes
    or stops reading. Returns the bytes of body handed to the socket."""
    piece = b"x" * 65536
    chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent = 0
    sock.settimeout(3)
    while sent < attempt:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            break  # the answer (or the close) is here
        try:
            sock.sendall(chunk)
        except (TimeoutError, BrokenPipeError, ConnectionResetError):
            break  # the server stopped reading
        sent += len(piece)
    return sent


@pytest.mark.parametrize(
    ("path", "signed_in"),
    [("/api/channels/import", False), ("/uploads/", True), ("/api/channels/import", True)],
)
def test_a_chunked_body_growing_past_the_limit_is_cut_off_with_413(server, alice, path, signed_in):
    cookies = session_cookie_for(alice) if signed_in else None
    attempt = 200 * 1024 * 1024
    started = time.monotonic()
    with _connect(server) as sock:
        sock.sendall(
            _head(path, cookies, Transfer_Encoding="chunked", Content_Type="application/json")
        )
        sent = _send_chunked_until_stopped(sock, attempt)
        sock.settimeout(10)
        status, headers, body = _read_response(sock)

    assert status == 413
    assert headers["connection"] == "close"
    # The server stopped reading near the limit: what was sent is the limit plus what the
    # loopback socket buffers hold, far from the 200 MB the client would have sent.
    assert sent < 16 * 1024 * 1024, sent
    assert time.monotonic() - started < 20
    if path.startswith("/api/"):
        assert "too large" in json.loads(body)["error"]
    assert not ImportJob.objects.exists()


def test_a_body_under_the_limit_still_works(server, alice):
    token = ApiToken(user=alice, name="script")
    key = token.set_new_key()
    token.save()
    payload = json.dumps({"channelUrl": "@fixture95", "note": "x" * (LIMIT - 1000)}).encode()
    assert len(payload) < LIMIT

    with _connect(server) as sock:
        sock.sendall(
            _head(
                "/api/channels/import",
                Authorization=f"Bearer {key}",
                Content_Type="application/json",
                Content_Length=str(len(payload)),
            )
            + payload
        )
        status, _, body = _read_response(sock)

    assert status == 201, body
    assert ImportJob.objects.get().owner == alice


def test_django_accepts_what_the_limit_lets_through(client, alice):
    """Django's own cap (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB by default) follows the setting:
    a 3 MB body under the default 10 MB limit is read, not refused as too big."""
    token = ApiToken(user=alice, name="script")
    key = token.set_new_key()
    token.save()
    payload = json.dumps({"channelUrl": "@fixture95", "note": "x" * 3_000_000})

    response = client.post(
        "/api/channels/import",
        payload,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert response.status_code == 201
