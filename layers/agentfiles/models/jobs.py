"""Queue message bodies. Every job names its owner, so a worker only ever reads that
owner's rows."""

from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import Field

from agentfiles.models.common import CamelModel
from agentfiles.models.messages import ImageSize, MessageRef


class GenerationJob(CamelModel):
    kind: Literal["chat", "image"]
    owner: str
    thread_id: str
    message_id: str
    reply_id: str
    model: str | None = None
    size: ImageSize | None = None

    @property
    def reply(self) -> "MessageRef":
        return MessageRef(self.owner, self.thread_id, self.reply_id)


class ThreadCleanupJob(CamelModel):
    kind: Literal["delete_thread"] = "delete_thread"
    owner: str
    thread_id: str


class EraseAccountJob(CamelModel):
    kind: Literal["erase_account"] = "erase_account"
    owner: str


class ExportJob(CamelModel):
    kind: Literal["export"] = "export"
    owner: str
    export_id: str


MaintenanceJob = Annotated[ThreadCleanupJob | EraseAccountJob | ExportJob, Field(discriminator="kind")]


@dataclass(frozen=True)
class Outcome:
    """What one run of a generation job did."""

    status: Literal["success", "stopped", "failed", "skipped", "lease_lost"]
    model_calls: int = 0
    writes: int = 0
    chunks: int = 0
    error_code: str | None = None
