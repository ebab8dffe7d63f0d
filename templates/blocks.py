"""The editable blocks of a newsletter, as typed JSON, and the rules they must keep.

A campaign's content is a list of blocks, each tagged by ``type``::

    [{"type": "heading", "text": "{{ salutation }},"},
     {"type": "text", "markdown": "Our **autumn sale** starts today. [See it](https://…)"},
     {"type": "button", "label": "Shop now", "href": "https://shop.example/sale"}]

Text blocks take a small Markdown (bold, italic, links, lists, line breaks; raw HTML is
never interpreted). Links may be ``https``, ``http``, ``mailto`` and ``tel``; everything else
(``javascript:``, ``data:``, ``file:``) is refused when saved. Images are an HTTPS address,
never fetched by the server, or a file uploaded to the media library.

msgspec checks the shapes and lengths; :func:`check_blocks` checks what it cannot say
(schemes, placeholders), returning every problem with where it is.
"""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from markdown_it import MarkdownIt

from loyalmail.errors import _
from templates import placeholders

MAX_BLOCKS = 100
MAX_TEXT_CHARS = 20_000

Line = Annotated[str, msgspec.Meta(max_length=300)]
Label = Annotated[str, msgspec.Meta(min_length=1, max_length=120)]
Url = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
OptionalUrl = Annotated[str, msgspec.Meta(max_length=2_000)]
AltText = Annotated[str, msgspec.Meta(max_length=300)]
Markdown = Annotated[str, msgspec.Meta(max_length=MAX_TEXT_CHARS)]

LINK_SCHEMES = frozenset({"https", "http", "mailto", "tel"})
#: Where uploaded images are served; see templates/media.py.
MEDIA_PREFIX = "/media/"


class _Block(msgspec.Struct, kw_only=True, forbid_unknown_fields=True, tag_field="type"):
    pass


class Heading(_Block, kw_only=True, tag="heading"):
    text: Annotated[str, msgspec.Meta(min_length=1, max_length=300)]
    level: Literal[1, 2] = 1


class Text(_Block, kw_only=True, tag="text"):
    markdown: Markdown


class Image(_Block, kw_only=True, tag="image"):
    src: Url
    alt: AltText = ""
    href: OptionalUrl = ""
    #: Display width in pixels; the e-mail is 600 wide.
    width: Annotated[int, msgspec.Meta(ge=40, le=600)] = 600


class Button(_Block, kw_only=True, tag="button"):
    label: Label
    href: Url


class Offer(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One half of a two-column block: a product or an offer."""

    title: Line = ""
    text: Annotated[str, msgspec.Meta(max_length=2_000)] = ""
    image_src: OptionalUrl = ""
    image_alt: AltText = ""
    price: Annotated[str, msgspec.Meta(max_length=40)] = ""
    button_label: Annotated[str, msgspec.Meta(max_length=120)] = ""
    href: OptionalUrl = ""


class Columns(_Block, kw_only=True, tag="columns"):
    items: Annotated[list[Offer], msgspec.Meta(min_length=2, max_length=2)]


class Divider(_Block, kw_only=True, tag="divider"):
    pass


class Spacer(_Block, kw_only=True, tag="spacer"):
    height: Annotated[int, msgspec.Meta(ge=4, le=120)] = 24


Block = Heading | Text | Image | Button | Columns | Divider | Spacer
Blocks = Annotated[list[Block], msgspec.Meta(max_length=MAX_BLOCKS)]

BLOCK_TYPES = ("heading", "text", "image", "button", "columns", "divider", "spacer")

#: Our Markdown: CommonMark without raw HTML, images, code or tables.
MARKDOWN = MarkdownIt("commonmark", {"html": False, "breaks": True}).disable(
    ["image", "html_block", "html_inline", "code", "fence", "table"], ignoreInvalid=True
)
# markdown-it would quietly turn a javascript: link into text; we let every link through
# the parser so that :func:`check_blocks` sees it and refuses it with a message instead,
# and the compiler refuses any link that :func:`link_problem` does not accept.
MARKDOWN.validateLink = lambda url: True  # type: ignore[method-assign]


def link_problem(url: str, *, allow_media: bool = False) -> str | None:
    """Why ``url`` may not be used as a link or image address, or None."""
    cleaned = url.strip()
    if cleaned != url or any(ord(ch) < 32 or ch in "\x7f<>\"' " for ch in url):
        return _("The address contains spaces or control characters.")
    if allow_media and url.startswith(MEDIA_PREFIX) and "/../" not in url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return _("The address is not a valid URL.")
    if parts.scheme.lower() not in LINK_SCHEMES:
        return _("Only https, http, mailto and tel addresses are allowed.")
    if parts.scheme.lower() in {"https", "http"} and not parts.hostname:
        return _("The address has no host name.")
    return None


def image_problem(url: str) -> str | None:
    """Images are an uploaded file or an HTTPS address (mixed content breaks in webmail)."""
    if url.startswith(MEDIA_PREFIX):
        return link_problem(url, allow_media=True)
    problem = link_problem(url)
    if problem is None and urlsplit(url).scheme.lower() != "https":
        return _("Images must be uploaded or use an https address.")
    return problem


def markdown_links(text: str) -> list[str]:
    """Every link target of a Markdown text, as markdown-it resolves it."""
    found: list[str] = []
    for token in MARKDOWN.parse(text):
        for child in token.children or []:
            if child.type == "link_open":
                found.append(str(child.attrGet("href") or ""))
    return found


def _texts(block: Block) -> list[tuple[str, str]]:
    """(field, text) pairs of a block that may carry placeholders."""
    if isinstance(block, Heading):
        return [("text", block.text)]
    if isinstance(block, Text):
        return [("markdown", block.markdown)]
    if isinstance(block, Button):
        return [("label", block.label)]
    if isinstance(block, Image):
        return [("alt", block.alt)]
    if isinstance(block, Columns):
        return [
            (f"items[{i}].{name}", value)
            for i, item in enumerate(block.items)
            for name, value in (("title", item.title), ("text", item.text))
        ]
    return []


def _links(block: Block) -> list[tuple[str, str, bool]]:
    """(field, url, is_image) pairs of a block."""
    if isinstance(block, Image):
        found = [("src", block.src, True)]
        return found + ([("href", block.href, False)] if block.href else [])
    if isinstance(block, Button):
        return [("href", block.href, False)]
    if isinstance(block, Text):
        return [("markdown", url, False) for url in markdown_links(block.markdown)]
    if isinstance(block, Columns):
        found = []
        for i, item in enumerate(block.items):
            if item.image_src:
                found.append((f"items[{i}].image_src", item.image_src, True))
            if item.href:
                found.append((f"items[{i}].href", item.href, False))
        return found
    return []


def placeholder_problems(text: str) -> list[str]:
    return [
        _("Unknown placeholder “{name}” at line {line}, column {column}.").format(
            name=error.name, line=error.line, column=error.column
        )
        for error in placeholders.parse(text)[1]
    ]


def check_blocks(blocks: list[Block]) -> dict[str, str]:
    """Every problem of ``blocks``, keyed by JSON path ("blocks[2].href"); empty when fine."""
    problems: dict[str, str] = {}
    for index, block in enumerate(blocks):
        for field, text in _texts(block):
            found = placeholder_problems(text)
            if found:
                problems[f"blocks[{index}].{field}"] = found[0]
        for field, url, is_image in _links(block):
            problem = image_problem(url) if is_image else link_problem(url)
            if problem:
                problems.setdefault(f"blocks[{index}].{field}", problem)
    return problems
