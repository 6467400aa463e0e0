"""An owner's export: one ZIP of everything they have, made in the background."""

from typing import Literal

from pydantic import Field

from agentfiles.models.common import CamelModel, OmitNone

ExportStatus = Literal["pending", "ready", "failed"]


class ExportRecord(CamelModel):
    """The export row (`OWNER#{owner}`, `EXPORT#{id}`); it expires (TTL) with its ZIP."""

    id: str
    owner: str
    status: ExportStatus = "pending"
    created_at: str
    finished_at: str | None = None
    bytes: int | None = None
    error: str | None = None


class ExportOut(OmitNone):
    id: str
    status: ExportStatus
    created_at: str
    url: str | None = Field(None, description="A short-lived GET of the ZIP, minted fresh on each read")
    expires_at: str | None = Field(None, description="When `url` stops working")
    bytes: int | None = None

    @classmethod
    def of(cls, record: ExportRecord, url: str | None = None, expires_at: str | None = None) -> "ExportOut":
        return cls(
            id=record.id,
            status=record.status,
            created_at=record.created_at,
            url=url,
            expires_at=expires_at,
            bytes=record.bytes,
        )


class ExportResponse(CamelModel):
    export: ExportOut
