"""Messages: the idempotent save (one transaction with the reference counts, the
pending reply and the rate window), the job that makes its reply, and the delete that
releases its files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Literal

from agentfiles.data import jobs, message_rows, rates
from agentfiles.data.errors import QuotaExceeded, Unavailable
from agentfiles.data.message_rows import Exchange, IdempotencyRecord, SaveRefused
from agentfiles.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    Unprocessable,
)
from agentfiles.ids import new_ulid, next_ulid
from agentfiles.logic import inline_parts, live, push
from agentfiles.logic.catalog import check_model
from agentfiles.logic.files import quota_exceeded
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.jobs import GenerationJob
from agentfiles.models.messages import (
    ImageRequest,
    MessageOut,
    MessageRecord,
    Part,
    SavedMessage,
    SaveMessageRequest,
    TextPart,
)
from agentfiles.settings import get_settings

IDEMPOTENCY_KEY_MAX = 255
_DELETE_ATTEMPTS = 3


def _request_hash(thread_id: str, body: dict) -> str:
    canonical = json.dumps({"threadId": thread_id, **body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


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
    # The types each file named by a part must have (`inline_parts.file_types`).
    file_types: dict[str, frozenset[str]] = field(default_factory=dict)
    # The content's bytes, counted on the owner's storage while the message is kept.
    stored_bytes: int = 0


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
        stored_bytes=draft.stored_bytes or None,
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
    return Exchange(
        message, reply, now, idempotency, sweep_at, settings.generations_per_minute, draft.file_types
    )


def save_message(
    owner: str, thread_id: str, request: SaveMessageRequest, idempotency_key: str | None = None
) -> SavedMessage:
    if idempotency_key is not None and not (0 < len(idempotency_key) <= IDEMPOTENCY_KEY_MAX):
        raise BadRequest("Idempotency-Key must be 1 to 255 characters", code="invalid_idempotency_key")
    # Before anything is stored: a large inline part would become a file.
    check_model("chat", request.model)
    content, file_ids = inline_parts.prepare(owner, request)
    draft = Draft(
        content=content,
        file_ids=file_ids,
        generate=request.generate,
        model=request.model,
        request_hash=_request_hash(thread_id, request.model_dump(mode="json", by_alias=True)),
        file_types=inline_parts.file_types(content),
        stored_bytes=inline_parts.content_bytes(content),
    )
    return _save(owner, thread_id, draft, idempotency_key)


def request_image(
    owner: str, thread_id: str, request: ImageRequest, idempotency_key: str | None = None
) -> SavedMessage:
    """The prompt as a user message, and a pending reply that will get the picture."""
    check_model("image", request.model)
    prompt: list[Part] = [TextPart(text=request.prompt)]
    draft = Draft(
        content=prompt,
        file_ids=[],
        generate=True,
        model=request.model,
        request_hash=_request_hash(thread_id, {"image": request.model_dump(mode="json", by_alias=True)}),
        job="image",
        image_size=request.size,
        stored_bytes=inline_parts.content_bytes(prompt),
    )
    return _save(owner, thread_id, draft, idempotency_key)


def _save(owner: str, thread_id: str, draft: Draft, idempotency_key: str | None) -> SavedMessage:
    exchange = _new_exchange(owner, thread_id, draft, idempotency_key)
    try:
        message_rows.save_exchange(exchange)
    except QuotaExceeded as exceeded:
        raise quota_exceeded(exceeded) from exceeded
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
    if refused.reason == "file_type_mismatch":
        return Unprocessable(
            f"file {refused.file_id} is {refused.file_media_type}, not what its part says it is",
            code="part_type_mismatch",
            details={**details, "mediaType": refused.file_media_type},
        )
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
