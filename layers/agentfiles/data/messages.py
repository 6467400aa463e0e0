"""Thread, message and idempotency rows, and the transactions that write messages
together with their reference counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Literal

from agentfiles.data import clients, keys, refcounts
from agentfiles.data.table import (
    TransactionCancelled,
    from_item,
    query_page,
    sparse_index_page,
    table_name,
    to_item,
    to_value,
    transact,
    write_if,
)
from agentfiles.models.common import iso_from_ms
from agentfiles.models.files import FileRecord
from agentfiles.models.messages import MessageRecord
from agentfiles.models.threads import ThreadRecord
from agentfiles.topology import SWEEP_INDEX

_THREAD_ROW_ONLY = ("pk", "sk", "sweepShard", "sweepAt")
_MESSAGE_ROW_ONLY = ("pk", "sk", "sweepShard", "sweepAt", "sweepResends", "leaseId", "leaseUntil")
REPLY_SWEEP = "REPLY"
THREAD_SWEEP = "THREAD"


# ---- threads -------------------------------------------------------------------


def _thread_record(values: dict[str, Any]) -> ThreadRecord:
    """A thread from a row's plain values (see `table.from_item`)."""
    return ThreadRecord.model_validate({k: v for k, v in values.items() if k not in _THREAD_ROW_ONLY})


def put_thread(record: ThreadRecord) -> None:
    row = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    row |= {"pk": keys.owner_pk(record.owner), "sk": keys.thread_sk(record.id)}
    clients.dynamodb().put_item(
        TableName=table_name(), Item=to_item(row), ConditionExpression="attribute_not_exists(pk)"
    )


def get_thread(owner: str, thread_id: str) -> ThreadRecord | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=keys.thread_key(owner, thread_id), ConsistentRead=True
    )
    item = response.get("Item")
    return _thread_record(from_item(item)) if item else None


def list_threads(owner: str, limit: int, cursor: str | None) -> tuple[list[ThreadRecord], str | None]:
    items, next_cursor = query_page(keys.owner_pk(owner), "THREAD#", limit, cursor, only_status="active")
    return [_thread_record(item) for item in items], next_cursor


def mark_thread_deleting(owner: str, thread_id: str, now_ms: int, sweep_at_ms: int) -> bool:
    """active → deleting (or stays deleting). The sweep marker makes the vacuum
    re-send the cleanup job if it is lost. Returns False when there is no thread."""
    response = write_if(
        "update_item",
        Key=keys.thread_key(owner, thread_id),
        UpdateExpression="SET #status = :deleting, updatedAt = :iso, sweepShard = :shard, sweepAt = :at",
        ConditionExpression="attribute_exists(pk)",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":deleting": to_value("deleting"),
            ":iso": to_value(iso_from_ms(now_ms)),
            ":shard": to_value(keys.sweep_shard(THREAD_SWEEP, thread_id)),
            ":at": to_value(sweep_at_ms),
        },
    )
    return response is not None


def delete_thread_row(owner: str, thread_id: str) -> None:
    # A failed condition means an earlier delivery of the same job deleted it.
    write_if(
        "delete_item",
        Key=keys.thread_key(owner, thread_id),
        ConditionExpression="#status = :deleting",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":deleting": to_value("deleting")},
    )


# ---- messages ------------------------------------------------------------------


def message_record(values: dict[str, Any]) -> MessageRecord:
    """A message from a row's plain values (see `table.from_item`)."""
    return MessageRecord.model_validate({k: v for k, v in values.items() if k not in _MESSAGE_ROW_ONLY})


def message_row(record: MessageRecord) -> dict[str, Any]:
    row = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    row["pk"] = keys.thread_pk(record.owner, record.thread_id)
    row["sk"] = keys.message_sk(record.id)
    return row


def get_message(owner: str, thread_id: str, message_id: str) -> MessageRecord | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=keys.message_key(owner, thread_id, message_id), ConsistentRead=True
    )
    item = response.get("Item")
    return message_record(from_item(item)) if item else None


def list_messages(
    owner: str, thread_id: str, limit: int, cursor: str | None
) -> tuple[list[MessageRecord], str | None]:
    items, next_cursor = query_page(keys.thread_pk(owner, thread_id), "MSG#", limit, cursor)
    return [message_record(item) for item in items], next_cursor


