"""Threads: create, list, read, delete (in the background, releasing references)."""

from __future__ import annotations

from collections.abc import Callable

from agentfiles.data import jobs, message_rows, thread_rows
from agentfiles.data.errors import Unavailable
from agentfiles.errors import NotFound
from agentfiles.ids import new_ulid
from agentfiles.logic import push
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.jobs import ThreadCleanupJob
from agentfiles.models.live import ThreadDeletedFrame
from agentfiles.models.threads import CreateThreadRequest, ThreadOut, ThreadPage, ThreadRecord
from agentfiles.observability import logger

CLEANUP_PAGE = 25
# When a deleting thread counts as stuck, so the sweep re-sends its cleanup job.
CLEANUP_SWEEP_MS = 15 * 60 * 1000


def create_thread(owner: str, request: CreateThreadRequest) -> ThreadOut:
    now = now_ms()
    iso = iso_from_ms(now)
    record = ThreadRecord(id=new_ulid(now), owner=owner, title=request.title, created_at=iso, updated_at=iso)
    thread_rows.put_thread(record)
    return ThreadOut.of(record)


def require_thread(owner: str, thread_id: str) -> ThreadRecord:
    record = thread_rows.get_thread(owner, thread_id)
    if record is None or record.status != "active":
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")
    return record


def list_threads(owner: str, limit: int, cursor: str | None) -> ThreadPage:
    records, next_cursor = thread_rows.list_threads(owner, limit, cursor)
    return ThreadPage(items=[ThreadOut.of(r) for r in records], next_cursor=next_cursor)


def delete_thread(owner: str, thread_id: str) -> None:
    """Mark the thread deleting and queue its cleanup. Idempotent: deleting a thread
    that is already being deleted re-sends the job."""
    now = now_ms()
    if not thread_rows.mark_thread_deleting(owner, thread_id, now, now + CLEANUP_SWEEP_MS):
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")
    try:
        jobs.send_thread_cleanup(ThreadCleanupJob(owner=owner, thread_id=thread_id))
    except Unavailable:
        # The thread is already gone for the client; the vacuum's sweep re-sends the
        # job for threads left deleting, so the answer is still 202.
        logger.warning("cleanup job not sent; the sweep will re-send it", extra={"thread_id": thread_id})


def purge_thread(
    owner: str, thread_id: str, time_left_ms: Callable[[], int], reserve_ms: int = 5_000
) -> bool:
    """Delete a deleting thread's rows page by page, each page in transactions that
    also release the messages' references; the thread row goes last. Returns True
    when done, False when time ran short (the caller re-queues the job)."""
    thread = thread_rows.get_thread(owner, thread_id)
    if thread is None:
        return True
    if thread.status != "deleting":
        logger.warning("cleanup job for an active thread ignored", extra={"thread_id": thread_id})
        return True
    # Its followers hear it first: their subscription rows go with the thread's rows.
    push.publish(owner, thread_id, [ThreadDeletedFrame(thread_id=thread_id)])
    stalled = 0
    while time_left_ms() > reserve_ms:
        page = message_rows.thread_rows_page(owner, thread_id, CLEANUP_PAGE)
        if not page:
            thread_rows.delete_thread_row(owner, thread_id)
            return True
        if message_rows.delete_rows(owner, page, now_ms()) == 0:
            # Every transaction of the page lost a race (a reply gained a file as
            # it finished); re-reading gives the current rows. Give up for this
            # delivery if it keeps happening, the job comes back.
            stalled += 1
            if stalled >= 3:
                return False
    return False
