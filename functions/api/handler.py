"""The HTTP API function: one resolver that includes the routes of each concern
(`routes/`), maps every error to `{"error": {"code", "message"}}`, and serves the
OpenAPI document and its viewer. Routes only read the request, call one use case and
shape the response.

Every route module is included at init with plain `include_router` calls: importing them
lazily per request was measured at about 10 ms of a 250 ms cold import, not worth a route
table of its own. An init that no request waits for (SnapStart, provisioned concurrency)
also builds what the first requests would otherwise build."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from agentfiles import initialization
from agentfiles.data.errors import DataError
from agentfiles.errors import AgentFilesError, Unauthorized
from agentfiles.ids import usable_owner
from agentfiles.logic import erasure
from agentfiles.logic.errors import domain_error
from agentfiles.observability import logger, metrics
from agentfiles.settings import get_settings
from functions.api.contract import json_response
from functions.api.routes import account, files, live, messages, threads

# Fail at init, naming any variable the deployment did not set.
get_settings()

app = APIGatewayHttpResolver(enable_validation=True)
for concern in (files, threads, messages, live, account):
    app.include_router(concern.router)

_WRITES = ("POST", "PUT", "PATCH", "DELETE")
# Writes that are no transaction (a single conditional write): the fence is read first.
# Every other write is transactions only, and each carries the fence as one more item.
_UNTRANSACTED = re.compile(
    r"^(POST /threads|DELETE /threads/[^/]+|DELETE /files/[^/]+|POST /threads/[^/]+/messages/[^/]+/stop)$"
)


def _erasure_fence(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """While an owner's account is erased, each of their writes is a 409 `account_erasing`,
    at no extra call for those made of transactions; reads are not fenced. The erasure's
    own request is let in."""
    event = app.current_event
    method = event.request_context.http.method
    sub = (event.request_context.authorizer.jwt_claim or {}).get("sub")
    if method not in _WRITES or event.path == "/account" or not usable_owner(sub):
        return next_middleware(app)
    if _UNTRANSACTED.match(f"{method} {event.path}"):
        erasure.refuse_if_erasing(sub)
    with erasure.fenced(sub):
        return next_middleware(app)


app.use(middlewares=[_erasure_fence])

OPENAPI_INFO: dict[str, Any] = {
    "title": "agentfiles",
    "version": "1.0.0",
    "description": "Chat threads that carry files and images: presigned uploads checked on arrival, "
    "messages whose parts reference files, replies from an OpenAI-compatible model. Every route but "
    "/health, /openapi.json, /asyncapi.json and /docs takes a bearer JWT; its `sub` owns what the "
    "caller creates. Live replies over the WebSocket API are described by /asyncapi.json. "
    'Errors are `{"error": {"code", "message"}}`, except a 401: that comes from the gateway\'s JWT '
    'authorizer, with its own body `{"message": "Unauthorized"}`.',
    "security": [{"bearer": []}],
}


UNAUTHORIZED = {"message": "Unauthorized"}
# What Swagger UI's Authorize dialog says of the token it asks for.
TOKEN_HELP = (
    "A JWT whose `sub` is the caller. On AWS: an ID or access token of the stack's Cognito user pool. "
    'On the local stack: any user\'s, from `POST /dev/token` with `{"sub": "alice"}` '
    '(`curl -s -X POST http://127.0.0.1:8000/dev/token -d \'{"sub": "alice"}\'`); paste its `token` '
    "value here, without `Bearer`."
)
# An inline icon, so that the docs page asks no /favicon.ico (a 404 on the API).
FAVICON = (
    '<link rel="icon" href="data:image/svg+xml,'
    "%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'%3E"
    "%3Crect width='16' height='16' rx='3' fill='%23225'/%3E"
    "%3Cpath d='M4 11V5h5M4 8h4' stroke='%23fff' stroke-width='2' fill='none'/%3E%3C/svg%3E\">"
)


def openapi_schema() -> str:
    """The OpenAPI document, built when asked for: Powertools' OpenAPI models (and the
    security scheme, one of them) cost more to import than the rest of the API."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    document = json.loads(
        app.get_openapi_json_schema(
            **OPENAPI_INFO,
            security_schemes={"bearer": HTTPBearer(bearerFormat="JWT", description=TOKEN_HELP)},
        )
    )
    # Public: no token (Powertools leaves out an empty `security`, which is what says so).
    document["paths"]["/health"]["get"]["security"] = []
    return json.dumps(document, separators=(",", ":"))


