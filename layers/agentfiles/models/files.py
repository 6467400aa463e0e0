import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from agentfiles.models.common import CamelModel, OmitNone, RequestModel

FileStatus = Literal["pending", "ready", "rejected", "deleting"]
# Where a file's malware scan stands (only with MALWARE_SCAN on): `scanning` until the
# scanner's result arrives, then `passed` (a rejected file says why in its rejection).
ScanState = Literal["scanning", "passed"]
SHA256_HEX = r"^[0-9a-f]{64}$"
# Line and paragraph separators: a break wherever the name is shown, though not "Cc".
_SEPARATORS = frozenset("\u2028\u2029")


def _check_filename(value: str) -> str:
    for char in value:
        category = unicodedata.category(char)
        if category == "Cc" or char in _SEPARATORS:
            raise ValueError("filename must not contain control characters")
        if category == "Cf":
            # Bidirectional and other format controls: "invoice\u202etxt.exe" shows as
            # "invoiceexe.txt".
            raise ValueError(f"filename must not contain format control characters (U+{ord(char):04X})")
    return value


# The one filename rule, wherever a client names a file (an upload, an inline part): a
# filename ends up in a download's Content-Disposition, where a line break would be a header
# and a bidirectional control would disguise the name's extension.
Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_check_filename)]


class Rejection(CamelModel):
    code: str
    message: str


# The names of what is derived from a file, each stored once at
# `keys.derived_key(owner, file_id, name)`.
THUMBNAIL = "thumbnail"  # an image's thumbnail: long side at most 256 px, no metadata
TEXT = "text"  # a document's extracted text (`agentfiles.media.documents.stored_text`)


def model_image_name(max_side: int | None, max_short_side: int | None) -> str:
    """The name of an image's copy for models of one geometry (see `catalog.Geometry`):
    upright, no metadata, fitted to `max_side` x `max_side` then `max_short_side` on its
    short side (0 for no bound)."""
    return f"model-{max_side or 0}x{max_short_side or 0}"


class DerivedObject(CamelModel):
    """Something the system made from a file once, stored beside it (counted in no
    quota, deleted with the file on every path)."""

    key: str
    media_type: str
    size: int
    width: int | None = None
    height: int | None = None


class FileRecord(CamelModel):
    """A file row as stored (pk `OWNER#{owner}`, sk `FILE#{id}`)."""

    id: str
    owner: str
    filename: str
    media_type: str
    size: int
    sha256: str | None = None
    status: FileStatus
    refcount: int = 0
    created_at: str
    updated_at: str
    last_touched_at: int
    upload_expires_at: int | None = None
    s3_key: str
    # The ETag of the object the check accepted (set as the file becomes ready): the one
    # object that may stand at `s3_key` from then on.
    etag: str | None = None
    rejection: Rejection | None = None
    # Images: the upright size (after EXIF orientation). Documents: their pages (PDF
    # pages, presentation slides).
    width: int | None = None
    height: int | None = None
    pages: int | None = None
    # What was made from the file once, by name (THUMBNAIL, TEXT, model_image_name(...)).
    derived: dict[str, DerivedObject] = Field(default_factory=dict)
    # The malware scan (absent when scanning was off as the file was registered): its
    # state, the scanner's own result (`topology.SCAN_RESULTS`), and when the upload
    # check passed a file whose scan had not (the check's findings are on the row, and
    # the scan's result makes it ready).
    scan: ScanState | None = None
    scan_result: str | None = None
    checked_at: int | None = None

    def derived_keys(self) -> list[str]:
        """Every object this file's row accounts for besides the original."""
        return [item.key for item in self.derived.values()]

    @property
    def servable(self) -> bool:
        """Whether a URL may be minted for it: ready, and not waiting for its scan (a
        picture a model drew is ready at once, and scanned all the same)."""
        return self.status == "ready" and self.scan != "scanning"


class FileOut(OmitNone):
    """A file as the API shows it; `url` is minted fresh on each read."""

    id: str
    filename: str
    media_type: str
    size: int
    sha256: str | None = None
    status: FileStatus
    refcount: int
    created_at: str
    updated_at: str
    rejection: Rejection | None = None
    width: int | None = Field(None, description="Images: width in pixels, upright (after EXIF orientation)")
    height: int | None = Field(None, description="Images: height in pixels, upright")
    pages: int | None = Field(None, description="PDFs: pages; presentations: slides")
    scan: ScanState | None = Field(
        None,
        description="The malware scan, where scanning is on: `scanning` until its result arrives, then "
        "`passed`; a file is ready only once both the upload check and the scan passed it",
    )
    url: str | None = Field(None, description="A short-lived download URL, present when the file is ready")
    url_expires_at: str | None = None
    thumbnail_url: str | None = Field(
        None, description="Images: a short-lived URL of a small thumbnail (long side at most 256 px)"
    )

    @classmethod
    def of(
        cls,
        record: FileRecord,
        url: str | None = None,
        url_expires_at: str | None = None,
        thumbnail_url: str | None = None,
    ) -> "FileOut":
        return cls(
            id=record.id,
            filename=record.filename,
            media_type=record.media_type,
            size=record.size,
            sha256=record.sha256,
            status=record.status,
            refcount=record.refcount,
            created_at=record.created_at,
            updated_at=record.updated_at,
            rejection=record.rejection,
            width=record.width,
            height=record.height,
            pages=record.pages,
            scan=record.scan,
            url=url,
            url_expires_at=url_expires_at,
            thumbnail_url=thumbnail_url,
        )


class UploadRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "filename": "notes.txt",
                    "mediaType": "text/plain",
                    "size": 5,
                    "sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                }
            ]
        }
    )

    filename: Filename
    media_type: str = Field(min_length=3, max_length=255, examples=["image/png"])
    size: int = Field(gt=0, description="Exact size in bytes; the upload is rejected if the object differs")
    sha256: str | None = Field(
        None, pattern=SHA256_HEX, description="Lower-case hex SHA-256 of the content; enables dedup"
    )


class SmallUploadRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"filename": "notes.txt", "mediaType": "text/plain", "data": "aGVsbG8="}]
        }
    )

    filename: Filename
    media_type: str = Field(min_length=3, max_length=255, examples=["text/plain"])
    data: str = Field(min_length=1, description="Base64 of the content (standard or URL-safe alphabet)")


class UploadTicket(CamelModel):
    url: str
    method: Literal["PUT"] = "PUT"
    headers: dict[str, str] = Field(description="Send exactly these headers with the PUT")
    expires_at: str


class UploadResponse(CamelModel):
    file: FileOut
    upload: UploadTicket | None = None
    deduplicated: bool = False


class FileResponse(CamelModel):
    file: FileOut


class FileUrl(CamelModel):
    """A download URL of a ready file, minted now."""

    url: str
    url_expires_at: str
    thumbnail_url: str | None = None


class FileUrlResponse(CamelModel):
    file_url: FileUrl


class FilePage(CamelModel):
    items: list[FileOut]
    next_cursor: str | None = None
