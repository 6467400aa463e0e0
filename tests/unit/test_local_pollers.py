"""The local event source mapping settles SQS batches as Lambda does with
ReportBatchItemFailures: successes are deleted, failures come back after the
visibility timeout and, past maxReceiveCount, land in the DLQ."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from agentfiles.topology import QueueSpec
from agentfiles_local.runtime.host import FunctionHost
from agentfiles_local.runtime.pollers import QueuePoller, failed_ids, to_record

VISIBILITY_SECONDS = 1
MAX_RECEIVES = 2


@dataclass
class Queue:
    sqs: Any
    url: str
    arn: str
    dlq_url: str

    def send(self, *bodies: str) -> list[str]:
        return [self.sqs.send_message(QueueUrl=self.url, MessageBody=body)["MessageId"] for body in bodies]

    def dead_letters(self) -> list[str]:
        messages = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
        return [message["Body"] for message in messages]


class Consumer:
    """A consumer that fails the records whose body starts with `fail` (or raises)."""

    def __init__(self) -> None:
        self.batches: list[list[dict[str, Any]]] = []
        self.raises = False

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.batches.append(event["Records"])
        if self.raises:
            raise RuntimeError("the whole batch fails")
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["body"].startswith("fail")
            ]
        }


@pytest.fixture
def queue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Queue]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq_url = sqs.create_queue(QueueName="work-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]
        url = sqs.create_queue(
            QueueName="work",
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_SECONDS),
                "RedrivePolicy": json.dumps(
                    {"deadLetterTargetArn": dlq_arn["QueueArn"], "maxReceiveCount": MAX_RECEIVES}
                ),
            },
        )["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        yield Queue(sqs, url, arn, dlq_url)


@pytest.fixture
def consumer() -> Consumer:
    return Consumer()


@pytest.fixture
def poller(queue: Queue, consumer: Consumer) -> QueuePoller:
    host = FunctionHost()
    host.add("worker", consumer)
    spec = QueueSpec("work", consumer="worker", batch_size=10)
    # A long poll longer than the visibility timeout, so a failed record is back within one poll.
    return QueuePoller(
        spec, queue_url=queue.url, queue_arn=queue.arn, sqs=queue.sqs, host=host, wait_seconds=2
    )


def test_given_a_batch_with_one_failure_when_settled_then_only_the_failure_comes_back_until_the_dlq(
    queue, consumer, poller
):
    # Given
    ok_id, fail_id = queue.send("ok", "fail")

    # When: the first delivery
    deleted = poller.poll_once()

    # Then: the consumer saw both, as real records of this queue; the success is deleted
    assert deleted == 1
    (first,) = consumer.batches
    assert [record["messageId"] for record in first] == [ok_id, fail_id]
    assert {record["eventSourceARN"] for record in first} == {queue.arn}
    assert [record["attributes"]["ApproximateReceiveCount"] for record in first] == ["1", "1"]

    # When: the failure's visibility timeout passes
    assert poller.poll_once() == 0

    # Then: only the failure came back, received for the second time
    (second,) = consumer.batches[1]
    assert (second["messageId"], second["body"]) == (fail_id, "fail")
    assert second["attributes"]["ApproximateReceiveCount"] == str(MAX_RECEIVES)

    # When: it would be received a third time, past maxReceiveCount
    deadline = time.monotonic() + 15
    while not (dead := queue.dead_letters()) and time.monotonic() < deadline:
        poller.poll_once()

    # Then: SQS moved it to the DLQ, and the consumer never saw it again
    assert dead == ["fail"]
    assert len(consumer.batches) == 2


def test_given_a_consumer_that_raises_when_settled_then_nothing_is_deleted(queue, consumer, poller):
    # Given
    queue.send("a", "b")
    consumer.raises = True
    # When
    assert poller.poll_once() == 0
    # Then: both come back for the second time, and are deleted once the consumer succeeds
    consumer.raises = False
    deadline = time.monotonic() + 15
    seen: list[dict[str, Any]] = []
    while len(seen) < 2 and time.monotonic() < deadline:
        poller.poll_once()
        seen = [record for batch in consumer.batches[1:] for record in batch]
    assert sorted(record["body"] for record in seen) == ["a", "b"]
    assert {record["attributes"]["ApproximateReceiveCount"] for record in seen} == {"2"}
    assert queue.sqs.get_queue_attributes(
        QueueUrl=queue.url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"] == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_given_an_empty_queue_when_polled_then_the_consumer_is_not_invoked(queue, consumer, poller):
    poller._wait_seconds = 0
    assert poller.poll_once() is None
    assert consumer.batches == []


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "elsewhere"}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"itemIdentifier": None}]}, {"m1", "m2"}),
        ({"batchItemFailures": [{"id": "m1"}]}, {"m1", "m2"}),
    ],
    ids=["none", "empty", "no-failures", "null-failures", "one", "unknown", "blank", "null", "bad-key"],
)
def test_given_a_partial_batch_response_when_read_then_lambdas_rules_pick_what_stays(response, expected):
    assert failed_ids(response, ["m1", "m2"]) == expected


def test_given_a_received_message_when_it_becomes_a_record_then_it_keeps_its_real_identity():
    # Given: a message as ReceiveMessage returns it
    message = {
        "MessageId": "id-1",
        "ReceiptHandle": "handle-1",
        "Body": '{"x": 1}',
        "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1700000000000", "SenderId": "me"},
        "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "job"}},
    }
    # When
    record = to_record(message, "arn:aws:sqs:us-east-1:123456789012:work")
    # Then
    assert record["messageId"] == "id-1"
    assert record["receiptHandle"] == "handle-1"
    assert record["attributes"]["ApproximateReceiveCount"] == "3"
    assert record["attributes"]["SentTimestamp"] == "1700000000000"
    assert record["attributes"]["SenderId"] == "me"
    assert record["messageAttributes"] == {
        "kind": {
            "stringValue": "job",
            "binaryValue": None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": "String",
        }
    }
    assert record["eventSource"] == "aws:sqs"
