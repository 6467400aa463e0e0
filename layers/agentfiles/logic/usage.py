"""What an owner has used and may use: the caller's own view (`GET /usage`, `GET
/models`) and the operator's (`agentfiles admin usage | quota`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentfiles.data import usage_rows
from agentfiles.errors import BadRequest
from agentfiles.models.common import now_ms
from agentfiles.models.usage import (
    GenerationUsage,
    StorageUsage,
    UsageLimits,
    UsageOut,
)
from agentfiles.settings import get_settings


def _storage_out(storage: usage_rows.Storage) -> StorageUsage:
    return StorageUsage(
        bytes=storage.bytes,
        files=storage.files,
        quota_bytes=storage.quota.bytes,
        quota_files=storage.quota.files,
    )


def _generation_out(day: usage_rows.Day) -> GenerationUsage:
    return GenerationUsage(
        day=day.day,
        replies=day.replies,
        images=day.images,
        prompt_tokens=day.prompt_tokens,
        completion_tokens=day.completion_tokens,
    )


def usage_of(owner: str) -> UsageOut:
    """Storage used and its quota, and today's (UTC) generation: one BatchGetItem."""
    storage, today = usage_rows.summary(owner, usage_rows.day_of(now_ms()))
    return UsageOut(
        storage=_storage_out(storage),
        generation=_generation_out(today),
        limits=UsageLimits(generations_per_minute=get_settings().generations_per_minute),
    )


# ---- the operator's -----------------------------------------------------------------


@dataclass(frozen=True)
class OwnerReport:
    """What an operator sees of one owner."""

    owner: str
    storage: StorageUsage
    overrides: usage_rows.Overrides
    days: list[GenerationUsage]

    def dump(self) -> dict:
        return {
            "owner": self.owner,
            "storage": self.storage.dump(),
            "overrides": {"quotaBytes": self.overrides.bytes, "quotaFiles": self.overrides.files},
            "days": [day.dump() for day in self.days],
        }


def report(owner: str, days: int = 7) -> OwnerReport:
    storage = usage_rows.storage(owner)
    return OwnerReport(
        owner=owner,
        storage=_storage_out(storage),
        overrides=storage.quota.overrides,
        days=[_generation_out(day) for day in usage_rows.recent_days(owner, days)],
    )


Setting = int | Literal["default"] | None


def set_quota(owner: str, *, quota_bytes: Setting = None, quota_files: Setting = None) -> OwnerReport:
    """Override an owner's quota (a number), go back to the default ("default"), or leave
    it (None). A quota below what is used already refuses new files until some go."""
    for name, value in (("bytes", quota_bytes), ("files", quota_files)):
        if isinstance(value, int) and value < 0:
            raise BadRequest(f"a quota of {name} must be 0 or more, not {value}", code="invalid_quota")
    usage_rows.set_quota(owner, quota_bytes=quota_bytes, quota_files=quota_files)
    return report(owner)
