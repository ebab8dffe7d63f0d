"""Compile a campaign once per recipient language: blocks → MJML → HTML → inlined CSS → a
:class:`~templates.message.CompiledMessage` with placeholder and link slots.

How the slots survive the pipeline: before MJML, every placeholder and link is replaced by
a marker made of letters and digits around a random nonce (``X<nonce>S12Q``; links as
``https://lm.invalid/X<nonce>S12Q``). MJML, Markdown and premailer leave such text alone,
and a merchant cannot guess the nonce to forge one. After inlining, one regular expression
finds the markers and turns the HTML into a format string. The text part is built from the
same blocks, not scraped from the HTML.

Everything the merchant wrote reaches MJML as escaped text (Jinja autoescape); Markdown is
rendered without raw HTML. Problems (an unknown placeholder, a refused link, MJML the
compiler rejects) raise :class:`RenderFailed` naming where they are.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import msgspec
import premailer
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from markdown_it.token import Token
from markupsafe import Markup
from mjml import mjml2html

from loyalmail.errors import ValidationFailed, _
from loyalmail.i18n import email_gettext
from templates import placeholders
from templates.blocks import (
    MARKDOWN,
    Block,
    Button,
    Columns,
    Divider,
    Heading,
    Image,
    Spacer,
    Text,
    check_blocks,
    placeholder_problems,
)
from templates.layouts import LAYOUTS
from templates.message import CONTROL_CHARS, SPECIAL_URLS, CompiledMessage, Part, Slot

LAYOUT_DIR = Path(__file__).resolve().parent / "layouts"
MARKER_HOST = "https://lm.invalid/"


class RenderFailed(ValidationFailed):
    """The campaign cannot be rendered; ``fields`` says where (``subject``, ``blocks[3].href``)."""


@dataclass(frozen=True, slots=True)
class BrandFrame:
    """What the locked frame shows, from the merchant's brand profile."""

    name: str
    logo_url: str = ""
    address: str = ""
    opening_hours: str = ""
    contact: str = ""
    website_url: str = ""
    imprint: str = ""
    publisher: str = ""
    copyright: str = ""
    privacy_policy_url: str = ""
    color: str = "#1f6feb"

    @property
    def on_color(self) -> str:
        """Black or white, whichever reads better on the brand colour."""
        red, green, blue = (int(self.color[i : i + 2], 16) for i in (1, 3, 5))
        return "#000000" if (0.299 * red + 0.587 * green + 0.114 * blue) > 150 else "#ffffff"

    @property
    def website_label(self) -> str:
        return re.sub(r"^https?://(www\.)?", "", self.website_url).rstrip("/")


@dataclass(frozen=True, slots=True)
class Content:
    """What a campaign says: the parts a marketer edits."""

    subject: str
    preheader: str
    layout: str
    blocks: tuple[Block, ...]


@dataclass
class _Slots:
    """Collects the slots while the MJML is written; markers carry the slot's index."""

    nonce: str = field(default_factory=lambda: secrets.token_hex(6))
    slots: list[Slot] = field(default_factory=list)
    links: list[str] = field(default_factory=list)

    def _marker(self, slot: Slot) -> str:
        self.slots.append(slot)
        return f"X{self.nonce}S{len(self.slots) - 1}Q"

    def placeholder(self, item: placeholders.Placeholder) -> str:
        return self._marker(Slot("placeholder", item.name, item.fallback))

    def link(self, url: str) -> str:
        # One number per distinct URL: the HTML and the text part's "Shop now" are one link
        # in the reports.
        if url not in self.links:
            self.links.append(url)
        index = self.links.index(url)
        return MARKER_HOST + self._marker(Slot("link", str(index), link=index))

    def url(self, name: str) -> str:
        return MARKER_HOST + self._marker(Slot("url", name))

    def text(self, value: str) -> str:
        """``value`` with its placeholders turned into markers (checked before compiling)."""
        pieces, _errors = placeholders.parse(value)
        return "".join(
            piece if isinstance(piece, str) else self.placeholder(piece) for piece in pieces
        )

    def split(self, rendered: str) -> Part:
        """``rendered`` cut at its markers: the literals between them and the slots."""
        pattern = re.compile(rf"(?:{re.escape(MARKER_HOST)})?X{self.nonce}S(\d+)Q")
        literals: list[str] = []
        slot_ids: list[int] = []
        position = 0
        for match in pattern.finditer(rendered):
            literals.append(rendered[position : match.start()])
            slot_ids.append(int(match.group(1)))
            position = match.end()
        literals.append(rendered[position:])
        return Part(tuple(literals), tuple(slot_ids))


