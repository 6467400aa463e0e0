"""Reference counts are never wrong, whatever the order of uploads, saves, deletes and
vacuum runs (clean, or cut short anywhere), and the vacuum never loses a referenced file.

A hypothesis state machine drives the real API, worker and vacuum code on moto, with
no grace period, so every unreferenced file is garbage at once. After every step the
counts stored on the files are compared with the messages that actually exist in the
table (not with a model of them), and the bucket with the file rows.
"""

from __future__ import annotations

from collections import Counter
from unittest.mock import patch

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from agentfiles.data import blobs, keys
from agentfiles.data import files as file_rows
from agentfiles.data.table import from_item, to_value
from agentfiles.logic import vacuum as vacuum_steps
from agentfiles.logic.vacuum import run_vacuum
from agentfiles.models.common import now_ms
from tests.support.aws import LocalAws, local_aws

picks = st.lists(st.integers(min_value=0, max_value=1000), max_size=4)

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
        self._context = local_aws(GRACE_SECONDS="0")
        self.aws: LocalAws = self._context.__enter__()
        self.files: list[str] = []
        self.pending: list[str] = []
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

    @rule(distinct=st.booleans())
    def upload(self, distinct: bool) -> None:
        # The same content twice is a dedup hit: the same file id comes back.
        self.uploads += 1
        content = f"content {self.uploads if distinct else 0}".encode()
        file_id = self.aws.small_file(content, "text/plain")["id"]
        if file_id not in self.files:
            self.files.append(file_id)

    @rule()
    def register_pending(self) -> None:
        reply = self.aws.call_api(
            "POST", "/files/uploads", json_body={"filename": "p.txt", "mediaType": "text/plain", "size": 5}
        )
        self.pending.append(reply.body["file"]["id"])

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

    @precondition(lambda self: self.files)
    @rule(which=st.integers(0, 1000))
    def delete_file(self, which: int) -> None:
        file_id = self.files[which % len(self.files)]
        status = self.aws.call_api("DELETE", f"/files/{file_id}").status
        row = self.aws.file_row("alice", file_id)
        # 404 only for a file a vacuum run was cut short deleting.
        assert status in (204, 409) or (status == 404 and row and row["status"] == "deleting"), status
        event(f"delete file: {status}")
        if status == 204:
            self.files.remove(file_id)

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

    @precondition(lambda self: self.files or self.pending)
    @rule(which=st.integers(0, 1000), step=st.sampled_from(sorted(VACUUM_STEPS)))
    def crash_during_vacuum(self, which: int, step: str) -> None:
        # A run dies right after one step of one candidate. The candidate is picked
        # by the machine, not by the run's order (which follows random file ids), so
        # that the same steps always leave the same state behind.
        known = self.files + self.pending
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
