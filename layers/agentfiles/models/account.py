"""The caller's account: the erasure of everything they have, and its record."""

from typing import Literal

from pydantic import Field

from agentfiles.models.common import CamelModel, OmitNone

ErasureStatus = Literal["pending", "done"]
ErasurePhase = Literal["connections", "threads", "objects", "rows", "verify"]


class ErasureCounts(CamelModel):
    """What an erasure removed: counts only, no content (the operator's audit record)."""

    connections: int = 0
    threads: int = 0
    thread_rows: int = Field(0, description="Messages, deltas, idempotency keys and subscriptions")
    objects: int = Field(0, description="Originals, derivatives, thumbnails, extracted text, exports")
    rows: int = Field(0, description="Files, hashes, usage, quotas, rate windows and other owner rows")


class ErasureRecord(CamelModel):
    """The erasure row (`OWNER#{owner}`, `ERASURE`): the one row an erasure keeps."""

    owner: str
    status: ErasureStatus = "pending"
    phase: ErasurePhase = "connections"
    requested_by: Literal["owner", "operator"] = "owner"
    requested_at: str
    # Writes that began before this moment may still land; the erasure looks again after
    # they can no longer be running (ERASURE_SETTLE_SECONDS).
    fence_ms: int
    pass_started_ms: int
    pass_removed: int = 0
    passes: int = 1
    counts: ErasureCounts = ErasureCounts()
    finished_at: str | None = None


class ErasureOut(OmitNone):
    status: ErasureStatus
    phase: ErasurePhase | None = Field(None, description="Where a pending erasure is")
    requested_at: str
    finished_at: str | None = None
    counts: ErasureCounts

    @classmethod
    def of(cls, record: ErasureRecord) -> "ErasureOut":
        return cls(
            status=record.status,
            phase=record.phase if record.status == "pending" else None,
            requested_at=record.requested_at,
            finished_at=record.finished_at,
            counts=record.counts,
        )


class ErasureResponse(CamelModel):
    erasure: ErasureOut


class AccountOut(OmitNone):
    owner: str
    erasure: ErasureOut | None = Field(None, description="The latest erasure of this account, if any")


class AccountResponse(CamelModel):
    account: AccountOut
