"""The local stack at scale: a save with 5,000 more rows vs fresh (≤ 1.3), 16 clients vs 1 (≥ 1.5).

Runs `agentfiles serve` as subprocesses, as `make run` does, and talks to them over
HTTP only (keep-alive connections, one per client). A save is
`POST /threads/{id}/messages` with one file and no reply.

Two stacks run side by side: a fresh one, and one with 5,000 more rows: copies of the
rows the API wrote for another owner (threads and messages), written straight to its
moto with BatchWriteItem, without the attributes that would put them in an index (so
that the vacuum has nothing to do with them). Saves alternate between the two, so that
whatever else the machine does weighs on both alike.

The load runs on the stack with the rows: one owner whose clients each keep a thread,
and save (with one of four shared files), list and delete messages. Phases of one
client and of 16 alternate, for the same reason. At the end every file's refcount
must equal the live messages that reference it.

Each figure comes with the CPU time a request took in each of the stack's processes
(from /proc), which does not depend on what else runs on the machine.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import statistics
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3

from agentfiles_local.process import StackProcess

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED_ROWS = 5_000
SAVES = 40
WARM_UP = 5
CLIENTS = 16
ROUNDS = 4
PHASE_SECONDS = 2.0
FILES = 4
SAVE_TARGET = 1.3
THROUGHPUT_TARGET = 1.5
BATCH = 25  # BatchWriteItem's limit
PROCESSES = ("stack", "moto", "functions")


class Refused(Exception):
    """An answer that is not 2xx (or no answer at all)."""


@dataclass
class Connection:
    """One client: a keep-alive connection and a token."""

    port: int
    token: str = ""
    _http: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None) -> Any:
        headers = {"content-type": "application/json"}
        if self.token:
            headers["authorization"] = f"Bearer {self.token}"
        payload = None if body is None else json.dumps(body)
        for attempt in (1, 2):
            if self._http is None:
                self._http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                self._http.request(method, path, payload, headers)
                response = self._http.getresponse()
                raw = response.read()
                break
            except (ConnectionError, http.client.HTTPException, TimeoutError) as error:
                self._http.close()
                self._http = None
                if attempt == 2:
                    raise Refused(f"{method} {path}: {error!r}") from error
        if not 200 <= response.status < 300:
            raise Refused(f"{method} {path}: {response.status} {raw[:200]!r}")
        return json.loads(raw) if raw else None

    def close(self) -> None:
        if self._http is not None:
            self._http.close()


@dataclass
class Stack:
    """A local stack in its own process (`agentfiles_local.process`), and how the bench
    talks to it."""

    running: StackProcess

    @classmethod
    def start(cls) -> Stack:
        settings = {
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "GRACE_SECONDS": "86400",
            # The vacuum's first run (and its cold start) would land in one window
            # or the other; the bench measures requests, not the schedule.
            "VACUUM_INTERVAL_SECONDS": "3600",
        }
        return cls(StackProcess.start(settings, cwd=REPO_ROOT))

    @property
    def process(self) -> subprocess.Popen[bytes]:
        return self.running.process

    @property
    def port(self) -> int:
        return int(urlsplit(self.running.base_url).port or 0)

    @property
    def health(self) -> dict[str, Any]:
        return self.running.health

    @property
    def log(self) -> Path:
        return self.running.output_path

    def stop(self) -> None:
        self.running.stop()

    def client(self, sub: str) -> Connection:
        connection = Connection(self.port)
        connection.token = connection.call("POST", "/dev/token", {"sub": sub})["token"]
        return connection

    def dynamodb(self) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.health["region"]
        ).client("dynamodb", endpoint_url=self.health["awsEndpoint"])


def _new_file(client: Connection, n: int) -> str:
    data = base64.b64encode(f"file {n}\n".encode()).decode()
    body = {"filename": f"f{n}.txt", "mediaType": "text/plain", "data": data}
    return str(client.call("POST", "/files", body)["file"]["id"])


def _save(client: Connection, thread: str, file_id: str) -> str:
    body = {"content": "what is in this file?", "fileIds": [file_id], "generate": False}
    return str(client.call("POST", f"/threads/{thread}/messages", body)["message"]["id"])


def _saves(stacks: list[Stack], clients: list[Connection], threads: list[str], files: list[str]) -> list[Any]:
    """`SAVES` saves on each stack, alternating (and which goes first, too): per stack,
    the median and the CPU a save took in each of its processes."""
    for _ in range(WARM_UP):
        for client, thread, file_id in zip(clients, threads, files, strict=True):
            _save(client, thread, file_id)
    took: list[list[float]] = [[] for _ in stacks]
    before = [_cpu_seconds(stack.process.pid) for stack in stacks]
    for round_ in range(SAVES):
        order = range(len(stacks)) if round_ % 2 == 0 else reversed(range(len(stacks)))
        for n in order:
            started = time.perf_counter()
            _save(clients[n], threads[n], files[n])
            took[n].append(time.perf_counter() - started)
    after = [_cpu_seconds(stack.process.pid) for stack in stacks]
    return [
        (
            statistics.median(took[n]),
            {key: (after[n][key] - before[n][key]) * 1000 / SAVES for key in after[n]},
        )
        for n in range(len(stacks))
    ]


def _cpu(cpu_ms: dict[str, float]) -> str:
    return (
        f"CPU ms per request: gateway and pollers {cpu_ms['stack']:.1f}, "
        f"moto {cpu_ms['moto']:.1f}, functions {cpu_ms['functions']:.1f}"
    )


def _seed(stack: Stack, rows: int) -> int:
    """`rows` copies of what the API wrote for one owner, under other owners, through
    BatchWriteItem; returns the table's item count afterwards."""
    template = stack.client("seed-template")
    thread = template.call("POST", "/threads", {"title": "a thread with some history"})["thread"]["id"]
    for n in range(4):
        template.call(
            "POST", f"/threads/{thread}/messages", {"content": f"message {n} " * 20, "generate": False}
        )
    dynamodb = stack.dynamodb()
    table = stack.health["table"]
    described = dynamodb.describe_table(TableName=table)["Table"]
    indexed = {
        key["AttributeName"]
        for index in described.get("GlobalSecondaryIndexes", [])
        for key in index["KeySchema"]
    }
    found = dynamodb.scan(
        TableName=table,
        FilterExpression="contains(pk, :owner)",
        ExpressionAttributeValues={":owner": {"S": "seed-template"}},
    )["Items"]
    shapes = [{k: v for k, v in item.items() if k not in indexed} for item in found]
    written = 0
    batch: list[dict[str, Any]] = []
    while written < rows:
        owner = f"seed-{written // len(shapes):05d}"
        for shape in shapes[: rows - written]:
            text = json.dumps(shape).replace("seed-template", owner)
            batch.append({"PutRequest": {"Item": json.loads(text)}})
            written += 1
            if len(batch) == BATCH:
                dynamodb.batch_write_item(RequestItems={table: batch})
                batch = []
    if batch:
        dynamodb.batch_write_item(RequestItems={table: batch})
    return int(dynamodb.describe_table(TableName=table)["Table"]["ItemCount"])


