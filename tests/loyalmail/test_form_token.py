"""Issue 21, finding 6: a page upload that carries its CSRF token as a form field is not read
into memory to find the token. The app is driven as the ASGI server drives it, one 64 KB
chunk at a time, so the test sees how much of the body was read and what memory it took."""

from __future__ import annotations

import re
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest

from accounts.schemas import UserOut
from loyalmail.auth import SESSION_COOKIE
from tests.conftest import login

BOUNDARY = "lm-test-boundary"
CHUNK = 64 * 1024


def field(name: str, value: str) -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
    ).encode()


def file_head(name: str = "customers.csv") -> bytes:
    return (
        f"--{BOUNDARY}\r\nContent-Disposition: form-data; "
        f'name="file"; filename="{name}"\r\nContent-Type: text/csv\r\n\r\nemail\n'
    ).encode()


def csv_rows(size: int) -> Iterator[bytes]:
    """``size`` bytes of CSV rows in chunks, the same chunk object each time (no allocation)."""
    line = b"someone@example.com\n"
    chunk = line * (CHUNK // len(line))
    for _ in range(size // len(chunk)):
        yield chunk


class Answer:
    def __init__(self) -> None:
        self.status = 0
        self.body = bytearray()
        self.headers: dict[str, str] = {}
        #: Bytes of the request body the app took from the server.
        self.consumed = 0


async def post_streamed(
    client: Any, path: str, chunks: Iterator[bytes], content_type: str, **headers: str
) -> Answer:
    """POST ``chunks`` to ``path`` with the test client's session cookie."""
    answer = Answer()
    pending = next(chunks, None)

    async def receive() -> dict[str, Any]:
        nonlocal pending
        if pending is None:
            return {"type": "http.disconnect"}
        chunk, pending = pending, next(chunks, None)
        answer.consumed += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": pending is not None}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            answer.status = message["status"]
            answer.headers = {k.decode(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer.body += message.get("body", b"")

    cookie = f"{SESSION_COOKIE}={client.cookies[SESSION_COOKIE]}"
    raw_headers = [
        (b"host", b"testserver"),
        (b"content-type", content_type.encode()),
        (b"cookie", cookie.encode()),
        *((name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": raw_headers,
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
        "extensions": {},
    }
    await client.app(scope, receive, send)
    return answer


MULTIPART = f"multipart/form-data; boundary={BOUNDARY}"
TAIL = f"\r\n--{BOUNDARY}--\r\n".encode()


@pytest.mark.usefixtures("no_background_jobs")
async def test_a_50_mb_upload_with_the_token_first_is_streamed_not_buffered(
    client: Any, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    size = 50 * 1024 * 1024

    def body() -> Iterator[bytes]:
        yield field("_csrf", csrf) + file_head()
        yield from csv_rows(size)
        yield TAIL + field("consent", "none") + f"--{BOUNDARY}--\r\n".encode()

    tracemalloc.start()
    try:
        answer = await post_streamed(client, "/customers/import", body(), MULTIPART)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert answer.status == 303, bytes(answer.body[:500])
    assert re.fullmatch(r"/customers/import/\d+", answer.headers["location"])
    assert answer.consumed > 50_000_000  # all of it reached the handler, which wrote it to disk
    # Before: the middleware read the body whole (and parsed it) to find the token.
    assert peak < 16 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB while uploading 52 MB"


async def test_a_form_without_the_token_first_is_403_before_its_body_is_read(
    client: Any, owner: UserOut
) -> None:
    csrf = await login(client, owner)
    size = 10 * 1024 * 1024

    def token_last() -> Iterator[bytes]:
        yield file_head()
        yield from csv_rows(size)
        yield TAIL + field("_csrf", csrf) + f"--{BOUNDARY}--\r\n".encode()

    def long_first_part() -> Iterator[bytes]:
        yield field("_csrf", csrf + "x" * 2000) + file_head()
        yield from csv_rows(size)

    def wrong_token() -> Iterator[bytes]:
        yield field("_csrf", "not-the-token") + file_head()
        yield from csv_rows(size)

    for body in (token_last(), long_first_part(), wrong_token()):
        answer = await post_streamed(
            client, "/customers/import", body, MULTIPART, accept="text/html"
        )
        assert answer.status == 403
        assert b"did not come from this site" in answer.body
        assert answer.consumed <= 2 * CHUNK  # refused after the first part, unread


async def test_a_urlencoded_form_is_read_only_up_to_the_body_limit(
    client: Any, owner: UserOut
) -> None:
    from loyalmail.settings import get_settings

    csrf = await login(client, owner)
    limit = get_settings().max_body_bytes

    def form() -> Iterator[bytes]:
        yield f"_csrf={csrf}&consent=".encode()
        for _ in range(limit // CHUNK + 10):
            yield b"x" * CHUNK

    # The import page takes 100 MB bodies; its token check still reads no more of a form.
    answer = await post_streamed(
        client, "/customers/import", form(), "application/x-www-form-urlencoded"
    )
    assert answer.status == 413
    assert answer.consumed <= limit + 2 * CHUNK
    # A small one is read, its token found and the body replayed: the handler answers.
    small = await client.post(
        "/customers/import", data={"_csrf": csrf}, headers={"accept": "text/html"}
    )
    assert small.status_code == 422
    assert "multipart/form-data" in small.text
    # A token that is not even ASCII is a wrong one (compare_digest refuses such a str).
    in_form = await client.post("/customers/import", data={"_csrf": "jäger"})
    assert in_form.status_code == 403, in_form.text[:200]
    in_header = await client.post(
        "/customers/import", headers=[(b"x-csrf-token", "jäger".encode("latin-1"))]
    )
    assert in_header.status_code == 403, in_header.text[:200]


_UPLOAD_FORM = re.compile(r"<form[^>]*multipart/form-data[^>]*>\s*(\S[^\n]*)")


def test_every_page_form_that_uploads_sends_its_token_first() -> None:
    """Without JavaScript the token check reads only a form's first part."""
    from loyalmail.app import PAGE_DIRS

    firsts = {
        f"{page.name}: {found.group(1)}"
        for folder in PAGE_DIRS
        for page in folder.glob("*.html")
        for found in _UPLOAD_FORM.finditer(page.read_text(encoding="utf-8"))
    }
    assert firsts, "the import page's upload form is found"
    assert {first.split(": ", 1)[1] for first in firsts} == {"{{ ui.csrf_field() }}"}, firsts
