"""The HTTP API function: one router for every route, typed errors, OpenAPI docs.

Routes only read the request, call one use case and shape the response.
"""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from agentfiles.errors import AgentFilesError, Unauthorized
from agentfiles.ids import ULID_PATTERN
from agentfiles.logic import files, messages, threads
from agentfiles.models.common import AuthorizerRefusal, ErrorBody
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
    'Errors are `{"error": {"code", "message"}}`, except a 401: that comes from the gateway\'s JWT '
    'authorizer, with its own body `{"message": "Unauthorized"}`.',
    "security_schemes": {"bearer": HTTPBearer(bearerFormat="JWT")},
    "security": [{"bearer": []}],
}

_ERRORS: dict[int, Any] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorBody}}}
    for status, description in (
        (400, "Bad request (a body that is not valid JSON, a bad cursor...)"),
        (404, "Not found (or another owner's)"),
        (409, "Conflict with the current state"),
        (413, "Too large"),
        (415, "The body is not declared as JSON"),
        (422, "Well-formed but not acceptable"),
        (503, "A dependency is unavailable; retry"),
    )
}
_ERRORS[401] = {
    "description": "Missing or invalid token. The gateway's JWT authorizer answers before the API runs, "
    "with its own body (not the error envelope)",
    "content": {"application/json": {"model": AuthorizerRefusal}},
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
    """Every route may answer 401 (the authorizer) and 422 (validation), and these."""
    return {status: _ERRORS[status] for status in (401, 422, *statuses)}


def _link(route: str, body: dict[str, Any] | None = None, **parameters: str) -> dict[str, Any]:
    """An OpenAPI link to `route` ("GET /threads/{threadId}") with its parameters as runtime
    expressions (and a request body to start from): how a client, and the stateful
    fuzzing, follows what a response created."""
    method, path = route.split(" ", 1)
    link: dict[str, Any] = {
        "operationRef": f"#/paths/{quote(path.replace('/', '~1'), safe='~')}/{method.lower()}",
        "parameters": parameters,
    }
    if body is not None:
        link["requestBody"] = body
    return link


_THREAD = "$response.body#/thread/id"
_FILE = "$response.body#/file/id"
_SAME_THREAD = "$request.path.threadId"
THREAD_LINKS = {
    "GetThread": _link("GET /threads/{threadId}", threadId=_THREAD),
    "ListMessages": _link("GET /threads/{threadId}/messages", threadId=_THREAD),
    "SaveMessage": _link(
        "POST /threads/{threadId}/messages",
        {"content": "What is in this thread so far?", "fileIds": []},
        threadId=_THREAD,
    ),
    "GenerateImage": _link(
        "POST /threads/{threadId}/images", {"prompt": "a lighthouse at dusk"}, threadId=_THREAD
    ),
    "DeleteThread": _link("DELETE /threads/{threadId}", threadId=_THREAD),
}
MESSAGE_LINKS = {
    "GetMessage": _link(
        "GET /threads/{threadId}/messages/{messageId}",
        threadId=_SAME_THREAD,
        messageId="$response.body#/message/id",
    ),
    "GetReply": _link(
        "GET /threads/{threadId}/messages/{messageId}",
        threadId=_SAME_THREAD,
        messageId="$response.body#/reply/id",
    ),
    "DeleteMessage": _link(
        "DELETE /threads/{threadId}/messages/{messageId}",
        threadId=_SAME_THREAD,
        messageId="$response.body#/message/id",
    ),
}
FILE_LINKS = {
    "GetFile": _link("GET /files/{fileId}", fileId=_FILE),
    "DeleteFile": _link("DELETE /files/{fileId}", fileId=_FILE),
}


def owner() -> str:
    """The caller: the `sub` claim that the HTTP API's JWT authorizer verified."""
    claims = app.current_event.request_context.authorizer.jwt_claim or {}
    sub = claims.get("sub")
    if not sub or "#" in sub or "/" in sub:
        raise Unauthorized("a bearer token with a subject is required")
    return sub


UNAUTHORIZED = {"message": "Unauthorized"}


def _json(status: int, body: Any) -> Response:
    return Response(status_code=status, content_type="application/json", body=body)


@app.exception_handler(AgentFilesError)
def _domain_error(error: AgentFilesError) -> Response:
    if isinstance(error, Unauthorized):
        # The JWT authorizer answers nearly every 401 before this function runs; the few
        # it lets through (a subject the keys cannot hold) get the same body.
        return _json(401, UNAUTHORIZED)
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
    if any(problem.get("type") == "json_invalid" for problem in error.errors()):
        return _json(400, {"error": {"code": "invalid_json", "message": f"the body is not JSON: {summary}"}})
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
        201: {"description": "Upload the bytes with the returned URL and headers", "links": FILE_LINKS},
        200: {"description": "This owner already has this content: no upload needed", "links": FILE_LINKS},
        **_errors(400, 413, 415),
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
        201: {"description": "Stored and ready", "links": FILE_LINKS},
        200: {"description": "Deduplicated", "links": FILE_LINKS},
        **_errors(400, 413, 415),
    },
)
def upload_small_file(request: SmallUploadRequest) -> Response[UploadResponse]:
    stored = files.store_small_file(owner(), request)
    body = UploadResponse(file=files.file_out(stored.record), deduplicated=stored.deduplicated)
    return _json(200 if stored.deduplicated else 201, body)


