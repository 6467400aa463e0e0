"""Items one vacuum run reads with 100,000 live files vs 100 (100 garbage files each): cost follows garbage.

Live files are referenced (refcount 1) and so carry no gc marker; garbage files are
unreferenced and untouched for two days, with their objects and hash rows; each
owner's usage row counts its files, as registering them would have left it. Both
tables are seeded with BatchWriteItem on in-process moto (`mock_aws`). The items
are counted twice: by the run itself (`VacuumResult.items_read`) and, as a check,
by a botocore hook that adds up every item DynamoDB returned to the run's client.
The run's wall time is moto's, which walks the whole table to answer an index
query; it says nothing of DynamoDB, whose reads are what the item counts measure.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from agentfiles.data import clients, keys
from agentfiles.data.table import to_item
from agentfiles.logic.vacuum import VacuumResult, run_vacuum
from agentfiles.models.common import iso_from_ms, now_ms
from harness.aws import LocalAws, local_aws
from harness.calls import count_calls

LIVE_MANY = 100_000
LIVE_FEW = 100
GARBAGE = 100
OWNERS = 100
BATCH = 25  # BatchWriteItem's limit
TWO_DAYS_MS = 2 * 24 * 3600 * 1000
TARGET = 1.10
FILE_SIZE = 1024


def _file_row(owner: str, n: int, *, live: bool, touched: int) -> dict[str, Any]:
    file_id = f"{'L' if live else 'G'}{n:025d}"
    row = {
        "pk": keys.owner_pk(owner),
        "sk": keys.file_sk(file_id),
        "id": file_id,
        "owner": owner,
        "filename": f"{file_id}.txt",
        "mediaType": "text/plain",
        "size": FILE_SIZE,
        "sha256": f"{n:064x}" if not live else f"{n + 10**9:064x}",
        "status": "ready",
        "refcount": 1 if live else 0,
        "createdAt": iso_from_ms(touched),
        "updatedAt": iso_from_ms(touched),
        "lastTouchedAt": touched,
        "s3Key": keys.object_key(owner, file_id),
    }
    if not live:
        row["gcShard"] = keys.gc_shard(file_id)
    return row


def _write(aws: LocalAws, rows: list[dict[str, Any]]) -> None:
    table = aws.resources.table_name
    for start in range(0, len(rows), BATCH):
        request = {table: [{"PutRequest": {"Item": to_item(r)}} for r in rows[start : start + BATCH]]}
        while request:
            request = aws.dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems") or {}


def _seed(aws: LocalAws, live: int) -> float:
    started = time.perf_counter()
    now = now_ms()
    owners = [f"user{n:03d}" for n in range(OWNERS)]
    _write(aws, [_file_row(owners[n % OWNERS], n, live=True, touched=now) for n in range(live)])
    garbage = [
        _file_row(owners[n % OWNERS], n, live=False, touched=now - TWO_DAYS_MS) for n in range(GARBAGE)
    ]
    hashes = [{"pk": r["pk"], "sk": keys.hash_sk(r["sha256"]), "fileId": r["id"]} for r in garbage]
    _write(aws, garbage + hashes)
    files = Counter(owners[n % OWNERS] for n in range(live)) + Counter(
        owners[n % OWNERS] for n in range(GARBAGE)
    )
    usage = [
        {
            "pk": keys.owner_pk(owner),
            "sk": keys.usage_key(owner).sk,
            "bytes": FILE_SIZE * count,
            "files": count,
        }
        for owner, count in files.items()
    ]
    _write(aws, usage)
    for row in garbage:
        aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=row["s3Key"], Body=b"x" * row["size"])
    return time.perf_counter() - started


class ReturnedItems:
    """Adds up the items in every DynamoDB response: Query pages, the row an update
    returns, and the old row a refused conditional write hands back."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            self.count += len(parsed.get("Items", []))
        elif parsed.get("Attributes") or parsed.get("Item"):
            self.count += 1


def _vacuum_once(aws: LocalAws) -> tuple[VacuumResult, int, Counter[str], float]:
    returned = ReturnedItems()
    client = clients.dynamodb()
    client.meta.events.register("after-call.dynamodb.*", returned)
    try:
        started = time.perf_counter()
        with count_calls() as calls:
            result = run_vacuum(lambda: 10**9)
        elapsed = time.perf_counter() - started
    finally:
        client.meta.events.unregister("after-call.dynamodb.*", returned)
    assert not aws.object_keys(), "every garbage object should be gone"
    return result, returned.count, calls.counts(), elapsed


def run() -> None:
    figures: dict[int, tuple[VacuumResult, int]] = {}
    for live in (LIVE_MANY, LIVE_FEW):
        with local_aws(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR") as aws:
            seeded = _seed(aws, live)
            result, returned, calls, elapsed = _vacuum_once(aws)
        figures[live] = (result, returned)
        print(
            f"   {live:>7,} live + {GARBAGE} garbage (seeded in {seeded:.1f} s with BatchWriteItem on "
            f"in-process moto): items read {result.items_read} (hook: {returned}), "
            f"files deleted {result.files_deleted}, run {elapsed:.2f} s, "
            f"calls {dict(sorted(calls.items()))}",
            flush=True,
        )
    many, few = figures[LIVE_MANY][0].items_read, figures[LIVE_FEW][0].items_read
    ratio = many / few if few else float("inf")
    verdict = "within" if ratio <= TARGET else "OVER"
    print(
        f"   items read, {LIVE_MANY:,} live vs {LIVE_FEW} live: {many} / {few} = {ratio:.3f} "
        f"({verdict} the {TARGET:.2f} target; {GARBAGE} garbage files in both)"
    )
