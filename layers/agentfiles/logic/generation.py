"""Generation: answer a pending reply with the model, streaming its text into the
reply, or draw a picture and attach it to the reply as a file it holds.

One job, one reply: the reply's lease makes a second delivery of the job (or a
second worker) a no-op, and each write after the lease is conditioned on it.
"""

from __future__ import annotations

import base64
import time
import uuid
from dataclasses import dataclass
from typing import Any

from agentfiles.data import message_rows, reply_rows
from agentfiles.data.reply_rows import Lease
from agentfiles.errors import PayloadTooLarge
from agentfiles.logic import live, push
from agentfiles.logic.files import store_bytes
from agentfiles.logic.live import LeaseLost, StreamWriter
from agentfiles.logic.prompt import UnsupportedContent, chat_messages
from agentfiles.logic.sniff import IMAGE_TYPES, sniff
from agentfiles.model_client import ModelFailure, classify, model_client
from agentfiles.models.common import now_ms
from agentfiles.models.jobs import GenerationJob
from agentfiles.models.live import DeltaRecord, Frame
from agentfiles.models.messages import (
    ENDED_STATUSES,
    ImagePart,
    MessageError,
    MessageRecord,
    Part,
    TextPart,
    Usage,
)
from agentfiles.observability import logger
from agentfiles.settings import get_settings

MAX_RETRY_DELAY_S = 900


class RetryLater(Exception):
    """The job should come back: SQS redelivers it after `delay_s`."""

    def __init__(self, reason: str, delay_s: int):
        super().__init__(reason)
        self.delay_s = delay_s


@dataclass(frozen=True)
class Outcome:
    status: str  # success | stopped | failed | skipped | lease_lost
    model_calls: int = 0
    writes: int = 0
    chunks: int = 0
    error_code: str | None = None


def run_job(job: GenerationJob, receive_count: int, max_receives: int) -> Outcome:
    settings = get_settings()
    lease = Lease(job.reply, uuid.uuid4().hex)
    now = now_ms()
    taken = reply_rows.take_lease(lease, now, now + settings.lease_seconds * 1000)
    if taken is None:
        return _not_taken(job)
    reply = taken.record
    logger.append_keys(
        reply_id=job.reply_id, thread_id=job.thread_id, lease_id=lease.id, generation=taken.generation
    )
    push.publish_messages(reply)
    last_attempt = receive_count >= max_receives
    writer: StreamWriter | None = None
    try:
        if job.kind == "image":
            return _draw(job, reply, lease)
        opened = live.open_stream(job.reply, taken.generation)
        if isinstance(opened, live.Sealed):
            # Stopped (or ended by a holder that died before its last write): the reply
            # is finished from its stream, and the model is never called.
            if live.conclude(lease, reply, opened.rows) is None:
                raise LeaseLost
            return Outcome("skipped" if opened.end.end == "stopped" else "success")
        writer = opened
        return _answer(job, reply, lease, writer)
    except LeaseLost:
        logger.info("lease lost; another worker or a delete owns the reply now")
        return Outcome("lease_lost")
    except UnsupportedContent as error:
        return _fail(lease, MessageError(code=error.code, message=str(error)), job, writer)
    except Exception as error:
        failure = classify(error)
        if failure is None:
            if last_attempt:
                error_ = MessageError(code="internal_error", message="the reply could not be made")
                _fail(lease, error_, job, writer)
            else:
                _release(lease)
            raise
        if not failure.retryable:
            return _fail(lease, MessageError(code=failure.code, message=failure.message), job, writer)
        if last_attempt:
            # The job goes to the DLQ after this; the reply says why it never came.
            message = f"gave up after retries: {failure.message}"
            _fail(lease, MessageError(code=failure.code, message=message), job, writer)
        else:
            _release(lease)
        raise RetryLater(failure.code, _backoff(failure, receive_count)) from error


