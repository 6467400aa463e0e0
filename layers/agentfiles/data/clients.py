"""Cached AWS clients: the one piece of process-wide state the functions keep.

Clients are created on first use, not at import, so a cold start pays only for the
clients a request needs. Endpoints follow botocore's own configuration
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...), which is how the local stack
points them at moto.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from botocore.config import Config

from agentfiles.settings import get_settings

_RETRIES = {"max_attempts": 3, "mode": "standard"}


@cache
def session() -> boto3.session.Session:
    return boto3.session.Session()


@cache
def dynamodb() -> Any:
    return session().client("dynamodb", config=Config(retries=_RETRIES))


@cache
def s3() -> Any:
    # SigV4 signs Content-Length, Content-Type and x-amz-checksum-sha256 into a
    # presigned PUT, so S3 refuses a body that differs from what was registered.
    return session().client("s3", config=Config(signature_version="s3v4", retries=_RETRIES))


@cache
def sqs() -> Any:
    return session().client("sqs", config=Config(retries=_RETRIES))


@cache
def secrets() -> Any:
    return session().client("secretsmanager", config=Config(retries=_RETRIES))


@cache
def connections() -> Any:
    """API Gateway's @connections API of the WebSocket API (WEBSOCKET_CALLBACK_URL). A push
    is best effort and the client catches up, so it is never waited on for long."""
    return session().client(
        "apigatewaymanagementapi",
        endpoint_url=get_settings().websocket_callback_url,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=5),
    )


def warm() -> None:
    """Create the clients a function uses now: for an init that no request waits for
    (a SnapStart snapshot then holds them, with botocore's parsed service models)."""
    dynamodb()
    s3()
    sqs()


def reset() -> None:
    """Forget every client (tests and the local stack call this after moving endpoints).
    The session stays: it holds botocore's parsed service models, which are costly to
    load again and do not depend on the endpoint."""
    for factory in (dynamodb, s3, sqs, secrets, connections):
        factory.cache_clear()
