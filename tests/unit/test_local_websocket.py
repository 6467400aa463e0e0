"""The local WebSocket API routes frames as API Gateway does, whatever a client sends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
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