def _cpu_seconds(root: int) -> dict[str, float]:
    """CPU time (user + system) of the stack's processes, from /proc: its own
    (gateway, pollers), moto's, the function instances' (named `api#1`...), and the
    server that forks them."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    used: dict[int, tuple[str, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            name = (entry / "comm").read_text().strip()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        used[int(entry.name)] = (name, (int(fields[11]) + int(fields[12])) / ticks)
    descendants, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - descendants
        descendants |= frontier
    totals = {**dict.fromkeys(PROCESSES, 0.0), "stack": used.get(root, ("", 0.0))[1]}
    for pid in descendants:
        name, seconds = used[pid]
        totals["moto" if name == "moto" else "functions"] += seconds
    return totals


@dataclass
class Load:
    done: int = 0
    failures: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    seconds: float = 0.0
    cpu_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(PROCESSES, 0.0))

    @property
    def throughput(self) -> float:
        return self.done / self.seconds

    @property
    def cpu_ms(self) -> dict[str, float]:
        return {key: seconds * 1000 / max(self.done, 1) for key, seconds in self.cpu_seconds.items()}


def _client_loop(
    client: Connection, thread: str, files: list[str], stop: threading.Event, load: Load, lock: threading.Lock
) -> None:
    """Save, save, list, delete the oldest: the mix of a chat user, one owner."""
    live: list[str] = []
    step = 0
    while not stop.is_set():
        step += 1
        started = time.perf_counter()
        try:
            if step % 4 == 3:
                client.call("GET", f"/threads/{thread}/messages?limit=20")
            elif step % 4 == 0 and live:
                client.call("DELETE", f"/threads/{thread}/messages/{live.pop(0)}")
            else:
                live.append(_save(client, thread, files[step % len(files)]))
        except Refused as error:
            with lock:
                load.failures.append(str(error))
            continue
        took = time.perf_counter() - started
        with lock:
            load.done += 1
            load.latencies.append(took)


def _phase(
    stack: Stack, load: Load, connections: list[Connection], threads: list[str], files: list[str]
) -> None:
    """`PHASE_SECONDS` of load from these clients, added to `load`."""
    lock, stop = threading.Lock(), threading.Event()
    workers = [
        threading.Thread(target=_client_loop, args=(connection, thread, files, stop, load, lock))
        for connection, thread in zip(connections, threads, strict=False)
    ]
    cpu_before = _cpu_seconds(stack.process.pid)
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    time.sleep(PHASE_SECONDS)
    stop.set()
    for worker in workers:
        worker.join(120)
    load.seconds += time.perf_counter() - started
    cpu_after = _cpu_seconds(stack.process.pid)
    for key in load.cpu_seconds:
        load.cpu_seconds[key] += cpu_after[key] - cpu_before[key]


def _loads(stack: Stack, owner: str, files: list[str], threads: list[str]) -> tuple[Load, Load]:
    """Phases of one client and of `CLIENTS` clients, alternating for `ROUNDS` rounds."""
    connections = [stack.client(owner) for _ in range(CLIENTS)]
    one, many = Load(), Load()
    for _ in range(ROUNDS):
        _phase(stack, one, connections[:1], threads[:1], files)
        _phase(stack, many, connections, threads, files)
    for connection in connections:
        connection.close()
    return one, many


def _refcounts_hold(client: Connection, files: list[str], threads: list[str]) -> tuple[bool, str]:
    """Every file's refcount against the live messages that reference it, both read
    through the API."""
    referenced: Counter[str] = Counter()
    for thread in threads:
        cursor = None
        while True:
            page = client.call(
                "GET", f"/threads/{thread}/messages?limit=100" + (f"&cursor={cursor}" if cursor else "")
            )
            for message in page["items"]:
                referenced.update(set(message.get("fileIds") or []))
            cursor = page.get("nextCursor")
            if not cursor:
                break
    counts = {file_id: client.call("GET", f"/files/{file_id}")["file"]["refcount"] for file_id in files}
    detail = ", ".join(f"{counts[f]}/{referenced[f]}" for f in files)
    return all(counts[f] == referenced[f] for f in files), detail


def _describe(load: Load) -> str:
    cuts = statistics.quantiles(load.latencies, n=100) if len(load.latencies) > 1 else [0.0] * 99
    return (
        f"{load.throughput:.1f} req/s ({load.done} in {load.seconds:.1f} s, "
        f"p50 {cuts[49] * 1000:.0f} ms, p99 {cuts[98] * 1000:.0f} ms, failed {len(load.failures)}); "
        + _cpu(load.cpu_ms)
    )


def run() -> None:
    stacks: list[Stack] = []
    try:
        starting = [threading.Thread(target=lambda: stacks.append(Stack.start())) for _ in range(2)]
        for thread in starting:
            thread.start()
        for thread in starting:
            thread.join()
        if len(stacks) < 2:
            raise RuntimeError("a local stack did not start")
        fresh, grown = stacks
        workers = grown.health.get("concurrency") or "one instance per function"
        print(f"   stacks: {fresh.health['api']} (fresh), {grown.health['api']}; concurrency {workers}")
        owners = [stack.client("bench") for stack in stacks]
        files = [[_new_file(owner, n) for n in range(FILES)] for owner in owners]
        first_threads = [owner.call("POST", "/threads", {})["thread"]["id"] for owner in owners]

        # Both stacks get the same preparation (the template thread the rows copy, its
        # scan); only the grown one gets the copies.
        _seed(fresh, 0)
        started = time.perf_counter()
        items = _seed(grown, SEED_ROWS)
        took = time.perf_counter() - started
        print(f"   seeded {SEED_ROWS:,} rows with BatchWriteItem in {took:.1f} s: {items:,} items")
        (fresh_p50, fresh_cpu), (grown_p50, grown_cpu) = _saves(
            stacks, owners, first_threads, [stack_files[0] for stack_files in files]
        )
        print(f"   save p50, fresh table: {fresh_p50 * 1000:.1f} ms ({SAVES} saves); {_cpu(fresh_cpu)}")
        print(f"   save p50, {SEED_ROWS:,} more rows: {grown_p50 * 1000:.1f} ms; {_cpu(grown_cpu)}")
        print(f"   save ratio {grown_p50 / fresh_p50:.2f} (target ≤ {SAVE_TARGET})")
        fresh.stop()

        owner = owners[1]
        threads = [owner.call("POST", "/threads", {})["thread"]["id"] for _ in range(CLIENTS)]
        one, many = _loads(grown, "bench", files[1], threads)
        print(f"   1 client:   {_describe(one)}")
        print(f"   {CLIENTS} clients: {_describe(many)}")
        print(
            f"   throughput ratio {many.throughput / one.throughput:.2f} (target ≥ {THROUGHPUT_TARGET}); "
            f"failed requests {len(one.failures) + len(many.failures)}"
        )
        for failure in (one.failures + many.failures)[:5]:
            print(f"     failed: {failure}")
        held, detail = _refcounts_hold(owner, files[1], [first_threads[1], *threads])
        verdict = "match" if held else "DO NOT match"
        print(f"   refcounts {verdict} live messages (refcount/referenced: {detail})")
        for connection in owners:
            connection.close()
    finally:
        for stack in stacks:
            stack.stop()
            stack.log.unlink(missing_ok=True)
