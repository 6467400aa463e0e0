"""Infrastructure cost per 1,000 conversations, polling vs push, from what each operation consumed.

The conversation runs for real, in process: the functions' own handlers on moto with
the system's resources (`harness/aws.py`), the built-in fake model answering the
generate worker over loopback HTTP. A meter on the clients (`bench/capacity/meter.py`)
records what every request consumed as AWS bills it: DynamoDB request units (item
sizes read before and after each write, transactions doubled, index writes, Query
pages rounded once), S3 requests and bytes, SQS requests per 64 KiB, Lambda
invocations and their measured duration times the function's memory, API Gateway
requests and WebSocket messages, and the bytes that leave AWS. A dated price table
(`bench/capacity/pricing.py`) turns it into dollars.

What is measured and what is modelled:

- measured: every request of the conversation (uploads, checks, saves, the generate
  worker's delta rows and its look-ups of the thread's subscribers, the web page's
  reads), the cost of one poll of the thread, sampled as each reply starts and as it
  ends, and the whole of push: a page holding a WebSocket on the thread (the `$connect`
  authorizer and the `websocket` function invoked with API Gateway's events for connect,
  subscribe and disconnect), every frame the functions push through the @connections
  API (moto's, in process: each PostToConnection the code makes is metered), and a
  dropped connection in the middle of a reply, resumed by a catch-up read of what was
  missed (`GET …/stream?after=N`);
- modelled, from the workload: how many polls a watching page makes (one per
  `poll_interval_s` while a reply streams), how long the push page stays connected
  (connection-minutes: the conversation's length), the generate function's wait on the
  model (Lambda bills the stream time; the meter counts each invocation's thread CPU
  time, and the fake model streams at `time_scale` of real time with STREAM_FLUSH_MS
  scaled alike; the worker still flushes less often than in real time, as each flush's
  requests take moto's time against the shorter interval), the model's tokens.

Configure the workload with CAPACITY_WORKLOAD (inline JSON or a file of `Workload`
fields) and the prices with CAPACITY_PRICES.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import random
import statistics
import time
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agentfiles import topology
from bench.capacity import pricing as q
from bench.capacity import units
from bench.capacity.meter import Call, Meter

PAGE_LIMIT = "100"  # what the web page asks for when it reads a thread
OWNER = "capacity-user"


class Workload(BaseModel):
    """One conversation, as a person has it in the web page."""

    model_config = ConfigDict(extra="forbid")

    turns: int = Field(10, ge=1)
    images: int = 2  # attached to the first prompt
    image_width: int = 1024
    image_height: int = 768
    pdfs: int = 1  # attached to the first prompt
    pdf_pages: int = 3
    prompt_bytes: int = 1024
    reply_bytes: int = 4096
    stream_seconds: float = Field(15.0, gt=0)
    think_seconds: float = 30.0  # between a reply's end and the next prompt
    watchers: int = Field(1, ge=1)  # clients watching the thread
    poll_interval_s: float = Field(
        0.4, gt=0
    )  # the web page re-reads the thread this often while a reply streams
    stream_flush_ms: int = Field(250, ge=1)
    # push: dropped connections per conversation and watcher, one in the middle of each of
    # the last replies, each resumed by a catch-up read of the deltas written meanwhile
    reconnects: int = Field(1, ge=0)
    reconnect_gap_s: float = Field(3.0, ge=0)  # push: how long a dropped page is away
    image_views: int = 1  # downloads of each image by the watching client
    time_scale: float = Field(0.1, gt=0, le=1)  # the model streams at this fraction of real time in the bench
    # Tokens, for the model's share (stated estimates, not measured):
    text_bytes_per_token: float = 4.0
    image_base_tokens: int = 2833  # gpt-4o-mini, per image at high detail
    image_tile_tokens: int = 5667  # gpt-4o-mini, per 512 px tile
    pdf_page_text_tokens: int = 500
    pdf_page_image_tiles: int = 4  # each PDF page also reaches the model as a picture

    @model_validator(mode="after")
    def _reconnects_fit(self) -> Workload:
        if self.reconnects > self.turns:
            raise ValueError("reconnects: at most one per turn")
        return self

    @property
    def conversation_seconds(self) -> float:
        return self.turns * (self.stream_seconds + self.think_seconds)

    @property
    def flushes_per_reply(self) -> float:
        """Flushes of a reply if the worker kept to STREAM_FLUSH_MS exactly."""
        return self.stream_seconds * 1000 / self.stream_flush_ms

    @property
    def polls_per_reply(self) -> int:
        """Reads of the thread while one reply streams, per watching page: one every
        interval, and the last that sees the reply ended."""
        return math.floor(self.stream_seconds / self.poll_interval_s) + 1

    def image_tokens(self, width: int, height: int) -> int:
        """OpenAI's high-detail count: fit in 2048 px, shortest side to 768 px, 512 px tiles."""
        scale = min(1.0, 2048 / max(width, height))
        width, height = width * scale, height * scale
        scale = min(1.0, 768 / min(width, height))
        width, height = width * scale, height * scale
        tiles = math.ceil(width / 512) * math.ceil(height / 512)
        return self.image_base_tokens + self.image_tile_tokens * tiles


def load_workload(environ: Mapping[str, str] = os.environ) -> Workload:
    text = environ.get("CAPACITY_WORKLOAD", "").strip()
    if not text:
        return Workload()
    return Workload.model_validate_json(text if text.startswith("{") else Path(text).read_text())


# ---- what one run measured --------------------------------------------------------


