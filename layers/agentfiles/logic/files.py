"""Files: register an upload (dedup by content), store a small file at once, read,
list, delete. The upload trigger's check is in `inspection.py`."""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass

from agentfiles.data import blobs, file_rows, keys
from agentfiles.data.errors import QuotaExceeded
from agentfiles.data.file_rows import Described
from agentfiles.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, Unprocessable
from agentfiles.ids import new_ulid
from agentfiles.logic import derivation, push, scanning
from agentfiles.logic.sniff import (
    IMAGE_TYPES,
    PDF,
    TEXT_TYPES,
    describe,
    matches,
    normalize_media_type,
    sniff,
)
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.files import (
    THUMBNAIL,
    FileOut,
    FilePage,
    FileRecord,
    FileUrl,
    SmallUploadRequest,
    UploadRequest,
    UploadResponse,
    UploadTicket,
)
from agentfiles.models.live import FileFrame
from agentfiles.settings import get_settings


def check_media_type(media_type: str) -> str:
    normalized = normalize_media_type(media_type)
    allowed = get_settings().allowed_media_types
    if normalized not in allowed:
        raise Unprocessable(
            f"media type {media_type!r} is not accepted; accepted: {', '.join(allowed)}",
            code="media_type_not_allowed",
        )
    return normalized


def _new_record(
    owner: str, filename: str, media_type: str, size: int, sha256: str | None, status: str
) -> FileRecord:
    """A new file's row; with malware scanning on it waits for its scan as well."""
    now = now_ms()
    file_id = new_ulid(now)
    iso = iso_from_ms(now)
    return FileRecord(
        id=file_id,
        owner=owner,
        filename=filename,
        media_type=media_type,
        size=size,
        sha256=sha256,
        status=status,
        refcount=0,
        created_at=iso,
        updated_at=iso,
        last_touched_at=now,
        s3_key=keys.object_key(owner, file_id),
        scan="scanning" if scanning.scan_required() else None,
    )


# Types a browser shows without running anything: opened inline. Anything else (text,
# JSON, Office files, and whatever an operator allows, HTML, SVG or XML included) is
# downloaded as an attachment, so a browser never runs an uploaded file on our origin.
INLINE_TYPES = IMAGE_TYPES | {PDF}


def served_content_type(media_type: str) -> str:
    """The Content-Type a download is served with: the checked type (text is checked to
    be UTF-8, and says so)."""
    return f"{media_type}; charset=utf-8" if media_type in TEXT_TYPES else media_type


def download_url(record: FileRecord) -> tuple[str, str]:
    """A GET URL minted now, pinned to the checked type and naming the file (images and
    PDFs open inline, anything else downloads as an attachment), and when it expires."""
    ttl = get_settings().download_url_ttl_seconds
    url = blobs.presign_get(
        record.s3_key,
        ttl,
        filename=record.filename,
        attachment=record.media_type not in INLINE_TYPES,
        content_type=served_content_type(record.media_type),
    )
    return url, iso_from_ms(now_ms() + ttl * 1000)


def thumbnail_url(record: FileRecord) -> str | None:
    """A GET URL of the file's thumbnail, minted now, when it has one."""
    thumbnail = record.derived.get(THUMBNAIL)
    if thumbnail is None:
        return None
    ttl = get_settings().download_url_ttl_seconds
    return blobs.presign_get(thumbnail.key, ttl, content_type=thumbnail.media_type)


def file_out(record: FileRecord) -> FileOut:
    """The API view of a file, with a download URL (and its thumbnail's) when it is ready
    (and its malware scan, where there is one, passed it)."""
    if not record.servable:
        return FileOut.of(record)
    url, expires = download_url(record)
    return FileOut.of(record, url=url, url_expires_at=expires, thumbnail_url=thumbnail_url(record))


def announce_settled(object_key: str) -> int:
    """Every open socket of the owner hears what became of the upload at `object_key`:
    ready (with its URLs) or rejected (with the reason); a file still waiting for its
    other gate, or gone, is not announced. One GetItem and one Query, with push on."""
    parsed = keys.parse_object_key(object_key)
    if parsed is None or not push.enabled():
        return 0
    record = file_rows.get(*parsed)
    if record is None or not (record.servable or record.status == "rejected"):
        return 0
    return push.publish_to_owner(record.owner, [FileFrame(file=file_out(record))])


