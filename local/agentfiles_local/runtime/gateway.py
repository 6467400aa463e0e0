"""The HTTP API in front of the `api` function, as API Gateway runs it.

Each request is matched against the deployed routes (`infra.constants.API_ROUTES`),
checked by the JWT authorizer unless the route is public, turned into a payload
format 2.0 event (route key, path parameters, cookies, raw query string, the verified
claims under `requestContext.authorizer.jwt.claims`) and the function's answer is
written back as API Gateway writes it. What API Gateway answers itself is answered
here with its own bodies: `{"message":"Unauthorized"}` (with `www-authenticate`),
`{"message":"Not Found"}` for a route that does not exist, `{"message":"Internal
Server Error"}` when the function fails, CORS preflights.

Any method no route has (TRACE, PATCH where there is none, anything) is a route that
does not exist: 404 `{"message":"Not Found"}`, as API Gateway answers it.

Local only, and never behind the authorizer: `GET /health` (what runs where; to a page
on another origin only where the API, its docs and its WebSocket are),
`POST /dev/token` (a signed token for any subject), `POST /dev/invoke/<function>` (run a
function on a posted event), `GET /.well-known/jwks.json`, `GET /favicon.ico`,
and the web page, if there is one: `GET /` serves `clients/web/index.html`
and `GET /static/<name>` the other files of that folder; `GET /static/client/<name>`
serves the TypeScript client's compiled ES module (`clients/typescript/dist/`), which
the page imports.

`/dev/*` mints tokens and runs functions (and may spend a real model's money), so no
other web page may use it: it sends no CORS headers, and refuses (403) a request whose
`Origin` is not the stack's own, whose `Sec-Fetch-Site` says another site or origin,
or whose `Host` is not a loopback name of the stack (a DNS name rebound to it).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import mimetypes
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from agentfiles_local.events import http_api_event
from agentfiles_local.runtime import REPO_ROOT
from agentfiles_local.runtime.host import FunctionHost
from agentfiles_local.runtime.tokens import SUBJECT_PATTERN, InvalidToken, TokenAuthority
from infra.constants import API_ALLOWED_HEADERS, API_ROUTES, ApiRoute

log = logging.getLogger(__name__)

# API Gateway's HTTP API refuses bodies over 10 MB.
MAX_BODY_BYTES = 10 * 1024 * 1024
# A chunk-size or trailer line longer than this is no HTTP/1.1 a client would send.
MAX_LINE_BYTES = 4096
# Connections the kernel completes and holds while the gateway is busy accepting (the
# kernel caps it at net.core.somaxconn); socketserver's default of 5 refuses a burst.
ACCEPT_BACKLOG = 1024
DEV_PREFIX = "/dev/"
# The stack's icon, so that no page of it logs a 404 for /favicon.ico.
FAVICON_SVG = (
    b"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 16 16'>"
    b"<rect width='16' height='16' rx='3' fill='#225'/>"
    b"<path d='M4 11V5h5M4 8h4' stroke='#fff' stroke-width='2' fill='none'/></svg>"
)
# What `/health` tells a page on another origin (a client's own dev server, say).
PUBLIC_HEALTH = ("api", "docs", "websocketUrl")
# What Sec-Fetch-Site says of a request the stack's own page (or a typed URL) made.
SAME_ORIGIN_FETCHES = ("same-origin", "none")
# The web page is a client of the API like any other: a plain folder of the repository.
WEB_DIR = REPO_ROOT / "clients" / "web"
CLIENT_DIR = REPO_ROOT / "clients" / "typescript" / "dist"
CLIENT_PREFIX = "/static/client/"
CORS_HEADERS = [("access-control-allow-origin", "*")]
PREFLIGHT_HEADERS = [
    ("access-control-allow-methods", "GET,POST,DELETE,OPTIONS"),
    ("access-control-allow-headers", ",".join(API_ALLOWED_HEADERS)),
    ("access-control-max-age", "3600"),
]


@dataclass
class HttpRequest:
    method: str
    target: str
    """The request target as sent: path and raw query string."""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    client_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        values = [value for key, value in self.headers if key.lower() == name]
        return ",".join(values) if values else None


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)


def json_response(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, [("content-type", "application/json"), *headers], json.dumps(body).encode())


# ---- routes ------------------------------------------------------------------


@dataclass(frozen=True)
class RouteMatch:
    route_key: str
    path_parameters: dict[str, str]
    public: bool


class Routes:
    """API Gateway's route selection: exact paths win over paths with parameters;
    `{name}` matches one path segment and `{name+}` the rest of the path."""

    def __init__(self, routes: Iterable[ApiRoute] = API_ROUTES) -> None:
        self._routes = sorted(
            ((route, self._pattern(route.path)) for route in routes), key=lambda pair: "{" in pair[0].path
        )

    @staticmethod
    def _pattern(template: str) -> re.Pattern[str]:
        parts = re.split(r"(\{[^}]+\})", template)
        regex = ""
        for part in parts:
            if part.startswith("{") and part.endswith("+}"):
                regex += f"(?P<{part[1:-2]}>.+)"
            elif part.startswith("{"):
                regex += f"(?P<{part[1:-1]}>[^/]+)"
            else:
                regex += re.escape(part)
        return re.compile(regex)

    def match(self, method: str, path: str) -> RouteMatch | None:
        for route, pattern in self._routes:
            found = pattern.fullmatch(path)
            if found and route.method == method:
                return RouteMatch(route.key, found.groupdict(), route.public)
        return None


# ---- payload format 2.0 ------------------------------------------------------


def to_event(
    request: HttpRequest, match: RouteMatch, claims: dict[str, Any] | None, port: int
) -> dict[str, Any]:
    """The event API Gateway sends for this request: header names lower-cased and
    repeated headers joined with commas, cookies in their own list, repeated query
    parameters joined with commas next to the raw query string."""
    path, _, raw_query = request.target.partition("?")
    headers: dict[str, str] = {}
    for key, value in request.headers:
        name = key.lower()
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    cookie_header = headers.pop("cookie", None)
    headers.update(
        {"x-forwarded-for": request.client_ip, "x-forwarded-proto": "http", "x-forwarded-port": str(port)}
    )
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    event = http_api_event(
        request.method,
        path,
        headers=headers,
        query=query,
        body=request.body or None,
        claims=claims,
        source_ip=request.client_ip,
        route_key=match.route_key,
    )
    event["rawQueryString"] = raw_query
    if cookie_header:
        event["cookies"] = [cookie.strip() for cookie in cookie_header.split(";") if cookie.strip()]
    if match.path_parameters:
        event["pathParameters"] = dict(match.path_parameters)
    return event


def from_lambda(result: Any) -> HttpResponse:
    """The HTTP response API Gateway makes of a function's answer (payload format 2.0):
    a dict with `statusCode` is taken field by field; any other JSON value is a 200
    whose body is that JSON."""
    try:
        if not isinstance(result, dict) or "statusCode" not in result:
            return json_response(200, result)
        status = int(result["statusCode"])
        headers = [(str(key).lower(), str(value)) for key, value in (result.get("headers") or {}).items()]
        headers += [("set-cookie", str(cookie)) for cookie in result.get("cookies") or []]
        body = result.get("body") or ""
        raw = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
    except (TypeError, ValueError, binascii.Error):
        log.exception("the function's response is malformed")
        return json_response(500, {"message": "Internal Server Error"})
    if not any(key == "content-type" for key, _ in headers):
        headers.append(("content-type", "application/json"))
    return HttpResponse(status, headers, raw)


# ---- the gateway ---------------------------------------------------------------


class Gateway:
    """The HTTP API on a loopback port, bound at construction (so `url` is known, and
    with it the token issuer) and served by `start()` on a thread per request."""

    def __init__(
        self,
        functions: FunctionHost,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        health: Callable[[], dict[str, Any]] = lambda: {},
        web_dir: Path = WEB_DIR,
        client_dir: Path = CLIENT_DIR,
        function: str = "api",
    ) -> None:
        self.functions = functions
        self.function = function
        self.routes = Routes()
        self.health = health
        self.web_dir = web_dir
        self.client_dir = client_dir
        self._server = _Server((host, port), _RequestHandler)
        self._server.gateway = self
        self._thread: threading.Thread | None = None
        self.tokens = TokenAuthority(self.url)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._server.server_address[0]}:{self.port}"

    def start(self) -> Gateway:
        self._thread = threading.Thread(target=self._server.serve_forever, name="gateway", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()

    def handle(self, request: HttpRequest) -> HttpResponse:
        """Everything between the socket and the function, without the socket."""
        path = urlsplit(request.target).path
        if path.startswith(DEV_PREFIX):
            refusal = self._cross_site(request)
            if refusal:
                return _error(403, "cross_site_request", refusal)
            return self._local(request, path) or json_response(404, {"message": "Not Found"})
        if request.method == "OPTIONS" and request.header("access-control-request-method"):
            response = HttpResponse(204, list(PREFLIGHT_HEADERS))
        else:
            response = self._local(request, path) or self._to_function(request, path)
        # API Gateway's CORS configuration overrides whatever the function said.
        response.headers = [h for h in response.headers if h[0].lower() != "access-control-allow-origin"]
        response.headers += CORS_HEADERS
        return response

    def _to_function(self, request: HttpRequest, path: str) -> HttpResponse:
        match = self.routes.match(request.method, path)
        if match is None:
            return json_response(404, {"message": "Not Found"})
        claims = None
        if not match.public:
            try:
                claims = self.tokens.verify(request.header("authorization"))
            except InvalidToken as problem:
                challenge = f'Bearer scope="" error="invalid_token" error_description="{problem}"'
                return json_response(401, {"message": "Unauthorized"}, [("www-authenticate", challenge)])
        if request.body and _declared_text(request) and not _is_utf8(request.body):
            # The event would carry the text with replacement characters in place of the
            # bytes the client sent: refuse it instead, as JSON that cannot be read.
            return _error(400, "invalid_json", "the body is declared as text but is not UTF-8")
        event = to_event(request, match, claims, self.port)
        try:
            result = self.functions.invoke(self.function, event)
        except Exception:
            log.exception("%s failed on %s", self.function, match.route_key)
            response = json_response(500, {"message": "Internal Server Error"})
        else:
            response = from_lambda(result)
        response.headers.append(("apigw-requestid", event["requestContext"]["requestId"]))
        return response

    # ---- local-only routes

    def _cross_site(self, request: HttpRequest) -> str | None:
        """Why a request to `/dev/*` must be refused, or None when it comes from the
        stack's own page or from a tool that is no browser."""
        own = {f"127.0.0.1:{self.port}", f"localhost:{self.port}"}
        host = request.header("host")
        if host is not None and host.lower() not in own:
            return f"Host {host!r} is not this stack"
        origin = request.header("origin")
        if origin is not None and origin.lower() not in {f"http://{name}" for name in own}:
            return f"requests from {origin!r} may not use {DEV_PREFIX}*"
        fetch_site = request.header("sec-fetch-site")
        if fetch_site is not None and fetch_site.lower() not in SAME_ORIGIN_FETCHES:
            return f"{fetch_site} requests may not use {DEV_PREFIX}*"
        return None

    def _local(self, request: HttpRequest, path: str) -> HttpResponse | None:
        method = request.method
        if method == "GET" and path == "/health":
            return self._health(request)
        if method == "GET" and path == "/.well-known/jwks.json":
            return json_response(200, self.tokens.jwks())
        if method == "POST" and path == "/dev/token":
            return self._issue_token(request.body)
        if method == "POST" and path.startswith("/dev/invoke/"):
            return self._invoke(path.removeprefix("/dev/invoke/"), request.body)
        if method == "GET" and path == "/":
            if (self.web_dir / "index.html").is_file():
                return self._static("index.html")
            return HttpResponse(302, [("location", "/docs")])
        if method == "GET" and path == "/favicon.ico":
            # What a browser asks of any page here (the web page, a file opened from the API).
            return HttpResponse(
                200, [("content-type", "image/svg+xml"), ("cache-control", "max-age=86400")], FAVICON_SVG
            )
        if method == "GET" and path.startswith(CLIENT_PREFIX):
            return self._static(path.removeprefix(CLIENT_PREFIX), self.client_dir)
        if method == "GET" and path.startswith("/static/"):
            return self._static(path.removeprefix("/static/"))
        return None

    def _health(self, request: HttpRequest) -> HttpResponse:
        """Everything about the stack for its own page and for tools on this machine; for
        a page on another origin (a client's dev server), only what a deployed API's
        client needs to find: where the API, its docs and its WebSocket are. Never, for
        such a page, where moto, the queues or the model are."""
        details = self.health()
        if self._cross_site(request) is None:
            return json_response(200, {"status": "ok", **details})
        public = {name: details[name] for name in PUBLIC_HEALTH if name in details}
        return json_response(200, {"status": "ok", **public})

    def _issue_token(self, body: bytes) -> HttpResponse:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            return _invalid('the body must be a JSON object such as {"sub": "alice"}')
        sub = payload.get("sub")
        if not isinstance(sub, str) or not SUBJECT_PATTERN.fullmatch(sub):
            return _invalid("sub must be 1 to 128 characters of A-Z a-z 0-9 _ . @ -")
        issued = self.tokens.issue(sub)
        return json_response(200, {"token": issued.token, "expiresAt": issued.expires_at})

    def _invoke(self, name: str, body: bytes) -> HttpResponse:
        """Run one function on a posted event, as `aws lambda invoke` would:
        `agentfiles invoke` and `agentfiles vacuum` use it. Local only."""
        if not self.functions.has(name):
            return json_response(
                404, {"error": {"code": "function_not_found", "message": f"no function {name!r}"}}
            )
        try:
            event = json.loads(body or b"{}")
        except ValueError:
            return _invalid("the body must be the event, as JSON")
        try:
            result = self.functions.invoke(name, event)
        except Exception as error:
            log.exception("%s failed on an invoked event", name)
            # Lambda reports a function error with the error's type and message.
            return json_response(
                200,
                {"errorType": getattr(error, "error_type", type(error).__name__), "errorMessage": str(error)},
                [("x-amz-function-error", "Unhandled")],
            )
        return json_response(200, result)

    def _static(self, name: str, folder: Path | None = None) -> HttpResponse:
        root = (folder or self.web_dir).resolve()
        file = (root / name).resolve()
        if not name or not file.is_relative_to(root) or not file.is_file():
            return json_response(404, {"message": "Not Found"})
        media_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if media_type.startswith("text/") or media_type in ("application/javascript", "application/json"):
            media_type += "; charset=utf-8"
        return HttpResponse(
            200, [("content-type", media_type), ("cache-control", "no-cache")], file.read_bytes()
        )


