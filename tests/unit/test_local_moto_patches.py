"""The transaction semantics the system relies on, held by moto once
`agentfiles_local.moto_patches` is applied: all or nothing, one cancellation reason
per action in order, the old item on request, idempotent client request tokens,
indexes right after a rollback, requests isolated from each other, and a cost that
does not depend on unrelated rows."""

from __future__ import annotations

import os
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import dynamodb_backends
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from agentfiles_local import moto_patches
from agentfiles_local.provision import create_table

TABLE = "things"
ACCOUNT, REGION = "123456789012", "us-east-1"


@dataclass
class Table:
    client: Any

    def put(self, pk: str, sk: str, **attributes: Any) -> None:
        self.client.put_item(TableName=TABLE, Item=item(pk, sk, **attributes))

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        return self.client.get_item(TableName=TABLE, Key=key(pk, sk), ConsistentRead=True).get("Item")

    def transact(self, *actions: dict[str, Any], **kwargs: Any) -> Any:
        return self.client.transact_write_items(TransactItems=list(actions), **kwargs)

    def cancelled(self, *actions: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
        with pytest.raises(ClientError) as raised:
            self.transact(*actions, **kwargs)
        assert raised.value.response["Error"]["Code"] == "TransactionCanceledException"
        return raised.value.response["CancellationReasons"]

    def index(self, name: str, partition_key: str, shard: str) -> list[str]:
        response = self.client.query(
            TableName=TABLE,
            IndexName=name,
            KeyConditionExpression="#shard = :shard",
            ExpressionAttributeNames={"#shard": partition_key},
            ExpressionAttributeValues={":shard": {"S": shard}},
        )
        return sorted(found["sk"]["S"] for found in response["Items"])

    @property
    def moto(self) -> Any:
        return dynamodb_backends[ACCOUNT][REGION].tables[TABLE]


def key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def item(pk: str, sk: str, **attributes: Any) -> dict[str, Any]:
    values = {name: {"N": str(v)} if isinstance(v, int) else {"S": v} for name, v in attributes.items()}
    return {**key(pk, sk), **values}


def put_new(pk: str, sk: str, **attributes: Any) -> dict[str, Any]:
    return {
        "Put": {
            "TableName": TABLE,
            "Item": item(pk, sk, **attributes),
            "ConditionExpression": "attribute_not_exists(pk)",
        }
    }


def take(pk: str, sk: str, **extra: Any) -> dict[str, Any]:
    """+1 on a ready file, removing its gc marker (as a save does)."""
    return {
        "Update": {
            "TableName": TABLE,
            "Key": key(pk, sk),
            "UpdateExpression": "SET refcount = refcount + :one REMOVE gcShard",
            "ConditionExpression": "#status = :ready",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {":one": {"N": "1"}, ":ready": {"S": "ready"}},
            **extra,
        }
    }


@pytest.fixture
def table(monkeypatch: pytest.MonkeyPatch) -> Iterator[Table]:
    assert moto_patches.apply()
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        create_table(client, TABLE)
        yield Table(client)


def file_row(n: int, status: str = "ready", refcount: int = 0) -> dict[str, Any]:
    return {"status": status, "refcount": refcount, "gcShard": "GC#1", "lastTouchedAt": n}


# ---- all or nothing --------------------------------------------------------------------


def test_given_a_failing_action_when_the_transaction_runs_then_no_action_is_applied(table):
    # Given: two ready files and one that is not ready
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.put("OWNER#a", "FILE#2", **file_row(2))
    table.put("OWNER#a", "FILE#3", **file_row(3, status="pending"))

    # When: a message takes all three
    reasons = table.cancelled(
        put_new("OWNER#a#THREAD#t", "MSG#1", text="hi"),
        take("OWNER#a", "FILE#1"),
        take("OWNER#a", "FILE#2"),
        take("OWNER#a", "FILE#3"),
    )

    # Then: one reason per action, in order, and nothing moved
    assert [reason["Code"] for reason in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert table.get("OWNER#a#THREAD#t", "MSG#1") is None
    for n in (1, 2):
        assert table.get("OWNER#a", f"FILE#{n}") == item("OWNER#a", f"FILE#{n}", **file_row(n))


def test_given_failures_in_several_actions_when_cancelled_then_each_has_its_reason_in_order(table):
    # Given: a message that exists already and a pending file
    table.put("OWNER#a#THREAD#t", "MSG#1", text="first")
    table.put("OWNER#a", "FILE#1", **file_row(1, status="pending"))
    table.put("OWNER#a", "FILE#2", **file_row(2))

    # When
    reasons = table.cancelled(
        put_new("OWNER#a#THREAD#t", "MSG#1", text="again"),
        take("OWNER#a", "FILE#2"),
        take("OWNER#a", "FILE#1"),
    )

    # Then
    codes = [reason["Code"] for reason in reasons]
    assert codes == ["ConditionalCheckFailed", "None", "ConditionalCheckFailed"]
    assert table.get("OWNER#a", "FILE#2")["refcount"] == {"N": "0"}


def test_given_return_values_on_condition_check_failure_when_cancelled_then_the_old_item_comes_back(table):
    # Given
    table.put("OWNER#a", "FILE#1", **file_row(1, status="deleting"))
    table.put("OWNER#a", "FILE#2", **file_row(2, status="rejected"))

    # When: only the first action asks for the old item
    reasons = table.cancelled(
        take("OWNER#a", "FILE#1", ReturnValuesOnConditionCheckFailure="ALL_OLD"),
        take("OWNER#a", "FILE#2"),
    )

    # Then
    assert reasons[0]["Item"] == item("OWNER#a", "FILE#1", **file_row(1, status="deleting"))
    assert "Item" not in reasons[1]


def test_given_a_transaction_that_succeeds_then_every_action_is_applied(table):
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.transact(put_new("OWNER#a#THREAD#t", "MSG#1", text="hi"), take("OWNER#a", "FILE#1"))
    assert table.get("OWNER#a#THREAD#t", "MSG#1") is not None
    assert table.get("OWNER#a", "FILE#1")["refcount"] == {"N": "1"}


# ---- indexes -------------------------------------------------------------------------------


def test_given_two_items_in_sparse_indexes_when_rolled_back_then_the_indexes_are_as_before(table):
    # Given: two unreferenced files in gcIndex, a reply already in sweepIndex, and a
    # file that is not ready
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.put("OWNER#a", "FILE#2", **file_row(2))
    table.put("OWNER#a", "FILE#3", **file_row(3, status="pending"))
    table.put("OWNER#a#THREAD#t", "MSG#0", sweepShard="SWEEP#0", sweepAt=5)

    # When: one transaction takes both files (leaving gcIndex), adds a reply to
    # sweepIndex, removes the old reply from it, and fails on its last action
    reasons = table.cancelled(
        take("OWNER#a", "FILE#1"),
        take("OWNER#a", "FILE#2"),
        put_new("OWNER#a#THREAD#t", "MSG#2", sweepShard="SWEEP#0", sweepAt=9),
        {"Delete": {"TableName": TABLE, "Key": key("OWNER#a#THREAD#t", "MSG#0")}},
        take("OWNER#a", "FILE#3"),
    )

    # Then: both indexes answer as before the transaction
    assert reasons[-1]["Code"] == "ConditionalCheckFailed"
    assert table.index("gcIndex", "gcShard", "GC#1") == ["FILE#1", "FILE#2", "FILE#3"]
    assert table.index("sweepIndex", "sweepShard", "SWEEP#0") == ["MSG#0"]

    # And when the same transaction without the failing action succeeds, they follow it
    table.transact(
        take("OWNER#a", "FILE#1"),
        take("OWNER#a", "FILE#2"),
        put_new("OWNER#a#THREAD#t", "MSG#2", sweepShard="SWEEP#0", sweepAt=9),
        {"Delete": {"TableName": TABLE, "Key": key("OWNER#a#THREAD#t", "MSG#0")}},
    )
    assert table.index("gcIndex", "gcShard", "GC#1") == ["FILE#3"]
    assert table.index("sweepIndex", "sweepShard", "SWEEP#0") == ["MSG#2"]


# ---- client request tokens -------------------------------------------------------------


def test_given_a_token_when_the_same_transaction_comes_again_then_it_succeeds_without_applying_twice(table):
    # Given
    table.put("OWNER#a", "FILE#1", **file_row(1))
    save = (put_new("OWNER#a#THREAD#t", "MSG#1", text="hi"), take("OWNER#a", "FILE#1"))
    table.transact(*save, ClientRequestToken="save-1")

    # When: a retry sends the same request (the message's own condition would now fail)
    table.transact(*save, ClientRequestToken="save-1")

    # Then
    assert table.get("OWNER#a", "FILE#1")["refcount"] == {"N": "1"}


def test_given_a_token_when_other_actions_reuse_it_then_it_is_an_idempotent_parameter_mismatch(table):
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.transact(take("OWNER#a", "FILE#1"), ClientRequestToken="token-1")
    with pytest.raises(ClientError) as raised:
        table.transact(put_new("OWNER#a#THREAD#t", "MSG#9"), ClientRequestToken="token-1")
    assert raised.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert table.get("OWNER#a#THREAD#t", "MSG#9") is None


def test_given_a_token_older_than_ten_minutes_when_reused_then_the_request_is_new(table, monkeypatch):
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.transact(take("OWNER#a", "FILE#1"), ClientRequestToken="token-1")
    monkeypatch.setattr(moto_patches, "TOKEN_WINDOW_SECONDS", 0)
    table.transact(take("OWNER#a", "FILE#1"), ClientRequestToken="token-1")
    assert table.get("OWNER#a", "FILE#1")["refcount"] == {"N": "2"}


def test_given_a_cancelled_transaction_when_retried_with_its_token_then_it_runs_again(table):
    # Given: the file is not ready yet, so the save is cancelled
    table.put("OWNER#a", "FILE#1", **file_row(1, status="pending"))
    table.cancelled(take("OWNER#a", "FILE#1"), ClientRequestToken="token-1")
    # When: it is ready and the same request comes again
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.transact(take("OWNER#a", "FILE#1"), ClientRequestToken="token-1")
    # Then: it was applied this time
    assert table.get("OWNER#a", "FILE#1")["refcount"] == {"N": "1"}


# ---- cost and isolation --------------------------------------------------------------------


class WatchedItems(defaultdict):
    """moto's item store, counting walks over every partition."""

    walks = 0

    def values(self) -> Any:
        type(self).walks += 1
        return super().values()


def test_given_many_unrelated_rows_when_a_transaction_is_cancelled_then_only_its_items_are_put_back(table):
    # Given: 300 unrelated rows
    for n in range(300):
        table.put(f"OWNER#other{n % 7}", f"THREAD#{n}", title="x" * 50)
    table.put("OWNER#a", "FILE#1", **file_row(1, status="pending"))
    moto_table = table.moto
    untouched = moto_table.items[next(iter(moto_table.items))]
    some_row = next(iter(untouched.values()))

    # When
    table.cancelled(put_new("OWNER#a#THREAD#t", "MSG#1"), take("OWNER#a", "FILE#1"))

    # Then: the table and its unrelated rows are the very objects they were (moto
    # 5.2.5 replaces the table with a deep copy taken before the transaction)
    assert table.moto is moto_table
    assert next(iter(moto_table.items[some_row.hash_key].values())) is some_row
    assert table.get("OWNER#a#THREAD#t", "MSG#1") is None


def test_given_many_partitions_when_one_is_queried_then_the_others_are_not_walked(table):
    # Given
    for n in range(50):
        table.put(f"OWNER#other{n}", "THREAD#1", title="x")
    table.put("OWNER#a", "THREAD#1", title="mine")
    table.put("OWNER#a", "THREAD#2", title="mine too")
    table.moto.items = WatchedItems(dict, table.moto.items)
    WatchedItems.walks = 0

    # When
    found = table.client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :thread)",
        ExpressionAttributeValues={":pk": {"S": "OWNER#a"}, ":thread": {"S": "THREAD#"}},
        ScanIndexForward=False,
    )["Items"]

    # Then: the partition's rows, newest first, without a walk over every partition
    assert [row["sk"]["S"] for row in found] == ["THREAD#2", "THREAD#1"]
    assert WatchedItems.walks == 0
    # (a scan does walk them: the count is real)
    table.client.scan(TableName=TABLE)
    assert WatchedItems.walks > 0


