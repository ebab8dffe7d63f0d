"""A browser form's CSRF field, read from the request body without buffering the body.

A plain HTML form (no JavaScript, no ``X-CSRF-Token`` header) carries the token as a field.
To find it the auth middleware reads only what it must: a urlencoded form whole (our forms
are small; it is capped), a multipart form only up to the end of its FIRST part, which must
be the token (every page form that uploads a file puts ``_csrf`` first). The bytes read are
handed on to the handler again (a wrapped ``receive``), so an upload handler still streams
the rest of a 100 MB file to disk instead of finding it in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, cast
from urllib.parse import parse_qsl

from litestar.exceptions import ClientException
from litestar.types import HTTPRequestEvent, Receive, ReceiveMessage
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header

from loyalmail.errors import MalformedRequest, _

if TYPE_CHECKING:  # python-multipart declares its callbacks' type for checkers only
    from python_multipart.multipart import MultipartCallbacks

#: The token field's value fits in this; a longer first part is not the token.
FIRST_PART_BYTES = 1024
#: What is read of a multipart body looking for the end of its first part (its headers and
#: the token): past this without the part's end, the form does not start with the token.
FIRST_PART_READ_LIMIT = 8 * 1024


_CALLBACKS = (
    "on_part_begin",
    "on_header_field",
    "on_header_value",
    "on_header_end",
    "on_headers_finished",
    "on_part_data",
    "on_part_end",
)


def multipart_parser(boundary: bytes, handler: object) -> MultipartParser:
    """python-multipart's streaming parser, calling those of ``handler``'s ``on_…`` methods
    it has (the auth middleware's first part, the import upload's file)."""
    callbacks = {name: getattr(handler, name) for name in _CALLBACKS if hasattr(handler, name)}
    return MultipartParser(boundary, callbacks=cast("MultipartCallbacks", callbacks))


@dataclass
class _FirstPart:
    """Callbacks of python-multipart's parser that keep the first part's name and value."""

    name: bytes = b""
    value: bytearray = field(default_factory=bytearray)
    ended: bool = False
    parts: int = 0
    _header_name: bytes = b""
    _header_value: bytes = b""

    def on_part_begin(self) -> None:
        self.parts += 1

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        if self.parts == 1:
            self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        if self.parts == 1:
            self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.parts == 1 and self._header_name.strip().lower() == b"content-disposition":
            _kind, params = parse_options_header(self._header_value)
            self.name = params.get(b"name", b"")
        self._header_name = self._header_value = b""

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.parts == 1:
            self.value += data[start : min(end, start + FIRST_PART_BYTES + 1)]

    def on_part_end(self) -> None:
        if self.parts == 1:
            self.ended = True

    @property
    def too_long(self) -> bool:
        return len(self.value) > FIRST_PART_BYTES


@dataclass
class _Read:
    """The chunks taken from ``receive`` so far, and whether the client has more."""

    chunks: list[bytes] = field(default_factory=list)
    size: int = 0
    more: bool = True

    async def next_chunk(self, receive: Receive) -> bytes:
        message = await receive()
        if message["type"] != "http.request":  # the client went away
            self.more = False
            return b""
        chunk = message.get("body", b"")
        self.chunks.append(chunk)
        self.size += len(chunk)
        self.more = bool(message.get("more_body", False))
        return chunk

    def replay(self, receive: Receive) -> Receive:
        """A ``receive`` that first answers the bytes read here, then the client's own."""
        pending: HTTPRequestEvent | None = {
            "type": "http.request",
            "body": b"".join(self.chunks),
            "more_body": self.more,
        }
        self.chunks = []

        async def replaying() -> ReceiveMessage:
            nonlocal pending
            if pending is not None:
                message, pending = pending, None
                return message
            return await receive()

        return replaying


async def form_field(
    content_type: str, receive: Receive, name: str, *, urlencoded_limit: int
) -> tuple[str, Receive]:
    """The value of the form field ``name`` ("" when the body does not carry it where it
    must be) and the ``receive`` to hand on. A multipart body whose start is malformed is a
    :class:`MalformedRequest`; a urlencoded one past ``urlencoded_limit`` bytes a 413."""
    kind, params = parse_options_header(content_type)
    read = _Read()
    if kind == b"multipart/form-data" and params.get(b"boundary"):
        value = await _first_part_field(params[b"boundary"], receive, read, name.encode())
    elif kind == b"application/x-www-form-urlencoded":
        value = await _urlencoded_field(receive, read, name, urlencoded_limit)
    else:
        return "", receive
    return value, read.replay(receive)


async def _first_part_field(boundary: bytes, receive: Receive, read: _Read, name: bytes) -> str:
    first = _FirstPart()
    parser = multipart_parser(boundary, first)
    while read.more and not first.ended and not first.too_long:
        if read.size > FIRST_PART_READ_LIMIT:
            return ""  # no small first part: not a form of ours, refused unread
        chunk = await read.next_chunk(receive)
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise MalformedRequest(_("The form data could not be read.")) from exc
    if not first.ended or first.too_long or first.name != name:
        return ""
    return first.value.decode("utf-8", "replace")


async def _urlencoded_field(receive: Receive, read: _Read, name: str, limit: int) -> str:
    while read.more:
        await read.next_chunk(receive)
        if read.size > limit:
            raise ClientException(status_code=413, detail="The form is too large.")
    body = b"".join(read.chunks).decode("utf-8", "replace")
    fields = parse_qsl(body, keep_blank_values=True)
    return next((value for key, value in fields if key == name), "")
