"""Issue 21, finding 4: every answer carries the security headers (a page of ours framed by
another origin, inline script run by an injection), and no page needs inline code."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from accounts.schemas import UserOut
from loyalmail.app import PAGE_DIRS
from tests.conftest import login


def _directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        found[name] = values
    return found


def assert_admin_headers(response: Any) -> None:
    headers = response.headers
    policy = _directives(headers["content-security-policy"])
    assert policy["script-src"] == ["'self'"], policy  # no 'unsafe-inline', no 'unsafe-eval'
    assert policy["default-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["object-src"] == ["'none'"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "same-origin"


async def test_pages_api_errors_and_static_files_carry_the_security_headers(
    client: Any, owner: UserOut, api_token: str
) -> None:
    await login(client, owner)
    answers = {
        "dashboard": await client.get("/"),
        "tokens": await client.get("/settings/tokens"),
        "customers": await client.get("/customers"),
        "missing page": await client.get("/no/such/page", headers={"accept": "text/html"}),
        "static": await client.get("/static/app.css"),
        "login": await client.get("/login"),
    }
    client.cookies.clear()
    bearer = {"authorization": f"Bearer {api_token}"}
    answers["api"] = await client.get("/api/customers", headers=bearer)
    answers["api 404"] = await client.get("/api/customers/999999", headers=bearer)
    answers["api 401"] = await client.get("/api/customers")
    answers["api 422"] = await client.post("/api/customers", json={"email": 1}, headers=bearer)
    expected = {"api 404": 404, "api 401": 401, "api 422": 422, "missing page": 404}
    for name, response in answers.items():
        assert response.status_code == expected.get(name, 200), (name, response.text[:200])
        assert_admin_headers(response)


async def test_recipient_pages_keep_their_stricter_policy(client: Any) -> None:
    response = await client.get("/r/unsubscribe/not-a-token")
    assert response.status_code == 404
    policy = _directives(response.headers["content-security-policy"])
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy  # no script at all, by default-src 'none'
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert len(response.headers.get_list("content-security-policy")) == 1


#: Code a policy without 'unsafe-inline' for scripts would refuse to run: a <script> with a
#: body (a JSON data block is fine: it is never run), an on…= handler, a javascript: URL.
_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>")
_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)
_JS_URL = re.compile(r"=\s*['\"]?\s*javascript:", re.IGNORECASE)


def test_no_page_has_inline_script() -> None:
    found = []
    for folder in PAGE_DIRS:
        for page in sorted(Path(folder).glob("*.html")):
            text = page.read_text(encoding="utf-8")
            for pattern in (_INLINE_SCRIPT, _HANDLER, _JS_URL):
                found += [f"{page.name}: {m.group(0)}" for m in pattern.finditer(text)]
    assert found == []
