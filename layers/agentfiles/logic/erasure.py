"""Erasure: everything an owner has goes, rows and objects, in the background, page by
page; only a record that it happened is kept.

`request_erasure` writes the erasure row (pending: from then on every write of the owner
is refused with 409 `account_erasing`) and queues the job; the maintenance worker runs
it in phases, each a loop of pages, with the row saved after every page, so a run that
crashes or runs out of time is resumed by the next delivery where it stopped:

1. `connections`: each open socket gets a last `{"type": "account_erased"}` frame and is
   closed; its rows go;
2. `threads`: each thread is marked deleting (it answers 404), its replies are stopped
   as a thread delete stops them (a worker streaming one ends at its next flush), then
   every row of its partition goes, and the thread row last;
3. `objects`: every object under the owner's prefixes (`files/`, `derived/`,
   `exports/`): originals, derivatives, thumbnails, extracted text, exports;
4. `rows`: every other row of the owner (files, hashes, usage and quota, day rows, rate
   windows, retention), but the erasure row;
5. `verify`: a write that began before the fence (a reply being written, an upload
   being checked, a request in flight) may still land; once none can be running
   (`ERASURE_SETTLE_SECONDS` after the erasure began) the phases run again, and the
   erasure is done when such a pass removed nothing.

Nothing here moves a reference count: every file of the owner goes with every message
that held it, and no other owner's row or object is touched (keys begin with the owner).
URLs minted before stop working as their objects go.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from agentfiles.data import blobs, connection_rows, erasure_rows, jobs, keys, table, thread_rows
from agentfiles.data.errors import Fenced, Unavailable
from agentfiles.errors import Conflict
from agentfiles.logic import live, push
from agentfiles.logic.threads import CLEANUP_SWEEP_MS
from agentfiles.models.account import AccountOut, ErasureOut, ErasureRecord
from agentfiles.models.common import iso_from_ms, now_ms
from agentfiles.models.jobs import EraseAccountJob
from agentfiles.models.live import AccountErasedFrame, frame_json
from agentfiles.observability import logger
from agentfiles.settings import get_settings

PAGE = 100
THREAD_PAGE = 25


@contextmanager
def fenced(owner: str) -> Iterator[None]:
    """Every transaction made within also checks that the owner is not being erased (one
    more item, no more calls); one that meets an erasure is 409 `account_erasing`."""
    try:
        with table.fenced(erasure_rows.fence(owner)):
            yield
    except Fenced as error:
        raise Conflict("this account is being erased", code="account_erasing") from error


def refuse_if_erasing(owner: str) -> None:
    """The fence: no write of an owner whose erasure is running."""
    if erasure_rows.erasing(owner):
        raise Conflict("this account is being erased", code="account_erasing")


def request_erasure(owner: str, requested_by: str = "owner") -> ErasureOut:
    """Begin erasing the owner's account (or go on with the erasure already running),
    and queue its job. Idempotent."""
    now = now_ms()
    record = ErasureRecord(
        owner=owner,
        requested_by="operator" if requested_by == "operator" else "owner",
        requested_at=iso_from_ms(now),
        fence_ms=now,
        pass_started_ms=now,
    )
    if not erasure_rows.begin(record):
        record = erasure_rows.get_erasure(owner) or record
    try:
        jobs.send_erasure(EraseAccountJob(owner=owner))
    except Unavailable:
        # The erasure row fences the owner already; asking again sends the job again.
        logger.warning("erasure job not sent; ask again to re-send it", extra={"owner": owner})
    return ErasureOut.of(record)


def account(owner: str) -> AccountOut:
    record = erasure_rows.get_erasure(owner)
    return AccountOut(owner=owner, erasure=ErasureOut.of(record) if record else None)


@dataclass(frozen=True)
class Step:
    """Where a run of the erasure got to: done, or to be continued after `wait_s`."""

    done: bool
    wait_s: int = 0


def run_erasure(owner: str, time_left_ms: Callable[[], int], reserve_ms: int = 5_000) -> Step:
    """Go on with the owner's erasure from the phase its row names, until it is done or
    time runs short."""
    record = erasure_rows.get_erasure(owner)
    if record is None or record.status == "done":
        return Step(True)

    def time_short() -> bool:
        return time_left_ms() <= reserve_ms

    while not time_short():
        if record.phase == "verify":
            step = _verify(record)
            erasure_rows.save(record)
            if step is not None:
                return step
            continue
        removed = _PHASES[record.phase](record, time_short)
        record.pass_removed += removed
        erasure_rows.save(record)
    return Step(False)


def _close_connections(record: ErasureRecord, time_short: Callable[[], bool]) -> int:
    closed = 0
    last = frame_json(AccountErasedFrame())
    for connection_id in connection_rows.connections_of(record.owner):
        if push.enabled():
            try:
                connection_rows.push(connection_id, last)
                connection_rows.disconnect(connection_id)
            except Unavailable:
                logger.warning("connection not closed; its rows go", extra={"connection_id": connection_id})
        connection_rows.close_connection(record.owner, connection_id)
        closed += 1
    record.counts.connections += closed
    record.phase = "threads"
    return closed


def _erase_threads(record: ErasureRecord, time_short: Callable[[], bool]) -> int:
    owner = record.owner
    thread_ids = erasure_rows.thread_ids(owner, THREAD_PAGE)
    if not thread_ids:
        record.phase = "objects"
        return 0
    removed = 0
    for thread_id in thread_ids:
        now = now_ms()
        # As a thread delete does: it answers 404, and its replies stop being written.
        thread_rows.mark_thread_deleting(owner, thread_id, now, now + CLEANUP_SWEEP_MS)
        live.stop_thread_replies(owner, thread_id)
        while True:
            if time_short():
                return removed
            page = erasure_rows.thread_partition_keys(owner, thread_id, PAGE)
            if not page:
                break
            erasure_rows.delete(page)
            record.counts.thread_rows += len(page)
            removed += len(page)
        erasure_rows.delete([keys.thread_key(owner, thread_id)])
        record.counts.threads += 1
        removed += 1
        # A checkpoint per thread, so a crash loses at most the count of one thread's pages.
        erasure_rows.save(record.model_copy(update={"pass_removed": record.pass_removed + removed}))
    return removed


def _erase_objects(record: ErasureRecord, time_short: Callable[[], bool]) -> int:
    for prefix in keys.owner_object_prefixes(record.owner):
        page = blobs.list_keys(prefix)
        if page:
            deleted = blobs.delete_keys(page)
            record.counts.objects += deleted
            return deleted
    record.phase = "rows"
    return 0


def _erase_rows(record: ErasureRecord, time_short: Callable[[], bool]) -> int:
    removed = 0
    start = None
    while not time_short():
        page, start = erasure_rows.owner_row_keys(record.owner, PAGE, start)
        removed += erasure_rows.delete(page)
        if start is None:
            record.phase = "verify"
            break
    record.counts.rows += removed
    return removed


_PHASES: dict[str, Callable[[ErasureRecord, Callable[[], bool]], int]] = {
    "connections": _close_connections,
    "threads": _erase_threads,
    "objects": _erase_objects,
    "rows": _erase_rows,
}


def _verify(record: ErasureRecord) -> Step | None:
    """Done, wait, or None after starting another pass."""
    settle_ms = get_settings().erasure_settle_seconds * 1000
    settled_at = record.fence_ms + settle_ms
    now = now_ms()
    if record.pass_removed == 0 and record.pass_started_ms >= settled_at:
        record.status = "done"
        record.finished_at = iso_from_ms(now)
        logger.info("account erased", extra={"owner": record.owner, "counts": record.counts.dump()})
        return Step(True)
    if now < settled_at:
        return Step(False, wait_s=math.ceil((settled_at - now) / 1000))
    record.phase = "connections"
    record.pass_started_ms = now
    record.pass_removed = 0
    record.passes += 1
    return None
