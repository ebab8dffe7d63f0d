"""Quoted-printable message parts encoded once per campaign, filled per recipient.

Encoding a 56 KB newsletter (HTML and text) as quoted-printable costs ~0.9 ms a message
here, a third of what building and signing one costs. Yet almost all of it is the same for
every recipient: only the slots differ (names, tracked links, the recipient's own URLs). So
the literal text between the slots is encoded once per campaign and language, and per
recipient only the slot values are encoded and joined in.

The trick that makes the pieces independent: a soft line break (``=`` CRLF, RFC 2045 §6.7
rule 5) stands between every literal and every value. It decodes to nothing, and every piece
then starts at the beginning of a line, so each can be encoded alone and no line grows past
76 characters at a seam. Decoded, the part is exactly the rendered text with CRLF line
ends (each literal and value has its line ends normalised on its own, so a CR that ends one
and an LF that starts the next are two line ends): tests/campaigns/test_qp.py checks that
against :func:`templates.message.fill` for generated values.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass

from templates.message import Part

#: Between every two pieces of a part: decodes to nothing.
SOFT_BREAK = b"=\r\n"
#: RFC 2045: encoded lines are at most 76 characters; the soft break's "=" counts.
MAX_LINE = 76


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def encode(text: str) -> bytes:
    """``text`` as quoted-printable UTF-8 with CRLF line ends, lines ≤ 76 characters."""
    return _fitted(_b2a(text), MAX_LINE)


def encode_piece(text: str) -> bytes:
    """Like :func:`encode`, with the last line short enough for a soft break to follow."""
    return _fitted(_b2a(text), MAX_LINE - 1)


def _b2a(text: str) -> bytes:
    encoded = binascii.b2a_qp(crlf(text).encode("utf-8"), istext=True)
    # binascii ends its soft breaks with CRLF only when the text has a CRLF: a piece without
    # a line end would get bare LFs.
    if b"\n" in encoded and b"\r\n" not in encoded:
        encoded = encoded.replace(b"\n", b"\r\n")
    return encoded


def _fitted(encoded: bytes, last_limit: int) -> bytes:
    """Every line within :data:`MAX_LINE` and the last within ``last_limit``: binascii lets a
    line reach 77 characters when it escapes a space before a line end."""
    lines = encoded.split(b"\r\n")
    if len(lines[-1]) <= last_limit and all(len(line) <= MAX_LINE for line in lines):
        return encoded
    fitted: list[bytes] = []
    for number, line in enumerate(lines, start=1):
        limit = last_limit if number == len(lines) else MAX_LINE
        while len(line) > limit:
            # Cut before the limit's last character (the soft break's "=" takes it), never
            # inside an "=XX" escape.
            cut = limit - 1
            while line[cut - 1 : cut] == b"=" or line[cut - 2 : cut - 1] == b"=":
                cut -= 1
            fitted.append(line[:cut] + b"=")
            line = line[cut:]
        fitted.append(line)
    return b"\r\n".join(fitted)


@dataclass(frozen=True, slots=True)
class EncodedPart:
    """A :class:`templates.message.Part` with its literals already encoded."""

    literals: tuple[bytes, ...]
    slot_ids: tuple[int, ...]
    #: No literal has what DKIM's relaxed body canonicalisation rewrites.
    relaxed: bool = False

    @classmethod
    def of(cls, part: Part) -> EncodedPart:
        literals = tuple(encode_piece(literal) for literal in part.literals)
        return cls(literals, part.slot_ids, all(map(is_relaxed, literals)))

    def fill(self, values: list[str]) -> tuple[bytes, bool]:
        """The encoded part with ``values`` (indexed by slot, escaped for this part), and
        whether it is as DKIM's relaxed canonicalisation would leave it (:func:`is_relaxed`):
        known from the literals and the short values, without searching 50 KB."""
        encoded: dict[int, bytes] = {}
        relaxed = self.relaxed
        pieces: list[bytes] = [b""] * (2 * len(self.slot_ids) + 1)
        pieces[0::2] = self.literals
        for position, slot in enumerate(self.slot_ids, start=0):
            value = encoded.get(slot)
            if value is None:
                value = encoded[slot] = encode_piece(values[slot])
                relaxed = relaxed and is_relaxed(value)
            pieces[2 * position + 1] = value
        return SOFT_BREAK.join(pieces), relaxed


def is_relaxed(encoded: bytes) -> bool:
    """Nothing in ``encoded`` that DKIM's relaxed body canonicalisation would rewrite: no
    tab, no two spaces in a row, no space before a line end. The soft breaks that join the
    pieces cannot make one: they start with "=", not with a space."""
    return b"\t" not in encoded and b"  " not in encoded and b" \r\n" not in encoded
