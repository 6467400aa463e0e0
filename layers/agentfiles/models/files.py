from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, ConfigDict, Field

from agentfiles.models.common import CamelModel, OmitNone, RequestModel

FileStatus = Literal["pending", "ready", "rejected", "deleting"]
SHA256_HEX = r"^[0-9a-f]{64}$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _check_filename(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("filename must not contain control characters")
    return value


# The one filename rule, wherever a client names a file (an upload, an inline part): a
# filename ends up in a download's Content-Disposition, where a line break would be a header.
Filename = Annotated[str, Field(min_length=1, max_length=255), AfterValidator(_check_filename)]


class Rejection(CamelModel):
    code: str
    message: str


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
    rejection: Rejection | None = None


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
    url: str | None = Field(None, description="A short-lived download URL, present when the file is ready")
    url_expires_at: str | None = None

    @classmethod
    def of(cls, record: FileRecord, url: str | None = None, url_expires_at: str | None = None) -> FileOut:
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
            url=url,
            url_expires_at=url_expires_at,
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


class FilePage(CamelModel):
    items: list[FileOut]
    next_cursor: str | None = None
