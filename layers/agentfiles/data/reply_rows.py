"""The assistant reply's row as generation moves it along.

pending ──take_lease──▶ streaming ──finish──▶ success | stopped
   ▲                        │ └────fail────▶ failed
   └────release_lease───────┘ (a retryable error: back to pending for the next try)

Every write after the lease is conditioned on holding it (`leaseId`), so a second
delivery or a second worker can never write into a reply another one owns, and a
deleted reply stops its writer. Each take counts a `generation`: the first holder
streams from seq 1, a later one fences off whoever held it before (`logic.live`).
While streaming, the text lives in the reply's stream (`data.delta_rows`); the row gets it
once, when the reply ends, with `lastSeq`.
The write that ends a reply also counts it on the owner's usage of the day
(`usage.count_reply`), in the same transaction: once per reply, however often its job
is delivered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from agentfiles.data import keys, refcounts, table
from agentfiles.data.errors import ConditionFailed, TransactionCancelled
from agentfiles.data.table import Delete, Update, cond
from agentfiles.data.usage_rows import count_reply
from agentfiles.models.common import iso_from_ms
from agentfiles.models.messages import MessageError, MessageRecord, MessageRef, Part, Usage

# Attributes a reply sheds when it ends: no lease, and nothing left for the sweep.
_ENDED = ("leaseId", "leaseUntil", "sweepShard", "sweepAt")


@dataclass(frozen=True)
class Taken:
    """A reply as its new lease holder found it, and how many times it was taken."""

    record: MessageRecord
    generation: int


@dataclass(frozen=True)
class Lease:
    """One worker's hold on one reply."""

    reply: MessageRef
    id: str

    @property
    def key(self) -> keys.Key:
        return keys.message_key(self.reply.owner, self.reply.thread_id, self.reply.message_id)

    def holds(self) -> table.Condition:
        return cond("#leaseId = :lease", lease=self.id)


def take_lease(lease: Lease, now_ms: int, lease_until_ms: int) -> Taken | None:
    """pending → streaming under this lease, or take over a streaming reply whose lease
    ran out. Returns the reply, or None when it is someone else's, ended, or gone."""
    try:
        row = table.update(
            lease.key,
            set={
                "status": "streaming",
                "leaseId": lease.id,
                "leaseUntil": lease_until_ms,
                "sweepAt": lease_until_ms,
                "updatedAt": iso_from_ms(now_ms),
            },
            add={"generation": 1},
            when=cond(
                "attribute_exists(#pk) AND "
                "(#status = :pending OR (#status = :streaming AND #leaseUntil < :now))",
                pending="pending",
                streaming="streaming",
                now=now_ms,
            ),
            returns="new",
        )
    except ConditionFailed:
        return None
    return Taken(table.record_of(MessageRecord, row), int(row["generation"])) if row else None


def renew_lease(lease: Lease, lease_until_ms: int) -> bool:
    """Move the end of this holder's lease (its heartbeat). False when the lease is lost:
    taken over after it ran out, ended by a stop, or the reply deleted."""
    try:
        table.update(
            lease.key,
            set={"leaseUntil": lease_until_ms},
            when=cond("#leaseId = :lease AND #status = :streaming", lease=lease.id, streaming="streaming"),
        )
    except ConditionFailed:
        return False
    return True


def read(reply: MessageRef) -> table.Row | None:
    """The raw row, lease attributes included."""
    return table.get(keys.message_key(reply.owner, reply.thread_id, reply.message_id))


def _update(lease: Lease, **changes: Any) -> MessageRecord | None:
    """One update of the reply, only while this lease holds it. Returns the reply as it
    is now, or None when the lease is lost (taken over, or the reply deleted)."""
    try:
        row = table.update(lease.key, when=lease.holds(), returns="new", **changes)
    except ConditionFailed:
        return None
    return table.record_of(MessageRecord, row) if row else None


def _not_live(lease: Lease) -> Delete:
    """The reply's marker of being made goes with the write that counts its end."""
    return Delete(keys.live_key(lease.reply.owner, lease.reply.thread_id, lease.reply.message_id))


