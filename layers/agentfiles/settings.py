"""Every setting the functions read, from the environment, in one model.

A function reads it once per container through `get_settings()`; tests and the
local stack call `get_settings.cache_clear()` after changing the environment.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

DEFAULT_ALLOWED_MEDIA_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "application/pdf",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
)

KIB = 1024
MIB = 1024 * KIB


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    table_name: str = Field("agentfiles", alias="TABLE_NAME")
    bucket_name: str = Field("agentfiles-files", alias="BUCKET_NAME")
    generations_queue_url: str = Field("", alias="GENERATIONS_QUEUE_URL")
    generations_dlq_url: str = Field("", alias="GENERATIONS_DLQ_URL")
    maintenance_queue_url: str = Field("", alias="MAINTENANCE_QUEUE_URL")

    # Files
    upload_url_ttl_seconds: int = Field(900, alias="UPLOAD_URL_TTL_SECONDS", ge=60, le=7 * 24 * 3600)
    download_url_ttl_seconds: int = Field(900, alias="DOWNLOAD_URL_TTL_SECONDS", ge=60, le=7 * 24 * 3600)
    max_upload_bytes: int = Field(100 * MIB, alias="MAX_UPLOAD_BYTES", gt=0)
    small_upload_max_bytes: int = Field(1 * MIB, alias="SMALL_UPLOAD_MAX_BYTES", gt=0)
    allowed_media_types: tuple[str, ...] = Field(DEFAULT_ALLOWED_MEDIA_TYPES, alias="ALLOWED_MEDIA_TYPES")

    # Messages
    inline_max_bytes: int = Field(64 * KIB, alias="INLINE_MAX_BYTES", ge=0)
    max_attachments: int = Field(20, alias="MAX_ATTACHMENTS", ge=0, le=90)
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS", gt=0)
    pending_reply_sweep_seconds: int = Field(600, alias="PENDING_REPLY_SWEEP_SECONDS", gt=0)

    # Generation
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_api_key: str | None = Field(None, alias="OPENAI_API_KEY")
    openai_api_key_secret_arn: str | None = Field(None, alias="OPENAI_API_KEY_SECRET_ARN")
    model: str = Field("gpt-4o-mini", alias="MODEL")
    image_model: str = Field("gpt-image-1", alias="IMAGE_MODEL")
    model_timeout_seconds: float = Field(120.0, alias="MODEL_TIMEOUT_SECONDS", gt=0)
    history_messages: int = Field(20, alias="HISTORY_MESSAGES", ge=1, le=100)
    stream_flush_ms: int = Field(250, alias="STREAM_FLUSH_MS", ge=0)
    lease_seconds: int = Field(330, alias="LEASE_SECONDS", gt=0)
    retry_base_seconds: int = Field(10, alias="RETRY_BASE_SECONDS", ge=0)
    url_mode: Literal["presigned", "public", "inline"] = Field("presigned", alias="URL_MODE")
    public_base_url: str | None = Field(None, alias="PUBLIC_BASE_URL")
    model_url_ttl_seconds: int = Field(600, alias="MODEL_URL_TTL_SECONDS", ge=60)

    # Vacuum
    grace_seconds: int = Field(24 * 3600, alias="GRACE_SECONDS", ge=0)
    vacuum_page_size: int = Field(100, alias="VACUUM_PAGE_SIZE", ge=1, le=1000)
    vacuum_reserve_ms: int = Field(20_000, alias="VACUUM_RESERVE_MS", ge=0)

    @field_validator("allowed_media_types", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("openai_base_url", "openai_api_key", "openai_api_key_secret_arn", "public_base_url")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None


@cache
def get_settings() -> Settings:
    return Settings.model_validate(dict(os.environ))
