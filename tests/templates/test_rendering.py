"""Compiling and personalising: placeholders with hostile values, template-injection text,
the brand frame, the text part, salutations and locale formatting. No database needed."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from babel import Locale, numbers
from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.personalise import Personaliser
from templates import compiler, personal, placeholders
from templates.blocks import Button, Heading, Image, Text
from templates.compiler import BrandFrame, Content, RenderFailed
from templates.layouts import LAYOUTS
from templates.message import (
    CompiledMessage,
    RenderedMessage,
    recipient_values,
    rendered_with,
)
from tracking import tokens

BRAND = BrandFrame(
    name="Café Müller & Söhne",
    logo_url="https://shop.example/logo.png",
    address="Hauptstraße 1, 10115 Berlin",
    opening_hours="Mo–Fr 9–18",
    contact="service@shop.example",
    website_url="https://shop.example",
    imprint="Café Müller GmbH, HRB 12345",
    publisher="Anna Müller",
    copyright="2026 Café Müller GmbH",
    privacy_policy_url="https://shop.example/privacy",
    color="#8a3b12",
)
URLS = {"unsubscribe_url": "https://m.example/u", "view_url": "https://m.example/v"}


def render(message: CompiledMessage, values: dict[str, str], **options: Any) -> RenderedMessage:
    return rendered_with(message, recipient_values(message, values, **options))


def content(*blocks: object, subject: str = "{{ first_name }}", preheader: str = "") -> Content:
    return Content(subject=subject, preheader=preheader, layout="classic", blocks=tuple(blocks))  # type: ignore[arg-type]


@pytest.mark.parametrize("key", sorted(LAYOUTS))
def test_every_layout_carries_the_whole_brand_frame(key: str) -> None:
    layout = LAYOUTS[key]
    message = compiler.compile_message(
        Content("Hi", "Intro", key, layout.starter_blocks), BRAND, "de"
    )
    out = render(message, {"first_name": "Anna"}, urls=URLS)
    for part in (
        "Café Müller &amp; Söhne",
        "Hauptstraße 1, 10115 Berlin",
        "Mo–Fr 9–18",
        "HRB 12345",
        "Anna Müller",
        "© 2026 Café Müller GmbH",
        "https://shop.example/privacy",
        "https://shop.example/logo.png",
        'href="https://m.example/u"',
        'href="https://m.example/v"',
        "Abmelden",
        "Im Browser ansehen",
        "Datenschutzerklärung",
    ):
        assert part in out.html, part
    assert "<style" in out.html and "style=" in out.html  # media queries kept, CSS inlined
    assert "Abmelden: https://m.example/u" in out.text
    assert "<" not in out.text.replace("<b>", "")


HOSTILE = [
    "",
    "A" * 5000,
    "שלום עולם",  # right-to-left
    "<script>alert(1)</script> & \"quotes\" 'single'",
    "🎉🦄 Zoë",
    "{{ last_name }}",
    "{{ ''.__class__.__mro__ }}",
    "{% for x in range(10) %}x{% endfor %}",
    "{0} {1} %s %(x)s",
]


@pytest.mark.parametrize("value", HOSTILE)
def test_placeholder_values_escaped_in_html_literal_in_text(value: str) -> None:
    message = compiler.compile_message(
        content(Heading(text="Hi {{ first_name | friend }}!"), subject="{{ first_name }}"),
        BRAND,
        "en",
    )
    out = render(message, {"first_name": value, "last_name": "SECRET"}, urls=URLS)
    shown = value or "friend"
    assert f"Hi {shown}!" in out.text  # as written, never expanded again
    import html

    assert f"Hi {html.escape(shown)}!" in out.html
    assert "<script>" not in out.html
    assert "SECRET" not in out.html and "SECRET" not in out.text


@pytest.mark.parametrize(
    "value", ["Ann\r\nBcc: victim@example.com", "x\x00y", "a\u2028b", "=?utf-8?q?=0D=0A?=Bcc"]
)
def test_no_value_can_break_the_subject_line(value: str) -> None:
    message = compiler.compile_message(content(Heading(text="x")), BRAND, "en")
    subject = render(message, {"first_name": value}, urls=URLS).subject
    assert "\r" not in subject and "\n" not in subject and "\x00" not in subject
    assert "\u2028" not in subject


@pytest.mark.parametrize(
    "text",
    ["{{ ''.__class__ }}", "{% for x in y %}", "{{ 7*7 }}", "{{}}", "{ {first_name} }"],
)
def test_template_injection_written_by_the_merchant_comes_out_literally(text: str) -> None:
    # Headings and subjects are plain text; a text block is Markdown (``__x__`` is bold
    # there), but nothing in it is ever evaluated either.
    message = compiler.compile_message(
        content(Heading(text=text), Text(markdown=text), subject=text), BRAND, "en"
    )
    out = render(message, {}, urls=URLS)
    assert out.subject == text
    assert f"\n{text}\n" in out.text
    assert "49" not in out.text and "<class" not in out.text and "<class" not in out.html


def test_unknown_placeholders_are_reported_with_where_they_are() -> None:
    with pytest.raises(RenderFailed) as failed:
        compiler.compile_message(
            content(
                Heading(text="ok"),
                Text(markdown="line one\nDear {{ frist_name }}"),
                subject="{{ env }}",
            ),
            BRAND,
            "en",
        )
    assert failed.value.fields == {
        "subject": "Unknown placeholder “env” at line 1, column 1.",
        "blocks[1].markdown": "Unknown placeholder “frist_name” at line 2, column 6.",
    }


def test_refused_links_are_reported() -> None:
    with pytest.raises(RenderFailed) as failed:
        compiler.compile_message(
            content(
                Button(label="x", href="javascript:alert(1)"),
                Image(src="data:image/png;base64,AAAA"),
            ),
            BRAND,
            "en",
        )
    assert set(failed.value.fields) == {"blocks[0].href", "blocks[1].src"}


def test_links_are_slots_and_markdown_renders_without_raw_html() -> None:
    message = compiler.compile_message(
        content(
            Text(markdown="**Sale** <b>raw</b> [here](https://shop.example/a?x=1&y=2)"),
            Button(label="Go", href="https://shop.example/b"),
        ),
        BRAND,
        "en",
    )
    assert message.links == ("https://shop.example/a?x=1&y=2", "https://shop.example/b")
    untracked = render(message, {}, urls=URLS)
    assert 'href="https://shop.example/a?x=1&amp;y=2"' in untracked.html
    assert "<strong>Sale</strong> &lt;b&gt;raw&lt;/b&gt;" in untracked.html
    assert "here (https://shop.example/a?x=1&y=2)" in untracked.text
    tracked = render(message, {}, link_urls=["https://t/1", "https://t/2"], urls=URLS)
    assert 'href="https://t/1"' in tracked.html and "shop.example/a" not in tracked.html


def test_personaliser_tracks_every_link_with_tokens_of_their_purpose() -> None:
    message = compiler.compile_message(
        content(Button(label="Go", href="https://shop.example/b")), BRAND, "en", pixel=True
    )
    personaliser = Personaliser(message, 7, 42, "en", "https://m.example")
    out = personaliser.message_for(99, personal.Recipient(email="a@example.com"))
    click = out.html.split('href="https://m.example/r/c/')[1].split('"')[0]
    token, number = click.rsplit("/", 1)
    assert number == "0"
    assert tokens.read("click", token) == tokens.TokenData(7, 42, 99)
    assert tokens.read("unsubscribe", token) is None  # a click token cannot unsubscribe
    pixel = out.html.split("https://m.example/r/o/")[1].split(".gif")[0]
    assert tokens.read("open", pixel) == tokens.TokenData(7, 42, 99)


def test_tracked_urls_are_escaped_when_the_base_url_needs_it() -> None:
    # Our own URLs skip HTML escaping only when the base URL has nothing to escape.
    message = compiler.compile_message(
        content(Button(label="Go", href="https://shop.example/b")), BRAND, "en", pixel=True
    )
    recipient = personal.Recipient(email="a@example.com", first_name="<b>Ann</b>")
    odd = Personaliser(message, 7, 42, "en", 'https://m.example/x?a=1&b="2"')
    out = odd.message_for(99, recipient)
    assert "https://m.example/x?a=1&amp;b=&quot;2&quot;/r/c/" in out.html
    assert 'b="2"' not in out.html
    plain = Personaliser(message, 7, 42, "en", "https://m.example").message_for(99, recipient)
    assert "&lt;b&gt;Ann&lt;/b&gt;" in plain.html and "<b>Ann</b>" not in plain.html


@pytest.mark.parametrize(
    ("language", "gender", "last", "expected"),
    [
        ("de", "female", "Müller", "Sehr geehrte Frau Müller"),
        ("de", "male", "Müller", "Sehr geehrter Herr Müller"),
        ("fr", "male", "Dupont", "Cher Monsieur Dupont"),
        ("fr", "female", "Dupont", "Chère Madame Dupont"),
        ("sr", "male", "Petrović", "Poštovani gospodine Petroviću"),
        ("sr", "female", "Petrović", "Poštovana gospođo Petrović"),
        ("en", "female", "Smith", "Dear Ms Smith"),
        ("nb", "male", "Hansen", "Kjære Ola Hansen"),
        ("fi", "", "Virtanen", "Hei Ola Virtanen"),
        ("de", "diverse", "Müller", "Guten Tag Ola Müller"),
    ],
)
def test_salutations_follow_language_and_gender(
    language: str, gender: str, last: str, expected: str
) -> None:
    recipient = personal.Recipient(
        email="x@example.com", first_name="Ola", last_name=last, gender=gender, locale=language
    )
    assert personal.values(recipient, "en")["salutation"] == expected


def test_without_a_name_the_fallback_then_the_neutral_greeting() -> None:
    nobody = personal.Recipient(email="x@example.com", locale="de")
    with_fallback = compiler.compile_message(
        content(Heading(text="{{ salutation | Liebe Kundin, lieber Kunde }}")), BRAND, "de"
    )
    plain = compiler.compile_message(content(Heading(text="{{ salutation }}")), BRAND, "de")
    values = personal.values(nobody, "en")
    defaults = {"salutation": personal.neutral_salutation("de")}
    assert "Liebe Kundin, lieber Kunde" in render(with_fallback, values, defaults=defaults).text
    assert "Guten Tag" in render(plain, values, defaults=defaults).text


def test_dates_and_money_in_the_recipients_locale() -> None:
    def fmt(locale: str) -> dict[str, str]:
        return personal.values(
            personal.Recipient(
                email="x@example.com",
                birth_date=date(1990, 2, 28),
                lifetime_value=Decimal("1234.5"),
                locale=locale,
            ),
            "en",
        )

    assert (fmt("de")["birthday"], fmt("de")["lifetime_value"]) == ("28. Februar", "1.234,50\xa0€")
    assert fmt("fr")["lifetime_value"] == "1\u202f234,50\xa0€"
    assert fmt("en")["lifetime_value"] == "€1,234.50"
    assert fmt("sr")["birthday"] == "28. februar"  # Latin script


@settings(max_examples=300, deadline=None)
@given(
    amount=st.decimals(min_value=0, max_value=10**12, places=3, allow_nan=False),
    locale=st.sampled_from(
        ["en", "de", "de_AT", "de_CH", "fr", "fr_CH", "nb", "fi", "sr_Latn", "en_IN"]
    ),
    currency=st.sampled_from(["EUR", "NOK", "RSD", "JPY", "CHF", "USD"]),
)
def test_fast_money_format_equals_babel(amount: Decimal, locale: str, currency: str) -> None:
    parsed = Locale.parse(locale)
    assert personal.format_money(amount, currency, parsed) == numbers.format_currency(
        amount, currency, locale=parsed
    )


def test_placeholder_parser_keeps_non_names_as_text() -> None:
    pieces, errors = placeholders.parse("a {{ first_name | dear }} b {{ 1+1 }} {{ x.y }}")
    assert pieces[0] == "a " and pieces[1] == placeholders.Placeholder("first_name", "dear")
    assert "".join(p for p in pieces if isinstance(p, str)) == "a  b {{ 1+1 }} {{ x.y }}"
    assert errors == []
