"""Every change to a file's reference count, in one place.

Counts move only inside the caller's DynamoDB transaction, next to the write that
justifies them (a message put, a message delete), so a count can never disagree
with the messages that exist:

- `take`: +1 per distinct file, only while the file is `ready` (so a file being
  vacuumed can never be re-referenced); removes the gc marker.
- `release`: -n per file, only while the count is at least n (never negative);
  sets the gc marker, so the vacuum considers the file after the grace period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from agentfiles.data import keys
from agentfiles.data.table import Update, cond
from agentfiles.models.common import iso_from_ms


def take(owner: str, file_ids: Iterable[str], now_ms: int) -> list[Update]:
    return [
        Update(
            keys.file_key(owner, file_id),
            set={"lastTouchedAt": now_ms, "updatedAt": iso_from_ms(now_ms)},
            add={"refcount": 1},
            remove=["gcShard"],
            when=cond("#status = :ready", ready="ready"),
            # On failure DynamoDB returns the file as it was, so the caller can say
            # which file was not ready and why, without reading it again.
            old_on_failure=True,
        )
        for file_id in dict.fromkeys(file_ids)
    ]


def release(owner: str, counts: Counter[str] | dict[str, int], now_ms: int) -> list[Update]:
    return [
        Update(
            keys.file_key(owner, file_id),
            set={
                "lastTouchedAt": now_ms,
                "updatedAt": iso_from_ms(now_ms),
                "gcShard": keys.gc_shard(file_id),
            },
            add={"refcount": -n},
            when=cond("#refcount >= :n", n=n),
        )
        for file_id, n in counts.items()
        if n > 0
    ]
