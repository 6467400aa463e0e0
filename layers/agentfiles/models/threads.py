from typing import Literal

from pydantic import Field

from agentfiles.models.common import CamelModel, OmitNone, RequestModel

ThreadStatus = Literal["active", "deleting"]


class ThreadRecord(CamelModel):
    """A thread row (pk `OWNER#{owner}`, sk `THREAD#{id}`)."""

    id: str
    owner: str
    title: str | None = None
    status: ThreadStatus = "active"
    created_at: str
    updated_at: str


class ThreadOut(OmitNone):
    id: str
    title: str | None = None
    status: ThreadStatus
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, record: ThreadRecord) -> "ThreadOut":
        return cls(
            id=record.id,
            title=record.title,
            status=record.status,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class CreateThreadRequest(RequestModel):
    title: str | None = Field(None, max_length=200)


class ThreadResponse(CamelModel):
    thread: ThreadOut


class ThreadPage(CamelModel):
    items: list[ThreadOut]
    next_cursor: str | None = None
