"""The shipped bundle and its sandbox, built once per test session (in a temporary
folder: nothing is cached between sessions, so what is tested is what this checkout
ships). Only `test_shipped_functions.py` asks for them; the other tests here are light."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto.server import ThreadedMotoServer

from agentfiles_local.provision import provision
from tests.deploy.shipped import (
    REGION,
    STAGE,
    Placeholders,
    Sandbox,
    Shipped,
    build,
    interpreter,
    runtime_packages,
)


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Shipped:
    if interpreter() is None:
        pytest.skip(
            "NO PYTHON 3.13 INTERPRETER: the shipped bundle cannot be built with its bytecode nor run "
            "here (set LAMBDA_BYTECODE_PYTHON to one)"
        )
    return build(tmp_path_factory.mktemp("cdk.out.shipped"))


@pytest.fixture(scope="session")
def sandbox(shipped: Shipped, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A moto server holding the stack's table, bucket, queues and secret under the names
    the template's Refs are replaced by."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    session = boto3.session.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        aws_session_token="testing",
        region_name=REGION,
    )
    stack = shipped.stack
    table_name, bucket_name = f"agentfiles-{STAGE}-table", f"agentfiles-{STAGE}-files"
    resources = provision(session, table_name=table_name, bucket_name=bucket_name, endpoint_url=endpoint)
    secret = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
        Name="openai-api-key", SecretString="sk-sandbox"
    )
    refs = {
        shipped.resource_of(stack.storage.table): table_name,
        shipped.resource_of(stack.storage.bucket): bucket_name,
        shipped.resource_of(stack.functions.openai_secret): secret["ARN"],
    }
    attributes: dict[tuple[str, str], str] = {}
    for name, work in stack.queues.by_name.items():
        refs[shipped.resource_of(work.queue)] = resources.queue_urls[name]
        refs[shipped.resource_of(work.dlq)] = resources.dlq_urls[name]
        attributes[(shipped.resource_of(work.queue), "Arn")] = resources.queue_arns[name]
    runtime = runtime_packages(tmp_path_factory.mktemp("var-runtime"))
    python = interpreter()
    assert python
    yield Sandbox(
        interpreter=python,
        runtime=runtime,
        placeholders=Placeholders(refs, attributes),
        aws_endpoint=endpoint,
    )
    server.stop()
