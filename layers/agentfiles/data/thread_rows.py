"""Thread rows."""

from __future__ import annotations

from agentfiles.data import keys, table
from agentfiles.data.errors import ConditionFailed
from agentfiles.data.table import cond
from agentfiles.models.common import iso_from_ms
from agentfiles.models.threads import ThreadRecord


def put_thread(record: ThreadRecord, created_ms: int) -> None:
    marker = keys.idle_marker(record.id, created_ms)
    table.put_new(table.row_of(record, keys.thread_key(record.owner, record.id), **marker))


def get_thread(owner: str, thread_id: str) -> ThreadRecord | None:
    row = table.get(keys.thread_key(owner, thread_id))
    return table.record_of(ThreadRecord, row) if row else None


def list_threads(owner: str, limit: int, cursor: str | None) -> tuple[list[ThreadRecord], str | None]:
    rows, next_cursor = table.query_page(
        keys.owner_pk(owner),
        keys.thread_sk(""),
        limit,
        cursor,
        only=cond("#status = :active", active="active"),
    )
    return [table.record_of(ThreadRecord, row) for row in rows], next_cursor


def mark_thread_deleting(
    owner: str, thread_id: str, now_ms: int, sweep_at_ms: int, *, idle_since: str | None = None
) -> bool:
    """active → deleting (or stays deleting). The sweep marker makes the vacuum
    re-send the cleanup job if it is lost. Returns False when there is no thread, or,
    with `idle_since`, when the thread is no longer active with that `updatedAt` (a
    message came in since retention found it old)."""
    when = cond("attribute_exists(#pk)")
    if idle_since is not None:
        when = cond("#status = :active AND #updatedAt = :seen", active="active", seen=idle_since)
    try:
        table.update(
            keys.thread_key(owner, thread_id),
            set={
                "status": "deleting",
                "updatedAt": iso_from_ms(now_ms),
                "sweepShard": keys.sweep_shard(keys.THREAD_SWEEP, thread_id),
                "sweepAt": sweep_at_ms,
            },
            when=when,
        )
    except ConditionFailed:
        return False
    return True


def delete_thread_row(owner: str, thread_id: str) -> None:
    try:
        table.delete(keys.thread_key(owner, thread_id), when=cond("#status = :deleting", deleting="deleting"))
    except ConditionFailed:
        pass  # an earlier delivery of the same job deleted it
