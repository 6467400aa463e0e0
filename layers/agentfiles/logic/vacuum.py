"""The vacuum: delete the files nothing references once they have stayed so for the
grace period.

Candidates come only from the sparse gc index (files born unreferenced, and files
whose last change was a decrement), so a run reads what is garbage, not what is
alive. Each candidate is settled by conditional writes on its row, never by what
the index said, because the index is eventually consistent and a message may
attach the file at any moment:

1. `tombstone`: refcount 0, untouched since the cutoff, ready/rejected (or pending
   with an upload URL expired a grace period ago) → `deleting`. From then on no
   message can take a reference (increments require `ready`).
2. `purge` (the same one DELETE /files uses): S3 object, hash row if it still
   points here, file row. Each step is idempotent.
3. A candidate that a message references again just loses its marker
   (`clear_marker`); one touched since the cutoff or still open for upload is left.

A run stopped anywhere (timeout, crash) leaves a file `deleting` with its marker
still set, so the next run finds it again and finishes it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from agentfiles.data import file_rows, keys
from agentfiles.data.file_rows import GcCandidate, GcPage
from agentfiles.logic.files import purge
from agentfiles.logic.shards import Start, in_turn
from agentfiles.models import common
from agentfiles.models.files import FileRecord
from agentfiles.observability import logger
from agentfiles.settings import get_settings

# A run that keeps failing stops: the next run retries, and the failures show up
# in the CandidatesFailed metric instead of being repeated for every candidate.
MAX_FAILURES_PER_RUN = 10

Outcome = Literal["deleted", "marker_cleared", "skipped"]


@dataclass
class VacuumResult:
    files_deleted: int = 0
    bytes_freed: int = 0
    markers_cleared: int = 0
    candidates_skipped: int = 0
    candidates_failed: int = 0
    # Every item DynamoDB returned to the run: index entries, and the file row each
    # tombstone hands back (the new row, or the old one when refused). What the
    # cost benchmark compares between a table of few and of many live files.
    items_read: int = 0
    stopped_early: bool = False


@dataclass(frozen=True)
class Settlement:
    outcome: Outcome
    bytes_freed: int = 0


def cutoff_ms(now_ms: int) -> int:
    """Files untouched since this moment are past the grace period."""
    return now_ms - get_settings().grace_seconds * 1000


def candidate_page(shard: str, cutoff: int, start: dict[str, Any] | None = None) -> GcPage:
    return file_rows.gc_candidates(shard, cutoff, get_settings().vacuum_page_size, start)


def tombstone(candidate: GcCandidate, cutoff: int, now_ms: int) -> FileRecord | None:
    """Step 1. The record to purge (also when an earlier run tombstoned it and
    stopped), or None when the file must stay for now."""
    return file_rows.tombstone(candidate.owner, candidate.file_id, now_ms, touched_before_ms=cutoff)


def clear_marker(candidate: GcCandidate) -> bool:
    """Step 1, refused: True when the file is referenced and has left the index."""
    return file_rows.clear_gc_marker(candidate.owner, candidate.file_id)


def _bytes_stored(record: FileRecord) -> int:
    # Only a file that became ready had an object checked to be `size` bytes: a
    # pending one may never have been uploaded, a rejected one's object is gone.
    # The tombstoned row no longer says which it was; these attributes do.
    was_ready = record.rejection is None and record.upload_expires_at is None
    return record.size if was_ready else 0


def settle(candidate: GcCandidate, cutoff: int, now_ms: int) -> Settlement:
    """Decide one candidate and carry the decision out."""
    record = tombstone(candidate, cutoff, now_ms)
    if record is not None:
        purge(record)
        return Settlement("deleted", _bytes_stored(record))
    if clear_marker(candidate):
        return Settlement("marker_cleared")
    return Settlement("skipped")


def _count(result: VacuumResult, settlement: Settlement) -> None:
    if settlement.outcome == "deleted":
        result.files_deleted += 1
        result.bytes_freed += settlement.bytes_freed
    elif settlement.outcome == "marker_cleared":
        result.markers_cleared += 1
    else:
        result.candidates_skipped += 1


def run_vacuum(time_left_ms: Callable[[], int]) -> VacuumResult:
    """One bounded run over every gc shard. Shards are read a page at a time in
    turn, so a run that stops early has made progress on all of them; it stops
    while `time_left_ms()` is still above the reserve, and the next run continues
    (settled candidates have left the index, so it starts where this one ended)."""
    settings = get_settings()
    now = common.now_ms()
    cutoff = cutoff_ms(now)
    result = VacuumResult()

    def must_stop() -> bool:
        if time_left_ms() < settings.vacuum_reserve_ms or result.candidates_failed >= MAX_FAILURES_PER_RUN:
            result.stopped_early = True
        return result.stopped_early

    def read_page(shard: str, start: Start) -> tuple[list[GcCandidate], Start]:
        page = candidate_page(shard, cutoff, start)
        result.items_read += len(page.candidates)
        return page.candidates, page.next_start

    for candidate in in_turn(keys.gc_shards(), read_page, must_stop):
        result.items_read += 1  # the row the tombstone returns
        try:
            _count(result, settle(candidate, cutoff, now))
        except Exception:
            # Left as it is (perhaps `deleting`): the next run settles it again.
            result.candidates_failed += 1
            logger.exception(
                "vacuum candidate failed", extra={"owner": candidate.owner, "file_id": candidate.file_id}
            )
    return result
