"""The sweep index's rows: work that must finish (pending replies, threads being
deleted) carries `sweepShard` and `sweepAt`; past `sweepAt` it counts as stuck."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentfiles.data import keys, table
from agentfiles.data.errors import ConditionFailed
from agentfiles.data.table import cond
from agentfiles.models.messages import MessageRecord
from agentfiles.models.threads import ThreadRecord
from agentfiles.topology import SWEEP_INDEX


@dataclass(frozen=True)
class SweepDue:
    """An entry of the sweep index whose time has come. The index is keys-only and
    eventually consistent, so the row is read again before anything is decided."""

    owner: str
    thread_id: str
    reply_id: str | None  # None for a thread
    sweep_at: int


@dataclass(frozen=True)
class SweepPage:
    due: list[SweepDue]
    # Where the next page of this shard starts; None when the shard is read to its end.
    next_start: dict[str, Any] | None


def _sweep_due(row: table.Row) -> SweepDue:
    sweep_at = int(row[SWEEP_INDEX.sort_key])
    if row["sk"].startswith(keys.message_sk("")):
        # pk OWNER#{owner}#THREAD#{threadId}: owners never contain '#' (the API refuses them).
        owner, _, thread_id = row["pk"].removeprefix(keys.owner_pk("")).partition("#" + keys.thread_sk(""))
        return SweepDue(owner, thread_id, row["sk"].removeprefix(keys.message_sk("")), sweep_at)
    return SweepDue(
        row["pk"].removeprefix(keys.owner_pk("")), row["sk"].removeprefix(keys.thread_sk("")), None, sweep_at
    )


def due_for_sweep(shard: str, now_ms: int, limit: int, start: dict[str, Any] | None) -> SweepPage:
    """One page of a sweep shard (`REPLY#n` or `THREAD#n`): rows whose sweepAt has
    passed, the longest overdue first."""
    page = table.index_page(SWEEP_INDEX, shard, now_ms, limit, start)
    return SweepPage([_sweep_due(row) for row in page.rows], page.next_start)


@dataclass(frozen=True)
class SweptReply:
    record: MessageRecord
    sweep_at: int | None
    lease_until: int | None
    resends: int = 0


@dataclass(frozen=True)
class SweptThread:
    record: ThreadRecord
    sweep_at: int | None


def get_swept_reply(owner: str, thread_id: str, reply_id: str) -> SweptReply | None:
    """A reply with the attributes the sweep decides by (sweepAt, leaseUntil)."""
    row = table.get(keys.message_key(owner, thread_id, reply_id))
    if not row:
        return None
    return SweptReply(
        table.record_of(MessageRecord, row),
        row.get("sweepAt"),
        row.get("leaseUntil"),
        row.get("sweepResends", 0),
    )


def get_swept_thread(owner: str, thread_id: str) -> SweptThread | None:
    row = table.get(keys.thread_key(owner, thread_id))
    return SweptThread(table.record_of(ThreadRecord, row), row.get("sweepAt")) if row else None


def _update_if(key: keys.Key, condition: table.Condition, **changes: Any) -> bool:
    """One conditional update; False when the row moved on since it was read (a
    worker or another sweep got there first), which the sweep takes as done."""
    try:
        table.update(key, when=condition, **changes)
    except ConditionFailed:
        return False
    return True


def move_reply_sweep(
    owner: str, thread_id: str, reply_id: str, *, seen_sweep_at: int, seen_status: str, sweep_at: int
) -> bool:
    """Push a reply's sweep time forward, only if it is still as the sweep read it.
    Winning this write is what entitles a sweep to re-send the job, so overlapping
    runs send it once."""
    return _update_if(
        keys.message_key(owner, thread_id, reply_id),
        cond("#sweepAt = :seen AND #status = :status", seen=seen_sweep_at, status=seen_status),
        set={"sweepAt": sweep_at},
        add={"sweepResends": 1},
    )


def remove_reply_sweep(owner: str, thread_id: str, reply_id: str, *, seen_sweep_at: int) -> bool:
    """Take an ended reply (success, failed or stopped) out of the sweep index."""
    return _update_if(
        keys.message_key(owner, thread_id, reply_id),
        cond(
            "#sweepAt = :seen AND #status IN (:success, :failed, :stopped)",
            seen=seen_sweep_at,
            success="success",
            failed="failed",
            stopped="stopped",
        ),
        remove=["sweepShard", "sweepAt"],
    )


def move_thread_sweep(owner: str, thread_id: str, *, seen_sweep_at: int, sweep_at: int) -> bool:
    """Push a deleting thread's sweep time forward (see `move_reply_sweep`)."""
    return _update_if(
        keys.thread_key(owner, thread_id),
        cond("#sweepAt = :seen AND #status = :deleting", seen=seen_sweep_at, deleting="deleting"),
        set={"sweepAt": sweep_at},
    )


def remove_thread_sweep(owner: str, thread_id: str, *, seen_sweep_at: int) -> bool:
    """Take a thread that is not being deleted out of the sweep index."""
    return _update_if(
        keys.thread_key(owner, thread_id),
        cond("#sweepAt = :seen AND #status <> :deleting", seen=seen_sweep_at, deleting="deleting"),
        remove=["sweepShard", "sweepAt"],
    )
