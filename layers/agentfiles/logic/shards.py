"""Reading a sharded, sparse index a page of each shard in turn, so that a run that
has to stop early has made progress on every shard."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
Start = dict[str, Any] | None

# What one bounded run of the schedule (a sweep, a retention pass) may settle, and how
# many failures end it early; the next run continues where it stopped.
MAX_ITEMS_PER_RUN = 500
MAX_FAILURES_PER_RUN = 10


def run_is_over(time_left_ms: Callable[[], int], reserve_ms: int, settled: int, failures: int) -> bool:
    """Whether a bounded run must stop now: less than `reserve_ms` left of the
    invocation, MAX_ITEMS_PER_RUN settled, or MAX_FAILURES_PER_RUN failed."""
    return time_left_ms() < reserve_ms or settled >= MAX_ITEMS_PER_RUN or failures >= MAX_FAILURES_PER_RUN


def in_turn(
    shards: Iterable[str],
    read_page: Callable[[str, Start], tuple[list[T], Start]],
    stop: Callable[[], bool],
) -> Iterator[T]:
    """Every entry of every shard, a page of each shard in turn, until all are read
    or `stop()` says so (asked before each page and each entry). `read_page(shard,
    start)` returns a page's entries and where the shard's next page starts (None
    after its last)."""
    starts: dict[str, Start] = dict.fromkeys(shards)
    while starts:
        for shard, start in list(starts.items()):
            if stop():
                return
            entries, next_start = read_page(shard, start)
            for entry in entries:
                if stop():
                    return
                yield entry
            if next_start is None:
                del starts[shard]
            else:
                starts[shard] = next_start
