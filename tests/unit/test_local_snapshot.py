"""`serve --data DIR` underneath: a snapshot of the table, the bucket and the queues
written from one moto and read into a fresh one, every kind of value and tag intact, restored
objects not announced to the uploads queue, and a save that fails leaving the last one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import boto3
import pytest
import requests

from agentfiles_local.provision import REGION, Resources, provision
from agentfiles_local.runtime.snapshot import TABLE_FILE, Snapshot

ITEM = {
    "pk": {"S": "OWNER#alice"},
    "sk": {"S": "FILE#1"},
    "size": {"N": "12"},
    "blob": {"B": b"\x00\xffbinary"},
    "blobs": {"BS": [b"\x01", b"\x02"]},
    "tags": {"SS": ["a", "b"]},
    "nested": {"M": {"list": {"L": [{"B": b"\x03"}, {"BOOL": True}, {"NULL": True}]}}},
}


@pytest.fixture
def moto_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        requests.post(f"{endpoint}/moto-api/reset", timeout=10)
        server.stop()


def _fresh(endpoint: str) -> Resources:
    """Everything in moto gone, then the stack's resources made again (a new run)."""
    requests.post(f"{endpoint}/moto-api/reset", timeout=10)
    return provision(boto3.session.Session(region_name=REGION), endpoint_url=endpoint)


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint)


def _items(endpoint: str, resources: Resources) -> list[dict[str, Any]]:
    return _client(endpoint, "dynamodb").scan(TableName=resources.table_name, ConsistentRead=True)["Items"]


def _bodies(endpoint: str, url: str) -> list[str]:
    got = _client(endpoint, "sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
    return sorted(message["Body"] for message in got.get("Messages", []))


def _announced(endpoint: str, resources: Resources) -> list[str]:
    """Object keys the uploads queue was told of (S3's `s3:TestEvent`, sent when the
    notification is configured, names none)."""
    bodies = _bodies(endpoint, resources.queue_urls["uploads"])
    records = [record for body in bodies for record in json.loads(body).get("Records", [])]
    return [unquote_plus(record["s3"]["object"]["key"]) for record in records]


def test_given_a_saved_stack_when_loaded_into_a_fresh_moto_then_table_bucket_and_queues_match(
    moto_endpoint: str, tmp_path: Path
) -> None:
    # Given: a stack holding an item of every kind of value, an object, and queued bodies
    resources = _fresh(moto_endpoint)
    _client(moto_endpoint, "dynamodb").put_item(TableName=resources.table_name, Item=ITEM)
    s3 = _client(moto_endpoint, "s3")
    s3.put_object(
        Bucket=resources.bucket_name,
        Key="alice/1",
        Body=b"\x89PNG bytes",
        ContentType="image/png",
        Metadata={"sha256": "abc"},
        Tagging="checked=true",
    )
    sqs = _client(moto_endpoint, "sqs")
    _bodies(moto_endpoint, resources.queue_urls["uploads"])  # the PUT's notification, read once
    sqs.purge_queue(QueueUrl=resources.queue_urls["uploads"])
    sqs.send_message(QueueUrl=resources.queue_urls["generations"], MessageBody='{"job": 1}')
    sqs.send_message(
        QueueUrl=resources.dlq_urls["generations"],
        MessageBody="not a job",
        MessageAttributes={"reason": {"DataType": "String", "StringValue": "unreadable"}},
    )
    directory = tmp_path / "data"
    saved = Snapshot(directory, resources, moto_endpoint).save()
    # When: a new run starts on the same directory
    again = _fresh(moto_endpoint)
    assert _items(moto_endpoint, again) == []
    loaded = Snapshot(directory, again, moto_endpoint).load()
    # Then: the same item, object and bodies, and no notification for the restored object
    assert saved == loaded and (loaded.items, loaded.objects, loaded.messages) == (1, 1, 2)
    assert _items(moto_endpoint, again) == [ITEM]
    got = s3.get_object(Bucket=again.bucket_name, Key="alice/1")
    assert got["Body"].read() == b"\x89PNG bytes"
    assert (got["ContentType"], got["Metadata"]) == ("image/png", {"sha256": "abc"})
    tags = s3.get_object_tagging(Bucket=again.bucket_name, Key="alice/1")["TagSet"]
    assert tags == [{"Key": "checked", "Value": "true"}]
    assert _bodies(moto_endpoint, again.queue_urls["generations"]) == ['{"job": 1}']
    parked = sqs.receive_message(
        QueueUrl=again.dlq_urls["generations"], MessageAttributeNames=["All"], WaitTimeSeconds=0
    )["Messages"]
    assert [(m["Body"], m["MessageAttributes"]["reason"]["StringValue"]) for m in parked] == [
        ("not a job", "unreadable")
    ]
    assert _announced(moto_endpoint, again) == []
    # And: the bucket still notifies the uploads queue of a new upload
    s3.put_object(Bucket=again.bucket_name, Key="files/alice/2", Body=b"new")
    assert _announced(moto_endpoint, again) == ["files/alice/2"]


def test_given_a_save_that_fails_midway_when_it_stops_then_the_last_snapshot_is_whole(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: a snapshot of one item
    resources = _fresh(moto_endpoint)
    dynamodb = _client(moto_endpoint, "dynamodb")
    dynamodb.put_item(TableName=resources.table_name, Item=ITEM)
    directory = tmp_path / "data"
    Snapshot(directory, resources, moto_endpoint).save()
    kept = (directory / TABLE_FILE).read_text()

    # When: a later save, with a second item, fails after writing the table
    def fail(*_: Any) -> int:
        raise OSError("disk full")

    second = {**ITEM, "sk": {"S": "FILE#2"}}
    dynamodb.put_item(TableName=resources.table_name, Item=second)
    monkeypatch.setattr(Snapshot, "_save_queues", fail)
    with pytest.raises(OSError, match="disk full"):
        Snapshot(directory, resources, moto_endpoint).save()
    # Then: the directory still holds the first snapshot, whole
    assert (directory / TABLE_FILE).read_text() == kept
    again = _fresh(moto_endpoint)
    assert Snapshot(directory, again, moto_endpoint).load().items == 1


def test_given_an_empty_directory_when_loaded_then_nothing_is_restored(
    moto_endpoint: str, tmp_path: Path
) -> None:
    resources = _fresh(moto_endpoint)
    counts = Snapshot(tmp_path / "never-saved", resources, moto_endpoint).load()
    assert (counts.items, counts.objects, counts.messages) == (0, 0, 0)
    assert _items(moto_endpoint, resources) == []