def _not_taken(job: GenerationJob) -> Outcome:
    """The lease was refused: the reply ended already (a duplicate delivery, a stop), is
    gone, or another worker is streaming it right now."""
    row = reply_rows.read(job.reply)
    if row is None or row["status"] in ENDED_STATUSES:
        return Outcome("skipped")
    wait_ms = max(0, int(row.get("leaseUntil", 0)) - now_ms())
    raise RetryLater("reply is being written by another worker", min(MAX_RETRY_DELAY_S, wait_ms // 1000 + 1))


def _backoff(failure: ModelFailure, receive_count: int) -> int:
    base = get_settings().retry_base_seconds
    delay = base * 2 ** max(0, receive_count - 1)
    if failure.retry_after_s is not None:
        delay = max(delay, int(failure.retry_after_s))
    return min(MAX_RETRY_DELAY_S, delay)


def _fail(
    lease: Lease, error: MessageError, job: GenerationJob, writer: StreamWriter | None = None
) -> Outcome:
    """The reply fails, keeping what it streamed; its stream is sealed first, so a stop
    that got there before wins (the reply then ends stopped)."""
    logger.warning("reply failed", extra={"code": error.code, "error_message": error.message})
    if writer is None:
        final = reply_rows.fail(lease, error, now_ms(), job=job.kind)
    else:
        try:
            end = writer.end("failed")
        except LeaseLost:
            return Outcome("lease_lost")
        if end.end == "stopped":
            return _ended(lease, writer, end, None, None, None)
        final = reply_rows.fail(lease, error, now_ms(), job=job.kind, text=writer.text, last_seq=end.seq)
        if final is not None:
            push.publish(lease.reply.owner, lease.reply.thread_id, [live.delta_frame(lease.reply, end)])
    if final is not None:
        push.publish_messages(final)
    return Outcome("failed", error_code=error.code)


def _release(lease: Lease) -> None:
    now = now_ms()
    released = reply_rows.release_lease(lease, now + get_settings().pending_reply_sweep_seconds * 1000, now)
    if released is not None:
        push.publish_messages(released)


# ---- chat ----------------------------------------------------------------------


def _answer(job: GenerationJob, reply: MessageRecord, lease: Lease, writer: StreamWriter) -> Outcome:
    settings = get_settings()
    history = [
        m
        for m in message_rows.history(job.owner, job.thread_id, job.message_id, settings.history_messages)
        if m.role == "user" or m.status == "success"
    ]
    if not history or history[-1].id != job.message_id:
        raise UnsupportedContent("the message this reply answers was deleted")
    messages = chat_messages(job.owner, history)
    model = reply.model or settings.model

    stream = model_client().chat.completions.create(
        model=model,
        messages=messages,
        stream=True,
        stream_options={"include_usage": True},
        # A long answer ends `length`; it never fails for being long.
        max_completion_tokens=settings.max_reply_tokens,
    )
    pending: list[str] = []
    pending_chars = text_chars = text_bytes = 0
    usage: Usage | None = None
    finish_reason: str | None = None
    flush_every = settings.stream_flush_ms / 1000
    last_flush = time.monotonic()
    chunks = 0
    full = False
    stopped: DeltaRecord | None = None
    try:
        for chunk in stream:
            chunks += 1
            if chunk.usage:
                usage = Usage(
                    prompt_tokens=chunk.usage.prompt_tokens,
                    completion_tokens=chunk.usage.completion_tokens,
                    total_tokens=chunk.usage.total_tokens,
                )
            for choice in chunk.choices:
                if choice.delta and choice.delta.content and not full:
                    piece, full = _within(
                        choice.delta.content,
                        live.MAX_REPLY_TEXT_CHARS - text_chars,
                        live.MAX_REPLY_TEXT_BYTES - text_bytes,
                    )
                    pending.append(piece)
                    pending_chars, text_chars = pending_chars + len(piece), text_chars + len(piece)
                    text_bytes += len(piece.encode())
                finish_reason = "length" if full else choice.finish_reason or finish_reason
            if full:
                # As much as the reply can hold: stop reading (and paying for) the rest.
                break
            due = time.monotonic() - last_flush >= flush_every or pending_chars >= live.DELTA_MAX_CHARS
            if pending and due:
                # At most one write per flush interval, however many chunks arrive.
                writer.flush("".join(pending))
                pending, pending_chars, last_flush = [], 0, time.monotonic()
    except live.Stopped as stop:
        stopped = stop.end
    finally:
        # Closing the response ends the model's generation: no more tokens are billed.
        stream.close()
    end = stopped or writer.end("success", "".join(pending), finish_reason)
    return _ended(lease, writer, end, model, usage, finish_reason, chunks=chunks)


def _within(piece: str, chars: int, room: int) -> tuple[str, bool]:
    """The piece, cut to `chars` characters and `room` UTF-8 bytes if it does not fit in
    them; and whether the reply is now full."""
    if len(piece) < chars and len(piece.encode()) < room:
        return piece, False
    cut = piece[: max(0, chars)].encode()[: max(0, room)].decode("utf-8", errors="ignore")
    return cut, True


def _ended(
    lease: Lease,
    writer: StreamWriter,
    end: DeltaRecord,
    model: str | None,
    usage: Usage | None,
    finish_reason: str | None,
    *,
    chunks: int = 0,
) -> Outcome:
    """The stream is sealed by `end`: the reply row gets the whole text, once, and the
    followers get the last delta with the final message."""
    stopped = end.end == "stopped"
    final = reply_rows.finish(
        lease,
        text=writer.text,
        model=model,
        usage=usage,
        finish_reason=None if stopped else finish_reason,
        now_ms=now_ms(),
        last_seq=end.seq,
        status="stopped" if stopped else "success",
    )
    if final is None:
        raise LeaseLost
    frames: list[Frame] = [] if stopped else [live.delta_frame(lease.reply, end)]
    push.publish(final.owner, final.thread_id, [*frames, push.message_frame(final)])
    return Outcome(
        "stopped" if stopped else "success", model_calls=1, writes=writer.last_seq + 1, chunks=chunks
    )


# ---- images --------------------------------------------------------------------


def _draw(job: GenerationJob, reply: MessageRecord, lease: Lease) -> Outcome:
    settings = get_settings()
    prompt_message = message_rows.get_message(job.owner, job.thread_id, job.message_id)
    if prompt_message is None:
        raise UnsupportedContent("the prompt message was deleted")
    prompt = " ".join(p.text for p in prompt_message.content if isinstance(p, TextPart))
    model = reply.model or settings.image_model
    options: dict[str, Any] = {"model": model, "prompt": prompt, "n": 1}
    if job.size and job.size != "auto":
        options["size"] = job.size
    if not model.startswith("gpt-image"):
        # gpt-image models always answer in base64 and refuse the parameter.
        options["response_format"] = "b64_json"
    result = model_client().images.generate(**options)
    b64 = result.data[0].b64_json if result.data else None
    if not b64:
        raise UnsupportedContent("the model returned no image data")
    if live.stop_requested(job.reply):
        # Stopped while drawing: the picture is not kept.
        final = reply_rows.finish(
            lease,
            text="",
            model=model,
            usage=None,
            finish_reason=None,
            now_ms=now_ms(),
            last_seq=0,
            status="stopped",
            job="image",
        )
        if final is None:
            raise LeaseLost
        push.publish_messages(final)
        return Outcome("stopped", model_calls=1)
    if len(b64) * 3 // 4 > settings.image_max_bytes:
        raise UnsupportedContent(
            f"the picture is over {settings.image_max_bytes} bytes, the most a generated image may be",
            code="image_too_large",
        )
    content = base64.b64decode(b64)
    media_type = sniff(content, complete=True)
    if media_type not in IMAGE_TYPES:
        raise UnsupportedContent("the model returned something that is not an image")
    extension = media_type.rsplit("/", 1)[-1]
    try:
        stored = store_bytes(job.owner, f"generated-{job.reply_id}.{extension}", media_type, content)
    except PayloadTooLarge as refused:
        # The owner's storage is full: the picture cannot be kept, so the reply fails.
        raise UnsupportedContent(refused.message, code=refused.code) from refused
    parts: list[Part] = [ImagePart(type="image", file_id=stored.record.id, media_type=media_type)]
    final = reply_rows.finish_with_file(
        lease,
        content=parts,
        file_id=stored.record.id,
        model=model,
        now_ms=now_ms(),
    )
    if final is None:
        # The stored file holds no reference; the vacuum reclaims it after the grace.
        raise LeaseLost
    push.publish_messages(final)
    return Outcome("success", model_calls=1, writes=1)
