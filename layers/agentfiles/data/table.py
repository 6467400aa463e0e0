"""The one way to read and write a row of the table.

Callers say what they want, with plain Python values and attribute names:

- `get(key)`: one row, or None; `batch_get(keys)`: many, in as few calls as allowed;
- `put(row, when=...)`: write a whole row;
- `update(key, set=..., add=..., remove=..., when=..., returns=...)`: change attributes;
- `delete(key, when=...)`; `delete_many(keys)`: unconditional deletes, batched;
- `transact([Put(...), Update(...), Delete(...)])`: all or nothing;
- `query(...)`, `query_page(...)`, `index_page(...)`: a page of a partition or of a
  sparse index.

Here, and only here: values are serialized, every attribute name is escaped
(`#name`), a condition that did not hold becomes `ConditionFailed` (with the row as it
was), a refused transaction `TransactionCancelled` (with a reason per item), a write
that meets another transaction is retried with jitter before it becomes `Contention`,
and a store that does not answer becomes `Unavailable`.

Conditions are written as DynamoDB writes them, with `#name` for attribute names and
`:name` for values: `when=cond("#status = :ready", ready="ready")`.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import json
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal, TypeVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import BaseModel

from agentfiles.data import clients
from agentfiles.data.errors import (
    BadCursor,
    CancellationReason,
    ConditionFailed,
    Contention,
    Fenced,
    TransactionCancelled,
    Unavailable,
)
from agentfiles.data.keys import Key
from agentfiles.settings import get_settings
from agentfiles.topology import PARTITION_KEY, SORT_KEY, IndexSpec

Row = dict[str, Any]
M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

# A write that meets an in-flight transaction on its item is refused outright
# (botocore does not retry it); so many tries, with jittered waits, before giving up.
CONFLICT_ATTEMPTS = 4
CONFLICT_BACKOFF_S = 0.02
# Errors that mean the store is not answering now, after botocore's own retries.
_UNAVAILABLE = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
}
BATCH_GET_MAX = 100
BATCH_WRITE_MAX = 25


# ---- values --------------------------------------------------------------------


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


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_to_dynamo(v)) for k, v in values.items() if v is not None}


def to_value(value: Any) -> dict[str, Any]:
    return _serializer.serialize(_to_dynamo(value))


def from_item(item: Mapping[str, Any]) -> Row:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def table_name() -> str:
    return get_settings().table_name


# ---- rows and records ----------------------------------------------------------


def row_of(record: BaseModel, key: Key, **extra: Any) -> Row:
    """A record as a row: its camelCase fields, its key, and row-only attributes."""
    row = record.model_dump(mode="json", by_alias=True, exclude_none=True)
    return row | {PARTITION_KEY: key.pk, SORT_KEY: key.sk} | {k: v for k, v in extra.items() if v is not None}


def record_of(model: type[M], row: Row) -> M:
    """A row as its record; keys and row-only attributes (markers, leases) are not
    fields of the record and are left behind."""
    return model.model_validate(row)


# ---- conditions and writes -----------------------------------------------------

_NAME = re.compile(r"#(\w+)")


@dataclass(frozen=True)
class Condition:
    """A condition expression (`#name` for names, `:name` for values) and its values."""

    expression: str
    values: Mapping[str, Any] = field(default_factory=dict)


def cond(expression: str, **values: Any) -> Condition:
    return Condition(expression, values)


@dataclass
class _Expression:
    """Accumulates the names and values of one request's expressions."""

    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)

    def name(self, attribute: str) -> str:
        self.names[f"#{attribute}"] = attribute
        return f"#{attribute}"

    def value(self, placeholder: str, value: Any) -> str:
        self.values[f":{placeholder}"] = to_value(value)
        return f":{placeholder}"

    def condition(self, condition: Condition | None) -> str | None:
        if condition is None:
            return None
        for attribute in _NAME.findall(condition.expression):
            self.name(attribute)
        for placeholder, value in condition.values.items():
            self.value(placeholder, value)
        return condition.expression

    def params(self, **expressions: str | None) -> dict[str, Any]:
        params: dict[str, Any] = {k: v for k, v in expressions.items() if v}
        if self.names:
            params["ExpressionAttributeNames"] = self.names
        if self.values:
            params["ExpressionAttributeValues"] = self.values
        return params


def _params(target: dict[str, Any], expression: _Expression, **expressions: str | None) -> dict[str, Any]:
    """A request's parameters: the table, its target (`Item` or `Key`), expressions."""
    return {"TableName": table_name(), **target, **expression.params(**expressions)}