def _declared_text(request: HttpRequest) -> bool:
    """Whether the event carries this body as text (not base64), as `to_event` decides."""
    return (request.header("content-type") or "").strip().lower().startswith(("application/json", "text/"))


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _chunk_size(line: bytes) -> int:
    """The size on a chunk's first line (hexadecimal, extensions after `;`)."""
    digits = line.split(b";")[0].strip()
    if not digits or len(digits) > 8 or any(c not in b"0123456789abcdefABCDEF" for c in digits):
        raise _BadRequest(f"chunk size {line[:20]!r} is no size")
    return int(digits, 16)


def _invalid(message: str) -> HttpResponse:
    """The API's own error body, so a client handles `/dev/token` like any route."""
    return _error(422, "validation_error", message)


def _error(status: int, code: str, message: str) -> HttpResponse:
    return json_response(status, {"error": {"code": code, "message": message}})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = ACCEPT_BACKLOG
    gateway: Gateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up is routine: one quiet line, no traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, CLIENT_GONE):
            log.debug("a client at %s hung up (%s)", client_address[0], type(error).__name__)
            return
        log.exception("the gateway failed on a request from %s", client_address[0])


class _BodyTooLarge(Exception):
    pass


class _BadRequest(Exception):
    """A request API Gateway's front door refuses before any route: a Content-Length
    that is no length, a chunk size that is no size."""


