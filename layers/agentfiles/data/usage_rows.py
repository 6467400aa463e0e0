"""Every change to what an owner has stored and generated, in one place.

Storage. The owner's usage row (`USAGE`) holds `bytes` and `files`: the sum of `size`
over the owner's counted files plus the `storedBytes` of their saved messages, and the
number of those files. A file is counted from the moment its row is created (its
declared size is reserved) until its row is deleted, unless it was rejected (its
reservation is released then); a message from its save until its row is deleted. Each
change is an item of the transaction that changes the file or message row, so usage
equals that sum at every moment, whatever crashes:

- `reserve`: +size, +1 file, with the file row's creation, only while the quota holds;
- `release`: -size, -1 file, with the rejection or the deletion of a counted row, only
  while the counters are at least that much (never negative);
- `reserve_bytes` / `release_bytes`: the same for a message's content (no file), with
  the save of the message and with every delete of it (its own, its thread's purge).

Quota. The row may also hold `quotaBytes` / `quotaFiles`, an operator's override of the
defaults (`STORAGE_QUOTA_BYTES`, `STORAGE_QUOTA_FILES`). DynamoDB conditions cannot add,
so `reserve` is conditioned on the quota it assumes: "no override, and bytes <= default -
size", or "this override, and bytes <= override - size". A refusal hands back the row as
it was, which says which quota holds; the caller tries again with it (`quota_of`).

Generation. One row per owner and UTC day (`USAGE#DAY#{day}`) counts the replies and
images that ended that day and the tokens they used; `count_reply` is an item of the
transaction that ends a reply under its lease, so a reply counts once, however often its
job is delivered. Day rows expire after `DAY_ROWS_KEPT_DAYS`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from agentfiles.data import keys, table
from agentfiles.data.table import Update, cond
from agentfiles.models.messages import Usage
from agentfiles.settings import get_settings
from agentfiles.topology import TTL_ATTRIBUTE

DAY_ROWS_KEPT_DAYS = 90
_DAY_S = 24 * 3600


@dataclass(frozen=True)
class Overrides:
    """An operator's quota for one owner; None where the default applies."""

    bytes: int | None = None
    files: int | None = None


@dataclass(frozen=True)
class Quota:
    """The quota in force, and the overrides it comes from."""

    bytes: int
    files: int
    overrides: Overrides = Overrides()


@dataclass(frozen=True)
class Storage:
    bytes: int
    files: int
    quota: Quota


def default_quota() -> Quota:
    settings = get_settings()
    return Quota(settings.storage_quota_bytes, settings.storage_quota_files)


def quota_of(row: table.Row | None) -> Quota:
    """The quota a usage row says is in force."""
    defaults = default_quota()
    overrides = Overrides(
        bytes=int(row["quotaBytes"]) if row and "quotaBytes" in row else None,
        files=int(row["quotaFiles"]) if row and "quotaFiles" in row else None,
    )
    return Quota(
        bytes=defaults.bytes if overrides.bytes is None else overrides.bytes,
        files=defaults.files if overrides.files is None else overrides.files,
        overrides=overrides,
    )


def _room_clause(counter: str, override: str, limit: int, override_value: int | None, amount: int) -> str:
    """The clause: `override` is as assumed, and `counter + amount <= limit`."""
    assumed = (
        f"#{override} = :{override}" if override_value is not None else f"attribute_not_exists(#{override})"
    )
    # A missing counter is zero: it fits when the amount alone does.
    room = f"#{counter} <= :room_{counter}"
    if amount <= limit:
        room = f"(attribute_not_exists(#{counter}) OR {room})"
    return f"{assumed} AND {room}"


def reserve(owner: str, size: int, quota: Quota) -> Update:
    """+size and +1 file, only if they stay within `quota` (and `quota` is the one in
    force). On refusal DynamoDB returns the usage row as it was."""
    values: dict[str, int] = {"room_bytes": quota.bytes - size, "room_files": quota.files - 1}
    if quota.overrides.bytes is not None:
        values["quotaBytes"] = quota.overrides.bytes
    if quota.overrides.files is not None:
        values["quotaFiles"] = quota.overrides.files
    condition = " AND ".join(
        (
            _room_clause("bytes", "quotaBytes", quota.bytes, quota.overrides.bytes, size),
            _room_clause("files", "quotaFiles", quota.files, quota.overrides.files, 1),
        )
    )
    return Update(
        keys.usage_key(owner),
        add={"bytes": size, "files": 1},
        when=cond(condition, **values),
        old_on_failure=True,
    )


