"""Infrastructure cost per 1,000 conversations, polling vs push, from what each operation consumed.

The conversation runs for real, in process: the functions' own handlers on moto with
the system's resources (`tests/support/aws.py`), the built-in fake model answering the
generate worker over loopback HTTP. A meter on the clients (`bench/_capacity/meter.py`)
records what every request consumed as AWS bills it: DynamoDB request units (item
sizes read before and after each write, transactions doubled, index writes, Query
pages rounded once), S3 requests and bytes, SQS requests per 64 KiB, Lambda
invocations and their measured duration times the function's memory, API Gateway
requests and the bytes that leave AWS. A dated price table (`bench/_capacity/pricing.py`)
turns it into dollars.

What is measured and what is modelled:

- measured: every request of the conversation (uploads, checks, saves, the generate
  worker, the web page's reads), and the cost of one poll of the thread, sampled as
  each reply starts and as it ends;
- modelled, from the workload: how many polls a watching page makes (one per
  `poll_interval_s` while a reply streams), the generate function's wait on the model
  (Lambda bills the stream time; the meter counts each invocation's thread CPU time,
  and the fake model streams at `time_scale` of real time with STREAM_FLUSH_MS scaled
  alike, so the worker flushes as often as it would), the model's tokens;
- modelled, from the design's contract (docs/capacity.md), until delta rows and
  WebSocket push exist: the push column's delta writes, subscriber look-ups, WebSocket
  messages, connections and catch-up reads. `measured_push_delivery` is where a
  measurement replaces them.

Configure the workload with CAPACITY_WORKLOAD (inline JSON or a file of `Workload`
fields) and the prices with CAPACITY_PRICES.
"""

from __future__ import annotations

import io
import json
import math
import os
import random
import statistics
import uuid
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from agentfiles import topology
from bench._capacity import pricing as q
from bench._capacity import units
from bench._capacity.meter import Call, Meter

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
    reconnects: int = 1  # push: dropped connections per conversation, each resumed by a catch-up read
    image_views: int = 1  # downloads of each image by the watching client
    time_scale: float = Field(0.1, gt=0, le=1)  # the model streams at this fraction of real time in the bench
    # Tokens, for the model's share (stated estimates, not measured):
    text_bytes_per_token: float = 4.0
    image_base_tokens: int = 2833  # gpt-4o-mini, per image at high detail
    image_tile_tokens: int = 5667  # gpt-4o-mini, per 512 px tile
    pdf_page_text_tokens: int = 500
    pdf_page_image_tiles: int = 4  # each PDF page also reaches the model as a picture

    @property
    def conversation_seconds(self) -> float:
        return self.turns * (self.stream_seconds + self.think_seconds)

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


@dataclass
class Turn:
    index: int
    reply_id: str
    reply_text: str
    flushes: int  # progress writes the worker made while streaming
    model_request_bytes: int
    input_tokens: Counter[str]  # by kind: text, image, pdf
    output_tokens: int
    user_message: dict[str, Any]
    reply_message: dict[str, Any]


@dataclass
class Measurement:
    workload: Workload
    owner: str
    thread_id: str
    calls: list[Call]
    turns: list[Turn]
    files: dict[str, int]  # media type → bytes of one file

    def base_calls(self) -> list[Call]:
        """Every request of the conversation but the sampled polls."""
        return [c for c in self.calls if c.label != "poll"]

    def poll_samples(self, turn: int) -> list[Call]:
        return [c for c in self.calls if c.label == "poll" and c.turn == turn]

    def median_invocation_s(self, label: str) -> float:
        durations = [c.duration_s for c in self.calls if c.service == "lambda" and c.label == label]
        return statistics.median(durations)


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


def _measure(w: Workload) -> Measurement:
    from agentfiles import model_client
    from agentfiles.data import clients, replies
    from agentfiles_local.fake_model import FakeModel
    from tests.support.aws import local_aws

    words = max(1, round(w.reply_bytes / 6.2))  # the fake model's filler words average 6.2 bytes
    delay = w.stream_seconds * w.time_scale / words
    flush_ms = max(1, round(w.stream_flush_ms * w.time_scale))
    settings = {
        "URL_MODE": "inline",  # the fake model cannot reach moto's bucket over HTTP
        "STREAM_FLUSH_MS": str(flush_ms),
        "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": "ERROR",
    }
    with (
        FakeModel(word_count=words, chunk_delay_s=delay) as fake,
        local_aws(OPENAI_BASE_URL=fake.url, OPENAI_API_KEY="bench", **settings) as aws,
    ):
        model_client.model_client.cache_clear()
        meter = Meter(probe_dynamodb=aws.dynamodb)
        for client in (clients.dynamodb(), clients.s3(), clients.sqs()):
            meter.attach(client)
        meter.attach(aws.s3, caller="client")
        meter.attach(aws.sqs, caller="platform")
        driver = Driver(aws, meter)
        driver.report_checksums_on_head(clients.s3())
        try:
            with warnings.catch_warnings():
                # Metrics are off here; Powertools says so after every invocation.
                warnings.filterwarnings("ignore", "No application metrics to publish")
                _warm_up(driver, w)
                meter.calls.clear()
                fake.reset()
                fake.configure(word_count=words, chunk_delay_s=delay)
                with _labelled(meter, replies, "write_progress", "reply progress"):
                    measured = _conversation(driver, fake, w)
        finally:
            meter.detach()
            model_client.model_client.cache_clear()
    return measured


