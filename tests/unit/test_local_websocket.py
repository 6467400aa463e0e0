"""The local WebSocket API routes frames as API Gateway does, whatever a client sends."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
import requests
from websockets.sync.client import connect

from agentfiles_local.runtime.host import FunctionHost
from agentfiles_local.runtime.websocket import WebSocketGateway

ALLOW = {
    "principalId": "alice",
    "policyDocument": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*"}]},
    "context": {"sub": "alice"},
}


class FakeSocketFunction:
    """Stands in for functions/websocket: reads the frame as the real one does (json.loads)."""

    def __init__(self) -> None:
        self.routes: list[str] = []

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        route = event["requestContext"]["routeKey"]
        self.routes.append(route)
        if route in ("$connect", "$disconnect"):
            return {"statusCode": 200}
        json.loads(event["body"])
        return {"statusCode": 200, "body": '{"type": "ok"}'}


@pytest.fixture
def served() -> Iterator[tuple[WebSocketGateway, FakeSocketFunction]]:
    function = FakeSocketFunction()
    host = FunctionHost()
    host.add("websocket", function)
    host.add("websocket_authorizer", lambda event, context: ALLOW)
    gateway = WebSocketGateway(host).start()
    yield gateway, function
    gateway.stop()


def test_given_a_frame_nested_past_any_parser_when_sent_then_an_error_frame_comes_back_and_the_socket_stays(
    served,
):
    gateway, function = served
    with connect(f"{gateway.url}/?token=t", open_timeout=5) as socket:
        # When: a frame of 50,000 nested arrays (a RecursionError for json.loads)
        socket.send("[" * 50_000 + "]" * 50_000)
        # Then: an error frame, as API Gateway sends for a failed route, not a dropped connection
        error = json.loads(socket.recv(timeout=5))
        assert error["message"] == "Internal server error"
        # And the connection still works
        socket.send('{"action": "subscribe"}')
        assert json.loads(socket.recv(timeout=5)) == {"type": "ok"}
    assert function.routes[1:3] == ["$default", "subscribe"]


@pytest.mark.parametrize("headers", [{"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}])
def test_given_a_web_page_when_it_posts_to_a_connection_then_connections_refuses_it_and_nothing_is_pushed(
    served, headers
):
    gateway, _ = served
    with connect(f"{gateway.url}/?token=t", open_timeout=5) as socket:
        deadline = time.monotonic() + 5
        while not gateway.connections and time.monotonic() < deadline:
            time.sleep(0.01)  # the session registers itself just after the handshake
        (connection_id,) = gateway.connections
        url = f"{gateway.callback_url}/@connections/{quote(connection_id, safe='')}"
        # When: a page posts a frame of its own to the connection (a simple, form-like request)
        refused = requests.post(url, data=b'{"type": "delta"}', headers=headers, timeout=5)
        # Then: refused, nothing reached the socket; the functions (no browser) still push
        assert refused.status_code == 403
        assert requests.post(url, data=b'{"type": "ok"}', timeout=5).status_code == 200
        assert json.loads(socket.recv(timeout=5)) == {"type": "ok"}
