"""A reply's stream: one row per flush, `seq` 1, 2, 3, ... in the thread's partition
(`DELTA#{replyId}#{seq:010d}`, out of reach of message pages and history).

Rows are only ever added, each with `attribute_not_exists`: a seq is written once, by
whoever gets there first. That makes the stream its own lock. A writer that finds its
next seq taken has been fenced off (a new lease holder wrote a `reset` there, or a stop
wrote an `end`), and stops; see `agentfiles.logic.live` for the protocol. Each row
expires (TTL) STREAM_RETENTION_SECONDS after it is written; they also go with their
message and their thread.
"""

from __future__ import annotations

from agentfiles.data import keys, table
from agentfiles.data.errors import ConditionFailed
from agentfiles.data.table import cond
from agentfiles.models.live import DeltaRecord
from agentfiles.models.messages import MessageRef
from agentfiles.topology import TTL_ATTRIBUTE

_LAST_SEQ = 10**keys.SEQ_DIGITS - 1


def _key(ref: MessageRef, seq: int) -> keys.Key:
    return keys.delta_key(ref.owner, ref.thread_id, ref.message_id, seq)


def _record(row: table.Row) -> DeltaRecord:
    return table.record_of(DeltaRecord, row)


def append(ref: MessageRef, delta: DeltaRecord, expires_at_s: int) -> DeltaRecord | None:
    """Write the row at `delta.seq` unless that seq is taken. Returns None when written,
    else the row that holds the seq (DynamoDB hands it back with the refusal)."""
    row = table.row_of(delta, _key(ref, delta.seq), **{TTL_ATTRIBUTE: expires_at_s})
    if not delta.reset:
        row.pop("reset", None)
    try:
        table.put(row, when=cond("attribute_not_exists(#pk)"))
    except ConditionFailed as taken:
        return _record(taken.item) if taken.item else DeltaRecord(seq=delta.seq)
    return None


def at(ref: MessageRef, seq: int) -> DeltaRecord | None:
    row = table.get(_key(ref, seq))
    return _record(row) if row else None


def tail(ref: MessageRef) -> DeltaRecord | None:
    """The last row of the stream (one Query of one row), or None for an empty stream."""
    page = table.query(
        keys.thread_pk(ref.owner, ref.thread_id),
        prefix=keys.stream_prefix(ref.message_id),
        limit=1,
        newest_first=True,
        consistent=True,
    )
    return _record(page.rows[0]) if page.rows else None


def after(ref: MessageRef, seq: int) -> list[DeltaRecord]:
    """The rows after `seq`, in order: one Query (a reply's text fits in one 1 MB page;
    a larger stream is read to its end all the same)."""
    pk = keys.thread_pk(ref.owner, ref.thread_id)
    low, high = (keys.delta_sk(ref.message_id, seq + 1), keys.delta_sk(ref.message_id, _LAST_SEQ))
    rows: list[table.Row] = []
    start = None
    while True:
        page = table.query(pk, between=(low, high), consistent=True, start=start)
        rows += page.rows
        if not page.next_start:
            return [_record(row) for row in rows]
        start = page.next_start


def read_all(ref: MessageRef) -> list[DeltaRecord]:
    return after(ref, 0)


def delete_rows(ref: MessageRef, seqs: list[int]) -> int:
    """Remove these rows of the stream; returns how many were asked for."""
    return table.delete_many(_key(ref, seq) for seq in seqs)
