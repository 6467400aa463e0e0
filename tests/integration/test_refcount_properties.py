"""Reference counts and storage usage are never wrong, whatever the order of uploads,
rejections, saves, deletes and vacuum runs (clean, or cut short anywhere), and the
vacuum never loses a referenced file.

A hypothesis state machine drives the real API, upload trigger, worker and vacuum code
on moto, with no grace period, so every unreferenced file is garbage at once, and a
quota of a few files, so that registrations are refused too. After every step the
counts stored on the files are compared with the messages that actually exist in the
table (not with a model of them), each owner's usage with the files that exist, and
the bucket with the file rows.

A file is *counted* in its owner's usage, at its `size`, from the moment its row is
created until the moment its row is deleted, unless it was rejected: every file row
without a `rejection`, whatever its status (pending, ready, or deleting after a vacuum
run cut short).
"""

from __future__ import annotations

import base64
from collections import Counter, defaultdict
from unittest.mock import patch

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from agentfiles.data import blobs, file_rows, keys
from agentfiles.data.table import from_item, to_value
from agentfiles.logic import vacuum as vacuum_steps
from agentfiles.logic.vacuum import run_vacuum
from agentfiles.models.common import now_ms
from harness.aws import LocalAws, local_aws

picks = st.lists(st.integers(min_value=0, max_value=1000), max_size=4)

# Few enough that some registrations meet the quota.
QUOTA_FILES = 6
# Every step of the vacuum a run can be cut short after (module, function).
VACUUM_STEPS = {
    "tombstone": (file_rows, "tombstone"),
    "clear marker": (file_rows, "clear_gc_marker"),
    "s3 delete": (blobs, "delete"),
    "hash delete": (file_rows, "delete_hash_if_points_at"),
    "row delete": (file_rows, "delete_tombstoned"),
}


class Crash(BaseException):
    """The vacuum's process dies: nothing inside the run catches it."""


def _ample_time() -> int:
    return 10**9


