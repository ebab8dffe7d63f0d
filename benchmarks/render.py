"""Benchmark: compile a realistic ~50 KB newsletter, then personalise it per recipient.

    uv run python benchmarks/render.py            # 30 compiles, 100,000 recipients
    uv run python benchmarks/render.py --quick    # 10 compiles, 10,000 recipients

Compile = blocks → MJML (our Jinja layouts) → HTML (mjml-python) → inlined CSS (premailer)
→ a format string with slots, once per campaign and recipient language. Personalise = what
a send worker does per recipient: the five placeholders the newsletter uses (salutation,
first name, last name, city, lifetime value in the recipient's locale), four signed tokens
(click, open, unsubscribe, view), the tracked link URLs (9 links, 18 places), and the
substitution into subject, preheader, HTML and text. One process, one core, no database:
the figure is the CPU cost.

Two references are measured in the same run on the same compiled HTML: a Jinja2 template
rendering the same values (autoescaped), and the naive loop — str.replace per placeholder
and a signature per link. Targets (issue 4): compile + inline < 50 ms; personalisation ≥
30,000 recipients per second per core. The last line is one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import html
import json
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import jinja2  # noqa: E402

from benchmarks.measure import RssSampler  # noqa: E402
from campaigns.personalise import Personaliser  # noqa: E402
from templates import compiler, personal  # noqa: E402
from templates.blocks import (  # noqa: E402
    Block,
    Button,
    Columns,
    Divider,
    Heading,
    Image,
    Offer,
    Spacer,
    Text,
)
from templates.compiler import BrandFrame, Content  # noqa: E402
from tracking import tokens  # noqa: E402

COMPILE_TARGET_MS = 50.0
RECIPIENTS_TARGET = 30_000
LOREM = (
    "Our autumn collection is here: warm knitwear, soft scarves and boots for every path. "
    "As a member you collect double points on every purchase until the end of the month, "
    "and your birthday voucher is waiting in the shop. "
)


def offers(shop: str, first: int, price: str) -> Columns:
    return Columns(
        items=[
            Offer(
                title=f"Offer {n}",
                text=LOREM[:120],
                image_src=f"{shop}/img/{n}.jpg",
                image_alt=f"Offer {n}",
                price=price,
                button_label="Buy",
                href=f"{shop}/p/{n}",
            )
            for n in (first, first + 1)
        ]
    )


def newsletter() -> Content:
    """~50 KB of HTML once compiled: 9 distinct tracked links, five placeholder names."""
    shop = "https://shop.example"
    blocks: list[Block] = [
        Heading(text="{{ salutation }}, autumn is here!"),
        Text(markdown=f"Hello {{{{ first_name | there }}}}, {LOREM}[Read more]({shop}/news)"),
        Image(src=f"{shop}/img/hero.jpg", alt="Autumn collection", href=f"{shop}/autumn"),
        Text(markdown=LOREM * 2 + "\n\n- Knitwear\n- Scarves\n- **Boots**"),
        offers(shop, 1, "49,90 €"),
        Divider(),
        offers(shop, 3, "29,90 €"),
        Text(markdown="Your points so far are worth {{ lifetime_value }}. " + LOREM),
        Button(label="Visit the shop in {{ city | your town }}", href=f"{shop}/stores"),
        Spacer(height=16),
        Text(markdown=LOREM * 3),
        Text(markdown="Questions? [Write to us](mailto:service@shop.example) — {{ last_name }}"),
        Button(label="See all offers", href=f"{shop}/offers"),
    ]
    return Content(
        subject="{{ salutation }} – we have an offer for you!",
        preheader="Double points for {{ first_name | you }} until the end of the month",
        layout="offer",
        blocks=tuple(blocks),
    )


BRAND = BrandFrame(
    name="Café Müller & Söhne",
    logo_url="https://shop.example/logo.png",
    address="Hauptstraße 1, 10115 Berlin",
    opening_hours="Mo–Fr 9–18, Sa 10–16",
    contact="service@shop.example · +49 30 1234567",
    website_url="https://shop.example",
    imprint="Café Müller GmbH, Amtsgericht Berlin HRB 12345, USt-ID DE123456789",
    publisher="Anna Müller",
    copyright="2026 Café Müller GmbH",
    privacy_policy_url="https://shop.example/privacy",
    color="#8a3b12",
)

FIRST = ["Anna", "Jean", "Marko", "Ingrid", "Aino", "Ben", "Zoë", "Élodie", "Petar", "Ola"]
LAST = ["Müller", "Dupont", "Petrović", "Hansen", "Virtanen", "Smith", "O'Brien", "Lefèvre"]
LOCALES = ["de", "fr", "sr", "nb", "fi", "en", "de_AT", "fr_BE"]


def people(n: int) -> list[personal.Recipient]:
    rng = random.Random(7)
    return [
        personal.Recipient(
            email=f"person{i}@example.com",
            first_name=rng.choice(FIRST),
            last_name=rng.choice(LAST),
            gender=rng.choice(["female", "male", "diverse", ""]),
            city=rng.choice(["Berlin", "Paris", "Beograd", "Oslo", "Helsinki", ""]),
            lifetime_value=Decimal(rng.randint(0, 500_000)) / 100,
            currency="EUR",
            locale=rng.choice(LOCALES),
        )
        for i in range(n)
    ]


def timed_compiles(content: Content, repeat: int) -> dict[str, float]:
    compiler.compile_message(content, BRAND, "de", pixel=True)  # warm: imports, Jinja cache
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        compiler.compile_message(content, BRAND, "de", pixel=True)
        runs.append((time.perf_counter() - start) * 1000)
    return {"median_ms": round(statistics.median(runs), 2), "max_ms": round(max(runs), 2)}


WARM_UP_RECIPIENTS = 2_000


def personalise_rate(content: Content, recipients: list[personal.Recipient]) -> float:
    # One compiled message per recipient language, as a send would hold them.
    by_language = {
        language: Personaliser(
            compiler.compile_message(content, BRAND, language, pixel=True),
            merchant_id=1,
            campaign_id=42,
            merchant_locale="en",
            base_url="https://mail.loyalmail.example",
        )
        for language in ("en", "de", "fr", "nb", "fi", "sr")
    }
    from loyalmail.i18n import recipient_locale

    # Untimed first: the first messages fill caches (locales, signer, string interning) that
    # a send fills once; without this the 10,000 recipients of --quick read ~20 % slow.
    for number, recipient in enumerate(recipients[:WARM_UP_RECIPIENTS], start=1):
        by_language[recipient_locale(recipient.locale, "en")].message_for(number, recipient)
    start = time.perf_counter()
    size = 0
    for number, recipient in enumerate(recipients, start=1):
        personaliser = by_language[recipient_locale(recipient.locale, "en")]
        size += len(personaliser.message_for(number, recipient).html)
    elapsed = time.perf_counter() - start
    assert size > 0
    return len(recipients) / elapsed


def jinja_reference(literals: tuple[str, ...], recipients: list[personal.Recipient]) -> float:
    """The same HTML as a Jinja2 template, a ``{{ v }}`` at every slot, autoescaped."""
    source = "{{ v }}".join(f"{{% raw %}}{literal}{{% endraw %}}" for literal in literals)
    template = jinja2.Environment(autoescape=True).from_string(source)
    start = time.perf_counter()
    for recipient in recipients:
        template.render(v=recipient.first_name)
    return len(recipients) / (time.perf_counter() - start)


def naive_reference(content: Content, recipients: list[personal.Recipient]) -> float:
    """str.replace per placeholder, a fresh signature per link, per recipient."""
    message = compiler.compile_message(content, BRAND, "en", pixel=True)
    source = "".join(message.html.literals)
    links = message.links
    signer = tokens.signer("click")
    start = time.perf_counter()
    for number, recipient in enumerate(recipients, start=1):
        out = source
        for name, value in personal.values(recipient, "en").items():
            out = out.replace(f"{{{{ {name} }}}}", html.escape(value))
        for index, url in enumerate(links):
            token = signer.sign(f"1-42-{number}-{index}-{url}").decode()
            out = out.replace(url, f"https://mail.loyalmail.example/r/c/{token}", 1)
    return len(recipients) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10 compiles, 10,000 recipients")
    parser.add_argument("--compiles", type=int, default=30)
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    compiles = 10 if args.quick else args.compiles
    count = 10_000 if args.quick else args.recipients

    content = newsletter()
    with RssSampler() as sampler:
        compiled = compiler.compile_message(content, BRAND, "de", pixel=True)
        html_kb = round(len(compiled.html.template.encode()) / 1024, 1)
        compile_figures = timed_compiles(content, compiles)
        recipients = people(count)
        rate = personalise_rate(content, recipients)
        jinja_rate = jinja_reference(compiled.html.literals, recipients)
        naive_rate = naive_reference(content, recipients[: max(1000, count // 10)])
    peak_mib = round(sampler.overall / 2**20, 1)

    rows = [
        (
            "newsletter HTML (inlined)",
            f"{html_kb} KB, {len(compiled.links)} links,"
            f" {sum(1 for s in compiled.slots if s.kind == 'placeholder')} placeholder slots",
            "-",
            "-",
        ),
        (
            f"compile + inline (median of {compiles})",
            f"{compile_figures['median_ms']} ms (max {compile_figures['max_ms']})",
            f"< {COMPILE_TARGET_MS:.0f} ms",
            "yes" if compile_figures["median_ms"] < COMPILE_TARGET_MS else "MISSED",
        ),
        (
            f"personalise, tokens included ({count:,} recipients, 1 core)",
            f"{rate:,.0f} recipients/s",
            f">= {RECIPIENTS_TARGET:,}/s",
            "yes" if rate >= RECIPIENTS_TARGET else "MISSED",
        ),
        ("reference: jinja2 render of the same HTML", f"{jinja_rate:,.0f} recipients/s", "-", "-"),
        ("reference: replace + sign each link", f"{naive_rate:,.0f} recipients/s", "-", "-"),
        ("RSS (MiB)", f"peak {peak_mib}", "-", "-"),
    ]
    print(f"Render benchmark — Python {sys.version.split()[0]}")
    widths = [max(len(str(row[i])) for row in rows) for i in range(4)]
    header = ("figure", "value", "target", "ok")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    for row in (header, tuple("-" * w for w in widths), *rows):
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)))
    print(
        json.dumps(
            {
                "benchmark": "render",
                "html_kb": html_kb,
                "links": len(compiled.links),
                "compile_inline_ms": compile_figures,
                "recipients": count,
                "personalise_per_second": round(rate),
                "jinja_reference_per_second": round(jinja_rate),
                "naive_reference_per_second": round(naive_rate),
                "rss_peak_mib": peak_mib,
                "all_ok": compile_figures["median_ms"] < COMPILE_TARGET_MS
                and rate >= RECIPIENTS_TARGET,
            }
        )
    )


if __name__ == "__main__":
    main()
