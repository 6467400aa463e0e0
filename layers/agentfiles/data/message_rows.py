"""Message and idempotency rows, and the transactions that write messages together
with their reference counts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from agentfiles.data import keys, rates, refcounts, table, usage_rows
from agentfiles.data.errors import ConditionFailed, Contention, DataError, QuotaExceeded, TransactionCancelled
from agentfiles.data.table import Delete, Put, Update, Write, cond
from agentfiles.models.common import iso_from_ms
from agentfiles.models.files import FileRecord
from agentfiles.models.messages import MessageRecord
from agentfiles.models.threads import ThreadRecord

MAX_TRANSACTION_ITEMS = 100
_QUOTA_ATTEMPTS = 3


def message_row(record: MessageRecord, **extra: object) -> table.Row:
    return table.row_of(record, keys.message_key(record.owner, record.thread_id, record.id), **extra)


def get_message(owner: str, thread_id: str, message_id: str) -> MessageRecord | None:
    row = table.get(keys.message_key(owner, thread_id, message_id))
    return table.record_of(MessageRecord, row) if row else None


def list_messages(
    owner: str, thread_id: str, limit: int, cursor: str | None
) -> tuple[list[MessageRecord], str | None]:
    rows, next_cursor = table.query_page(keys.thread_pk(owner, thread_id), keys.message_sk(""), limit, cursor)
    return [table.record_of(MessageRecord, row) for row in rows], next_cursor


def history(owner: str, thread_id: str, up_to_message_id: str, limit: int) -> list[MessageRecord]:
    """The `limit` messages up to and including `up_to_message_id`, oldest first."""
    page = table.query(
        keys.thread_pk(owner, thread_id),
        between=(keys.message_sk(""), keys.message_sk(up_to_message_id)),
        limit=limit,
        newest_first=True,
        consistent=True,
    )
    return [table.record_of(MessageRecord, row) for row in reversed(page.rows)]


def mark_refused(owner: str, thread_id: str, message_id: str, entries: set[str]) -> bool:
    """Remember parts of a user message as refused by a model (`refused_entry`s, added to
    its string set: idempotent, and no read first). Only while the message exists: a
    message deleted meanwhile is not brought back as a stub. False when it is gone."""
    if not entries:
        return True
    try:
        table.update(
            keys.message_key(owner, thread_id, message_id),
            add={"refusedParts": set(entries)},
            when=cond("attribute_exists(#pk) AND #role = :user", user="user"),
        )
    except ConditionFailed:
        return False
    return True


def batch_get_files_and_thread(
    owner: str, thread_id: str, file_ids: list[str]
) -> tuple[ThreadRecord | None, dict[str, FileRecord]]:
    """One BatchGetItem for a page: the thread (is it still there?) and its files."""
    wanted = [keys.thread_key(owner, thread_id), *(keys.file_key(owner, f) for f in file_ids)]
    thread: ThreadRecord | None = None
    found: dict[str, FileRecord] = {}
    for row in table.batch_get(wanted):
        if row["sk"].startswith(keys.thread_sk("")):
            thread = table.record_of(ThreadRecord, row)
        else:
            record = table.record_of(FileRecord, row)
            found[record.id] = record
    return thread, found


# ---- the save transaction ------------------------------------------------------


@dataclass(frozen=True)
class IdempotencyRecord:
    key: str
    message_id: str
    reply_id: str | None
    request_hash: str
    expires_at: int  # epoch seconds (DynamoDB TTL)


@dataclass(frozen=True)
class Exchange:
    """What one save writes: the message, and the pending reply when one is asked for."""

    message: MessageRecord
    reply: MessageRecord | None
    now_ms: int
    idempotency: IdempotencyRecord | None = None
    # When a reply still pending counts as stuck, so the sweep re-sends its job.
    reply_sweep_at_ms: int | None = None
    # Generations the owner may ask for per rate window (the reply takes one).
    generations_per_window: int | None = None
    # For a file that parts name with a type: the types its checked type must be among.
    file_types: dict[str, frozenset[str]] = field(default_factory=dict)


SaveFailure = Literal[
    "idempotency_key_used",
    "thread_unavailable",
    "rate_limited",
    "file_unavailable",
    "file_type_mismatch",
    "conflict",
]


@dataclass
class SaveRefused(DataError):
    reason: SaveFailure
    file_id: str | None = None
    file_status: str | None = None
    # The file's checked type, when it is ready but not of the type its part says.
    file_media_type: str | None = None


def _idempotency_put(owner: str, thread_id: str, record: IdempotencyRecord) -> Put:
    key = keys.idempotency_key(owner, thread_id, record.key)
    row = {
        "pk": key.pk,
        "sk": key.sk,
        "messageId": record.message_id,
        "replyId": record.reply_id,
        "requestHash": record.request_hash,
        "expiresAt": record.expires_at,
    }
    return Put(row, when=cond("attribute_not_exists(#pk)"))


def get_idempotency(owner: str, thread_id: str, key: str) -> IdempotencyRecord | None:
    row = table.get(keys.idempotency_key(owner, thread_id, key))
    if not row:
        return None
    return IdempotencyRecord(
        key=key,
        message_id=row["messageId"],
        reply_id=row.get("replyId"),
        request_hash=row["requestHash"],
        expires_at=row["expiresAt"],
    )


def _thread_touch(owner: str, thread_id: str, now_ms: int) -> Update:
    # Its last activity, for the retention run, in the same write.
    return Update(
        keys.thread_key(owner, thread_id),
        set={"updatedAt": iso_from_ms(now_ms), **keys.idle_marker(thread_id, now_ms)},
        when=cond("attribute_exists(#pk) AND #status = :active", active="active"),
    )


def live_row(reply: MessageRecord) -> table.Row:
    """The marker of a reply being made (`keys.live_key`): written with the pending
    reply, deleted in the write that ends it (or deletes it)."""
    key = keys.live_key(reply.owner, reply.thread_id, reply.id)
    return {"pk": key.pk, "sk": key.sk, "replyId": reply.id}


def live_replies(owner: str, thread_id: str) -> list[str]:
    """The replies of a thread that were being made when last written: one Query."""
    page = table.query(keys.thread_pk(owner, thread_id), prefix=keys.live_prefix(), consistent=True)
    return [str(row["replyId"]) for row in page.rows]


def forget_live(owner: str, thread_id: str, reply_id: str) -> None:
    """Remove a marker whose reply has ended or is gone."""
    table.delete(keys.live_key(owner, thread_id, reply_id))


def get_in_active_thread(owner: str, thread_id: str, message_id: str) -> MessageRecord | None:
    """The message, or None when it or its thread is gone (a thread being deleted is
    gone): one consistent BatchGetItem."""
    message_key = keys.message_key(owner, thread_id, message_id)
    message: MessageRecord | None = None
    active = False
    for row in table.batch_get([keys.thread_key(owner, thread_id), message_key], consistent=True):
        if row["sk"] == message_key.sk:
            message = table.record_of(MessageRecord, row)
        else:
            active = row.get("status") == "active"
    return message if active else None


def _put_new(row: table.Row) -> Put:
    return Put(row, when=cond("attribute_not_exists(#pk)"))


def save_exchange(exchange: Exchange) -> None:
    """ONE transaction: [idempotency key], the message, the thread's updatedAt, [the
    pending reply, its marker and +1 on the owner's rate window], +1 on each distinct
    file the message references (ready, and of the type its parts say), and the
    message's bytes on the owner's storage, within the quota. Assumed first: the default
    quota; a refusal shows the usage row as it was, and the save is tried again under an
    operator's override it holds. `QuotaExceeded` when the quota leaves no room."""
    quota = usage_rows.default_quota()
    for _ in range(_QUOTA_ATTEMPTS):
        refused = _save_under(exchange, quota)
        if refused is None:
            return
        in_force = usage_rows.quota_of(refused)
        if in_force == quota:
            size = exchange.message.stored_bytes or 0
            raise QuotaExceeded(
                size=size,
                used_bytes=int(refused.get("bytes", 0)),
                used_files=int(refused.get("files", 0)),
                quota_bytes=quota.bytes,
                quota_files=quota.files,
            )
        quota = in_force
    raise Contention("the owner's quota kept changing while the message was saved")


