"""Parts encoded once per campaign and filled per recipient decode to exactly the rendered
text, with every line within RFC 2045's 76 characters and CRLF line ends only."""

from __future__ import annotations

import quopri

from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.domains.signing import relaxed_body
from campaigns.sending.qp import MAX_LINE, EncodedPart, encode, encode_piece, is_relaxed
from templates.message import Part, fill

#: Text that exercises quoted-printable: "=", spaces and tabs at line ends, leading dots,
#: all kinds of line ends, non-ASCII (multi-byte escapes), long runs without a space.
awkward = st.sampled_from(list("ab =.\t\r\n-äé€😀") + ["=3D", "x" * 40, " \n", "\r\n.", "  "])
words = st.lists(awkward, min_size=0, max_size=40).map("".join)


def crlf_only(encoded: bytes) -> bool:
    return encoded.count(b"\n") == encoded.count(b"\r\n") == encoded.count(b"\r")


def lines_fit(encoded: bytes) -> bool:
    return all(len(line) <= MAX_LINE for line in encoded.split(b"\r\n"))


def decoded(encoded: bytes) -> str:
    return quopri.decodestring(encoded).decode("utf-8")


def as_crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


@settings(max_examples=300, deadline=None)
@given(literals=st.lists(words, min_size=1, max_size=6), data=st.data())
def test_a_filled_part_decodes_to_the_rendered_text(
    literals: list[str], data: st.DataObject
) -> None:
    slots = len(literals) - 1
    # Slots may repeat (one value used twice) and come in any order.
    slot_ids = tuple(data.draw(st.integers(0, 3)) for _ in range(slots))
    values = data.draw(st.lists(words, min_size=4, max_size=4))
    part = Part(tuple(literals), slot_ids)

    encoded, relaxed = EncodedPart.of(part).fill(values)

    # Each literal and value has its line ends made CRLF on its own (a CR that ends one and an
    # LF that starts the next are two line ends): the same as filling in normalised pieces.
    normalised = Part(tuple(map(as_crlf, literals)), slot_ids)
    assert decoded(encoded) == fill(normalised, [as_crlf(value) for value in values])
    assert crlf_only(encoded) and lines_fit(encoded)
    assert encoded.isascii()
    # The flag that lets the DKIM signer skip its whitespace search is never wrong.
    assert relaxed == is_relaxed(encoded)
    assert relaxed_body(encoded, relaxed) == relaxed_body(encoded)


@settings(max_examples=200, deadline=None)
@given(text=words)
def test_a_piece_leaves_room_for_the_soft_break_after_it(text: str) -> None:
    piece = encode_piece(text)
    assert len(piece.rsplit(b"\r\n", 1)[-1]) < MAX_LINE
    assert decoded(piece + b"=\r\n") == as_crlf(text)
    assert crlf_only(piece) and lines_fit(piece)


def test_escapes_are_never_cut_at_the_seam() -> None:
    # 25 "ä" are 25 escapes of six characters: the 76th character falls inside one.
    text = "ä" * 25
    piece = encode_piece(text)
    first, rest = piece.split(b"=\r\n", 1)
    assert len(first) < MAX_LINE and first[-3:-2] == b"="  # a whole escape ends the line
    assert decoded(piece) == text and rest


def test_a_whole_text_without_line_ends_still_breaks_with_crlf() -> None:
    encoded = encode("y" * 200)
    assert encoded.count(b"=\r\n") == 2 and b"\n" not in encoded.replace(b"\r\n", b"")