def history(owner: str, thread_id: str, up_to_message_id: str, limit: int) -> list[MessageRecord]:
    """The `limit` messages up to and including `up_to_message_id`, oldest first."""
    response = clients.dynamodb().query(
        TableName=table_name(),
        KeyConditionExpression="pk = :pk AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues={
            ":pk": to_value(keys.thread_pk(owner, thread_id)),
            ":first": to_value("MSG#"),
            ":last": to_value(keys.message_sk(up_to_message_id)),
        },
        ScanIndexForward=False,
        Limit=limit,
        ConsistentRead=True,
    )
    return [message_record(from_item(i)) for i in reversed(response.get("Items", []))]


def batch_get_files_and_thread(
    owner: str, thread_id: str, file_ids: list[str]
) -> tuple[ThreadRecord | None, dict[str, FileRecord]]:
    """One BatchGetItem for a page: the thread (is it still there?) and its files."""
    from agentfiles.data.files import to_record

    wanted = [keys.thread_key(owner, thread_id)] + [keys.file_key(owner, f) for f in dict.fromkeys(file_ids)]
    thread: ThreadRecord | None = None
    found: dict[str, FileRecord] = {}
    client = clients.dynamodb()
    for start in range(0, len(wanted), 100):
        request: dict[str, Any] = {table_name(): {"Keys": wanted[start : start + 100]}}
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table_name(), []):
                sk = item["sk"]["S"]
                if sk.startswith("THREAD#"):
                    thread = _thread_record(from_item(item))
                else:
                    record = to_record(from_item(item))
                    found[record.id] = record
            request = response.get("UnprocessedKeys") or {}
    return thread, found


# ---- the save transaction ------------------------------------------------------


@dataclass
class IdempotencyRecord:
    key: str
    message_id: str
    reply_id: str | None
    request_hash: str
    expires_at: int  # epoch seconds (DynamoDB TTL)


SaveFailure = Literal["idempotency_key_used", "thread_unavailable", "file_unavailable", "conflict"]


@dataclass
class SaveRefused(Exception):
    reason: SaveFailure
    file_id: str | None = None
    file_status: str | None = None


def _idempotency_put(owner: str, thread_id: str, record: IdempotencyRecord) -> dict[str, Any]:
    row = {
        "pk": keys.thread_pk(owner, thread_id),
        "sk": keys.idempotency_sk(record.key),
        "messageId": record.message_id,
        "replyId": record.reply_id,
        "requestHash": record.request_hash,
        "expiresAt": record.expires_at,
    }
    return {
        "Put": {
            "TableName": table_name(),
            "Item": to_item(row),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def get_idempotency(owner: str, thread_id: str, key: str) -> IdempotencyRecord | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(),
        Key=keys.key(keys.thread_pk(owner, thread_id), keys.idempotency_sk(key)),
        ConsistentRead=True,
    )
    item = response.get("Item")
    if not item:
        return None
    values = from_item(item)
    return IdempotencyRecord(
        key=key,
        message_id=values["messageId"],
        reply_id=values.get("replyId"),
        request_hash=values["requestHash"],
        expires_at=values["expiresAt"],
    )


def _thread_touch(owner: str, thread_id: str, now_ms: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table_name(),
            "Key": keys.thread_key(owner, thread_id),
            "UpdateExpression": "SET updatedAt = :iso",
            "ConditionExpression": "attribute_exists(pk) AND #status = :active",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":iso": to_value(iso_from_ms(now_ms)),
                ":active": to_value("active"),
            },
        }
    }


