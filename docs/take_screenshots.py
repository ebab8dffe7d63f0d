"""Take the README's screenshots from a running demo.

    uv run loyalmail demo --port 8000 &
    uv run python docs/take_screenshots.py http://127.0.0.1:8000

Uses Debian's chromium (``LOYALMAIL_CHROMIUM`` to point elsewhere), headless, 1280×800.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from playwright.async_api import FilePayload, Page, async_playwright

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


async def shoot(page: Page, name: str, full_page: bool = False) -> None:
    await page.wait_for_load_state("networkidle")
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=full_page)
    size = path.stat().st_size // 1024
    # The README's pictures should stay light for the repository.
    print(
        f"{path} {size} KB"
        + ("  <- larger than 200 KB: crop or shorten the page" if size > 200 else "")
    )


async def main(base_url: str) -> None:
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
        await shoot(page, "login")
        await page.press("input[name=password]", "Enter")
        await page.wait_for_url(f"{base_url}/")
        await shoot(page, "dashboard")
        await page.goto("/customers?sort=lifetime_value&order=desc")
        await shoot(page, "customers")
        # The top customer: a long history makes the page worth looking at.
        await page.locator("table a[href^='/customers/']").first.click()
        await page.wait_for_url("**/customers/*")
        await shoot(page, "customer")
        # The wizard after the dry run: figures and the row-by-row report, nothing imported.
        await page.goto("/customers/import")
        await page.set_input_files(
            "input[name=file]",
            files=FilePayload(name="spring-fair.csv", mimeType="text/csv", buffer=SAMPLE_CSV),
        )
        await page.click("form[action='/customers/import'] button[type=submit]")
        await page.wait_for_selector("[data-status=previewed]", timeout=30_000)
        await shoot(page, "import", full_page=True)
        await browser.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8000"))
