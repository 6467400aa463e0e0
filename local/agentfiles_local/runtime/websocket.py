"""The WebSocket API in front of the `websocket` function, as API Gateway runs it.

Real RFC 6455 (the `websockets` library, one thread per connection). Each connection's
opening handshake is checked by the `$connect` authorizer function (its `token` query
parameter; a missing one is refused before the authorizer runs, as API Gateway does),
then the `$connect` route; each text frame is routed by its JSON `action`
(`subscribe`, `unsubscribe`, else `$default`), and a close runs `$disconnect`. Every
event has API Gateway's shape (routeKey, eventType, connectionId, domainName, stage,
the authorizer's context on every later route), and a route's answer is sent back on
the connection, as a route response is.

Functions push frames through the @connections API, served here on its own port:
`POST /{stage}/@connections/{id}` sends one, `GET` describes the connection, `DELETE`
closes it; a connection that is not open answers 410 (`GoneException`), as on AWS.
They reach it with boto3's `apigatewaymanagementapi` client over HTTP (endpoint in
WEBSOCKET_CALLBACK_URL), never through this process's memory, so they may run anywhere.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

from agentfiles import topology
from agentfiles_local.events import (
    WebSocketRequest,
    authorizer_context,
    websocket_authorizer_event,
    websocket_connect_event,
    websocket_disconnect_event,
    websocket_message_event,
)
from agentfiles_local.runtime.host import FunctionHost

log = logging.getLogger(__name__)

STAGE = topology.WEBSOCKET_STAGE
# Routes selected by `$request.body.action`; anything else goes to `$default`.
ROUTES = ("subscribe", "unsubscribe")
# API Gateway's limit on one frame a client sends.
MAX_FRAME_BYTES = 128 * 1024


@dataclass
class _Connection:
    socket: ServerConnection
    request: WebSocketRequest
    authorizer: dict[str, Any]
    last_active_ms: int = field(default_factory=lambda: int(time.time() * 1000))


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WebSocketGateway:
    """The WebSocket API and its @connections endpoint, each on a loopback port, bound at
    construction (so both URLs are known before the functions start)."""

    def __init__(
        self,
        functions: FunctionHost,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        callback_port: int = 0,
        function: str = "websocket",
        authorizer: str = "websocket_authorizer",
    ) -> None:
        self.functions = functions
        self.function = function
        self.authorizer = authorizer
        self.connections: dict[str, _Connection] = {}
        self._pending: dict[int, tuple[WebSocketRequest, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._server: Server = serve(
            self._session,
            host,
            port,
            process_request=self._handshake,
            max_size=MAX_FRAME_BYTES,
            compression=None,
        )
        self._callbacks = _CallbackServer((host, callback_port), _CallbackHandler)
        self._callbacks.gateway = self
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.socket.getsockname()[:2]
        return f"ws://{host}:{port}"

    @property
    def callback_url(self) -> str:
        host, port = self._callbacks.server_address[:2]
        return f"http://{host}:{port}/{STAGE}"

    def start(self) -> WebSocketGateway:
        serving = (("websocket", self._server.serve_forever), ("connections", self._serve_callbacks))
        for name, target in serving:
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def _serve_callbacks(self) -> None:
        self._callbacks.serve_forever(poll_interval=0.1)

    def stop(self) -> None:
        if self._threads:
            self._server.shutdown()
            self._callbacks.shutdown()
        for connection in list(self.connections.values()):
            connection.socket.close(1001, "going away")
        for thread in self._threads:
            thread.join(5)
        self._server.socket.close()
        self._callbacks.server_close()

    # ---- the opening handshake: authorizer, then $connect

    def _handshake(self, socket: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return socket.respond(426, "Upgrade Required\n")
        query = dict(parse_qsl(urlsplit(request.path).query))
        headers = {name: value for name, value in request.headers.raw_items()}
        client = socket.remote_address[0] if socket.remote_address else "127.0.0.1"
        about = WebSocketRequest(
            connection_id=base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            domain_name=headers.get("Host", "127.0.0.1"),
            stage=STAGE,
            connected_at_ms=int(time.time() * 1000),
            source_ip=client,
            user_agent=headers.get("User-Agent", ""),
        )
        if not query.get("token"):
            # The identity source is missing: API Gateway refuses without calling the authorizer.
            return socket.respond(401, "Unauthorized\n")
        started = time.monotonic()
        try:
            event = websocket_authorizer_event(about, headers, query)
            decision = self.functions.invoke(self.authorizer, event)
        except Exception as error:
            if str(error) == "Unauthorized":
                return socket.respond(401, "Unauthorized\n")
            log.exception("the WebSocket authorizer failed")
            return socket.respond(500, "Internal Server Error\n")
        if not _allows(decision):
            return socket.respond(403, "Forbidden\n")
        context = authorizer_context(decision, int((time.monotonic() - started) * 1000))
        try:
            result = self.functions.invoke(
                self.function, websocket_connect_event(about, headers, query, context)
            )
        except Exception:
            log.exception("%s failed on $connect", self.function)
            return socket.respond(500, "Internal Server Error\n")
        status = int(result.get("statusCode", 200)) if isinstance(result, dict) else 200
        if status >= 300:
            return socket.respond(status, "Forbidden\n" if status == 403 else "Refused\n")
        with self._lock:
            self._pending[id(socket)] = (about, context)
        return None

    # ---- an open connection: frames in, $disconnect at the end

    def _session(self, socket: ServerConnection) -> None:
        with self._lock:
            about, context = self._pending.pop(id(socket))
        connection = _Connection(socket, about, context)
        with self._lock:
            self.connections[about.connection_id] = connection
        log.info("websocket %s connected", about.connection_id)
        try:
            for frame in socket:
                connection.last_active_ms = int(time.time() * 1000)
                self._route(connection, frame if isinstance(frame, str) else frame.decode("utf-8", "replace"))
        except ConnectionClosed:
            pass
        finally:
            with self._lock:
                self.connections.pop(about.connection_id, None)
            code = socket.close_code or 1006
            reason = socket.close_reason or ""
            event = websocket_disconnect_event(about, code, reason, context)
            try:
                self.functions.invoke(self.function, event)
            except Exception:
                log.exception("%s failed on $disconnect", self.function)
            log.info("websocket %s disconnected (%s)", about.connection_id, code)

    def _route(self, connection: _Connection, body: str) -> None:
        try:
            action = json.loads(body).get("action")
        except (ValueError, AttributeError, RecursionError):
            # API Gateway selects `$default` for a body it cannot read as JSON (one nested
            # past what a parser takes, too), and the connection stays open.
            action = None
        route = action if action in ROUTES else "$default"
        event = websocket_message_event(connection.request, route, body, connection.authorizer)
        try:
            result = self.functions.invoke(self.function, event)
        except Exception:
            log.exception("%s failed on %s", self.function, route)
            error = {
                "message": "Internal server error",
                "connectionId": connection.request.connection_id,
                "requestId": event["requestContext"]["requestId"],
            }
            connection.socket.send(json.dumps(error))
            return
        if isinstance(result, dict) and result.get("body"):
            connection.socket.send(str(result["body"]))

    # ---- @connections

    def post(self, connection_id: str, data: bytes) -> bool:
        connection = self.connections.get(connection_id)
        if connection is None:
            return False
        try:
            connection.socket.send(data.decode("utf-8", "replace"))
        except ConnectionClosed:
            return False
        return True

    def describe(self, connection_id: str) -> dict[str, Any] | None:
        connection = self.connections.get(connection_id)
        if connection is None:
            return None
        about = connection.request
        return {
            "connectedAt": _iso(about.connected_at_ms),
            "identity": {"sourceIp": about.source_ip, "userAgent": about.user_agent},
            "lastActiveAt": _iso(connection.last_active_ms),
        }

    def disconnect(self, connection_id: str) -> bool:
        connection = self.connections.get(connection_id)
        if connection is None:
            return False
        connection.socket.close(1000, "closed by the server")
        return True


def _allows(decision: Any) -> bool:
    """Whether an authorizer's IAM policy allows invoking the API."""
    if not isinstance(decision, dict):
        return False
    statements = (decision.get("policyDocument") or {}).get("Statement") or []
    effects = {str(s.get("Effect")) for s in statements if isinstance(s, dict)}
    return "Allow" in effects and "Deny" not in effects


