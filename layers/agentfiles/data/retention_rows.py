"""Retention's rows: the idle entries of active threads in the sweep index, and the
operator's per-owner overrides.

An active thread carries `sweepShard = IDLE#n` and `sweepAt`: its last activity,
written with the thread and by every save into it (`keys.idle_marker`), so the
retention run reads only threads idle long enough to be looked at, never the live
ones. A thread being deleted moves to its `THREAD#n` entry, and its row takes the
entry with it when it goes.

An override is one row per owner (`RETENTION`: `days`, 0 = never), listed in the
sweep index's one `RETAIN` shard (its `sweepAt` is the days), so a run reads the
overrides without reading the owners who have none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentfiles.data import keys, table
from agentfiles.data.errors import ConditionFailed
from agentfiles.data.table import cond
from agentfiles.models.threads import ThreadRecord
from agentfiles.topology import SWEEP_INDEX

# Above any number of days an override may hold, as the upper end of the index query.
_MAX_DAYS = 10**9


@dataclass(frozen=True)
class IdleEntry:
    owner: str
    thread_id: str
    due_at: int


@dataclass(frozen=True)
class IdlePage:
    entries: list[IdleEntry]
    next_start: dict[str, Any] | None


def idle_page(shard: str, up_to_ms: int, limit: int, start: dict[str, Any] | None) -> IdlePage:
    """One page of an `IDLE#n` shard: threads whose entry is at most `up_to_ms`,
    the longest idle first."""
    page = table.index_page(SWEEP_INDEX, shard, up_to_ms, limit, start)
    entries = [
        IdleEntry(
            row["pk"].removeprefix(keys.owner_pk("")),
            row["sk"].removeprefix(keys.thread_sk("")),
            int(row[SWEEP_INDEX.sort_key]),
        )
        for row in page.rows
    ]
    return IdlePage(entries, page.next_start)


@dataclass(frozen=True)
class IdleThread:
    record: ThreadRecord
    due_at: int | None
    shard: str | None


def get_idle_thread(owner: str, thread_id: str) -> IdleThread | None:
    """The thread as it is now (the index is keys-only and lags)."""
    row = table.get(keys.thread_key(owner, thread_id))
    if not row:
        return None
    return IdleThread(table.record_of(ThreadRecord, row), row.get("sweepAt"), row.get("sweepShard"))


def move_idle(owner: str, thread_id: str, *, seen_due_at: int, due_at: int) -> bool:
    """Look at a kept thread again later; only if no message came in since it was read
    (a save moves the entry itself)."""
    try:
        table.update(
            keys.thread_key(owner, thread_id),
            set={"sweepAt": due_at},
            when=cond(
                "#status = :active AND #sweepShard = :shard AND #sweepAt = :seen",
                active="active",
                shard=keys.sweep_shard(keys.IDLE_SWEEP, thread_id),
                seen=seen_due_at,
            ),
        )
    except ConditionFailed:
        return False
    return True


def mark_idle(owner: str, thread_id: str, last_activity_ms: int) -> bool:
    """Give an active thread its entry (one written before entries existed, or one whose
    owner's retention an operator set again)."""
    try:
        table.update(
            keys.thread_key(owner, thread_id),
            set=keys.idle_marker(thread_id, last_activity_ms),
            when=cond("#status = :active", active="active"),
        )
    except ConditionFailed:
        return False
    return True


def active_threads_page(owner: str, start: dict[str, Any] | None, limit: int = 100) -> table.Page:
    """One page of an owner's thread rows (an operator's re-marking, not a request's path)."""
    return table.query(keys.owner_pk(owner), prefix=keys.thread_sk(""), limit=limit, start=start)


# ---- overrides ---------------------------------------------------------------------


def get_override(owner: str) -> int | None:
    """The owner's retention in days (0: never), or None when the default applies."""
    row = table.get(keys.retention_key(owner))
    return int(row["days"]) if row else None


def set_override(owner: str, days: int | None) -> None:
    """Set the owner's retention (days, 0 for never), or remove it (None)."""
    key = keys.retention_key(owner)
    if days is None:
        table.delete(key)
        return
    table.put(
        {
            "pk": key.pk,
            "sk": key.sk,
            "days": days,
            "sweepShard": keys.RETENTION_OVERRIDES,
            "sweepAt": days,
        }
    )


def overrides() -> dict[str, int]:
    """Every owner's override: owner → days (0: never)."""
    found: dict[str, int] = {}
    start: dict[str, Any] | None = None
    while True:
        page = table.index_page(SWEEP_INDEX, keys.RETENTION_OVERRIDES, _MAX_DAYS, 1000, start)
        for row in page.rows:
            found[row["pk"].removeprefix(keys.owner_pk(""))] = int(row[SWEEP_INDEX.sort_key])
        if page.next_start is None:
            return found
        start = page.next_start
