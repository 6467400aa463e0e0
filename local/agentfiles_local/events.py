"""Real-shaped Lambda events, built the way AWS builds them.

The local stack turns HTTP requests and queue messages into these; tests use them
too. `tests/unit/test_event_shapes.py` holds them to the samples in `events/`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from agentfiles.topology import SCAN_EVENT_SOURCE, SCAN_RESULT_DETAIL_TYPE

REGION = "us-east-1"
ACCOUNT = "123456789012"


def http_api_event(
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    body: bytes | str | None = None,
    claims: dict[str, Any] | None = None,
    source_ip: str = "127.0.0.1",
    route_key: str = "$default",
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload format 2.0) event; `claims` go where the
    JWT authorizer puts the verified token's claims."""
    now = datetime.now(UTC)
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    lowered.setdefault("host", "127.0.0.1")
    user_agent = lowered.get("user-agent", "")
    request_context: dict[str, Any] = {
        "accountId": ACCOUNT,
        "apiId": "local",
        "domainName": lowered["host"],
        "domainPrefix": lowered["host"].split(".")[0],
        "http": {
            "method": method.upper(),
            "path": path,
            "protocol": "HTTP/1.1",
            "sourceIp": source_ip,
            "userAgent": user_agent,
        },
        "requestId": uuid.uuid4().hex,
        "routeKey": route_key,
        "stage": "$default",
        "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(now.timestamp() * 1000),
    }
    if claims is not None:
        request_context["authorizer"] = {
            "jwt": {"claims": {k: str(v) for k, v in claims.items()}, "scopes": None}
        }
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": urlencode(query or {}),
        "headers": lowered,
        "requestContext": request_context,
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
    if body is not None:
        raw = body.encode() if isinstance(body, str) else body
        content_type = lowered.get("content-type", "")
        if content_type.startswith(("application/json", "text/")):
            event["body"] = raw.decode("utf-8", errors="replace")
        else:
            event["body"] = base64.b64encode(raw).decode()
            event["isBase64Encoded"] = True
    return event


def sqs_record(
    body: str,
    queue_arn: str,
    *,
    message_id: str | None = None,
    receipt_handle: str | None = None,
    receive_count: int = 1,
    sent_timestamp_ms: int | None = None,
    attributes: dict[str, str] | None = None,
) -> dict[str, Any]:
    now = int(time.time() * 1000)
    record_attributes = {
        "ApproximateReceiveCount": str(receive_count),
        "SentTimestamp": str(sent_timestamp_ms or now),
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": str(now),
    }
    record_attributes.update(attributes or {})
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": receipt_handle or uuid.uuid4().hex,
        "body": body,
        "attributes": record_attributes,
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": REGION,
    }


def sqs_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def s3_notification(
    bucket: str, key: str, size: int, etag: str, event_name: str = "ObjectCreated:Put"
) -> str:
    """The body S3 sends to SQS for one object (the key URL-encoded, as S3 does)."""
    from urllib.parse import quote_plus

    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AROAEXAMPLE:uploader"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": uuid.uuid4().hex[:16].upper(),
            "x-amz-id-2": uuid.uuid4().hex,
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "uploads",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": {
                "key": quote_plus(key, safe="/"),
                "size": size,
                "eTag": etag,
                "sequencer": "0067435A1B2C3D4E5F",
            },
        },
    }
    return json.dumps({"Records": [record]})


