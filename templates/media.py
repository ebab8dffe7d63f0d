"""The media library: images uploaded for newsletters, checked and stored under media_dir.

An upload must be a PNG, JPEG, GIF or WebP that Pillow can read, at most
:data:`MAX_IMAGE_BYTES` and :data:`MAX_PIXELS`; the type is read from the file's content,
never from its name or the browser's claim, and SVG (which can carry script) is refused.
Files get a random name and are served publicly at ``/media/<name>``: a recipient's mail
client fetches them without logging in, and nobody can guess another merchant's files.
"""

from __future__ import annotations

import io
import secrets
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from loyalmail.errors import NotFound, ValidationFailed, _
from loyalmail.settings import get_settings
from templates.tables import MediaFile

MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_PIXELS = 25_000_000
#: Pillow's format name → (content type, file extension).
FORMATS = {
    "PNG": ("image/png", "png"),
    "JPEG": ("image/jpeg", "jpg"),
    "GIF": ("image/gif", "gif"),
    "WEBP": ("image/webp", "webp"),
}


@dataclass(frozen=True, slots=True)
class StoredImage:
    id: int
    url: str
    content_type: str
    size_bytes: int
    width: int
    height: int
    original_name: str


def _inspect(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of an image Pillow can fully decode; ValidationFailed else."""
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationFailed(_("The image is larger than 5 MB."), fields={"file": "too_large"})
    if not data:
        raise ValidationFailed(_("The file is empty."), fields={"file": "empty"})
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                fmt, (width, height) = str(image.format), image.size
                if width * height > MAX_PIXELS:
                    raise ValidationFailed(
                        _("The image has too many pixels."), fields={"file": "too_many_pixels"}
                    )
                image.verify()
    except ValidationFailed:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Warning) as exc:
        raise ValidationFailed(
            _("The file is not an image we can use (PNG, JPEG, GIF or WebP)."),
            fields={"file": "not_an_image"},
        ) from exc
    if fmt not in FORMATS:
        raise ValidationFailed(
            _("The file is not an image we can use (PNG, JPEG, GIF or WebP)."),
            fields={"file": "unsupported_type"},
        )
    return fmt, width, height


def media_path(key: str) -> Path:
    return get_settings().media_dir / key


async def store_image(merchant_id: int, data: bytes, original_name: str) -> StoredImage:
    fmt, width, height = _inspect(data)
    content_type, extension = FORMATS[fmt]
    key = f"{secrets.token_urlsafe(18)}.{extension}"
    folder = get_settings().media_dir
    folder.mkdir(parents=True, exist_ok=True)
    # Write under a temporary name first: a crash never leaves a half file under a real name.
    partial = folder / f".{key}.part"
    partial.write_bytes(data)
    partial.replace(folder / key)
    try:
        rows = await MediaFile.insert(
            MediaFile(
                merchant=merchant_id,
                key=key,
                original_name=original_name[:200],
                content_type=content_type,
                size_bytes=len(data),
                width=width,
                height=height,
            )
        ).returning(MediaFile.id)
    except Exception:
        (folder / key).unlink(missing_ok=True)
        raise
    return StoredImage(
        int(rows[0]["id"]), f"/media/{key}", content_type, len(data), width, height, original_name
    )


async def list_images(merchant_id: int) -> list[StoredImage]:
    rows = (
        await MediaFile.select()
        .where(MediaFile.merchant == merchant_id)
        .order_by(MediaFile.created_at, ascending=False)
    )
    return [
        StoredImage(
            int(row["id"]),
            f"/media/{row['key']}",
            row["content_type"],
            int(row["size_bytes"]),
            int(row["width"]),
            int(row["height"]),
            row["original_name"],
        )
        for row in rows
    ]


async def served_file(key: str) -> tuple[Path, str]:
    """(path, content type) of a stored image; NotFound for anything else."""
    row = await MediaFile.select(MediaFile.content_type).where(MediaFile.key == key).first()
    path = media_path(key)
    if row is None or not path.is_file():
        raise NotFound(_("No such file."))
    return path, row["content_type"]
