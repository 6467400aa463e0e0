"""Messages as read back: a page newest first or one message, their file parts
carrying download URLs (and images their thumbnail's) minted now, once per file across a page."""

from __future__ import annotations

from agentfiles.data import message_rows
from agentfiles.errors import NotFound
from agentfiles.logic.files import download_url, thumbnail_url
from agentfiles.models.files import FileRecord
from agentfiles.models.messages import MessageOut, MessagePage, MessageRecord, Part, PartOut, TextPart

# A file's URLs as minted for one read: the download's, when it expires, the thumbnail's.
Urls = dict[str, tuple[str, str, str | None]]


def _part_out(part: Part, files: dict[str, FileRecord], urls: Urls) -> PartOut:
    out = PartOut.of(part)
    record = files.get(part.file_id) if not isinstance(part, TextPart) and part.file_id else None
    if record is not None:
        if record.servable:
            if record.id not in urls:
                urls[record.id] = (*download_url(record), thumbnail_url(record))
            out.url, out.url_expires_at, out.thumbnail_url = urls[record.id]
        out.media_type = out.media_type or record.media_type
        out.filename = out.filename or record.filename
        out.size = record.size
    return out


def message_view(record: MessageRecord, files: dict[str, FileRecord], urls: Urls | None = None) -> MessageOut:
    """A message as read back: its file parts carry URLs minted now (one per file,
    shared through `urls` across a page)."""
    urls = {} if urls is None else urls
    return MessageOut.of(record, [_part_out(p, files, urls) for p in record.content])


def _part_file_ids(records: list[MessageRecord]) -> list[str]:
    return [p.file_id for r in records for p in r.content if not isinstance(p, TextPart) and p.file_id]


def list_messages(owner: str, thread_id: str, limit: int, cursor: str | None) -> MessagePage:
    """Newest first: one Query for the page, one BatchGetItem for its thread and files."""
    records, next_cursor = message_rows.list_messages(owner, thread_id, limit, cursor)
    thread, files = message_rows.batch_get_files_and_thread(owner, thread_id, _part_file_ids(records))
    if thread is None or thread.status != "active":
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")
    urls: Urls = {}
    return MessagePage(items=[message_view(r, files, urls) for r in records], next_cursor=next_cursor)


def get_message(owner: str, thread_id: str, message_id: str) -> MessageOut:
    record = message_rows.get_message(owner, thread_id, message_id)
    thread, files = message_rows.batch_get_files_and_thread(
        owner, thread_id, _part_file_ids([record] if record else [])
    )
    if thread is None or thread.status != "active":
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")
    if record is None:
        raise NotFound(f"message {message_id} not found", code="message_not_found")
    return message_view(record, files)
