"""Messages: save (one transaction with the reference counts), read, list, delete."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Literal

from agentfiles.data import jobs, message_rows, rates
from agentfiles.data.errors import Unavailable
from agentfiles.data.message_rows import Exchange, IdempotencyRecord, SaveRefused
from agentfiles.errors import (
    BadRequest,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
)
from agentfiles.ids import new_ulid, next_ulid
from agentfiles.logic import live, push
from agentfiles.logic.files import check_media_type, decode_base64, download_url, store_bytes
from agentfiles.logic.sniff import IMAGE_TYPES, describe, matches, sniff
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.files import FileRecord
from agentfiles.models.jobs import GenerationJob
from agentfiles.models.messages import (
    FilePart,
    ImagePart,
    ImageRequest,
    MessageOut,
    MessagePage,
    MessageRecord,
    Part,
    PartOut,
    SavedMessage,
    SaveMessageRequest,
    TextPart,
)
from agentfiles.settings import get_settings

# A DynamoDB item holds at most 400 KB; content beyond this is refused.
MAX_CONTENT_BYTES = 350_000
IDEMPOTENCY_KEY_MAX = 255
_DELETE_ATTEMPTS = 3


def _request_hash(thread_id: str, body: dict) -> str:
    canonical = json.dumps({"threadId": thread_id, **body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _inline_part(owner: str, part: ImagePart | FilePart, index: int) -> Part:
    """Check inline data; large data becomes a stored file referenced by id."""
    settings = get_settings()
    media_type = check_media_type(part.media_type or "")
    if isinstance(part, ImagePart) and media_type not in IMAGE_TYPES:
        raise Unprocessable(
            f"part {index}: an image part needs an image type, not {media_type}", code="invalid_part"
        )
    content = decode_base64(part.data or "")
    if len(content) > settings.inline_max_bytes:
        extension = media_type.rsplit("/", 1)[-1]
        filename = getattr(part, "filename", None) or f"part-{index}.{extension}"
        stored = store_bytes(owner, filename, media_type, content)
        return part.model_copy(update={"data": None, "file_id": stored.record.id, "media_type": media_type})
    sniffed = sniff(content, complete=True)
    if not content or not matches(media_type, sniffed):
        raise Unprocessable(
            f"part {index}: data is {describe(sniffed)}, not the declared {media_type}", code="type_mismatch"
        )
    return part.model_copy(update={"data": base64.b64encode(content).decode(), "media_type": media_type})


def check_model(kind: Literal["chat", "image"], model: str | None) -> None:
    """A model a client names must be on the operator's list (MODELS / IMAGE_MODELS,
    which always include the defaults): no one spends on a model the operator did not
    choose."""
    settings = get_settings()
    allowed = settings.image_model_names if kind == "image" else settings.chat_models
    if model is not None and model not in allowed:
        raise Unprocessable(
            f"{kind} model {model!r} is not allowed here; allowed: {', '.join(allowed)} (see GET /models)",
            code="model_not_allowed",
            details={"model": model, "allowed": list(allowed)},
        )


def _prepare(owner: str, request: SaveMessageRequest) -> tuple[list[Part], list[str]]:
    settings = get_settings()
    parts = request.parts()
    large_inline = sum(
        1
        for p in parts
        if not isinstance(p, TextPart) and p.data and len(p.data) * 3 // 4 > settings.inline_max_bytes
    )
    named = {p.file_id for p in parts if not isinstance(p, TextPart) and p.file_id} | set(request.file_ids)
    if len(named) + large_inline > settings.max_attachments:
        raise BadRequest(
            f"a message may reference at most {settings.max_attachments} files", code="too_many_attachments"
        )
    prepared: list[Part] = []
    for index, part in enumerate(parts):
        if not isinstance(part, TextPart) and part.data:
            part = _inline_part(owner, part, index)
        elif not isinstance(part, TextPart) and part.media_type:
            part = part.model_copy(update={"media_type": check_media_type(part.media_type)})
        prepared.append(part)
    # Bytes, not characters: DynamoDB counts an item's UTF-8 size.
    size = sum(len(p.model_dump_json(by_alias=True, exclude_none=True).encode()) for p in prepared)
    if size > MAX_CONTENT_BYTES:
        raise PayloadTooLarge(
            f"message content is {size} bytes, over {MAX_CONTENT_BYTES}; send large data as files",
            code="message_too_large",
        )
    part_files = [p.file_id for p in prepared if not isinstance(p, TextPart) and p.file_id]
    return prepared, list(dict.fromkeys([*part_files, *request.file_ids]))


@dataclass(frozen=True)
class Draft:
    """What a request asks to save, before ids and times are given to it."""

    content: list[Part]
    file_ids: list[str]
    generate: bool
    model: str | None
    request_hash: str
    job: Literal["chat", "image"] = "chat"
    image_size: str | None = None


def _new_exchange(owner: str, thread_id: str, draft: Draft, idempotency_key: str | None) -> Exchange:
    settings = get_settings()
    now = now_ms()
    iso = iso_from_ms(now)
    message_id = new_ulid(now)
    message = MessageRecord(
        id=message_id,
        thread_id=thread_id,
        owner=owner,
        role="user",
        content=draft.content,
        file_ids=draft.file_ids,
        status="success",
        created_at=iso,
        updated_at=iso,
    )
    reply = None
    if draft.generate:
        default_model = settings.image_model if draft.job == "image" else settings.model
        reply = MessageRecord(
            id=next_ulid(message_id),
            thread_id=thread_id,
            owner=owner,
            role="assistant",
            status="pending",
            model=draft.model or default_model,
            reply_to=message_id,
            job=draft.job,
            image_size=draft.image_size,
            created_at=iso,
            updated_at=iso,
        )
    idempotency = None
    if idempotency_key:
        idempotency = IdempotencyRecord(
            key=idempotency_key,
            message_id=message.id,
            reply_id=reply.id if reply else None,
            request_hash=draft.request_hash,
            expires_at=now // 1000 + settings.idempotency_ttl_seconds,
        )
    sweep_at = now + settings.pending_reply_sweep_seconds * 1000 if reply else None
    return Exchange(message, reply, now, idempotency, sweep_at, settings.generations_per_minute)


def save_message(
    owner: str, thread_id: str, request: SaveMessageRequest, idempotency_key: str | None = None
) -> SavedMessage:
    if idempotency_key is not None and not (0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX):
        raise BadRequest("Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key")
    # Before anything is stored: a large inline part would become a file.
    check_model("chat", request.model)
    content, file_ids = _prepare(owner, request)
    draft = Draft(
        content=content,
        file_ids=file_ids,
        generate=request.generate,
        model=request.model,
        request_hash=_request_hash(thread_id, request.model_dump(mode="json", by_alias=True)),
    )
    return _save(owner, thread_id, draft, idempotency_key)


def request_image(
    owner: str, thread_id: str, request: ImageRequest, idempotency_key: str | None = None
) -> SavedMessage:
    """The prompt as a user message, and a pending reply that will get the picture."""
    check_model("image", request.model)
    draft = Draft(
        content=[TextPart(text=request.prompt)],
        file_ids=[],
        generate=True,
        model=request.model,
        request_hash=_request_hash(thread_id, {"image": request.model_dump(mode="json", by_alias=True)}),
        job="image",
        image_size=request.size,
    )
    return _save(owner, thread_id, draft, idempotency_key)


def _save(owner: str, thread_id: str, draft: Draft, idempotency_key: str | None) -> SavedMessage:
    exchange = _new_exchange(owner, thread_id, draft, idempotency_key)
    try:
        message_rows.save_exchange(exchange)
    except SaveRefused as refused:
        if refused.reason == "conflict":
            raise Conflict(
                "the message could not be saved for concurrent changes; retry", code="conflict"
            ) from refused
        if refused.reason == "idempotency_key_used":
            return _replay(owner, thread_id, idempotency_key or "", draft.request_hash)
        if refused.reason == "thread_unavailable":
            raise NotFound(f"thread {thread_id} not found", code="thread_not_found") from refused
        if refused.reason == "rate_limited":
            limit = exchange.generations_per_window
            raise TooManyRequests(
                f"you asked for {limit} replies or images this minute, the most allowed; nothing was saved",
                retry_after_s=rates.seconds_left(exchange.now_ms),
            ) from refused
        raise _file_problem(refused) from refused
    if exchange.reply:
        queue_reply(exchange.reply)
    push.publish_messages(*(r for r in (exchange.message, exchange.reply) if r))
    reply = MessageOut.of(exchange.reply) if exchange.reply else None
    return SavedMessage(message=MessageOut.of(exchange.message), reply=reply)


def _file_problem(refused: SaveRefused) -> Exception:
    details = {"fileId": refused.file_id}
    if refused.file_status is None:
        return NotFound(f"file {refused.file_id} not found", code="file_not_found", details=details)
    return Conflict(
        f"file {refused.file_id} is {refused.file_status}, not ready",
        code="file_not_ready",
        details={**details, "status": refused.file_status},
    )


def generation_job(reply: MessageRecord) -> GenerationJob:
    """The job that makes a pending reply: everything it needs is on the reply."""
    return GenerationJob(
        kind=reply.job or "chat",
        owner=reply.owner,
        thread_id=reply.thread_id,
        message_id=reply.reply_to or "",
        reply_id=reply.id,
        model=reply.model,
        size=reply.image_size,
    )


def queue_reply(reply: MessageRecord) -> None:
    try:
        jobs.send_generation(generation_job(reply))
    except Unavailable as error:
        raise ServiceUnavailable(
            "the message is saved but its reply could not be queued; retry with the same Idempotency-Key",
            code="queue_unavailable",
            details={"messageId": reply.reply_to, "replyId": reply.id},
        ) from error


def _replay(owner: str, thread_id: str, key: str, request_hash: str) -> SavedMessage:
    """A retry with a key already used: the same body returns what was saved (and
    re-queues a reply still pending); another body is refused."""
    record = message_rows.get_idempotency(owner, thread_id, key)
    if record is None:
        raise Conflict("the Idempotency-Key is being used by a request in flight; retry", code="conflict")
    if record.request_hash != request_hash:
        raise Unprocessable(
            "this Idempotency-Key was used with a different request", code="idempotency_key_reused"
        )
    message = message_rows.get_message(owner, thread_id, record.message_id)
    if message is None:
        raise Conflict("the message saved under this Idempotency-Key was deleted", code="message_deleted")
    reply = message_rows.get_message(owner, thread_id, record.reply_id) if record.reply_id else None
    if reply and reply.status == "pending":
        queue_reply(reply)
    return SavedMessage(message=MessageOut.of(message), reply=MessageOut.of(reply) if reply else None)


# ---- reading -------------------------------------------------------------------


def _part_out(part: Part, files: dict[str, FileRecord], urls: dict[str, tuple[str, str]]) -> PartOut:
    out = PartOut.of(part)
    record = files.get(part.file_id) if not isinstance(part, TextPart) and part.file_id else None
    if record is not None:
        if record.status == "ready":
            if record.id not in urls:
                urls[record.id] = download_url(record)
            out.url, out.url_expires_at = urls[record.id]
        out.media_type = out.media_type or record.media_type
        out.filename = out.filename or record.filename
        out.size = record.size
    return out


def message_view(
    record: MessageRecord, files: dict[str, FileRecord], urls: dict[str, tuple[str, str]] | None = None
) -> MessageOut:
    """A message as read back: its file parts carry URLs minted now (one per file,
    shared through `urls` across a page)."""
    urls = {} if urls is None else urls
    return MessageOut.of(record, [_part_out(p, files, urls) for p in record.content])


def _part_file_ids(records: list[MessageRecord]) -> list[str]:
    return [p.file_id for r in records for p in r.content if not isinstance(p, TextPart) and p.file_id]


def list_messages(owner: str, thread_id: str, limit: int, cursor: str | None) -> MessagePage:
    """Newest first: one Query for the page, one BatchGetItem for its thread and files."""
    records, next_cursor = message_rows.list_messages(owner, thread_id, limit, cursor)
    thread, files = message_rows.batch_get_files_and_thread(owner, thread_id, _part_file_ids(records))
    if thread is None or thread.status != "active":
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")
    urls: dict[str, tuple[str, str]] = {}
    return MessagePage(items=[message_view(r, files, urls) for r in records], next_cursor=next_cursor)


def get_message(owner: str, thread_id: str, message_id: str) -> MessageOut:
    record = message_rows.get_message(owner, thread_id, message_id)
    thread, files = message_rows.batch_get_files_and_thread(
        owner, thread_id, _part_file_ids([record] if record else [])
    )
    if thread is None or thread.status != "active":
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")
    if record is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    return message_view(record, files)


def delete_message(owner: str, thread_id: str, message_id: str) -> None:
    """Delete one message and release its references in the same transaction."""
    for _ in range(_DELETE_ATTEMPTS):
        record = message_rows.get_message(owner, thread_id, message_id)
        if record is None:
            raise NotFound(f"message {message_id} not found", code="message_not_found")
        if message_rows.delete_message(record, now_ms()):
            live.remove_stream(record)
            return
    raise Conflict("the message changed while it was being deleted; retry", code="conflict")
