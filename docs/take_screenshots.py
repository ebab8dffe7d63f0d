"""Take the README's screenshots from a running demo.

    uv run loyalmail demo --port 8000 &
    uv run python docs/take_screenshots.py http://127.0.0.1:8000            # all of them
    uv run python docs/take_screenshots.py http://127.0.0.1:8000 segments   # only these

Uses Debian's chromium (``LOYALMAIL_CHROMIUM`` to point elsewhere), headless, 1280×800.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from playwright.async_api import FilePayload, FloatRect, Page, async_playwright

from loyalmail.seed import DEMO_EMAIL, DEMO_PASSWORD

SHOTS = Path(__file__).resolve().parent / "screenshots"
CHROMIUM = os.environ.get("LOYALMAIL_CHROMIUM", "/usr/bin/chromium")


#: A small sign-up list from a fair: most rows fine, a few that the report explains.
SAMPLE_CSV = (
    "email,first_name,last_name,gender,birth_date,country,city\n"
    "ines.hoffmann@web.example,Ines,Hoffmann,female,1990-03-14,DE,Leipzig\n"
    "tomas.berg@online.example,Tomas,Berg,male,1984-11-02,NO,Bergen\n"
    "not-an-address,Lars,Olsen,male,1979-06-30,NO,Oslo\n"
    "aino.koski@elisa.example,Aino,Koski,female,31.02.1992,FI,Tampere\n"
    "claire.morel@orange.example,Claire,Morel,female,1995-07-21,FR,Lyon\n"
    "ines.hoffmann@web.example,Ines,Hoffmann,female,1990-03-14,DE,Leipzig\n"
    "milan.ilic@eunet.example,Milan,Ilić,male,1988-01-09,RS,Novi Sad\n"
).encode()


async def shoot(
    page: Page, name: str, full_page: bool = False, clip: FloatRect | None = None
) -> None:
    await page.wait_for_load_state("networkidle")
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page, clip=clip)
    size = path.stat().st_size // 1024
    # The README's pictures should stay light for the repository.
    print(
        f"{path} {size} KB"
        + ("  <- larger than 200 KB: crop or shorten the page" if size > 200 else "")
    )


async def main(base_url: str, only: set[str]) -> None:
    """Every picture, or only the ones named in ``only`` (the login always happens)."""

    def wanted(name: str) -> bool:
        return not only or name in only

    SHOTS.mkdir(parents=True, exist_ok=True)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        context = await browser.new_context(
            base_url=base_url, locale="en-GB", viewport={"width": 1280, "height": 800}
        )
        page = await context.new_page()
        await page.goto("/login")
        await page.fill("input[name=email]", DEMO_EMAIL)
        await page.fill("input[name=password]", DEMO_PASSWORD)
        if wanted("login"):
            await shoot(page, "login")
        await page.press("input[name=password]", "Enter")
        await page.wait_for_url(f"{base_url}/")
        if wanted("dashboard"):
            await shoot(page, "dashboard")
        if wanted("customers"):
            await page.goto("/customers?sort=lifetime_value&order=desc")
            await shoot(page, "customers")
        if wanted("customer"):
            # The top customer: a long history makes the page worth looking at.
            await page.goto("/customers?sort=lifetime_value&order=desc")
            await page.locator("table a[href^='/customers/']").first.click()
            await page.wait_for_url("**/customers/*")
            await shoot(page, "customer")
        if wanted("import"):
            # The wizard after the dry run: figures and the row-by-row report, nothing imported.
            await page.goto("/customers/import")
            await page.set_input_files(
                "input[name=file]",
                files=FilePayload(name="spring-fair.csv", mimeType="text/csv", buffer=SAMPLE_CSV),
            )
            await page.click("form[action='/customers/import'] button[type=submit]")
            await page.wait_for_selector("[data-status=previewed]", timeout=30_000)
            await shoot(page, "import", full_page=True)
        if wanted("segments"):
            await shoot_segments(page)
        if wanted("summary"):
            # The demo's draft at its last step: the quota it would use and the test send.
            await page.goto("/campaigns")
            await page.get_by_test_id("campaign-row").first.get_by_role("link").first.click()
            await page.goto(page.url.split("?")[0].rstrip("/") + "/summary")
            await shoot(page, "summary", full_page=True)
        if wanted("quota"):
            await page.goto("/quota")
            await shoot(page, "quota", full_page=True)
        if wanted("sending"):
            # The demo's draft sent from its summary (confirming the browser's dialog), and
            # its progress page once every recipient is handled. Run it last: it sends.
            await page.goto("/campaigns")
            await page.get_by_test_id("campaign-row").first.get_by_role("link").first.click()
            await page.goto(page.url.split("?")[0].rstrip("/") + "/summary")
            page.once("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
            await page.get_by_test_id("send-now").get_by_role("button").click()
            await page.wait_for_url("**/sending**")
            await page.get_by_text("Every recipient has been handled.").wait_for(timeout=120_000)
            await shoot(page, "sending", full_page=True)
        if wanted("outbox"):
            # One of the campaign's messages as the catcher got it, with the Outbox's checks:
            # the DKIM signature verified by dkimpy, RFC 8058's one-click headers.
            await page.goto("/outbox")
            await page.locator('a[href^="/outbox/"]').first.click()
            await page.locator('[data-check="dkim-verified"]').wait_for()
            await shoot(page, "outbox")
        await browser.close()


async def shoot_segments(page: Page) -> None:
    """The builder with a nested group, counted live; nothing is saved."""
    await page.goto("/segments#builder")
    builder = page.get_by_test_id("segment-builder")
    await builder.get_by_role("button", name="Add condition").click()
    await builder.get_by_role("checkbox", name="Loyal").check()
    await builder.get_by_role("button", name="Add group").click()
    nested = builder.get_by_test_id("group")
    await nested.get_by_label("How the conditions of this group combine").select_option("any")
    await nested.get_by_label("Condition", exact=True).select_option("city")
    for city in ("Berlin", "Hamburg"):
        await nested.get_by_label("City: Values").fill(city)
        await nested.get_by_label("City: Values").press("Enter")
    await nested.get_by_role("button", name="Add condition").click()
    await nested.get_by_label("Condition", exact=True).nth(1).select_option("total_spent")
    await nested.get_by_label("At least", exact=True).fill("250")
    await page.wait_for_selector("[data-role=preview][data-state=ready]")
    # From the top of the page (the predefined groups' cards) down to the end of the tree.
    await page.evaluate("window.scrollTo(0, 0)")
    tree = await builder.locator("[data-role=tree]").bounding_box()  # page coordinates at 0
    assert tree is not None
    height = tree["y"] + tree["height"] + 16
    await shoot(
        page, "segments", full_page=True, clip={"x": 0, "y": 0, "width": 1280, "height": height}
    )


if __name__ == "__main__":
    asyncio.run(
        main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000", set(sys.argv[2:]))
    )
