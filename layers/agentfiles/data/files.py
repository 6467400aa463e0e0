"""File and hash rows. Refcount changes live in `refcounts.py`, not here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentfiles.data import clients, keys
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
from agentfiles.models.files import FileRecord, Rejection
from agentfiles.topology import GC_INDEX

# Every internal attribute that is not part of FileRecord.
_ROW_ONLY = ("pk", "sk", "gcShard", "etag")


def to_record(values: dict[str, Any]) -> FileRecord:
    """A file from a row's plain values (see `table.from_item`)."""
    return FileRecord.model_validate({k: v for k, v in values.items() if k not in _ROW_ONLY})


def _row(record: FileRecord) -> dict[str, Any]:
    row = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    row["pk"] = keys.owner_pk(record.owner)
    row["sk"] = keys.file_sk(record.id)
    if record.refcount == 0:
        # Born unreferenced: a vacuum candidate until a message takes a reference.
        row["gcShard"] = keys.gc_shard(record.id)
    return row


def create(record: FileRecord) -> None:
    clients.dynamodb().put_item(
        TableName=table_name(),
        Item=to_item(_row(record)),
        ConditionExpression="attribute_not_exists(pk)",
    )


def get(owner: str, file_id: str, consistent: bool = True) -> FileRecord | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=keys.file_key(owner, file_id), ConsistentRead=consistent
    )
    item = response.get("Item")
    return to_record(from_item(item)) if item else None


def get_etag(owner: str, file_id: str) -> str | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(),
        Key=keys.file_key(owner, file_id),
        ProjectionExpression="etag",
        ConsistentRead=True,
    )
    return from_item(response.get("Item", {})).get("etag")


def list_page(owner: str, limit: int, cursor: str | None) -> tuple[list[FileRecord], str | None]:
    items, next_cursor = query_page(keys.owner_pk(owner), "FILE#", limit, cursor)
    return [to_record(item) for item in items], next_cursor


def batch_get(owner: str, file_ids: list[str]) -> dict[str, FileRecord]:
    """Many files in as few BatchGetItem calls as DynamoDB allows (100 keys each)."""
    found: dict[str, FileRecord] = {}
    distinct = list(dict.fromkeys(file_ids))
    client = clients.dynamodb()
    for start in range(0, len(distinct), 100):
        request: dict[str, Any] = {
            table_name(): {"Keys": [keys.file_key(owner, fid) for fid in distinct[start : start + 100]]}
        }
        while request:
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table_name(), []):
                record = to_record(from_item(item))
                found[record.id] = record
            request = response.get("UnprocessedKeys") or {}
    return found


def find_by_hash(owner: str, sha256: str) -> str | None:
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=keys.hash_key(owner, sha256), ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item)["fileId"] if item else None


def touch_ready(owner: str, file_id: str, now_ms: int) -> FileRecord | None:
    """Move lastTouchedAt to now if the file is ready: a dedup hit is about to be
    attached, so it must survive the vacuum's grace period from this moment."""
    response = write_if(
        "update_item",
        Key=keys.file_key(owner, file_id),
        UpdateExpression="SET lastTouchedAt = :now",
        ConditionExpression="#status = :ready",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":now": to_value(now_ms), ":ready": to_value("ready")},
        ReturnValues="ALL_NEW",
    )
    return to_record(from_item(response["Attributes"])) if response else None


def _ready_update(record: FileRecord, sha256: str, etag: str, now_ms: int) -> dict[str, Any]:
    return {
        "Update": {
            "TableName": table_name(),
            "Key": keys.file_key(record.owner, record.id),
            "UpdateExpression": "SET #status = :ready, sha256 = :sha, etag = :etag, updatedAt = :iso, "
            "lastTouchedAt = :now REMOVE uploadExpiresAt",
            "ConditionExpression": "#status = :pending",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":ready": to_value("ready"),
                ":pending": to_value("pending"),
                ":sha": to_value(sha256),
                ":etag": to_value(etag),
                ":iso": to_value(iso_from_ms(now_ms)),
                ":now": to_value(now_ms),
            },
        }
    }


def _hash_put(owner: str, sha256: str, file_id: str, replaces: str | None) -> dict[str, Any]:
    put: dict[str, Any] = {
        "TableName": table_name(),
        "Item": to_item({"pk": keys.owner_pk(owner), "sk": keys.hash_sk(sha256), "fileId": file_id}),
    }
    if replaces:
        put["ConditionExpression"] = "fileId = :old"
        put["ExpressionAttributeValues"] = {":old": to_value(replaces)}
    else:
        put["ConditionExpression"] = "attribute_not_exists(pk) OR fileId = :self"
        put["ExpressionAttributeValues"] = {":self": to_value(file_id)}
    return {"Put": put}


def _write_claiming_hash(primary: dict[str, Any], owner: str, sha256: str, file_id: str) -> bool:
    """Write `primary` (the file becoming ready) and point the owner's hash row at it,
    unless another ready file already stands for this content. Returns False when
    `primary`'s own condition failed."""
    replaces: str | None = None
    for _ in range(4):
        try:
            transact([primary, _hash_put(owner, sha256, file_id, replaces)])
            return True
        except TransactionCancelled as cancelled:
            if cancelled.conflicted():
                continue
            if cancelled.failed(0):
                return False
        holder = find_by_hash(owner, sha256)
        holder_record = get(owner, holder) if holder else None
        if holder_record and holder_record.status == "ready":
            # The content already has its ready file; this one is ready too (its
            # owner holds the id) while dedup keeps answering with the first.
            try:
                transact([primary])
            except TransactionCancelled:
                return False
            return True
        replaces = holder
    raise RuntimeError(f"could not settle the hash row for file {file_id}")


