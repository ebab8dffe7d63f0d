"""The media library's API (upload, list) and the public route that serves the files."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import File
from litestar.status_codes import HTTP_201_CREATED

from loyalmail.auth import principal_of
from templates import media

#: Room for the multipart envelope around the largest image.
_UPLOAD_LIMIT = media.MAX_IMAGE_BYTES + 64 * 1024


class ImageOut(msgspec.Struct, kw_only=True):
    id: int
    #: Where the image is served; use it as an image block's ``src``.
    url: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    original_name: str


class ImageUpload(msgspec.Struct, kw_only=True):
    file: UploadFile


def _image_out(image: media.StoredImage) -> ImageOut:
    return ImageOut(**{name: getattr(image, name) for name in ImageOut.__struct_fields__})


class MediaApiController(Controller):
    path = "/api/media"
    tags = ["media"]

    @post("", status_code=HTTP_201_CREATED, request_max_body_size=_UPLOAD_LIMIT)
    async def upload(
        self,
        request: Request,
        data: Annotated[ImageUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> ImageOut:
        """multipart/form-data with the image in ``file``: PNG, JPEG, GIF or WebP, ≤ 5 MB."""
        content = await data.file.read(media.MAX_IMAGE_BYTES + 1)
        merchant_id = principal_of(request).merchant_id
        return _image_out(await media.store_image(merchant_id, content, data.file.filename or ""))

    @get("")
    async def list_images(self, request: Request) -> list[ImageOut]:
        return [_image_out(i) for i in await media.list_images(principal_of(request).merchant_id)]


class MediaFilesController(Controller):
    """Public: recipients' mail clients fetch the images without logging in."""

    path = "/media"
    include_in_schema = False

    @get("/{key:str}", cache=3600)
    async def serve(self, key: FromPath[str]) -> File:
        path, content_type = await media.served_file(key)
        return File(
            path=path,
            media_type=content_type,
            content_disposition_type="inline",
            headers={
                "Cache-Control": "public, max-age=31536000, immutable",
                "X-Content-Type-Options": "nosniff",
            },
        )
