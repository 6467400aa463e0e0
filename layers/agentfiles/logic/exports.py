"""Export (GDPR articles 15 and 20): one ZIP of everything an owner has.

`request_export` writes the export row with the owner's lock (one export at a time: a
second while one runs is 409 `export_running`) and queues the job; the maintenance
worker writes the archive entry by entry into one S3 multipart upload:

- `threads/<threadId>.json`: the thread and every message with its parts, oldest first;
  a part that names a file also gives its `path` in the archive;
- `files/<fileId>/<filename>`: the original of each file that may be handed out (ready
  and, with scanning on, scanned clean), as uploaded, streamed a chunk at a time;
- `manifest.json` (last): owner, time, counts, and each file's id, path, type, size and
  sha256.

Memory holds one part (PART_SIZE) and one chunk, whatever the account's size. Between
entries a run that is short of time saves where it is (the archive's state, the
upload's parts, the cursor, and the bytes not yet a part) under the export's own key
prefix and continues in a new job. The finished ZIP lives under `exports/{owner}/`,
served by a short-lived presigned URL minted on each read; the bucket's lifecycle rule
deletes it after EXPORT_RETENTION_DAYS and the row expires with it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from agentfiles.data import blobs, erasure_rows, export_rows, file_rows, jobs, keys, table
from agentfiles.data.errors import DataError, Unavailable
from agentfiles.errors import Conflict, NotFound
from agentfiles.ids import new_ulid
from agentfiles.logic import push
from agentfiles.logic.ziparchive import ZipStream
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.exports import ExportOut, ExportRecord
from agentfiles.models.files import FileRecord
from agentfiles.models.jobs import ExportJob
from agentfiles.models.live import ExportFrame
from agentfiles.models.messages import MessageOut, MessageRecord, PartOut, TextPart
from agentfiles.models.threads import ThreadOut, ThreadRecord
from agentfiles.observability import logger
from agentfiles.settings import get_settings
from agentfiles.topology import EXPORT_RETENTION_DAYS

# S3 parts are at least 5 MiB but the last; memory holds about one.
PART_SIZE = 8 * 1024 * 1024
LOCK_MS = 15 * 60 * 1000
PAGE = 50
_DAY_S = 24 * 3600


def _now_tuple() -> tuple[int, int, int, int, int, int]:
    t = datetime.now(UTC)
    return (t.year, t.month, t.day, t.hour, t.minute, t.second)


def request_export(owner: str) -> ExportOut:
    now = now_ms()
    record = ExportRecord(id=new_ulid(now), owner=owner, created_at=iso_from_ms(now))
    expires_at_s = now // 1000 + (EXPORT_RETENTION_DAYS + 1) * _DAY_S
    if not export_rows.begin(record, now, now + LOCK_MS, expires_at_s):
        raise Conflict("an export of this account is already being made", code="export_running")
    try:
        jobs.send_export(ExportJob(owner=owner, export_id=record.id))
    except Unavailable:
        export_rows.end(
            record.model_copy(update={"status": "failed", "error": "the job could not be queued"})
        )
        raise
    return ExportOut.of(record)


def get_export(owner: str, export_id: str) -> ExportOut:
    record = export_rows.get(owner, export_id)
    if record is None:
        raise NotFound(f"export {export_id} not found", code="export_not_found")
    if record.status != "ready":
        return ExportOut.of(record)
    ttl = get_settings().download_url_ttl_seconds
    url = blobs.presign_get(
        keys.export_key(owner, export_id),
        ttl,
        filename=f"agentfiles-export-{export_id}.zip",
        attachment=True,
        content_type="application/zip",
    )
    return ExportOut.of(record, url=url, expires_at=iso_from_ms(now_ms() + ttl * 1000))


# ---- the worker --------------------------------------------------------------------


def _state_key(owner: str, export_id: str) -> str:
    return keys.export_key(owner, export_id).removesuffix(".zip") + ".state.json"


def _tail_key(owner: str, export_id: str) -> str:
    return keys.export_key(owner, export_id).removesuffix(".zip") + ".tail"


@dataclass
class Progress:
    """Where an export is, saved between runs (in S3: it grows with the files)."""

    upload_id: str
    zip: ZipStream
    etags: list[str]
    phase: str = "threads"
    cursor: str | None = None
    threads: int = 0
    messages: int = 0
    files: list[dict[str, Any]] | None = None

    def dump(self) -> dict[str, Any]:
        return {
            "uploadId": self.upload_id,
            "zip": self.zip.dump(),
            "etags": self.etags,
            "phase": self.phase,
            "cursor": self.cursor,
            "threads": self.threads,
            "messages": self.messages,
            "files": self.files or [],
        }

    @classmethod
    def load(cls, value: dict[str, Any]) -> Progress:
        return cls(
            upload_id=value["uploadId"],
            zip=ZipStream.load(value["zip"]),
            etags=list(value["etags"]),
            phase=value["phase"],
            cursor=value["cursor"],
            threads=value["threads"],
            messages=value["messages"],
            files=list(value["files"]),
        )


class _Parts:
    """Bytes of the archive on their way into the multipart upload, a part at a time."""

    def __init__(self, key: str, progress: Progress, tail: bytes) -> None:
        self.key, self.progress, self.buffer = key, progress, bytearray(tail)

    def add(self, data: bytes) -> None:
        self.buffer += data
        while len(self.buffer) >= PART_SIZE:
            part = bytes(self.buffer[:PART_SIZE])
            del self.buffer[:PART_SIZE]
            number = len(self.progress.etags) + 1
            self.progress.etags.append(blobs.upload_part(self.key, self.progress.upload_id, number, part))

    def finish(self) -> None:
        if self.buffer or not self.progress.etags:
            number = len(self.progress.etags) + 1
            etag = blobs.upload_part(self.key, self.progress.upload_id, number, bytes(self.buffer))
            self.progress.etags.append(etag)
            self.buffer.clear()


def safe_name(filename: str) -> str:
    """A filename as one path segment of the archive (no directories, no `..`)."""
    name = filename.replace("/", "_").replace("\\", "_").strip()
    return name if name.strip(".") else "_" + name


def file_path(record: FileRecord) -> str:
    return f"files/{record.id}/{safe_name(record.filename)}"


@dataclass(frozen=True)
class Step:
    done: bool


def run_export(owner: str, export_id: str, time_left_ms: Callable[[], int], reserve_ms: int = 10_000) -> Step:
    record = export_rows.get(owner, export_id)
    if record is None or record.status != "pending":
        return Step(True)
    key = keys.export_key(owner, export_id)
    saved = blobs.read_if_exists(_state_key(owner, export_id))
    if saved is None:
        progress = Progress(blobs.start_multipart(key, "application/zip"), ZipStream(), [], files=[])
        tail = b""
    else:
        progress = Progress.load(json.loads(saved))
        tail = blobs.read_if_exists(_tail_key(owner, export_id)) or b""
    if erasure_rows.erasing(owner):
        blobs.abort_multipart(key, progress.upload_id)
        return Step(True)  # the erasure removes the rest
    parts = _Parts(key, progress, tail)
    try:
        while progress.phase != "done":
            if time_left_ms() <= reserve_ms:
                _checkpoint(owner, export_id, progress, parts)
                return Step(False)
            _PHASES[progress.phase](owner, progress, parts)
    except (DataError, KeyError, ValueError) as error:
        logger.exception("export failed", extra={"export_id": export_id})
        blobs.abort_multipart(key, progress.upload_id)
        failed = record.model_copy(update={"status": "failed", "error": str(error)[:200]})
        _end(failed, owner, export_id)
        return Step(True)
    parts.add(progress.zip.finish())
    parts.finish()
    blobs.complete_multipart(key, progress.upload_id, progress.etags)
    ready = record.model_copy(
        update={"status": "ready", "bytes": progress.zip.offset, "finished_at": iso_from_ms(now_ms())}
    )
    _end(ready, owner, export_id)
    return Step(True)


def _end(record: ExportRecord, owner: str, export_id: str) -> None:
    export_rows.end(record)
    blobs.delete_keys([_state_key(owner, export_id), _tail_key(owner, export_id)])
    _announce(owner, get_export(owner, export_id))


def _announce(owner: str, out: ExportOut) -> None:
    """Every open socket of the owner hears that the export ended."""
    push.publish_to_owner(owner, [ExportFrame(export=out)])


def _checkpoint(owner: str, export_id: str, progress: Progress, parts: _Parts) -> None:
    blobs.put_private(_tail_key(owner, export_id), bytes(parts.buffer), "application/octet-stream")
    blobs.put_private(_state_key(owner, export_id), json.dumps(progress.dump()).encode(), "application/json")
    export_rows.renew_lock(owner, export_id, now_ms() + LOCK_MS)


def _page(pk: str, prefix: str, after: str | None, limit: int = PAGE) -> list[table.Row]:
    start = keys.Key(pk, after).dynamo if after else None
    return table.query(pk, prefix=prefix, limit=limit, consistent=True, start=start).rows


def _thread_entry(owner: str, thread: ThreadRecord, progress: Progress, parts: _Parts) -> None:
    """threads/<id>.json, written a page of messages at a time."""
    zip_ = progress.zip
    parts.add(zip_.begin(f"threads/{thread.id}.json", deflate=True, when=_now_tuple()))
    head = json.dumps({"thread": ThreadOut.of(thread).dump()}, ensure_ascii=False)
    parts.add(zip_.write((head[:-1] + ', "messages": [').encode()))
    after: str | None = None
    first = True
    pk = keys.thread_pk(owner, thread.id)
    while True:
        rows = _page(pk, keys.message_sk(""), after)
        if not rows:
            break
        records = [table.record_of(MessageRecord, row) for row in rows]
        wanted = {p.file_id for r in records for p in r.content if not isinstance(p, TextPart) and p.file_id}
        named = file_rows.batch_get(owner, sorted(wanted | {f for r in records for f in r.file_ids}))
        for message in records:
            parts.add(zip_.write((("" if first else ",\n") + json.dumps(_message(message, named))).encode()))
            first = False
            progress.messages += 1
        after = rows[-1]["sk"]
    parts.add(zip_.write(b"]}"))
    parts.add(zip_.end())
    progress.threads += 1


def _message(message: MessageRecord, files: dict[str, FileRecord]) -> dict[str, Any]:
    """The message as the API serves it, without URLs: its file parts name the file's
    type, name and size, and its `path` in the archive."""
    parts: list[PartOut] = []
    paths: list[str | None] = []
    for part in message.content:
        out = PartOut.of(part)
        file = files.get(part.file_id) if not isinstance(part, TextPart) and part.file_id else None
        if file is not None:
            out.media_type = out.media_type or file.media_type
            out.filename = out.filename or file.filename
            out.size = file.size
        parts.append(out)
        paths.append(file_path(file) if file is not None and file.servable else None)
    dumped = MessageOut.of(message, parts).dump()
    for part, path in zip(dumped.get("content", []), paths, strict=True):
        if path is not None:
            part["path"] = path
    return dumped


def _threads(owner: str, progress: Progress, parts: _Parts) -> None:
    rows = _page(keys.owner_pk(owner), keys.thread_sk(""), progress.cursor, limit=1)
    if not rows:
        progress.phase, progress.cursor = "files", None
        return
    # One thread per step, so a run short of time stops between two.
    row = rows[0]
    thread = table.record_of(ThreadRecord, row)
    if thread.status == "active":
        _thread_entry(owner, thread, progress, parts)
    progress.cursor = row["sk"]


def _files(owner: str, progress: Progress, parts: _Parts) -> None:
    rows = _page(keys.owner_pk(owner), keys.file_sk(""), progress.cursor, limit=1)
    if not rows:
        progress.phase, progress.cursor = "manifest", None
        return
    row = rows[0]
    record = table.record_of(FileRecord, row)
    # What may be handed out, and no more: not a file still waiting for its malware scan
    # (which the bucket policy would not let this function read either).
    if record.servable:
        zip_ = progress.zip
        digest = hashlib.sha256()
        parts.add(zip_.begin(file_path(record), deflate=False, when=_now_tuple()))
        for chunk in _chunks(record.s3_key):
            digest.update(chunk)
            parts.add(zip_.write(chunk))
        parts.add(zip_.end())
        assert progress.files is not None
        progress.files.append(
            {
                "id": record.id,
                "path": file_path(record),
                "filename": record.filename,
                "mediaType": record.media_type,
                "size": record.size,
                "sha256": digest.hexdigest(),
                "createdAt": record.created_at,
            }
        )
    progress.cursor = row["sk"]


def _chunks(key: str) -> Iterator[bytes]:
    yield from blobs.iter_object(key)


def _manifest(owner: str, progress: Progress, parts: _Parts) -> None:
    files = progress.files or []
    manifest = {
        "owner": owner,
        "createdAt": iso_from_ms(now_ms()),
        "counts": {
            "threads": progress.threads,
            "messages": progress.messages,
            "files": len(files),
            "bytes": sum(f["size"] for f in files),
        },
        "files": files,
    }
    zip_ = progress.zip
    parts.add(zip_.begin("manifest.json", deflate=True, when=_now_tuple()))
    parts.add(zip_.write(json.dumps(manifest, indent=2, ensure_ascii=False).encode()))
    parts.add(zip_.end())
    progress.phase = "done"


_PHASES: dict[str, Callable[[str, Progress, _Parts], None]] = {
    "threads": _threads,
    "files": _files,
    "manifest": _manifest,
}
