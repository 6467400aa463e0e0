"""Retention: threads idle longer than their owner's retention are deleted, as
`DELETE /threads/{id}` deletes them (marked deleting, their replies stopped, their
messages purged by the maintenance worker in transactions that release their files,
which the vacuum then deletes after grace when nothing else holds them).

Each owner's retention is the operator's override for them (`agentfiles admin retention`;
0 days = never) or `THREAD_RETENTION_DAYS` (unset = never). A run looks only at the
threads idle for at least the shortest retention in force (`window`): the `IDLE#n`
entries of the sweep index up to `now - window`. Per entry, the thread is read again:

- idle past its owner's retention → deleted, conditioned on its `updatedAt` as read (a
  message saved meanwhile keeps it);
- kept (its owner's retention is longer) → its entry moves to when it will be due
  (`last activity + retention - window`), so it is read once more, when it expires;
- kept for good (its owner's retention is off) → its entry moves to now: it is read
  again one window later, in case the operator sets a retention meanwhile.

Every entry a run settles leaves the range it reads, so a run's cost follows what is
due, and the next run continues where one that stopped early left off.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from agentfiles.data import keys, retention_rows
from agentfiles.data.retention_rows import IdleEntry
from agentfiles.logic.shards import Start, in_turn, run_is_over
from agentfiles.logic.threads import expire_thread
from agentfiles.models import common
from agentfiles.observability import logger
from agentfiles.settings import get_settings

DAY_MS = 24 * 3600 * 1000
# Time the vacuum function keeps for retention after its vacuum run and sweep.
RETENTION_TIME_MS = 10_000

Outcome = Literal["expired", "kept", "unchanged"]


@dataclass
class RetentionResult:
    threads_expired: int = 0
    threads_kept: int = 0
    failures: int = 0
    items_read: int = 0
    stopped_early: bool = False


@dataclass(frozen=True)
class Policy:
    """The retention in force: the default days and each override (0 = never)."""

    default_days: int | None
    overrides: dict[str, int]

    def days_for(self, owner: str) -> int | None:
        days = self.overrides.get(owner, self.default_days)
        return days or None

    @property
    def window_days(self) -> int | None:
        """The shortest retention of anyone: no thread idle for less can be due."""
        every = [d for d in (self.default_days, *self.overrides.values()) if d]
        return min(every) if every else None


def current_policy() -> Policy:
    return Policy(get_settings().thread_retention_days, retention_rows.overrides())


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def settle(entry: IdleEntry, policy: Policy, now_ms: int) -> Outcome:
    """Delete one idle thread if its retention has passed, or move its entry."""
    window = policy.window_days
    idle = retention_rows.get_idle_thread(entry.owner, entry.thread_id)
    if idle is None or window is None or idle.record.status != "active":
        return "unchanged"  # gone, or being deleted: its entry is no longer an idle one
    if idle.due_at is None or idle.due_at > now_ms - window * DAY_MS:
        return "unchanged"  # a message came in since the index was read
    last = _ms(idle.record.updated_at)
    days = policy.days_for(entry.owner)
    if days is not None and last + days * DAY_MS <= now_ms:
        return (
            "expired" if expire_thread(entry.owner, entry.thread_id, idle.record.updated_at) else "unchanged"
        )
    due_at = last + (days - window) * DAY_MS if days is not None else now_ms
    moved = retention_rows.move_idle(entry.owner, entry.thread_id, seen_due_at=idle.due_at, due_at=due_at)
    return "kept" if moved else "unchanged"


def run_retention(time_left_ms: Callable[[], int]) -> RetentionResult:
    """One bounded run over every idle shard, a page of each in turn."""
    settings = get_settings()
    result = RetentionResult()
    policy = current_policy()
    window = policy.window_days
    if window is None:
        return result  # retention is off for everyone
    now = common.now_ms()
    cutoff = now - window * DAY_MS
    settled = 0

    def must_stop() -> bool:
        if run_is_over(time_left_ms, settings.vacuum_reserve_ms, settled, result.failures):
            result.stopped_early = True
        return result.stopped_early

    def read_page(shard: str, start: Start) -> tuple[list[IdleEntry], Start]:
        page = retention_rows.idle_page(shard, cutoff, settings.vacuum_page_size, start)
        result.items_read += len(page.entries)
        return page.entries, page.next_start

    for entry in in_turn(keys.sweep_shards(keys.IDLE_SWEEP), read_page, must_stop):
        settled += 1
        result.items_read += 1  # the row read again
        try:
            outcome = settle(entry, policy, now)
        except Exception:
            result.failures += 1
            logger.exception(
                "retention of an idle thread failed",
                extra={"owner": entry.owner, "thread_id": entry.thread_id},
            )
            continue
        if outcome == "expired":
            result.threads_expired += 1
        elif outcome == "kept":
            result.threads_kept += 1
    return result


# ---- an operator's override --------------------------------------------------------


@dataclass(frozen=True)
class RetentionReport:
    owner: str
    # The days in force for the owner (None: never), and where they come from.
    days: int | None
    source: Literal["owner", "default"]
    threads_marked: int = 0

    def dump(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "days": self.days,
            "source": self.source,
            "threadsMarked": self.threads_marked,
        }


def report(owner: str, threads_marked: int = 0) -> RetentionReport:
    override = retention_rows.get_override(owner)
    if override is not None:
        return RetentionReport(owner, override or None, "owner", threads_marked)
    return RetentionReport(owner, get_settings().thread_retention_days, "default", threads_marked)


def set_retention(owner: str, days: int | Literal["off", "default"]) -> RetentionReport:
    """Set an owner's retention (days; "off": never; "default": the deployment's), then
    give each of their active threads its entry again at its last activity, so the new
    retention applies to every thread, also those an earlier one moved or never marked.
    The cost is the owner's threads, once, when an operator asks."""
    retention_rows.set_override(owner, None if days == "default" else 0 if days == "off" else days)
    marked = 0
    start: dict[str, Any] | None = None
    while True:
        page = retention_rows.active_threads_page(owner, start)
        for row in page.rows:
            if row.get("status") == "active" and retention_rows.mark_idle(
                owner, row["id"], _ms(row["updatedAt"])
            ):
                marked += 1
        if page.next_start is None:
            break
        start = page.next_start
    return report(owner, marked)
