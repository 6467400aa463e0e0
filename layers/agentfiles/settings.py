"""Every setting the functions read, from the environment, in one model.

A function reads it once per container through `get_settings()`, at init: the
resources a deployment names (`DEPLOYMENT_VARIABLES`) have no defaults, so a function
started without them stops there with a message naming what is missing, instead of
running against the wrong table. Tests and the local stack call
`get_settings.cache_clear()` after changing the environment.
"""

import json
import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

DEFAULT_ALLOWED_MEDIA_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/heic",
    "image/heif",
    "image/avif",
    "image/tiff",
    "image/bmp",
    "application/pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/json",
)


class ModelCapability(BaseModel):
    """What one model can read (`MODEL_CAPABILITIES`): images, file parts (PDFs), and the
    largest image it uses (the geometry its images are fitted to before they are sent)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    images: bool = True
    files: bool = True
    max_image_side: int | None = Field(2048, alias="maxImageSide", ge=64)
    max_image_short_side: int | None = Field(768, alias="maxImageShortSide", ge=64)


# Today's behaviour for OpenAI: every model sees images (fitted to OpenAI's high-detail
# geometry, 2048 x 2048 then 768 on the short side) and reads file parts.
DEFAULT_MODEL_CAPABILITIES = {"*": ModelCapability()}

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    # Named by the deployment (the CDK stack, or the local stack): no defaults.
    table_name: str = Field(alias="TABLE_NAME", min_length=1)
    bucket_name: str = Field(alias="BUCKET_NAME", min_length=1)
    generations_queue_url: str = Field(alias="GENERATIONS_QUEUE_URL", min_length=1)
    generations_dlq_url: str = Field(alias="GENERATIONS_DLQ_URL", min_length=1)
    maintenance_queue_url: str = Field(alias="MAINTENANCE_QUEUE_URL", min_length=1)

    # Files
    upload_url_ttl_seconds: int = Field(900, alias="UPLOAD_URL_TTL_SECONDS", ge=60, le=7 * 24 * 3600)
    download_url_ttl_seconds: int = Field(900, alias="DOWNLOAD_URL_TTL_SECONDS", ge=60, le=7 * 24 * 3600)
    max_upload_bytes: int = Field(100 * MIB, alias="MAX_UPLOAD_BYTES", gt=0)
    small_upload_max_bytes: int = Field(1 * MIB, alias="SMALL_UPLOAD_MAX_BYTES", gt=0)
    allowed_media_types: tuple[str, ...] = Field(DEFAULT_ALLOWED_MEDIA_TYPES, alias="ALLOWED_MEDIA_TYPES")
    # Images are decoded at the upload check; one that declares more pixels is refused
    # before it is decoded (a decompression bomb costs its header, not its pixels).
    image_max_pixels: int = Field(50_000_000, alias="IMAGE_MAX_PIXELS", gt=0)
    # A file becomes ready only once the malware scan (GuardDuty Malware Protection for
    # S3 on AWS, the emulated scanner locally) passed it too; what the scanner could not
    # scan (UNSUPPORTED, ACCESS_DENIED, FAILED) is rejected or accepted as this says.
    malware_scan: bool = Field(False, alias="MALWARE_SCAN")
    malware_unscannable: Literal["reject", "allow"] = Field("reject", alias="MALWARE_UNSCANNABLE")

    # Messages
    inline_max_bytes: int = Field(64 * KIB, alias="INLINE_MAX_BYTES", ge=0)
    max_attachments: int = Field(20, alias="MAX_ATTACHMENTS", ge=0, le=90)
    idempotency_ttl_seconds: int = Field(24 * 3600, alias="IDEMPOTENCY_TTL_SECONDS", gt=0)
    pending_reply_sweep_seconds: int = Field(600, alias="PENDING_REPLY_SWEEP_SECONDS", gt=0)

    # Generation
    openai_base_url: str | None = Field(None, alias="OPENAI_BASE_URL")
    openai_api_key: str | None = Field(None, alias="OPENAI_API_KEY")
    openai_api_key_secret_arn: str | None = Field(None, alias="OPENAI_API_KEY_SECRET_ARN")
    # How long a key read from the secret is used before it is read again, so a rotated
    # key is picked up without a cold start.
    secret_max_age_seconds: int = Field(300, alias="SECRET_MAX_AGE_SECONDS", ge=0)
    model: str = Field("gpt-4o-mini", alias="MODEL")
    image_model: str = Field("gpt-image-1", alias="IMAGE_MODEL")
    model_timeout_seconds: float = Field(120.0, alias="MODEL_TIMEOUT_SECONDS", gt=0)
    history_messages: int = Field(20, alias="HISTORY_MESSAGES", ge=1, le=100)
    stream_flush_ms: int = Field(250, alias="STREAM_FLUSH_MS", ge=0)
    # The longest one worker may hold a reply (past the generate function's timeout)...
    lease_seconds: int = Field(330, alias="LEASE_SECONDS", gt=0)
    # ...renewed as it streams: a chat reply's lease ends this long after the worker was
    # last heard from, so a worker that died is taken over (or stopped) within seconds.
    lease_heartbeat_seconds: int = Field(15, alias="LEASE_HEARTBEAT_SECONDS", ge=2)
    retry_base_seconds: int = Field(10, alias="RETRY_BASE_SECONDS", ge=0)
    # The completion limit sent to the model: a longer answer ends `length`, never fails.
    max_reply_tokens: int = Field(4096, alias="MAX_REPLY_TOKENS", ge=1)
    url_mode: Literal["presigned", "public", "inline"] = Field("presigned", alias="URL_MODE")
    # JSON: a model name (or "*" for every other) to what it can read.
    model_capabilities: dict[str, ModelCapability] = Field(
        DEFAULT_MODEL_CAPABILITIES, alias="MODEL_CAPABILITIES"
    )
    public_base_url: str | None = Field(None, alias="PUBLIC_BASE_URL")
    model_url_ttl_seconds: int = Field(600, alias="MODEL_URL_TTL_SECONDS", ge=60)

    # Live replies: how long a reply's deltas are kept for catch-up after each is written,
    # and where functions push frames to WebSocket connections (API Gateway's @connections
    # endpoint, https://{api}.execute-api.{region}.amazonaws.com/{stage}); unset, nothing is pushed.
    stream_retention_seconds: int = Field(3600, alias="STREAM_RETENTION_SECONDS", ge=60)
    websocket_callback_url: str | None = Field(None, alias="WEBSOCKET_CALLBACK_URL")
    # The WebSocket $connect authorizer checks tokens as the HTTP API's JWT authorizer does:
    # this issuer (its keys at JWKS_URL, by default the jwks_uri of its OpenID discovery
    # document, {issuer}/.well-known/openid-configuration) and audiences.
    jwt_issuer: str | None = Field(None, alias="JWT_ISSUER")
    jwt_audience: tuple[str, ...] = Field((), alias="JWT_AUDIENCE")
    jwks_url: str | None = Field(None, alias="JWKS_URL")

    # Limits: what one owner may store and spend
    storage_quota_bytes: int = Field(10 * GIB, alias="STORAGE_QUOTA_BYTES", ge=0)
    storage_quota_files: int = Field(10_000, alias="STORAGE_QUOTA_FILES", ge=0)
    # Names a client may ask for besides MODEL / IMAGE_MODEL (which are always allowed).
    models: tuple[str, ...] = Field((), alias="MODELS")
    image_models: tuple[str, ...] = Field((), alias="IMAGE_MODELS")
    generations_per_minute: int = Field(20, alias="GENERATIONS_PER_MINUTE", ge=1)
    attachment_budget_bytes: int = Field(16 * MIB, alias="ATTACHMENT_BUDGET_BYTES", gt=0)
    text_attachment_max_bytes: int = Field(256 * KIB, alias="TEXT_ATTACHMENT_MAX_BYTES", gt=0)
    image_max_bytes: int = Field(16 * MIB, alias="IMAGE_MAX_BYTES", gt=0)

    # Vacuum
    grace_seconds: int = Field(24 * 3600, alias="GRACE_SECONDS", ge=0)
    vacuum_page_size: int = Field(100, alias="VACUUM_PAGE_SIZE", ge=1, le=1000)
    vacuum_reserve_ms: int = Field(20_000, alias="VACUUM_RESERVE_MS", ge=0)

    # Lifecycle: a thread whose last message is older than this many days is deleted by
    # the scheduled maintenance (unset: threads are kept until deleted).
    thread_retention_days: int | None = Field(None, alias="THREAD_RETENTION_DAYS", ge=1)
    # An account's erasure looks once more this long after it began, when no write begun
    # before it can still be running (the longest function timeout, and a margin).
    erasure_settle_seconds: int = Field(330, alias="ERASURE_SETTLE_SECONDS", ge=0)

    @field_validator("model_capabilities", mode="before")
    @classmethod
    def _capabilities_json(cls, value: object) -> object:
        if isinstance(value, str):
            value = json.loads(value) if value.strip() else {}
        if isinstance(value, dict) and "*" not in value:
            # Models not named keep the default: images and files.
            value = {**value, "*": ModelCapability()}
        return value

    @field_validator("allowed_media_types", "jwt_audience", "models", "image_models", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "openai_base_url",
        "openai_api_key",
        "openai_api_key_secret_arn",
        "public_base_url",
        "websocket_callback_url",
        "jwt_issuer",
        "jwks_url",
    )
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("thread_retention_days", mode="before")
    @classmethod
    def _retention_off(cls, value: object) -> object:
        # Unset, blank or 0: no retention.
        return None if value in ("", "0", 0) else value

    @property
    def chat_models(self) -> tuple[str, ...]:
        """The chat models a client may name: the default first."""
        return tuple(dict.fromkeys((self.model, *self.models)))

    @property
    def image_model_names(self) -> tuple[str, ...]:
        """The image models a client may name: the default first."""
        return tuple(dict.fromkeys((self.image_model, *self.image_models)))


DEPLOYMENT_VARIABLES = tuple(
    str(field.alias) for field in Settings.model_fields.values() if field.is_required()
)


class SettingsError(RuntimeError):
    """The environment cannot make a working function; the message says which variable."""


@cache
def get_settings() -> Settings:
    try:
        return Settings.model_validate(dict(os.environ))
    except ValidationError as error:
        missing = [str(e["loc"][0]) for e in error.errors() if e["type"] == "missing"]
        invalid = [f"{e['loc'][0]} ({e['msg']})" for e in error.errors() if e["type"] != "missing"]
        problems = []
        if missing:
            problems.append("missing environment variable(s) " + ", ".join(missing))
        if invalid:
            problems.append("invalid " + ", ".join(invalid))
        raise SettingsError("cannot start: " + "; ".join(problems)) from None
