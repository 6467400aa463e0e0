"""The upload trigger's check: is the object what its file row says it is, and what is
made from it once.

Per object: one HEAD and one ranged GET of at most 4 KiB, and for an accepted object
the tag that marks it checked. Where S3 verified the declared SHA-256 on upload (it
reports it on HEAD), that is all; where it did not (moto, or a client that declared no
checksum) the object is hashed as a stream. A document (PDF, Word, Excel, PowerPoint)
is read whole instead, in one GET bounded by the upload limit: its text is extracted
and stored beside it (`derivation.py`), and its hash, when S3 gave none, is taken from
the same bytes.

Only a pending file's object is checked. An object that appears for a file that is
not pending (rejected, or ready with other bytes or another Content-Type than the
ones it was checked with) is deleted at once: a presigned PUT replayed after its
file was rejected, or a checked object overwritten, never stays in the bucket
unaccounted for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from agentfiles.data import blobs, file_rows, keys
from agentfiles.data.file_rows import Described
from agentfiles.logic import derivation, scanning
from agentfiles.logic.sniff import describe, matches, normalize_media_type, sniff
from agentfiles.models.common import now_ms
from agentfiles.models.files import FileRecord, Rejection
from agentfiles.settings import get_settings

Outcome = Literal[
    "ready",
    "awaiting_scan",
    "rejected",
    "unchanged",
    "orphan_removed",
    "stray_removed",
    "missing_object",
    "not_a_file",
]
# What S3 records when a PUT names no Content-Type (a tool writing to the bucket with its
# own credentials); a presigned PUT always carries the declared type, which is signed.
_DEFAULT_CONTENT_TYPE = "binary/octet-stream"


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
        _remove_orphan(owner, file_id, record)
        return Inspection(file_id, "orphan_removed")
    assert record is not None
    if record.status != "pending":
        return _settled(record)
    if record.checked_at is not None:
        # Checked already, waiting for its malware scan: a redelivered notification.
        return Inspection(file_id, "unchanged")

    head = blobs.head(record.s3_key)
    if head is None:
        return Inspection(file_id, "missing_object")
    if event_etag and head.etag and event_etag.strip('"') != head.etag:
        # The notification is for bytes that are no longer there; the newer
        # object's own notification will be checked.
        return Inspection(file_id, "unchanged")

    rejection = _size_problem(record, head.size) or _content_type_problem(record, head.content_type)
    bytes_read = 0
    checksum_source: Literal["s3", "stream", "none"] = "none"
    sha256 = record.sha256
    whole: bytes | None = None
    prefix = b""
    if rejection is None:
        if derivation.reads_whole(record.media_type):
            # Size checked above: at most MAX_UPLOAD_BYTES, read once for all uses.
            whole = blobs.read_object(record.s3_key, head.etag)
            prefix = whole[: blobs.SNIFF_BYTES]
            bytes_read += len(whole)
        else:
            prefix = blobs.read_prefix(record.s3_key, head.etag)
            bytes_read += len(prefix)
        rejection = _type_problem(record, prefix, complete=head.size <= len(prefix))
    if rejection is None:
        if head.sha256_hex:
            checksum_source, actual = "s3", head.sha256_hex
        elif whole is not None or head.size <= len(prefix):
            # The whole object is in hand: hash it, no second read.
            checksum_source, actual = (
                "stream",
                hashlib.sha256(whole if whole is not None else prefix).hexdigest(),
            )
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
    described = Described()
    if rejection is None and whole is not None:
        try:
            made = derivation.derive(record.media_type, whole)
        except derivation.NotDerivable as refused:
            rejection = refused.rejection
        else:
            # Stored before the row says ready, so a ready row's derived objects exist.
            stored = derivation.store(owner, file_id, made)
            described = Described(made.width, made.height, made.pages, stored)

    if rejection is not None:
        if file_rows.mark_rejected(record, rejection, now_ms()):
            derivation.delete_file_objects(owner, file_id, record)
            return Inspection(file_id, "rejected", bytes_read, checksum_source, rejection.code)
        return _lost_race(owner, file_id, bytes_read, checksum_source)
    # Tagged before the row says ready: a ready file's object is always servable.
    blobs.mark_checked(record.s3_key, keep_others=record.scan is not None)
    # Ready now, or (its malware scan still under way) once the scan passes it too.
    settled = scanning.settle_checked(record, sha256 or "", head.etag, described)
    if settled != "lost":
        return Inspection(file_id, settled, bytes_read, checksum_source)
    return _lost_race(
        owner, file_id, bytes_read, checksum_source, [i.key for i in described.derived.values()]
    )


def _lost_race(
    owner: str,
    file_id: str,
    bytes_read: int,
    checksum_source: Literal["s3", "stream", "none"],
    stored: list[str] | None = None,
) -> Inspection:
    """The file stopped being pending while it was checked: settled by another check
    (a redelivery that got there first), or deleted."""
    settled = file_rows.get(owner, file_id)
    if _is_going(settled):
        # Purged while it was being checked: its purge may have passed the S3 step.
        _remove_orphan(owner, file_id, settled)
        return Inspection(file_id, "orphan_removed", bytes_read, checksum_source)
    assert settled is not None
    # What this check stored and no row records goes (the same names as the settled
    # check's are the same objects, made from the same bytes).
    leftover = set(stored or ()) - set(settled.derived_keys())
    if leftover:
        blobs.delete_all(sorted(leftover))
    outcome = _settled(settled)
    return Inspection(file_id, outcome.outcome, bytes_read, checksum_source)


def _settled(record: FileRecord) -> Inspection:
    """A notification for a file the check already settled (or a redelivery of one)."""
    if record.status == "pending":
        return Inspection(record.id, "unchanged")
    head = blobs.head(record.s3_key)
    if head is None:
        # Already gone: a redelivery of a rejected upload's notification.
        return Inspection(record.id, "unchanged")
    if record.status == "ready" and (record.etag is None or _is_checked_object(record, head)):
        # Its own checked object (a redelivered notification), or a row written before
        # ETags were recorded.
        return Inspection(record.id, "unchanged")
    # Bytes written for a rejected file (its object was deleted when it was rejected),
    # or over a ready file's checked object: not what any row accounts for.
    blobs.delete(record.s3_key)
    return Inspection(record.id, "stray_removed")


def _is_checked_object(record: FileRecord, head: blobs.ObjectHead) -> bool:
    return head.etag == record.etag and _content_type_problem(record, head.content_type) is None


def _is_going(record: FileRecord | None) -> bool:
    """No row claims the key any more, or its row is being purged (the vacuum, or
    DELETE /files, tombstoned it while its upload ran)."""
    return record is None or record.status == "deleting"


def _remove_orphan(owner: str, file_id: str, record: FileRecord | None) -> None:
    # Bytes that arrived for a file that is gone would outlive it: S3 holds only
    # what a file row accounts for (and so do the objects made from them).
    derivation.delete_file_objects(owner, file_id, record)


def _content_type_problem(record: FileRecord, content_type: str | None) -> Rejection | None:
    if not content_type or content_type == _DEFAULT_CONTENT_TYPE:
        return None
    if normalize_media_type(content_type) != record.media_type:
        return Rejection(
            code="type_mismatch",
            message=f"stored with Content-Type {content_type}, not the declared {record.media_type}",
        )
    return None


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
