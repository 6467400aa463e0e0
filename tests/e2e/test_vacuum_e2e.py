"""The vacuum on the local stack's own schedule: an unreferenced file disappears once
its grace period is over, a referenced one never does."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.e2e.local_stack import LocalStackProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


@pytest.fixture(scope="module")
def quick_vacuum() -> Iterator[LocalStackProcess]:
    """A stack whose vacuum runs every second with a one-second grace period."""
    stack = LocalStackProcess.start({"GRACE_SECONDS": "1", "VACUUM_INTERVAL_SECONDS": "1"})
    yield stack
    stack.stop()


def _vacuumed(stack: LocalStackProcess, owner: str, file_id: str) -> bool:
    """The file is gone for its owner, and its object from the bucket. (The owner stops
    seeing it once the vacuum marks it `deleting`; the object goes a moment later.)"""
    gone = stack.api("GET", f"/files/{file_id}", stack.token(owner)).status_code == 404
    return gone and not stack.object_exists(f"files/{owner}/{file_id}")


def test_an_unreferenced_file_is_vacuumed_and_a_referenced_one_survives_until_released(quick_vacuum):
    stack = quick_vacuum
    owner = f"vac-{uuid.uuid4().hex[:8]}"
    token = stack.token(owner)
    # Given two ready files, one of them attached to a message
    loose = stack.upload(token, f"loose {uuid.uuid4()}".encode(), "text/plain", filename="loose.txt")
    kept = stack.upload(token, f"kept {uuid.uuid4()}".encode(), "text/plain", filename="kept.txt")
    thread = stack.api("POST", "/threads", token, json={}).json()["thread"]["id"]
    saved = stack.api(
        "POST",
        f"/threads/{thread}/messages",
        token,
        json={"content": "keep this", "fileIds": [kept], "generate": False},
    )
    assert saved.status_code == 201, saved.text
    # When the schedule runs the vacuum past the grace period
    # Then the unreferenced file and its object are gone, and the referenced one is untouched
    wait_for(lambda: _vacuumed(stack, owner, loose), timeout=30, what="the loose file to be vacuumed")
    assert stack.api("GET", f"/files/{kept}", token).json()["file"]["status"] == "ready"
    assert stack.health["schedule"]["running"]
    # When its message is deleted, it goes too
    message_id = saved.json()["message"]["id"]
    assert stack.api("DELETE", f"/threads/{thread}/messages/{message_id}", token).status_code == 204
    wait_for(lambda: _vacuumed(stack, owner, kept), timeout=30, what="the released file to be vacuumed")
