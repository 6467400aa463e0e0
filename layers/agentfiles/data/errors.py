"""What the data layer raises. None of these knows HTTP: `logic` decides what each
means to a caller (`agentfiles.logic.errors`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class DataError(Exception):
    """Something the stores refused or could not do."""


class ConditionFailed(DataError):
    """A conditional write whose condition did not hold. `item` is the row as it was,
    when the write asked for it (and the row existed)."""

    def __init__(self, item: dict[str, Any] | None = None) -> None:
        super().__init__("the condition of the write did not hold")
        self.item = item


@dataclass(frozen=True)
class CancellationReason:
    code: str
    item: dict[str, Any] | None = None


@dataclass
class TransactionCancelled(DataError):
    """A transaction that DynamoDB refused; `reasons` line up with the items sent."""

    reasons: list[CancellationReason] = field(default_factory=list)

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].code not in ("None", "")

    def conflicted(self) -> bool:
        return any(reason.code == "TransactionConflict" for reason in self.reasons)

    def __str__(self) -> str:
        return "transaction cancelled: " + ", ".join(reason.code for reason in self.reasons)


class Contention(DataError):
    """A write kept meeting other transactions on the same items; nothing was
    written, and the same request may succeed a moment later."""


class Unavailable(DataError):
    """A store or queue did not answer (throttled, down, unreachable)."""


class Fenced(DataError):
    """A transaction's fence did not hold (see `table.fenced`): the owner's writes are
    closed (their account is being erased)."""


class BadCursor(DataError):
    """A page cursor this layer did not issue for this listing."""


@dataclass
class QuotaExceeded(DataError):
    """A file that would take its owner's storage over quota: nothing was written."""

    size: int
    used_bytes: int
    used_files: int
    quota_bytes: int
    quota_files: int

    def __str__(self) -> str:
        return (
            f"{self.size} bytes would exceed the storage quota: {self.used_bytes} of {self.quota_bytes} "
            f"bytes and {self.used_files} of {self.quota_files} files are used"
        )