def _put_new(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": table_name(),
            "Item": to_item(row),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def save_exchange(
    message: MessageRecord,
    reply: MessageRecord | None,
    now_ms: int,
    *,
    idempotency: IdempotencyRecord | None = None,
    reply_sweep_at_ms: int | None = None,
) -> None:
    """ONE transaction: [idempotency key], the message, the thread's updatedAt, [the
    pending reply], and +1 on each distinct file the message references."""
    items: list[dict[str, Any]] = []
    if idempotency:
        items.append(_idempotency_put(message.owner, message.thread_id, idempotency))
    items.append(_put_new(message_row(message)))
    items.append(_thread_touch(message.owner, message.thread_id, now_ms))
    if reply:
        row = message_row(reply)
        if reply_sweep_at_ms is not None:
            row |= {"sweepShard": keys.sweep_shard(REPLY_SWEEP, reply.id), "sweepAt": reply_sweep_at_ms}
        items.append(_put_new(row))
    first_file = len(items)
    items.extend(refcounts.take(message.owner, message.file_ids, now_ms))

    try:
        transact(items)
    except TransactionCancelled as cancelled:
        if cancelled.conflicted():
            raise SaveRefused("conflict") from cancelled
        if idempotency and cancelled.failed(0):
            raise SaveRefused("idempotency_key_used") from cancelled
        thread_index = 2 if idempotency else 1
        if cancelled.failed(thread_index):
            raise SaveRefused("thread_unavailable") from cancelled
        for offset, file_id in enumerate(dict.fromkeys(message.file_ids)):
            if cancelled.failed(first_file + offset):
                old = cancelled.reasons[first_file + offset].item
                raise SaveRefused(
                    "file_unavailable", file_id, old.get("status") if old else None
                ) from cancelled
        raise


# ---- deletes -------------------------------------------------------------------


def _delete_message_item(record: MessageRecord) -> dict[str, Any]:
    # The delete holds only if the message still references exactly what was read,
    # so the released counts are the ones it held (a reply can gain an image file
    # while generation finishes).
    return {
        "Delete": {
            "TableName": table_name(),
            "Key": keys.message_key(record.owner, record.thread_id, record.id),
            "ConditionExpression": "fileIds = :ids",
            "ExpressionAttributeValues": {":ids": to_value(record.file_ids)},
        }
    }


def delete_message(record: MessageRecord, now_ms: int) -> bool:
    """ONE transaction: the delete and -1 on each file it referenced. Returns False
    when the message changed or vanished since it was read."""
    items = [_delete_message_item(record), *refcounts.release(record.owner, Counter(record.file_ids), now_ms)]
    try:
        transact(items)
    except TransactionCancelled as cancelled:
        if cancelled.failed(0) or cancelled.conflicted():
            return False
        raise
    return True


MAX_TRANSACTION_ITEMS = 100


def thread_rows_page(owner: str, thread_id: str, limit: int) -> list[dict[str, Any]]:
    """The next rows of a thread's partition (messages and idempotency keys)."""
    response = clients.dynamodb().query(
        TableName=table_name(),
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": to_value(keys.thread_pk(owner, thread_id))},
        Limit=limit,
        ConsistentRead=True,
    )
    return [from_item(item) for item in response.get("Items", [])]


def delete_rows(owner: str, rows: list[dict[str, Any]], now_ms: int) -> int:
    """Delete a page of a thread's rows in as few transactions as fit, each one
    releasing the references of the messages it deletes. Returns rows deleted; a
    transaction refused because a message changed is left for the next page."""
    deleted = 0
    batch: list[dict[str, Any]] = []
    counts: Counter[str] = Counter()

    def flush() -> None:
        nonlocal deleted, batch, counts
        if not batch:
            return
        try:
            transact(batch + refcounts.release(owner, counts, now_ms))
            deleted += len(batch)
        except TransactionCancelled:
            pass  # re-read and retried by the caller's next page
        batch, counts = [], Counter()

    for row in rows:
        if row["sk"].startswith("MSG#"):
            record = message_record(row)
            extra = Counter(record.file_ids)
            new_files = len(set(extra) - set(counts))
            if len(batch) + 1 + len(counts) + new_files > MAX_TRANSACTION_ITEMS:
                flush()
            batch.append(_delete_message_item(record))
            counts.update(extra)
        else:
            if len(batch) + 1 + len(counts) > MAX_TRANSACTION_ITEMS:
                flush()
            batch.append({"Delete": {"TableName": table_name(), "Key": keys.key(row["pk"], row["sk"])}})
    flush()
    return deleted


# ---- the sweep of stuck work ---------------------------------------------------


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


def _sweep_due(values: dict[str, Any]) -> SweepDue:
    sweep_at = int(values[SWEEP_INDEX.sort_key])
    if values["sk"].startswith(keys.message_sk("")):
        # pk OWNER#{owner}#THREAD#{threadId}: owners never contain '#' (the API refuses them).
        owner, _, thread_id = values["pk"].removeprefix(keys.owner_pk("")).partition("#" + keys.thread_sk(""))
        return SweepDue(owner, thread_id, values["sk"].removeprefix(keys.message_sk("")), sweep_at)
    return SweepDue(
        values["pk"].removeprefix(keys.owner_pk("")),
        values["sk"].removeprefix(keys.thread_sk("")),
        None,
        sweep_at,
    )


def due_for_sweep(shard: str, now_ms: int, limit: int, start: dict[str, Any] | None) -> SweepPage:
    """One page of a sweep shard (`REPLY#n` or `THREAD#n`): rows whose sweepAt has
    passed, the longest overdue first."""
    items, next_start = sparse_index_page(SWEEP_INDEX, shard, now_ms, limit, start)
    return SweepPage([_sweep_due(values) for values in items], next_start)


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
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=keys.message_key(owner, thread_id, reply_id), ConsistentRead=True
    )
    item = response.get("Item")
    if not item:
        return None
    values = from_item(item)
    return SweptReply(
        message_record(values), values.get("sweepAt"), values.get("leaseUntil"), values.get("sweepResends", 0)
    )


