"""Live replies: write units per reply vs the whole-text rewrite; requests with push vs polling; latency.

- Write units follow DynamoDB's billing (1 per started KiB of each item written, the
  larger of the item before and after; 2x in a transaction), metered on every write the
  real code makes on moto, for a fixed flush sequence. The old design (the reply row
  rewritten with the whole text at each flush) is replayed from the same sequence on
  the same table, through the same meter.
- Requests and latency are measured against `agentfiles serve` (a local stack of its
  own) with the built-in model pacing its chunks: `agentfiles ask`'s client following a
  reply over the WebSocket, then by polling; each chunk's send time (the fake model
  records it) against the arrival of the frame that carried it.
"""

from __future__ import annotations

import math
import statistics
import time
import uuid
from typing import Any

import boto3
import requests

from agentfiles.data import clients, reply_rows
from agentfiles.logic import live
from agentfiles.logic.chat import finish
from agentfiles.models.common import now_ms
from agentfiles.models.messages import MessageRef
from agentfiles_cli.client import Client
from agentfiles_local.process import StackProcess
from harness.aws import local_aws

KIB = 1024
CASES = ((32 * KIB, 80), (2 * KIB, 10), (2 * KIB, 40))
RUNS = 3
FLUSH_MS = 250

# ---- DynamoDB's item size ----------------------------------------------------------


