"""What one model call is given: a thread's history as Chat Completions messages, within
a budget of attachment bytes.

Every attachment the worker itself puts in the request (a PDF, an image in inline URL
mode, inline data, the text of a text file) costs its bytes; an image handed over as a
presigned or public URL costs nothing here (the model fetches it). Costs are known from
the file rows before anything is read, so the worker reads at most
ATTACHMENT_BUDGET_BYTES per reply, whatever the sizes of the files in the thread:

- the message being answered comes first: if its own attachments cost more than the
  budget, the reply fails with `attachments_too_large` (retrying cannot help);
- then the history, newest message first: each attachment that still fits is kept,
  each that does not is left out and named to the model as omitted;
- a text file is read with one ranged GET of at most TEXT_ATTACHMENT_MAX_BYTES, never
  whole, and the model is told when it was cut.
"""

from __future__ import annotations

import base64
import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from agentfiles.data import blobs, file_rows
from agentfiles.logic.sniff import IMAGE_TYPES, PDF, TEXT_TYPES
from agentfiles.models.files import FileRecord
from agentfiles.models.messages import FilePart, ImagePart, MessageRecord, Part, TextPart
from agentfiles.observability import logger
from agentfiles.settings import get_settings


class UnsupportedContent(Exception):
    """A reply that cannot be made from what it was given: it fails with `code` at
    once, without a retry."""

    def __init__(self, message: str, code: str = "unsupported_content") -> None:
        super().__init__(message)
        self.code = code


# (index of the message in the history, index of the part in the message)
PartAt = tuple[int, int]


@dataclass
class Attachments:
    """The files of one model call: their rows, what is left out, and the bytes read
    (each file once, however many messages hold it)."""

    files: dict[str, FileRecord]
    omitted: set[PartAt] = field(default_factory=set)
    read: dict[str, bytes] = field(default_factory=dict)

    def content(self, record: FileRecord, length: int) -> bytes:
        if record.id not in self.read:
            self.read[record.id] = blobs.read_range(record.s3_key, length)
        return self.read[record.id]


def chat_messages(owner: str, history: list[MessageRecord]) -> list[dict[str, Any]]:
    """The history (oldest first, the message being answered last) as the model gets it."""
    file_ids = [p.file_id for m in history for p in m.content if not isinstance(p, TextPart) and p.file_id]
    attachments = Attachments(file_rows.batch_get(owner, file_ids) if file_ids else {})
    attachments.omitted = left_out(history, attachments.files)
    if attachments.omitted:
        logger.info("attachments left out of the model call", extra={"omitted": len(attachments.omitted)})
    return [chat_message(m, attachments, at) for at, m in enumerate(history)]


def cost(part: Part, files: dict[str, FileRecord]) -> int:
    """The attachment bytes a part puts in the request."""
    if isinstance(part, TextPart) or part.url:
        return 0
    settings = get_settings()
    if part.data:
        size, media_type = len(part.data) * 3 // 4, part.media_type or ""
    else:
        record = files.get(part.file_id or "")
        if record is None:
            return 0  # refused when the message is built
        size, media_type = record.size, record.media_type
        if media_type in IMAGE_TYPES and settings.url_mode != "inline":
            return 0
    if media_type in TEXT_TYPES:
        return min(size, settings.text_attachment_max_bytes)
    return size


def _attachments(
    message: MessageRecord, at: int, files: dict[str, FileRecord]
) -> Iterator[tuple[PartAt, int]]:
    if message.role != "user":
        return  # a reply's files are named in its text, never sent
    for index, part in enumerate(message.content):
        if (price := cost(part, files)) > 0:
            yield (at, index), price


def left_out(history: list[MessageRecord], files: dict[str, FileRecord]) -> set[PartAt]:
    """The parts of older messages that do not fit the budget once the message being
    answered and newer history are in. Raises when that message alone does not fit."""
    budget = get_settings().attachment_budget_bytes
    last = len(history) - 1
    own = sum(price for _, price in _attachments(history[last], last, files))
    if own > budget:
        raise UnsupportedContent(
            f"this message's attachments come to {own} bytes; one reply can be given at most {budget} "
            "(send fewer or smaller files)",
            code="attachments_too_large",
        )
    left = budget - own
    omitted: set[PartAt] = set()
    for at in range(last - 1, -1, -1):
        for place, price in _attachments(history[at], at, files):
            if price <= left:
                left -= price
            else:
                omitted.add(place)
    return omitted


