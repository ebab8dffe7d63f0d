"""A compiled message and the cheap per-recipient substitution into it.

Compiling (:mod:`templates.compiler`) leaves, for each part of a message (subject,
preheader, HTML, text), the literal text split at its slots. A slot is a placeholder, one of
the campaign's links, or one of the recipient's own URLs (unsubscribe, view in browser,
open pixel). Per recipient only this runs: work out the slot values once, escape those a
part uses for its context, interleave them with the literals and join — no parsing, no
template engine. (``str.format`` on a 50 KB template re-parses it for every call: ~30 µs
a part, more than all the rest together.)

Escaping is per context: HTML-escaped in the HTML part (a first name ``<b>`` stays text),
as written in the text part, and with every control character turned into a space in the
subject, so no value can ever start a new header line.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

#: Recipient URLs every message has a slot for.
SPECIAL_URLS = ("unsubscribe_url", "view_url", "pixel_url")

#: What may never stand in a header line: a value of these would start a new header.
CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]+")
_HTML_SPECIAL = re.compile(r"[&<>\"']")


@dataclass(frozen=True, slots=True)
class Slot:
    """``kind`` is "placeholder" (``key`` its name), "link" (``key`` the link's index as
    text) or "url" (``key`` one of :data:`SPECIAL_URLS`)."""

    kind: str
    key: str
    fallback: str = ""
    #: A "link" slot's index into the campaign's links.
    link: int = -1


@dataclass(frozen=True, slots=True)
class Part:
    """One part of a message: ``literals[0] + value(slot_ids[0]) + literals[1] + …``."""

    #: One more than there are slots.
    literals: tuple[str, ...]
    #: Index into :attr:`CompiledMessage.slots` of each slot, in order.
    slot_ids: tuple[int, ...]

    @property
    def template(self) -> str:
        """The part with its slots shown as ``{}`` (for size figures and debugging)."""
        return "{}".join(self.literals)


@dataclass(frozen=True, slots=True)
class CompiledMessage:
    language: str
    subject: Part
    preheader: Part
    html: Part
    text: Part
    slots: tuple[Slot, ...]
    #: The campaign's links in order; a "link" slot's key indexes this.
    links: tuple[str, ...]
    #: Which slots are placeholders (worked out once; render needs it per recipient).
    placeholder_ids: tuple[int, ...] = ()
    #: Per slot kind, what filling it needs: worked out once, so the per-recipient loop does
    #: no dispatch on kinds. (slot index, name, fallback) / (slot index, link) / (index, key).
    placeholder_plan: tuple[tuple[int, str, str], ...] = ()
    link_plan: tuple[tuple[int, int], ...] = ()
    url_plan: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        kinds: dict[str, list[int]] = {"placeholder": [], "link": [], "url": []}
        for index, slot in enumerate(self.slots):
            kinds[slot.kind].append(index)
        slots = self.slots
        object.__setattr__(self, "placeholder_ids", tuple(kinds["placeholder"]))
        object.__setattr__(
            self,
            "placeholder_plan",
            tuple((i, slots[i].key, slots[i].fallback) for i in kinds["placeholder"]),
        )
        object.__setattr__(self, "link_plan", tuple((i, slots[i].link) for i in kinds["link"]))
        object.__setattr__(self, "url_plan", tuple((i, slots[i].key) for i in kinds["url"]))


def header_safe(value: str) -> str:
    return CONTROL_CHARS.sub(" ", value)


def html_safe(value: str) -> str:
    # Most values (our URLs, most names) have nothing to escape; the search is cheaper.
    return html.escape(value) if _HTML_SPECIAL.search(value) else value


@dataclass(frozen=True, slots=True)
class RenderedMessage:
    subject: str
    preheader: str
    html: str
    text: str


def slot_values(
    message: CompiledMessage,
    placeholder_values: Mapping[str, str],
    defaults: Mapping[str, str],
    link_urls: Sequence[str],
    urls: Mapping[str, str],
) -> list[str]:
    """The raw (unescaped) value of every slot for one recipient."""
    values = [""] * len(message.slots)
    for index, name, fallback in message.placeholder_plan:
        values[index] = placeholder_values.get(name) or fallback or defaults.get(name, "")
    for index, link in message.link_plan:
        values[index] = link_urls[link]
    for index, key in message.url_plan:
        values[index] = urls.get(key, "")
    return values


@dataclass(frozen=True, slots=True)
class SlotValues:
    """One recipient's slot values: ``raw`` for the subject and the text part, ``escaped``
    (HTML-escaped) for the HTML part."""

    raw: list[str]
    escaped: list[str]


def recipient_values(
    message: CompiledMessage,
    placeholder_values: Mapping[str, str],
    *,
    defaults: Mapping[str, str] | None = None,
    link_urls: Sequence[str] | None = None,
    urls: Mapping[str, str] | None = None,
    trusted_urls: bool = False,
) -> SlotValues:
    """The slot values for one recipient. ``link_urls`` replace the campaign's links (tracked
    redirects when sending); by default the links go where the marketer pointed them.
    ``trusted_urls``: the link and URL values need no HTML escaping (we built them)."""
    raw = slot_values(
        message,
        placeholder_values,
        defaults or {},
        message.links if link_urls is None else link_urls,
        urls or {},
    )
    if trusted_urls:
        escaped = raw.copy()
        for index in message.placeholder_ids:
            escaped[index] = html_safe(raw[index])
    else:
        escaped = [html_safe(value) for value in raw]
    return SlotValues(raw, escaped)


def subject_of(message: CompiledMessage, values: SlotValues) -> str:
    return fill(message.subject, values.raw, header_safe)


def rendered_with(message: CompiledMessage, values: SlotValues) -> RenderedMessage:
    """The message for one recipient, from :func:`recipient_values`."""
    return RenderedMessage(
        subject=subject_of(message, values),
        preheader=fill(message.preheader, values.raw, header_safe),
        html=fill(message.html, values.escaped),
        text=fill(message.text, values.raw),
    )


def fill(part: Part, values: list[str], escape: Callable[[str], str] | None = None) -> str:
    """``part`` with ``values`` (indexed by slot) in its slots."""
    pieces: list[str] = [""] * (2 * len(part.slot_ids) + 1)
    pieces[0::2] = part.literals
    if escape is None:
        pieces[1::2] = [values[i] for i in part.slot_ids]
    else:
        pieces[1::2] = [escape(values[i]) for i in part.slot_ids]
    return "".join(pieces)
