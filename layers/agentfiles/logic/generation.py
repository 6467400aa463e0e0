"""Generation: the state machine of one job. A pending reply is taken under a lease,
answered by `chat` (the model's text streamed into the reply) or `drawing` (a picture
the reply holds as a file), and ends success, stopped or failed; or the job comes back
later, its lease released.

One job, one reply: the reply's lease makes a second delivery of the job (or a
second worker) a no-op, and each write after the lease is conditioned on it.
"""

from __future__ import annotations

import uuid

from agentfiles.data import reply_rows
from agentfiles.data.reply_rows import Lease
from agentfiles.logic import chat, drawing, live, push
from agentfiles.logic.live import Clock, LeaseLost, StreamWriter
from agentfiles.logic.prompt import UnsupportedContent
from agentfiles.model_client import ModelFailure, classify
from agentfiles.models.common import now_ms
from agentfiles.models.jobs import GenerationJob, Outcome
from agentfiles.models.messages import ENDED_STATUSES, MessageError
from agentfiles.observability import logger
from agentfiles.settings import get_settings

MAX_RETRY_DELAY_S = 900


class RetryLater(Exception):
    """The job should come back: SQS redelivers it after `delay_s`."""

    def __init__(self, reason: str, delay_s: int):
        super().__init__(reason)
        self.delay_s = delay_s


def run_job(job: GenerationJob, receive_count: int, max_receives: int, clock: Clock = now_ms) -> Outcome:
    """`clock` (ms since the epoch) times the lease and the flushes."""
    settings = get_settings()
    lease = Lease(job.reply, uuid.uuid4().hex)
    now = clock()
    # A picture comes in one call, with nothing to renew the lease on: it is held for
    # the whole job. A chat reply is held for a heartbeat, renewed as it streams.
    heartbeat = live.Heartbeat.start(lease, clock, now)
    until = now + settings.lease_seconds * 1000 if job.kind == "image" else heartbeat.until_ms
    taken = reply_rows.take_lease(lease, now, until)
    if taken is None:
        return _not_taken(job, clock)
    reply = taken.record
    logger.append_keys(
        reply_id=job.reply_id, thread_id=job.thread_id, lease_id=lease.id, generation=taken.generation
    )
    push.publish_messages(reply)
    last_attempt = receive_count >= max_receives
    writer: StreamWriter | None = None
    try:
        if job.kind == "image":
            return drawing.draw(job, reply, lease)
        opened = live.open_stream(job.reply, taken.generation)
        if isinstance(opened, live.Sealed):
            # Stopped (or ended by a holder that died before its last write): the reply
            # is finished from its stream, and the model is never called.
            if live.conclude(lease, reply, opened.rows) is None:
                raise LeaseLost
            return Outcome("skipped" if opened.end.end == "stopped" else "success")
        writer = opened
        return chat.answer(job, reply, lease, writer, heartbeat)
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


def _not_taken(job: GenerationJob, clock: Clock) -> Outcome:
    """The lease was refused: the reply ended already (a duplicate delivery, a stop), is
    gone, or another worker is streaming it right now."""
    row = reply_rows.read(job.reply)
    if row is None or row["status"] in ENDED_STATUSES:
        return Outcome("skipped")
    wait_ms = max(0, int(row.get("leaseUntil", 0)) - clock())
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
            return chat.finish(lease, writer, end, None, None, None)
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