def test_given_many_rows_outside_an_index_when_it_is_queried_then_the_table_is_not_sorted(table, monkeypatch):
    # Given: 300 rows, two of them in gcIndex's shard GC#1
    for n in range(300):
        table.put(f"OWNER#other{n % 7}", f"THREAD#{n}", title="x")
    table.put("OWNER#a", "FILE#1", **file_row(7))
    table.put("OWNER#b", "FILE#2", **file_row(3))
    comparisons = 0
    less_than = DynamoType.__lt__

    def counted(self: DynamoType, other: DynamoType) -> bool:
        nonlocal comparisons
        comparisons += 1
        return less_than(self, other)

    monkeypatch.setattr(DynamoType, "__lt__", counted)

    # When
    found = table.index("gcIndex", "gcShard", "GC#1")

    # Then: the two rows, found without sorting the other 300 (which takes thousands
    # of comparisons)
    assert found == ["FILE#1", "FILE#2"]
    assert comparisons < 20


def test_given_a_long_thread_when_its_subscriptions_are_queried_then_only_they_are_weighed(
    table, monkeypatch
):
    # Given: a thread partition with 200 messages and two subscriptions
    for n in range(200):
        table.put("OWNER#a#THREAD#t", f"MSG#{n:04d}", content="x" * 100)
    table.put("OWNER#a#THREAD#t", "SUB#c1", connectionId="c1")
    table.put("OWNER#a#THREAD#t", "SUB#c2", connectionId="c2")
    weighed = 0
    size = Item.size

    def counted(self: Item) -> int:
        nonlocal weighed
        weighed += 1
        return size(self)

    monkeypatch.setattr(Item, "size", counted)

    # When
    found = table.client.query(
        TableName=TABLE,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :sub)",
        ExpressionAttributeValues={":pk": {"S": "OWNER#a#THREAD#t"}, ":sub": {"S": "SUB#"}},
        ConsistentRead=True,
    )

    # Then: the two rows, and moto weighed those two, not the 200 messages (which it
    # does for each row it reads before it checks the sort key)
    assert [row["connectionId"]["S"] for row in found["Items"]] == ["c1", "c2"]
    assert weighed <= 4