# Steps of the push page alone: a page that polls makes none of them.
PUSH_LABELS = frozenset(
    {"authorize", "connect", "subscribe", "disconnect", "delta frame", "message frame"}
    | {"catch-up read", "read message"}
)


@dataclass
class Turn:
    index: int
    reply_id: str
    reply_text: str
    deltas: int  # rows of the reply's stream (lastSeq): one per flush, and the end
    model_request_bytes: int
    input_tokens: Counter[str]  # by kind: text, image, pdf
    output_tokens: int
    poll_start: list[Call]  # one read of the thread as the reply starts
    poll_end: list[Call]  # and as it ends
    caught_up: int = 0  # deltas the push page read back after a reconnect, per watcher


@dataclass
class Measurement:
    workload: Workload
    owner: str
    thread_id: str
    calls: list[Call]
    turns: list[Turn]
    files: dict[str, int]  # media type → bytes of one file

    def base_calls(self) -> list[Call]:
        """Every request of the conversation that does not depend on how the page
        follows replies (neither the sampled polls nor the push page's)."""
        return [c for c in self.calls if c.label != "poll" and c.label not in PUSH_LABELS]

    def push_calls(self) -> list[Call]:
        return [c for c in self.calls if c.label in PUSH_LABELS]


def _prompt(turn: int, size: int) -> str:
    words = ("what", "does", "the", "attached", "report", "say", "about", "revenue", "and", "risk")
    rng = random.Random(turn)
    text = f"Turn {turn}:"
    while len(text) < size:
        text += " " + rng.choice(words)
    return text[:size]


