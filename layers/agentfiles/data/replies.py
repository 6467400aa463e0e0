"""The assistant reply's row as generation moves it along.

pending ──take_lease──▶ streaming ──finish──▶ success
   ▲                        │ └────fail────▶ failed
   └────release_lease───────┘ (a retryable error: back to pending for the next try)

Every write after the lease is conditioned on holding it (`leaseId`), so a second
delivery or a second worker can never write into a reply another one owns, and a
deleted reply stops its writer.
"""

from __future__ import annotations

from typing import Any

from agentfiles.data import clients, keys, refcounts
from agentfiles.data.messages import message_record
from agentfiles.data.table import TransactionCancelled, from_item, table_name, to_value, transact
from agentfiles.models.common import iso_from_ms
from agentfiles.models.messages import MessageError, MessageRecord, Part, Usage


def _key(owner: str, thread_id: str, reply_id: str) -> dict[str, Any]:
    return keys.message_key(owner, thread_id, reply_id)


def take_lease(
    owner: str, thread_id: str, reply_id: str, lease_id: str, now_ms: int, lease_until_ms: int
) -> MessageRecord | None:
    """pending → streaming under this lease, or take over a streaming reply whose lease
    ran out. Returns the reply, or None when it is someone else's, ended, or gone."""
    client = clients.dynamodb()
    try:
        response = client.update_item(
            TableName=table_name(),
            Key=_key(owner, thread_id, reply_id),
            UpdateExpression="SET #status = :streaming, leaseId = :lease, leaseUntil = :until, "
            "sweepAt = :until, updatedAt = :iso",
            ConditionExpression="attribute_exists(pk) AND (#status = :pending OR "
            "(#status = :streaming AND leaseUntil < :now))",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":streaming": to_value("streaming"),
                ":pending": to_value("pending"),
                ":lease": to_value(lease_id),
                ":until": to_value(lease_until_ms),
                ":now": to_value(now_ms),
                ":iso": to_value(iso_from_ms(now_ms)),
            },
            ReturnValues="ALL_NEW",
        )
    except client.exceptions.ConditionalCheckFailedException:
        return None
    return message_record(from_item(response["Attributes"]))


def read(owner: str, thread_id: str, reply_id: str) -> dict[str, Any] | None:
    """The raw row, lease attributes included."""
    response = clients.dynamodb().get_item(
        TableName=table_name(), Key=_key(owner, thread_id, reply_id), ConsistentRead=True
    )
    item = response.get("Item")
    return from_item(item) if item else None


def _update(
    owner: str, thread_id: str, reply_id: str, lease_id: str, expression: str, names: dict, values: dict
) -> bool:
    """One update of the reply, only while this lease holds it."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(),
        "Key": _key(owner, thread_id, reply_id),
        "UpdateExpression": expression,
        "ConditionExpression": "leaseId = :lease",
        "ExpressionAttributeValues": {":lease": to_value(lease_id), **values},
    }
    if names:
        kwargs["ExpressionAttributeNames"] = names
    client = clients.dynamodb()
    try:
        client.update_item(**kwargs)
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def write_progress(owner: str, thread_id: str, reply_id: str, lease_id: str, text: str, now_ms: int) -> bool:
    """The text so far. False when the lease is lost (taken over, or the reply deleted)."""
    return _update(
        owner,
        thread_id,
        reply_id,
        lease_id,
        "SET content = :content, updatedAt = :iso",
        {},
        {":content": to_value([{"type": "text", "text": text}]), ":iso": to_value(iso_from_ms(now_ms))},
    )


_ENDED = "REMOVE leaseId, leaseUntil, sweepShard, sweepAt"


def finish(
    owner: str,
    thread_id: str,
    reply_id: str,
    lease_id: str,
    *,
    text: str,
    model: str,
    usage: Usage | None,
    finish_reason: str | None,
    now_ms: int,
) -> bool:
    values: dict[str, Any] = {
        ":content": to_value([{"type": "text", "text": text}] if text else []),
        ":success": to_value("success"),
        ":model": to_value(model),
        ":iso": to_value(iso_from_ms(now_ms)),
        ":reason": to_value(finish_reason or "stop"),
    }
    expression = (
        "SET content = :content, #status = :success, model = :model, updatedAt = :iso, finishReason = :reason"
    )
    if usage:
        expression += ", #usage = :usage"
        values[":usage"] = to_value(usage.model_dump(by_alias=True))
    names = {"#status": "status", **({"#usage": "usage"} if usage else {})}
    return _update(owner, thread_id, reply_id, lease_id, f"{expression} {_ENDED}", names, values)


def finish_with_file(
    owner: str,
    thread_id: str,
    reply_id: str,
    lease_id: str,
    *,
    content: list[Part],
    file_id: str,
    model: str,
    now_ms: int,
) -> bool:
    """ONE transaction: the reply gets its picture and holds one reference on it."""
    update = {
        "Update": {
            "TableName": table_name(),
            "Key": _key(owner, thread_id, reply_id),
            "UpdateExpression": "SET content = :content, fileIds = :ids, #status = :success, model = :model, "
            f"updatedAt = :iso, finishReason = :reason {_ENDED}",
            "ConditionExpression": "leaseId = :lease",
            "ExpressionAttributeNames": {"#status": "status"},
            "ExpressionAttributeValues": {
                ":content": to_value(
                    [p.model_dump(mode="json", by_alias=True, exclude_none=True) for p in content]
                ),
                ":ids": to_value([file_id]),
                ":success": to_value("success"),
                ":model": to_value(model),
                ":iso": to_value(iso_from_ms(now_ms)),
                ":reason": to_value("stop"),
                ":lease": to_value(lease_id),
            },
        }
    }
    try:
        transact([update, *refcounts.take(owner, [file_id], now_ms)])
    except TransactionCancelled as cancelled:
        if cancelled.failed(0):
            return False
        raise
    return True


def fail(owner: str, thread_id: str, reply_id: str, lease_id: str, error: MessageError, now_ms: int) -> bool:
    return _update(
        owner,
        thread_id,
        reply_id,
        lease_id,
        f"SET #status = :failed, #error = :error, updatedAt = :iso {_ENDED}",
        {"#status": "status", "#error": "error"},
        {
            ":failed": to_value("failed"),
            ":error": to_value(error.dump()),
            ":iso": to_value(iso_from_ms(now_ms)),
        },
    )


def release_lease(
    owner: str, thread_id: str, reply_id: str, lease_id: str, sweep_at_ms: int, now_ms: int
) -> bool:
    """Back to pending, text cleared, for the next delivery of the job to start over."""
    return _update(
        owner,
        thread_id,
        reply_id,
        lease_id,
        "SET #status = :pending, content = :empty, sweepAt = :sweep, updatedAt = :iso "
        "REMOVE leaseId, leaseUntil",
        {"#status": "status"},
        {
            ":pending": to_value("pending"),
            ":empty": to_value([]),
            ":sweep": to_value(sweep_at_ms),
            ":iso": to_value(iso_from_ms(now_ms)),
        },
    )