def _value_bytes(value: dict[str, Any]) -> int:
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        digits = len(inner.strip("-").replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if kind == "B":
        return len(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in inner.items())
    if kind in ("SS", "NS", "BS"):
        return sum(_value_bytes({kind[0]: v}) for v in inner)
    raise ValueError(kind)


def item_bytes(item: dict[str, Any] | None) -> int:
    return sum(len(k.encode()) + _value_bytes(v) for k, v in (item or {}).items())


def _key_of(body: dict[str, Any]) -> dict[str, Any]:
    return body.get("Key") or {k: body["Item"][k] for k in ("pk", "sk")}


def units(item_size: int) -> int:
    return max(1, math.ceil(item_size / KIB))


class WriteMeter:
    """Write units of every PutItem, UpdateItem and TransactWriteItems the data layer's
    client sends, read from the table as moto holds it (another client, not metered)."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.units = 0
        self.writes = 0
        self._reader = boto3.session.Session().client("dynamodb", region_name="us-east-1")
        self._before: list[int] = []

    def _size(self, key: dict[str, Any]) -> int:
        return item_bytes(
            self._reader.get_item(TableName=self.table, Key=key, ConsistentRead=True).get("Item")
        )

    def before(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "PutItem":
            key = {k: params["Item"][k] for k in ("pk", "sk")}
            self._before = [max(self._size(key), item_bytes(params["Item"]))]
        elif name == "UpdateItem":
            self._before = [self._size(params["Key"])]
        elif name == "TransactWriteItems":
            self._before = [
                self._size(_key_of(next(iter(item.values())))) for item in params["TransactItems"]
            ]

    def after(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        name = model.name
        if name == "PutItem":
            self.units += units(self._before[0])
        elif name == "UpdateItem":
            self.units += units(max(self._before[0], self._size(params["Key"])))
        elif name == "TransactWriteItems":
            for before, item in zip(self._before, params["TransactItems"], strict=True):
                body = next(iter(item.values()))
                after = item_bytes(body["Item"]) if "Item" in body else self._size(body["Key"])
                self.units += 2 * units(max(before, after))
        else:
            return
        self.writes += 1

    def __enter__(self) -> WriteMeter:
        events = clients.dynamodb().meta.events
        events.register("provide-client-params.dynamodb.*", self._remember)
        events.register("before-call.dynamodb.*", self._before_call)
        events.register("after-call.dynamodb.*", self._after_call)
        return self

    def __exit__(self, *_: object) -> None:
        events = clients.dynamodb().meta.events
        events.unregister("provide-client-params.dynamodb.*", self._remember)
        events.unregister("before-call.dynamodb.*", self._before_call)
        events.unregister("after-call.dynamodb.*", self._after_call)

    def _remember(self, params: dict[str, Any], **_: Any) -> None:
        self._params = params

    def _before_call(self, model: Any, **_: Any) -> None:
        self.before(self._params, model)

    def _after_call(self, model: Any, **_: Any) -> None:
        self.after(self._params, model)


def _flushes(size: int, count: int) -> list[str]:
    words = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel")
    text = ""
    while len(text) < size:
        text += f"{words[len(text) % len(words)]} "
    text = text[:size]
    step = math.ceil(size / count)
    return [text[i : i + step] for i in range(0, size, step)]


def _reply(aws) -> MessageRef:
    thread = aws.new_thread()
    saved = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": "tell me"}).body
    aws.drain("generations")
    return MessageRef("alice", thread, saved["reply"]["id"])


def _streamed(aws, flushes: list[str]) -> int:
    """The worker's writes for one reply: the lease, a delta per flush (the last one ends
    the stream), and the reply row with the whole text, once."""
    ref = _reply(aws)
    with WriteMeter(aws.resources.table_name) as meter:
        lease = reply_rows.Lease(ref, uuid.uuid4().hex)
        taken = reply_rows.take_lease(lease, now_ms(), now_ms() + 60_000)
        writer = live.open_stream(ref, taken.generation)
        for text in flushes[:-1]:
            writer.flush(text)
        end = writer.end("success", flushes[-1], "stop")
        finish(lease, writer, end, "gpt-4o-mini", None, "stop")
    return meter.units


def _rewritten(aws, flushes: list[str]) -> int:
    """The old design on the same table: the lease, then the reply row's whole text
    rewritten at every flush, then the end."""
    ref = _reply(aws)
    key = {"pk": {"S": f"OWNER#alice#THREAD#{ref.thread_id}"}, "sk": {"S": f"MSG#{ref.message_id}"}}
    with WriteMeter(aws.resources.table_name) as meter:
        lease = reply_rows.Lease(ref, uuid.uuid4().hex)
        reply_rows.take_lease(lease, now_ms(), now_ms() + 60_000)
        client = clients.dynamodb()
        text = ""
        for piece in flushes[:-1]:
            text += piece
            client.update_item(
                TableName=aws.resources.table_name,
                Key=key,
                UpdateExpression="SET content = :c",
                ExpressionAttributeValues={
                    ":c": {"L": [{"M": {"type": {"S": "text"}, "text": {"S": text}}}]}
                },
            )
        reply_rows.finish(
            lease,
            text=text + flushes[-1],
            model="gpt-4o-mini",
            usage=None,
            finish_reason="stop",
            now_ms=now_ms(),
            last_seq=len(flushes),
        )
    return meter.units


def write_units() -> None:
    with local_aws(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR") as aws:
        for size, count in CASES:
            flushes = _flushes(size, count)
            floor = count + size / KIB
            new, old = _streamed(aws, flushes), _rewritten(aws, flushes)
            print(
                f"   {size // KIB:>2} KiB reply in {count:>2} flushes: deltas {new} write units, "
                f"{new / floor:.2f} x (flushes + KiB) (target <= 1.2); whole-text rewrite {old} units, "
                f"{old / floor:.2f} x; {old / new:.1f}x fewer"
            )


# ---- against the local stack -------------------------------------------------------


class _Counted(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append(f"{method} {url.split('?')[0]}")
        return super().request(method, url, *args, **kwargs)


def _client(stack: StackProcess, sub: str) -> tuple[Client, _Counted]:
    client = Client(stack.base_url, sub)
    counted = _Counted()
    client._http = counted
    client.token()
    return client, counted


def _fake_call(stack: StackProcess, reply_text: str) -> dict[str, Any]:
    base = stack.health["model"]["baseUrl"].removesuffix("/v1")
    calls = requests.get(f"{base}/_fake/calls", timeout=10).json()["calls"]
    return next(c for c in reversed(calls) if c.get("reply") == reply_text)


def _push_run(stack: StackProcess, prompt: str) -> tuple[int, list[float]]:
    import os
    import re

    os.environ["AGENTFILES_WEBSOCKET_URL"] = stack.health["websocketUrl"]
    client, counted = _client(stack, f"bench-{uuid.uuid4().hex[:8]}")
    thread = client.create_thread()
    arrivals: list[tuple[float, int]] = []  # when, and how much text had arrived by then
    received = 0

    def on_text(piece: str) -> None:
        nonlocal received
        received += len(piece)
        arrivals.append((time.time(), received))

    counted.sent.clear()
    live_replies = client.live(thread)
    assert live_replies is not None, "no WebSocket"
    upgrades = 1
    reply_id = client.send(thread, prompt)["reply"]["id"]
    asked = len(counted.sent)
    reply = client.follow_live(live_replies, reply_id, on_text)
    live_replies.close()
    requests_made = len(counted.sent) - asked + upgrades
    text = "".join(p["text"] for p in reply["content"])
    call = _fake_call(stack, text)
    offsets, end = [], 0
    for piece in re.findall(r"\s*\S+", text):
        end += len(piece)
        offsets.append(end)
    latencies = []
    for chunk_end, sent_at in zip(offsets, call["chunk_times"], strict=True):
        arrived = next(t for t, seen in arrivals if seen >= chunk_end)
        latencies.append(arrived - sent_at)
    return requests_made, latencies


def _poll_run(stack: StackProcess, prompt: str) -> int:
    client, counted = _client(stack, f"bench-{uuid.uuid4().hex[:8]}")
    thread = client.create_thread()
    reply_id = client.send(thread, prompt)["reply"]["id"]
    counted.sent.clear()
    client.follow(thread, reply_id)
    return len(counted.sent)


def against_the_stack() -> None:
    prompt = "tell me [[words:150]] [[delay_ms:20]]"
    stack = StackProcess.start({"STREAM_FLUSH_MS": str(FLUSH_MS)})
    try:
        _push_run(stack, "warm up [[words:5]]")
        pushed = [_push_run(stack, prompt) for _ in range(RUNS)]
        polled = [_poll_run(stack, prompt) for _ in range(RUNS)]
    finally:
        stack.stop()
    push_requests = statistics.median(n for n, _ in pushed)
    poll_requests = statistics.median(polled)
    p50 = statistics.median(statistics.median(lat) for _, lat in pushed) * 1000
    print(
        f"   HTTP requests to follow one streamed reply (150 words over ~3 s), median of {RUNS}: "
        f"push {push_requests:g} (the WebSocket upgrade + catch-ups; target <= 2), "
        f"polling {poll_requests:g}"
    )
    print(
        f"   model chunk to client frame on the local stack, p50 (median of {RUNS} runs): {p50:.0f} ms "
        f"(target <= STREAM_FLUSH_MS {FLUSH_MS} + 100 = {FLUSH_MS + 100} ms)"
    )


def run() -> None:
    write_units()
    against_the_stack()