def _save_under(exchange: Exchange, quota: usage_rows.Quota) -> table.Row | None:
    """The save's transaction under `quota`. None when saved; the usage row as it was
    when the quota refused it (an empty row when there was none)."""
    message, reply, now = exchange.message, exchange.reply, exchange.now_ms
    writes: list[Write] = []
    if exchange.idempotency:
        writes.append(_idempotency_put(message.owner, message.thread_id, exchange.idempotency))
    writes.append(_put_new(message_row(message)))
    thread_index = len(writes)
    writes.append(_thread_touch(message.owner, message.thread_id, now))
    if reply:
        sweep_at = exchange.reply_sweep_at_ms
        shard = keys.sweep_shard(keys.REPLY_SWEEP, reply.id) if sweep_at is not None else None
        writes.append(_put_new(message_row(reply, sweepShard=shard, sweepAt=sweep_at)))
        writes.append(Put(live_row(reply)))
    rate_index = None
    if reply and exchange.generations_per_window is not None:
        rate_index = len(writes)
        writes.append(rates.take(message.owner, now, exchange.generations_per_window))
    first_file = len(writes)
    writes.extend(refcounts.take(message.owner, message.file_ids, now, exchange.file_types))
    usage_index = None
    if message.stored_bytes:
        usage_index = len(writes)
        writes.append(usage_rows.reserve_bytes(message.owner, message.stored_bytes, quota))

    try:
        table.transact(writes)
    except TransactionCancelled as cancelled:
        if cancelled.conflicted():
            raise SaveRefused("conflict") from cancelled
        if exchange.idempotency and cancelled.failed(0):
            raise SaveRefused("idempotency_key_used") from cancelled
        if cancelled.failed(thread_index):
            raise SaveRefused("thread_unavailable") from cancelled
        if rate_index is not None and cancelled.failed(rate_index):
            raise SaveRefused("rate_limited") from cancelled
        for offset, file_id in enumerate(dict.fromkeys(message.file_ids)):
            if cancelled.failed(first_file + offset):
                old = cancelled.reasons[first_file + offset].item
                status = old.get("status") if old else None
                if old and status == "ready":
                    raise SaveRefused(
                        "file_type_mismatch", file_id, status, file_media_type=old.get("mediaType")
                    ) from cancelled
                raise SaveRefused("file_unavailable", file_id, status) from cancelled
        if usage_index is not None and cancelled.failed(usage_index):
            return cancelled.reasons[usage_index].item or {}
        raise
    return None