def _warm_up(driver: Driver, w: Workload) -> None:
    """Import and connect once, as a warm container has, so durations are warm ones."""
    driver.aws.drain("uploads")  # S3's test event
    thread = driver.api("POST", "/threads", "warm up", body={})["thread"]["id"]
    file_id = driver.upload(_image(64, 48, seed=99), "image/jpeg", "warm.jpg")
    driver.deliver("uploads", "warm up")
    content = [{"type": "text", "text": "hello"}, {"type": "image", "fileId": file_id}]
    driver.api("POST", f"/threads/{thread}/messages", "warm up", body={"content": content})
    driver.deliver("generations", "warm up")
    driver.api("GET", f"/threads/{thread}/messages", "warm up", query={"limit": PAGE_LIMIT})


def _conversation(driver: Driver, fake: Any, w: Workload) -> Measurement:
    meter = driver.meter
    thread = driver.api("POST", "/threads", "open thread", body={"title": "capacity"})["thread"]["id"]
    driver.api("GET", f"/threads/{thread}/messages", "open thread", query={"limit": PAGE_LIMIT})
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
        driver.api("GET", f"/threads/{thread}/messages", "poll", query={"limit": PAGE_LIMIT})
        calls_before = len(fake.calls)
        flushes_before = sum(1 for c in meter.calls if c.label == "reply progress")
        assert driver.deliver("generations", "generate reply") == 1
        page = driver.api("GET", f"/threads/{thread}/messages", "poll", query={"limit": PAGE_LIMIT})
        reply = next(m for m in page["items"] if m["id"] == saved["reply"]["id"])
        assert reply["status"] == "success", reply
        model_call = fake.calls[calls_before]
        request_bytes = len(json.dumps({"messages": model_call["sent"]}).encode())
        with meter.acting("generate", "generate reply"):
            meter.add("model", "request to the model", {q.TRANSFER_OUT_BYTES: request_bytes})
        text = "".join(p.get("text", "") for p in reply["content"])
        turns.append(
            Turn(
                index=index,
                reply_id=reply["id"],
                reply_text=text,
                flushes=sum(1 for c in meter.calls if c.label == "reply progress") - flushes_before,
                model_request_bytes=request_bytes,
                input_tokens=_tokens(w, model_call),
                output_tokens=round(len(text.encode()) / w.text_bytes_per_token),
                user_message=saved["message"],
                reply_message=reply,
            )
        )
    meter.turn = -1
    for file_id, (_, media_type, _) in zip(ids, uploads, strict=True):
        if media_type.startswith("image/"):
            for _ in range(w.image_views):
                driver.download(file_id, "view image")
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
    """Today's web page: it re-reads the thread every `poll_interval_s` while a reply
    streams. Each poll is measured (sampled as the reply starts and as it ends, whose
    mean is the mean of a reply that grows steadily); their number is the workload's."""
    w = m.workload
    weighted: list[tuple[Call, float]] = []
    for turn in m.turns:
        samples = m.poll_samples(turn.index)
        polls = w.polls_per_reply * w.watchers
        weighted += [(call, polls / 2) for call in samples]  # two samples: each stands for half
    return weighted


def measured_push_delivery(m: Measurement) -> list[tuple[Call, float]] | None:
    """Push as built, measured the way polling is. None until the system has it.

    When delta rows and the WebSocket endpoint land, run the conversation with a
    connected, subscribed client (the local stack's WebSocket, or its handler called
    as the gateway would), meter its Lambda invocations and table requests like the
    others, count each frame sent as `WEBSOCKET_MESSAGES` (32 KB steps) and
    `TRANSFER_OUT_BYTES`, and return those calls; `push_scenario` then stops
    subtracting progress writes, which the worker will no longer make.
    """
    return None