def _eventbridge_event(
    detail_type: str, source: str, resource: str, detail: dict[str, Any]
) -> dict[str, Any]:
    """The envelope EventBridge puts around every event it delivers."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": source,
        "account": ACCOUNT,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [resource],
        "detail": detail,
    }


def schedule_event(rule_name: str = "agentfiles-vacuum") -> dict[str, Any]:
    return _eventbridge_event(
        "Scheduled Event", "aws.events", f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{rule_name}", {}
    )


# Where each scan result leaves the scan (GuardDuty's `scanStatus` beside its result).
_SCAN_STATUS = {
    "NO_THREATS_FOUND": "COMPLETED",
    "THREATS_FOUND": "COMPLETED",
    "UNSUPPORTED": "SKIPPED",
    "ACCESS_DENIED": "SKIPPED",
    "FAILED": "FAILED",
}


def scan_result_event(
    bucket: str,
    key: str,
    result: str,
    *,
    etag: str | None = None,
    threats: list[str] | None = None,
    plan_id: str = "local-malware-protection-plan",
) -> dict[str, Any]:
    """`GuardDuty Malware Protection Object Scan Result`, as GuardDuty Malware Protection
    for S3 publishes it to the default event bus (schemaVersion 1.0)."""
    return _eventbridge_event(
        SCAN_RESULT_DETAIL_TYPE,
        SCAN_EVENT_SOURCE,
        f"arn:aws:guardduty:{REGION}:{ACCOUNT}:malware-protection-plan/{plan_id}",
        {
            "schemaVersion": "1.0",
            "scanStatus": _SCAN_STATUS.get(result, "COMPLETED"),
            "resourceType": "S3_OBJECT",
            "s3ObjectDetails": {
                "bucketName": bucket,
                "objectKey": key,
                "eTag": etag,
                "versionId": None,
                "s3Throttled": False,
            },
            "scanResultDetails": {
                "scanResultStatus": result,
                "threats": [{"name": name} for name in threats] if threats else None,
            },
        },
    )


# ---- API Gateway WebSocket APIs ---------------------------------------------------


@dataclass(frozen=True)
class WebSocketRequest:
    """What API Gateway knows of a WebSocket connection, repeated in each of its events."""

    connection_id: str
    domain_name: str
    stage: str
    connected_at_ms: int
    source_ip: str = "127.0.0.1"
    user_agent: str = ""
    api_id: str = "local"


def _websocket_context(
    request: WebSocketRequest, route_key: str, event_type: str, authorizer: dict[str, Any] | None
) -> dict[str, Any]:
    now = datetime.now(UTC)
    context: dict[str, Any] = {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": uuid.uuid4().hex[:16],
        "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "messageDirection": "IN",
        "stage": request.stage,
        "connectedAt": request.connected_at_ms,
        "requestTimeEpoch": int(now.timestamp() * 1000),
        "identity": {"sourceIp": request.source_ip, "userAgent": request.user_agent},
        "requestId": uuid.uuid4().hex[:16],
        "domainName": request.domain_name,
        "connectionId": request.connection_id,
        "apiId": request.api_id,
    }
    if authorizer is not None:
        context["authorizer"] = authorizer
    return context


def _multi(values: dict[str, str]) -> dict[str, list[str]]:
    return {key: [value] for key, value in values.items()}


def websocket_authorizer_event(
    request: WebSocketRequest, headers: dict[str, str], query: dict[str, str]
) -> dict[str, Any]:
    """The REQUEST authorizer's input on `$connect` (its `methodArn` ends in `$connect`)."""
    return {
        "type": "REQUEST",
        "methodArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:{request.api_id}/{request.stage}/$connect",
        "headers": dict(headers),
        "multiValueHeaders": _multi(headers),
        "queryStringParameters": dict(query),
        "multiValueQueryStringParameters": _multi(query),
        "stageVariables": {},
        "requestContext": _websocket_context(request, "$connect", "CONNECT", None),
    }


def authorizer_context(result: dict[str, Any], latency_ms: int = 0) -> dict[str, Any]:
    """What API Gateway passes on to the routes from an authorizer's answer: its context,
    the principal, and how long the authorizer took."""
    return {
        **(result.get("context") or {}),
        "principalId": result.get("principalId"),
        "integrationLatency": latency_ms,
    }


def websocket_connect_event(
    request: WebSocketRequest,
    headers: dict[str, str],
    query: dict[str, str],
    authorizer: dict[str, Any] | None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "headers": dict(headers),
        "multiValueHeaders": _multi(headers),
        "requestContext": _websocket_context(request, "$connect", "CONNECT", authorizer),
        "isBase64Encoded": False,
    }
    if query:
        event["queryStringParameters"] = dict(query)
        event["multiValueQueryStringParameters"] = _multi(query)
    return event


def websocket_message_event(
    request: WebSocketRequest, route_key: str, body: str, authorizer: dict[str, Any] | None
) -> dict[str, Any]:
    context = _websocket_context(request, route_key, "MESSAGE", authorizer)
    context["messageId"] = uuid.uuid4().hex[:16]
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def websocket_disconnect_event(
    request: WebSocketRequest, status_code: int, reason: str, authorizer: dict[str, Any] | None
) -> dict[str, Any]:
    headers = {"Host": request.domain_name, "x-api-key": "", "X-Forwarded-For": "", "x-restapi": ""}
    context = _websocket_context(request, "$disconnect", "DISCONNECT", authorizer)
    context |= {"disconnectStatusCode": status_code, "disconnectReason": reason}
    return {
        "headers": headers,
        "multiValueHeaders": _multi(headers),
        "requestContext": context,
        "isBase64Encoded": False,
    }


class LambdaContext:
    """What the Lambda runtime passes as `context`, with a real deadline."""

    def __init__(self, function_name: str, timeout_seconds: int, memory_mb: int = 512):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = datetime.now(UTC).strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))