def _end(lease: Lease, changes: dict[str, Any], *counted: Update) -> MessageRecord | None:
    """ONE transaction: the reply's last write, only while this lease holds it, with
    the items that count it. Returns the reply as it ended (a transaction returns no
    item, so one consistent read), or None when the lease is lost. For an end whose
    row stays small (a picture's part); a text goes through `_count_then_end`."""
    end = Update(lease.key, set=changes, remove=_ENDED, when=lease.holds())
    try:
        table.transact([end, *counted, _not_live(lease)])
    except TransactionCancelled as cancelled:
        if cancelled.failed(0):
            return None
        raise
    row = table.get(lease.key)
    return table.record_of(MessageRecord, row) if row else None


def _count_then_end(lease: Lease, changes: dict[str, Any], counted: Update) -> MessageRecord | None:
    """The reply counted on the day's usage, once, then its last write.

    A write in a transaction costs twice its item's size, and the last write carries
    the whole text: so the count goes first, in a small transaction with the reply row
    while that row is still small (its text is in the stream until now), marking the
    row `counted`; the text then goes in one plain update. A holder that dies between
    the two leaves the row counted: the next holder finds it so and only ends it."""
    mark = Update(
        lease.key,
        set={"counted": True},
        when=cond("#leaseId = :lease AND attribute_not_exists(#counted)", lease=lease.id),
    )
    try:
        table.transact([mark, counted, _not_live(lease)])
    except TransactionCancelled as cancelled:
        if not cancelled.failed(0):
            raise
        row = table.get(lease.key)
        if row is None or row.get("leaseId") != lease.id:
            return None  # the lease is lost: taken over, or the reply deleted
        # Counted already, by a holder before this one.
    return _update(lease, set=changes, remove=_ENDED)


def finish(
    lease: Lease,
    *,
    text: str,
    model: str | None,
    usage: Usage | None,
    finish_reason: str | None,
    now_ms: int,
    last_seq: int,
    status: Literal["success", "stopped"] = "success",
    job: Literal["chat", "image"] = "chat",
) -> MessageRecord | None:
    """The one write of the whole text: the reply ends with what its stream holds."""
    changes: dict[str, Any] = {
        "content": [{"type": "text", "text": text}] if text else [],
        "status": status,
        "updatedAt": iso_from_ms(now_ms),
        "finishReason": finish_reason or ("stop" if status == "success" else status),
        "lastSeq": last_seq,
    }
    if model:
        changes["model"] = model
    if usage:
        changes["usage"] = usage.dump()
    return _count_then_end(lease, changes, count_reply(lease.reply.owner, job, usage, now_ms))


def finish_with_file(
    lease: Lease, *, content: list[Part], file_id: str, model: str, now_ms: int
) -> MessageRecord | None:
    """ONE transaction: the reply gets its picture and holds one reference on it."""
    owner = lease.reply.owner
    changes = {
        "content": [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in content],
        "fileIds": [file_id],
        "status": "success",
        "model": model,
        "updatedAt": iso_from_ms(now_ms),
        "finishReason": "stop",
    }
    return _end(
        lease, changes, *refcounts.take(owner, [file_id], now_ms), count_reply(owner, "image", None, now_ms)
    )


def fail(
    lease: Lease,
    error: MessageError,
    now_ms: int,
    *,
    job: Literal["chat", "image"],
    text: str = "",
    last_seq: int | None = None,
) -> MessageRecord | None:
    """The reply fails, keeping what its stream had streamed (if anything); it still
    counts as a reply (or image) of the day."""
    changes: dict[str, Any] = {"status": "failed", "error": error.dump(), "updatedAt": iso_from_ms(now_ms)}
    if last_seq is not None:
        changes |= {"lastSeq": last_seq, "content": [{"type": "text", "text": text}] if text else []}
    return _count_then_end(lease, changes, count_reply(lease.reply.owner, job, None, now_ms))


def release_lease(lease: Lease, sweep_at_ms: int, now_ms: int) -> MessageRecord | None:
    """Back to pending, text cleared, for the next delivery of the job to start over."""
    return _update(
        lease,
        set={"status": "pending", "content": [], "sweepAt": sweep_at_ms, "updatedAt": iso_from_ms(now_ms)},
        remove=("leaseId", "leaseUntil"),
    )
