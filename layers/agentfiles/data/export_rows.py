"""Export rows: one per export, and one lock per owner so that one export runs at a time.

The lock (`OWNER#{owner}`, `EXPORT#LOCK`) is taken in the transaction that writes a new
export row, renewed by the worker at each checkpoint, and removed when the export ends;
one whose worker died for good frees itself at `lockUntil`.
"""

from __future__ import annotations

from agentfiles.data import keys, table
from agentfiles.data.errors import ConditionFailed, TransactionCancelled
from agentfiles.data.table import Put, cond
from agentfiles.models.exports import ExportRecord
from agentfiles.topology import TTL_ATTRIBUTE

LOCK_SK = "EXPORT#LOCK"


def export_key(owner: str, export_id: str) -> keys.Key:
    return keys.Key(keys.owner_pk(owner), f"EXPORT#{export_id}")


def _lock_key(owner: str) -> keys.Key:
    return keys.Key(keys.owner_pk(owner), LOCK_SK)


def begin(record: ExportRecord, now_ms: int, lock_until_ms: int, expires_at_s: int) -> bool:
    """The new export and the owner's lock, in one transaction; False while another
    export of the owner holds the lock."""
    lock = _lock_key(record.owner)
    try:
        table.transact(
            [
                Put(
                    {"pk": lock.pk, "sk": lock.sk, "exportId": record.id, "lockUntil": lock_until_ms},
                    when=cond("attribute_not_exists(#pk) OR #lockUntil < :now", now=now_ms),
                ),
                Put(
                    table.row_of(
                        record, export_key(record.owner, record.id), **{TTL_ATTRIBUTE: expires_at_s}
                    ),
                    when=cond("attribute_not_exists(#pk)"),
                ),
            ]
        )
    except TransactionCancelled as cancelled:
        if cancelled.failed(0):
            return False
        raise
    return True


def get(owner: str, export_id: str) -> ExportRecord | None:
    row = table.get(export_key(owner, export_id))
    return table.record_of(ExportRecord, row) if row else None


def renew_lock(owner: str, export_id: str, lock_until_ms: int) -> None:
    try:
        table.update(
            _lock_key(owner), set={"lockUntil": lock_until_ms}, when=cond("#exportId = :id", id=export_id)
        )
    except ConditionFailed:
        pass  # the lock lapsed and another export took it: this one still finishes


def end(record: ExportRecord) -> None:
    """The export's final status, then the owner's lock released (a crash between leaves
    the lock until its `lockUntil`)."""
    changes = {
        "status": record.status,
        "finishedAt": record.finished_at,
        "bytes": record.bytes,
        "error": record.error,
    }
    table.update(
        export_key(record.owner, record.id),
        set={k: v for k, v in changes.items() if v is not None},
        when=cond("attribute_exists(#pk)"),
    )
    try:
        table.delete(_lock_key(record.owner), when=cond("#exportId = :id", id=record.id))
    except ConditionFailed:
        pass  # already released, or taken by a later export
