"""The OpenAI SDK client for any OpenAI-compatible endpoint, and what its errors mean.

Only the generate function imports this module (the SDK costs ~0.3 s and ~50 MB at
cold start). Retries are SQS's job, not the SDK's: `max_retries=0` and a bounded
timeout keep one invocation from hammering a struggling model.
"""

from __future__ import annotations

import re
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


# ---- an attachment the model refused ------------------------------------------

AttachmentKind = Literal["image", "file"]


@dataclass(frozen=True)
class Refusal:
    """A 400 about an attachment: which kind (None when the error does not say), and
    where in the request when the error points at one part (`messages[i].content[j]`).
    `whole_kind` says the model refuses that kind of part as such (a text-only model, a
    server without `file` parts), not one attachment's content."""

    kind: AttachmentKind | None
    position: tuple[int, int] | None
    whole_kind: bool
    message: str


# Statuses a provider answers a request it will not take with (vLLM and some gateways
# answer validation errors with 422; 415 for a media type).
_REFUSAL_STATUSES = frozenset({400, 415, 422})
_POSITION = re.compile(r"messages\.?\[(\d+)\]\.?content\.?\[(\d+)\]")
# "Unsupported chat content part type: 'file'" (vLLM), "Invalid content type. image_url is
# only supported by certain models." (OpenAI), "Unknown part type: file".
_NAMED_TYPE = re.compile(
    r"(?:part type|content type)[:.]?\s*['\"]?(?P<type>image_url|input_image|image|input_file|file)\b", re.I
)
# What says a kind of part is refused as such, rather than one attachment's content.
_WHOLE_KIND = re.compile(
    r"(?:unsupported|unknown|invalid) (?:chat )?(?:content )?(?:part )?type|only supported by certain models|"
    r"at most 0 |not a multimodal|does not support (?:images?|files?|pdfs?|vision|image input|file input)|"
    r"(?:images?|files?|pdfs?|vision|image input|file input) (?:is|are) not supported|"
    r"cannot (?:see|read|accept) (?:images|files|pdfs)",
    re.I,
)
# A URL the provider could not fetch is not refused for what it is: the deployment (or
# the network) is wrong, and the reply fails as before rather than dropping the image for good.
_FETCH_FAILURE = re.compile(r"download|fetch|timed? ?out|unreachable|could not be reached|resolve", re.I)
_CONTENT_TYPE_WORDS = re.compile(r"content (?:part )?type|part type|modalit|multimodal|multi-modal", re.I)


def _kind_of(name: str) -> AttachmentKind | None:
    name = name.lower()
    if "image" in name:
        return "image"
    if "file" in name or "pdf" in name or "document" in name:
        return "file"
    return None


def attachment_refusal(error: Exception) -> Refusal | None:
    """The refusal in a provider's error when it refused an attachment (an image or a
    file part), else None. Read from the error body's message, param and code, as
    OpenAI, vLLM and gateways in front of them phrase it; the list of supported types
    some servers append is not read (it names every kind)."""
    if not isinstance(error, openai.APIStatusError) or error.status_code not in _REFUSAL_STATUSES:
        return None
    code = _code(error)
    if code in _CONTENT_POLICY:
        return None
    body = _error_body(error)
    message = _message(error)
    if _FETCH_FAILURE.search(message):
        return None
    said = re.split(r"supported (?:types|values|formats)\s*(?:are|:)", message, maxsplit=1, flags=re.I)[0]
    param = str(body.get("param") or "")
    found = _POSITION.search(param) or _POSITION.search(said)
    position = (int(found[1]), int(found[2])) if found else None
    named = _NAMED_TYPE.search(said)
    kind = (
        (_kind_of(named["type"]) if named else None)
        or _kind_of(code)
        or _kind_of(param.rpartition("]")[2])
        or _kind_of(_attachment_words(said))
    )
    whole_kind = kind is not None and bool(_WHOLE_KIND.search(said))
    if kind is None and not _CONTENT_TYPE_WORDS.search(said):
        return None
    return Refusal(kind, position, whole_kind, f"{error.status_code}: {message}")


_ATTACHMENT_WORD = re.compile(r"\b(images?|image_url|files?|file_data|pdfs?|documents?)\b", re.I)


def _attachment_words(text: str) -> str:
    """The first word of `text` that names a kind of attachment, or ""."""
    found = _ATTACHMENT_WORD.search(text)
    return found[1] if found else ""
