"""Cached AWS clients: the one piece of process-wide state the functions keep.

Clients are created on first use, not at import, so a cold start pays only for the
clients a request needs. Endpoints follow botocore's own configuration
(`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_S3`, ...), which is how the local stack
points them at moto.
"""

from __future__ import annotations

import os
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


def s3_regional_endpoint(region: str | None) -> str | None:
    """S3's own endpoint in `region`, unless botocore's configuration names another (the
    local stack's moto, through AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL).

    Without it botocore presigns the global host (`{bucket}.s3.amazonaws.com`) in every
    region: S3 answers that with a 307 to the regional host for up to a day after a bucket
    is created outside us-east-1 (a browser's CORS preflight cannot follow it, and a
    redirected GET no longer matches its signature), and regions opened since 2019 refuse
    it outright.
    """
    if not region or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL"):
        return None
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{region}.{suffix}"


@cache
def s3() -> Any:
    # SigV4 signs Content-Length, Content-Type and x-amz-checksum-sha256 into a
    # presigned PUT, so S3 refuses a body that differs from what was registered.
    config = Config(signature_version="s3v4", retries=_RETRIES)
    endpoint = s3_regional_endpoint(session().region_name)
    if endpoint is None:
        # An endpoint of its own (the local stack's): botocore's addressing for it.
        return session().client("s3", config=config)
    # Virtual-hosted addressing on the regional endpoint: `{bucket}.s3.{region}.amazonaws.com`.
    virtual = config.merge(Config(s3={"addressing_style": "virtual"}))
    return session().client("s3", config=virtual, endpoint_url=endpoint)


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
