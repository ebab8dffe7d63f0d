"""The media library: only real images are stored, served publicly, per merchant."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from accounts.schemas import MerchantOut
from templates.tables import MediaFile


def png(width: int = 20, height: int = 10) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_upload_serve_and_refusals(
    client: Any, merchant: MerchantOut, api_token: str
) -> None:
    h = {"authorization": f"Bearer {api_token}"}
    stored = await client.post(
        "/api/media", files={"file": ("logo.png", png(), "image/png")}, headers=h
    )
    assert stored.status_code == 201, stored.text
    body = stored.json()
    assert (body["width"], body["height"], body["content_type"]) == (20, 10, "image/png")
    served = await client.get(body["url"])  # no credentials: mail clients load it
    assert served.status_code == 200 and served.content == png()
    assert served.headers["content-type"] == "image/png"
    assert served.headers["x-content-type-options"] == "nosniff"
    listed = (await client.get("/api/media", headers=h)).json()
    assert [item["url"] for item in listed] == [body["url"]]

    before = await MediaFile.count().where(MediaFile.merchant == merchant.id)
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    for name, content, kind in [
        ("x.png", b"not an image at all", "image/png"),
        ("x.svg", svg, "image/svg+xml"),
        ("x.png", png()[:40], "image/png"),  # truncated
        ("x.png", b"", "image/png"),
    ]:
        response = await client.post("/api/media", files={"file": (name, content, kind)}, headers=h)
        assert response.status_code == 422, (name, response.text)
        assert response.json()["detail"]
    huge = await client.post(
        "/api/media",
        files={"file": ("big.png", b"\x89PNG" + b"0" * (50 * 1024 * 1024), "image/png")},
        headers=h,
    )
    assert huge.status_code == 413 and huge.json()["detail"]
    assert await MediaFile.count().where(MediaFile.merchant == merchant.id) == before
    assert (await client.get("/media/nothing-here.png")).status_code == 404
    assert (await client.get("/media/..%2F..%2Fsecret_key")).status_code == 404
