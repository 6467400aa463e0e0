"""Chat: the model's answer to a pending reply, streamed into the reply's stream (at
most one delta row per flush interval) and written whole to the reply row when it ends.

An attachment the model refuses (a 400 about an image or a file part, see
`model_client.attachment_refusal`) never locks the thread: the parts it names are
remembered on their messages as refused by that model, so every later call to it leaves
them out and names them as omitted. When the error says which kind (or which part) was
refused, the same reply is tried once more at once without those parts; when it does not,
or the second try is refused too, the reply fails `attachment_refused`, naming them.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from agentfiles.data import message_rows, reply_rows
from agentfiles.data.reply_rows import Lease
from agentfiles.logic import live, push
from agentfiles.logic.live import Heartbeat, LeaseLost, StreamWriter
from agentfiles.logic.prompt import PartAt, Prompt, Sent, UnsupportedContent, chat_messages
from agentfiles.model_client import Refusal, attachment_refusal, model_client
from agentfiles.models.common import now_ms
from agentfiles.models.jobs import GenerationJob, Outcome
from agentfiles.models.live import DeltaRecord, Frame
from agentfiles.models.messages import MessageRecord, Usage, refused_entry
from agentfiles.observability import logger
from agentfiles.settings import get_settings


def answer(
    job: GenerationJob, reply: MessageRecord, lease: Lease, writer: StreamWriter, heartbeat: Heartbeat
) -> Outcome:
    """The heartbeat is kept on every chunk (it writes once per half beat at most), so
    the lease runs out only when this worker stops being heard from."""
    settings = get_settings()
    history = [
        m
        for m in message_rows.history(job.owner, job.thread_id, job.message_id, settings.history_messages)
        if m.role == "user" or m.status == "success"
    ]
    if not history or history[-1].id != job.message_id:
        raise UnsupportedContent("the message this reply answers was deleted")
    model = reply.model or settings.model
    heartbeat.keep()
    stream, calls = _open(job, history, model)
    pending: list[str] = []
    pending_chars = text_chars = text_bytes = 0
    usage: Usage | None = None
    finish_reason: str | None = None
    flush_every = settings.stream_flush_ms
    clock = heartbeat.clock
    last_flush = clock()
    chunks = 0
    full = False
    stopped: DeltaRecord | None = None
    try:
        for chunk in stream:
            chunks += 1
            heartbeat.keep()
            if chunk.usage:
                usage = Usage(
                    prompt_tokens=chunk.usage.prompt_tokens,
                    completion_tokens=chunk.usage.completion_tokens,
                    total_tokens=chunk.usage.total_tokens,
                )
            for choice in chunk.choices:
                if choice.delta and choice.delta.content and not full:
                    piece, full = _cut_to_room(
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
            due = clock() - last_flush >= flush_every or pending_chars >= live.DELTA_MAX_CHARS
            if pending and due:
                # At most one write per flush interval, however many chunks arrive.
                writer.flush("".join(pending))
                pending, pending_chars, last_flush = [], 0, clock()
    except live.Stopped as stop:
        stopped = stop.end
    finally:
        # Closing the response ends the model's generation: no more tokens are billed.
        stream.close()
    end = stopped or writer.end("success", "".join(pending), finish_reason)
    return finish(lease, writer, end, model, usage, finish_reason, chunks=chunks, model_calls=calls)


class AttachmentRefused(UnsupportedContent):
    """The model refused attachments of this reply; they are remembered, so the thread's
    next reply from this model goes without them."""

    def __init__(self, refused: list[Sent], refusal: Refusal):
        named = ", ".join(f"{sent.kind} {sent.name!r}" for sent in refused)
        super().__init__(
            f"the model refused {named} ({refusal.message}); later replies from this model leave them out",
            code="attachment_refused",
        )


def _open(job: GenerationJob, history: list[MessageRecord], model: str) -> tuple[Any, int]:
    """The model's stream for this reply, and the calls it took: one, or two when the
    first was refused for attachments the error named by kind or place."""
    settings = get_settings()
    refused: set[PartAt] = set()
    reads: dict[str, bytes] = {}  # what the first try read, the second does not read again
    calls = 0
    while True:
        prompt = chat_messages(job.owner, history, model, frozenset(refused), reads)
        calls += 1
        try:
            stream = model_client().chat.completions.create(
                model=model,
                messages=prompt.messages,
                stream=True,
                stream_options={"include_usage": True},
                # A long answer ends `length`; it never fails for being long.
                max_completion_tokens=settings.max_reply_tokens,
            )
            return stream, calls
        except Exception as error:
            refusal = attachment_refusal(error)
            parts = refused_parts(prompt, refusal) if refusal else []
            if refusal is None or not parts:
                raise
            _remember(job, history, model, parts)
            refused |= {sent.at for sent in parts}
            retry = calls == 1 and (refusal.kind is not None or refusal.position in prompt.sent)
            logger.warning(
                "the model refused attachments",
                extra={
                    "refused": len(parts),
                    "kind": refusal.kind,
                    "retry": retry,
                    "error_message": refusal.message,
                },
            )
            if not retry:
                raise AttachmentRefused(parts, refusal) from error


def refused_parts(prompt: Prompt, refusal: Refusal) -> list[Sent]:
    """The attachments of `prompt` that `refusal` is about: the one it points at, unless
    it refuses a whole kind; else every attachment of the kind it names; else (it says
    neither) every attachment of the call."""
    pointed = prompt.sent.get(refusal.position) if refusal.position else None
    if pointed is not None and not (refusal.whole_kind and refusal.kind == pointed.kind):
        return [pointed]
    if refusal.kind is not None:
        return prompt.attachments(refusal.kind)
    return prompt.attachments()


def _remember(job: GenerationJob, history: list[MessageRecord], model: str, parts: list[Sent]) -> None:
    by_message: dict[str, set[str]] = defaultdict(set)
    for sent in parts:
        message_index, part_index = sent.at
        by_message[history[message_index].id].add(refused_entry(part_index, model))
    for message_id, entries in by_message.items():
        message_rows.mark_refused(job.owner, job.thread_id, message_id, entries)


def _cut_to_room(piece: str, chars: int, room: int) -> tuple[str, bool]:
    """The piece, cut to `chars` characters and `room` UTF-8 bytes if it does not fit in
    them; and whether the reply is now full."""
    if len(piece) < chars and len(piece.encode()) < room:
        return piece, False
    cut = piece[: max(0, chars)].encode()[: max(0, room)].decode("utf-8", errors="ignore")
    return cut, True


def finish(
    lease: Lease,
    writer: StreamWriter,
    end: DeltaRecord,
    model: str | None,
    usage: Usage | None,
    finish_reason: str | None,
    *,
    chunks: int = 0,
    model_calls: int = 1,
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
        "stopped" if stopped else "success",
        model_calls=model_calls,
        writes=writer.last_seq + 1,
        chunks=chunks,
    )