@cache
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(LAYOUT_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def fixed_texts(language: str, shop: str) -> dict[str, str]:
    def t(message: str) -> str:
        return email_gettext(language, message)

    return {
        "view_in_browser": t("View in browser"),
        "unsubscribe": t("Unsubscribe"),
        "privacy_policy": t("Privacy policy"),
        "opening_hours": t("Opening hours"),
        "publisher": t("Publisher"),
        "why": t("You receive this e-mail because you subscribed to news from %(shop)s.")
        % {"shop": shop},
    }


def problems(content: Content) -> dict[str, str]:
    """Every problem that would stop ``content`` from rendering, keyed by where it is."""
    found: dict[str, str] = {}
    if content.layout not in LAYOUTS:
        found["layout"] = _("Unknown layout.")
    for name, value in (("subject", content.subject), ("preheader", content.preheader)):
        if CONTROL_CHARS.search(value):
            found[name] = _("Must be a single line without control characters.")
        listed = placeholder_problems(value)
        if listed:
            found[name] = listed[0]
    found.update(check_blocks(list(content.blocks)))
    return found


# --- Markdown ---------------------------------------------------------------------------------


def _markdown_tokens(source: str, slots: _Slots) -> list[Token]:
    tokens = MARKDOWN.parse(slots.text(source))
    for token in tokens:
        for child in token.children or []:
            if child.type == "link_open":
                child.attrSet("href", slots.link(str(child.attrGet("href") or "")))
    return tokens


def markdown_html(source: str, slots: _Slots) -> Markup:
    tokens = _markdown_tokens(source, slots)
    return Markup(MARKDOWN.renderer.render(tokens, MARKDOWN.options, {}))  # noqa: S704


def markdown_text(source: str, slots: _Slots) -> str:
    """Plain text of a Markdown source: paragraphs, "- " list items, "label (url)" links."""
    lines: list[str] = []
    current: list[str] = []
    bullet: list[str] = []
    for token in _markdown_tokens(source, slots):
        if token.type == "bullet_list_open":
            bullet.append("- ")
        elif token.type == "ordered_list_open":
            bullet.append("1. ")
        elif token.type in {"bullet_list_close", "ordered_list_close"}:
            bullet.pop()
        elif token.type == "inline":
            href = ""
            for child in token.children or []:
                if child.type in {"text", "code_inline"}:
                    current.append(child.content)
                elif child.type in {"softbreak", "hardbreak"}:
                    current.append("\n")
                elif child.type == "link_open":
                    href = str(child.attrGet("href") or "")
                elif child.type == "link_close" and href:
                    current.append(f" ({href})")
                    href = ""
            prefix = bullet[-1] if bullet else ""
            lines.append(prefix + "".join(current))
            current = []
        elif token.type in {"paragraph_close", "heading_close"} and not bullet:
            lines.append("")
    return "\n".join(lines).strip() + "\n\n"


# --- the HTML part ----------------------------------------------------------------------------


def _block_values(block: Block, slots: _Slots) -> dict[str, Any]:
    """A block's values for its MJML macro, with placeholders and links as markers."""
    if isinstance(block, Heading):
        return {"text": slots.text(block.text), "level": block.level}
    if isinstance(block, Text):
        return {"html": markdown_html(block.markdown, slots)}
    if isinstance(block, Image):
        return {
            "src": block.src,
            "alt": slots.text(block.alt),
            "href": slots.link(block.href) if block.href else "",
            "width": block.width,
        }
    if isinstance(block, Button):
        return {"label": slots.text(block.label), "href": slots.link(block.href)}
    if isinstance(block, Columns):
        items = [
            {
                "title": slots.text(item.title),
                "text": slots.text(item.text),
                "image_src": item.image_src,
                "image_alt": item.image_alt,
                "price": item.price,
                "button_label": item.button_label,
                "href": slots.link(item.href) if item.href else "",
            }
            for item in block.items
        ]
        return {"items": items}
    if isinstance(block, Spacer):
        return {"height": block.height}
    return {}


def _block_type(block: Block) -> str:
    return type(block).__struct_config__.tag  # type: ignore[return-value]


def _content_mjml(blocks: tuple[Block, ...], brand: BrandFrame, slots: _Slots) -> Markup:
    macros = _environment().get_template("_blocks.mjml.jinja").make_module({"brand": brand})
    parts = [
        str(getattr(macros, _block_type(block))(_block_values(block, slots))) for block in blocks
    ]
    return Markup("\n".join(parts))  # noqa: S704 - made of our macros' escaped output


#: Where whitespace is kept as it is; everywhere else a run of it renders as one space.
_KEEPS_WHITESPACE = re.compile(r"(<pre\b.*?</pre>|<textarea\b.*?</textarea>)", re.S | re.I)
_INDENTATION = re.compile(r"\n[ \t]+")
_WHITESPACE_RUN = re.compile(r"[ \t]{2,}|\t")


def collapse_whitespace(html: str) -> str:
    """The compiled HTML without its indentation and runs of spaces, which a browser or mail
    client renders as one space anyway. Done once per compile, it spares every message
    bytes on the wire and the DKIM signer its whitespace rewrite (RFC 6376's relaxed body
    form must collapse every run: ~2 ms per 50 KB message when they are there)."""
    parts = _KEEPS_WHITESPACE.split(html)
    return "".join(
        part if index % 2 else _WHITESPACE_RUN.sub(" ", _INDENTATION.sub("\n", part))
        for index, part in enumerate(parts)
    )


def _inline(compiled_html: str) -> str:
    # No network: premailer must never fetch a stylesheet named in the HTML.
    inliner = premailer.Premailer(
        compiled_html,
        allow_network=False,
        keep_style_tags=True,
        remove_classes=False,
        strip_important=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
    )
    return str(inliner.transform(pretty_print=False))


def compile_message(
    content: Content, brand: BrandFrame, language: str, *, base_url: str = "", pixel: bool = False
) -> CompiledMessage:
    """Compile ``content`` for recipients of ``language``. Raises :class:`RenderFailed`.

    ``base_url`` makes uploaded images (``/media/…``) absolute, as a mail client needs.
    ``pixel`` adds the open-tracking image (sent messages only, not previews or the web
    version).
    """
    found = problems(content)
    if found:
        raise RenderFailed(_("The newsletter cannot be rendered yet."), fields=found)
    slots = _Slots()
    subject = slots.split(slots.text(content.subject))
    preheader_text = slots.text(content.preheader)
    preheader = slots.split(preheader_text)
    content = _absolute_media(content, base_url)
    special = {name: slots.url(name) for name in SPECIAL_URLS}
    mjml_source = (
        _environment()
        .get_template(f"{content.layout}.mjml.jinja")
        .render(
            language=language,
            subject=slots.text(content.subject),
            preheader=preheader_text,
            brand=_absolute_brand(brand, base_url),
            texts=fixed_texts(language, brand.name),
            content=_content_mjml(content.blocks, brand, slots),
            view_url=special["view_url"],
            unsubscribe_url=special["unsubscribe_url"],
            pixel_url=special["pixel_url"] if pixel else "",
        )
    )
    try:
        compiled = mjml2html(mjml_source)
    except (ValueError, RuntimeError) as exc:  # mjml-python reports parse errors so
        raise RenderFailed(
            _("The layout could not be compiled."), fields={"layout": str(exc)[:300]}
        ) from exc
    html_part = slots.split(collapse_whitespace(_inline(compiled)))
    text_part = slots.split(_text(content, brand, language, slots, special))
    return CompiledMessage(
        language=language,
        subject=subject,
        preheader=preheader,
        html=html_part,
        text=text_part,
        slots=tuple(slots.slots),
        links=tuple(slots.links),
    )


def _absolute(url: str, base_url: str) -> str:
    return base_url.rstrip("/") + url if url.startswith("/") and base_url else url


def _absolute_brand(brand: BrandFrame, base_url: str) -> BrandFrame:
    return replace(brand, logo_url=_absolute(brand.logo_url, base_url))


def _absolute_media(content: Content, base_url: str) -> Content:
    blocks: list[Block] = []
    for block in content.blocks:
        if isinstance(block, Image):
            block = msgspec.structs.replace(block, src=_absolute(block.src, base_url))
        elif isinstance(block, Columns):
            items = [
                msgspec.structs.replace(item, image_src=_absolute(item.image_src, base_url))
                for item in block.items
            ]
            block = msgspec.structs.replace(block, items=items)
        blocks.append(block)
    return Content(content.subject, content.preheader, content.layout, tuple(blocks))


# --- the text part ----------------------------------------------------------------------------


def _text(
    content: Content, brand: BrandFrame, language: str, slots: _Slots, special: dict[str, str]
) -> str:
    texts = fixed_texts(language, brand.name)
    out: list[str] = [f"{texts['view_in_browser']}: {special['view_url']}", "", brand.name, ""]
    for block in content.blocks:
        if isinstance(block, Heading):
            out += [slots.text(block.text), ""]
        elif isinstance(block, Text):
            out.append(markdown_text(block.markdown, slots).rstrip("\n") + "\n")
        elif isinstance(block, Button):
            out += [f"{slots.text(block.label)}: {slots.link(block.href)}", ""]
        elif isinstance(block, Image):
            if block.alt or block.href:
                alt = slots.text(block.alt)
                out += [f"[{alt}]" + (f" {slots.link(block.href)}" if block.href else ""), ""]
        elif isinstance(block, Columns):
            for item in block.items:
                lines = [slots.text(item.title), slots.text(item.text), item.price]
                if item.href:
                    lines.append(f"{item.button_label or item.title}: {slots.link(item.href)}")
                out += [line for line in lines if line] + [""]
        elif isinstance(block, Divider):
            out += ["-" * 40, ""]
    brand_lines = [
        brand.name,
        brand.address,
        f"{texts['opening_hours']}: {brand.opening_hours}" if brand.opening_hours else "",
        brand.contact,
        brand.website_url,
        brand.imprint,
        f"{texts['publisher']}: {brand.publisher}" if brand.publisher else "",
        f"© {brand.copyright}" if brand.copyright else "",
    ]
    out += ["-- ", *[line for line in brand_lines if line], "", texts["why"]]
    out.append(f"{texts['unsubscribe']}: {special['unsubscribe_url']}")
    if brand.privacy_policy_url:
        out.append(f"{texts['privacy_policy']}: {brand.privacy_policy_url}")
    return "\n".join(out).strip() + "\n"