def get_swept_thread(owner: str, thread_id: str) -> SweptThread | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=keys.thread_key(owner, thread_id), ConsistentRead=True
    )
    item = response.get("Item")
    if not item:
        return None
    values = from_item(item)
    return SweptThread(_thread_record(values), values.get("sweepAt"))


def _update_if(key: dict[str, Any], expression: str, condition: str, values: dict[str, Any]) -> bool:
    """One conditional update; False when the row moved on since it was read (a
    worker or another sweep got there first), which the sweep takes as done."""
    response = write_if(
        "update_item",
        Key=key,
        UpdateExpression=expression,
        ConditionExpression=condition,
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={k: to_value(v) for k, v in values.items()},
    )
    return response is not None


def move_reply_sweep(
    owner: str, thread_id: str, reply_id: str, *, seen_sweep_at: int, seen_status: str, sweep_at: int
) -> bool:
    """Push a reply's sweep time forward, only if it is still as the sweep read it.
    Winning this write is what entitles a sweep to re-send the job, so overlapping
    runs send it once."""
    return _update_if(
        keys.message_key(owner, thread_id, reply_id),
        "SET sweepAt = :new, sweepResends = if_not_exists(sweepResends, :zero) + :one",
        "sweepAt = :seen AND #status = :status",
        {":new": sweep_at, ":seen": seen_sweep_at, ":status": seen_status, ":zero": 0, ":one": 1},
    )


def remove_reply_sweep(owner: str, thread_id: str, reply_id: str, *, seen_sweep_at: int) -> bool:
    """Take an ended reply (success or failed) out of the sweep index."""
    return _update_if(
        keys.message_key(owner, thread_id, reply_id),
        "REMOVE sweepShard, sweepAt",
        "sweepAt = :seen AND #status IN (:success, :failed)",
        {":seen": seen_sweep_at, ":success": "success", ":failed": "failed"},
    )


def move_thread_sweep(owner: str, thread_id: str, *, seen_sweep_at: int, sweep_at: int) -> bool:
    """Push a deleting thread's sweep time forward (see `move_reply_sweep`)."""
    return _update_if(
        keys.thread_key(owner, thread_id),
        "SET sweepAt = :new",
        "sweepAt = :seen AND #status = :deleting",
        {":new": sweep_at, ":seen": seen_sweep_at, ":deleting": "deleting"},
    )


def remove_thread_sweep(owner: str, thread_id: str, *, seen_sweep_at: int) -> bool:
    """Take a thread that is not being deleted out of the sweep index."""
    return _update_if(
        keys.thread_key(owner, thread_id),
        "REMOVE sweepShard, sweepAt",
        "sweepAt = :seen AND #status <> :deleting",
        {":seen": seen_sweep_at, ":deleting": "deleting"},
    )
