"""What every route of the API shares: who the caller is, the path and query
parameters, and the error responses each route declares in the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from agentfiles.errors import Unauthorized
from agentfiles.ids import ULID_PATTERN, usable_owner
from agentfiles.models.common import AuthorizerRefusal, ErrorBody


class Router(APIGatewayHttpRouter):
    """A group of routes, included by the one resolver in `handler.py`."""

    def owner(self) -> str:
        """The caller: the `sub` claim that the HTTP API's JWT authorizer verified."""
        claims = self.current_event.request_context.authorizer.jwt_claim or {}
        sub = claims.get("sub")
        if not usable_owner(sub):
            raise Unauthorized("a bearer token with a subject is required")
        return sub


_ERRORS: dict[int, Any] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorBody}}}
    for status, description in (
        (400, "Bad request (a body that is not valid JSON, a bad cursor...)"),
        (404, "Not found (or another owner's)"),
        (409, "Conflict with the current state"),
        (413, "Too large"),
        (415, "The body is not declared as JSON"),
        (422, "Well-formed but not acceptable"),
        (429, "Over a rate limit; retry after the `Retry-After` header's seconds"),
        (503, "A dependency is unavailable; retry"),
    )
}
_ERRORS[401] = {
    "description": "Missing or invalid token. The gateway's JWT authorizer answers before the API runs, "
    "with its own body (not the error envelope)",
    "content": {"application/json": {"model": AuthorizerRefusal}},
}


def errors(*statuses: int) -> dict[int, Any]:
    """Every route may answer 401 (the authorizer) and 422 (validation), and these."""
    return {status: _ERRORS[status] for status in (401, 422, *statuses)}


def link(route: str, body: dict[str, Any] | None = None, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to `route` ("GET /threads/{threadId}") with its parameters as runtime
    expressions (and a request body to start from): how a client, and the stateful
    fuzzing, follows what a response created."""
    method, path = route.split(" ", 1)
    found: dict[str, Any] = {
        "operationRef": f"#/paths/{quote(path.replace('/', '~1'), safe='~')}/{method.lower()}",
        "parameters": parameters,
    }
    if body is not None:
        found["requestBody"] = body
    return found


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type="application/json", body=body, headers=headers)


FileId = Annotated[str, Path(alias="fileId", pattern=ULID_PATTERN, description="A file id (ULID)")]
ThreadId = Annotated[str, Path(alias="threadId", pattern=ULID_PATTERN, description="A thread id (ULID)")]
ExportId = Annotated[str, Path(alias="exportId", pattern=ULID_PATTERN, description="An export id (ULID)")]
MessageId = Annotated[str, Path(alias="messageId", pattern=ULID_PATTERN, description="A message id (ULID)")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        max_length=255,
        description="Makes the request safe to retry: the same key and body return the saved message",
    ),
]
Limit = Annotated[int, Query(ge=1, le=100, description="Page size")]
Cursor = Annotated[str | None, Query(max_length=2048, description="`nextCursor` of the previous page")]
