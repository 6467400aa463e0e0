"""Live replies end to end: real WebSocket clients against `agentfiles serve` (its
WebSocket API, the authorizer checking the stack's own JWKS, pushes through the
@connections endpoint), the catch-up route and stop, over HTTP."""

from __future__ import annotations

import json
import threading
import uuid
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.e2e.local_stack import LocalStackProcess, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

ENDED = ("success", "failed", "stopped")


def _socket(stack: LocalStackProcess, token: str) -> ClientConnection:
    # Opened here and closed by the test (not a with block): a direct connection.
    return connect(f"{stack.health['websocketUrl']}/?token={token}", open_timeout=10, legacy=True)


def _subscribe(socket: ClientConnection, thread: str) -> dict[str, Any]:
    socket.send(json.dumps({"action": "subscribe", "threadId": thread}))
    return json.loads(socket.recv(timeout=10))


def _frames_until_ended(socket: ClientConnection, reply_id: str) -> list[dict[str, Any]]:
    frames = []
    while True:
        frame = json.loads(socket.recv(timeout=45))
        frames.append(frame)
        message = frame.get("message") or {}
        if frame["type"] == "message" and message["id"] == reply_id and message["status"] in ENDED:
            return frames


def _ask(stack: LocalStackProcess, token: str, thread: str, text: str) -> str:
    saved = stack.api("POST", f"/threads/{thread}/messages", token, json={"content": text})
    assert saved.status_code == 201, saved.text
    return str(saved.json()["reply"]["id"])


def _new_thread(stack: LocalStackProcess, token: str) -> str:
    return str(stack.api("POST", "/threads", token, json={}).json()["thread"]["id"])


def test_health_says_where_the_websocket_api_is(local_stack):
    assert local_stack.health["websocketUrl"].startswith("ws://127.0.0.1:")


def test_a_missing_or_bad_token_is_refused_at_the_upgrade(local_stack):
    url = local_stack.health["websocketUrl"]
    for query in ("", "?token=", "?token=not-a-jwt"):
        with pytest.raises(InvalidStatus) as refused:
            connect(f"{url}/{query}", open_timeout=10)
        assert refused.value.response.status_code == 401, query


def test_another_owners_thread_cannot_be_followed(local_stack):
    # Given alice's thread, and mallory connected with her own token
    alice = local_stack.token(f"alice-{uuid.uuid4().hex[:6]}")
    thread = _new_thread(local_stack, alice)
    with _socket(local_stack, local_stack.token(f"mallory-{uuid.uuid4().hex[:6]}")) as socket:
        # When mallory subscribes to it / Then it does not exist for her
        answer = _subscribe(socket, thread)
    assert answer == {
        "type": "error",
        "threadId": thread,
        "error": {"code": "thread_not_found", "message": f"thread {thread} not found"},
    }


def test_two_clients_on_one_thread_both_receive_every_delta_in_order(local_stack):
    # Given two connections of one user following one thread
    token = local_stack.token(f"pair-{uuid.uuid4().hex[:6]}")
    thread = _new_thread(local_stack, token)
    first, second = _socket(local_stack, token), _socket(local_stack, token)
    try:
        assert _subscribe(first, thread)["type"] == "subscribed"
        assert _subscribe(second, thread)["type"] == "subscribed"
        # When a paced 120-word reply is written
        reply_id = _ask(local_stack, token, thread, "tell me [[words:120]] [[delay_ms:10]]")
        received = {}
        threads = [
            threading.Thread(
                target=lambda s=s, n=n: received.__setitem__(n, _frames_until_ended(s, reply_id))
            )
            for n, s in (("first", first), ("second", second))
        ]
        for runner in threads:
            runner.start()
        for runner in threads:
            runner.join(60)
    finally:
        first.close()
        second.close()
    # Then each saw seq 1..lastSeq once and in order, adding up to the final message
    for frames in received.values():
        deltas = [f for f in frames if f["type"] == "delta" and f["messageId"] == reply_id]
        final = frames[-1]["message"]
        assert final["status"] == "success"
        assert [d["seq"] for d in deltas] == list(range(1, final["lastSeq"] + 1))
        assert "".join(d["text"] for d in deltas) == final["content"][0]["text"]
        # And the status changes came as message frames: the user's message, pending, streaming
        statuses = [f["message"]["status"] for f in frames if f["type"] == "message"]
        assert statuses[-1] == "success" and "streaming" in statuses
    # And both saw the same deltas and the same end (frames from different functions, such
    # as the API's message frames and the worker's, may interleave differently per client,
    # as they may on AWS)
    first_seen, second_seen = (
        ([f for f in received[n] if f["type"] == "delta"], received[n][-1]) for n in ("first", "second")
    )
    assert first_seen == second_seen


