"""Thin helpers over the DynamoDB client: item codecs, transactions, cursors."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from agentfiles.data import clients
from agentfiles.errors import BadRequest
from agentfiles.settings import get_settings
from agentfiles.topology import IndexSpec

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list | set):
        return [_from_dynamo(v) for v in value]
    return value


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in values.items() if v is not None}


def to_value(value: Any) -> dict[str, Any]:
    return _serializer.serialize(_to_dynamo(value))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def table_name() -> str:
    return get_settings().table_name


@dataclass
class CancellationReason:
    code: str
    item: dict[str, Any] | None = None


@dataclass
class TransactionCancelled(Exception):
    """A transaction that DynamoDB refused; `reasons` line up with the items sent."""

    reasons: list[CancellationReason] = field(default_factory=list)

    def failed(self, index: int) -> bool:
        return index < len(self.reasons) and self.reasons[index].code not in ("None", "")

    def conflicted(self) -> bool:
        return any(reason.code == "TransactionConflict" for reason in self.reasons)


def transact(items: list[dict[str, Any]], token: str | None = None) -> None:
    kwargs: dict[str, Any] = {"TransactItems": items}
    if token:
        kwargs["ClientRequestToken"] = token
    client = clients.dynamodb()
    try:
        client.transact_write_items(**kwargs)
    except client.exceptions.TransactionCanceledException as error:
        reasons = [
            CancellationReason(
                code=reason.get("Code", "None"),
                item=from_item(reason["Item"]) if reason.get("Item") else None,
            )
            for reason in error.response.get("CancellationReasons", [])
        ]
        raise TransactionCancelled(reasons) from error


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """Only the sort key goes into a cursor: the partition is fixed by the query, so
    a forged cursor can never reach another owner's rows."""
    if not last_key:
        return None
    payload = json.dumps({"sk": last_key["sk"]["S"]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str | None, pk: str, sk_prefix: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sk = json.loads(base64.urlsafe_b64decode(padded))["sk"]
    except (ValueError, KeyError, TypeError, binascii.Error) as error:
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor") from error
    if not isinstance(sk, str) or not sk.startswith(sk_prefix):
        raise BadRequest("cursor is not one this API issued", code="invalid_cursor")
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def write_if(operation: str, **kwargs: Any) -> dict[str, Any] | None:
    """One conditional write (`update_item`, `delete_item` or `put_item`) on the table.
    Returns DynamoDB's response, or None when the condition did not hold: for the
    callers that is an answer (the row moved on, or is gone), not an error."""
    client = clients.dynamodb()
    try:
        return getattr(client, operation)(TableName=table_name(), **kwargs)
    except client.exceptions.ConditionalCheckFailedException:
        return None


def query_page(
    pk: str,
    sk_prefix: str,
    limit: int,
    cursor: str | None,
    *,
    only_status: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a partition's rows of one kind, newest first (ids are ULIDs), with
    an opaque cursor for the next page."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(),
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
        "ExpressionAttributeValues": {":pk": to_value(pk), ":prefix": to_value(sk_prefix)},
        "ScanIndexForward": False,
        "Limit": limit,
    }
    if only_status:
        kwargs["FilterExpression"] = "#status = :status"
        kwargs["ExpressionAttributeNames"] = {"#status": "status"}
        kwargs["ExpressionAttributeValues"][":status"] = to_value(only_status)
    if start := decode_cursor(cursor, pk, sk_prefix):
        kwargs["ExclusiveStartKey"] = start
    response = clients.dynamodb().query(**kwargs)
    return [from_item(i) for i in response.get("Items", [])], encode_cursor(response.get("LastEvaluatedKey"))


def sparse_index_page(
    index: IndexSpec, shard: str, up_to: int, limit: int, start: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """One page of a sparse, sharded index: the shard's entries whose sort key is at
    most `up_to`, oldest first, and where the next page starts."""
    kwargs: dict[str, Any] = {
        "TableName": table_name(),
        "IndexName": index.name,
        "KeyConditionExpression": "#shard = :shard AND #sort <= :upto",
        "ExpressionAttributeNames": {"#shard": index.partition_key, "#sort": index.sort_key},
        "ExpressionAttributeValues": {":shard": to_value(shard), ":upto": to_value(up_to)},
        "Limit": limit,
    }
    if start:
        kwargs["ExclusiveStartKey"] = start
    response = clients.dynamodb().query(**kwargs)
    return [from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey")
