"""The events the local stack builds have the shape of the samples AWS sends (events/)."""

from __future__ import annotations

import json
from pathlib import Path

from agentfiles_local.events import http_api_event, s3_notification, schedule_event, sqs_record

EVENTS = Path(__file__).parents[2] / "events"


def _shape(value):
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


def _keys(value, prefix=""):
    found = set()
    if isinstance(value, dict):
        for k, v in value.items():
            found.add(prefix + k)
            found |= _keys(v, prefix + k + ".")
    elif isinstance(value, list) and value:
        found |= _keys(value[0], prefix + "[].")
    return found


def test_the_http_api_event_has_every_key_of_the_sample():
    sample = json.loads((EVENTS / "api_post_files_uploads.json").read_text())
    built = http_api_event(
        "POST",
        "/files/uploads",
        headers={"content-type": "application/json"},
        body="{}",
        claims={"sub": "alice"},
    )
    assert _keys(sample) - {
        "requestContext.authorizer.jwt.claims." + k for k in ("iss", "aud", "token_use", "exp", "iat")
    } - {f"headers.{h}" for h in sample["headers"]} <= _keys(built)


def test_the_sqs_record_has_the_shape_of_the_sample():
    sample = json.loads((EVENTS / "sqs_s3_object_created.json").read_text())["Records"][0]
    built = sqs_record("{}", "arn:aws:sqs:us-east-1:123456789012:uploads")
    assert _shape(built) == _shape(sample)


def test_the_s3_notification_has_the_shape_of_the_sample():
    sample = json.loads(json.loads((EVENTS / "sqs_s3_object_created.json").read_text())["Records"][0]["body"])
    built = json.loads(s3_notification("agentfiles-files", "user-alice/01X", 68, "abc"))
    assert _shape(built) == _shape(sample)


def test_the_schedule_event_has_the_shape_of_the_sample():
    sample = json.loads((EVENTS / "eventbridge_schedule.json").read_text())
    assert _shape(schedule_event()) == _shape(sample)


def test_the_websocket_events_have_every_key_of_the_samples():
    from agentfiles_local.events import (
        WebSocketRequest,
        websocket_authorizer_event,
        websocket_connect_event,
        websocket_disconnect_event,
        websocket_message_event,
    )

    request = WebSocketRequest(
        connection_id="abc=", domain_name="127.0.0.1:9", stage="live", connected_at_ms=1
    )
    authorizer = {"sub": "alice", "principalId": "alice", "integrationLatency": 1}
    built = {
        "websocket_authorizer_connect.json": websocket_authorizer_event(
            request, {"Host": "x"}, {"token": "t"}
        ),
        "websocket_connect.json": websocket_connect_event(request, {"Host": "x"}, {"token": "t"}, authorizer),
        "websocket_subscribe.json": websocket_message_event(request, "subscribe", "{}", authorizer),
        "websocket_disconnect.json": websocket_disconnect_event(request, 1001, "Going away", authorizer),
    }
    for name, event in built.items():
        sample = json.loads((EVENTS / name).read_text())
        ignored = {k for k in _keys(sample) if k.startswith(("headers.", "multiValueHeaders."))}
        assert _keys(sample) - ignored <= _keys(event), name