@dataclass(frozen=True)
class Put:
    row: Row
    when: Condition | None = None

    def params(self) -> dict[str, Any]:
        expression = _Expression()
        condition = expression.condition(self.when)
        return _params({"Item": to_item(self.row)}, expression, ConditionExpression=condition)

    def transact_item(self) -> dict[str, Any]:
        return {"Put": self.params()}


@dataclass(frozen=True)
class Update:
    """SET attributes to values, ADD numbers to counters (a missing counter counts
    from zero) or strings to string sets (a missing set starts empty), REMOVE
    attributes; only `when` the condition holds."""

    key: Key
    set: Mapping[str, Any] = field(default_factory=dict)
    add: Mapping[str, int | float | frozenset[str] | set[str]] = field(default_factory=dict)
    remove: Sequence[str] = ()
    when: Condition | None = None
    # In a transaction: return the row as it was when the condition fails.
    old_on_failure: bool = False

    def params(self) -> dict[str, Any]:
        expression = _Expression()
        clauses = []
        if self.set:
            pairs = [f"{expression.name(a)} = {expression.value(f'set_{a}', v)}" for a, v in self.set.items()]
            clauses.append("SET " + ", ".join(pairs))
        if self.add:
            pairs = [f"{expression.name(a)} {expression.value(f'add_{a}', n)}" for a, n in self.add.items()]
            clauses.append("ADD " + ", ".join(pairs))
        if self.remove:
            clauses.append("REMOVE " + ", ".join(expression.name(a) for a in self.remove))
        condition = expression.condition(self.when)
        return _params(
            {"Key": self.key.dynamo},
            expression,
            UpdateExpression=" ".join(clauses),
            ConditionExpression=condition,
        )

    def transact_item(self) -> dict[str, Any]:
        params = self.params()
        if self.old_on_failure:
            params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        return {"Update": params}


@dataclass(frozen=True)
class Delete:
    key: Key
    when: Condition | None = None

    def params(self) -> dict[str, Any]:
        expression = _Expression()
        condition = expression.condition(self.when)
        return _params({"Key": self.key.dynamo}, expression, ConditionExpression=condition)

    def transact_item(self) -> dict[str, Any]:
        return {"Delete": self.params()}


@dataclass(frozen=True)
class Check:
    """A condition on a row the transaction does not write."""

    key: Key
    when: Condition

    def transact_item(self) -> dict[str, Any]:
        expression = _Expression()
        condition = expression.condition(self.when)
        return {
            "ConditionCheck": _params({"Key": self.key.dynamo}, expression, ConditionExpression=condition)
        }


Write = Put | Update | Delete | Check

# A condition every transaction made while it is set must also meet (one more item of
# the same call, so it costs no round trip): the API sets the caller's erasure fence for
# each write request.
_fence: contextvars.ContextVar[Check | None] = contextvars.ContextVar("fence", default=None)


@contextmanager
def fenced(check: Check) -> Iterator[None]:
    token = _fence.set(check)
    try:
        yield
    finally:
        _fence.reset(token)


def _jitter(attempt: int) -> None:
    time.sleep(random.uniform(0, CONFLICT_BACKOFF_S * 2**attempt))


