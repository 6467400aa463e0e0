"""A single-item write that meets an in-flight transaction on its item is refused by
DynamoDB with TransactionConflictException, which botocore does not retry. The data
layer retries it with jitter; when the conflict outlasts the retries, the caller gets
a typed, retryable 409, never a 500."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from agentfiles.data import clients, table
from harness import samples


@dataclass
class _Http:
    status_code: int = 400
    headers: dict | None = None


class Conflicts:
    """Answers the first `times` calls of one DynamoDB operation as a conflicting
    transaction would, and lets the rest through to moto."""

    def __init__(self, operation: str, times: int) -> None:
        self.operation, self.left, self.seen = operation, times, 0

    def __call__(self, **kwargs):
        self.seen += 1
        if self.left <= 0:
            return None
        self.left -= 1
        error = {"Code": "TransactionConflictException", "Message": "Transaction is ongoing for the item"}
        return _Http(headers={}), {"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}


@pytest.fixture
def conflicts(aws, monkeypatch):
    monkeypatch.setattr(table, "CONFLICT_BACKOFF_S", 0.0)
    registered: list[Conflicts] = []

    def arrange(operation: str, times: int) -> Conflicts:
        hook = Conflicts(operation, times)
        clients.dynamodb().meta.events.register(f"before-call.dynamodb.{operation}", hook)
        registered.append(hook)
        return hook

    yield arrange
    for hook in registered:
        clients.dynamodb().meta.events.unregister(f"before-call.dynamodb.{hook.operation}", hook)


def test_a_dedup_touch_that_meets_a_transaction_is_retried_and_succeeds(aws, conflicts):
    # Given a ready file, and its row in a transaction for the next two tries
    file = aws.small_file(samples.png(), "image/png")
    hook = conflicts("UpdateItem", times=2)
    # When the same content is registered again (a dedup hit touches the row)
    reply = aws.register(samples.png(), "image/png", filename="again.png")
    # Then the touch was tried three times and the dedup answer came back
    assert reply.status == 200 and reply.body["file"]["id"] == file["id"]
    assert hook.seen == 3


def test_a_conflict_that_outlasts_the_retries_is_a_typed_retryable_409(aws, conflicts):
    # Given a ready file whose row stays in transactions
    aws.small_file(samples.png(), "image/png")
    hook = conflicts("UpdateItem", times=100)
    # When the same content is registered again
    reply = aws.register(samples.png(), "image/png", filename="again.png")
    # Then the answer says to retry, in the error envelope
    assert reply.status == 409
    assert reply.body["error"]["code"] == "conflict"
    assert hook.seen == table.CONFLICT_ATTEMPTS


def test_a_transaction_refused_only_for_a_conflict_is_tried_again(aws, conflicts):
    # Given a thread, and the save's transaction refused once for a conflict
    thread = aws.new_thread()
    first = {"done": False}

    def refuse_once(**kwargs):
        if first["done"]:
            return None
        first["done"] = True
        reasons = [{"Code": "None"}, {"Code": "TransactionConflict", "Message": "conflict"}]
        error = {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"}
        return _Http(headers={}), {"Error": error, "CancellationReasons": reasons}

    clients.dynamodb().meta.events.register("before-call.dynamodb.TransactWriteItems", refuse_once)
    try:
        # When a message is saved
        reply = aws.call_api(
            "POST", f"/threads/{thread}/messages", json_body={"content": "hi", "generate": False}
        )
    finally:
        clients.dynamodb().meta.events.unregister("before-call.dynamodb.TransactWriteItems", refuse_once)
    # Then it is saved
    assert reply.status == 201, reply.body
    listed = aws.call_api("GET", f"/threads/{thread}/messages").body["items"]
    assert [m["id"] for m in listed] == [reply.body["message"]["id"]]