def modelled_push_delivery(m: Measurement) -> list[tuple[Call, float]]:
    """Push as the design describes it, priced with the same arithmetic.

    Per reply: one delta row per flush the worker made (same flush interval), in the
    thread's partition, written once and left to expire (TTL deletes are free); the
    full text once at the end (today's final write, already measured); per flush, one
    Query of the thread's subscriptions (assumed: subscription rows under the thread's
    partition, connection rows under the owner's) and one WebSocket frame per watcher;
    a `message` frame per watcher for each message created or changing status (the
    prompt; the reply pending, streaming, ended). Per conversation and watcher: a
    connection (connect, subscribe, disconnect: three invocations of a small handler,
    priced as the api function's median small request), connection-minutes for the
    whole conversation, and per reconnect the same again plus one catch-up read
    (`GET …/stream?after=N`: an API request and a Query of the deltas missed, taken as
    half a reply)."""
    from agentfiles.data import keys

    w = m.workload
    small_request_s = m.median_invocation_s("wait until checked")
    expires = {"N": "1767225600"}
    connection_id = "Ab3dEfGhIjKlMnO="
    calls: list[Call] = []

    def call(label: str, service: str, operation: str, usage: dict[str, float], turn: int = -1) -> Call:
        made = Call("push", label, service, operation, Counter(usage), modelled=True, turn=turn)
        calls.append(made)
        return made

    def frame_usage(frame: dict[str, Any]) -> dict[str, float]:
        size = len(json.dumps(frame).encode())
        return {
            q.WEBSOCKET_MESSAGES: units.chunks(size, units.WEBSOCKET_MESSAGE_CHUNK_BYTES) * w.watchers,
            q.TRANSFER_OUT_BYTES: size * w.watchers,
        }

    def write(label: str, item: dict[str, Any], turn: int = -1) -> None:
        wru = units.write_units(units.item_size(item))
        made = call(label, "dynamodb", "PutItem", {q.DDB_WRITE_UNITS: wru}, turn)
        made.partitions[(item["pk"]["S"], "write")] += wru

    def invoke(label: str, seconds: float) -> None:
        call(
            label,
            "lambda",
            "Invoke",
            {q.LAMBDA_REQUESTS: 1, q.LAMBDA_GB_SECONDS: units.gb_seconds(seconds, 512)},
        )

    thread_pk = keys.thread_pk(m.owner, m.thread_id)
    owner_pk = keys.owner_pk(m.owner)
    subscription = {
        "pk": {"S": thread_pk},
        "sk": {"S": f"SUB#{connection_id}"},
        "connectionId": {"S": connection_id},
        "expiresAt": expires,
    }
    for turn in m.turns:
        flushes = max(1, turn.flushes)
        piece = math.ceil(len(turn.reply_text) / flushes)
        for seq in range(1, flushes + 1):
            text = turn.reply_text[(seq - 1) * piece : seq * piece]
            delta = {
                "pk": {"S": thread_pk},
                "sk": {"S": f"DELTA#{turn.reply_id}#{seq:08d}"},
                "seq": {"N": str(seq)},
                "text": {"S": text},
                "expiresAt": expires,
            }
            write("delta row", delta, turn.index)
            rru = units.query_read_units([units.item_size(subscription)] * w.watchers, "eventual")
            lookup = call("subscriber look-up", "dynamodb", "Query", {q.DDB_READ_UNITS: rru}, turn.index)
            lookup.partitions[(thread_pk, "read")] += rru
            frame = {
                "type": "delta",
                "threadId": m.thread_id,
                "messageId": turn.reply_id,
                "seq": seq,
                "text": text,
            }
            call("delta frame", "apigateway", "WebSocket message", frame_usage(frame), turn.index)
        pending = {**turn.reply_message, "status": "pending", "content": []}
        streaming = {**pending, "status": "streaming"}
        final = {**turn.reply_message, "lastSeq": flushes}
        for message in (turn.user_message, pending, streaming, final):
            frame = {"type": "message", "threadId": m.thread_id, "message": message}
            call("message frame", "apigateway", "WebSocket message", frame_usage(frame), turn.index)

    connection = {
        "pk": {"S": owner_pk},
        "sk": {"S": f"CONN#{connection_id}"},
        "connectionId": {"S": connection_id},
        "connectedAt": {"N": "1767225600000"},
        "expiresAt": expires,
    }
    for _ in range((1 + w.reconnects) * w.watchers):
        invoke("connect", small_request_s)
        write("connect", connection)
        invoke("subscribe", small_request_s)
        thread_read = call("subscribe", "dynamodb", "GetItem", {q.DDB_READ_UNITS: 1})
        thread_read.partitions[(owner_pk, "read")] += 1
        write("subscribe", subscription)
        call("subscribe", "apigateway", "WebSocket message", {q.WEBSOCKET_MESSAGES: 2})  # in and `subscribed`
        invoke("disconnect", small_request_s)
        for row in (connection, subscription):
            wru = units.write_units(units.item_size(row))
            gone = call("disconnect", "dynamodb", "DeleteItem", {q.DDB_WRITE_UNITS: wru})
            gone.partitions[(row["pk"]["S"], "write")] += wru
    minutes = w.conversation_seconds / 60 * w.watchers
    call("connection", "apigateway", "connection-minutes", {q.WEBSOCKET_CONNECTION_MINUTES: minutes})
    reply = m.turns[-1]
    missed = max(1, reply.flushes // 2)
    missed_bytes = len(reply.reply_text.encode()) // 2
    for _ in range(w.reconnects * w.watchers):
        invoke("catch-up read", small_request_s)
        answer = missed_bytes + 40 * missed
        call(
            "catch-up read",
            "apigateway",
            "HTTP API request",
            {q.HTTP_API_REQUESTS: 1, q.TRANSFER_OUT_BYTES: answer},
        )
        rru = units.query_read_units([missed_bytes + 90 * missed], "eventual")
        catch_up = call("catch-up read", "dynamodb", "Query", {q.DDB_READ_UNITS: rru})
        catch_up.partitions[(thread_pk, "read")] += rru
    return [(c, 1.0) for c in calls]


def polling_scenario(m: Measurement) -> list[tuple[Call, float]]:
    return _stretch_generate(m, m.base_calls()) + polling_delivery(m)


def push_scenario(m: Measurement) -> list[tuple[Call, float]]:
    measured = measured_push_delivery(m)
    if measured is not None:
        return _stretch_generate(m, m.base_calls()) + measured
    # Today's worker rewrites the whole text at each flush; with push it appends a delta.
    base = [c for c in m.base_calls() if c.label != "reply progress"]
    return _stretch_generate(m, base) + modelled_push_delivery(m)


def total(weighted: list[tuple[Call, float]]) -> Counter[str]:
    usage: Counter[str] = Counter()
    for call, weight in weighted:
        for quantity, amount in call.usage.items():
            usage[quantity] += amount * weight
    return usage


def modelled_share(weighted: list[tuple[Call, float]], prices: q.PriceTable) -> float:
    """The part of the infrastructure cost that comes from modelled entries or counts."""
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
    )


