"""Every DynamoDB key, in one place. Each begins with the owner, so isolation between
owners holds by construction: no request can name another owner's row."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

from agentfiles.topology import (
    DERIVED_PREFIX,
    EXPORTS_PREFIX,
    GC_SHARDS,
    OBJECT_PREFIXES,
    ORIGINALS_PREFIX,
    PARTITION_KEY,
    SORT_KEY,
    SWEEP_SHARDS,
)


@dataclass(frozen=True)
class Key:
    """The primary key of one row."""

    pk: str
    sk: str

    @property
    def dynamo(self) -> dict[str, Any]:
        """As the DynamoDB client takes it."""
        return {PARTITION_KEY: {"S": self.pk}, SORT_KEY: {"S": self.sk}}

    @classmethod
    def of(cls, row: dict[str, Any]) -> Key:
        """The key of a row read with `table.get` or `table.query_page`."""
        return cls(row[PARTITION_KEY], row[SORT_KEY])


def owner_pk(owner: str) -> str:
    return f"OWNER#{owner}"


def thread_sk(thread_id: str) -> str:
    return f"THREAD#{thread_id}"


def file_sk(file_id: str) -> str:
    return f"FILE#{file_id}"


def hash_sk(sha256: str) -> str:
    return f"HASH#{sha256}"


def thread_pk(owner: str, thread_id: str) -> str:
    return f"OWNER#{owner}#THREAD#{thread_id}"


def message_sk(message_id: str) -> str:
    return f"MSG#{message_id}"


def idempotency_sk(key: str) -> str:
    return f"IDEM#{key}"


# A reply's stream: one row per delta, in its thread's partition but under a prefix that
# sorts before messages (`DELTA#` < `IDEM#` < `MSG#`), so no message page or history
# query can reach one. The zero-padded seq keeps them in order.
SEQ_DIGITS = 10


def stream_prefix(message_id: str) -> str:
    return f"DELTA#{message_id}#"


def delta_sk(message_id: str, seq: int) -> str:
    return f"{stream_prefix(message_id)}{seq:0{SEQ_DIGITS}d}"


def delta_key(owner: str, thread_id: str, message_id: str, seq: int) -> Key:
    return Key(thread_pk(owner, thread_id), delta_sk(message_id, seq))


# A reply being made: one marker row per reply from its save until it ends, in its
# thread's partition, so deleting a thread finds the replies to stop with one Query.
def live_prefix() -> str:
    return "LIVE#"


def live_key(owner: str, thread_id: str, reply_id: str) -> Key:
    return Key(thread_pk(owner, thread_id), f"{live_prefix()}{reply_id}")


# WebSocket connections: the connection row in its owner's partition, and one
# subscription row per thread it follows, in that thread's partition, so the thread's
# subscribers are one Query and go with the thread when it is purged.
def connection_key(owner: str, connection_id: str) -> Key:
    return Key(owner_pk(owner), f"CONN#{connection_id}")


def subscription_prefix() -> str:
    return "SUB#"


def subscription_key(owner: str, thread_id: str, connection_id: str) -> Key:
    return Key(thread_pk(owner, thread_id), f"{subscription_prefix()}{connection_id}")


def file_key(owner: str, file_id: str) -> Key:
    return Key(owner_pk(owner), file_sk(file_id))


def hash_key(owner: str, sha256: str) -> Key:
    return Key(owner_pk(owner), hash_sk(sha256))


def thread_key(owner: str, thread_id: str) -> Key:
    return Key(owner_pk(owner), thread_sk(thread_id))


def message_key(owner: str, thread_id: str, message_id: str) -> Key:
    return Key(thread_pk(owner, thread_id), message_sk(message_id))


def idempotency_key(owner: str, thread_id: str, key: str) -> Key:
    return Key(thread_pk(owner, thread_id), idempotency_sk(key))


def usage_key(owner: str) -> Key:
    """The owner's storage counters, and the quota an operator set for them."""
    return Key(owner_pk(owner), "USAGE")


def usage_day_sk(day: str) -> str:
    return f"USAGE#DAY#{day}"


def usage_day_key(owner: str, day: str) -> Key:
    """The owner's generation counters of one UTC day (`YYYY-MM-DD`)."""
    return Key(owner_pk(owner), usage_day_sk(day))


def rate_key(owner: str, window: int) -> Key:
    """The owner's generation counter of one rate window (its number since the epoch)."""
    return Key(owner_pk(owner), f"RATE#{window}")


def object_key(owner: str, file_id: str) -> str:
    """Where a file's bytes, as its owner uploaded them, live. S3 keys are made by the
    server; a client's filename never reaches one."""
    return f"{ORIGINALS_PREFIX}{owner}/{file_id}"


def parse_object_key(object_key_: str) -> tuple[str, str] | None:
    """(owner, file id) of an original's key; None for any other key (a derived object,
    an export, or a key this system never made)."""
    rest = object_key_.removeprefix(ORIGINALS_PREFIX)
    if rest == object_key_:
        return None
    owner, _, file_id = rest.partition("/")
    if not owner or not file_id or "/" in file_id:
        return None
    return owner, file_id


def derived_key(owner: str, file_id: str, name: str) -> str:
    """Where something made from a file lives (`name` is server-made: see
    `models.files.DerivedObject`): beside the original, under the same owner."""
    return f"{DERIVED_PREFIX}{owner}/{file_id}/{name}"


def export_key(owner: str, export_id: str) -> str:
    return f"{EXPORTS_PREFIX}{owner}/{export_id}.zip"


def owner_object_prefixes(owner: str) -> list[str]:
    """Every S3 prefix that holds objects of `owner` (an erasure lists each)."""
    return [f"{prefix}{owner}/" for prefix in OBJECT_PREFIXES]


def _shard(value: str, shards: int) -> int:
    return zlib.crc32(value.encode()) % shards


def gc_shard(file_id: str) -> str:
    return f"GC#{_shard(file_id, GC_SHARDS)}"


def gc_shards() -> list[str]:
    return [f"GC#{n}" for n in range(GC_SHARDS)]


# The sweep index's partitions: replies that must finish, threads being deleted.
REPLY_SWEEP = "REPLY"
THREAD_SWEEP = "THREAD"


def sweep_shard(kind: str, item_id: str) -> str:
    return f"{kind}#{_shard(item_id, SWEEP_SHARDS)}"


def sweep_shards(kind: str) -> list[str]:
    return [f"{kind}#{n}" for n in range(SWEEP_SHARDS)]


# Retention: every active thread carries an `IDLE#n` entry in the sweep index (sorted by
# when it is next due a look, which is its last activity unless the retention run moved
# it); an owner whose retention an operator set has one `RETENTION` row, listed in the
# one `RETAIN` shard (sorted by its days).
IDLE_SWEEP = "IDLE"
RETENTION_OVERRIDES = "RETAIN"


def retention_key(owner: str) -> Key:
    return Key(owner_pk(owner), "RETENTION")


def idle_marker(thread_id: str, at_ms: int) -> dict[str, Any]:
    """The attributes that put an active thread in the retention run's view."""
    return {"sweepShard": sweep_shard(IDLE_SWEEP, thread_id), "sweepAt": at_ms}