def test_a_client_that_reconnects_with_after_n_gets_exactly_the_missing_deltas(local_stack):
    # Given a client that got the first deltas of a slow reply, then dropped
    token = local_stack.token(f"drop-{uuid.uuid4().hex[:6]}")
    thread = _new_thread(local_stack, token)
    socket = _socket(local_stack, token)
    assert _subscribe(socket, thread)["type"] == "subscribed"
    reply_id = _ask(local_stack, token, thread, "long [[words:200]] [[delay_ms:15]]")
    seen: list[dict[str, Any]] = []
    while len(seen) < 3:
        frame = json.loads(socket.recv(timeout=30))
        if frame["type"] == "delta":
            seen.append(frame)
    socket.close()
    last = seen[-1]["seq"]
    # When it reconnects, resubscribes, and asks for what came after its last seq
    with _socket(local_stack, token) as again:
        assert _subscribe(again, thread)["type"] == "subscribed"
        missed = local_stack.api(
            "GET", f"/threads/{thread}/messages/{reply_id}/stream", token, params={"after": last}
        ).json()
        pushed = _frames_until_ended(again, reply_id)
    # Then merging the two by seq gives every delta once: no gap, no repeat
    merged = {d["seq"]: d["text"] for d in seen}
    assert [d["seq"] for d in missed["deltas"]] == list(range(last + 1, missed["lastSeq"] + 1))
    for delta in [*missed["deltas"], *(f for f in pushed if f["type"] == "delta")]:
        assert merged.setdefault(delta["seq"], delta["text"]) == delta["text"]
    final = pushed[-1]["message"]
    assert sorted(merged) == list(range(1, final["lastSeq"] + 1))
    assert "".join(merged[seq] for seq in sorted(merged)) == final["content"][0]["text"]


def test_stop_during_streaming_ends_the_reply_stopped_with_what_was_pushed(local_stack):
    token = local_stack.token(f"stop-{uuid.uuid4().hex[:6]}")
    thread = _new_thread(local_stack, token)
    with _socket(local_stack, token) as socket:
        assert _subscribe(socket, thread)["type"] == "subscribed"
        reply_id = _ask(local_stack, token, thread, "ramble [[words:3000]] [[delay_ms:10]]")
        text = ""
        while not text:
            frame = json.loads(socket.recv(timeout=30))
            if frame["type"] == "delta":
                text += frame["text"]
        stop = local_stack.api("POST", f"/threads/{thread}/messages/{reply_id}/stop", token)
        assert stop.status_code == 202
        for frame in _frames_until_ended(socket, reply_id):
            if frame["type"] == "delta":
                text += frame["text"]
    final = local_stack.api("GET", f"/threads/{thread}/messages/{reply_id}", token).json()["message"]
    assert final["status"] == "stopped"
    assert final["content"][0]["text"] == text and len(text.split()) < 3000


def test_a_connection_the_server_drops_is_forgotten_and_its_frames_stop(local_stack):
    # Given a connection following a thread, then closed from the server side (@connections DELETE)
    token = local_stack.token(f"gone-{uuid.uuid4().hex[:6]}")
    thread = _new_thread(local_stack, token)
    socket = _socket(local_stack, token)
    assert _subscribe(socket, thread)["type"] == "subscribed"
    callbacks = local_stack.callbacks()
    table = local_stack.aws("dynamodb")

    def connection_rows() -> list[dict[str, Any]]:
        return table.query(
            TableName=local_stack.health["table"],
            KeyConditionExpression="pk = :pk AND begins_with(sk, :conn)",
            ExpressionAttributeValues={
                ":pk": {"S": f"OWNER#{local_stack_sub(token)}"},
                ":conn": {"S": "CONN#"},
            },
        )["Items"]

    (connection,) = [r["connectionId"]["S"] for r in connection_rows()]
    assert "ConnectedAt" in callbacks.get_connection(ConnectionId=connection)
    callbacks.delete_connection(ConnectionId=connection)
    # Then $disconnect removed its rows, and posting to it is a 410 (GoneException)
    wait_for(lambda: not connection_rows(), what="the connection's rows to go")
    with pytest.raises(callbacks.exceptions.GoneException):
        callbacks.post_to_connection(ConnectionId=connection, Data=b"{}")


def local_stack_sub(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def _file_frame(socket: ClientConnection, file_id: str) -> dict[str, Any]:
    while True:
        frame = json.loads(socket.recv(timeout=30))
        if frame["type"] == "file" and frame["file"]["id"] == file_id:
            return frame["file"]


def test_an_open_socket_hears_when_an_upload_is_ready_or_rejected_without_subscribing(local_stack):
    # Given a user connected, following no thread
    token = local_stack.token(f"uploader-{uuid.uuid4().hex[:6]}")
    with _socket(local_stack, token) as socket:
        # When a PNG is uploaded (checked and, locally, scanned) and then a "PNG" that is text
        png = _png_bytes()
        good = local_stack.register(token, png, "image/png", filename="photo.png").json()
        assert local_stack.put(good["upload"], png).status_code == 200
        ready = _file_frame(socket, good["file"]["id"])
        fake = b"not a picture at all " + uuid.uuid4().bytes
        bad = local_stack.register(token, fake, "image/png", filename="fake.png").json()
        assert local_stack.put(bad["upload"], fake).status_code == 200
        rejected = _file_frame(socket, bad["file"]["id"])
    # Then each arrives pushed as its file: the picture ready with its URLs, the fake
    # rejected with the reason, as GET /files/{id} shows them
    assert ready["status"] == "ready" and ready["url"] and ready["thumbnailUrl"]
    assert rejected["status"] == "rejected" and rejected["rejection"]["code"]
    shown = local_stack.api("GET", f"/files/{bad['file']['id']}", token).json()["file"]
    assert shown["rejection"] == rejected["rejection"]


def _png_bytes() -> bytes:
    import io

    from PIL import Image

    seed = uuid.uuid4().bytes
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (seed[0], seed[1], seed[2])).save(buffer, format="PNG")
    return buffer.getvalue()
