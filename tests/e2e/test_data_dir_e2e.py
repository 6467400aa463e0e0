"""`agentfiles serve --data DIR`: what a stack holds when it stops is there when it
starts again, and nothing is checked, counted or sent twice on the way."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from harness import samples
from tests.e2e.local_stack import LocalStackProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]


def _start(directory: Path) -> LocalStackProcess:
    return LocalStackProcess.start({"VACUUM_INTERVAL_SECONDS": "3600"}, args=["--data", str(directory)])


def _stop(stack: LocalStackProcess) -> str:
    code = stack.stop()
    assert code == 0, f"the stack did not stop cleanly (exit {code}):\n{stack.output()}"
    return stack.output()


SIGNED = ("url", "urlExpiresAt", "thumbnailUrl")  # presigned anew on every read


def _unsigned(part: dict[str, Any]) -> dict[str, Any]:
    """What a file or part says, without its URL (signed anew on every read)."""
    return {key: value for key, value in part.items() if key not in SIGNED}


def _thread_view(stack: LocalStackProcess, token: str, thread: str) -> list[dict[str, Any]]:
    items = stack.api("GET", f"/threads/{thread}/messages", token).json()["items"]
    return [{**message, "content": [_unsigned(p) for p in message["content"]]} for message in items]


def test_a_stack_started_on_the_same_data_dir_has_what_the_last_one_held(tmp_path: Path) -> None:
    directory = tmp_path / "data"
    # Given a stack on an empty data directory, where a user uploads a picture, asks
    # about it and gets a reply, and a body that is no job is parked in a DLQ
    first = _start(directory)
    try:
        token = first.token("alice")
        picture_bytes = samples.png(40, 30) + uuid.uuid4().bytes
        picture = first.upload(token, picture_bytes, "image/png", filename="photo.png")
        thread = first.api("POST", "/threads", token, json={"title": "kept"}).json()["thread"]["id"]
        question = [{"type": "text", "text": "what is this?"}, {"type": "image", "fileId": picture}]
        asked = first.api("POST", f"/threads/{thread}/messages", token, json={"content": question})
        assert asked.status_code == 201, asked.text
        reply_id = asked.json()["reply"]["id"]

        def reply_ended() -> bool:
            reply = first.api("GET", f"/threads/{thread}/messages/{reply_id}", token).json()["message"]
            return reply["status"] == "success"

        wait_for(reply_ended, what="the reply")
        sqs = first.aws("sqs")
        sqs.send_message(QueueUrl=first.health["queues"]["generations"], MessageBody="not a job")
        dlq = first.health["deadLetterQueues"]["generations"]
        wait_for(
            lambda: (
                sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["ApproximateNumberOfMessages"])[
                    "Attributes"
                ]["ApproximateNumberOfMessages"]
                == "1"
            ),
            what="the body in the DLQ",
        )
        before = {
            "threads": first.api("GET", "/threads", token).json()["items"],
            "messages": _thread_view(first, token, thread),
            "file": first.api("GET", f"/files/{picture}", token).json()["file"],
            "usage": first.api("GET", "/usage", token).json()["storage"],
        }
    finally:
        said = _stop(first)
    assert "nothing saved in" in said and "saved to" in said
    assert '"function_name":"upload_trigger"' in said
    # When a new stack starts on the same directory
    second = _start(directory)
    try:
        token = second.token("alice")
        assert "restored from" in second.output()
        # Then the user finds the same threads, messages, file and storage use
        assert second.api("GET", "/threads", token).json()["items"] == before["threads"]
        assert _thread_view(second, token, thread) == before["messages"]
        file = second.api("GET", f"/files/{picture}", token).json()["file"]
        assert _unsigned(file) == _unsigned(before["file"])
        assert file["status"] == "ready" and file["refcount"] == 1
        assert second.api("GET", "/usage", token).json()["storage"] == before["usage"]
        # And the picture's bytes, read through its new URL
        assert requests.get(file["url"], timeout=10).content == picture_bytes
        # And the parked body is still in the DLQ, while no upload was checked again
        parked = second.aws("sqs").receive_message(QueueUrl=dlq, WaitTimeSeconds=1).get("Messages", [])
        assert [message["Body"] for message in parked] == ["not a job"]
        assert '"function_name":"upload_trigger"' not in second.output()
        # And the restored data keeps working: the file can be used again, and counted
        again = second.api(
            "POST",
            f"/threads/{thread}/messages",
            token,
            json={"content": "and again", "fileIds": [picture], "generate": False},
        )
        assert again.status_code == 201, again.text
        assert second.api("GET", f"/files/{picture}", token).json()["file"]["refcount"] == 2
    finally:
        _stop(second)
    # And a third start sees that last message too
    third = _start(directory)
    try:
        token = third.token("alice")
        texts = [m["content"][0].get("text") for m in _thread_view(third, token, thread)]
        assert texts[0] == "and again" and len(texts) == 3
    finally:
        _stop(third)


def test_a_data_path_that_is_a_file_is_refused_before_anything_starts(tmp_path: Path) -> None:
    import subprocess
    import sys

    taken = tmp_path / "a-file"
    taken.write_text("not a directory")
    ran = subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", "serve", "--data", str(taken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 2
    assert "not a directory" in ran.stderr


def test_a_data_dir_it_cannot_read_stops_the_start_and_is_left_as_it_was(tmp_path: Path) -> None:
    # Given a data directory whose table file is not a snapshot
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "table.jsonl").write_text("{not json\n")
    # When the stack starts on it
    with pytest.raises(RuntimeError) as refused:
        _start(directory)
    # Then it says why and stops, and the directory is untouched (nothing saved over it)
    assert "cannot restore it" in str(refused.value)
    assert sorted(p.name for p in directory.iterdir()) == ["table.jsonl"]
    assert (directory / "table.jsonl").read_text() == "{not json\n"
