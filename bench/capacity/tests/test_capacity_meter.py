"""The cost model's meter on moto: what it bills each DynamoDB request, read from the
items the request touched, matches the arithmetic worked by hand."""

from __future__ import annotations

import pytest

from agentfiles.data import clients
from bench.capacity import pricing as q
from bench.capacity.meter import Meter, partition_kind
from bench.capacity.units import item_size
from harness.aws import local_aws

PK = "OWNER#alice#THREAD#t1"


def _item(sk: str, size: int) -> dict:
    """An item of exactly `size` bytes as DynamoDB counts them."""
    item = {"pk": {"S": PK}, "sk": {"S": sk}, "data": {"S": ""}}
    item["data"]["S"] = "x" * (size - item_size(item))
    return item


@pytest.fixture
def metered():
    with local_aws() as aws:
        meter = Meter(probe_dynamodb=aws.dynamodb)
        meter.attach(clients.dynamodb())
        try:
            yield meter, clients.dynamodb(), aws.resources.table_name
        finally:
            meter.detach()


def _last(meter: Meter, quantity: str) -> float:
    return meter.calls[-1].usage[quantity]


def test_writes_are_billed_on_the_larger_item_and_doubled_in_a_transaction(metered):
    meter, client, table = metered
    # Given a 3.5 KiB item put alone
    client.put_item(TableName=table, Item=_item("MSG#1", 3584))
    assert _last(meter, q.DDB_WRITE_UNITS) == 4
    # When it grows to 5 KiB by an update ("more" + 1,532 bytes)
    client.update_item(
        TableName=table,
        Key={"pk": {"S": PK}, "sk": {"S": "MSG#1"}},
        UpdateExpression="SET more = :more",
        ExpressionAttributeValues={":more": {"S": "y" * 1532}},
    )
    # Then the update is billed on the larger, new size
    assert _last(meter, q.DDB_WRITE_UNITS) == 5
    # And a delete is billed on the item it removes
    client.delete_item(TableName=table, Key={"pk": {"S": PK}, "sk": {"S": "MSG#1"}})
    assert _last(meter, q.DDB_WRITE_UNITS) == 5
    # And the same 3.5 KiB put inside a transaction costs twice as much
    client.transact_write_items(TransactItems=[{"Put": {"TableName": table, "Item": _item("MSG#2", 3584)}}])
    assert _last(meter, q.DDB_WRITE_UNITS) == 8
    assert meter.calls[-1].partitions[(PK, "write")] == 8
    assert partition_kind(PK) == "thread"


def test_a_refused_conditional_write_is_still_billed(metered):
    meter, client, table = metered
    client.put_item(TableName=table, Item=_item("MSG#1", 2000))
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.put_item(
            TableName=table, Item=_item("MSG#1", 2000), ConditionExpression="attribute_not_exists(pk)"
        )
    assert _last(meter, q.DDB_WRITE_UNITS) == 2


def test_reads_round_a_query_page_once_and_each_batch_get_item_alone(metered):
    meter, client, table = metered
    # Given the developer guide's items of 1.5 KiB and 6.5 KiB in one partition
    client.put_item(TableName=table, Item=_item("MSG#1", 1536))
    client.put_item(TableName=table, Item=_item("MSG#2", 6656))
    keys = [{"pk": {"S": PK}, "sk": {"S": sk}} for sk in ("MSG#1", "MSG#2")]
    # When a strongly consistent Query reads both, with a filter that keeps none
    client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        FilterExpression="attribute_exists(nothing)",
        ExpressionAttributeValues={":pk": {"S": PK}},
        ConsistentRead=True,
    )
    # Then it is billed on the 8 KiB it read, not on what the filter let through
    assert _last(meter, q.DDB_READ_UNITS) == 2
    # And BatchGetItem rounds each item up (4 + 8 KiB), eventually consistent by default
    client.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
    assert _last(meter, q.DDB_READ_UNITS) == 3
    client.batch_get_item(RequestItems={table: {"Keys": keys}})
    assert _last(meter, q.DDB_READ_UNITS) == 1.5
    # And a GetItem that finds nothing still reads one step
    client.get_item(TableName=table, Key={"pk": {"S": PK}, "sk": {"S": "MSG#9"}}, ConsistentRead=True)
    assert _last(meter, q.DDB_READ_UNITS) == 1


def test_an_item_entering_a_sparse_index_costs_a_write_on_its_shard(metered):
    meter, client, table = metered
    # Given a file row that gets its gc marker, then a later touch, then loses it
    row = {"pk": {"S": "OWNER#alice"}, "sk": {"S": "FILE#f1"}, "refcount": {"N": "0"}}
    client.put_item(TableName=table, Item=row)
    assert _last(meter, q.DDB_INDEX_WRITE_UNITS) == 0
    key = {"pk": row["pk"], "sk": row["sk"]}
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET gcShard = :s, lastTouchedAt = :t",
        ExpressionAttributeValues={":s": {"S": "GC#3"}, ":t": {"N": "1000"}},
    )
    # Then entering is one index write, on that shard's partition
    assert _last(meter, q.DDB_INDEX_WRITE_UNITS) == 1
    assert meter.calls[-1].partitions[("gcIndex:GC#3", "write")] == 1
    assert partition_kind("gcIndex:GC#3") == "gcIndex"
    # And moving its sort key is two, leaving is one
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET lastTouchedAt = :t",
        ExpressionAttributeValues={":t": {"N": "2000"}},
    )
    assert _last(meter, q.DDB_INDEX_WRITE_UNITS) == 2
    client.update_item(TableName=table, Key=key, UpdateExpression="REMOVE gcShard")
    assert _last(meter, q.DDB_INDEX_WRITE_UNITS) == 1
    # And a query of the index reads the KEYS_ONLY entries, on the shard it names
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET gcShard = :s",
        ExpressionAttributeValues={":s": {"S": "GC#3"}},
    )
    client.query(
        TableName=table,
        IndexName="gcIndex",
        KeyConditionExpression="#shard = :shard AND #sort <= :upto",
        ExpressionAttributeNames={"#shard": "gcShard", "#sort": "lastTouchedAt"},
        ExpressionAttributeValues={":shard": {"S": "GC#3"}, ":upto": {"N": "9999"}},
    )
    assert meter.calls[-1].partitions[("gcIndex:GC#3", "read")] == 0.5


def test_a_frame_pushed_through_connections_is_a_message_per_started_32_kb_and_its_bytes_out():
    # Given the @connections API of a WebSocket stage (moto's), metered
    with local_aws(WEBSOCKET_CALLBACK_URL="https://abc123.execute-api.us-east-1.amazonaws.com/live") as aws:
        meter = Meter(probe_dynamodb=aws.dynamodb)
        meter.attach(clients.connections())
        try:
            # When a function pushes a small frame, then one of 40,000 bytes
            clients.connections().post_to_connection(ConnectionId="AbC+dEf=", Data=b'{"type": "delta"}')
            small = meter.calls[-1].usage
            clients.connections().post_to_connection(ConnectionId="AbC+dEf=", Data=b"x" * 40_000)
            large = meter.calls[-1].usage
        finally:
            meter.detach()
    # Then each is billed per started 32 KB, and its bytes leave AWS
    assert (small[q.WEBSOCKET_MESSAGES], small[q.TRANSFER_OUT_BYTES]) == (1, 17)
    assert (large[q.WEBSOCKET_MESSAGES], large[q.TRANSFER_OUT_BYTES]) == (2, 40_000)