@app.exception_handler(AgentFilesError)
def _domain_error(error: AgentFilesError) -> Response:
    if isinstance(error, Unauthorized):
        # The JWT authorizer answers nearly every 401 before this function runs; the few
        # it lets through (a subject the keys cannot hold) get the same body.
        return json_response(401, UNAUTHORIZED)
    if error.status >= 500:
        logger.warning("request failed", extra={"code": error.code, "error_message": error.message})
    return json_response(error.status, error.to_body(), error.headers() or None)


@app.exception_handler(DataError)
def _data_error(error: DataError) -> Response:
    logger.warning("data error", extra={"error_type": type(error).__name__, "error_message": str(error)})
    return _domain_error(domain_error(error))


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
        body = {"error": {"code": "invalid_json", "message": f"the body is not JSON: {summary}"}}
        return json_response(400, body)
    return json_response(
        422, {"error": {"code": "validation_error", "message": summary, "details": {"problems": problems}}}
    )


@app.exception_handler(RecursionError)
def _too_deep(_: RecursionError) -> Response:
    # The JSON decoder recurses once per `[` or `{`: a body (or a cursor) nested past
    # Python's recursion limit is refused as the malformed input it is.
    return json_response(400, {"error": {"code": "invalid_json", "message": "the JSON is nested too deeply"}})


@app.not_found
def _not_found(_: Exception) -> Response:
    return json_response(404, {"error": {"code": "route_not_found", "message": "no such route"}})


class Health(BaseModel):
    status: Literal["ok"] = "ok"


@app.get(
    "/health",
    summary="Whether the API answers",
    description="Public, no token. The local stack adds where each of its pieces runs.",
    tags=["health"],
)
def health() -> Health:
    return Health()


@app.get("/asyncapi.json", include_in_schema=False)
def asyncapi() -> Response[str]:
    """The WebSocket protocol (live replies), as AsyncAPI 3.0."""
    from functions.api.asyncapi import asyncapi_document

    return Response(status_code=200, content_type="application/json", body=asyncapi_document())


@app.get("/openapi.json", include_in_schema=False)
def openapi() -> Response[str]:
    return Response(status_code=200, content_type="application/json", body=openapi_schema())


@app.get("/docs", include_in_schema=False)
def docs() -> Response[str]:
    """Swagger UI with its script and styles inlined (no CDN). Built on request, not
    at import: `enable_swagger` would add ~40 ms to every cold start for a page that
    people open rarely."""
    from pathlib import Path

    import aws_lambda_powertools.event_handler as event_handler
    from aws_lambda_powertools.event_handler.openapi.swagger_ui import generate_swagger_html

    spec = openapi_schema()
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
    html = html.replace("<head>", f"<head>\n    {FAVICON}", 1)
    return Response(status_code=200, content_type="text/html", body=html)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    readable = _json_bodies(event)
    if readable is None:
        return _unsupported_media_type(event)
    readable = _text_body(readable)
    if readable is None:
        return _error(400, "invalid_json", "the body is not UTF-8 text, so it cannot be JSON")
    return app.resolve(readable, context)


def _text_body(event: dict) -> dict | None:
    """A body API Gateway sent as base64 (any type it does not take for text: no type, a
    form type, a `+json` type) decoded here, once: None when it is not UTF-8."""
    body = event.get("body")
    if not event.get("isBase64Encoded") or not body:
        return event
    try:
        text = base64.b64decode(body, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return {**event, "body": text, "isBase64Encoded": False}


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
    return _error(415, "unsupported_media_type", f"send the body as application/json, not {declared}")


def _error(status: int, code: str, message: str) -> dict:
    """An error answered before the resolver runs, in the same envelope."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")),
        "isBase64Encoded": False,
    }


# Ahead of requests (SnapStart, provisioned concurrency), the OpenAPI document builds every
# route's validation.
initialization.prepare(openapi_schema)