def file_url(owner: str, file_id: str) -> FileUrl:
    """A download URL minted now, for a ready file only: 409 `file_not_ready` while it is
    checked or scanned (or once it was rejected)."""
    record = get_file(owner, file_id)
    if not record.servable:
        waiting = "its malware scan" if record.scan == "scanning" else "its upload check"
        why = (
            f"it was rejected ({record.rejection.code})"
            if record.rejection
            else f"{waiting} has not passed it yet"
        )
        raise Conflict(
            f"file {file_id} is not ready: {why}",
            code="file_not_ready",
            details={
                "fileId": file_id,
                "status": record.status,
                **({"scan": record.scan} if record.scan else {}),
            },
        )
    url, expires = download_url(record)
    return FileUrl(url=url, url_expires_at=expires, thumbnail_url=thumbnail_url(record))


def _dedup_hit(owner: str, sha256: str) -> FileRecord | None:
    """The owner's ready file with this content, touched for the grace period; refused
    at once when the malware scan found a threat in this content before."""
    entry = file_rows.find_by_hash(owner, sha256)
    if entry is None:
        return None
    if entry.threat:
        raise Unprocessable(
            f"this content was found to contain malware ({entry.threat}) and is not accepted",
            code=scanning.MALWARE,
        )
    return file_rows.touch_ready(owner, entry.file_id, now_ms()) if entry.file_id else None


def quota_exceeded(exceeded: QuotaExceeded) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"storing {exceeded.size} more bytes would exceed your storage quota: {exceeded.used_bytes} of "
        f"{exceeded.quota_bytes} bytes and {exceeded.used_files} of {exceeded.quota_files} files are used; "
        "delete files or messages to make room",
        code="storage_quota_exceeded",
        details={
            "size": exceeded.size,
            "usedBytes": exceeded.used_bytes,
            "usedFiles": exceeded.used_files,
            "quotaBytes": exceeded.quota_bytes,
            "quotaFiles": exceeded.quota_files,
        },
    )


def _create(record: FileRecord) -> None:
    """The row, with its size reserved against the owner's quota."""
    try:
        file_rows.create(record)
    except QuotaExceeded as exceeded:
        raise quota_exceeded(exceeded) from exceeded


def register_upload(owner: str, request: UploadRequest) -> UploadResponse:
    """A pending file and a presigned PUT for it, or the owner's ready file with the
    same content (no upload needed)."""
    settings = get_settings()
    media_type = check_media_type(request.media_type)
    if request.size > settings.max_upload_bytes:
        raise PayloadTooLarge(
            f"size {request.size} exceeds the limit of {settings.max_upload_bytes} bytes",
            code="file_too_large",
        )
    if request.sha256 and (existing := _dedup_hit(owner, request.sha256)):
        return UploadResponse(file=file_out(existing), upload=None, deduplicated=True)

    record = _new_record(owner, request.filename, media_type, request.size, request.sha256, "pending")
    ttl = settings.upload_url_ttl_seconds
    expires = record.last_touched_at + ttl * 1000
    record = record.model_copy(update={"upload_expires_at": expires})
    _create(record)
    url, headers = blobs.presign_put(record.s3_key, media_type, request.size, request.sha256, ttl)
    ticket = UploadTicket(url=url, headers=headers, expires_at=iso_from_ms(expires))
    return UploadResponse(file=FileOut.of(record), upload=ticket)


def decode_base64(data: str) -> bytes:
    try:
        compact = "".join(data.split())
        padded = compact + "=" * (-len(compact) % 4)
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(padded)
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError) as error:
        raise BadRequest("data is not valid base64", code="invalid_base64") from error


@dataclass(frozen=True)
class StoredFile:
    record: FileRecord
    deduplicated: bool


