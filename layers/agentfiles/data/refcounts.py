"""Every change to a file's reference count, in one place.

Counts move only inside the caller's DynamoDB transaction, next to the write that
justifies them (a message put, a message delete), so a count can never disagree
with the messages that exist:

- `take`: +1 per distinct file, only while the file is `ready` (so a file being
  vacuumed can never be re-referenced) and, when a part names its type, of that type;
  removes the gc marker.
- `release`: -n per file, only while the count is at least n (never negative);
  sets the gc marker, so the vacuum considers the file after the grace period.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from agentfiles.data import keys
from agentfiles.data.table import Condition, Update, cond
from agentfiles.models.common import iso_from_ms


def take(
    owner: str,
    file_ids: Iterable[str],
    now_ms: int,
    media_types: Mapping[str, Collection[str]] | None = None,
) -> list[Update]:
    """`media_types`: for a file a part names with a type, the types the file's checked
    one must be among (the part and its file agree, in the same condition)."""
    media_types = media_types or {}
    return [
        Update(
            keys.file_key(owner, file_id),
            set={"lastTouchedAt": now_ms, "updatedAt": iso_from_ms(now_ms)},
            add={"refcount": 1},
            remove=["gcShard"],
            when=_ready(media_types.get(file_id)),
            # On failure DynamoDB returns the file as it was, so the caller can say
            # which file was not ready (or not of the type its part says) and why,
            # without reading it again.
            old_on_failure=True,
        )
        for file_id in dict.fromkeys(file_ids)
    ]


def _ready(media_types: Collection[str] | None) -> Condition:
    if media_types is None:
        return cond("#status = :ready", ready="ready")
    wanted = sorted(media_types)
    placeholders = ", ".join(f":type{i}" for i in range(len(wanted)))
    values = {f"type{i}": media_type for i, media_type in enumerate(wanted)}
    return cond(f"#status = :ready AND #mediaType IN ({placeholders})", ready="ready", **values)


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