@pytest.mark.parametrize(
    ("condition", "values", "expected"),
    [
        ("sk = :a", {":a": "MSG#0003"}, ["MSG#0003"]),
        ("sk < :a", {":a": "MSG#0002"}, ["MSG#0000", "MSG#0001"]),
        ("sk <= :a", {":a": "MSG#0001"}, ["MSG#0000", "MSG#0001"]),
        ("sk > :a", {":a": "MSG#0003"}, ["MSG#0004", "SUB#c1"]),
        ("sk >= :a", {":a": "MSG#0004"}, ["MSG#0004", "SUB#c1"]),
        ("sk BETWEEN :a AND :b", {":a": "MSG#0001", ":b": "MSG#0003"}, ["MSG#0001", "MSG#0002", "MSG#0003"]),
        ("begins_with(sk, :a)", {":a": "MSG#"}, [f"MSG#{n:04d}" for n in range(5)]),
        ("begins_with(sk, :a)", {":a": "NONE#"}, []),
    ],
)
def test_given_a_sort_key_condition_when_queried_then_the_rows_are_those_dynamodb_returns(
    table, condition, values, expected
):
    # Given
    for n in range(5):
        table.put("OWNER#a#THREAD#t", f"MSG#{n:04d}")
    table.put("OWNER#a#THREAD#t", "SUB#c1")
    table.put("OWNER#a#THREAD#u", "MSG#0001")

    # When: newest first, and a page of two then the rest
    attribute_values = {":pk": {"S": "OWNER#a#THREAD#t"}, **{k: {"S": v} for k, v in values.items()}}
    query = {
        "TableName": TABLE,
        "KeyConditionExpression": f"pk = :pk AND {condition}",
        "ExpressionAttributeValues": attribute_values,
        "ScanIndexForward": False,
    }
    first = table.client.query(**query, Limit=2)
    rest = (
        table.client.query(**query, ExclusiveStartKey=first["LastEvaluatedKey"])["Items"]
        if "LastEvaluatedKey" in first
        else []
    )

    # Then
    assert [row["sk"]["S"] for row in first["Items"] + rest] == list(reversed(expected))