# ---- deletes -------------------------------------------------------------------


def _delete_message(record: MessageRecord) -> Delete:
    # The delete holds only if the message still references exactly what was read,
    # so the released counts are the ones it held (a reply can gain an image file
    # while generation finishes).
    return Delete(
        keys.message_key(record.owner, record.thread_id, record.id),
        when=cond("#fileIds = :ids", ids=record.file_ids),
    )


def delete_message(record: MessageRecord, now_ms: int) -> bool:
    """ONE transaction: the delete and -1 on each file it referenced. Returns False
    when the message changed or vanished since it was read."""
    writes: list[Write] = [_delete_message(record)]
    if record.role == "assistant":
        writes.append(Delete(keys.live_key(record.owner, record.thread_id, record.id)))
    if record.stored_bytes:
        writes.append(usage_rows.release_bytes(record.owner, record.stored_bytes))
    try:
        table.transact([*writes, *refcounts.release(record.owner, Counter(record.file_ids), now_ms)])
    except TransactionCancelled as cancelled:
        if cancelled.failed(0) or cancelled.conflicted():
            return False
        raise
    return True


def thread_rows_page(owner: str, thread_id: str, limit: int) -> list[table.Row]:
    """The next rows of a thread's partition (messages and idempotency keys)."""
    return table.query(keys.thread_pk(owner, thread_id), limit=limit, consistent=True).rows


def delete_rows(owner: str, rows: list[table.Row], now_ms: int) -> int:
    """Delete a page of a thread's rows in as few transactions as fit, each one
    releasing the references of the messages it deletes. Returns rows deleted; a
    transaction refused because a message changed is left for the next page."""
    deleted = 0
    batch: list[Write] = []
    counts: Counter[str] = Counter()
    stored = 0
    # One item of each transaction releases its messages' bytes.
    room = MAX_TRANSACTION_ITEMS - 1

    def flush() -> None:
        nonlocal deleted, batch, counts, stored
        if not batch:
            return
        released = [usage_rows.release_bytes(owner, stored)] if stored else []
        try:
            table.transact(batch + refcounts.release(owner, counts, now_ms) + released)
            deleted += len(batch)
        except TransactionCancelled:
            pass  # re-read and retried by the caller's next page
        batch, counts, stored = [], Counter(), 0

    for row in rows:
        if row["sk"].startswith(keys.message_sk("")):
            record = table.record_of(MessageRecord, row)
            extra = Counter(record.file_ids)
            new_files = len(set(extra) - set(counts))
            if len(batch) + 1 + len(counts) + new_files > room:
                flush()
            batch.append(_delete_message(record))
            counts.update(extra)
            stored += record.stored_bytes or 0
        else:
            if len(batch) + 1 + len(counts) > room:
                flush()
            batch.append(Delete(keys.Key.of(row)))
    flush()
    return deleted