# A client that hangs up before it has read its answer (`curl -m 1` during a cold start).
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)


class _RequestHandler(BaseHTTPRequestHandler):
    """Sockets to `Gateway.handle` and back, over HTTP/1.1 keep-alive."""

    server: _Server
    protocol_version = "HTTP/1.1"
    server_version = "agentfiles-local"
    # A response goes out as two writes (headers, then body). With Nagle's algorithm the
    # body waits for the client to acknowledge the headers, and a client on a keep-alive
    # connection delays that acknowledgement: tens of milliseconds on some requests.
    disable_nagle_algorithm = True
    # An idle keep-alive connection is dropped after this long.
    timeout = 120

    def _handle(self) -> None:
        started = time.perf_counter()
        try:
            body = self._read_body()
        except _BodyTooLarge:
            self.close_connection = True
            response = json_response(413, {"message": "Request Entity Too Large"}, CORS_HEADERS)
        except _BadRequest:
            # The rest of the stream cannot be framed: answer, then close.
            self.close_connection = True
            response = json_response(400, {"message": "Bad Request"}, CORS_HEADERS)
        else:
            request = HttpRequest(
                self.command, self.path, list(self.headers.items()), body, self.client_address[0]
            )
            response = self.server.gateway.handle(request)
        try:
            self._write(response)
        finally:
            log.info(
                "%s %s %d %.0f ms",
                self.command,
                self.path.partition("?")[0],
                response.status,
                (time.perf_counter() - started) * 1000,
            )

    def __getattr__(self, name: str) -> Any:
        # BaseHTTPRequestHandler answers 501 to a method without a `do_<METHOD>`; every
        # method goes to the gateway, which answers 404 where no route has it.
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            chunks = []
            total = 0
            while size := _chunk_size(self.rfile.readline(MAX_LINE_BYTES + 1)):
                total += size
                if total > MAX_BODY_BYTES:
                    raise _BodyTooLarge
                chunk = self.rfile.read(size)
                if len(chunk) < size or self.rfile.readline(3).strip():
                    raise _BadRequest("a chunk is shorter than its size")
                chunks.append(chunk)
            while self.rfile.readline(MAX_LINE_BYTES + 1).strip():  # trailers
                pass
            return b"".join(chunks)
        declared = self.headers.get_all("content-length") or []
        values = {value.strip() for value in declared}
        if len(values) > 1 or any(not value.isascii() or not value.isdigit() for value in values):
            raise _BadRequest(f"Content-Length {declared!r} is no length")
        length = int(values.pop()) if values else 0
        if length > MAX_BODY_BYTES:
            raise _BodyTooLarge
        return self.rfile.read(length) if length else b""

    def _write(self, response: HttpResponse) -> None:
        self.send_response(response.status)
        for key, value in response.headers:
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, value)
        self.send_header("content-length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)
