"""The vacuum: unreferenced files past their grace period are deleted, referenced ones
never, whatever the interleaving with messages and wherever a run is cut short.

Time moves by writing `lastTouchedAt` / `uploadExpiresAt` into rows, never by waiting.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from agentfiles.data import blobs, file_rows, keys
from agentfiles.logic import vacuum
from agentfiles.logic.files import purge
from agentfiles.models.common import now_ms
from agentfiles_local.events import LambdaContext
from harness import samples

DAY_MS = 24 * 3600 * 1000
EVENTS = Path(__file__).parents[2] / "events"


class SimulatedCrash(BaseException):
    """The process dies (a timeout, an out-of-memory kill): nothing in the run can
    catch it, unlike an error from AWS."""


def _ample() -> int:
    return 10**9


def _run() -> vacuum.VacuumResult:
    return vacuum.run_vacuum(_ample)


def _age(aws, file_id: str, *, days: float = 2, owner: str = "alice") -> None:
    """Move a file back in time: last touched `days` ago, and its upload URL (if it
    is pending) expired as long ago as it would have."""
    row = aws.file_row(owner, file_id)
    shift = int(days * DAY_MS)
    names, values = ["lastTouchedAt = :touched"], {":touched": {"N": str(row["lastTouchedAt"] - shift)}}
    if "uploadExpiresAt" in row:
        names.append("uploadExpiresAt = :expires")
        values[":expires"] = {"N": str(row["uploadExpiresAt"] - shift)}
    aws.dynamodb.update_item(
        TableName=aws.resources.table_name,
        Key=keys.file_key(owner, file_id).dynamo,
        UpdateExpression="SET " + ", ".join(names),
        ExpressionAttributeValues=values,
    )


def _hash_row(aws, sha256: str, owner: str = "alice") -> dict | None:
    return aws.dynamodb.get_item(
        TableName=aws.resources.table_name, Key=keys.hash_key(owner, sha256).dynamo, ConsistentRead=True
    ).get("Item")


def _garbage(aws, data: bytes | None = None, media_type: str = "image/png") -> dict:
    file = aws.small_file(data or samples.png(), media_type)
    _age(aws, file["id"])
    return file


def _candidate(file_id: str, cutoff: int) -> file_rows.GcCandidate:
    """The candidate as the vacuum reads it from the index."""
    page = vacuum.candidate_page(keys.gc_shard(file_id), cutoff)
    [found] = [c for c in page.candidates if c.file_id == file_id]
    return found


def _save(aws, thread: str, file_ids: list[str]):
    return aws.call_api(
        "POST",
        f"/threads/{thread}/messages",
        json_body={"content": "see", "fileIds": file_ids, "generate": False},
    )


def _register_again(aws, data: bytes, sha256: str):
    """POST /files/uploads for content the owner may already have (a dedup hit if so)."""
    body = {"filename": "again.png", "mediaType": "image/png", "size": len(data), "sha256": sha256}
    return aws.call_api("POST", "/files/uploads", json_body=body)


def _gone(aws, file: dict) -> bool:
    return (
        aws.file_row("alice", file["id"]) is None
        and f"files/alice/{file['id']}" not in aws.object_keys()
        and _hash_row(aws, file["sha256"]) is None
    )


# ---- what is deleted and what is kept ------------------------------------------


def test_given_an_unreferenced_file_past_grace_when_the_vacuum_runs_then_object_hash_and_row_are_deleted(aws):
    # Given a ready, unreferenced file last touched two days ago
    data = samples.png()
    file = _garbage(aws, data)
    assert _hash_row(aws, file["sha256"]) is not None
    # When the vacuum runs
    result = _run()
    # Then its object, its hash row and its file row are gone, and the run says so
    assert _gone(aws, file)
    assert result.files_deleted == 1 and result.bytes_freed == len(data)
    assert not result.stopped_early
    # And the same content uploaded again is a new file, not a dedup hit on the deleted one
    again = _register_again(aws, data, file["sha256"])
    assert again.status == 201 and again.body["file"]["id"] != file["id"]


def test_given_an_unreferenced_file_inside_grace_when_the_vacuum_runs_then_it_is_kept_and_not_even_read(aws):
    # Given a file uploaded just now (the grace period is 24 hours)
    file = aws.small_file(samples.png(), "image/png")
    # When the vacuum runs
    result = _run()
    # Then the file and its object stay, and the run read nothing
    assert aws.file_row("alice", file["id"])["status"] == "ready"
    assert f"files/alice/{file['id']}" in aws.object_keys()
    assert result.files_deleted == 0 and result.items_read == 0


def test_given_a_referenced_file_untouched_for_days_when_the_vacuum_runs_then_it_is_never_deleted(aws):
    # Given a file a message references, last touched long ago
    file = aws.small_file(samples.png(), "image/png")
    assert _save(aws, aws.new_thread(), [file["id"]]).status == 201
    _age(aws, file["id"], days=30)
    # When the vacuum runs
    result = _run()
    # Then it is untouched: not a candidate at all
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and row["refcount"] == 1
    assert f"files/alice/{file['id']}" in aws.object_keys()
    assert result.files_deleted == 0 and result.items_read == 0


def test_given_a_referenced_file_marked_by_a_decrement_when_the_vacuum_runs_then_it_only_loses_its_marker(
    aws,
):
    # Given a file held by two messages, one of them deleted (the decrement sets the marker)
    file = aws.small_file(samples.png(), "image/png")
    thread = aws.new_thread()
    first = _save(aws, thread, [file["id"]]).body["message"]["id"]
    assert _save(aws, thread, [file["id"]]).status == 201
    assert aws.call_api("DELETE", f"/threads/{thread}/messages/{first}").status == 204
    _age(aws, file["id"])
    assert "gcShard" in aws.file_row("alice", file["id"])
    # When the vacuum runs
    result = _run()
    # Then the file stays with its reference, out of the gc index
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and row["refcount"] == 1 and "gcShard" not in row
    assert result.markers_cleared == 1 and result.files_deleted == 0


@pytest.mark.parametrize("uploaded", [False, True], ids=["never-uploaded", "object-never-checked"])
def test_given_an_abandoned_pending_upload_past_expiry_and_grace_when_the_vacuum_runs_then_it_is_deleted(
    aws, uploaded
):
    # Given a registered upload whose URL expired more than the grace period ago,
    # with or without an object that was never checked
    file = aws.call_api(
        "POST", "/files/uploads", json_body={"filename": "a.txt", "mediaType": "text/plain", "size": 5}
    ).body["file"]
    if uploaded:
        aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=f"files/alice/{file['id']}", Body=b"hello")
    _age(aws, file["id"])
    # When the vacuum runs
    result = _run()
    # Then the row and any object are gone
    assert aws.file_row("alice", file["id"]) is None
    assert f"files/alice/{file['id']}" not in aws.object_keys()
    assert result.files_deleted == 1 and result.bytes_freed == 0


def test_given_a_pending_upload_whose_url_expired_less_than_grace_ago_when_the_vacuum_runs_then_it_is_kept(
    aws,
):
    # Given a pending file registered long ago whose URL expired only an hour ago
    file = aws.call_api(
        "POST", "/files/uploads", json_body={"filename": "a.txt", "mediaType": "text/plain", "size": 5}
    ).body["file"]
    row = aws.file_row("alice", file["id"])
    aws.dynamodb.update_item(
        TableName=aws.resources.table_name,
        Key=keys.file_key("alice", file["id"]).dynamo,
        UpdateExpression="SET lastTouchedAt = :touched, uploadExpiresAt = :expires",
        ExpressionAttributeValues={
            ":touched": {"N": str(row["lastTouchedAt"] - 2 * DAY_MS)},
            ":expires": {"N": str(now_ms() - 3600 * 1000)},
        },
    )
    # When the vacuum runs
    result = _run()
    # Then it stays pending and is skipped, still a candidate for a later run
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "pending" and "gcShard" in row
    assert result.candidates_skipped == 1 and result.files_deleted == 0


def test_given_a_rejected_upload_past_grace_when_the_vacuum_runs_then_its_row_is_deleted(aws):
    # Given an upload whose bytes were not what was declared
    file = aws.upload(samples.png(), "image/png", body=samples.jpeg())
    assert file["status"] == "rejected"
    _age(aws, file["id"])
    # When the vacuum runs
    result = _run()
    # Then the rejected row is gone too
    assert aws.file_row("alice", file["id"]) is None
    assert result.files_deleted == 1 and result.bytes_freed == 0


def test_given_a_dedup_hit_on_an_old_file_when_the_vacuum_runs_then_the_touch_protects_it_for_grace(aws):
    # Given a file untouched for two days
    data = samples.png()
    file = _garbage(aws, data)
    # When the same content is registered again (the client is about to attach it)
    hit = _register_again(aws, data, file["sha256"])
    assert hit.status == 200 and hit.body["file"]["id"] == file["id"]
    result = _run()
    # Then the vacuum leaves it: it was touched inside the grace period
    assert aws.file_row("alice", file["id"])["status"] == "ready"
    assert result.files_deleted == 0
    # And the client can still attach it
    assert _save(aws, aws.new_thread(), [file["id"]]).status == 201


def test_given_a_candidate_read_when_a_dedup_hit_touches_it_before_the_tombstone_then_it_is_skipped(aws):
    # Given an old file the vacuum has read as a candidate
    data = samples.png()
    file = _garbage(aws, data)
    now = now_ms()
    cutoff = vacuum.cutoff_ms(now)
    candidate = _candidate(file["id"], cutoff)
    # When a dedup hit touches it before the tombstone
    hit = _register_again(aws, data, file["sha256"])
    assert hit.status == 200
    # Then the tombstone is refused and the file stays a (later) candidate
    assert vacuum.settle(candidate, cutoff, now).outcome == "skipped"
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and "gcShard" in row


def test_given_two_runs_that_read_the_same_candidate_when_both_settle_it_then_it_is_deleted_once(aws):
    # Given an old unreferenced file, and two vacuum runs (a retry meeting the next
    # scheduled run) that both read it as a candidate
    data = samples.png()
    file = _garbage(aws, data)
    before = aws.call_api("GET", "/usage").body["storage"]
    now = now_ms()
    cutoff = vacuum.cutoff_ms(now)
    first, second = _candidate(file["id"], cutoff), _candidate(file["id"], cutoff)
    # When both settle it, one after the other
    outcomes = [vacuum.settle(first, cutoff, now).outcome, vacuum.settle(second, cutoff, now).outcome]
    # Then one deletes it and the other finds nothing left to do
    assert outcomes[0] == "deleted" and outcomes[1] != "deleted"
    assert _gone(aws, file)
    # And the owner's storage is released once, not twice
    after = aws.call_api("GET", "/usage").body["storage"]
    assert (after["bytes"], after["files"]) == (before["bytes"] - len(data), before["files"] - 1)


def test_given_many_live_files_and_one_garbage_file_when_the_vacuum_runs_then_it_reads_only_the_garbage(aws):
    # Given five referenced files and one unreferenced file past grace
    thread = aws.new_thread()
    live = [aws.small_file(samples.png(color=(n, 0, 0)), "image/png")["id"] for n in range(5)]
    assert _save(aws, thread, live).status == 201
    for file_id in live:
        _age(aws, file_id)
    _garbage(aws, samples.png(color=(9, 9, 9)))
    # When the vacuum runs
    result = _run()
    # Then it read one index entry and the one row its tombstone returned
    assert result.files_deleted == 1 and result.items_read == 2


# ---- the race with a message attaching the file ---------------------------------


def test_given_a_candidate_read_when_a_message_attaches_it_first_then_the_tombstone_is_refused(aws):
    # Given an unreferenced file past grace, read by the vacuum as a candidate
    file = _garbage(aws)
    now = now_ms()
    cutoff = vacuum.cutoff_ms(now)
    candidate = _candidate(file["id"], cutoff)
    # When a message attaching it commits first
    assert _save(aws, aws.new_thread(), [file["id"]]).status == 201
    # Then the vacuum's tombstone is refused and the file only loses its marker
    assert vacuum.tombstone(candidate, cutoff, now) is None
    assert vacuum.clear_marker(candidate) is True
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "ready" and row["refcount"] == 1 and "gcShard" not in row
    assert f"files/alice/{file['id']}" in aws.object_keys()
    # And settling the stale candidate again changes nothing
    assert vacuum.settle(candidate, cutoff, now).outcome == "marker_cleared"
    assert aws.file_row("alice", file["id"])["refcount"] == 1


def test_given_a_tombstoned_file_when_a_message_attaches_it_then_the_save_is_a_409_and_no_count_moves(aws):
    # Given a file another message already holds, and an unreferenced file past grace
    thread = aws.new_thread()
    held = aws.small_file(samples.png(color=(1, 2, 3)), "image/png")["id"]
    assert _save(aws, thread, [held]).status == 201
    file = _garbage(aws)
    now = now_ms()
    cutoff = vacuum.cutoff_ms(now)
    candidate = _candidate(file["id"], cutoff)
    # When the vacuum tombstones the file first, then a message names both files
    record = vacuum.tombstone(candidate, cutoff, now)
    assert record is not None and record.status == "deleting"
    reply = _save(aws, thread, [held, file["id"]])
    # Then the save is refused cleanly: 409 file_not_ready, nothing saved, no count moved
    assert reply.status == 409
    assert reply.body["error"]["code"] == "file_not_ready"
    assert reply.body["error"]["details"] == {"fileId": file["id"], "status": "deleting"}
    assert aws.refcount("alice", held) == 1 and aws.refcount("alice", file["id"]) == 0
    assert len(aws.call_api("GET", f"/threads/{thread}/messages").body["items"]) == 1
    # And the vacuum finishes the delete
    purge(record)
    assert _gone(aws, file)


def test_given_a_file_being_deleted_when_its_late_upload_lands_then_the_trigger_removes_the_object(aws):
    # Given an abandoned upload that the vacuum has tombstoned
    file = aws.call_api(
        "POST", "/files/uploads", json_body={"filename": "a.txt", "mediaType": "text/plain", "size": 5}
    ).body["file"]
    _age(aws, file["id"])
    now = now_ms()
    cutoff = vacuum.cutoff_ms(now)
    record = vacuum.tombstone(_candidate(file["id"], cutoff), cutoff, now)
    assert record is not None
    # When its bytes arrive and the upload trigger checks them
    aws.s3.put_object(Bucket=aws.resources.bucket_name, Key=f"files/alice/{file['id']}", Body=b"hello")
    aws.run_upload_trigger()
    # Then the object is removed instead of outliving its file
    assert f"files/alice/{file['id']}" not in aws.object_keys()
    assert aws.file_row("alice", file["id"])["status"] == "deleting"
    purge(record)
    assert aws.file_row("alice", file["id"]) is None


# ---- crashes and bounded runs ----------------------------------------------------


def _crash_once_after(monkeypatch, target: object, name: str) -> None:
    real = getattr(target, name)
    crashed = False

    def step(*args, **kwargs):
        nonlocal crashed
        outcome = real(*args, **kwargs)
        if not crashed:
            crashed = True
            raise SimulatedCrash(name)
        return outcome

    monkeypatch.setattr(target, name, step)


@pytest.mark.parametrize(
    ("target", "step", "object_left", "hash_left"),
    [
        (file_rows, "tombstone", True, True),
        (blobs, "delete", False, True),
        (file_rows, "delete_hash_if_points_at", False, False),
    ],
    ids=["after-tombstone", "after-s3-delete", "after-hash-delete"],
)
def test_given_a_run_that_crashes_after_a_step_when_the_next_run_comes_then_it_finishes_the_delete(
    aws, monkeypatch, target, step, object_left, hash_left
):
    # Given an unreferenced file past grace, and a run that dies right after one step
    file = _garbage(aws)
    _crash_once_after(monkeypatch, target, step)
    with pytest.raises(SimulatedCrash):
        _run()
    # Then the file is left mid-way: tombstoned, with whatever the later steps had not removed
    row = aws.file_row("alice", file["id"])
    assert row["status"] == "deleting" and "gcShard" in row
    assert (f"files/alice/{file['id']}" in aws.object_keys()) == object_left
    assert (_hash_row(aws, file["sha256"]) is not None) == hash_left
    # And it cannot be read, listed or attached meanwhile
    assert aws.call_api("GET", f"/files/{file['id']}").status == 404
    assert _save(aws, aws.new_thread(), [file["id"]]).status == 409
    # When the next run comes
    result = _run()
    # Then it finishes the delete
    assert _gone(aws, file)
    assert result.files_deleted == 1


def test_given_a_candidate_whose_delete_fails_when_the_vacuum_runs_then_the_others_go_and_it_is_retried(
    aws, monkeypatch
):
    # Given three garbage files, and S3 failing for one of them
    files = [_garbage(aws, samples.png(color=(n, n, n))) for n in range(3)]
    unlucky = f"files/alice/{files[1]['id']}"
    real_delete = blobs.delete

    def flaky_delete(key: str) -> None:
        if key == unlucky:
            raise RuntimeError("S3 is unavailable")
        real_delete(key)

    monkeypatch.setattr(blobs, "delete", flaky_delete)
    # When the vacuum runs
    result = _run()
    # Then the other two are deleted and the failure is counted
    assert result.files_deleted == 2 and result.candidates_failed == 1
    assert aws.file_row("alice", files[1]["id"])["status"] == "deleting"
    # And once S3 is back, the next run deletes the third
    monkeypatch.setattr(blobs, "delete", real_delete)
    assert _run().files_deleted == 1
    assert all(_gone(aws, f) for f in files)


def _budget(checks: int) -> Callable[[], int]:
    """Plenty of time for `checks` looks at the clock, then none."""
    left = iter(range(checks))
    return lambda: 10**9 if next(left, None) is not None else 0


def test_given_little_time_when_the_vacuum_runs_then_it_stops_early_and_the_next_run_finishes(aws):
    # Given eight garbage files
    files = [_garbage(aws, samples.png(color=(n, 0, n))) for n in range(8)]
    # When a run has time for only a few looks at the clock
    first = vacuum.run_vacuum(_budget(6))
    # Then it stops early, with files left
    assert first.stopped_early
    assert first.files_deleted < len(files)
    # And the next run, with time, deletes the rest
    second = _run()
    assert not second.stopped_early
    assert first.files_deleted + second.files_deleted == len(files)
    assert all(_gone(aws, f) for f in files)


def test_given_pages_smaller_than_the_garbage_when_the_vacuum_runs_then_every_page_is_read(aws, monkeypatch):
    # Given pages of one candidate and five garbage files
    from agentfiles.settings import get_settings

    monkeypatch.setenv("VACUUM_PAGE_SIZE", "1")
    get_settings.cache_clear()
    files = [_garbage(aws, samples.png(color=(0, n, 0))) for n in range(5)]
    # When the vacuum runs
    result = _run()
    # Then it pages through every shard to the end
    assert result.files_deleted == 5 and not result.stopped_early
    assert all(_gone(aws, f) for f in files)


# ---- the function ---------------------------------------------------------------


def test_given_the_sample_schedule_event_when_the_function_runs_then_it_vacuums_sweeps_and_reports(
    aws, capsys
):
    from functions.vacuum.handler import lambda_handler

    # Given one garbage file and the real-shaped EventBridge event
    file = _garbage(aws)
    event = json.loads((EVENTS / "eventbridge_schedule.json").read_text())
    # When the scheduled function runs
    summary = lambda_handler(event, LambdaContext("vacuum", 300))
    # Then the file is gone and the summary says what both parts did
    assert _gone(aws, file)
    assert summary["vacuum"]["filesDeleted"] == 1 and summary["vacuum"]["stoppedEarly"] is False
    assert summary["sweep"]["repliesResent"] == 0 and summary["sweep"]["stoppedEarly"] is False
    json.dumps(summary)
    # And the metrics are emitted
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = {m["Name"] for blob in emitted for d in blob["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
    assert {
        "FilesDeleted",
        "BytesFreed",
        "MarkersCleared",
        "CandidatesSkipped",
        "RepliesResent",
        "ThreadCleanupsResent",
    } <= names


def test_given_an_event_that_is_not_an_eventbridge_event_when_the_function_runs_then_it_is_skipped(aws):
    from functions.vacuum.handler import lambda_handler

    # A misrouted event is skipped and reported, not a crash that EventBridge retries.
    assert lambda_handler({"hello": "world"}, LambdaContext("vacuum", 300)) == {
        "skipped": "not an EventBridge event"
    }
