"""The sweep: work that should have finished and did not gets its job sent again.

A pending reply carries `sweepAt` (its creation + PENDING_REPLY_SWEEP_SECONDS); a
worker that takes it moves `sweepAt` to the end of its lease, and a reply that
ends drops the marker. A thread being deleted carries `sweepAt` too (see
`logic.threads.CLEANUP_SWEEP_MS`). So a row in the sweep index past its time is
stuck: its job was lost (a queue outage after the row was written) or its worker
died. Per due row, read again because the index is keys-only and lags:

- reply pending, or streaming under a lease that ran out → move `sweepAt`
  forward, then re-send the generation job (the new worker takes the lease over);
  after MAX_REPLY_RESENDS re-sends the reply is failed instead, so a job that kills
  every worker that takes it is not re-sent forever;
- reply streaming under a live lease → `sweepAt` = the lease's end;
- reply ended → marker removed; row gone → nothing (its index entry went with it);
- thread deleting → move `sweepAt` forward, re-send the cleanup; otherwise the
  marker is removed.

Moving `sweepAt` is conditioned on the row being as it was read, and only the
sweep that wins that write sends the job: overlapping runs send it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from agentfiles.data import delta_rows, jobs, keys, reply_rows, sweep_rows
from agentfiles.data.keys import REPLY_SWEEP, THREAD_SWEEP
from agentfiles.data.reply_rows import Lease
from agentfiles.data.sweep_rows import SweepDue
from agentfiles.logic import live, push
from agentfiles.logic.messages import queue_reply
from agentfiles.logic.shards import Start, in_turn, run_is_over
from agentfiles.logic.threads import CLEANUP_SWEEP_MS
from agentfiles.models import common
from agentfiles.models.jobs import ThreadCleanupJob
from agentfiles.models.messages import ENDED_STATUSES, MessageError, MessageRef
from agentfiles.observability import logger
from agentfiles.settings import get_settings

# Time the vacuum function keeps for the sweep after its vacuum run.
SWEEP_TIME_MS = 10_000
# Re-sends of one reply's job before the sweep gives up on it and fails the reply.
MAX_REPLY_RESENDS = 3

Outcome = Literal["resent", "deferred", "marker_removed", "failed", "unchanged"]


@dataclass
class SweepResult:
    replies_resent: int = 0
    thread_cleanups_resent: int = 0
    # Replies under a live lease whose sweep time moved to the lease's end.
    replies_deferred: int = 0
    # Replies whose job was re-sent MAX_REPLY_RESENDS times and still never finished.
    replies_failed: int = 0
    markers_removed: int = 0
    failures: int = 0
    items_read: int = 0
    stopped_early: bool = False


def sweep_reply(due: SweepDue, now_ms: int) -> Outcome:
    settings = get_settings()
    owner, thread_id, reply_id = due.owner, due.thread_id, due.reply_id or ""
    swept = sweep_rows.get_swept_reply(owner, thread_id, reply_id)
    if swept is None or swept.sweep_at is None or swept.sweep_at > now_ms:
        return "unchanged"  # gone, ended by its worker, or moved on since the index was read
    status = swept.record.status
    if status in ENDED_STATUSES:
        removed = sweep_rows.remove_reply_sweep(owner, thread_id, reply_id, seen_sweep_at=swept.sweep_at)
        return "marker_removed" if removed else "unchanged"
    if status == "streaming" and swept.lease_until is not None and swept.lease_until >= now_ms:
        deferred = sweep_rows.move_reply_sweep(
            owner,
            thread_id,
            reply_id,
            seen_sweep_at=swept.sweep_at,
            seen_status=status,
            sweep_at=swept.lease_until,
        )
        return "deferred" if deferred else "unchanged"
    if swept.resends >= MAX_REPLY_RESENDS:
        return _give_up(owner, thread_id, reply_id, swept.resends, now_ms)
    claimed = sweep_rows.move_reply_sweep(
        owner,
        thread_id,
        reply_id,
        seen_sweep_at=swept.sweep_at,
        seen_status=status,
        sweep_at=now_ms + settings.pending_reply_sweep_seconds * 1000,
    )
    if not claimed:
        return "unchanged"
    queue_reply(swept.record)
    return "resent"


def _give_up(owner: str, thread_id: str, reply_id: str, resends: int, now_ms: int) -> Outcome:
    """Fail a reply its job never finished, under a lease so no worker writes after; its
    stream is sealed first, which also fences off a worker that might still wake up."""
    ref = MessageRef(owner, thread_id, reply_id)
    lease = Lease(ref, uuid.uuid4().hex)
    taken = reply_rows.take_lease(lease, now_ms, now_ms + 60_000)
    if taken is None:
        return "unchanged"  # a worker took it up meanwhile
    end = live.seal(ref, "failed")
    rows = delta_rows.read_all(ref)
    if end.end != "failed":
        # The stream had ended already (a stop, or a worker that died after its end row).
        return "marker_removed" if live.conclude(lease, taken.record, rows) else "unchanged"
    error = MessageError(
        code="generation_stuck", message=f"no worker finished this reply after {resends} re-sent jobs"
    )
    job = taken.record.job or "chat"
    final = reply_rows.fail(lease, error, now_ms, job=job, text=live.text_of(rows), last_seq=end.seq)
    if final is not None:
        push.publish_messages(final)
    return "failed" if final else "unchanged"


def sweep_thread(due: SweepDue, now_ms: int) -> Outcome:
    swept = sweep_rows.get_swept_thread(due.owner, due.thread_id)
    if swept is None or swept.sweep_at is None or swept.sweep_at > now_ms:
        return "unchanged"
    if swept.record.status != "deleting":
        removed = sweep_rows.remove_thread_sweep(due.owner, due.thread_id, seen_sweep_at=swept.sweep_at)
        return "marker_removed" if removed else "unchanged"
    claimed = sweep_rows.move_thread_sweep(
        due.owner, due.thread_id, seen_sweep_at=swept.sweep_at, sweep_at=now_ms + CLEANUP_SWEEP_MS
    )
    if not claimed:
        return "unchanged"
    jobs.send_thread_cleanup(ThreadCleanupJob(owner=due.owner, thread_id=due.thread_id))
    return "resent"


def _count(result: SweepResult, due: SweepDue, outcome: Outcome) -> None:
    if outcome == "resent":
        if due.reply_id:
            result.replies_resent += 1
        else:
            result.thread_cleanups_resent += 1
    elif outcome == "deferred":
        result.replies_deferred += 1
    elif outcome == "failed":
        result.replies_failed += 1
    elif outcome == "marker_removed":
        result.markers_removed += 1


def run_sweep(time_left_ms: Callable[[], int]) -> SweepResult:
    """One bounded run over every reply and thread shard of the sweep index, a page
    of each in turn; stops above the reserve time or after `shards.MAX_ITEMS_PER_RUN` rows.
    Every row it settles leaves the due range, so the next run continues."""
    settings = get_settings()
    now = common.now_ms()
    result = SweepResult()
    settled = 0

    def must_stop() -> bool:
        if run_is_over(time_left_ms, settings.vacuum_reserve_ms, settled, result.failures):
            result.stopped_early = True
        return result.stopped_early

    def read_page(shard: str, start: Start) -> tuple[list[SweepDue], Start]:
        page = sweep_rows.due_for_sweep(shard, now, settings.vacuum_page_size, start)
        result.items_read += len(page.due)
        return page.due, page.next_start

    for due in in_turn(
        keys.sweep_shards(REPLY_SWEEP) + keys.sweep_shards(THREAD_SWEEP), read_page, must_stop
    ):
        settled += 1
        result.items_read += 1  # the row read again
        try:
            outcome = sweep_reply(due, now) if due.reply_id else sweep_thread(due, now)
        except Exception:
            # A job claimed but not sent is due again at its new sweep time.
            result.failures += 1
            logger.exception(
                "sweep of stuck work failed",
                extra={"owner": due.owner, "thread_id": due.thread_id, "reply_id": due.reply_id},
            )
            continue
        _count(result, due, outcome)
    return result
