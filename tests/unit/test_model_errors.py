"""What each model error means for a reply: retry through SQS, or fail now."""

from __future__ import annotations

import httpx2 as httpx
import openai
import pytest

from agentfiles.logic.prompt import UnsupportedContent, bytes_part
from agentfiles.model_client import classify


def _status_error(cls, status: int, code: str | None = None, headers: dict | None = None):
    request = httpx.Request("POST", "http://model/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    body = {"error": {"message": f"status {status}", "code": code}}
    return cls(f"status {status}", response=response, body=body)


@pytest.mark.parametrize(
    ("error", "retryable", "code"),
    [
        (_status_error(openai.RateLimitError, 429, headers={"retry-after": "7"}), True, "model_rate_limited"),
        (_status_error(openai.RateLimitError, 429, code="insufficient_quota"), False, "model_rejected"),
        (_status_error(openai.InternalServerError, 503), True, "model_error"),
        (_status_error(openai.BadRequestError, 400), False, "model_rejected"),
        (
            _status_error(openai.BadRequestError, 400, code="content_policy_violation"),
            False,
            "content_policy",
        ),
        (_status_error(openai.AuthenticationError, 401), False, "model_rejected"),
        (openai.APITimeoutError(httpx.Request("POST", "http://model")), True, "model_timeout"),
        (openai.APIConnectionError(request=httpx.Request("POST", "http://model")), True, "model_unreachable"),
    ],
)
def test_model_errors_are_classified(error, retryable, code):
    failure = classify(error)
    assert failure is not None
    assert (failure.retryable, failure.code) == (retryable, code)


def test_retry_after_is_read():
    failure = classify(_status_error(openai.RateLimitError, 429, headers={"retry-after": "7"}))
    assert failure.retry_after_s == 7


def test_other_exceptions_are_not_model_errors():
    assert classify(ValueError("x")) is None


def test_a_type_the_model_cannot_take_is_refused_with_a_clear_error():
    with pytest.raises(UnsupportedContent, match="application/zip"):
        bytes_part("application/zip", b"PK\x03\x04", "a.zip", total_size=4)
