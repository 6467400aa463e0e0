"""Live replies: the rows a reply streams as, what the catch-up route answers, and the
frames of the WebSocket protocol (client → server actions, server → client frames)."""

from typing import Annotated, Literal

from pydantic import Field

from agentfiles.ids import ULID_PATTERN
from agentfiles.models.common import CamelModel, ErrorDetail, OmitNone, RequestModel
from agentfiles.models.exports import ExportOut
from agentfiles.models.files import FileOut
from agentfiles.models.messages import MessageOut, MessageStatus

# How a stream was ended: the reply's status, written on its last row.
StreamEnd = Literal["success", "failed", "stopped"]


class DeltaRecord(CamelModel):
    """One row of a reply's stream (sk `DELTA#{messageId}#{seq}`).

    `reset` rows start the text over (a new lease holder restarts a reply, so what an
    earlier holder streamed is superseded); an `end` row seals the stream: nothing is
    ever written after it. The reply's text is the concatenation of the rows from the
    last reset up to the end.
    """

    seq: int = Field(ge=1)
    text: str = ""
    reset: bool = False
    end: StreamEnd | None = None
    finish_reason: str | None = None


class DeltaOut(OmitNone):
    seq: int
    text: str
    reset: bool | None = Field(None, description="The text starts over here: drop what came before")


class StreamOut(CamelModel):
    """`GET .../stream?after=N`: the deltas after N that are still kept."""

    message_id: str
    status: MessageStatus
    deltas: list[DeltaOut]
    last_seq: int = Field(description="The last seq known; ask again with after=lastSeq")


# ---- WebSocket frames -------------------------------------------------------------

ThreadIdField = Annotated[str, Field(pattern=ULID_PATTERN)]


class SubscriptionRequest(RequestModel):
    """A client frame: `{"action": "subscribe" | "unsubscribe", "threadId"}`."""

    action: Literal["subscribe", "unsubscribe"]
    thread_id: ThreadIdField


class SubscribedFrame(CamelModel):
    type: Literal["subscribed"] = "subscribed"
    thread_id: str


class UnsubscribedFrame(CamelModel):
    type: Literal["unsubscribed"] = "unsubscribed"
    thread_id: str


class DeltaFrame(OmitNone):
    type: Literal["delta"] = "delta"
    thread_id: str
    message_id: str
    seq: int
    text: str
    reset: bool | None = None


class MessageFrame(OmitNone):
    type: Literal["message"] = "message"
    thread_id: str
    message: MessageOut
    content_omitted: bool | None = Field(
        None, description="The content was too large for a frame: read the message with GET"
    )


class ThreadDeletedFrame(CamelModel):
    type: Literal["thread_deleted"] = "thread_deleted"
    thread_id: str


class AccountErasedFrame(CamelModel):
    """The last frame a connection gets before its owner's account is erased and the
    connection closed."""

    type: Literal["account_erased"] = "account_erased"


class ExportFrame(CamelModel):
    """An export of the account is ready (or failed): read it with GET /exports/{exportId}."""

    type: Literal["export"] = "export"
    export: ExportOut


class FileFrame(CamelModel):
    """An upload was settled: its file is `ready` (with its URLs, once any malware scan
    passed it) or `rejected` (with the reason). Sent to every open socket of the owner,
    subscribed to a thread or not."""

    type: Literal["file"] = "file"
    file: FileOut


class ErrorFrame(OmitNone):
    type: Literal["error"] = "error"
    thread_id: str | None = None
    error: ErrorDetail


Frame = (
    SubscribedFrame
    | UnsubscribedFrame
    | DeltaFrame
    | MessageFrame
    | ThreadDeletedFrame
    | AccountErasedFrame
    | ExportFrame
    | FileFrame
    | ErrorFrame
)


def frame_json(frame: Frame) -> str:
    return frame.model_dump_json(by_alias=True, exclude_none=True)
