"""The fake model's failures, shaped like OpenAI's error responses so that the SDK
raises the same exception classes (`BadRequestError`, `RateLimitError`,
`InternalServerError`, ...) it raises against the real service."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any


class ModelError(Exception):
    """A request the fake model answers with an error status and an OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type or default_type(status)
        self.code = code
        self.param = param

    def to_body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def default_type(status: int) -> str:
    """The error `type` OpenAI uses for a status (the SDK picks its exception by status alone)."""
    if status == 429:
        return "requests"
    if status >= 500:
        return "server_error"
    if status == 401:
        return "authentication_error"
    if status == 403:
        return "permission_error"
    if status == 404:
        return "not_found_error"
    return "invalid_request_error"


def fault(status: int) -> ModelError:
    """The error an armed fault (or a `[[fail:NNN]]` marker) answers with."""
    if status == 429:
        return ModelError(
            429,
            "Rate limit reached for requests (fault injected by the fake model).",
            code="rate_limit_exceeded",
        )
    if status == 400:
        return ModelError(
            400,
            "Your request was rejected as a result of our safety system (fault injected by the fake model).",
            code="content_policy_violation",
        )
    if status >= 500:
        return ModelError(
            status,
            "The server had an error while processing your request (fault injected by the fake model).",
        )
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return ModelError(
        status, f"{phrase} (fault injected by the fake model).", code=phrase.lower().replace(" ", "_")
    )