class ReferenceCounting(RuleBasedStateMachine):
    """Steps pick files, threads and messages by index into what exists so far, so
    most steps act on real state instead of being filtered away."""

    def __init__(self) -> None:
        super().__init__()
        self._context = local_aws(GRACE_SECONDS="0", STORAGE_QUOTA_FILES=str(QUOTA_FILES))
        self.aws: LocalAws = self._context.__enter__()
        self.files: list[str] = []
        self.pending: list[str] = []
        # Bob's files: only uploaded, deleted and vacuumed, so that usage is per owner.
        self.others: list[str] = []
        self.threads: list[str] = []
        self.messages: list[tuple[str, str]] = []
        self.deleted: list[tuple[str, str]] = []
        self.uploads = 0
        self.saved = 0

    def teardown(self) -> None:
        event(f"messages saved: {min(self.saved, 5)}{'+' if self.saved >= 5 else ''}")
        self._context.__exit__(None, None, None)

    # ---- steps -----------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        self.threads.append(self.aws.new_thread())
        for _ in range(3):
            self.upload(distinct=True)

    def _small_file(self, content: bytes, sub: str = "alice") -> str | None:
        body = {"filename": "f", "mediaType": "text/plain", "data": base64.b64encode(content).decode()}
        reply = self.aws.call_api("POST", "/files", sub=sub, json_body=body)
        assert reply.status in (200, 201, 413), reply.body
        event(f"small upload: {reply.status}")
        return reply.body["file"]["id"] if reply.status != 413 else None

    @rule(distinct=st.booleans())
    def upload(self, distinct: bool) -> None:
        # The same content twice is a dedup hit: the same file id comes back.
        self.uploads += 1
        file_id = self._small_file(f"content {self.uploads if distinct else 0}".encode())
        if file_id and file_id not in self.files:
            self.files.append(file_id)

    @rule(distinct=st.booleans())
    def upload_as_bob(self, distinct: bool) -> None:
        self.uploads += 1
        file_id = self._small_file(f"bob's {self.uploads if distinct else 0}".encode(), sub="bob")
        if file_id and file_id not in self.others:
            self.others.append(file_id)

    @rule()
    def register_pending(self) -> None:
        reply = self.aws.call_api(
            "POST", "/files/uploads", json_body={"filename": "p.txt", "mediaType": "text/plain", "size": 5}
        )
        assert reply.status in (201, 413), reply.body
        event(f"register: {reply.status}")
        if reply.status == 201:
            self.pending.append(reply.body["file"]["id"])

    @precondition(lambda self: self.pending)
    @rule(which=st.integers(0, 1000), as_declared=st.booleans())
    def finish_upload(self, which: int, as_declared: bool) -> None:
        # The client PUTs the declared 5 bytes (ready) or 4 (rejected: size mismatch);
        # the file may already be gone, and then its bytes are removed as an orphan.
        file_id = self.pending.pop(which % len(self.pending))
        body = b"hello" if as_declared else b"hell"
        self.aws.s3.put_object(Bucket=self.aws.resources.bucket_name, Key=f"files/alice/{file_id}", Body=body)
        self.aws.run_upload_trigger()
        row = self.aws.file_row("alice", file_id)
        event(f"upload checked: {row['status'] if row else 'gone'}")
        if row and row["status"] == "ready":
            self.files.append(file_id)
        elif row:
            self.pending.append(file_id)  # rejected: the vacuum still has it to remove

    @rule()
    def new_thread(self) -> None:
        self.threads.append(self.aws.new_thread())

    @precondition(lambda self: self.threads)
    @rule(thread=st.integers(0, 100), chosen=picks, as_parts=st.booleans(), with_pending=st.booleans())
    def save(self, thread: int, chosen: list[int], as_parts: bool, with_pending: bool) -> None:
        thread_id = self.threads[thread % len(self.threads)]
        file_ids = [self.files[i % len(self.files)] for i in chosen] if self.files else []
        if with_pending and self.pending and chosen:
            file_ids.append(self.pending[chosen[0] % len(self.pending)])
        body: dict = {"content": "hi", "generate": False}
        if as_parts and file_ids:
            body["content"] = [{"type": "file", "fileId": f} for f in file_ids]
        else:
            body["fileIds"] = file_ids
        reply = self.aws.call_api("POST", f"/threads/{thread_id}/messages", json_body=body)
        assert reply.status in (201, 404, 409), reply.body
        event(f"save: {reply.status}")
        if reply.status == 201:
            self.saved += 1
            self.messages.append((thread_id, reply.body["message"]["id"]))

    @precondition(lambda self: self.messages)
    @rule(which=st.integers(0, 1000))
    def delete_message(self, which: int) -> None:
        thread_id, message_id = self.messages.pop(which % len(self.messages))
        reply = self.aws.call_api("DELETE", f"/threads/{thread_id}/messages/{message_id}")
        assert reply.status in (204, 404)
        event(f"delete message: {reply.status}")
        self.deleted.append((thread_id, message_id))

    @precondition(lambda self: self.messages)
    @rule(which=st.integers(0, 1000))
    def hand_over(self, which: int) -> None:
        # A message's files pass to a new message and the old one is deleted: the
        # files stay referenced but carry the marker the decrement set, so the
        # vacuum meets candidates it must not delete.
        thread_id, message_id = self.messages[which % len(self.messages)]
        file_ids = self.aws.call_api("GET", f"/threads/{thread_id}/messages/{message_id}").body["message"][
            "fileIds"
        ]
        if not file_ids:
            return
        body = {"content": "again", "fileIds": file_ids, "generate": False}
        saved = self.aws.call_api("POST", f"/threads/{thread_id}/messages", json_body=body)
        assert saved.status == 201, saved.body
        self.saved += 1
        self.messages.append((thread_id, saved.body["message"]["id"]))
        assert self.aws.call_api("DELETE", f"/threads/{thread_id}/messages/{message_id}").status == 204
        self.messages.remove((thread_id, message_id))
        self.deleted.append((thread_id, message_id))
        event("files handed over to a new message")

    @precondition(lambda self: self.deleted)
    @rule(which=st.integers(0, 1000))
    def delete_message_again(self, which: int) -> None:
        thread_id, message_id = self.deleted[which % len(self.deleted)]
        assert self.aws.call_api("DELETE", f"/threads/{thread_id}/messages/{message_id}").status == 404

    @precondition(lambda self: self.threads)
    @rule(which=st.integers(0, 1000))
    def delete_thread(self, which: int) -> None:
        thread_id = self.threads.pop(which % len(self.threads))
        assert self.aws.call_api("DELETE", f"/threads/{thread_id}").status == 202
        self.aws.run_maintenance()
        self.messages = [m for m in self.messages if m[0] != thread_id]

    @precondition(lambda self: self.files or self.others)
    @rule(which=st.integers(0, 1000))
    def delete_file(self, which: int) -> None:
        owned = [("alice", f) for f in self.files] + [("bob", f) for f in self.others]
        sub, file_id = owned[which % len(owned)]
        status = self.aws.call_api("DELETE", f"/files/{file_id}", sub=sub).status
        row = self.aws.file_row(sub, file_id)
        # 404 only for a file a vacuum run was cut short deleting.
        assert status in (204, 409) or (status == 404 and row and row["status"] == "deleting"), status
        event(f"delete file: {status}")
        if status == 204:
            (self.files if sub == "alice" else self.others).remove(file_id)

    @precondition(lambda self: self.pending)
    @rule(which=st.integers(0, 1000))
    def abandon_pending(self, which: int) -> None:
        # Time passes for one pending upload: its URL expired (the grace period is 0).
        file_id = self.pending[which % len(self.pending)]
        row = self.aws.file_row("alice", file_id)
        if row is None or row["status"] != "pending":
            return
        self.aws.dynamodb.update_item(
            TableName=self.aws.resources.table_name,
            Key=keys.file_key("alice", file_id).dynamo,
            UpdateExpression="SET uploadExpiresAt = :past",
            ExpressionAttributeValues={":past": to_value(now_ms() - 1)},
        )

    @rule()
    def vacuum(self) -> None:
        started = now_ms()
        result = run_vacuum(_ample_time)
        assert not result.stopped_early and result.candidates_failed == 0
        event(f"vacuum deleted: {min(result.files_deleted, 3)}{'+' if result.files_deleted >= 3 else ''}")
        # After a clean run, every unreferenced file is gone but uploads still open.
        for row in self._table():
            if row["sk"].startswith("FILE#") and row["refcount"] == 0:
                assert row["status"] == "pending" and row["uploadExpiresAt"] > started, row
        self._forget_deleted()

    @precondition(lambda self: self.files or self.pending or self.others)
    @rule(which=st.integers(0, 1000), step=st.sampled_from(sorted(VACUUM_STEPS)))
    def crash_during_vacuum(self, which: int, step: str) -> None:
        # A run dies right after one step of one candidate. The candidate is picked
        # by the machine, not by the run's order (which follows random file ids), so
        # that the same steps always leave the same state behind.
        known = self.files + self.pending + self.others
        file_id = known[which % len(known)]
        now = now_ms()
        cutoff = vacuum_steps.cutoff_ms(now)
        page = vacuum_steps.candidate_page(keys.gc_shard(file_id), cutoff)
        candidate = next((c for c in page.candidates if c.file_id == file_id), None)
        if candidate is None:
            event("crash: the file is not a candidate")
            return
        target, name = VACUUM_STEPS[step]
        real = getattr(target, name)

        def step_then_crash(*args: object, **kwargs: object) -> object:
            real(*args, **kwargs)
            raise Crash(step)

        with patch.object(target, name, step_then_crash):
            try:
                vacuum_steps.settle(candidate, cutoff, now)
                event("crash: the candidate was settled before the step came")
            except Crash:
                event(f"crash after: {step}")
        self._forget_deleted()

    def _forget_deleted(self) -> None:
        """Files the vacuum removed are no longer picked (one it left `deleting` still is)."""
        present = {r["id"] for r in self._table() if r["sk"].startswith("FILE#")}
        self.files = [f for f in self.files if f in present]
        self.pending = [f for f in self.pending if f in present]
        self.others = [f for f in self.others if f in present]

    # ---- what must always hold -------------------------------------------------

    def _table(self) -> list[dict]:
        items, kwargs = [], {"TableName": self.aws.resources.table_name}
        while True:
            page = self.aws.dynamodb.scan(**kwargs)
            items += [from_item(i) for i in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    @invariant()
    def the_table_and_the_bucket_are_consistent(self) -> None:
        # One scan for every check: scans are most of this test's time on moto.
        rows = self._table()
        self._counts_match_the_messages_that_exist(rows)
        self._usage_is_the_sum_over_each_owners_counted_files(rows)
        self._no_referenced_file_is_ever_tombstoned(rows)
        self._the_bucket_holds_exactly_the_objects_of_live_file_rows(rows)

    def _counts_match_the_messages_that_exist(self, rows: list[dict]) -> None:
        held = Counter(f for r in rows if r["sk"].startswith("MSG#") for f in r.get("fileIds", []))
        for row in rows:
            if row["sk"].startswith("FILE#"):
                assert row["refcount"] >= 0
                assert row["refcount"] == held[row["id"]], (row["id"], row["refcount"], held[row["id"]])
                # Every unreferenced file is a vacuum candidate (a referenced one may
                # still carry a marker from a decrement; the vacuum clears it).
                if row["refcount"] == 0:
                    assert "gcShard" in row
        files = {r["id"] for r in rows if r["sk"].startswith("FILE#")}
        assert set(held) <= files, "a message references a file that no longer exists"
        if any(n > 1 for n in held.values()):
            event("a file held by several messages")

    def _usage_is_the_sum_over_each_owners_counted_files(self, rows: list[dict]) -> None:
        counted: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for row in rows:
            if row["sk"].startswith("FILE#") and "rejection" not in row:
                owner = row["pk"].removeprefix("OWNER#")
                counted[owner][0] += row["size"]
                counted[owner][1] += 1
            elif row["sk"].startswith("MSG#"):
                # ... and over their messages' stored content
                owner = row["pk"].removeprefix("OWNER#").split("#THREAD#", 1)[0]
                counted[owner][0] += row.get("storedBytes", 0)
        usage = {
            r["pk"].removeprefix("OWNER#"): [r.get("bytes", 0), r.get("files", 0)]
            for r in rows
            if r["sk"] == "USAGE"
        }
        for owner in set(counted) | set(usage):
            assert usage.get(owner, [0, 0]) == counted.get(owner, [0, 0]), (owner, usage, dict(counted))
            assert usage.get(owner, [0, 0])[1] <= QUOTA_FILES
        if any(files == QUOTA_FILES for _, files in usage.values()):
            event("an owner at the quota")

    def _no_referenced_file_is_ever_tombstoned(self, rows: list[dict]) -> None:
        for row in rows:
            if row["sk"].startswith("FILE#") and row["status"] == "deleting":
                assert row["refcount"] == 0, row

    def _the_bucket_holds_exactly_the_objects_of_live_file_rows(self, rows: list[dict]) -> None:
        rows = [r for r in rows if r["sk"].startswith("FILE#")]
        objects = self.aws.object_keys()
        # No object without a row (a row being deleted may still have its object) ...
        assert objects <= {r["s3Key"] for r in rows}, "an object outlived its file"
        # ... and every ready file's bytes are there.
        assert {r["s3Key"] for r in rows if r["status"] == "ready"} <= objects, "a ready file lost its object"


ReferenceCounting.TestCase.settings = settings(
    max_examples=15,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_reference_counts_always_equal_the_live_messages_that_hold_them = ReferenceCounting.TestCase
