"""An account's erasure: its one row, and the pages of the owner's rows it removes.

The erasure row (`OWNER#{owner}`, `ERASURE`) is the only row of the owner an erasure
keeps: its status fences the owner's writes while it runs, its phase is where a crashed
run resumes, and once it is done it is the operator's audit record (owner, times,
counts; no content). Every other row of the owner is in `OWNER#{owner}` or in one of
their threads' partitions (`OWNER#{owner}#THREAD#{id}`), so every row is found from the
owner alone.
"""

from __future__ import annotations

from typing import Any

from agentfiles.data import keys, table
from agentfiles.data.errors import ConditionFailed
from agentfiles.data.table import cond
from agentfiles.models.account import ErasureRecord

ERASURE_SK = "ERASURE"


def erasure_key(owner: str) -> keys.Key:
    return keys.Key(keys.owner_pk(owner), ERASURE_SK)


def get_erasure(owner: str) -> ErasureRecord | None:
    row = table.get(erasure_key(owner))
    return table.record_of(ErasureRecord, row) if row else None


def begin(record: ErasureRecord) -> bool:
    """Write a new erasure row, unless one is pending (then False: it goes on)."""
    try:
        table.put(
            table.row_of(record, erasure_key(record.owner)),
            when=cond("attribute_not_exists(#pk) OR #status = :done", done="done"),
        )
    except ConditionFailed:
        return False
    return True


def save(record: ErasureRecord) -> None:
    """Where the erasure got to (a checkpoint after each page)."""
    table.put(table.row_of(record, erasure_key(record.owner)))


def fence(owner: str) -> table.Check:
    """What every write transaction of the owner's requests also checks: no erasure of
    theirs is running."""
    return table.Check(
        erasure_key(owner), cond("attribute_not_exists(#pk) OR #status <> :pending", pending="pending")
    )


def erasing(owner: str) -> bool:
    """Is an erasure of the owner running? One small consistent read."""
    row = table.get(erasure_key(owner), attributes=("status",))
    return bool(row) and row.get("status") == "pending"


def thread_ids(owner: str, limit: int) -> list[str]:
    """The owner's first thread rows, whatever their status."""
    page = table.query(keys.owner_pk(owner), prefix=keys.thread_sk(""), limit=limit, consistent=True)
    return [str(row["sk"]).removeprefix(keys.thread_sk("")) for row in page.rows]


def thread_partition_keys(owner: str, thread_id: str, limit: int) -> list[keys.Key]:
    """The first rows of a thread's partition: messages, deltas, markers, idempotency keys,
    subscriptions."""
    page = table.query(keys.thread_pk(owner, thread_id), limit=limit, consistent=True)
    return [keys.Key.of(row) for row in page.rows]


def owner_row_keys(
    owner: str, limit: int, start: dict[str, Any] | None = None
) -> tuple[list[keys.Key], dict[str, Any] | None]:
    """A page of the owner's partition but the erasure row and threads (files, hashes,
    usage and its quota, day rows, rate windows, connections, retention), and where the
    next page starts."""
    page = table.query(keys.owner_pk(owner), limit=limit, consistent=True, start=start)
    found = [
        keys.Key.of(row)
        for row in page.rows
        if row["sk"] != ERASURE_SK and not str(row["sk"]).startswith(keys.thread_sk(""))
    ]
    return found, page.next_start


def delete(row_keys: list[keys.Key]) -> int:
    return table.delete_many(row_keys)