class _CallbackServer(ThreadingHTTPServer):
    daemon_threads = True
    gateway: WebSocketGateway

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A caller that gave up mid-answer is routine: no traceback on the console."""
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return
        log.exception("@connections failed on a request from %s", client_address[0])


class _CallbackHandler(BaseHTTPRequestHandler):
    """`/{stage}/@connections/{connectionId}`: POST, GET, DELETE, as API Gateway serves it."""

    server: _CallbackServer
    protocol_version = "HTTP/1.1"
    # Headers and body are two writes; see the gateway's handler.
    disable_nagle_algorithm = True

    def _connection_id(self) -> str | None:
        prefix = f"/{STAGE}/@connections/"
        path = urlsplit(self.path).path
        if not path.startswith(prefix) or len(path) == len(prefix):
            return None
        # Connection ids are base64 ('+', '/', '='): the SDK sends them percent-encoded.
        return unquote(path.removeprefix(prefix))

    def _reply(self, status: int, body: Any = None, error_type: str | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        if data:
            self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _gone(self) -> None:
        self._reply(410, {"message": None}, "GoneException")

    def do_POST(self) -> None:
        connection_id = self._connection_id()
        data = self.rfile.read(int(self.headers.get("content-length") or 0))
        if connection_id is None:
            self._reply(404, {"message": "Not Found"})
        elif len(data) > MAX_FRAME_BYTES:
            self._reply(413, {"message": "Payload too large"}, "PayloadTooLargeException")
        elif self.server.gateway.post(connection_id, data):
            self._reply(200)
        else:
            self._gone()

    def do_GET(self) -> None:
        connection_id = self._connection_id()
        described = self.server.gateway.describe(connection_id) if connection_id else None
        if described is None:
            self._gone()
        else:
            self._reply(200, described)

    def do_DELETE(self) -> None:
        connection_id = self._connection_id()
        if connection_id and self.server.gateway.disconnect(connection_id):
            self._reply(204)
        else:
            self._gone()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug(format, *args)
