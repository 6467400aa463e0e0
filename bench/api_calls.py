"""AWS calls per operation, and bytes the upload trigger reads, against the minimum each operation needs.

Counted with botocore's before-call hook on moto (in-process), so the figures are
exact request counts, not timings.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections import Counter

from PIL import Image

from agentfiles.data import blobs, clients
from agentfiles_local.events import LambdaContext
from harness.aws import local_aws
from harness.calls import count_calls

MIB = 1024 * 1024


def _png_of_size(size: int, shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), (shade, shade, shade)).save(buffer, format="PNG")
    head = buffer.getvalue()
    return head + b"\0" * (size - len(head))  # trailing bytes after IEND: still a PNG by its magic


def _ratio(counts: Counter, minimum: dict[str, int]) -> str:
    total, floor = sum(counts.values()), sum(minimum.values())
    detail = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
    return f"{total} calls ({detail}); minimum {floor}; ratio {total / floor:.2f}"


def _trigger_reads(aws, size: int, s3_verified: bool) -> tuple[Counter, int, str]:
    from functions.upload_trigger.handler import lambda_handler

    data = _png_of_size(size, shade=1 if s3_verified else 2)
    sha = hashlib.sha256(data).hexdigest()
    body = {"filename": "big.png", "mediaType": "image/png", "size": size, "sha256": sha}
    file = aws.call_api("POST", "/files/uploads", json_body=body).body["file"]
    aws.drain("uploads")
    aws.s3.put_object(
        Bucket=aws.resources.bucket_name, Key=f"files/alice/{file['id']}", Body=data, ContentType="image/png"
    )
    messages = aws.drain("uploads")
    s3 = clients.s3()
    bytes_read = 0

    def count_body(parsed, **_):
        nonlocal bytes_read
        bytes_read += int(parsed.get("ContentLength", 0))

    def report_checksum(parsed, **_):
        parsed["ChecksumSHA256"] = blobs.sha256_hex_to_b64(sha)

    s3.meta.events.register("after-call.s3.GetObject", count_body)
    if s3_verified:
        s3.meta.events.register("after-call.s3.HeadObject", report_checksum)
    try:
        with count_calls() as calls:
            lambda_handler(aws.sqs_event_for("uploads", messages), LambdaContext("upload_trigger", 60))
    finally:
        s3.meta.events.unregister("after-call.s3.GetObject", count_body)
        s3.meta.events.unregister("after-call.s3.HeadObject", report_checksum)
    status = aws.file_row("alice", file["id"])["status"]
    return calls.counts(), bytes_read, status


def run() -> None:
    with local_aws(POWERTOOLS_METRICS_DISABLED="true", POWERTOOLS_LOG_LEVEL="ERROR") as aws:
        small = base64.b64encode(b"hello").decode()
        file_id = aws.call_api(
            "POST", "/files", json_body={"filename": "a.txt", "mediaType": "text/plain", "data": small}
        ).body["file"]["id"]

        with count_calls() as calls:
            aws.call_api(
                "POST", "/files/uploads", json_body={"filename": "x.png", "mediaType": "image/png", "size": 9}
            )
        counts = _ratio(calls.counts(), {"TransactWriteItems": 1})
        print(
            f"   presign, no checksum: {counts} "
            "(the row and its quota reservation in one transaction; the URL costs no call)"
        )
        with count_calls() as calls:
            body = {"filename": "x.png", "mediaType": "image/png", "size": 9, "sha256": "ab" * 32}
            aws.call_api("POST", "/files/uploads", json_body=body)
        minimum = {"GetItem": 1, "TransactWriteItems": 1}
        print(f"   presign with sha256 (dedup miss): {_ratio(calls.counts(), minimum)}")

        with count_calls() as calls:
            data = base64.b64encode(_png_of_size(2048, shade=3)).decode()
            aws.call_api(
                "POST", "/files", json_body={"filename": "s.png", "mediaType": "image/png", "data": data}
            )
        minimum = {"GetItem": 1, "PutObject": 1, "TransactWriteItems": 2}
        print(
            f"   small upload (dedup miss): {_ratio(calls.counts(), minimum)} "
            "(the row and its reservation before the bytes, then ready with its hash row)"
        )

        for size in (1024, 50 * MIB):
            for verified in (True, False):
                counts, read, status = _trigger_reads(aws, size, verified)
                s3_calls = {k: v for k, v in counts.items() if k in ("HeadObject", "GetObject")}
                path = (
                    "S3-verified checksum (AWS; HEAD's checksum emulated on moto)"
                    if verified
                    else ("checksum hashed from the stream (moto, or no checksum on S3)")
                )
                window = min(size, blobs.SNIFF_BYTES)
                print(
                    f"   trigger {size // 1024:>6} KiB, {path}: {dict(sorted(s3_calls.items()))}, "
                    f"table calls {sum(counts.values()) - sum(s3_calls.values())}, bytes read {read:,} "
                    f"= {read / window:.2f} x min(size, 4 KiB) → {status}"
                )

        thread = aws.new_thread()
        with count_calls() as calls:
            aws.call_api(
                "POST", f"/threads/{thread}/messages", json_body={"content": "hi", "fileIds": [file_id]}
            )
        counts = _ratio(calls.counts(), {"TransactWriteItems": 1, "SendMessage": 1})
        print(f"   save message + reply job: {counts} (the rate window rides in the transaction)")
        for n in range(10):
            aws.call_api(
                "POST",
                f"/threads/{thread}/messages",
                json_body={
                    "content": [{"type": "text", "text": f"{n}"}, {"type": "image", "fileId": file_id}],
                    "generate": False,
                },
            )
        with count_calls() as calls:
            page = aws.call_api("GET", f"/threads/{thread}/messages", query={"limit": "20"}).body
        print(
            f"   list a page of {len(page['items'])} messages with files: "
            f"{_ratio(calls.counts(), {'Query': 1, 'BatchGetItem': 1})}"
        )
        message_id = page["items"][0]["id"]
        with count_calls() as calls:
            aws.call_api("DELETE", f"/threads/{thread}/messages/{message_id}")
        print(
            f"   delete a message: {_ratio(calls.counts(), {'TransactWriteItems': 1})} "
            "(the extra GetItem reads what the delete must release)"
        )
        spare = aws.call_api(
            "POST", "/files", json_body={"filename": "d.txt", "mediaType": "text/plain", "data": "ZGVsZXRl"}
        ).body["file"]["id"]
        with count_calls() as calls:
            aws.call_api("DELETE", f"/files/{spare}")
        minimum = {"UpdateItem": 1, "DeleteObject": 1, "DeleteItem": 1, "TransactWriteItems": 1}
        print(
            f"   delete a file: {_ratio(calls.counts(), minimum)} "
            "(tombstone, object, hash row, then the file row with its release in one transaction; "
            "the extra GetItem answers 404 or 409 before anything changes)"
        )
        with count_calls() as calls:
            aws.call_api("GET", "/usage")
        print(f"   usage: {_ratio(calls.counts(), {'BatchGetItem': 1})} (storage and today in one read)")
