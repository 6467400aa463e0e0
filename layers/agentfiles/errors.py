"""The one error hierarchy. The API turns each into `{"error": {"code", "message"}}`."""

from __future__ import annotations

from typing import Any


class AgentFilesError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details or {}

    def headers(self) -> dict[str, str]:
        """Response headers the error adds to its body."""
        return {}

    def to_body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return {"error": error}


class BadRequest(AgentFilesError):
    status = 400
    code = "bad_request"


class Unauthorized(AgentFilesError):
    status = 401
    code = "unauthorized"


class NotFound(AgentFilesError):
    status = 404
    code = "not_found"


class Conflict(AgentFilesError):
    status = 409
    code = "conflict"


class PayloadTooLarge(AgentFilesError):
    status = 413
    code = "payload_too_large"


class Unprocessable(AgentFilesError):
    status = 422
    code = "unprocessable"


class TooManyRequests(AgentFilesError):
    """Over a rate limit: the client may try again after `retry_after_s` seconds."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: int, code: str | None = None):
        super().__init__(message, code=code, details={"retryAfterSeconds": retry_after_s})
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class ServiceUnavailable(AgentFilesError):
    status = 503
    code = "service_unavailable"
