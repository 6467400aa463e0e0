"""The WebSocket API → this function, for every route: `$connect` (after the authorizer
let the token through), `$disconnect`, `subscribe`, `unsubscribe` and `$default`.

Frames a client sends are JSON, `{"action": "subscribe" | "unsubscribe", "threadId"}`;
the answer to each (`subscribed`, `unsubscribed`, or an `error` frame) is the route's
response, which API Gateway sends back on the connection. Replies, messages and thread
changes reach the connection later, pushed through @connections by the functions that
make them."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agentfiles.ids import usable_owner
from agentfiles.logic import connections
from agentfiles.models.live import SubscriptionRequest, frame_json
from agentfiles.observability import logger, metrics
from agentfiles.settings import get_settings

# Fail at init, naming any variable the deployment did not set.
get_settings()


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Authorizer(_Lenient):
    """What the `$connect` authorizer returned; API Gateway repeats it on every route."""

    principal_id: str | None = Field(None, alias="principalId")
    sub: str | None = None


class RequestContext(_Lenient):
    route_key: str = Field(alias="routeKey")
    event_type: str = Field(alias="eventType")
    connection_id: str = Field(alias="connectionId")
    authorizer: Authorizer = Field(default_factory=Authorizer)


class WebSocketEvent(_Lenient):
    request_context: RequestContext = Field(alias="requestContext")
    body: str | None = None


def _owner(event: WebSocketEvent) -> str | None:
    owner = event.request_context.authorizer.sub or event.request_context.authorizer.principal_id
    return owner if usable_owner(owner) else None


def _answer(body: str | None = None, status: int = 200) -> dict[str, Any]:
    return {"statusCode": status, "body": body} if body is not None else {"statusCode": status}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict[str, Any]:
    parsed = WebSocketEvent.model_validate(event)
    route, connection_id = parsed.request_context.route_key, parsed.request_context.connection_id
    logger.append_keys(route=route, connection_id=connection_id)
    owner = _owner(parsed)
    if owner is None:
        # Only reachable past a misconfigured authorizer: refuse rather than guess.
        return _answer(status=403)
    if route == "$connect":
        connections.connect(owner, connection_id)
        return _answer()
    if route == "$disconnect":
        connections.disconnect(owner, connection_id)
        return _answer()
    try:
        body = json.loads(parsed.body or "")
        request = SubscriptionRequest.model_validate(body)
    except (ValueError, ValidationError, RecursionError):  # nested past what the parser takes
        message = 'send {"action": "subscribe" | "unsubscribe", "threadId": "<id>"}'
        return _answer(frame_json(connections.bad_frame(message)))
    return _answer(frame_json(connections.handle(owner, connection_id, request)))