def test_given_a_number_sort_key_condition_then_every_row_of_the_partition_is_left_to_moto():
    # Given: conditions on values that are not strings, or no condition
    number = DynamoType({"N": "3"})

    # Then: no test of the sort key; moto's own comparison decides
    assert moto_patches._sort_key_test("<", [number]) is None
    assert moto_patches._sort_key_test(None, None) is None
    assert moto_patches._sort_key_test("BEGINS_WITH", [DynamoType({"S": "MSG#"})]) is not None


def test_given_concurrent_transactions_when_some_are_cancelled_then_no_other_write_is_lost(table):
    """Given 8 threads that each save 25 messages and take a reference on a shared file,
    and 4 threads whose transactions are all cancelled; when they run at once (with the
    interpreter switching threads as often as it can), then every save and every
    reference is there."""
    table.put("OWNER#a", "FILE#1", **file_row(1))
    table.put("OWNER#a", "FILE#2", **file_row(2, status="pending"))
    for n in range(200):
        table.put(f"OWNER#other{n % 9}", f"THREAD#{n}", title="x" * 50)
    errors: list[BaseException] = []

    def saves(worker: int) -> None:
        for n in range(25):
            table.transact(put_new(f"OWNER#a#THREAD#{worker}", f"MSG#{n}"), take("OWNER#a", "FILE#1"))

    def refused(worker: int) -> None:
        for n in range(25):
            table.cancelled(put_new(f"OWNER#a#THREAD#x{worker}", f"MSG#{n}"), take("OWNER#a", "FILE#2"))

    def run(target: Any, worker: int) -> None:
        try:
            target(worker)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(saves, n)) for n in range(8)]
    threads += [threading.Thread(target=run, args=(refused, n)) for n in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    finally:
        sys.setswitchinterval(interval)

    assert errors == []
    assert table.get("OWNER#a", "FILE#1")["refcount"] == {"N": "200"}
    for worker in range(8):
        rows = table.client.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"OWNER#a#THREAD#{worker}"}},
        )["Items"]
        assert len(rows) == 25


def test_given_an_unknown_moto_version_when_applied_then_nothing_changes_and_it_warns(monkeypatch):
    monkeypatch.setattr(moto_patches, "_applied", False)
    monkeypatch.setattr(moto_patches, "version", lambda name: "5.0.0")
    with pytest.warns(RuntimeWarning, match=r"moto 5\.0\.0"):
        assert moto_patches.apply() is False


def test_given_moto_s_server_when_it_answers_requests_then_it_does_not_list_its_own_files_each_time(
    monkeypatch,
):
    # Given: the server, and a count of directory listings of moto's own package
    import moto
    from moto.server import ThreadedMotoServer

    assert moto_patches.apply()
    package = os.path.dirname(moto.__file__)
    listings = 0
    listdir = os.listdir

    def counted(path: Any = ".") -> list[str]:
        nonlocal listings
        listings += path == package
        return listdir(path)

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    monkeypatch.setattr(os, "listdir", counted)
    try:
        host, port = server.get_host_and_port()
        client = boto3.client("dynamodb", region_name=REGION, endpoint_url=f"http://{host}:{port}")
        # When
        for _ in range(5):
            client.list_tables()
    finally:
        server.stop()
    # Then
    assert listings == 0