def mark_ready(record: FileRecord, sha256: str, etag: str, now_ms: int) -> bool:
    """pending → ready. Returns False when the file was no longer pending."""
    return _write_claiming_hash(_ready_update(record, sha256, etag, now_ms), record.owner, sha256, record.id)


def create_ready(record: FileRecord, etag: str) -> bool:
    """Put a file that is ready at birth (small uploads, generated images)."""
    if not record.sha256:
        raise ValueError("a ready file needs its sha256")
    row = _row(record)
    row["etag"] = etag
    primary = {
        "Put": {
            "TableName": table_name(),
            "Item": to_item(row),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }
    return _write_claiming_hash(primary, record.owner, record.sha256, record.id)


def mark_rejected(owner: str, file_id: str, rejection: Rejection, now_ms: int) -> bool:
    response = write_if(
        "update_item",
        Key=keys.file_key(owner, file_id),
        UpdateExpression="SET #status = :rejected, rejection = :rejection, updatedAt = :iso, "
        "lastTouchedAt = :now, gcShard = :shard",
        ConditionExpression="#status = :pending",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={
            ":rejected": to_value("rejected"),
            ":pending": to_value("pending"),
            ":rejection": to_value(rejection.dump()),
            ":iso": to_value(iso_from_ms(now_ms)),
            ":now": to_value(now_ms),
            ":shard": to_value(keys.gc_shard(file_id)),
        },
    )
    return response is not None


def tombstone(
    owner: str, file_id: str, now_ms: int, touched_before_ms: int | None = None
) -> FileRecord | None:
    """Mark an unreferenced file `deleting`. From here no message can take a
    reference (increments require `ready`), so the object and rows can go.
    With `touched_before_ms` (the vacuum's grace cutoff) the file must also be
    untouched since then, and a pending one must have an upload URL that expired
    by then. Returns None when the file is referenced, touched too recently, still
    open for upload, or gone. A file already `deleting` is returned as is, so a
    crashed purge can finish."""
    client = clients.dynamodb()
    values: dict[str, Any] = {
        ":zero": to_value(0),
        ":ready": to_value("ready"),
        ":pending": to_value("pending"),
        ":rejected": to_value("rejected"),
        ":deleting": to_value("deleting"),
        ":iso": to_value(iso_from_ms(now_ms)),
    }
    if touched_before_ms is None:
        # An explicit delete: no grace, and a pending upload may be abandoned at once.
        condition = "refcount = :zero AND #status IN (:ready, :pending, :rejected)"
    else:
        # The vacuum: untouched since the cutoff, and a pending file only once its
        # upload URL expired a grace period ago (an upload may still be under way).
        condition = (
            "refcount = :zero AND lastTouchedAt <= :cutoff AND (#status IN (:ready, :rejected) OR "
            "(#status = :pending AND (attribute_not_exists(uploadExpiresAt) OR uploadExpiresAt <= :cutoff)))"
        )
        values[":cutoff"] = to_value(touched_before_ms)
    try:
        response = client.update_item(
            TableName=table_name(),
            Key=keys.file_key(owner, file_id),
            UpdateExpression="SET #status = :deleting, updatedAt = :iso",
            ConditionExpression=f"attribute_exists(pk) AND ({condition})",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=values,
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as error:
        old = error.response.get("Item")
        if old and from_item(old).get("status") == "deleting":
            return to_record(from_item(old))
        return None
    return to_record(from_item(response["Attributes"]))


def delete_hash_if_points_at(owner: str, sha256: str, file_id: str) -> None:
    # A failed condition means gone already, or another file stands for this content now.
    write_if(
        "delete_item",
        Key=keys.hash_key(owner, sha256),
        ConditionExpression="fileId = :id",
        ExpressionAttributeValues={":id": to_value(file_id)},
    )


def delete_tombstoned(owner: str, file_id: str) -> None:
    # A failed condition means an earlier run deleted it already.
    write_if(
        "delete_item",
        Key=keys.file_key(owner, file_id),
        ConditionExpression="#status = :deleting",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":deleting": to_value("deleting")},
    )


# ---- the vacuum's candidates -------------------------------------------------


@dataclass(frozen=True)
class GcCandidate:
    """A file carrying the gc marker, as the (keys-only) index shows it: possibly
    stale, so every decision about it is a conditional write on the file row."""

    owner: str
    file_id: str
    last_touched_at: int


@dataclass(frozen=True)
class GcPage:
    candidates: list[GcCandidate]
    # Where the next page of this shard starts; None when the shard is read to its end.
    next_start: dict[str, Any] | None


def gc_candidates(shard: str, touched_before_ms: int, limit: int, start: dict[str, Any] | None) -> GcPage:
    """One page of a gc shard: files whose marker is set and whose lastTouchedAt is
    at or before the cutoff, oldest first. Live (referenced) files carry no marker,
    so they are never read here."""
    items, next_start = sparse_index_page(GC_INDEX, shard, touched_before_ms, limit, start)
    candidates = [
        GcCandidate(
            owner=values["pk"].removeprefix(keys.owner_pk("")),
            file_id=values["sk"].removeprefix(keys.file_sk("")),
            last_touched_at=int(values[GC_INDEX.sort_key]),
        )
        for values in items
    ]
    return GcPage(candidates, next_start)


def clear_gc_marker(owner: str, file_id: str) -> bool:
    """Take a referenced file out of the gc index (a decrement left the marker on a
    file that still has references). False when the file is unreferenced or gone:
    then it stays a candidate."""
    response = write_if(
        "update_item",
        Key=keys.file_key(owner, file_id),
        UpdateExpression="REMOVE gcShard",
        ConditionExpression="refcount > :zero",
        ExpressionAttributeValues={":zero": to_value(0)},
    )
    return response is not None
