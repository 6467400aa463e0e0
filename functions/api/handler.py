"""The HTTP API function: one router for every route, typed errors, OpenAPI docs.

Routes only read the request, call one use case and shape the response.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentfiles.errors import AgentFilesError, Unauthorized
from agentfiles.ids import ULID_PATTERN
from agentfiles.logic import files, messages, threads
from agentfiles.models.common import ErrorBody
from agentfiles.models.files import (
    FilePage,
    FileResponse,
    SmallUploadRequest,
    UploadRequest,
    UploadResponse,
)
from agentfiles.models.messages import (
    ImageRequest,
    MessagePage,
    MessageResponse,
    SavedMessage,
    SaveMessageRequest,
)
from agentfiles.models.threads import CreateThreadRequest, ThreadOut, ThreadPage, ThreadResponse
from agentfiles.observability import logger, metrics

app = APIGatewayHttpResolver(enable_validation=True)
OPENAPI_INFO: dict[str, Any] = {
    "title": "agentfiles",
    "version": "1.0.0",
    "description": "Chat threads that carry files and images: presigned uploads checked on arrival, "
    "messages whose parts reference files, replies from an OpenAI-compatible model. Every route but "
    "/health, /openapi.json and /docs takes a bearer JWT; its `sub` owns what the caller creates. "
    'Errors are `{"error": {"code", "message"}}`.',
    "security_schemes": {"bearer": HTTPBearer(bearerFormat="JWT")},
    "security": [{"bearer": []}],
}

_ERRORS = {
    status: {"description": description, "content": {"application/json": {"model": ErrorBody}}}
    for status, description in (
        (400, "Bad request"),
        (401, "Missing or invalid token"),
        (404, "Not found (or another owner's)"),
        (409, "Conflict with the current state"),
        (413, "Too large"),
        (422, "Well-formed but not acceptable"),
        (503, "A dependency is unavailable; retry"),
    )
}
FileId = Annotated[str, Path(alias="fileId", pattern=ULID_PATTERN, description="A file id (ULID)")]
ThreadId = Annotated[str, Path(alias="threadId", pattern=ULID_PATTERN, description="A thread id (ULID)")]
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


def _errors(*statuses: int) -> dict[int, Any]:
    return {status: _ERRORS[status] for status in (401, *statuses)}


def owner() -> str:
    """The caller: the `sub` claim that the HTTP API's JWT authorizer verified."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    sub = claims.get("sub")
    if not sub or "#" in sub or "/" in sub:
        raise Unauthorized("a bearer token with a subject is required")
    return sub


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=body)


@app.exception_handler(AgentFilesError)
def _domain_error(error: AgentFilesError) -> Response:
    if error.status >= 500:
        logger.warning("request failed", extra={"code": error.code, "error_message": error.message})
    return _json(error.status, error.to_body())


@app.exception_handler(RequestValidationError)
def _validation_error(error: RequestValidationError) -> Response:
    problems = [
        {
            "location": ".".join(str(part) for part in problem.get("loc", ())),
            "message": problem.get("msg", ""),
        }
        for problem in error.errors()
    ]
    summary = "; ".join(f"{p['location']}: {p['message']}" for p in problems[:5]) or "invalid request"
    return _json(
        422, {"error": {"code": "validation_error", "message": summary, "details": {"problems": problems}}}
    )


@app.not_found
def _not_found(_: Exception) -> Response:
    return _json(404, {"error": {"code": "route_not_found", "message": "no such route"}})


@app.get("/health", include_in_schema=False)
def health() -> dict:
    return {"status": "ok"}


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(
        status_code=200, content_type="application/json", body=app.get_openapi_json_schema(**OPENAPI_INFO)
    )