def store_bytes(
    owner: str, filename: str, media_type: str, content: bytes, *, generated: bool = False
) -> StoredFile:
    """Check bytes in hand and store them as a ready file: the path of small uploads,
    large inline message parts and generated images (`generated`: kept as made, with a
    thumbnail) alike. Over the owner's storage quota: 413 `storage_quota_exceeded`,
    nothing stored."""
    media_type = check_media_type(media_type)
    if not content:
        raise Unprocessable("the file is empty", code="empty_file")
    sniffed = sniff(content, complete=True)
    if not matches(media_type, sniffed):
        raise Unprocessable(
            f"content is {describe(sniffed)}, not the declared {media_type}", code="type_mismatch"
        )
    sha256 = hashlib.sha256(content).hexdigest()
    if existing := _dedup_hit(owner, sha256):
        return StoredFile(existing, deduplicated=True)
    # What the upload check would make from these bytes, made here from the bytes in
    # hand; what it would reject is refused before anything is stored.
    try:
        made = derivation.derive(media_type, content, generated=generated)
    except derivation.NotDerivable as refused:
        raise Unprocessable(refused.rejection.message, code=refused.rejection.code) from refused
    # The row comes before the bytes: the bucket tells the upload trigger of every
    # object, and a trigger that finds no row removes the object as an orphan. Until
    # the bytes are in, the row is an upload that expires now, so a crash between the
    # two leaves a row the vacuum removes after the grace period, never a ready file
    # without its object.
    record = _new_record(owner, filename, media_type, len(content), sha256, "pending")
    record = record.model_copy(update={"upload_expires_at": record.last_touched_at})
    _create(record)
    etag = blobs.put(record.s3_key, content, media_type, sha256)
    stored = derivation.store(owner, record.id, made)
    described = Described(made.width, made.height, made.pages, stored)
    # With malware scanning on, bytes a client sent wait for their scan like an upload
    # (pending, `scan: scanning`); a picture a model drew is ready at once, and gets its
    # URLs once scanned.
    settled_as = scanning.settle_checked(record, sha256, etag, described, before_scan=generated)
    if settled_as != "lost":
        found = {"etag": etag, "width": made.width, "height": made.height, "pages": made.pages}
        found |= {"derived": stored, "sha256": sha256}
        if settled_as == "ready":
            found |= {"status": "ready", "upload_expires_at": None}
        return StoredFile(record.model_copy(update=found), False)
    # The upload trigger checked the object first and settled the row.
    settled = file_rows.get(owner, record.id)
    if settled is None or settled.status not in ("ready", "pending"):
        raise Conflict(f"file {record.id} could not be stored; retry", code="conflict")
    return StoredFile(settled, deduplicated=False)


def store_small_file(owner: str, request: SmallUploadRequest) -> StoredFile:
    settings = get_settings()
    # Reject an oversize body before decoding it: base64 is 4/3 of the bytes.
    if len(request.data) > (settings.small_upload_max_bytes * 4) // 3 + 8:
        raise PayloadTooLarge(
            f"small uploads are limited to {settings.small_upload_max_bytes} bytes; use POST /files/uploads",
            code="file_too_large",
        )
    content = decode_base64(request.data)
    if len(content) > settings.small_upload_max_bytes:
        raise PayloadTooLarge(
            f"small uploads are limited to {settings.small_upload_max_bytes} bytes; use POST /files/uploads",
            code="file_too_large",
        )
    return store_bytes(owner, request.filename, request.media_type, content)


def get_file(owner: str, file_id: str) -> FileRecord:
    record = file_rows.get(owner, file_id)
    if record is None or record.status == "deleting":
        raise NotFound(f"file {file_id} not found", code="file_not_found")
    return record


def list_files(owner: str, limit: int, cursor: str | None) -> FilePage:
    records, next_cursor = file_rows.list_page(owner, limit, cursor)
    return FilePage(items=[file_out(r) for r in records if r.status != "deleting"], next_cursor=next_cursor)


def delete_file(owner: str, file_id: str) -> None:
    record = get_file(owner, file_id)
    if record.refcount > 0:
        raise Conflict(
            f"file {file_id} is referenced by {record.refcount} message(s); delete them first",
            code="file_referenced",
        )
    tombstoned = file_rows.tombstone(owner, file_id, now_ms())
    if tombstoned is None:
        # A message took a reference between the read and the tombstone.
        raise Conflict(f"file {file_id} is referenced by a message", code="file_referenced")
    purge(tombstoned)


def purge(record: FileRecord) -> None:
    """Remove a tombstoned file: its objects (the original and every one made from it),
    hash row, file row. Each step is idempotent, so a purge cut short is finished by
    running it again."""
    derivation.delete_file_objects(record.owner, record.id, record)
    if record.sha256:
        file_rows.delete_hash_if_points_at(record.owner, record.sha256, record.id)
    file_rows.delete_tombstoned(record)