@app.get(
    "/files",
    summary="List files, newest first",
    tags=["files"],
    responses={200: {"description": "A page of files"}, **_errors(400)},
)
def list_files(limit: Limit = 50, cursor: Cursor = None) -> FilePage:
    return files.list_files(owner(), limit, cursor)


@app.get(
    "/files/<fileId>",
    summary="Read a file, with a fresh download URL when ready",
    tags=["files"],
    responses={200: {"description": "The file"}, **_errors(404)},
)
def get_file(file_id: FileId) -> FileResponse:
    return FileResponse(file=files.file_out(files.get_file(owner(), file_id)))


@app.delete(
    "/files/<fileId>",
    summary="Delete a file that no message references",
    tags=["files"],
    responses={204: {"description": "Deleted", "content": {}}, **_errors(404, 409)},
)
def delete_file(file_id: FileId) -> Response[None]:
    files.delete_file(owner(), file_id)
    return Response(status_code=204)


# ---- threads -----------------------------------------------------------------


@app.post(
    "/threads",
    summary="Create a thread",
    tags=["threads"],
    responses={201: {"description": "Created", "links": THREAD_LINKS}, **_errors(400, 415)},
)
def create_thread(request: CreateThreadRequest | None = None) -> Response[ThreadResponse]:
    thread = threads.create_thread(owner(), request or CreateThreadRequest())
    return _json(201, ThreadResponse(thread=thread))


@app.get(
    "/threads",
    summary="List threads, newest first",
    tags=["threads"],
    responses={200: {"description": "A page of threads"}, **_errors(400)},
)
def list_threads(limit: Limit = 50, cursor: Cursor = None) -> ThreadPage:
    return threads.list_threads(owner(), limit, cursor)


@app.get(
    "/threads/<threadId>",
    summary="Read a thread",
    tags=["threads"],
    responses={200: {"description": "The thread"}, **_errors(404)},
)
def get_thread(thread_id: ThreadId) -> ThreadResponse:
    return ThreadResponse(thread=ThreadOut.of(threads.require_thread(owner(), thread_id)))


@app.delete(
    "/threads/<threadId>",
    summary="Delete a thread; its messages are removed in the background, releasing their files",
    tags=["threads"],
    responses={202: {"description": "Deletion under way", "content": {}}, **_errors(404)},
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
        201: {"description": "Saved; `reply` is the pending assistant message", "links": MESSAGE_LINKS},
        **_errors(400, 404, 409, 413, 415, 503),
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
    responses={200: {"description": "A page of messages"}, **_errors(400, 404)},
)
def list_messages(thread_id: ThreadId, limit: Limit = 50, cursor: Cursor = None) -> MessagePage:
    return messages.list_messages(owner(), thread_id, limit, cursor)


@app.get(
    "/threads/<threadId>/messages/<messageId>",
    summary="Read a message",
    tags=["messages"],
    responses={200: {"description": "The message"}, **_errors(404)},
)
def get_message(thread_id: ThreadId, message_id: MessageId) -> MessageResponse:
    return MessageResponse(message=messages.get_message(owner(), thread_id, message_id))


@app.delete(
    "/threads/<threadId>/messages/<messageId>",
    summary="Delete a message, releasing its files",
    tags=["messages"],
    responses={204: {"description": "Deleted", "content": {}}, **_errors(404, 409)},
)
def delete_message(thread_id: ThreadId, message_id: MessageId) -> Response[None]:
    messages.delete_message(owner(), thread_id, message_id)
    return Response(status_code=204)


@app.post(
    "/threads/<threadId>/images",
    summary="Generate an image into the thread",
    tags=["messages"],
    responses={
        202: {"description": "Queued; `reply` gets the picture as an image part", "links": MESSAGE_LINKS},
        **_errors(400, 404, 409, 415, 503),
    },
)
def generate_image(
    thread_id: ThreadId, request: ImageRequest, idempotency_key: IdempotencyKey = None
) -> Response[SavedMessage]:
    return _json(202, messages.request_image(owner(), thread_id, request, idempotency_key))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    readable = _json_bodies(event)
    if readable is None:
        return _unsupported_media_type(event)
    return app.resolve(readable, context)


def _json_bodies(event: dict) -> dict | None:
    """Every body this API takes is JSON. A client that sends one without saying so
    (curl -d sends form encoding) gets it read as JSON, not a riddle about form fields;
    a body declared as anything else (multipart, text, XML) is None: a 415."""
    headers = event.get("headers") or {}
    declared = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if not event.get("body") or declared == "application/json":
        return event
    if declared in ("", "application/x-www-form-urlencoded") or declared.endswith("+json"):
        return {**event, "headers": {**headers, "content-type": "application/json"}}
    return None


def _unsupported_media_type(event: dict) -> dict:
    declared = (event.get("headers") or {}).get("content-type", "")
    error = {
        "code": "unsupported_media_type",
        "message": f"send the body as application/json, not {declared}",
    }
    return {
        "statusCode": 415,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": error}, separators=(",", ":")),
        "isBase64Encoded": False,
    }
