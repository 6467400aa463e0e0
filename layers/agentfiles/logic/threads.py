"""Threads: create, list, read, delete (in the background, releasing references)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from agentfiles.data import jobs, message_rows, thread_rows
from agentfiles.data.errors import Unavailable
from agentfiles.errors import NotFound
from agentfiles.ids import new_ulid
from agentfiles.logic import live, push
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.jobs import ThreadCleanupJob
from agentfiles.models.live import ThreadDeletedFrame
from agentfiles.models.threads import CreateThreadRequest, ThreadOut, ThreadPage, ThreadRecord
from agentfiles.observability import logger

CLEANUP_PAGE = 25
# When a deleting thread counts as stuck, so the sweep re-sends its cleanup job.
CLEANUP_SWEEP_MS = 15 * 60 * 1000
# How long a purge waits for a reply of the thread that is still being written.
REPLY_WAIT_S = 2


def create_thread(owner: str, request: CreateThreadRequest) -> ThreadOut:
    now = now_ms()
    iso = iso_from_ms(now)
    record = ThreadRecord(id=new_ulid(now), owner=owner, title=request.title, created_at=iso, updated_at=iso)
    thread_rows.put_thread(record, now)
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
    if not _delete(owner, thread_id):
        raise NotFound(f"thread {thread_id} not found", code="thread_not_found")


def expire_thread(owner: str, thread_id: str, idle_since: str) -> bool:
    """The retention run's delete: the same as `delete_thread`, only if the thread is
    still active and was last written at `idle_since`. False when a message came in
    since (the thread is kept)."""
    return _delete(owner, thread_id, idle_since)


def _delete(owner: str, thread_id: str, idle_since: str | None = None) -> bool:
    now = now_ms()
    if not thread_rows.mark_thread_deleting(
        owner, thread_id, now, now + CLEANUP_SWEEP_MS, idle_since=idle_since
    ):
        return False
    # Before the answer: a reply still streaming stops at its next flush, and writes
    # nothing more into the thread.
    live.stop_thread_replies(owner, thread_id)
    try:
        jobs.send_thread_cleanup(ThreadCleanupJob(owner=owner, thread_id=thread_id))
    except Unavailable:
        # The thread is already gone for the client; the vacuum's sweep re-sends the
        # job for threads left deleting, so the answer is still 202.
        logger.warning("cleanup job not sent; the sweep will re-send it", extra={"thread_id": thread_id})
    return True


@dataclass(frozen=True)
class Purge:
    """Where a purge got to: done, or to be continued (by a new job, after `wait_s`)."""

    done: bool
    wait_s: int = 0

    def __bool__(self) -> bool:
        return self.done


def purge_thread(
    owner: str, thread_id: str, time_left_ms: Callable[[], int], reserve_ms: int = 5_000
) -> Purge:
    """Delete a deleting thread's rows page by page, each page in transactions that
    also release the messages' references; the thread row goes last. Not done when
    time ran short, or when a reply of the thread is still being written: its worker
    ends it (and counts it on the owner's usage) within a flush, or, if it died, its
    lease runs out within a heartbeat and the next run stops it. Only then do its rows
    go, so nothing is written into the thread after them."""
    thread = thread_rows.get_thread(owner, thread_id)
    if thread is None:
        return Purge(True)
    if thread.status != "deleting":
        logger.warning("cleanup job for an active thread ignored", extra={"thread_id": thread_id})
        return Purge(True)
    # Its followers hear it first: their subscription rows go with the thread's rows.
    push.publish(owner, thread_id, [ThreadDeletedFrame(thread_id=thread_id)])
    if not live.stop_thread_replies(owner, thread_id):
        return Purge(False, wait_s=REPLY_WAIT_S)
    stalled = 0
    while time_left_ms() > reserve_ms:
        page = message_rows.thread_rows_page(owner, thread_id, CLEANUP_PAGE)
        if not page:
            thread_rows.delete_thread_row(owner, thread_id)
            return Purge(True)
        if message_rows.delete_rows(owner, page, now_ms()) == 0:
            # Every transaction of the page lost a race (a reply gained a file as
            # it finished); re-reading gives the current rows. Give up for this
            # delivery if it keeps happening, the job comes back.
            stalled += 1
            if stalled >= 3:
                return Purge(False)
    return Purge(False)
