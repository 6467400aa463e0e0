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
from typing import Any

from agentfiles.data import keys
from agentfiles.data.table import table_name, to_value
from agentfiles.models.common import iso_from_ms


def take(owner: str, file_ids: Iterable[str], now_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": table_name(),
                "Key": keys.file_key(owner, file_id),
                "UpdateExpression": "SET refcount = refcount + :one, lastTouchedAt = :now, updatedAt = :iso "
                "REMOVE gcShard",
                "ConditionExpression": "#status = :ready",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {
                    ":one": to_value(1),
                    ":ready": to_value("ready"),
                    ":now": to_value(now_ms),
                    ":iso": to_value(iso_from_ms(now_ms)),
                },
                # On failure DynamoDB returns the file as it was, so the caller can say
                # which file was not ready and why, without reading it again.
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            }
        }
        for file_id in dict.fromkeys(file_ids)
    ]


def release(owner: str, counts: Counter[str] | dict[str, int], now_ms: int) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": table_name(),
                "Key": keys.file_key(owner, file_id),
                "UpdateExpression": "SET refcount = refcount - :n, lastTouchedAt = :now, updatedAt = :iso, "
                "gcShard = :shard",
                "ConditionExpression": "refcount >= :n",
                "ExpressionAttributeValues": {
                    ":n": to_value(n),
                    ":now": to_value(now_ms),
                    ":iso": to_value(iso_from_ms(now_ms)),
                    ":shard": to_value(keys.gc_shard(file_id)),
                },
            }
        }
        for file_id, n in counts.items()
        if n > 0
    ]
