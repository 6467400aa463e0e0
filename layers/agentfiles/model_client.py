"""The OpenAI SDK client for any OpenAI-compatible endpoint, and what its errors mean.

Only the generate function imports this module (the SDK costs ~0.3 s and ~50 MB at
cold start). Retries are SQS's job, not the SDK's: `max_retries=0` and a bounded
timeout keep one invocation from hammering a struggling model.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import openai

from agentfiles.data import secrets
from agentfiles.settings import get_settings


class ModelNotConfigured(Exception):
    pass


def api_key() -> str | None:
    """The key as configured, or as the secret holds it now (read again once it is
    older than SECRET_MAX_AGE_SECONDS, so a rotated key needs no cold start)."""
    settings = get_settings()
    if settings.openai_api_key:
        return settings.openai_api_key
    if settings.openai_api_key_secret_arn:
        return (
            secrets.read_secret(settings.openai_api_key_secret_arn, settings.secret_max_age_seconds).strip()
            or None
        )
    return None


def model_client() -> openai.OpenAI:
    """The client for the current key: one per container while the key stays the same."""
    settings = get_settings()
    key = api_key()
    if not key and not settings.openai_base_url:
        raise ModelNotConfigured(
            "no model is configured: set OPENAI_API_KEY (or its secret) or OPENAI_BASE_URL"
        )
    return _client(key or "not-needed", settings.openai_base_url, settings.model_timeout_seconds)


@lru_cache(maxsize=1)
def _client(key: str, base_url: str | None, timeout_seconds: float) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=key,
        base_url=base_url,
        max_retries=0,
        timeout=openai.Timeout(timeout_seconds, connect=10.0),
    )


def reset() -> None:
    """Forget the client and the cached key (tests, after changing the model's settings)."""
    _client.cache_clear()
    secrets.reset()


@dataclass(frozen=True)
class ModelFailure:
    retryable: bool
    code: str
    message: str
    retry_after_s: float | None = None


_CONTENT_POLICY = ("content_policy_violation", "content_filter", "moderation_blocked")


def classify(error: Exception) -> ModelFailure | None:
    """What a model error means for the reply; None when it is not a model error."""
    if isinstance(error, openai.APITimeoutError):
        return ModelFailure(True, "model_timeout", "the model did not answer in time")
    if isinstance(error, openai.APIConnectionError):
        return ModelFailure(True, "model_unreachable", "the model could not be reached")
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        code = _code(error)
        detail = _message(error)
        if status == 429 and code != "insufficient_quota":
            return ModelFailure(True, "model_rate_limited", detail, _retry_after(error))
        if status >= 500 or status in (408, 409):
            return ModelFailure(True, "model_error", detail)
        kind: Literal["content_policy", "model_rejected"] = (
            "content_policy" if code in _CONTENT_POLICY else "model_rejected"
        )
        return ModelFailure(False, kind, f"{status}: {detail}")
    if isinstance(error, ModelNotConfigured):
        return ModelFailure(False, "model_not_configured", str(error))
    return None


def _error_body(error: openai.APIStatusError) -> dict:
    """The `{"message", "code", ...}` object, whether or not it came wrapped in "error"."""
    body = error.body if isinstance(error.body, dict) else {}
    inner = body.get("error", body)
    return inner if isinstance(inner, dict) else {}


def _code(error: openai.APIStatusError) -> str:
    return str(getattr(error, "code", None) or _error_body(error).get("code") or "")


def _message(error: openai.APIStatusError) -> str:
    return str(_error_body(error).get("message") or error.message)[:500]


def _retry_after(error: openai.APIStatusError) -> float | None:
    value = error.response.headers.get("retry-after") if error.response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
