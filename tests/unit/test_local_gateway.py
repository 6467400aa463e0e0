"""The local HTTP API turns requests into payload format 2.0 events, authorizes them
as the JWT authorizer does, and writes the function's answer back as API Gateway does."""

from __future__ import annotations

import base64
import json
import select
import socket
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from agentfiles_local.runtime.gateway import Gateway, HttpRequest, Routes, from_lambda
from agentfiles_local.runtime.host import FunctionHost
from agentfiles_local.runtime.tokens import TokenAuthority

FILE_ID = "01J9Z8Y7X6W5V4T3S2R1Q0P9N8"


class FakeApi:
    """Stands in for functions/api: records each event and answers what it is told."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], Any] = lambda event: {"statusCode": 200, "body": "{}"}

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        return self.answer(event)


@pytest.fixture(scope="module")
def web_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web")
    (root / "index.html").write_text("<!doctype html><title>agentfiles</title>")
    (root / "app.js").write_text("console.log('hi')")
    return root


@pytest.fixture(scope="module")
def served(web_dir: Path) -> Iterator[tuple[Gateway, FakeApi]]:
    api = FakeApi()
    host = FunctionHost()
    host.add("api", api)
    gateway = Gateway(host, port=0, health=lambda: {"pollers": {"uploads": True}}, web_dir=web_dir).start()
    yield gateway, api
    gateway.stop()


@pytest.fixture
def gateway(served: tuple[Gateway, FakeApi]) -> Gateway:
    return served[0]


@pytest.fixture
def api(served: tuple[Gateway, FakeApi]) -> FakeApi:
    _, fake = served
    fake.events.clear()
    fake.answer = lambda event: {"statusCode": 200, "body": "{}"}
    return fake


def bearer(gateway: Gateway, sub: str = "alice") -> tuple[str, str]:
    return ("Authorization", f"Bearer {gateway.tokens.issue(sub).token}")


def body_of(response: Any) -> Any:
    return json.loads(response.body)


# ---- requests become events ----------------------------------------------------


def test_given_an_authorized_request_when_it_reaches_the_function_then_the_event_is_payload_format_2(
    gateway, api
):
    # Given: repeated query parameters and headers, cookies, a JSON body
    request = HttpRequest(
        "DELETE",
        f"/files/{FILE_ID}?limit=5&tag=a&tag=b&empty=",
        [
            bearer(gateway, "alice"),
            ("Content-Type", "application/json"),
            ("X-Trace", "one"),
            ("X-Trace", "two"),
            ("Cookie", "theme=dark; session=abc"),
            ("User-Agent", "pytest"),
        ],
        b'{"why": "tidy"}',
    )
    # When
    response = gateway.handle(request)
    # Then
    assert response.status == 200
    (event,) = api.events
    assert event["version"] == "2.0"
    assert event["routeKey"] == "DELETE /files/{fileId}"
    assert event["pathParameters"] == {"fileId": FILE_ID}
    assert event["rawPath"] == f"/files/{FILE_ID}"
    assert event["rawQueryString"] == "limit=5&tag=a&tag=b&empty="
    assert event["queryStringParameters"] == {"limit": "5", "tag": "a,b", "empty": ""}
    assert event["headers"]["x-trace"] == "one,two"
    assert event["headers"]["content-type"] == "application/json"
    assert "cookie" not in event["headers"]
    assert event["cookies"] == ["theme=dark", "session=abc"]
    assert event["body"] == '{"why": "tidy"}'
    assert event["isBase64Encoded"] is False
    context = event["requestContext"]
    assert context["http"]["method"] == "DELETE"
    assert context["http"]["userAgent"] == "pytest"
    assert context["routeKey"] == "DELETE /files/{fileId}"
    claims = context["authorizer"]["jwt"]["claims"]
    assert claims["sub"] == "alice"
    assert claims["iss"] == gateway.url
    assert response.header("apigw-requestid") == context["requestId"]


def test_given_a_binary_body_when_it_reaches_the_function_then_it_is_base64_encoded(gateway, api):
    raw = bytes(range(256))
    gateway.handle(
        HttpRequest("POST", "/files", [bearer(gateway), ("Content-Type", "application/octet-stream")], raw)
    )
    (event,) = api.events
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == raw


def test_given_a_request_without_a_body_when_it_reaches_the_function_then_the_event_has_no_body(gateway, api):
    gateway.handle(HttpRequest("GET", "/files", [bearer(gateway)]))
    (event,) = api.events
    assert "body" not in event
    assert event["rawQueryString"] == ""


def test_given_the_deployed_routes_when_a_path_matches_both_kinds_then_the_exact_route_wins():
    routes = Routes()
    assert routes.match("POST", "/files/uploads").route_key == "POST /files/uploads"
    assert routes.match("GET", "/files/uploads").route_key == "GET /files/{fileId}"
    assert routes.match("GET", f"/threads/{FILE_ID}/messages/{FILE_ID}").path_parameters == {
        "threadId": FILE_ID,
        "messageId": FILE_ID,
    }
    assert routes.match("GET", "/files/a/b") is None
    assert routes.match("PUT", "/files") is None


# ---- the authorizer ------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer nonsense",
        f"Bearer {TokenAuthority('http://127.0.0.1:1').issue('alice').token}",
    ],
    ids=["missing", "malformed", "other-issuer-and-key"],
)
def test_given_no_valid_token_when_a_private_route_is_called_then_401_comes_from_the_gateway(
    gateway, api, authorization
):
    headers = [("Authorization", authorization)] if authorization else []
    # When
    response = gateway.handle(HttpRequest("GET", "/files", headers))
    # Then: API Gateway's own answer, and the function never ran
    assert response.status == 401
    assert response.body == b'{"message": "Unauthorized"}'
    assert response.header("www-authenticate").startswith('Bearer scope="" error="invalid_token"')
    assert api.events == []


def test_given_an_expired_token_when_a_private_route_is_called_then_it_is_401(gateway, api):
    # Given: a token from the gateway's own key whose lifetime is over
    gateway.tokens.ttl_seconds = -60
    try:
        token = gateway.tokens.issue("alice").token
    finally:
        gateway.tokens.ttl_seconds = 3600
    response = gateway.handle(HttpRequest("GET", "/files", [("Authorization", f"Bearer {token}")]))
    assert response.status == 401
    assert "expired" in response.header("www-authenticate")
    assert api.events == []


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
def test_given_a_public_route_when_called_without_a_token_then_the_function_gets_no_claims(
    gateway, api, path
):
    response = gateway.handle(HttpRequest("GET", path))
    assert response.status == 200
    (event,) = api.events
    assert "authorizer" not in event["requestContext"]


def test_given_an_unknown_route_when_called_then_api_gateway_answers_404_without_the_function(gateway, api):
    response = gateway.handle(HttpRequest("GET", "/nowhere", [bearer(gateway)]))
    assert response.status == 404
    assert body_of(response) == {"message": "Not Found"}
    assert api.events == []


# ---- answers become responses ----------------------------------------------------


def test_given_a_full_lambda_response_when_written_back_then_every_field_is_honoured():
    response = from_lambda(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "image/png", "X-Thing": "1"},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": base64.b64encode(b"\x89PNG").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert response.body == b"\x89PNG"
    assert ("content-type", "image/png") in response.headers
    assert ("x-thing", "1") in response.headers
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]


@pytest.mark.parametrize("result", [{"ok": True}, ["a", 1], "text"])
def test_given_a_response_without_status_code_when_written_back_then_it_is_a_200_json_body(result):
    response = from_lambda(result)
    assert response.status == 200
    assert response.header("content-type") == "application/json"
    assert json.loads(response.body) == result


def test_given_an_answer_that_is_not_json_when_written_back_then_it_is_a_500():
    response = from_lambda({"not": object()})
    assert response.status == 500
    assert json.loads(response.body) == {"message": "Internal Server Error"}


def test_given_a_function_that_sets_its_own_cors_origin_when_answered_then_the_gateway_one_wins(gateway, api):
    api.answer = lambda event: {"statusCode": 200, "headers": {"Access-Control-Allow-Origin": "https://x"}}
    response = gateway.handle(HttpRequest("GET", "/files", [bearer(gateway)]))
    assert [v for k, v in response.headers if k == "access-control-allow-origin"] == ["*"]


def test_given_a_function_that_raises_when_called_then_the_gateway_answers_500(gateway, api):
    def fail(event: dict[str, Any]) -> Any:
        raise RuntimeError("boom")

    api.answer = fail
    response = gateway.handle(HttpRequest("GET", "/files", [bearer(gateway)]))
    assert response.status == 500
    assert body_of(response) == {"message": "Internal Server Error"}


# ---- CORS and local routes -------------------------------------------------------


def test_given_a_browser_preflight_when_it_arrives_then_the_gateway_allows_the_api_headers(gateway, api):
    response = gateway.handle(
        HttpRequest(
            "OPTIONS",
            "/files/uploads",
            [("Origin", "http://localhost:5173"), ("Access-Control-Request-Method", "POST")],
        )
    )
    assert response.status == 204
    assert response.header("access-control-allow-origin") == "*"
    assert "authorization" in response.header("access-control-allow-headers")
    assert "POST" in response.header("access-control-allow-methods")
    assert api.events == []


def test_given_any_answer_when_written_back_then_it_carries_the_cors_origin(gateway, api):
    for request in (HttpRequest("GET", "/files"), HttpRequest("GET", "/files", [bearer(gateway)])):
        assert gateway.handle(request).header("access-control-allow-origin") == "*"


def test_given_a_subject_when_a_dev_token_is_asked_then_it_passes_the_authorizer(gateway, api):
    # When
    response = gateway.handle(HttpRequest("POST", "/dev/token", [], b'{"sub": "dana.smith@example.com"}'))
    # Then
    assert response.status == 200
    token = body_of(response)["token"]
    assert isinstance(body_of(response)["expiresAt"], int)
    gateway.handle(HttpRequest("GET", "/files", [("Authorization", f"Bearer {token}")]))
    (event,) = api.events
    assert event["requestContext"]["authorizer"]["jwt"]["claims"]["sub"] == "dana.smith@example.com"


@pytest.mark.parametrize(
    "body", [b"", b"not json", b"[]", b'{"sub": ""}', b'{"sub": "a/b"}', b'{"sub": 7}', b"\xff"]
)
def test_given_a_bad_dev_token_request_when_asked_then_it_is_a_422_in_the_api_error_shape(gateway, body):
    response = gateway.handle(HttpRequest("POST", "/dev/token", [], body))
    assert response.status == 422
    assert body_of(response)["error"]["code"] == "validation_error"


def test_given_the_running_stack_when_health_is_asked_then_it_answers_without_a_token(gateway, api):
    response = gateway.handle(HttpRequest("GET", "/health"))
    assert response.status == 200
    assert body_of(response) == {"status": "ok", "pollers": {"uploads": True}}
    assert api.events == []


def test_given_the_jwks_when_fetched_then_it_holds_the_signing_key(gateway):
    keys = body_of(gateway.handle(HttpRequest("GET", "/.well-known/jwks.json")))["keys"]
    assert [key["kid"] for key in keys] == [gateway.tokens.key_id]


def test_given_a_web_folder_when_its_page_and_files_are_asked_then_they_are_served(gateway):
    page = gateway.handle(HttpRequest("GET", "/"))
    script = gateway.handle(HttpRequest("GET", "/static/app.js"))
    assert page.status == 200
    assert page.header("content-type").startswith("text/html")
    assert b"agentfiles" in page.body
    assert script.status == 200
    assert script.body == b"console.log('hi')"


@pytest.mark.parametrize("path", ["/static/../gateway.py", "/static/", "/static/missing.css"])
def test_given_a_path_outside_the_web_folder_when_asked_then_it_is_404(gateway, path):
    assert gateway.handle(HttpRequest("GET", path)).status == 404


def test_given_no_web_folder_when_the_root_is_asked_then_it_redirects_to_the_docs(tmp_path):
    gateway = Gateway(FunctionHost(), port=0, web_dir=tmp_path / "absent")
    try:
        response = gateway.handle(HttpRequest("GET", "/"))
    finally:
        gateway.stop()
    assert response.status == 302
    assert response.header("location") == "/docs"


# ---- over a socket -----------------------------------------------------------------


def test_given_the_gateway_on_a_port_when_a_client_streams_a_body_then_it_arrives_whole(gateway, api):
    # Given: the function echoes the body it received, base64-encoded
    api.answer = lambda event: {
        "statusCode": 202,
        "headers": {"content-type": "application/octet-stream"},
        "body": event["body"],
        "isBase64Encoded": True,
    }
    chunks = [b"\x00" * 1000, b"\x01" * 2000, b"\x02" * 3]
    # When: the client sends it with chunked transfer encoding, twice on one connection
    with requests.Session() as session:
        for _ in range(2):
            response = session.post(
                f"{gateway.url}/files",
                data=iter(chunks),
                headers={**dict([bearer(gateway)]), "Content-Type": "application/octet-stream"},
            )
            # Then
            assert response.status_code == 202
            assert response.content == b"".join(chunks)
            assert response.headers["access-control-allow-origin"] == "*"
    assert len(api.events) == 2


@pytest.mark.parametrize(
    ("method", "path"), [("TRACE", "/files"), ("PATCH", "/threads/t1"), ("PURGE", "/health"), ("FOO", "/")]
)
def test_given_a_method_no_route_has_when_it_arrives_then_it_is_api_gateways_404(gateway, api, method, path):
    # When: a method the route does not have (or that nothing has) reaches the socket
    response = requests.request(method, f"{gateway.url}{path}", headers=dict([bearer(gateway)]), timeout=10)
    # Then: API Gateway's answer, not the HTTP server's 501 page
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"message": "Not Found"}
    assert api.events == []


# ---- the local-only routes and other web pages -------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        [("Origin", "https://evil.example")],
        [("Origin", "http://127.0.0.1:1")],
        [("Origin", "null")],
        [("Sec-Fetch-Site", "cross-site")],
        [("Sec-Fetch-Site", "same-site"), ("Origin", "http://localhost:5173")],
        [("Host", "rebound.example:8000")],
    ],
)
@pytest.mark.parametrize(
    ("path", "body"), [("/dev/token", b'{"sub": "mallory"}'), ("/dev/invoke/api", b"{}")]
)
def test_given_a_request_from_another_site_when_it_reaches_a_dev_route_then_it_is_refused(
    gateway, api, headers, path, body
):
    # When: a page on another origin (or a name rebound to this machine) posts to /dev
    response = gateway.handle(HttpRequest("POST", path, headers, body))
    # Then: 403 in the API's error shape, no CORS header, and nothing ran
    assert response.status == 403
    assert body_of(response)["error"]["code"] == "cross_site_request"
    assert response.header("access-control-allow-origin") is None
    assert api.events == []


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Sec-Fetch-Site", "same-origin")],
        [("Sec-Fetch-Site", "none")],
        [("Origin", "{url}"), ("Sec-Fetch-Site", "same-origin"), ("Host", "{host}")],
        [("Origin", "{localhost}"), ("Host", "{localhost_host}")],
    ],
)
def test_given_a_request_from_the_stacks_own_page_or_a_tool_when_it_asks_a_token_then_it_gets_one(
    gateway, headers
):
    # Given: the stack's own origin, under either loopback name, or no browser at all
    names = {
        "url": gateway.url,
        "host": gateway.url.removeprefix("http://"),
        "localhost": f"http://localhost:{gateway.port}",
        "localhost_host": f"localhost:{gateway.port}",
    }
    filled = [(key, value.format(**names)) for key, value in headers]
    # When
    response = gateway.handle(HttpRequest("POST", "/dev/token", filled, b'{"sub": "alice"}'))
    # Then: a token, and still no CORS header for other pages to read it with
    assert response.status == 200
    assert body_of(response)["token"]
    assert response.header("access-control-allow-origin") is None


def test_given_a_browser_preflight_for_a_dev_route_when_it_arrives_then_it_is_not_allowed(gateway):
    response = gateway.handle(
        HttpRequest(
            "OPTIONS",
            "/dev/token",
            [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "POST")],
        )
    )
    assert response.status == 403
    assert response.header("access-control-allow-origin") is None
    assert response.header("access-control-allow-methods") is None


# ---- bursts ----------------------------------------------------------------------


def test_given_a_burst_of_connections_before_the_server_accepts_when_it_starts_then_every_one_is_answered(
    web_dir,
):
    """Given a gateway that has bound its port but not started accepting, when 200
    clients connect at once, then the kernel completes every connection (none is left
    waiting for a retry after the accept queue filled), and once the gateway serves,
    each gets its answer."""
    gateway = Gateway(FunctionHost(), port=0, web_dir=web_dir)
    sockets: list[socket.socket] = []
    try:
        for _ in range(200):
            client = socket.socket()
            client.setblocking(False)
            client.connect_ex(("127.0.0.1", gateway.port))
            sockets.append(client)
        _, writable, _ = select.select([], sockets, [], 5)
        connected = [s for s in writable if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0]
        assert len(connected) == 200

        gateway.start()
        for client in sockets:
            client.setblocking(True)
            client.settimeout(30)
            client.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        answers = [b"".join(iter(lambda c=client: c.recv(65536), b"")) for client in sockets]
    finally:
        for client in sockets:
            client.close()
        gateway.stop()
    assert all(answer.startswith(b"HTTP/1.1 200 ") for answer in answers)


def test_given_a_keep_alive_client_when_the_gateway_answers_then_nagle_is_off_on_its_socket(
    gateway, api, monkeypatch
):
    """A response is two writes (headers, then body). With Nagle's algorithm on, the
    body waits until the client acknowledges the headers, and a client on a keep-alive
    connection delays that acknowledgement: 10 to 40 ms on some requests, which made
    one local stack measurably slower than another for the same work."""
    from agentfiles_local.runtime import gateway as module

    # Given: the no-delay option of each connection the gateway serves, as it serves it
    seen: list[int] = []
    setup = module._RequestHandler.setup

    def recorded(self: Any) -> None:
        setup(self)
        seen.append(self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(module._RequestHandler, "setup", recorded)

    # When: two requests on one connection
    with requests.Session() as session:
        for _ in range(2):
            assert session.get(f"{gateway.url}/health").status_code == 200

    # Then
    assert seen and all(seen)


# ---- what a careless (or hostile) client sends ---------------------------------------


def raw_exchange(gateway: Gateway, request: bytes) -> bytes:
    """Send bytes as they are and read until the gateway closes the connection."""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as client:
        client.sendall(request)
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    return received


@pytest.mark.parametrize(
    "framing",
    [
        b"Content-Length: -5\r\n",
        b"Content-Length: abc\r\n",
        b"Content-Length: 1e3\r\n",
        b"Content-Length: 3\r\nContent-Length: 4\r\n",
        b"Transfer-Encoding: chunked\r\n",  # followed by a chunk size that is no number
    ],
)
def test_given_a_body_length_that_is_no_length_when_it_arrives_then_the_gateway_answers_400_and_closes(
    gateway, api, framing, caplog
):
    # Given: a request whose body cannot be framed
    body = b"zz\r\nhello\r\n0\r\n\r\n" if b"chunked" in framing else b"{}"
    request = (
        b"POST /threads HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        + framing
        + b"\r\n"
        + body
    )
    # When: it reaches the socket
    with caplog.at_level("DEBUG", logger="agentfiles_local"):
        answer = raw_exchange(gateway, request)
    # Then: an HTTP answer (not a dropped connection), API Gateway's body, no traceback, no event
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    assert rest.endswith(b'{"message": "Bad Request"}')
    assert not any(record.exc_info for record in caplog.records)
    assert api.events == []


def test_given_invalid_utf8_declared_as_json_when_it_arrives_then_it_is_refused_not_replaced(gateway, api):
    # When: bytes that are not UTF-8 come as application/json
    response = requests.post(
        f"{gateway.url}/threads",
        data=b'{"title": "caf\xe9 \xff"}',
        headers={**dict([bearer(gateway)]), "Content-Type": "application/json"},
        timeout=10,
    )
    # Then: a 400 in the API's error shape, and the function never saw replacement characters
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_json"
    assert api.events == []


def test_given_a_client_that_hangs_up_before_its_answer_when_written_then_no_traceback_is_logged(
    gateway, api, caplog, capfd
):
    # Given: a function that takes a moment, and a client that leaves at once (RST on close)
    api.answer = lambda event: (time.sleep(0.3), {"statusCode": 200, "body": "x" * 1_000_000})[1]
    client = socket.create_connection(("127.0.0.1", gateway.port), timeout=5)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    auth = "{}: {}".format(*bearer(gateway)).encode()
    # When
    with caplog.at_level("DEBUG"):
        client.sendall(b"GET /threads HTTP/1.1\r\nHost: 127.0.0.1\r\n" + auth + b"\r\n\r\n")
        client.close()
        wait_until(lambda: api.events)
        time.sleep(0.6)
    # Then: the gateway noted it quietly and kept serving
    assert not any(record.exc_info for record in caplog.records)
    assert "Traceback" not in capfd.readouterr().err
    assert requests.get(f"{gateway.url}/health", timeout=5).status_code == 200


def wait_until(probe: Callable[[], Any], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


@pytest.mark.parametrize(
    "headers",
    [
        [("Origin", "https://evil.example")],
        [("Sec-Fetch-Site", "cross-site")],
        [("Host", "rebound.example:8000")],
    ],
)
def test_given_a_page_on_another_origin_when_it_asks_health_then_it_learns_nothing_of_moto(web_dir, headers):
    # Given: a stack whose health names its pieces
    details = {
        "api": "http://127.0.0.1:8000",
        "docs": "http://127.0.0.1:8000/docs",
        "websocketUrl": "ws://127.0.0.1:8001",
        "awsEndpoint": "http://127.0.0.1:5000",
        "queues": {"uploads": "http://127.0.0.1:5000/123/uploads"},
        "model": {"baseUrl": "http://127.0.0.1:5001/v1"},
    }
    gateway = Gateway(FunctionHost(), port=0, health=lambda: details, web_dir=web_dir)
    try:
        # When: another origin's page (or a rebound name) reads /health
        foreign = body_of(gateway.handle(HttpRequest("GET", "/health", headers)))
        # Then: only what a client of a deployed API would find anyway; no moto, queues or model
        assert foreign == {
            "status": "ok",
            "api": details["api"],
            "docs": details["docs"],
            "websocketUrl": details["websocketUrl"],
        }
        # And a tool on this machine, or the stack's own page, still sees everything
        for own in ([], [("Origin", gateway.url), ("Sec-Fetch-Site", "same-origin")]):
            assert body_of(gateway.handle(HttpRequest("GET", "/health", own)))["awsEndpoint"]
    finally:
        gateway.stop()


def test_given_a_browser_on_any_page_of_the_stack_when_it_asks_the_favicon_then_there_is_one(gateway, api):
    response = requests.get(f"{gateway.url}/favicon.ico", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/svg+xml"
    assert response.content.startswith(b"<svg")
    assert api.events == []
