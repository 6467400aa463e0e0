"""The upload trigger's check: is the object what its file row says it is?

Per object: one HEAD and one ranged GET of at most 4 KiB, and for an accepted object
the tag that marks it checked. Where S3 verified the declared SHA-256 on upload (it
reports it on HEAD), that is all; where it did not (moto, or a client that declared no
checksum) the object is hashed as a stream.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from agentfiles.data import blobs, file_rows, keys
from agentfiles.logic.sniff import describe, matches, sniff
from agentfiles.models.common import now_ms
from agentfiles.models.files import FileRecord, Rejection
from agentfiles.settings import get_settings

Outcome = Literal["ready", "rejected", "unchanged", "orphan_removed", "missing_object", "not_a_file"]


@dataclass(frozen=True)
class Inspection:
    file_id: str
    outcome: Outcome
    bytes_read: int = 0
    checksum_source: Literal["s3", "stream", "none"] = "none"
    reason: str | None = None


def inspect_upload(object_key: str, event_etag: str | None = None) -> Inspection:
    parsed = keys.parse_object_key(object_key)
    if parsed is None:
        # Not an original (the bucket announces only `files/`, but a sample event or a
        # misconfigured notification may name anything): nothing to check, no call made.
        return Inspection("", "not_a_file")
    owner, file_id = parsed
    record = file_rows.get(owner, file_id)
    if _is_going(record):
        _remove_orphan(object_key)
        return Inspection(file_id, "orphan_removed")
    assert record is not None
    if record.status != "pending":
        return Inspection(file_id, "unchanged")

    head = blobs.head(record.s3_key)
    if head is None:
        return Inspection(file_id, "missing_object")
    if event_etag and head.etag and event_etag.strip('"') != head.etag:
        # The notification is for bytes that are no longer there; the newer
        # object's own notification will be checked.
        return Inspection(file_id, "unchanged")

    rejection = _size_problem(record, head.size)
    bytes_read = 0
    checksum_source: Literal["s3", "stream", "none"] = "none"
    sha256 = record.sha256
    prefix = b""
    if rejection is None:
        prefix = blobs.read_prefix(record.s3_key, head.etag)
        bytes_read += len(prefix)
        rejection = _type_problem(record, prefix, complete=head.size <= len(prefix))
    if rejection is None:
        if head.sha256_hex:
            checksum_source, actual = "s3", head.sha256_hex
        elif head.size <= len(prefix):
            # The prefix was the whole object: hash what is in hand.
            checksum_source, actual = "stream", hashlib.sha256(prefix).hexdigest()
        else:
            actual, streamed = blobs.hash_object(record.s3_key, head.etag)
            checksum_source = "stream"
            bytes_read += streamed
        if record.sha256 and actual != record.sha256:
            rejection = Rejection(
                code="checksum_mismatch",
                message=f"content has SHA-256 {actual}, not the declared {record.sha256}",
            )
        sha256 = actual

    if rejection is not None:
        changed = file_rows.mark_rejected(record, rejection, now_ms())
        blobs.delete(record.s3_key)
        return Inspection(
            file_id, "rejected" if changed else "unchanged", bytes_read, checksum_source, rejection.code
        )
    # Tagged before the row says ready: a ready file's object is always servable.
    blobs.mark_checked(record.s3_key)
    if file_rows.mark_ready(record, sha256 or "", head.etag, now_ms()):
        return Inspection(file_id, "ready", bytes_read, checksum_source)
    if _is_going(file_rows.get(owner, file_id)):
        # Purged while it was being checked: its purge may have passed the S3 step.
        _remove_orphan(object_key)
        return Inspection(file_id, "orphan_removed", bytes_read, checksum_source)
    return Inspection(file_id, "unchanged", bytes_read, checksum_source)


def _is_going(record: FileRecord | None) -> bool:
    """No row claims the key any more, or its row is being purged (the vacuum, or
    DELETE /files, tombstoned it while its upload ran)."""
    return record is None or record.status == "deleting"


def _remove_orphan(object_key: str) -> None:
    # Bytes that arrived for a file that is gone would outlive it: S3 holds only
    # what a file row accounts for.
    blobs.delete(object_key)


def _size_problem(record: FileRecord, size: int) -> Rejection | None:
    if size == 0:
        return Rejection(code="empty_file", message="the uploaded object is empty")
    if size != record.size:
        return Rejection(
            code="size_mismatch", message=f"uploaded {size} bytes, but {record.size} were declared"
        )
    if size > get_settings().max_upload_bytes:
        return Rejection(code="file_too_large", message=f"{size} bytes is over the upload limit")
    return None


def _type_problem(record: FileRecord, prefix: bytes, complete: bool) -> Rejection | None:
    sniffed = sniff(prefix, complete=complete)
    if record.media_type not in get_settings().allowed_media_types:
        return Rejection(code="media_type_not_allowed", message=f"{record.media_type} is not accepted")
    if not matches(record.media_type, sniffed):
        return Rejection(
            code="type_mismatch",
            message=f"content is {describe(sniffed)}, not the declared {record.media_type}",
        )
    return None