@app.get("/docs", include_in_schema=False)
def docs() -> Response[str]:
    """Swagger UI with its script and styles inlined (no CDN). Built on request, not
    at import: `enable_swagger` would add ~40 ms to every cold start for a page that
    people open rarely."""
    from pathlib import Path

    import aws_lambda_powertools.event_handler as event_handler
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    spec = app.get_openapi_json_schema(**OPENAPI_INFO)
    if (app.current_event.query_string_parameters or {}).get("format") == "json":
        return Response(status_code=200, content_type="application/json", body=spec)
    assets = Path(event_handler.__file__).parent / "openapi" / "swagger_ui"
    spec = spec.replace("</", "<\\/")
    html = generate_swagger_html(
        spec,
        (assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
        (assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
        "",
        None,
    )
    return Response(status_code=200, content_type="text/html", body=html)


# ---- files -------------------------------------------------------------------


@app.post(
    "/files/uploads",
    summary="Register a file and get a presigned PUT",
    tags=["files"],
    responses={
        201: {"description": "Upload the bytes with the returned URL and headers"},
        200: {"description": "This owner already has this content: no upload needed"},
        **_errors(413, 422),
    },
)
def register_upload(request: UploadRequest) -> Response[UploadResponse]:
    result = files.register_upload(owner(), request)
    return _json(200 if result.deduplicated else 201, result)


@app.post(
    "/files",
    summary="Upload a small file in the body (base64), checked at once",
    tags=["files"],
    responses={
        201: {"description": "Stored and ready"},
        200: {"description": "Deduplicated"},
        **_errors(400, 413, 422),
    },
)
def upload_small_file(request: SmallUploadRequest) -> Response[UploadResponse]:
    stored = files.store_small_file(owner(), request)
    body = UploadResponse(file=files.file_out(stored.record), deduplicated=stored.deduplicated)
    return _json(200 if stored.deduplicated else 201, body)


@app.get("/files", summary="List files, newest first", tags=["files"], responses=_errors(400))
def list_files(limit: Limit = 50, cursor: Cursor = None) -> FilePage:
    return files.list_files(owner(), limit, cursor)


@app.get(
    "/files/<fileId>",
    summary="Read a file, with a fresh download URL when ready",
    tags=["files"],
    responses=_errors(404),
)
def get_file(file_id: FileId) -> FileResponse:
    return FileResponse(file=files.file_out(files.get_file(owner(), file_id)))


@app.delete(
    "/files/<fileId>",
    summary="Delete a file that no message references",
    tags=["files"],
    responses={204: {"description": "Deleted"}, **_errors(404, 409)},
)
def delete_file(file_id: FileId) -> Response[None]:
    files.delete_file(owner(), file_id)
    return Response(status_code=204)


# ---- threads -----------------------------------------------------------------


@app.post(
    "/threads",
    summary="Create a thread",
    tags=["threads"],
    responses={201: {"description": "Created"}, **_errors()},
)
def create_thread(request: CreateThreadRequest | None = None) -> Response[ThreadResponse]:
    thread = threads.create_thread(owner(), request or CreateThreadRequest())
    return _json(201, ThreadResponse(thread=thread))


@app.get("/threads", summary="List threads, newest first", tags=["threads"], responses=_errors(400))
def list_threads(limit: Limit = 50, cursor: Cursor = None) -> ThreadPage:
    return threads.list_threads(owner(), limit, cursor)


@app.get("/threads/<threadId>", summary="Read a thread", tags=["threads"], responses=_errors(404))
def get_thread(thread_id: ThreadId) -> ThreadResponse:
    return ThreadResponse(thread=ThreadOut.of(threads.require_thread(owner(), thread_id)))


@app.delete(
    "/threads/<threadId>",
    summary="Delete a thread; its messages are removed in the background, releasing their files",
    tags=["threads"],
    responses={202: {"description": "Deletion under way"}, **_errors(404)},
)
def delete_thread(thread_id: ThreadId) -> Response[None]:
    threads.delete_thread(owner(), thread_id)
    return Response(status_code=202)


# ---- messages ----------------------------------------------------------------


@app.post(
    "/threads/<threadId>/messages",
    summary="Save a message (and queue the assistant's reply)",
    tags=["messages"],
    responses={
        201: {"description": "Saved; `reply` is the pending assistant message"},
        **_errors(400, 404, 409, 413, 422, 503),
    },
)
def save_message(
    thread_id: ThreadId, request: SaveMessageRequest, idempotency_key: IdempotencyKey = None
) -> Response[SavedMessage]:
    saved = messages.save_message(owner(), thread_id, request, idempotency_key)
    return _json(201, saved)


@app.get(
    "/threads/<threadId>/messages",
    summary="List messages, newest first; file parts carry fresh URLs",
    tags=["messages"],
    responses=_errors(400, 404),
)
def list_messages(thread_id: ThreadId, limit: Limit = 50, cursor: Cursor = None) -> MessagePage:
    return messages.list_messages(owner(), thread_id, limit, cursor)


@app.get(
    "/threads/<threadId>/messages/<messageId>",
    summary="Read a message",
    tags=["messages"],
    responses=_errors(404),
)
def get_message(thread_id: ThreadId, message_id: MessageId) -> MessageResponse:
    return MessageResponse(message=messages.get_message(owner(), thread_id, message_id))


@app.delete(
    "/threads/<threadId>/messages/<messageId>",
    summary="Delete a message, releasing its files",
    tags=["messages"],
    responses={204: {"description": "Deleted"}, **_errors(404, 409)},
)
def delete_message(thread_id: ThreadId, message_id: MessageId) -> Response[None]:
    messages.delete_message(owner(), thread_id, message_id)
    return Response(status_code=204)


@app.post(
    "/threads/<threadId>/images",
    summary="Generate an image into the thread",
    tags=["messages"],
    responses={
        202: {"description": "Queued; `reply` gets the picture as an image part"},
        **_errors(400, 404, 409, 422, 503),
    },
)
def generate_image(
    thread_id: ThreadId, request: ImageRequest, idempotency_key: IdempotencyKey = None
) -> Response[SavedMessage]:
    return _json(202, messages.request_image(owner(), thread_id, request, idempotency_key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return app.resolve(_json_bodies(event), context)


def _json_bodies(event: dict) -> dict:
    """Every body this API takes is JSON. A client that sends one without saying so
    (curl -d sends form encoding) gets it read as JSON, not a riddle about form fields."""
    headers = event.get("headers") or {}
    declared = headers.get("content-type", "")
    if event.get("body") and (not declared or declared.startswith("application/x-www-form-urlencoded")):
        event = {**event, "headers": {**headers, "content-type": "application/json"}}
    return event
