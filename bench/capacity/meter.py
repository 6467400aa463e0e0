"""A meter on boto3 clients: what each request consumed, as AWS bills it.

Hooked on botocore's own events (`before-parameter-build`, `before-call`,
`after-call`) of the clients it is attached to, so the system runs unchanged. For
DynamoDB it reads the items a request touches, before and after, through a separate
client that it does not meter (on moto, in process), and prices the request with
`units`: write units on the larger of the two sizes, read units on the items a Query
page or a BatchGetItem read, index writes on the entries that enter, leave or move in
each global secondary index. A PostToConnection on API Gateway's @connections API is
one WebSocket message per started 32 KB of its data, and that data leaves AWS. Every
figure is kept per call, with the caller (a function's name, `client` for what a
browser does, `platform` for what AWS does on the account's behalf, such as the Lambda
poller's SQS calls) and a label for the step of the workload it belongs to.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from agentfiles import topology
from bench.capacity import pricing as q
from bench.capacity import units

_CONTEXT_KEY = "capacity_meter"
# Durations are the CPU time of the thread that runs the handler: the function's own
# work and moto's answers (in process, standing in for AWS's latency), not what else the
# machine runs meanwhile, nor the fake model's threads, nor waiting on them.
_clock = time.thread_time
TABLE_KEYS = (topology.PARTITION_KEY, topology.SORT_KEY)
_INDEXES = {index.name: index for index in topology.INDEXES}

_S3_PUT_CLASS = {
    "PutObject",
    "PutObjectTagging",
    "CopyObject",
    "PostObject",
    "ListObjects",
    "ListObjectsV2",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
}
_S3_FREE = {"DeleteObject", "DeleteObjects", "AbortMultipartUpload"}


@dataclass
class Call:
    """One metered request, or one modelled entry (`modelled=True`)."""

    caller: str
    label: str
    service: str
    operation: str
    usage: Counter[str] = field(default_factory=Counter)
    # (partition, "read" | "write") → request units; a table partition is its `pk`
    # value, an index partition "indexName:shardValue".
    partitions: Counter[tuple[str, str]] = field(default_factory=Counter)
    duration_s: float = 0.0  # a Lambda invocation's, in thread CPU time, without the meter's own reads
    aws_s: float = 0.0  # of which inside AWS requests (moto's answers here)
    modelled: bool = False
    turn: int = -1  # which turn of a conversation, -1 outside the turns


def _payload_size(body: Any) -> int:
    if body is None:
        return 0
    if isinstance(body, bytes | bytearray):
        return len(body)
    if isinstance(body, str):
        return len(body.encode())
    if hasattr(body, "seek") and hasattr(body, "tell"):
        position = body.tell()
        body.seek(0, 2)
        size = body.tell() - position
        body.seek(position)
        return size
    return len(body)


def _sqs_message_size(body: str, attributes: dict[str, Any] | None) -> int:
    size = len(body.encode())
    for name, value in (attributes or {}).items():
        size += len(name.encode()) + len(value.get("DataType", "").encode())
        size += len(str(value.get("StringValue", "")).encode()) + len(value.get("BinaryValue", b""))
    return size


class Meter:
    """Attach it to clients, run the workload, read `calls`."""

    def __init__(self, probe_dynamodb: Any) -> None:
        self._probe = probe_dynamodb
        self.calls: list[Call] = []
        self.caller = "client"
        self.label = ""
        self.turn = -1
        self.overhead_s = 0.0  # time the meter spent reading items for itself
        self.aws_s = 0.0  # time inside the metered requests
        # Time of invocations run inside another (a client acting while a worker runs, in
        # process): theirs, not the outer one's.
        self._nested_s = 0.0
        self._nested_aws_s = 0.0
        self._attached: list[tuple[Any, str, Callable[..., None]]] = []

    # ---- wiring ---------------------------------------------------------------

    def attach(self, client: Any, caller: str | None = None) -> None:
        """Meter every request `client` makes; `caller` fixes who pays for them
        (default: whoever is acting when the request is made)."""

        def params(params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            started = _clock()
            state = self._before(model, params, caller)
            state["sent"] = _clock()
            self.overhead_s += state["sent"] - started
            context[_CONTEXT_KEY] = state

        def after(parsed: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
            state = context.pop(_CONTEXT_KEY, None)
            if state is not None:
                started = _clock()
                self.aws_s += started - state["sent"]
                self._after(state, parsed)
                self.overhead_s += _clock() - started

        for event, handler in (("before-parameter-build.*.*", params), ("after-call.*.*", after)):
            client.meta.events.register(event, handler)
            self._attached.append((client, event, handler))

    def detach(self) -> None:
        for client, event, handler in self._attached:
            client.meta.events.unregister(event, handler)
        self._attached.clear()

    @contextmanager
    def acting(self, caller: str, label: str | None = None) -> Iterator[None]:
        """Requests made inside the block are `caller`'s, for step `label`."""
        saved = self.caller, self.label
        self.caller, self.label = caller, self.label if label is None else label
        try:
            yield
        finally:
            self.caller, self.label = saved

    @contextmanager
    def invocation(self, function: str, label: str) -> Iterator[Call]:
        """One Lambda invocation of `function`: its requests are the function's, and
        its duration (the block's thread CPU time, less the meter's own reads and any
        invocation run inside the block) is billed at the function's memory."""
        call = Call(function, label, "lambda", "Invoke", turn=self.turn)
        overhead, aws = self.overhead_s, self.aws_s
        nested, nested_aws = self._nested_s, self._nested_aws_s
        started = _clock()
        with self.acting(function, label):
            yield call
        elapsed = _clock() - started - (self.overhead_s - overhead)
        call.duration_s = elapsed - (self._nested_s - nested)
        call.aws_s = (self.aws_s - aws) - (self._nested_aws_s - nested_aws)
        self._nested_s, self._nested_aws_s = nested + elapsed, nested_aws + (self.aws_s - aws)
        memory = topology.FUNCTIONS[function].memory_mb
        call.usage[q.LAMBDA_REQUESTS] += 1
        call.usage[q.LAMBDA_GB_SECONDS] += units.gb_seconds(call.duration_s, memory)
        self.calls.append(call)

    def add(self, service: str, operation: str, usage: dict[str, float], *, modelled: bool = False) -> Call:
        """A request the meter cannot see (an S3 event notification's SendMessage, an
        API Gateway request, a download by a browser), counted by the caller."""
        call = Call(
            self.caller, self.label, service, operation, Counter(usage), modelled=modelled, turn=self.turn
        )
        self.calls.append(call)
        return call

    # ---- requests ---------------------------------------------------------------

    def _before(self, model: Any, params: dict[str, Any], caller: str | None) -> dict[str, Any]:
        service = model.service_model.service_name
        call = Call(caller or self.caller, self.label, service, model.name, turn=self.turn)
        state: dict[str, Any] = {"call": call, "params": params}
        if service == "dynamodb":
            self._dynamodb_before(state)
        elif service == "s3":
            self._s3_before(call, params)
        elif service == "apigatewaymanagementapi":
            self._connections(call, params)
        return state

    def _after(self, state: dict[str, Any], parsed: dict[str, Any]) -> None:
        call: Call = state["call"]
        if call.service == "dynamodb":
            self._dynamodb_after(state, parsed)
        elif call.service == "s3":
            self._s3_after(call, parsed)
        elif call.service == "sqs":
            self._sqs(call, state["params"], parsed)
        self.calls.append(call)

    # ---- S3 and SQS ---------------------------------------------------------------

    def _s3_before(self, call: Call, params: dict[str, Any]) -> None:
        if call.operation in _S3_FREE:
            call.usage[q.S3_DELETE_REQUESTS] += 1
        elif call.operation in _S3_PUT_CLASS:
            call.usage[q.S3_PUT_REQUESTS] += 1
            call.usage[q.S3_BYTES_IN] += _payload_size(params.get("Body"))
        else:
            call.usage[q.S3_GET_REQUESTS] += 1

    def _s3_after(self, call: Call, parsed: dict[str, Any]) -> None:
        if call.operation == "GetObject":
            call.usage[q.S3_BYTES_OUT] += int(parsed.get("ContentLength") or 0)

    def _connections(self, call: Call, params: dict[str, Any]) -> None:
        """@connections: a frame pushed to a client is a WebSocket message sent (per started
        32 KB) and bytes out of AWS; reading or closing a connection is neither."""
        if call.operation == "PostToConnection":
            size = _payload_size(params.get("Data"))
            call.usage[q.WEBSOCKET_MESSAGES] += units.chunks(size, units.WEBSOCKET_MESSAGE_CHUNK_BYTES)
            call.usage[q.TRANSFER_OUT_BYTES] += size

    def _sqs(self, call: Call, params: dict[str, Any], parsed: dict[str, Any]) -> None:
        op = call.operation
        if op == "SendMessage":
            size = _sqs_message_size(params["MessageBody"], params.get("MessageAttributes"))
        elif op == "SendMessageBatch":
            size = sum(
                _sqs_message_size(e["MessageBody"], e.get("MessageAttributes")) for e in params["Entries"]
            )
        elif op == "ReceiveMessage":
            size = sum(
                _sqs_message_size(m.get("Body", ""), m.get("MessageAttributes"))
                for m in parsed.get("Messages", [])
            )
        else:
            size = 0  # deletes, visibility changes, queue attributes: one request each
        call.usage[q.SQS_REQUESTS] += units.chunks(size, units.SQS_REQUEST_CHUNK_BYTES)

    # ---- DynamoDB -----------------------------------------------------------------

    def _get(self, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        return self._probe.get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")

    @staticmethod
    def _key(body: dict[str, Any]) -> dict[str, Any]:
        if "Key" in body:
            return body["Key"]
        return {name: body["Item"][name] for name in TABLE_KEYS}

    def _dynamodb_before(self, state: dict[str, Any]) -> None:
        call: Call = state["call"]
        params = state["params"]
        op = call.operation
        if op in ("PutItem", "UpdateItem", "DeleteItem"):
            table, key = params["TableName"], self._key(params)
            state["writes"] = [(op, table, key, self._get(table, key), params)]
        elif op == "TransactWriteItems":
            writes = []
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                table, key = body["TableName"], self._key(body)
                writes.append((kind, table, key, self._get(table, key), body))
            state["writes"] = writes
        elif op == "BatchWriteItem":
            writes = []
            for table, requests in params["RequestItems"].items():
                for request in requests:
                    ((kind, body),) = request.items()
                    key = self._key(body)
                    writes.append((kind.removesuffix("Request"), table, key, self._get(table, key), body))
            state["writes"] = writes
        elif op == "GetItem":
            item = self._get(params["TableName"], params["Key"])
            consistency = "strong" if params.get("ConsistentRead") else "eventual"
            read_units = units.read_units(units.item_size(item), consistency)
            self._read(call, params["Key"][topology.PARTITION_KEY]["S"], read_units)
        elif op == "BatchGetItem":
            for table, request in params["RequestItems"].items():
                consistency = "strong" if request.get("ConsistentRead") else "eventual"
                for key in request["Keys"]:
                    item = self._get(table, key)
                    read_units = units.read_units(units.item_size(item), consistency)
                    self._read(call, key[topology.PARTITION_KEY]["S"], read_units)
        elif op == "Query":
            self._query(call, params)
        elif not op.startswith(("Describe", "List")):
            # Scan, TransactGetItems, PartiQL...: the data layer does not use them today.
            raise NotImplementedError(f"the meter does not price DynamoDB {op} yet")

    @staticmethod
    def _read(call: Call, partition: str, read_units: float) -> None:
        call.usage[q.DDB_READ_UNITS] += read_units
        call.partitions[(partition, "read")] += read_units

    def _query(self, call: Call, params: dict[str, Any]) -> None:
        """Read again what the Query reads, without its filter or projection (DynamoDB
        bills the items it evaluates, whole, before either applies)."""
        condition = params["KeyConditionExpression"]
        names = set(re.findall(r"#\w+", condition))
        values = set(re.findall(r":\w+", condition))
        probe: dict[str, Any] = {
            "TableName": params["TableName"],
            "KeyConditionExpression": condition,
            "ExpressionAttributeValues": {
                k: v for k, v in params.get("ExpressionAttributeValues", {}).items() if k in values
            },
        }
        if names:
            probe["ExpressionAttributeNames"] = {
                k: v for k, v in params.get("ExpressionAttributeNames", {}).items() if k in names
            }
        for option in ("IndexName", "Limit", "ExclusiveStartKey", "ScanIndexForward"):
            if option in params:
                probe[option] = params[option]
        items = self._probe.query(**probe).get("Items", [])
        consistency = "strong" if params.get("ConsistentRead") else "eventual"
        read_units = units.query_read_units((units.item_size(i) for i in items), consistency)
        index = _INDEXES.get(params.get("IndexName", ""))
        key_name = index.partition_key if index else topology.PARTITION_KEY
        partition = _equality_value(condition, key_name, params)
        if index is not None:
            partition = f"{index.name}:{partition}"
        self._read(call, partition, read_units)

    def _dynamodb_after(self, state: dict[str, Any], parsed: dict[str, Any]) -> None:
        call: Call = state["call"]
        transactional = call.operation == "TransactWriteItems"
        for kind, table, key, before, body in state.get("writes", []):
            after = before if kind == "ConditionCheck" else self._get(table, key)
            size = max(units.item_size(before), units.item_size(after))
            if kind in ("Put", "PutItem") and "Item" in body:
                size = max(size, units.item_size(body["Item"]))  # a refused put is priced on its item too
            wru = units.write_units(size, transactional=transactional)
            call.usage[q.DDB_WRITE_UNITS] += wru
            call.partitions[(key[topology.PARTITION_KEY]["S"], "write")] += wru
            for index in topology.INDEXES:
                index_keys = (index.partition_key, index.sort_key)
                for entry in units.index_writes(before, after, index_keys, TABLE_KEYS):
                    index_wru = units.write_units(units.item_size(entry))
                    call.usage[q.DDB_INDEX_WRITE_UNITS] += index_wru
                    shard = next(iter(entry[index.partition_key].values()))
                    call.partitions[(f"{index.name}:{shard}", "write")] += index_wru


def _equality_value(condition: str, attribute: str, params: dict[str, Any]) -> str:
    """The value a key condition gives `attribute` (`pk = :pk`, `#shard = :shard`)."""
    names = params.get("ExpressionAttributeNames", {})
    for name, placeholder in re.findall(r"(#?\w+)\s*=\s*(:\w+)", condition):
        if names.get(name, name) == attribute:
            value = params["ExpressionAttributeValues"][placeholder]
            return str(next(iter(value.values())))
    raise ValueError(f"no equality on {attribute!r} in {condition!r}")


def partition_kind(partition: str) -> str:
    """Which of the key design's partitions a metered partition is."""
    if ":" in partition and partition.split(":", 1)[0] in _INDEXES:
        return partition.split(":", 1)[0]
    if "#THREAD#" in partition:
        return "thread"
    if partition.startswith("OWNER#"):
        return "owner"
    return "other"