def release(owner: str, size: int) -> Update:
    """-size and -1 file, never below zero."""
    return Update(
        keys.usage_key(owner),
        add={"bytes": -size, "files": -1},
        when=cond("#bytes >= :size AND #files >= :one", size=size, one=1),
    )


def reserve_bytes(owner: str, size: int, quota: Quota) -> Update:
    """+size, no file: a saved message's content, only if it stays within `quota` (and
    `quota` is the one in force). On refusal DynamoDB returns the usage row as it was."""
    values: dict[str, int] = {"room_bytes": quota.bytes - size}
    if quota.overrides.bytes is not None:
        values["quotaBytes"] = quota.overrides.bytes
    return Update(
        keys.usage_key(owner),
        add={"bytes": size},
        when=cond(_room_clause("bytes", "quotaBytes", quota.bytes, quota.overrides.bytes, size), **values),
        old_on_failure=True,
    )


def release_bytes(owner: str, size: int) -> Update:
    """-size, no file: deleted messages' content, never below zero."""
    return Update(keys.usage_key(owner), add={"bytes": -size}, when=cond("#bytes >= :size", size=size))


def _storage(row: table.Row | None) -> Storage:
    return Storage(
        bytes=int(row.get("bytes", 0)) if row else 0,
        files=int(row.get("files", 0)) if row else 0,
        quota=quota_of(row),
    )


def storage(owner: str) -> Storage:
    return _storage(table.get(keys.usage_key(owner)))


def set_quota(
    owner: str, *, quota_bytes: int | Literal["default"] | None, quota_files: int | Literal["default"] | None
) -> Storage:
    """An operator's override: a number sets it, "default" removes it, None leaves it."""
    changes: dict[str, int] = {}
    removed: list[str] = []
    for attribute, value in (("quotaBytes", quota_bytes), ("quotaFiles", quota_files)):
        if value == "default":
            removed.append(attribute)
        elif value is not None:
            changes[attribute] = value
    if changes or removed:
        table.update(keys.usage_key(owner), set=changes, remove=removed)
    return storage(owner)


# ---- generation ------------------------------------------------------------------


@dataclass(frozen=True)
class Day:
    day: str
    replies: int = 0
    images: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


def day_of(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%d")


def count_reply(owner: str, kind: Literal["chat", "image"], usage: Usage | None, now_ms: int) -> Update:
    """+1 reply (or image) and its tokens on the owner's row of the day the reply ends."""
    day = day_of(now_ms)
    counts: dict[str, int | float] = {"images" if kind == "image" else "replies": 1}
    if usage is not None:
        counts |= {"promptTokens": usage.prompt_tokens, "completionTokens": usage.completion_tokens}
    midnight_s = int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC).timestamp())
    return Update(
        keys.usage_day_key(owner, day),
        set={TTL_ATTRIBUTE: midnight_s + (DAY_ROWS_KEPT_DAYS + 1) * _DAY_S},
        add=counts,
    )


def _day(row: table.Row) -> Day:
    return Day(
        day=str(row["sk"]).removeprefix(keys.usage_day_sk("")),
        replies=int(row.get("replies", 0)),
        images=int(row.get("images", 0)),
        prompt_tokens=int(row.get("promptTokens", 0)),
        completion_tokens=int(row.get("completionTokens", 0)),
    )


def summary(owner: str, day: str) -> tuple[Storage, Day]:
    """The owner's storage and one day's generation counters, in one BatchGetItem."""
    storage_row = day_row = None
    for row in table.batch_get([keys.usage_key(owner), keys.usage_day_key(owner, day)], consistent=True):
        if row["sk"] == keys.usage_key(owner).sk:
            storage_row = row
        else:
            day_row = row
    return _storage(storage_row), _day(day_row) if day_row else Day(day)


def recent_days(owner: str, limit: int) -> list[Day]:
    """The owner's latest day rows, newest first."""
    page = table.query(keys.owner_pk(owner), prefix=keys.usage_day_sk(""), limit=limit, newest_first=True)
    return [_day(row) for row in page.rows]
