"""The local stack's moto serves DynamoDB requests from many threads at once (the API,
the pollers, the schedule). A transaction that moto refuses puts back a copy of the
table taken before it ran, over whatever other requests wrote meanwhile; the local
stack makes its DynamoDB requests take turns so that no write is lost."""

from __future__ import annotations

import copy
import threading
import types
from collections.abc import Iterator

import boto3
import pytest
from moto.dynamodb import models as dynamodb_models
from moto.server import ThreadedMotoServer

from agentfiles_local.runtime.moto_dynamodb import serialize_requests


@pytest.fixture
def moto_server() -> Iterator[str]:
    serialize_requests()  # as LocalStack._start_aws does before it starts moto
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def _client(endpoint: str):
    session = boto3.session.Session(aws_access_key_id="t", aws_secret_access_key="t", region_name="us-east-1")
    return session.client("dynamodb", endpoint_url=endpoint)


def test_a_write_made_while_a_transaction_is_refused_is_not_lost(moto_server, monkeypatch):
    # Given a table with a counter, and a transaction that will be refused
    client = _client(moto_server)
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="t", Item={"pk": {"S": "taken"}})
    # ... which pauses right after moto copied the table (to put it back on refusal),
    # until the counter is written or two seconds pass
    copied, written = threading.Event(), threading.Event()

    def copy_then_pause(value, *args):
        table_copy = copy.deepcopy(value, *args)
        if isinstance(value, dynamodb_models.Table):
            copied.set()
            written.wait(timeout=2)
        return table_copy

    monkeypatch.setattr(dynamodb_models, "copy", types.SimpleNamespace(deepcopy=copy_then_pause))

    outcome: list[str] = []

    def refused() -> None:
        other = _client(moto_server)
        put = {
            "TableName": "t",
            "Item": {"pk": {"S": "taken"}},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            other.transact_write_items(TransactItems=[{"Put": put}])
        except other.exceptions.TransactionCanceledException:
            outcome.append("refused")

    transaction = threading.Thread(target=refused)
    transaction.start()
    # When the counter is written once the transaction has copied the table
    assert copied.wait(timeout=10)
    client.update_item(
        TableName="t",
        Key={"pk": {"S": "counter"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    written.set()
    transaction.join()

    # Then the write is still there after the refused transaction
    assert outcome == ["refused"]
    item = client.get_item(TableName="t", Key={"pk": {"S": "counter"}}, ConsistentRead=True).get("Item")
    assert item == {"pk": {"S": "counter"}, "n": {"N": "1"}}