def _until_processed(
    send: Callable[..., dict[str, Any]], request: dict[str, Any], leftover: str
) -> Iterator[dict[str, Any]]:
    """Each response of a batch call, sent again with what DynamoDB left unprocessed
    (`leftover`: UnprocessedItems, UnprocessedKeys), after a growing random pause,
    until nothing is left."""
    attempt = 0
    while request:
        if attempt:
            _jitter(attempt)
        response = _call(lambda pending=request: send(RequestItems=pending))
        yield response
        request = response.get(leftover) or {}
        attempt += 1


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _call(operation: Callable[[], T]) -> T:
    """One request to the table, with the error mapping every caller shares."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            return operation()
        except ClientError as error:
            code = _code(error)
            if code == "ConditionalCheckFailedException":
                old = error.response.get("Item")
                raise ConditionFailed(from_item(old) if old else None) from error
            if code == "TransactionConflictException":
                if attempt + 1 < CONFLICT_ATTEMPTS:
                    _jitter(attempt)
                    continue
                raise Contention("the item is being changed by another transaction") from error
            if code in _UNAVAILABLE:
                raise Unavailable(f"the table did not answer: {code}") from error
            raise
        except BotoCoreError as error:
            raise Unavailable(f"the table could not be reached: {error}") from error
    raise AssertionError("unreachable")


def _write(write: Write, returns: Literal["new", "old"] | None) -> Row | None:
    params = write.params()
    # A failed condition hands back the row as it was, at no extra cost.
    params["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    if returns:
        params["ReturnValues"] = "ALL_NEW" if returns == "new" else "ALL_OLD"
    client = clients.dynamodb()
    method = {Put: client.put_item, Update: client.update_item, Delete: client.delete_item}[type(write)]
    response = _call(lambda: method(**params))
    attributes = response.get("Attributes")
    return from_item(attributes) if attributes else None


def put(row: Row, *, when: Condition | None = None) -> None:
    _write(Put(row, when), None)


def put_new(row: Row) -> None:
    """Put a row that must not exist yet (its id was just made)."""
    put(row, when=cond(f"attribute_not_exists(#{PARTITION_KEY})"))


def update(
    key: Key,
    *,
    set: Mapping[str, Any] | None = None,
    add: Mapping[str, int | float | frozenset[str] | set[str]] | None = None,
    remove: Sequence[str] = (),
    when: Condition | None = None,
    returns: Literal["new", "old"] | None = None,
) -> Row | None:
    return _write(Update(key, set or {}, add or {}, tuple(remove), when), returns)


def delete(key: Key, *, when: Condition | None = None, returns: Literal["old"] | None = None) -> Row | None:
    return _write(Delete(key, when), returns)


def delete_many(keys: Iterable[Key]) -> int:
    """Delete rows that need no condition (a reply's stream), in as few BatchWriteItem
    calls as DynamoDB allows (25 each); requests it leaves unprocessed are sent again.
    Returns how many keys were sent."""
    distinct = list(dict.fromkeys(keys))
    client = clients.dynamodb()
    for start in range(0, len(distinct), BATCH_WRITE_MAX):
        chunk = distinct[start : start + BATCH_WRITE_MAX]
        request: dict[str, Any] = {table_name(): [{"DeleteRequest": {"Key": k.dynamo}} for k in chunk]}
        for _ in _until_processed(client.batch_write_item, request, "UnprocessedItems"):
            pass
    return len(distinct)


def get(key: Key, *, consistent: bool = True, attributes: Sequence[str] = ()) -> Row | None:
    params: dict[str, Any] = {"TableName": table_name(), "Key": key.dynamo, "ConsistentRead": consistent}
    if attributes:
        expression = _Expression()
        params["ProjectionExpression"] = ", ".join(expression.name(a) for a in attributes)
        params["ExpressionAttributeNames"] = expression.names
    item = _call(lambda: clients.dynamodb().get_item(**params)).get("Item")
    return from_item(item) if item else None


def batch_get(keys: Iterable[Key], *, consistent: bool = False) -> list[Row]:
    """The rows that exist among `keys`, in as few BatchGetItem calls as DynamoDB
    allows (100 keys each); keys DynamoDB leaves unprocessed are asked again."""
    distinct = list(dict.fromkeys(keys))
    client = clients.dynamodb()
    rows: list[Row] = []
    for start in range(0, len(distinct), BATCH_GET_MAX):
        request: dict[str, Any] = {
            table_name(): {
                "Keys": [k.dynamo for k in distinct[start : start + BATCH_GET_MAX]],
                "ConsistentRead": consistent,
            }
        }
        for response in _until_processed(client.batch_get_item, request, "UnprocessedKeys"):
            rows += [from_item(item) for item in response.get("Responses", {}).get(table_name(), [])]
    return rows


def transact(writes: Sequence[Write]) -> None:
    """All of `writes` or none of them. A transaction refused only because another
    one held its items is tried again (nothing of it was applied); any other refusal
    is `TransactionCancelled`, with a reason per write, in order."""
    fence = _fence.get()
    items = [write.transact_item() for write in writes]
    if fence is not None:
        items.append(fence.transact_item())
    params: dict[str, Any] = {"TransactItems": items}
    client = clients.dynamodb()
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            _call(lambda: client.transact_write_items(**params))
            return
        except ClientError as error:
            if _code(error) != "TransactionCanceledException":
                raise
            cancelled = TransactionCancelled(
                [
                    CancellationReason(
                        code=reason.get("Code", "None"),
                        item=from_item(reason["Item"]) if reason.get("Item") else None,
                    )
                    for reason in error.response.get("CancellationReasons", [])
                ]
            )
            fence_reason = (
                cancelled.reasons[len(writes)] if fence and len(cancelled.reasons) > len(writes) else None
            )
            if fence_reason is not None and fence_reason.code == "ConditionalCheckFailed":
                raise Fenced("a fence of this request did not hold") from error
            only_conflicts = all(r.code in ("None", "", "TransactionConflict") for r in cancelled.reasons)
            if cancelled.conflicted() and only_conflicts and attempt + 1 < CONFLICT_ATTEMPTS:
                _jitter(attempt)
                continue
            raise cancelled from error
    raise AssertionError("unreachable")


# ---- reading pages -------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    rows: list[Row]
    # Where the next page starts (DynamoDB's LastEvaluatedKey); None after the last.
    next_start: dict[str, Any] | None


def query(
    pk: str,
    *,
    prefix: str | None = None,
    between: tuple[str, str] | None = None,
    limit: int | None = None,
    newest_first: bool = False,
    consistent: bool = False,
    only: Condition | None = None,
    start: dict[str, Any] | None = None,
) -> Page:
    """One page of a partition, optionally of the sort keys that begin with `prefix`
    or lie `between` two; `only` filters what the page returns."""
    expression = _Expression()
    key_condition = f"{expression.name(PARTITION_KEY)} = {expression.value('pk', pk)}"
    if prefix is not None:
        key_condition += (
            f" AND begins_with({expression.name(SORT_KEY)}, {expression.value('prefix', prefix)})"
        )
    if between is not None:
        low, high = (expression.value("low", between[0]), expression.value("high", between[1]))
        key_condition += f" AND {expression.name(SORT_KEY)} BETWEEN {low} AND {high}"
    params: dict[str, Any] = {
        "TableName": table_name(),
        "ScanIndexForward": not newest_first,
        "ConsistentRead": consistent,
        **expression.params(
            KeyConditionExpression=key_condition, FilterExpression=expression.condition(only)
        ),
    }
    if limit:
        params["Limit"] = limit
    if start:
        params["ExclusiveStartKey"] = start
    response = _call(lambda: clients.dynamodb().query(**params))
    return Page([from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey"))


def encode_cursor(last_key: dict[str, Any] | None) -> str | None:
    """Only the sort key goes into a cursor: the partition is fixed by the query, so
    a forged cursor can never reach another owner's rows."""
    if not last_key:
        return None
    payload = json.dumps({"sk": last_key[SORT_KEY]["S"]}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_cursor(cursor: str | None, pk: str, sk_prefix: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        sk = json.loads(base64.urlsafe_b64decode(padded))["sk"]
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error) as error:
        # RecursionError: a forged cursor nested past the JSON decoder's limit.
        raise BadCursor("cursor is not one this API issued") from error
    if not isinstance(sk, str) or not sk.startswith(sk_prefix):
        raise BadCursor("cursor is not one this API issued")
    return Key(pk, sk).dynamo


def query_page(
    pk: str, sk_prefix: str, limit: int, cursor: str | None, *, only: Condition | None = None
) -> tuple[list[Row], str | None]:
    """One page of a partition's rows of one kind, newest first (ids are ULIDs), with
    an opaque cursor for the next page."""
    page = query(
        pk,
        prefix=sk_prefix,
        limit=limit,
        newest_first=True,
        only=only,
        start=decode_cursor(cursor, pk, sk_prefix),
    )
    return page.rows, encode_cursor(page.next_start)


def index_page(index: IndexSpec, shard: str, up_to: int, limit: int, start: dict[str, Any] | None) -> Page:
    """One page of a sparse, sharded index: the shard's entries whose sort key is at
    most `up_to`, oldest first, and where the next page starts."""
    expression = _Expression()
    key_condition = (
        f"{expression.name(index.partition_key)} = {expression.value('shard', shard)} AND "
        f"{expression.name(index.sort_key)} <= {expression.value('upto', up_to)}"
    )
    params: dict[str, Any] = {
        "TableName": table_name(),
        "IndexName": index.name,
        "Limit": limit,
        **expression.params(KeyConditionExpression=key_condition),
    }
    if start:
        params["ExclusiveStartKey"] = start
    response = _call(lambda: clients.dynamodb().query(**params))
    return Page([from_item(item) for item in response.get("Items", [])], response.get("LastEvaluatedKey"))