def _kib(n: float) -> str:
    return f"{n / 1024:.1f} KiB"


def describe(r: CostReport) -> list[str]:
    m, w = r.measurement, r.measurement.workload
    reply_sizes = [len(t.reply_text.encode()) for t in m.turns]
    flushes = [t.flushes for t in m.turns]
    lines = [
        f"workload: {w.turns} turns; {w.images} images ({w.image_width}x{w.image_height} JPEG, "
        f"{_kib(m.files.get('image/jpeg', 0))}) and {w.pdfs} PDF ({w.pdf_pages} pages, "
        f"{_kib(m.files.get('application/pdf', 0))}) attached to the first prompt; prompts "
        f"{_kib(w.prompt_bytes)}; replies {_kib(statistics.mean(reply_sizes))} (measured mean) streamed "
        f"over {w.stream_seconds:g} s; {w.watchers} watching client; {w.think_seconds:g} s between turns",
        f"polling: {w.polls_per_reply} reads of the thread per reply (every {w.poll_interval_s:g} s); "
        f"push: one delta per flush, {statistics.median(flushes):g} flushes per reply measured at "
        f"STREAM_FLUSH_MS={w.stream_flush_ms} (ideal {w.stream_seconds * 1000 / w.stream_flush_ms:g}), "
        f"{w.reconnects} reconnect per conversation",
        f"prices: {r.prices.region} list prices taken on {r.prices.taken_on} (CAPACITY_PRICES overrides)",
        "measured on moto: every request of the conversation, and one read of the thread as the page "
        "polls it (at each reply's start and end); modelled: how many polls, the generate function's "
        "wait for the real stream time, the model's tokens, and "
        + (
            "nothing of push (measured)"
            if measured_push_delivery(m) is not None
            else "push's deltas, WebSocket frames, connections and catch-up reads (push is not built yet)"
        ),
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
    header = f"{'count':>6}{'λ ms':>8}{'in AWS':>8}{'RRU':>8}{'WRU':>8}{'idx WRU':>8}{'S3':>5}{'SQS':>5}"
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
        )
    rows.append(
        "(per invocation, or per request where no function runs; λ ms: median duration in process,"
        " of which 'in AWS' inside moto's answers)"
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
