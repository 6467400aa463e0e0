"""Export: POST /exports makes one ZIP of the account in the background (its files as
uploaded, matching their sha256; its threads as JSON that reads back as the same
messages), across several worker runs when one is not enough; one at a time per owner."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

from agentfiles.data import keys
from agentfiles.logic import exports
from harness import samples
from harness.aws import LocalAws


def _ample() -> int:
    return 10**9


def _say(aws: LocalAws, thread: str, content: Any, **body: Any) -> None:
    reply = aws.call_api("POST", f"/threads/{thread}/messages", json_body={"content": content, **body})
    assert reply.status == 201, reply.body


def _zip(aws: LocalAws, export_id: str) -> zipfile.ZipFile:
    body = aws.s3.get_object(Bucket=aws.resources.bucket_name, Key=keys.export_key("alice", export_id))[
        "Body"
    ]
    archive = zipfile.ZipFile(io.BytesIO(body.read()))
    assert archive.testzip() is None
    return archive


def _without_urls(message: dict[str, Any]) -> dict[str, Any]:
    parts = [
        {k: v for k, v in p.items() if k not in ("url", "urlExpiresAt", "thumbnailUrl", "path")}
        for p in message["content"]
    ]
    return {**message, "content": parts}


def test_given_an_account_with_threads_images_and_a_pdf_when_exported_then_the_zip_holds_them_exactly(aws):
    # Given two images, a PDF and a text file, in two threads
    photo = aws.upload(samples.png(40, 30), "image/png", filename="photo.png")
    drawing = aws.upload(samples.png(20, 20, color=(0, 90, 0)), "image/png", filename="../drawing.png")
    report = aws.upload(samples.pdf(pages=2), "application/pdf", filename="report.pdf")
    notes = aws.small_file(b"some notes", "text/plain", filename="notes.txt")
    first, second = aws.new_thread(title="pictures"), aws.new_thread(title="papers")
    _say(
        aws,
        first,
        [{"type": "text", "text": "look"}, {"type": "image", "fileId": photo["id"]}],
        generate=False,
    )
    _say(aws, first, "and this one", fileIds=[drawing["id"]], generate=False)
    _say(
        aws,
        second,
        [{"type": "file", "fileId": report["id"]}, {"type": "text", "text": "read"}],
        generate=False,
    )
    _say(aws, second, "notes too", fileIds=[notes["id"]], generate=False)
    # When she asks for an export, and again while it is being made
    asked = aws.call_api("POST", "/exports")
    again = aws.call_api("POST", "/exports")
    # Then the first is pending, and the second is refused
    assert asked.status == 202 and asked.body["export"]["status"] == "pending"
    assert (again.status, again.body["error"]["code"]) == (409, "export_running")
    export_id = asked.body["export"]["id"]
    # When the worker has made it
    assert aws.deliver("maintenance") == {"batchItemFailures": []}
    got = aws.call_api("GET", f"/exports/{export_id}").body["export"]
    # Then it is ready, with a short-lived URL and its size
    assert got["status"] == "ready" and got["url"] and got["expiresAt"] and got["bytes"] > 0
    archive = _zip(aws, export_id)
    assert (
        got["bytes"]
        == sum(1 for _ in [])
        + aws.s3.head_object(Bucket=aws.resources.bucket_name, Key=keys.export_key("alice", export_id))[
            "ContentLength"
        ]
    )
    # And every file is there as uploaded, matching the manifest's sha256 and the file's own
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["owner"] == "alice"
    assert manifest["counts"] == {
        "threads": 2,
        "messages": 4,
        "files": 4,
        "bytes": manifest["counts"]["bytes"],
    }
    by_id = {f["id"]: f for f in manifest["files"]}
    for file in (photo, drawing, report, notes):
        entry = by_id[file["id"]]
        data = archive.read(entry["path"])
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] == file["sha256"]
        assert entry["path"].startswith(f"files/{file['id']}/")
    assert by_id[drawing["id"]]["path"] == f"files/{drawing['id']}/.._drawing.png"
    # And each thread reads back as the same messages, oldest first, naming their files' paths
    for thread in (first, second):
        exported = json.loads(archive.read(f"threads/{thread}.json"))
        assert exported["thread"] == aws.call_api("GET", f"/threads/{thread}").body["thread"]
        served = list(reversed(aws.call_api("GET", f"/threads/{thread}/messages").body["items"]))
        assert [_without_urls(m) for m in exported["messages"]] == [_without_urls(m) for m in served]
        paths = [p["path"] for m in exported["messages"] for p in m["content"] if "fileId" in p]
        assert paths and all(path in archive.namelist() for path in paths)
    # And only the ZIP is left under her exports, and another export may begin
    assert {k for k in aws.object_keys() if k.startswith("exports/")} == {keys.export_key("alice", export_id)}
    assert aws.call_api("POST", "/exports").status == 202


def test_given_an_export_bigger_than_one_run_when_made_then_it_continues_across_runs_into_one_valid_zip(
    aws, monkeypatch
):
    # Given parts of the smallest size S3 allows, files that fill more than one, and runs
    # that each have time for two entries only
    monkeypatch.setattr(exports, "PART_SIZE", 5 * 1024 * 1024)
    big = [
        aws.upload(bytes([65 + n]) * (3 * 1024 * 1024), "text/plain", filename=f"big{n}.txt")
        for n in range(3)
    ]
    thread = aws.new_thread()
    _say(aws, thread, "three big ones", fileIds=[f["id"] for f in big], generate=False)
    export_id = aws.call_api("POST", "/exports").body["export"]["id"]
    aws.drain("maintenance")

    def runs() -> Any:
        budget = {"steps": 0}

        def time_left() -> int:
            budget["steps"] += 1
            return 10**9 if budget["steps"] <= 2 else 0

        return time_left

    # When the worker runs until it is done
    done, count = False, 0
    while not done:
        count += 1
        assert count < 20
        done = exports.run_export("alice", export_id, runs()).done
        if not done:
            # Between runs, the archive so far is saved beside it
            assert any(k.endswith(".state.json") for k in aws.object_keys())
    # Then it took several runs, and made one ZIP whose files match their sha256
    assert count >= 3
    archive = _zip(aws, export_id)
    manifest = json.loads(archive.read("manifest.json"))
    for file in big:
        entry = next(f for f in manifest["files"] if f["id"] == file["id"])
        assert hashlib.sha256(archive.read(entry["path"])).hexdigest() == file["sha256"] == entry["sha256"]
    assert (
        json.loads(archive.read(f"threads/{thread}.json"))["messages"][0]["content"][0]["text"]
        == "three big ones"
    )
    assert not any(k.endswith((".state.json", ".tail")) for k in aws.object_keys())


def test_another_owners_export_is_not_found(aws):
    export_id = aws.call_api("POST", "/exports").body["export"]["id"]
    reply = aws.call_api("GET", f"/exports/{export_id}", sub="bob")
    assert (reply.status, reply.body["error"]["code"]) == (404, "export_not_found")
    assert aws.call_api("GET", f"/exports/{export_id}").status == 200
