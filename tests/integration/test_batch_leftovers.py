"""DynamoDB may leave part of a batch unprocessed (throttling, size limits) and says
which part in `UnprocessedKeys` / `UnprocessedItems`. The data layer sends exactly
that part again until nothing is left, so a batch read returns every row and a
batch delete removes every key."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentfiles.data import clients, table
from agentfiles.data.keys import Key


class LeavesSomeUnprocessed:
    """On the first response of one batch operation, moves the last `count` results
    into its leftover field, as DynamoDB does when it processes part of a batch; every
    request is recorded."""

    def __init__(self, operation: str, count: int) -> None:
        self.operation, self.count = operation, count
        self.requests: list[dict[str, Any]] = []

    def before(self, params: dict[str, Any], **_: Any) -> None:
        self.requests.append(json.loads(params["body"]))

    def after(self, parsed: dict[str, Any], **_: Any) -> None:
        if len(self.requests) > 1:
            return
        name = table.table_name()
        if self.operation == "BatchGetItem":
            found = parsed["Responses"][name]
            kept, left = found[: -self.count], found[-self.count :]
            parsed["Responses"][name] = kept
            keys = [{"pk": item["pk"], "sk": item["sk"]} for item in left]
            parsed["UnprocessedKeys"] = {name: {"Keys": keys, "ConsistentRead": False}}
        else:
            sent = self.requests[0]["RequestItems"][name]
            parsed["UnprocessedItems"] = {name: sent[-self.count :]}


@pytest.fixture
def leftovers(aws, monkeypatch):
    monkeypatch.setattr(table, "CONFLICT_BACKOFF_S", 0.0)
    events = clients.dynamodb().meta.events
    hooks: list[LeavesSomeUnprocessed] = []

    def arrange(operation: str, count: int) -> LeavesSomeUnprocessed:
        hook = LeavesSomeUnprocessed(operation, count)
        events.register(f"before-call.dynamodb.{operation}", hook.before)
        events.register(f"after-call.dynamodb.{operation}", hook.after)
        hooks.append(hook)
        return hook

    yield arrange
    for hook in hooks:
        events.unregister(f"before-call.dynamodb.{hook.operation}", hook.before)
        events.unregister(f"after-call.dynamodb.{hook.operation}", hook.after)


def _rows(count: int) -> list[Key]:
    keys = [Key("OWNER#batch", f"ROW#{n:02d}") for n in range(count)]
    for key in keys:
        table.put({"pk": key.pk, "sk": key.sk, "n": 1})
    return keys


def test_a_batch_read_asks_again_for_the_keys_left_unprocessed_and_returns_every_row(leftovers):
    # Given 5 rows, and DynamoDB leaving 2 of them unprocessed on the first call
    keys = _rows(5)
    hook = leftovers("BatchGetItem", 2)

    # When
    rows = table.batch_get(keys)

    # Then every row came back, the second call asking for the 2 left over only
    assert sorted(row["sk"] for row in rows) == [key.sk for key in keys]
    assert len(hook.requests) == 2
    assert len(hook.requests[1]["RequestItems"][table.table_name()]["Keys"]) == 2


def test_a_batch_delete_sends_again_the_requests_left_unprocessed(leftovers):
    # Given 5 rows, and DynamoDB leaving 3 deletes unprocessed on the first call
    keys = _rows(5)
    hook = leftovers("BatchWriteItem", 3)

    # When
    sent = table.delete_many(keys)

    # Then the 3 were sent again, alone, and no row is left
    assert sent == 5
    assert len(hook.requests) == 2
    assert hook.requests[1]["RequestItems"] == {
        table.table_name(): hook.requests[0]["RequestItems"][table.table_name()][-3:]
    }
    assert table.batch_get(keys) == []