# ---- building the messages ---------------------------------------------------------


def chat_message(message: MessageRecord, attachments: Attachments, at: int = 0) -> dict[str, Any]:
    """One stored message as a Chat Completions message."""
    files = attachments.files
    if message.role == "assistant":
        text = "\n".join(_assistant_text(p, files) for p in message.content)
        return {"role": "assistant", "content": text}
    content: list[dict[str, Any]] = []
    for index, part in enumerate(message.content):
        if (at, index) in attachments.omitted:
            content.append(_omitted(part, files))
        else:
            content.extend(_user_parts(part, attachments))
    return {"role": "user", "content": content}


def _name(part: ImagePart | FilePart, files: dict[str, FileRecord]) -> str:
    record = files.get(part.file_id or "")
    return (
        getattr(part, "filename", None) or (record.filename if record else None) or part.file_id or "inline"
    )


def _omitted(part: Part, files: dict[str, FileRecord]) -> dict[str, Any]:
    assert not isinstance(part, TextPart)
    return {
        "type": "text",
        "text": f"[{part.type} {_name(part, files)!r} omitted: over this reply's attachment budget]",
    }


def _assistant_text(part: Part, files: dict[str, FileRecord]) -> str:
    if isinstance(part, TextPart):
        return part.text
    record = files.get(part.file_id or "")
    return f"[{part.type}: {record.filename if record else part.file_id or part.url or 'inline'}]"


def _user_parts(part: Part, attachments: Attachments) -> list[dict[str, Any]]:
    if isinstance(part, TextPart):
        return [{"type": "text", "text": part.text}]
    if part.url:
        # External URLs pass through as given: images as image_url; a file the
        # Chat Completions API cannot fetch is named by its URL.
        if isinstance(part, ImagePart):
            return [{"type": "image_url", "image_url": {"url": part.url}}]
        return [{"type": "text", "text": f"Attached file: {part.url}"}]
    if part.data:
        content = base64.b64decode(part.data)
        filename = getattr(part, "filename", None) or "attachment"
        return bytes_part(part.media_type or "", content, filename, total_size=len(content))
    record = attachments.files.get(part.file_id or "")
    if record is None or record.status != "ready":
        raise UnsupportedContent(f"file {part.file_id} is not available")
    return _file_part(record, part, attachments)


def _file_part(
    record: FileRecord, part: ImagePart | FilePart, attachments: Attachments
) -> list[dict[str, Any]]:
    settings = get_settings()
    media_type = record.media_type
    if media_type in IMAGE_TYPES and settings.url_mode != "inline":
        if settings.url_mode == "public":
            if not settings.public_base_url:
                raise UnsupportedContent("URL_MODE is public but PUBLIC_BASE_URL is not set")
            url = blobs.public_url(settings.public_base_url, record.s3_key)
        else:
            url = blobs.presign_get(record.s3_key, settings.model_url_ttl_seconds)
        return [{"type": "image_url", "image_url": {"url": url}}]
    # Never more than the row's checked size, nor more of a text than its cap.
    length = record.size
    if media_type in TEXT_TYPES:
        length = min(length, settings.text_attachment_max_bytes)
    content = attachments.content(record, length)
    filename = getattr(part, "filename", None) or record.filename
    return bytes_part(media_type, content, filename, total_size=record.size)


def bytes_part(media_type: str, content: bytes, filename: str, *, total_size: int) -> list[dict[str, Any]]:
    """Bytes as a content part; `content` may be the first bytes of a text of `total_size`."""
    if media_type in IMAGE_TYPES:
        return [{"type": "image_url", "image_url": {"url": _data_url(media_type, content)}}]
    if media_type == PDF:
        return [{"type": "file", "file": {"filename": filename, "file_data": _data_url(PDF, content)}}]
    if media_type in TEXT_TYPES:
        cap = get_settings().text_attachment_max_bytes
        content = content[:cap]
        cut = total_size > len(content)
        # A character cut at the end of the range is dropped, not shown as garbage.
        text = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(content, final=not cut)
        if cut:
            text += f"\n[... truncated: the first {len(content)} of {total_size} bytes]"
        return [{"type": "text", "text": f"Attached file {filename} ({media_type}):\n{text}"}]
    raise UnsupportedContent(f"{media_type} files cannot be given to the model")


def _data_url(media_type: str, content: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(content).decode()}"
