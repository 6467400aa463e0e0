"""What a file really is, from its first bytes, checked against what it claims to be."""

from __future__ import annotations

from agentfiles.media import images

# Every image type the upload check decodes (HEIC/HEIF from phones, AVIF, TIFF, BMP
# included); a model is given each as a copy in JPEG, PNG or WebP (`media.images`).
IMAGE_TYPES = images.IMAGE_TYPES
TEXT_TYPES = frozenset({"text/plain", "text/markdown", "text/csv", "application/json"})
PDF = "application/pdf"
# Word, Excel and PowerPoint files (`agentfiles.media.documents` reads them): zip packages,
# which their first bytes show only as a zip; which one it is, the check's full read tells.
OFFICE_TYPES = frozenset(
    {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    }
)
DOCUMENT_TYPES = OFFICE_TYPES | {PDF}
ZIP = "application/zip"
_ALIASES = {
    "image/jpg": "image/jpeg",
    "image/heic-sequence": "image/heic",
    "image/heif-sequence": "image/heif",
    "text/x-markdown": "text/markdown",
    "application/x-pdf": PDF,
}
TEXT = "text"  # the sniffed kind shared by every UTF-8 text type


def normalize_media_type(media_type: str) -> str:
    base = media_type.split(";", 1)[0].strip().lower()
    return _ALIASES.get(base, base)


def sniff(prefix: bytes, complete: bool) -> str | None:
    """The media type the bytes show, `TEXT` for UTF-8 text, or None.

    `complete` says whether `prefix` is the whole content; when it is not, a
    multi-byte character cut at the end of the prefix is not an error.
    """
    if image := images.sniff_image(prefix):
        return image
    if prefix.startswith(b"%PDF-"):
        return PDF
    if prefix.startswith(b"PK\x03\x04"):
        return ZIP
    if _is_utf8_text(prefix, complete):
        return TEXT
    return None


def _is_utf8_text(data: bytes, complete: bool) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError as error:
        # A character split by the end of a partial read is fine; anything else is not.
        return not complete and error.start >= len(data) - 3 and error.reason == "unexpected end of data"


def matches(declared: str, sniffed: str | None) -> bool:
    if sniffed is None:
        return False
    if sniffed == TEXT:
        return declared in TEXT_TYPES
    if sniffed == ZIP:
        return declared in OFFICE_TYPES
    if {declared, sniffed} == {"image/heic", "image/heif"}:
        # HEIF is the container, HEIC its HEVC flavour: a phone's photo may be declared either.
        return True
    return declared == sniffed


def describe(sniffed: str | None) -> str:
    if sniffed is None:
        return "unrecognised binary data"
    if sniffed == ZIP:
        return "a zip archive"
    return "UTF-8 text" if sniffed == TEXT else sniffed