def _noise(width: int, height: int, spread: int, seed: int) -> Image.Image:
    """Grey noise around mid-grey, the same for the same seed."""
    rng = random.Random(seed)
    noise = Image.frombytes("L", (width, height), rng.randbytes(width * height))
    return noise.point(lambda v: 128 - spread + v * 2 * spread // 255).convert("RGB")


def _image(width: int, height: int, seed: int) -> bytes:
    """A photo-like JPEG: a gradient under noise, so it compresses as a photo does."""
    gradient = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    image = Image.blend(gradient, _noise(width, height, 40, seed), 0.5)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _pdf(pages: int) -> bytes:
    """A scanned-looking PDF: one lightly noisy page picture per page (US Letter, 100 dpi)."""
    paper = Image.new("RGB", (850, 1100), (250, 250, 250))
    page = Image.blend(paper, _noise(850, 1100, 20, seed=0), 0.2)
    buffer = io.BytesIO()
    page.save(buffer, format="PDF", save_all=True, append_images=[page] * (pages - 1), resolution=100)
    return buffer.getvalue()


class Driver:
    """Drives the system as the web page, the Lambda service and S3 do, under a meter."""

    def __init__(self, aws: Any, meter: Meter) -> None:
        self.aws = aws
        self.meter = meter
        self._checksums: dict[str, str] = {}  # ETag → SHA-256 (base64) of what was PUT

    def report_checksums_on_head(self, s3: Any) -> None:
        """S3 answers HEAD with the checksum a presigned PUT signed (ChecksumMode=ENABLED);
        moto does not, so the trigger would hash whole objects instead of reading 4 KiB.
        Put it in moto's answer, so the trigger takes the path it takes on AWS."""

        def add_checksum(parsed: dict[str, Any], **_: Any) -> None:
            checksum = self._checksums.get(parsed.get("ETag", ""))
            if checksum:
                parsed["ChecksumSHA256"] = checksum

        s3.meta.events.register("after-call.s3.HeadObject", add_checksum)

    def api(
        self,
        method: str,
        path: str,
        label: str,
        *,
        body: Any = None,
        query: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """One request through API Gateway (an HTTP API request, the answer's bytes leave
        AWS) to the api function (one invocation)."""
        from agentfiles_local.events import LambdaContext, http_api_event
        from functions.api.handler import lambda_handler

        raw = json.dumps(body) if body is not None else None
        event = http_api_event(
            method,
            path,
            headers={"content-type": "application/json", **(headers or {})},
            query=query,
            body=raw,
            claims={"sub": OWNER},
        )
        with self.meter.invocation("api", label):
            response = lambda_handler(event, LambdaContext("api", 29))
        answer = response.get("body") or ""
        sizes = (len((raw or "").encode()), len(answer.encode()))
        with self.meter.acting("gateway", label):
            self.meter.add(
                "apigateway",
                "HTTP API request",
                {
                    q.HTTP_API_REQUESTS: units.chunks(max(sizes), units.HTTP_API_REQUEST_CHUNK_BYTES),
                    q.TRANSFER_OUT_BYTES: sizes[1],
                },
            )
        assert response["statusCode"] < 400, (path, response)
        return json.loads(answer) if answer.startswith("{") else None

    def websocket(self, event: dict[str, Any], label: str) -> dict[str, Any]:
        """One route of the WebSocket API: the websocket function, invoked with the event
        API Gateway sends it (one invocation)."""
        from agentfiles_local.events import LambdaContext
        from functions.websocket.handler import lambda_handler

        timeout = topology.FUNCTIONS["websocket"].timeout_seconds
        with self.meter.invocation("websocket", label):
            return lambda_handler(event, LambdaContext("websocket", timeout))

    def authorize(self, event: dict[str, Any]) -> dict[str, Any]:
        """The WebSocket API's `$connect` authorizer (one invocation per connection: a
        WebSocket API does not cache its decisions)."""
        from agentfiles_local.events import LambdaContext
        from functions.websocket_authorizer.handler import lambda_handler

        timeout = topology.FUNCTIONS["websocket_authorizer"].timeout_seconds
        with self.meter.invocation("websocket_authorizer", "authorize"):
            return lambda_handler(event, LambdaContext("websocket_authorizer", timeout))

    def deliver(self, queue: str, label: str) -> int:
        """One poll of `queue` by its event source mapping: receive a batch, invoke the
        consumer, delete the batch. Returns how many messages it handled."""
        import importlib

        from agentfiles import topology
        from agentfiles_local.events import LambdaContext

        spec = topology.QUEUES[queue]
        url = self.aws.resources.queue_urls[queue]
        with self.meter.acting("platform", label):
            batch = self.aws.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=spec.batch_size, MessageSystemAttributeNames=["All"]
            ).get("Messages", [])
        if not batch:
            return 0
        handler = importlib.import_module(f"functions.{spec.consumer}.handler").lambda_handler
        timeout = topology.FUNCTIONS[spec.consumer].timeout_seconds
        with self.meter.invocation(spec.consumer, label):
            result = handler(self.aws.sqs_event_for(queue, batch), LambdaContext(spec.consumer, timeout))
        assert not result.get("batchItemFailures"), result
        with self.meter.acting("platform", label):
            self.aws.sqs.delete_message_batch(
                QueueUrl=url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(batch)],
            )
        return len(batch)

    def upload(self, data: bytes, media_type: str, filename: str) -> str:
        """Register, PUT the bytes to S3 as a browser does with the presigned URL (S3
        then notifies the uploads queue); returns the file id."""
        import hashlib

        from agentfiles.data import blobs

        request = {
            "filename": filename,
            "mediaType": media_type,
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        registered = self.api("POST", "/files/uploads", "register upload", body=request)
        file_id = registered["file"]["id"]
        with self.meter.acting("client", "upload bytes"):
            put = self.aws.s3.put_object(
                Bucket=self.aws.resources.bucket_name,
                Key=f"{OWNER}/{file_id}",
                Body=data,
                ContentType=media_type,
            )
        self._checksums[put["ETag"]] = blobs.sha256_hex_to_b64(request["sha256"])
        with self.meter.acting("platform", "upload bytes"):
            self.meter.add("sqs", "SendMessage (S3 event notification)", {q.SQS_REQUESTS: 1})
        return file_id

    def download(self, file_id: str, label: str) -> None:
        """The watching page shows an image: a GET on its presigned URL, out of AWS."""
        with self.meter.acting("client", label):
            body = self.aws.s3.get_object(Bucket=self.aws.resources.bucket_name, Key=f"{OWNER}/{file_id}")
            size = len(body["Body"].read())
            self.meter.add("s3", "download", {q.TRANSFER_OUT_BYTES: size})


# API Gateway's @connections endpoint for the WebSocket API's stage; moto answers it in
# process and keeps what each connection was sent.
CALLBACK_URL = "https://capacity01.execute-api.us-east-1.amazonaws.com/live"
WEBSOCKET_DOMAIN = "capacity01.execute-api.us-east-1.amazonaws.com"
ENDED = ("success", "failed", "stopped")


def _received(connection_id: str) -> bytes:
    """Everything the functions pushed to a connection through @connections (moto keeps
    a connection's frames one after the other, under its percent-encoded id)."""
    from urllib.parse import quote

    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
    from moto.core import DEFAULT_ACCOUNT_ID

    backend = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    connection = backend.connections.get(quote(connection_id, safe=""))
    return connection.data if connection is not None else b""


class Follower:
    """The web page with its WebSocket, as `app.js` follows a thread: connect (the
    authorizer, then `$connect`), subscribe; merge pushed deltas by seq; on `subscribed`,
    or on a gap in the seqs, read what it missed with `GET …/stream?after=N`; read a
    message with GET when its frame has files without URLs (or no content). What it
    receives is what the functions pushed through @connections."""

    def __init__(self, driver: Driver, thread_id: str, token: str) -> None:
        self.driver = driver
        self.thread_id = thread_id
        self.token = token
        self.request: Any = None  # the open connection's WebSocketRequest, None while away
        self.authorizer: dict[str, Any] = {}
        self._read: Counter[str] = Counter()  # bytes of each connection's frames handled
        self.seq: Counter[str] = Counter()  # reply id → last seq merged
        self.text: dict[str, str] = defaultdict(str)
        self.status: dict[str, str] = {}  # reply id → status as last seen
        self.caught_up = 0  # deltas read back from the table

    @property
    def away(self) -> bool:
        return self.request is None

    def connect(self) -> None:
        from agentfiles_local.events import (
            WebSocketRequest,
            authorizer_context,
            websocket_authorizer_event,
            websocket_connect_event,
        )

        request = WebSocketRequest(
            connection_id=base64.b64encode(uuid.uuid4().bytes[:10]).decode(),
            domain_name=WEBSOCKET_DOMAIN,
            stage="live",
            connected_at_ms=int(time.time() * 1000),
        )
        headers, query = {"Host": WEBSOCKET_DOMAIN}, {"token": self.token}
        decision = self.driver.authorize(websocket_authorizer_event(request, headers, query))
        authorizer = authorizer_context(decision)
        event = websocket_connect_event(request, headers, query, authorizer)
        answer = self.driver.websocket(event, "connect")
        assert answer["statusCode"] == 200, answer
        self.request, self.authorizer = request, authorizer
        self._send({"action": "subscribe", "threadId": self.thread_id}, "subscribe")

    def _send(self, body: dict[str, Any], label: str) -> None:
        """A frame from the page: one message in; the route's answer, one message out."""
        from agentfiles_local.events import websocket_message_event

        raw = json.dumps(body)
        event = websocket_message_event(self.request, body["action"], raw, self.authorizer)
        answer = self.driver.websocket(event, label).get("body") or ""
        chunks = units.chunks(len(raw.encode()), units.WEBSOCKET_MESSAGE_CHUNK_BYTES)
        if answer:
            chunks += units.chunks(len(answer.encode()), units.WEBSOCKET_MESSAGE_CHUNK_BYTES)
        meter = self.driver.meter
        with meter.acting("gateway", label):
            usage = {q.WEBSOCKET_MESSAGES: chunks, q.TRANSFER_OUT_BYTES: len(answer.encode())}
            meter.add("apigateway", "WebSocket message", usage)
        if answer:
            self._on_frame(json.loads(answer))

    def disconnect(self, code: int = 1001) -> None:
        """The socket closes (the page goes, or the network drops it): API Gateway runs
        `$disconnect`."""
        from agentfiles_local.events import websocket_disconnect_event

        self.receive()
        event = websocket_disconnect_event(self.request, code, "", self.authorizer)
        assert self.driver.websocket(event, "disconnect")["statusCode"] == 200
        self.request = None

    def receive(self) -> None:
        """Handle every frame pushed to the open connection since the last call."""
        if self.request is None:
            return
        connection_id = self.request.connection_id
        data = _received(connection_id)[self._read[connection_id] :]
        self._read[connection_id] += len(data)
        text, decoder, at = data.decode(), json.JSONDecoder(), 0
        while at < len(text):
            frame, at = decoder.raw_decode(text, at)
            self._on_frame(frame)

    def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "subscribed":
            for reply_id, status in list(self.status.items()):
                if status not in ENDED:
                    self.catch_up(reply_id)
        elif kind == "delta":
            reply_id = frame["messageId"]
            if frame["seq"] > self.seq[reply_id] + 1:
                self.catch_up(reply_id)  # a frame went missing
            else:
                self._merge(reply_id, frame)
        elif kind == "message":
            message = frame["message"]
            if message["role"] == "assistant":
                self.status[message["id"]] = message["status"]
            files_without_urls = any(p.get("fileId") and not p.get("url") for p in message["content"])
            if frame.get("contentOmitted") or files_without_urls:
                path = f"/threads/{self.thread_id}/messages/{message['id']}"
                self.driver.api("GET", path, "read message")
        else:
            raise AssertionError(f"unexpected frame: {frame}")

    def _merge(self, reply_id: str, delta: dict[str, Any]) -> None:
        if delta["seq"] <= self.seq[reply_id]:
            return  # had it already
        if delta.get("reset"):
            self.text[reply_id] = ""  # the reply started over
        self.text[reply_id] += delta["text"]
        self.seq[reply_id] = delta["seq"]

    def catch_up(self, reply_id: str) -> None:
        path = f"/threads/{self.thread_id}/messages/{reply_id}/stream"
        missed = self.driver.api("GET", path, "catch-up read", query={"after": str(self.seq[reply_id])})
        for delta in missed["deltas"]:
            self._merge(reply_id, delta)
        self.caught_up += len(missed["deltas"])
        self.status[reply_id] = missed["status"]


@contextmanager
def _before_each_flush(act: Callable[[int], None]) -> Iterator[None]:
    """Call `act(seq)` as the worker is about to write and push the delta `seq`."""
    from agentfiles.logic import live

    original = live.StreamWriter.flush

    def flush(writer: Any, text: str) -> None:
        act(writer.next_seq)
        original(writer, text)

    live.StreamWriter.flush = flush  # type: ignore[method-assign]
    try:
        yield
    finally:
        live.StreamWriter.flush = original  # type: ignore[method-assign]


@contextmanager
def _labelled_pushes(meter: Meter) -> Iterator[None]:
    """Frames pushed through @connections carry `delta frame` or `message frame`."""
    from agentfiles.data import connection_rows

    original = connection_rows.push

    def push(connection_id: str, data: str) -> bool:
        label = "delta frame" if json.loads(data).get("type") == "delta" else "message frame"
        with meter.acting(meter.caller, label):
            return original(connection_id, data)

    connection_rows.push = push
    try:
        yield
    finally:
        connection_rows.push = original


@contextmanager
def _labelled(meter: Meter, module: Any, name: str, label: str) -> Iterator[None]:
    """Calls made inside `module.name` carry `label` (the function still runs as is)."""
    original = getattr(module, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with meter.acting(meter.caller, label):
            return original(*args, **kwargs)

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


def _tokens(w: Workload, call: dict[str, Any]) -> Counter[str]:
    """Input tokens of one model request by kind (text, image, pdf), estimated from
    what the fake model received and saw."""
    text = 0
    for message in call.get("sent") or []:
        content = message.get("content")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else content or []
        text += sum(len(p.get("text", "").encode()) for p in parts if p.get("type") == "text")
    tokens: Counter[str] = Counter({"text": round(text / w.text_bytes_per_token)})
    page_image = w.image_base_tokens + w.image_tile_tokens * w.pdf_page_image_tiles
    for seen in call.get("saw") or []:
        if seen["kind"] == "image":
            tokens["image"] += w.image_tokens(seen["width"], seen["height"])
        elif seen["kind"] == "file":
            tokens["pdf"] += seen.get("pages", 1) * (w.pdf_page_text_tokens + page_image)
    return tokens


_MEASURED: dict[str, Measurement] = {}


def measure(workload: Workload | None = None, *, fresh: bool = False) -> Measurement:
    """Run one conversation for real and meter it; once per workload and process unless
    `fresh` (the scale model reads the cost model's measurement)."""
    w = workload or load_workload()
    key = w.model_dump_json()
    if fresh or key not in _MEASURED:
        _MEASURED[key] = _measure(w)
    return _MEASURED[key]


@contextmanager
def _issuer() -> Iterator[Any]:
    """An OpenID issuer on a loopback port, its keys at /.well-known/jwks.json, where the
    WebSocket authorizer reads them (once per container, as on AWS)."""
    from agentfiles_local.runtime.tokens import KeysServer

    with KeysServer(audience="capacity") as keys:
        yield keys.authority


def _measure(w: Workload) -> Measurement:
    from agentfiles import model_client, token_check
    from agentfiles.data import clients, connection_rows, delta_rows
    from agentfiles_local.fake_model import FakeModel
    from harness.aws import local_aws

    words = max(1, round(w.reply_bytes / 6.2))  # the fake model's filler words average 6.2 bytes
    delay = w.stream_seconds * w.time_scale / words
    flush_ms = max(1, round(w.stream_flush_ms * w.time_scale))
    settings = {
        "URL_MODE": "inline",  # the fake model cannot reach moto's bucket over HTTP
        "STREAM_FLUSH_MS": str(flush_ms),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
        "WEBSOCKET_CALLBACK_URL": CALLBACK_URL,
    }
    with (
        FakeModel(word_count=words, chunk_delay_s=delay) as fake,
        _issuer() as issuer,
        local_aws(
            OPENAI_BASE_URL=fake.url,
            OPENAI_API_KEY="bench",
            JWT_ISSUER=issuer.issuer,
            JWT_AUDIENCE=issuer.audience,
            **settings,
        ) as aws,
    ):
        model_client.reset()
        token_check.reset()
        meter = Meter(probe_dynamodb=aws.dynamodb)
        for client in (clients.dynamodb(), clients.s3(), clients.sqs(), clients.connections()):
            meter.attach(client)
        meter.attach(aws.s3, caller="client")
        meter.attach(aws.sqs, caller="platform")
        driver = Driver(aws, meter)
        driver.report_checksums_on_head(clients.s3())
        token = issuer.issue(OWNER).token
        try:
            with (
                warnings.catch_warnings(),
                _labelled(meter, delta_rows, "append", "delta row"),
                _labelled(meter, connection_rows, "subscribers", "subscriber look-up"),
                _labelled_pushes(meter),
            ):
                # Metrics are off here; Powertools says so after every invocation.
                warnings.filterwarnings("ignore", "No application metrics to publish")
                _warm_up(driver, w, token)
                meter.calls.clear()
                fake.reset()
                fake.configure(word_count=words, chunk_delay_s=delay)
                measured = _conversation(driver, fake, w, token)
        finally:
            meter.detach()
            model_client.reset()
            token_check.reset()
    return measured


def _warm_up(driver: Driver, w: Workload, token: str) -> None:
    """Import and connect once, as a warm container has, so durations are warm ones."""
    driver.aws.drain("uploads")  # S3's test event
    thread = driver.api("POST", "/threads", "warm up", body={})["thread"]["id"]
    page = Follower(driver, thread, token)
    page.connect()
    file_id = driver.upload(_image(64, 48, seed=99), "image/jpeg", "warm.jpg")
    driver.deliver("uploads", "warm up")
    content = [{"type": "text", "text": "hello"}, {"type": "image", "fileId": file_id}]
    reply = driver.api("POST", f"/threads/{thread}/messages", "warm up", body={"content": content})["reply"]
    driver.deliver("generations", "warm up")
    driver.api("GET", f"/threads/{thread}/messages", "warm up", query={"limit": PAGE_LIMIT})
    page.catch_up(reply["id"])
    page.disconnect()


@contextmanager
def _between_turns(meter: Meter) -> Iterator[None]:
    """Requests made inside happen once per conversation, not in every turn."""
    saved, meter.turn = meter.turn, -1
    try:
        yield
    finally:
        meter.turn = saved


class _DroppedMidway:
    """Pages that lose their sockets half way through a reply's stream (by the bench's
    scaled clock) and are back after the flushes the worker makes in `reconnect_gap_s` at
    STREAM_FLUSH_MS, acting as the worker's flushes go by; what they do counts once per
    conversation, not per turn."""

    def __init__(self, pages: list[Follower], w: Workload, meter: Meter) -> None:
        self.pages, self.meter = pages, meter
        self.half_s = w.stream_seconds * w.time_scale / 2
        self.missed = round(w.reconnect_gap_s * 1000 / w.stream_flush_ms)
        self.started: float | None = None
        self.back_at: int | None = None  # the seq before which the pages are back

    def __call__(self, seq: int) -> None:
        self.started = self.started or time.monotonic()
        with _between_turns(self.meter):
            if self.back_at is None and time.monotonic() - self.started >= self.half_s:
                self.back_at = seq + self.missed
                for page in self.pages:
                    page.disconnect(code=1006)
            if self.back_at is not None and seq >= self.back_at:
                for page in self.pages:
                    if page.away:
                        page.connect()


def _conversation(driver: Driver, fake: Any, w: Workload, token: str) -> Measurement:
    meter = driver.meter
    thread = driver.api("POST", "/threads", "open thread", body={"title": "capacity"})["thread"]["id"]
    driver.api("GET", f"/threads/{thread}/messages", "open thread", query={"limit": PAGE_LIMIT})
    pages = [Follower(driver, thread, token) for _ in range(w.watchers)]
    for page in pages:
        page.connect()
    files: dict[str, int] = {}
    attached: list[dict[str, Any]] = []
    images = [_image(w.image_width, w.image_height, seed=n) for n in range(w.images)]
    pdfs = [_pdf(w.pdf_pages) for _ in range(w.pdfs)]
    uploads = [(data, "image/jpeg", f"photo{n}.jpg") for n, data in enumerate(images)]
    uploads += [(data, "application/pdf", f"report{n}.pdf") for n, data in enumerate(pdfs)]
    ids = []
    for data, media_type, filename in uploads:
        ids.append(driver.upload(data, media_type, filename))
        files[media_type] = len(data)
    while driver.deliver("uploads", "check upload"):
        pass
    for file_id, (_, media_type, _) in zip(ids, uploads, strict=True):
        status = driver.api("GET", f"/files/{file_id}", "wait until checked")["file"]["status"]
        assert status == "ready", status
        part = "image" if media_type.startswith("image/") else "file"
        attached.append({"type": part, "fileId": file_id, "mediaType": media_type})

    turns: list[Turn] = []
    for index in range(w.turns):
        meter.turn = index
        prompt = [{"type": "text", "text": _prompt(index, w.prompt_bytes)}]
        content = prompt + (attached if index == 0 else [])
        saved = driver.api(
            "POST",
            f"/threads/{thread}/messages",
            "save message",
            body={"content": content},
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        for page in pages:
            page.receive()
        mark = len(meter.calls)
        driver.api("GET", f"/threads/{thread}/messages", "poll", query={"limit": PAGE_LIMIT})
        poll_start = meter.calls[mark:]
        calls_before = len(fake.calls)
        caught_before = pages[0].caught_up
        dropping = index >= w.turns - w.reconnects
        with _before_each_flush(_DroppedMidway(pages, w, meter) if dropping else lambda _: None):
            assert driver.deliver("generations", "generate reply") == 1
        with _between_turns(meter):
            for page in pages:
                if page.away:  # the reply ended before the page was back
                    page.connect()
        for page in pages:
            page.receive()
        mark = len(meter.calls)
        page_read = driver.api("GET", f"/threads/{thread}/messages", "poll", query={"limit": PAGE_LIMIT})
        poll_end = meter.calls[mark:]
        reply = next(m for m in page_read["items"] if m["id"] == saved["reply"]["id"])
        assert reply["status"] == "success", reply
        text = "".join(p.get("text", "") for p in reply["content"])
        for page in pages:
            # Every delta reached the page, pushed or read back, in order, once.
            assert (page.text[reply["id"]], page.seq[reply["id"]]) == (text, reply["lastSeq"])
        model_call = fake.calls[calls_before]
        request_bytes = len(json.dumps({"messages": model_call["sent"]}).encode())
        with meter.acting("generate", "generate reply"):
            meter.add("model", "request to the model", {q.TRANSFER_OUT_BYTES: request_bytes})
        turns.append(
            Turn(
                index=index,
                reply_id=reply["id"],
                reply_text=text,
                deltas=reply["lastSeq"],
                model_request_bytes=request_bytes,
                input_tokens=_tokens(w, model_call),
                output_tokens=round(len(text.encode()) / w.text_bytes_per_token),
                poll_start=poll_start,
                poll_end=poll_end,
                caught_up=pages[0].caught_up - caught_before,
            )
        )
    meter.turn = -1
    for file_id, (_, media_type, _) in zip(ids, uploads, strict=True):
        if media_type.startswith("image/"):
            for _ in range(w.image_views):
                driver.download(file_id, "view image")
    for page in pages:
        page.disconnect()
    return Measurement(w, OWNER, thread, list(meter.calls), turns, files)


# ---- deliveries: how the watching page learns of the reply --------------------------


def _stretch_generate(m: Measurement, calls: list[Call]) -> list[tuple[Call, float]]:
    """Lambda bills the generate function while it waits on the model's stream, which
    the meter's CPU clock does not count: add the workload's stream time to each
    generate invocation (an upper bound: the worker's own writes overlap the stream)."""
    w = m.workload
    extra_s = w.stream_seconds
    memory = topology.FUNCTIONS["generate"].memory_mb
    weighted: list[tuple[Call, float]] = []
    for call in calls:
        weighted.append((call, 1.0))
        if call.service == "lambda" and call.label == "generate reply":
            wait = Call("generate", "generate reply", "lambda", "model wait", turn=call.turn, modelled=True)
            longer = units.gb_seconds(call.duration_s + extra_s, memory)
            wait.usage[q.LAMBDA_GB_SECONDS] = longer - units.gb_seconds(call.duration_s, memory)
            weighted.append((wait, 1.0))
    return weighted


def polling_delivery(m: Measurement) -> list[tuple[Call, float]]:
    """The web page without a WebSocket: it re-reads the thread every `poll_interval_s`
    while a reply streams. Each poll is measured, sampled as the reply starts and as it
    ends; the reply row gets its text only when it ends, so every read but the last is
    the first sample's. Their number is the workload's."""
    w = m.workload
    weighted: list[tuple[Call, float]] = []
    for turn in m.turns:
        weighted += [(call, (w.polls_per_reply - 1) * w.watchers) for call in turn.poll_start]
        weighted += [(call, w.watchers) for call in turn.poll_end]
    return weighted


def measured_push_delivery(m: Measurement) -> list[tuple[Call, float]]:
    """Push as built, measured in the same run: each page's connections (the authorizer,
    `$connect`, the subscribe frame and its answer, `$disconnect`, and all of it again on
    a reconnect), every frame the functions pushed through @connections, the catch-up
    reads after a reconnect, and the reads of messages whose frames carry files without
    URLs. Only the connection-minutes come from the workload (a page holds its socket for
    the whole conversation; the bench does not wait through the time between turns)."""
    w = m.workload
    minutes = Call("gateway", "connection", "apigateway", "connection-minutes", modelled=True)
    minutes.usage[q.WEBSOCKET_CONNECTION_MINUTES] = w.conversation_seconds / 60 * w.watchers
    return [(call, 1.0) for call in m.push_calls()] + [(minutes, 1.0)]


def polling_scenario(m: Measurement) -> list[tuple[Call, float]]:
    return _stretch_generate(m, m.base_calls()) + polling_delivery(m)


def push_scenario(m: Measurement) -> list[tuple[Call, float]]:
    return _stretch_generate(m, m.base_calls()) + measured_push_delivery(m)


def total(weighted: list[tuple[Call, float]]) -> Counter[str]:
    usage: Counter[str] = Counter()
    for call, weight in weighted:
        for quantity, amount in call.usage.items():
            usage[quantity] += amount * weight
    return usage


def modelled_share(weighted: list[tuple[Call, float]], prices: q.PriceTable) -> float:
    """The part of the infrastructure cost that comes from modelled entries or counts
    (a poll's cost is measured, how many there are is not)."""
    every = sum(_infrastructure(total(weighted), prices).values())
    modelled = [(c, wt) for c, wt in weighted if c.modelled or c.label == "poll"]
    return sum(_infrastructure(total(modelled), prices).values()) / every if every else 0.0


def _infrastructure(usage: Mapping[str, float], prices: q.PriceTable) -> Counter[str]:
    cost = q.cost_by_service(usage, prices)
    return Counter({s: v for s, v in cost.items() if s in q.INFRASTRUCTURE})


def model_usage(m: Measurement) -> Counter[str]:
    return Counter(
        {
            q.MODEL_INPUT_TOKENS: sum(sum(t.input_tokens.values()) for t in m.turns),
            q.MODEL_OUTPUT_TOKENS: sum(t.output_tokens for t in m.turns),
        }
    )


# ---- report -------------------------------------------------------------------------


@dataclass
class CostReport:
    measurement: Measurement
    prices: q.PriceTable
    polling: Counter[str]  # usage per conversation
    push: Counter[str]
    polling_modelled: float
    push_modelled: float
    model: Counter[str]
    # Of the cost of following replies alone (the polls; push's frames, connections and reads):
    polling_delivery_modelled: float = 1.0
    push_delivery_modelled: float = 0.0

    def per_thousand(self, usage: Mapping[str, float]) -> Counter[str]:
        return Counter({s: v * 1000 for s, v in _infrastructure(usage, self.prices).items()})

    def model_per_thousand(self) -> float:
        return sum(q.cost_by_service(self.model, self.prices).values()) * 1000


def report(measurement: Measurement | None = None, prices: q.PriceTable | None = None) -> CostReport:
    m = measurement or measure()
    p = prices or q.load_prices()
    polling, push = polling_scenario(m), push_scenario(m)
    return CostReport(
        m,
        p,
        total(polling),
        total(push),
        modelled_share(polling, p),
        modelled_share(push, p),
        model_usage(m),
        modelled_share(polling_delivery(m), p),
        modelled_share(measured_push_delivery(m), p),
    )


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def describe(r: CostReport) -> list[str]:
    m, w = r.measurement, r.measurement.workload
    reply_sizes = [len(t.reply_text.encode()) for t in m.turns]
    deltas = [t.deltas for t in m.turns]
    caught_up = sum(t.caught_up for t in m.turns)
    lines = [
        f"workload: {w.turns} turns; {w.images} images ({w.image_width}x{w.image_height} JPEG, "
        f"{_kib(m.files.get('image/jpeg', 0))}) and {w.pdfs} PDF ({w.pdf_pages} pages, "
        f"{_kib(m.files.get('application/pdf', 0))}) attached to the first prompt; prompts "
        f"{_kib(w.prompt_bytes)}; replies {_kib(statistics.mean(reply_sizes))} (measured mean) streamed "
        f"over {w.stream_seconds:g} s; {w.watchers} watching client; {w.think_seconds:g} s between turns",
        f"polling: the web page without a WebSocket reads the thread {w.polls_per_reply} times per reply "
        f"(every {w.poll_interval_s:g} s)",
        f"push: the page holds a WebSocket on the thread; {statistics.median(deltas):g} deltas per reply "
        f"(median, measured at STREAM_FLUSH_MS={w.stream_flush_ms}; ideal {w.flushes_per_reply:g} "
        "+ the end), "
        f"each pushed through @connections; {w.reconnects} dropped connection per conversation, in the "
        f"middle of a reply, back {w.reconnect_gap_s:g} s of flushes later: {caught_up} deltas read back "
        "by catch-up",
        f"prices: {r.prices.region} list prices taken on {r.prices.taken_on} (CAPACITY_PRICES overrides)",
        "measured on moto: every request of the conversation (the worker's delta rows and its look-ups of "
        "the thread's subscribers are in both columns), one read of the thread as the page polls it (at "
        "each reply's start and end), and all of push: the authorizer, connect, subscribe and disconnect, "
        "every frame the functions pushed, the catch-up reads",
        "modelled from the workload: how many polls, push's connection-minutes (the conversation's length), "
        "the generate function's wait for the real stream time, the model's tokens",
    ]
    return lines


def cost_table(r: CostReport) -> list[str]:
    polling, push = r.per_thousand(r.polling), r.per_thousand(r.push)
    rows = [f"{'service':<19}{'polling':>10}{'push':>10}"]
    for service in q.INFRASTRUCTURE:
        rows.append(f"{service:<19}{polling[service]:>10.4f}{push[service]:>10.4f}")
    total_polling, total_push = sum(polling.values()), sum(push.values())
    rows.append(f"{'total (USD)':<19}{total_polling:>10.4f}{total_push:>10.4f}")
    rows.append(
        f"{'of it modelled':<19}{r.polling_modelled:>10.0%}{r.push_modelled:>10.0%}"
        "   (the rest is measured request by request)"
    )
    rows.append(
        f"{'delivery modelled':<19}{r.polling_delivery_modelled:>10.1%}{r.push_delivery_modelled:>10.1%}"
        "   (of following the replies alone: the number of polls; push's connection-minutes)"
    )
    model = r.model_per_thousand()
    kinds: Counter[str] = sum((t.input_tokens for t in r.measurement.turns), Counter())
    split = ", ".join(f"{kind} {n / sum(kinds.values()):.0%}" for kind, n in kinds.most_common())
    rows.append(
        f"{'model tokens':<19}{model:>10.2f}{model:>10.2f}   ({r.prices.model_name} at "
        f"${r.prices.model_input_token_per_million}/${r.prices.model_output_token_per_million} "
        f"per million tokens in/out; per conversation {r.model[q.MODEL_INPUT_TOKENS]:,.0f} in "
        f"({split}), {r.model[q.MODEL_OUTPUT_TOKENS]:,.0f} out; estimated, see docs/capacity.md)"
    )
    rows.append(
        f"{'model share':<19}{model / (model + total_polling):>10.1%}{model / (model + total_push):>10.1%}"
        "   (of infrastructure + model)"
    )
    return rows


def quantity_table(r: CostReport) -> list[str]:
    """What one conversation consumes, in the units AWS bills."""
    shown = [
        (q.DDB_READ_UNITS, "DynamoDB read request units", 1),
        (q.DDB_WRITE_UNITS, "DynamoDB write request units (table)", 1),
        (q.DDB_INDEX_WRITE_UNITS, "DynamoDB write request units (indexes)", 1),
        (q.LAMBDA_REQUESTS, "Lambda invocations", 1),
        (q.LAMBDA_GB_SECONDS, "Lambda GB-seconds", 1),
        (q.HTTP_API_REQUESTS, "HTTP API requests", 1),
        (q.WEBSOCKET_MESSAGES, "WebSocket messages", 1),
        (q.WEBSOCKET_CONNECTION_MINUTES, "WebSocket connection-minutes", 1),
        (q.SQS_REQUESTS, "SQS requests", 1),
        (q.S3_PUT_REQUESTS, "S3 PUT requests", 1),
        (q.S3_GET_REQUESTS, "S3 GET/HEAD requests", 1),
        (q.TRANSFER_OUT_BYTES, "MiB out to the internet", 1 / 1024**2),
    ]
    rows = [f"{'per conversation':<40}{'polling':>11}{'push':>11}"]
    for quantity, name, scale in shown:
        rows.append(f"{name:<40}{r.polling[quantity] * scale:>11,.1f}{r.push[quantity] * scale:>11,.1f}")
    return rows


def step_table(m: Measurement) -> list[str]:
    """Each measured step of the conversation: how often, and what one of it costs."""
    steps: dict[str, list[Call]] = defaultdict(list)
    for call in m.calls:
        steps[call.label].append(call)
    header = (
        f"{'count':>6}{'λ ms':>8}{'in AWS':>8}{'RRU':>8}{'WRU':>8}{'idx WRU':>8}{'S3':>5}{'SQS':>5}{'WS':>5}"
    )
    rows = [f"{'step (measured)':<20}{header}"]
    for label, calls in steps.items():
        invocations = [c for c in calls if c.service == "lambda"]
        requests = [c for c in calls if c.service not in ("apigateway", "model")]
        count = len(invocations) or len(requests) or 1
        usage = total([(c, 1.0) for c in calls])
        ms = statistics.median(c.duration_s * 1000 for c in invocations) if invocations else 0.0
        aws = statistics.median(c.aws_s * 1000 for c in invocations) if invocations else 0.0
        s3 = usage[q.S3_PUT_REQUESTS] + usage[q.S3_GET_REQUESTS]
        rows.append(
            f"{label:<20}{count:>6}{ms:>8.1f}{aws:>8.1f}{usage[q.DDB_READ_UNITS] / count:>8.1f}"
            f"{usage[q.DDB_WRITE_UNITS] / count:>8.1f}{usage[q.DDB_INDEX_WRITE_UNITS] / count:>8.1f}"
            f"{s3 / count:>5.1f}{usage[q.SQS_REQUESTS] / count:>5.1f}"
            f"{usage[q.WEBSOCKET_MESSAGES] / count:>5.1f}"
        )
    rows.append(
        "(per invocation, or per request where no function runs; λ ms: median duration in process,"
        " of which 'in AWS' inside moto's answers; WS: WebSocket messages)"
    )
    return rows


def run() -> None:
    r = report()
    for line in describe(r):
        print(f"   {line}")
    print()
    print("   Infrastructure cost per 1,000 conversations (USD):")
    for line in cost_table(r):
        print(f"   {line}")
    print()
    for line in quantity_table(r):
        print(f"   {line}")
    print()
    for line in step_table(r.measurement):
        print(f"   {line}")
