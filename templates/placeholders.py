"""The placeholder language: ``{{ name }}`` or ``{{ name | fallback }}``, data only.

There are no expressions, filters, loops, attribute access or calls: a placeholder is one
name from :data:`PLACEHOLDERS` and, optionally, a literal fallback used when the
recipient's value is empty. So nothing a merchant writes can run code or read the server
(the class of listmonk GHSA-jc7g-x28f-3v3h and the Jinja sandbox escapes).

What is *not* a placeholder stays text, literally: ``{{ ''.__class__ }}`` or ``{% for %}`` are
not names, so they come out as written. A well-formed name that we do not know
(``{{ frist_name }}``, ``{{ env }}``) is an error reported with where it is, because it is
almost always a typo the marketer wants to hear about before sending.

Values are substituted in one pass (see :mod:`templates.message`), so a recipient whose
first name is ``{{ last_name }}`` gets exactly that text, never a second expansion.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from loyalmail.errors import _

#: Every placeholder a merchant may use, with the label the composer shows.
PLACEHOLDERS: dict[str, str] = {
    "salutation": _("Salutation (e.g. “Dear Ms Smith”)"),
    "first_name": _("First name"),
    "last_name": _("Last name"),
    "full_name": _("Full name"),
    "email": _("E-mail address"),
    "city": _("City"),
    "birthday": _("Birthday (day and month)"),
    "lifetime_value": _("Lifetime value"),
}

MAX_FALLBACK_CHARS = 200

# {{ anything-without-braces }}: the inside is then checked for "name" or "name | fallback".
_BRACES = re.compile(r"\{\{([^{}]*)\}\}")
_NAME = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\|(.*))?\Z", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Placeholder:
    name: str
    fallback: str


@dataclass(frozen=True, slots=True)
class PlaceholderError:
    """An unknown placeholder, with where it is: 1-based line and column in its text."""

    name: str
    line: int
    column: int


Piece = str | Placeholder


def parse(text: str) -> tuple[list[Piece], list[PlaceholderError]]:
    """Split ``text`` into literal strings and placeholders; unknown names are errors."""
    pieces: list[Piece] = []
    errors: list[PlaceholderError] = []
    position = 0
    for match in _BRACES.finditer(text):
        inner = _NAME.match(match.group(1))
        if inner is None:
            continue  # not a name: literal text, e.g. {{ ''.__class__ }}
        name = inner.group(1)
        if name not in PLACEHOLDERS:
            line = text.count("\n", 0, match.start()) + 1
            column = match.start() - (text.rfind("\n", 0, match.start()) + 1) + 1
            errors.append(PlaceholderError(name, line, column))
            continue
        if match.start() > position:
            pieces.append(text[position : match.start()])
        fallback = (inner.group(2) or "").strip()[:MAX_FALLBACK_CHARS]
        pieces.append(Placeholder(name, fallback))
        position = match.end()
    if position < len(text):
        pieces.append(text[position:])
    return pieces, errors


def used_names(text: str) -> set[str]:
    return {piece.name for piece in parse(text)[0] if isinstance(piece, Placeholder)}
