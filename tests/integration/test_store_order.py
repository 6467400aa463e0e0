"""Bytes the API stores itself (small uploads, large inline parts, generated pictures)
meet the upload trigger too: the bucket reports every object it holds. Whenever the
trigger runs, the file ends ready with its object, or not at all."""

from __future__ import annotations

import base64

import pytest
import requests

from agentfiles.logic import files as file_logic
from harness import samples


@pytest.fixture
def trigger_right_after_the_put(aws, monkeypatch):
    """Run the upload trigger the moment the object lands, before the API goes on:
    the gap a slow API and a fast trigger open."""
    real_put = file_logic.blobs.put

    def put_then_trigger(*args, **kwargs):
        etag = real_put(*args, **kwargs)
        aws.run_upload_trigger()
        return etag

    monkeypatch.setattr(file_logic.blobs, "put", put_then_trigger)
    return aws


def test_a_small_upload_checked_by_the_trigger_in_the_gap_is_ready_with_its_bytes(
    trigger_right_after_the_put,
):
    aws = trigger_right_after_the_put
    data = samples.png()
    # Given the trigger runs between the object's PUT and the API's next step
    # When a small file is uploaded
    reply = aws.call_api(
        "POST",
        "/files",
        json_body={"filename": "a.png", "mediaType": "image/png", "data": base64.b64encode(data).decode()},
    )
    # Then it is ready, its object is there, and its URL serves the bytes
    assert reply.status == 201, reply.body
    file = aws.call_api("GET", f"/files/{reply.body['file']['id']}").body["file"]
    assert file["status"] == "ready"
    assert f"files/alice/{file['id']}" in aws.object_keys()
    assert requests.get(file["url"], timeout=10).content == data
    # And dedup hands out that same, whole file
    again = aws.register(data, "image/png", filename="b.png")
    assert again.status == 200 and again.body["file"]["id"] == file["id"]


def test_an_object_whose_row_never_came_is_left_to_no_one(aws, monkeypatch):
    # Given the API dies right after storing the row, before the bytes
    def crash(*args, **kwargs):
        raise ConnectionError("the process died")

    monkeypatch.setattr(file_logic.blobs, "put", crash)
    data = samples.png()
    with pytest.raises(ConnectionError):
        file_logic.store_bytes("alice", "a.png", "image/png", data)
    # Then no file is ready for that content (dedup will not hand out a file without bytes)
    again = aws.register(data, "image/png", filename="b.png")
    assert again.status == 201 and again.body["upload"] is not None
    # And the row left behind is an upload that has already expired, which the vacuum removes
    [row] = [f for f in aws.call_api("GET", "/files").body["items"] if f["id"] != again.body["file"]["id"]]
    assert row["status"] == "pending"
