"""Live replies: a reply is written as a stream of delta rows, read back by seq, pushed
to the thread's followers, and stopped on request.

The stream (`data.delta_rows`) is append-only and each seq is written once, so the stream
is its own lock:

- The first holder of a reply's lease writes seq 1, 2, 3, ... one row per flush.
- A later holder (a redelivery after a retryable error, or a takeover after a lease
  ran out) starts by writing a `reset` row at the next free seq. That row fences off
  every earlier holder: a zombie's next write lands on a taken seq, fails, and the
  zombie stops. Its text is superseded, never mixed in: the reply's text is always the
  rows from the last reset on.
- The holder seals the stream with an `end` row (the text since its last flush and
  how it ended), then writes the whole text to the reply row, once, with `lastSeq`.
- A stop seals a live holder's stream with an `end` (stopped) row: the holder's next
  write meets it, it closes the model's stream and ends the reply `stopped` with the
  text streamed so far. A reply that no worker is writing is stopped under a lease.

So, always: the seqs are 1..lastSeq with no gap, nothing is ever written after an end
row, and the rows from the last reset to the end are exactly the reply's text.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from agentfiles.data import delta_rows, message_rows, reply_rows
from agentfiles.data.reply_rows import Lease
from agentfiles.errors import Conflict, NotFound
from agentfiles.logic import push
from agentfiles.models.common import now_ms
from agentfiles.models.live import DeltaFrame, DeltaOut, DeltaRecord, StreamEnd, StreamOut
from agentfiles.models.messages import (
    ENDED_STATUSES,
    MAX_TEXT_CHARS,
    MessageError,
    MessageRecord,
    MessageRef,
)
from agentfiles.settings import get_settings

# One flush never carries more than this: rows and frames stay far below their limits.
DELTA_MAX_CHARS = 16_000
# The reply row holds the whole text once the reply ends, as one text part: at most
# MAX_TEXT_CHARS characters, and bytes that leave room in a 400 KB item for the rest of
# the row. A reply that reaches either ends `length` (it never fails for its length).
MAX_REPLY_TEXT_BYTES = 350_000
MAX_REPLY_TEXT_CHARS = MAX_TEXT_CHARS
# Attempts at the next free seq against a writer that keeps taking it (each one costs
# a single conditional put: the refusal says which row is in the way).
CLAIM_ATTEMPTS = 1000
STOP_LEASE_MS = 60_000


class LeaseLost(Exception):
    """Another holder took the reply over, or it was deleted: stop writing."""


class Stopped(Exception):
    """A stop sealed the stream: `end` is its row."""

    def __init__(self, end: DeltaRecord) -> None:
        super().__init__(f"stopped at seq {end.seq}")
        self.end = end


def _expires_at_s() -> int:
    return now_ms() // 1000 + get_settings().stream_retention_seconds


def text_of(rows: list[DeltaRecord]) -> str:
    """The text a stream holds: its rows from the last reset on."""
    start = max((i for i, row in enumerate(rows) if row.reset), default=0)
    return "".join(row.text for row in rows[start:])


def delta_frame(ref: MessageRef, row: DeltaRecord) -> DeltaFrame:
    return DeltaFrame(
        thread_id=ref.thread_id,
        message_id=ref.message_id,
        seq=row.seq,
        text=row.text,
        reset=row.reset or None,
    )


@dataclass
class StreamWriter:
    """One lease holder's end of a reply's stream."""

    ref: MessageRef
    next_seq: int
    parts: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """What this holder has streamed (the reply's text so far)."""
        return "".join(self.parts)

    @property
    def last_seq(self) -> int:
        return self.next_seq - 1

    def flush(self, text: str) -> None:
        """One delta row, pushed to the thread's followers. Raises `Stopped` when a stop
        sealed the stream, `LeaseLost` when another holder fenced this one off."""
        row = DeltaRecord(seq=self.next_seq, text=text)
        self._write(row)
        self.parts.append(text)
        push.publish(self.ref.owner, self.ref.thread_id, [delta_frame(self.ref, row)])

    def end(self, status: StreamEnd, text: str = "", finish_reason: str | None = None) -> DeltaRecord:
        """Seal the stream. Returns the row that ended it: this one, or a stop's that
        got there first (the reply then ends stopped). Pushes nothing: the caller pushes
        the last delta together with the final message."""
        row = DeltaRecord(seq=self.next_seq, text=text, end=status, finish_reason=finish_reason)
        try:
            self._write(row)
        except Stopped as stopped:
            return stopped.end
        self.parts.append(text)
        return row

    def _write(self, row: DeltaRecord) -> None:
        found = delta_rows.append(self.ref, row, _expires_at_s())
        if found is None:
            self.next_seq += 1
            return
        if found.end == "stopped" and not found.reset:
            raise Stopped(found)
        raise LeaseLost


# Milliseconds since the epoch: `now_ms`, or a test's clock.
Clock = Callable[[], int]


@dataclass
class Heartbeat:
    """A chat holder's short lease, renewed as the reply streams: once half of it is
    spent, the next `keep` moves its end `beat_ms` past now (one conditional write per
    half beat, whatever the chunk rate), never past `bound_ms` (LEASE_SECONDS after the
    take). A holder that stops being heard from (killed, frozen) loses the reply within
    a beat: a redelivery takes it over, a stop concludes it."""

    lease: Lease
    clock: Clock
    beat_ms: int
    bound_ms: int
    until_ms: int

    @classmethod
    def start(cls, lease: Lease, clock: Clock, taken_at_ms: int) -> Heartbeat:
        settings = get_settings()
        bound = taken_at_ms + settings.lease_seconds * 1000
        beat = settings.lease_heartbeat_seconds * 1000
        return cls(lease, clock, beat, bound, min(bound, taken_at_ms + beat))

    def keep(self) -> None:
        """Renew the lease if half of it is spent. Raises `LeaseLost` when it is lost."""
        now = self.clock()
        if self.until_ms - now > self.beat_ms // 2 or self.until_ms >= self.bound_ms:
            return
        until = min(self.bound_ms, now + self.beat_ms)
        if not reply_rows.renew_lease(self.lease, until):
            raise LeaseLost
        self.until_ms = until


@dataclass(frozen=True)
class Sealed:
    """The stream already ended (a stop, or a holder that died after its end row): the
    reply is concluded from it, without the model."""

    rows: list[DeltaRecord]

    @property
    def end(self) -> DeltaRecord:
        return self.rows[-1]


def open_stream(ref: MessageRef, generation: int) -> StreamWriter | Sealed:
    """Where a new lease holder starts: seq 1 for the first holder of a fresh reply;
    otherwise a reset row at the next free seq, which fences off any earlier holder."""
    tail = delta_rows.tail(ref)
    if tail is None and generation == 1:
        return StreamWriter(ref, next_seq=1)
    written, ours = _claim_next(ref, tail, reset=True)
    if not ours:
        return Sealed(delta_rows.read_all(ref))
    push.publish(ref.owner, ref.thread_id, [delta_frame(ref, written)])
    return StreamWriter(ref, next_seq=written.seq + 1)


def _claim_next(
    ref: MessageRef, tail: DeltaRecord | None, *, reset: bool = False, end: StreamEnd | None = None
) -> tuple[DeltaRecord, bool]:
    """Write a reset or end row at the first free seq after `tail`, racing whoever else
    writes: each refusal names the row in the way, so the next seq is tried at once.
    Returns the row written and True, or the end row found in the way and False."""
    for _ in range(CLAIM_ATTEMPTS):
        if tail is not None and tail.end is not None:
            return tail, False
        row = DeltaRecord(seq=tail.seq + 1 if tail else 1, reset=reset, end=end)
        found = delta_rows.append(ref, row, _expires_at_s())
        if found is None:
            return row, True
        tail = found
    raise Conflict("the reply's stream kept changing; retry", code="conflict")


def stop_requested(ref: MessageRef) -> bool:
    """Whether a stop sealed the stream (for work that writes no deltas, like a picture)."""
    tail = delta_rows.tail(ref)
    return tail is not None and tail.end == "stopped"


def seal(ref: MessageRef, status: StreamEnd) -> DeltaRecord:
    """End the stream with an `end` row at the next free seq, unless it has one already.
    Returns the stream's end row. Whoever writes after it finds its seq taken."""
    tail = delta_rows.tail(ref)
    if tail is not None and tail.end is not None:
        return tail
    written, ours = _claim_next(ref, tail, end=status)
    if ours:
        push.publish(ref.owner, ref.thread_id, [delta_frame(ref, written)])
    return written


def conclude(lease: Lease, record: MessageRecord, rows: list[DeltaRecord]) -> MessageRecord | None:
    """End the reply row as its sealed stream says (`rows` end with the end row), and
    push the final message. None when the lease was lost meanwhile."""
    end = rows[-1]
    text, now, job = text_of(rows), now_ms(), record.job or "chat"
    if end.end == "failed":
        error = MessageError(code="generation_failed", message="the reply could not be finished")
        final = reply_rows.fail(lease, error, now, job=job, text=text, last_seq=end.seq)
    else:
        final = reply_rows.finish(
            lease,
            text=text,
            model=None,
            usage=None,
            finish_reason=end.finish_reason,
            now_ms=now,
            last_seq=end.seq,
            status="stopped" if end.end == "stopped" else "success",
            job=job,
        )
    if final is not None:
        push.publish_messages(final)
    return final


# ---- the API's side: catch up, stop ---------------------------------------------


def catch_up(owner: str, thread_id: str, message_id: str, after: int) -> StreamOut:
    """The deltas after `after`: one Query while the reply is being written. The reply
    row (and its thread) is read as well when nothing is past `after` (not started,
    ended, or not there) and when the page holds the end row: the writer seals the
    stream before it writes the reply's text, so only the reply row can say the reply
    has ended. An ended status here means a read of the message finds it ended, with its
    whole text. Deleting a thread seals the streams of its replies first, so a deleted
    thread's reply always reaches the read, and is not found."""
    ref = MessageRef(owner, thread_id, message_id)
    rows = delta_rows.after(ref, after)
    out = [DeltaOut(seq=row.seq, text=row.text, reset=row.reset or None) for row in rows]
    if rows and rows[-1].end is None:
        return StreamOut(message_id=message_id, status="streaming", deltas=out, last_seq=rows[-1].seq)
    record = message_rows.get_in_active_thread(owner, thread_id, message_id)
    if record is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    if rows:
        return StreamOut(message_id=message_id, status=record.status, deltas=out, last_seq=rows[-1].seq)
    last = record.last_seq if record.status in ENDED_STATUSES and record.last_seq is not None else after
    return StreamOut(message_id=message_id, status=record.status, deltas=[], last_seq=last)


@dataclass(frozen=True)
class StopOutcome:
    message: MessageRecord
    # True when the stop changed something (202), False when the reply had ended (200).
    accepted: bool


def stop_reply(owner: str, thread_id: str, message_id: str) -> StopOutcome:
    """Stop a reply. Ended: unchanged. Not being written (pending, or its worker's lease
    ran out): stopped here, under a lease, keeping what its stream holds. Being written:
    its stream is sealed, and its worker ends it within a flush."""
    record = message_rows.get_in_active_thread(owner, thread_id, message_id)
    if record is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    if record.role != "assistant":
        raise Conflict("only an assistant reply can be stopped", code="not_a_reply")
    outcome = _stop(record)
    if outcome is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    return outcome


def _stop(record: MessageRecord) -> StopOutcome | None:
    """Stop a reply as read in `record`; None when it is gone meanwhile."""
    if record.status in ENDED_STATUSES:
        return StopOutcome(record, accepted=False)
    ref = MessageRef(record.owner, record.thread_id, record.id)
    lease = Lease(ref, uuid.uuid4().hex)
    now = now_ms()
    taken = reply_rows.take_lease(lease, now, now + STOP_LEASE_MS)
    if taken is not None:
        seal(ref, "stopped")
        final = conclude(lease, taken.record, delta_rows.read_all(ref))
        return StopOutcome(final or record, accepted=True)
    again = message_rows.get_message(record.owner, record.thread_id, record.id)
    if again is None:
        return None
    if again.status in ENDED_STATUSES:
        return StopOutcome(again, accepted=False)
    seal(ref, "stopped")
    return StopOutcome(again, accepted=True)


def stop_thread_replies(owner: str, thread_id: str) -> bool:
    """Stop every reply of a thread that is being deleted, as a stop would: those no
    worker is writing end now, the streams of those being written are sealed (their
    workers end them, and count them, within a flush). True when none is left being
    written; the thread's rows may then go."""
    writing = False
    for reply_id in message_rows.live_replies(owner, thread_id):
        record = message_rows.get_message(owner, thread_id, reply_id)
        outcome = _stop(record) if record is not None else None
        if outcome is None or outcome.message.status in ENDED_STATUSES:
            message_rows.forget_live(owner, thread_id, reply_id)
        else:
            writing = True
    return not writing


def remove_stream(record: MessageRecord) -> None:
    """A reply was deleted: fence off a worker that may still be writing it, then
    remove its rows (the fence expires with the stream's TTL)."""
    if record.role != "assistant":
        return
    ref = MessageRef(record.owner, record.thread_id, record.id)
    fence = None
    if record.status not in ENDED_STATUSES:
        fence = seal(ref, "failed").seq
    rows = delta_rows.read_all(ref)
    delta_rows.delete_rows(ref, [row.seq for row in rows if row.seq != fence])
