"""Messages and their content parts.

A part names its bytes one way: a `fileId` (a file of this owner, which the message
holds one reference on), an external `url`, or inline base64 `data`. Parts read
back carry freshly minted URLs for their files; URLs are never stored.
"""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from agentfiles.ids import ULID_PATTERN
from agentfiles.models.common import CamelModel, OmitNone, RequestModel
from agentfiles.models.files import Filename

MessageRole = Literal["user", "assistant"]
MessageStatus = Literal["pending", "streaming", "success", "failed", "stopped"]
# A reply in one of these is done: no worker writes it again.
ENDED_STATUSES: tuple[MessageStatus, ...] = ("success", "failed", "stopped")
MAX_TEXT_CHARS = 100_000


class TextPart(RequestModel):
    type: Literal["text"] = "text"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)


class _SourcedPart(RequestModel):
    file_id: str | None = Field(None, pattern=ULID_PATTERN)
    url: str | None = Field(
        None, max_length=4096, description="An external http(s) URL, passed to the model as is"
    )
    data: str | None = Field(None, description="Inline base64; large data is stored as a file before saving")
    media_type: str | None = Field(None, max_length=255)

    @field_validator("url")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("https://", "http://")):
            raise ValueError("url must be http(s)")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "_SourcedPart":
        given = [name for name in ("file_id", "url", "data") if getattr(self, name)]
        if len(given) != 1:
            raise ValueError("give exactly one of fileId, url, data")
        if self.data and not self.media_type:
            raise ValueError("mediaType is required with data")
        return self


class ImagePart(_SourcedPart):
    type: Literal["image"]


class FilePart(_SourcedPart):
    type: Literal["file"]
    filename: Filename | None = None

    @model_validator(mode="after")
    def _typed(self) -> "FilePart":
        if (self.url or self.data) and not self.media_type:
            raise ValueError("mediaType is required for a file part given by url or data")
        return self


Part = Annotated[TextPart | ImagePart | FilePart, Field(discriminator="type")]


class PartOut(OmitNone):
    """A part as read back: file parts carry a download URL minted for this read."""

    type: Literal["text", "image", "file"]
    text: str | None = None
    file_id: str | None = None
    url: str | None = None
    url_expires_at: str | None = None
    thumbnail_url: str | None = Field(
        None, description="Images: a short-lived URL of a small thumbnail (long side at most 256 px)"
    )
    data: str | None = None
    media_type: str | None = None
    filename: str | None = None
    size: int | None = None

    @classmethod
    def of(cls, part: Part) -> "PartOut":
        """A stored part as it is, before any file it names is looked up."""
        if isinstance(part, TextPart):
            return cls(type="text", text=part.text)
        return cls(
            type=part.type,
            file_id=part.file_id,
            url=part.url,
            data=part.data,
            media_type=part.media_type,
            filename=getattr(part, "filename", None),
        )


@dataclass(frozen=True)
class MessageRef:
    """Which message: ids are unique only within their owner's thread."""

    owner: str
    thread_id: str
    message_id: str


class MessageError(CamelModel):
    code: str
    message: str


class Usage(CamelModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class MessageRecord(CamelModel):
    """A message row (pk `OWNER#{owner}#THREAD#{threadId}`, sk `MSG#{id}`)."""

    id: str
    thread_id: str
    owner: str
    role: MessageRole
    content: list[Part] = Field(default_factory=list)
    file_ids: list[str] = Field(
        default_factory=list, description="Distinct files this message holds a reference on"
    )
    status: MessageStatus
    error: MessageError | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    last_seq: int | None = Field(None, description="On an ended reply: the seq of its stream's last delta")
    reply_to: str | None = None
    job: Literal["chat", "image"] | None = Field(None, description="On a reply: the generation asked for")
    image_size: str | None = None
    stored_bytes: int | None = Field(
        None, description="On a user message: its content's bytes, counted on the owner's storage"
    )
    # On a user message: the parts a model refused, each `{part index}@{model}` (a
    # DynamoDB string set, written only by `message_rows.mark_refused`); later calls to
    # that model leave them out and name them as omitted.
    refused_parts: list[str] | None = None
    created_at: str
    updated_at: str

    def refused_by(self, model: str) -> set[int]:
        """The indexes of the parts `model` refused."""
        found = set()
        for entry in self.refused_parts or ():
            index, _, name = entry.partition("@")
            if name == model and index.isdigit():
                found.add(int(index))
        return found


def refused_entry(index: int, model: str) -> str:
    """How a refused part is remembered on its message (see `MessageRecord.refused_parts`)."""
    return f"{index}@{model}"


class MessageOut(OmitNone):
    id: str
    thread_id: str
    role: MessageRole
    content: list[PartOut]
    file_ids: list[str]
    status: MessageStatus
    error: MessageError | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    last_seq: int | None = None
    reply_to: str | None = None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, record: MessageRecord, content: list[PartOut] | None = None) -> "MessageOut":
        """The API view of a message; `content` is its parts as read back (with URLs
        minted for their files), or the stored parts as they are."""
        return cls(
            id=record.id,
            thread_id=record.thread_id,
            role=record.role,
            content=[PartOut.of(p) for p in record.content] if content is None else content,
            file_ids=record.file_ids,
            status=record.status,
            error=record.error,
            model=record.model,
            usage=record.usage,
            finish_reason=record.finish_reason,
            last_seq=record.last_seq,
            reply_to=record.reply_to,
            created_at=record.created_at,
            updated_at=record.updated_at,
        )


class SaveMessageRequest(RequestModel):
    content: list[Part] | str = Field(description="Parts, or a plain string for one text part")
    file_ids: list[Annotated[str, Field(pattern=ULID_PATTERN)]] = Field(
        default_factory=list, max_length=100, description="Files to reference without a part"
    )
    generate: bool = Field(True, description="Queue an assistant reply")
    model: str | None = Field(None, min_length=1, max_length=128)

    @field_validator("content")
    @classmethod
    def _not_empty(cls, value: list[Part] | str) -> list[Part] | str:
        if isinstance(value, str):
            if not value.strip():
                raise ValueError("content must not be empty")
            if len(value) > MAX_TEXT_CHARS:
                raise ValueError(f"content is limited to {MAX_TEXT_CHARS} characters")
        elif not value:
            raise ValueError("content must have at least one part")
        elif len(value) > 100:
            raise ValueError("content is limited to 100 parts")
        return value

    def parts(self) -> list[Part]:
        return [TextPart(text=self.content)] if isinstance(self.content, str) else list(self.content)


ImageSize = Literal["256x256", "512x512", "1024x1024", "1024x1536", "1536x1024", "auto"]


class ImageRequest(RequestModel):
    prompt: str = Field(min_length=1, max_length=4000)
    model: str | None = Field(None, min_length=1, max_length=128)
    size: ImageSize = "1024x1024"


class MessageResponse(CamelModel):
    message: MessageOut


class SavedMessage(CamelModel):
    message: MessageOut
    reply: MessageOut | None = None


class MessagePage(CamelModel):
    items: list[MessageOut]
    next_cursor: str | None = None
