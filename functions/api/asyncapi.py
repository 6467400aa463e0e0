"""The WebSocket protocol as an AsyncAPI 3.0 document (`GET /asyncapi.json`): the
frames a client sends and receives, their schemas taken from the models the socket
function speaks (`agentfiles.models.live`), so the document cannot drift from them."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from pydantic import BaseModel

from agentfiles import topology
from agentfiles.models.live import (
    AccountErasedFrame,
    DeltaFrame,
    ErrorFrame,
    ExportFrame,
    FileFrame,
    MessageFrame,
    SubscribedFrame,
    SubscriptionRequest,
    ThreadDeletedFrame,
    UnsubscribedFrame,
)

REF = "#/components/schemas/{model}"
# message name → (model, direction, summary)
MESSAGES: dict[str, tuple[type[BaseModel], str, str]] = {
    "subscription": (
        SubscriptionRequest,
        "send",
        'Follow a thread\'s replies (`"action": "subscribe"`) or stop following it ("unsubscribe").',
    ),
    "subscribed": (SubscribedFrame, "receive", "The subscription is in place: frames of the thread follow."),
    "unsubscribed": (UnsubscribedFrame, "receive", "No more frames of the thread."),
    "delta": (
        DeltaFrame,
        "receive",
        "Text a reply added since its last flush, numbered by `seq` with no gap; `reset` starts the text "
        "over. After a dropped connection: subscribe again, then GET /threads/{threadId}/messages/"
        "{messageId}/stream?after=<last seq> and merge by seq.",
    ),
    "message": (
        MessageFrame,
        "receive",
        "A message of the thread was created or changed status; the final one of a reply carries its "
        "full content and `lastSeq` (or `contentOmitted`: read it with GET).",
    ),
    "threadDeleted": (ThreadDeletedFrame, "receive", "The thread is gone: no more frames of it."),
    "accountErased": (
        AccountErasedFrame,
        "receive",
        "The account is being erased (DELETE /account): the last frame, then the connection is closed.",
    ),
    "export": (
        ExportFrame,
        "receive",
        "An export of the account ended (ready or failed): GET /exports/{exportId} mints its URL.",
    ),
    "file": (
        FileFrame,
        "receive",
        "An upload was settled, to every open socket of its owner (no subscription needed): the file "
        "`ready` with its URLs, or `rejected` with the reason, as GET /files/{fileId} shows it.",
    ),
    "error": (
        ErrorFrame,
        "receive",
        "A frame could not be handled (`thread_not_found` for another owner's or an unknown thread, "
        "`bad_request` for one that is not a subscription).",
    ),
}


def _schema(model: type[BaseModel], schemas: dict[str, Any]) -> dict[str, Any]:
    # The fields as declared (the frames' serializers leave out what is None).
    schema = model.model_json_schema(by_alias=True, ref_template=REF)
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
    return {"$ref": REF.format(model=model.__name__)}


@cache
def asyncapi_document() -> str:
    schemas: dict[str, Any] = {}
    messages = {
        name: {
            "name": name,
            "title": model.__name__,
            "summary": summary,
            "contentType": "application/json",
            "payload": _schema(model, schemas),
        }
        for name, (model, _, summary) in MESSAGES.items()
    }
    operations = {
        f"{direction}{name[0].upper()}{name[1:]}": {
            "action": direction,
            "channel": {"$ref": "#/channels/live"},
            "summary": summary,
            "messages": [{"$ref": f"#/channels/live/messages/{name}"}],
        }
        for name, (_, direction, summary) in MESSAGES.items()
    }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "agentfiles live replies",
            "version": "1.0.0",
            "description": "Replies streamed to a client as they are written. Connect with the same JWT "
            "as the HTTP API in the `token` query parameter (a missing or bad token is refused at the "
            "upgrade, 401), subscribe to threads, and receive their frames. The HTTP API is described "
            "by /openapi.json.",
        },
        "servers": {
            "live": {
                "host": "{host}",
                "pathname": "/{stage}",
                "protocol": "wss",
                "description": "The stack output `WebSocketUrl` on AWS; locally `websocketUrl` of "
                "GET /health (ws://, no stage).",
                "variables": {
                    "host": {"description": "The WebSocket API's domain name"},
                    "stage": {
                        "default": topology.WEBSOCKET_STAGE,
                        "description": "The WebSocket API's stage",
                    },
                },
                "security": [{"$ref": "#/components/securitySchemes/token"}],
            }
        },
        "channels": {
            "live": {
                "address": "/",
                "title": "A client's connection",
                "messages": {name: {"$ref": f"#/components/messages/{name}"} for name in messages},
                "bindings": {
                    "ws": {
                        "query": {
                            "type": "object",
                            "properties": {"token": {"type": "string", "description": "The bearer JWT"}},
                            "required": ["token"],
                        }
                    }
                },
            }
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "token": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "The same JWT as the HTTP API's bearer token (locally: POST /dev/token).",
                }
            },
        },
    }
    return json.dumps(document, separators=(",", ":"))
