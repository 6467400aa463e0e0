"""Reading a sharded, sparse index a page of each shard in turn, so that a run that
has to stop early has made progress on every shard."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
Start = dict[str, Any] | None


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
