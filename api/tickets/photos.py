"""Checking and cleaning photos of a problem: by content, never by name or declared type.

A photo is opened with Pillow (HEIC through pillow-heif), refused if it is not a JPEG, PNG or
HEIC image, too large in bytes or in pixels (decompression bombs), then re-encoded: rotated
upright, without any metadata (so no location), HEIC turned into JPEG, and given a thumbnail.
"""

import datetime as dt
import io
import warnings
from dataclasses import dataclass

from django.utils import timezone
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError
from pillow_heif import register_heif_opener

from api.core.exceptions import ServiceError

register_heif_opener()

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # a 48 Mpx phone photo is scaled down on the phone; 40 Mpx is plenty
MAX_SIDE = 2560  # stored photos are scaled down to this (phones send 4000 px and more)
THUMBNAIL_SIDE = 320
ACCEPTED_FORMATS = {"JPEG": "jpeg", "MPO": "jpeg", "PNG": "png", "HEIF": "heic"}


@dataclass(frozen=True)
class CleanPhoto:
    """A photo ready to store: its bytes, type, size, thumbnail and when it was taken."""

    content: bytes
    extension: str
    content_type: str
    width: int
    height: int
    thumbnail: bytes
    taken_at: dt.datetime | None


def _refuse(message: str, code: str = "invalid_image") -> ServiceError:
    return ServiceError(message, code=code, field="image")


def _taken_at(image: Image.Image) -> dt.datetime | None:
    try:
        exif = image.getexif()
        raw = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal) or exif.get(
            ExifTags.Base.DateTime
        )
        if not raw:
            return None
        moment = dt.datetime.strptime(str(raw).strip("\x00 "), "%Y:%m:%d %H:%M:%S")  # noqa: DTZ007
    except (ValueError, TypeError, KeyError, OSError, SyntaxError):
        return None
    # EXIF times are local times without a zone: read them as the deployment's.
    return timezone.make_aware(moment)


def clean_photo(upload) -> CleanPhoto:
    """Check an uploaded file by its content and return it re-encoded without metadata."""
    size = getattr(upload, "size", None)
    if size is None or size > MAX_PHOTO_BYTES:
        raise _refuse("A photo may weigh at most 10 MB.", "too_large")
    if size == 0:
        raise _refuse("The file is empty.")
    upload.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(upload)
            image_format = image.format
            if image_format not in ACCEPTED_FORMATS:
                raise _refuse("Send a JPEG, PNG or HEIC photo.", "unsupported_type")
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise _refuse("This image has too many pixels.", "too_large")
            taken_at = _taken_at(image)
            image.load()
            image = ImageOps.exif_transpose(image)
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise _refuse("This image has too many pixels.", "too_large") from None
        except UnidentifiedImageError:
            raise _refuse("This file is not a photo Palier can read.") from None
        except (OSError, ValueError, SyntaxError, EOFError):
            raise _refuse("This photo is damaged or incomplete.") from None
    keep_png = ACCEPTED_FORMATS[image_format] == "png"
    if keep_png:
        if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
            image = image.convert("RGBA")
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE))
    out = io.BytesIO()
    if keep_png:
        image.save(out, format="PNG", optimize=True)
    else:
        image.save(out, format="JPEG", quality=85, optimize=True)
    thumb = image.convert("RGB") if image.mode != "RGB" else image.copy()
    thumb.thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE))
    thumb_out = io.BytesIO()
    thumb.save(thumb_out, format="JPEG", quality=80)
    return CleanPhoto(
        content=out.getvalue(),
        extension="png" if keep_png else "jpg",
        content_type="image/png" if keep_png else "image/jpeg",
        width=image.width,
        height=image.height,
        thumbnail=thumb_out.getvalue(),
        taken_at=taken_at,
    )


def store_photo(photo, clean: CleanPhoto) -> None:
    """Fill a new photo row (a request's, an audit answer's) from a cleaned photo and save it
    with its image and thumbnail files."""
    from django.core.files.base import ContentFile

    photo.content_type = clean.content_type
    photo.width, photo.height = clean.width, clean.height
    photo.size = len(clean.content)
    photo.taken_at = clean.taken_at
    photo.image.save(f"photo.{clean.extension}", ContentFile(clean.content), save=False)
    photo.thumbnail.save("thumb.jpg", ContentFile(clean.thumbnail), save=False)
    photo.save(force_insert=True)
