"""A small client of the agentfiles HTTP API, as a program on a user's machine uses it:
a token, presigned uploads with progress, messages, replies followed as they stream.

The command line is built on it; it talks HTTP and the WebSocket protocol only, so it
works against the local stack and, given a real token, against a deployed API.
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import urlsplit

import requests
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

Progress = Callable[[int, int], None]
MEDIA_TYPES = {
    ".md": "text/markdown",
    ".markdown": "text/markdown",
    ".csv": "text/csv",
    ".json": "application/json",
}


class ApiError(Exception):
    """An answer of the API's error shape (or one that could not be read at all)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message


class Unreachable(Exception):
    pass


# A reply in one of these is done.
ENDED = ("success", "failed", "stopped")


def media_type_of(path: Path) -> str:
    return (
        MEDIA_TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )


class _ProgressReader:
    """A file whose reads are reported, with a length, so that `requests` sends a
    Content-Length (the presigned URL signs it) and streams the body."""

    def __init__(self, file: BinaryIO, size: int, progress: Progress | None):
        self._file, self._size, self._progress, self._sent = file, size, progress, 0

    def __len__(self) -> int:
        return self._size

    def read(self, amount: int = -1) -> bytes:
        chunk = self._file.read(amount if amount and amount > 0 else 64 * 1024)
        self._sent += len(chunk)
        if self._progress:
            self._progress(self._sent, self._size)
        return chunk


class Client:
    def __init__(
        self,
        base_url: str,
        sub: str,
        token: str | None = None,
        timeout: float = 30.0,
        websocket_url: str | None = None,
    ):
        self.base_url = base_url.rstrip("/")
        self._websocket_url = websocket_url
        self.sub = sub
        self.timeout = timeout
        self._token = token
        self._http = requests.Session()

    # ---- plumbing

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError as error:
            local = urlsplit(self.base_url).hostname in ("127.0.0.1", "localhost", "::1")
            hint = "is the local stack running (make run)?" if local else "check the URL (agentfiles config)"
            raise Unreachable(f"cannot reach {self.base_url}: {hint}") from error

    @staticmethod
    def _answer(response: requests.Response) -> Any:
        if response.ok and (response.status_code == 204 or not response.content):
            return None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.ok:
            return body
        error = (body or {}).get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            raise ApiError(response.status_code, str(error.get("code")), str(error.get("message")))
        message = (body or {}).get("message") if isinstance(body, dict) else None
        raise ApiError(
            response.status_code, f"http_{response.status_code}", str(message or response.text[:200])
        )

    def token(self) -> str:
        if self._token is None:
            answer = self._answer(self._send("POST", f"{self.base_url}/dev/token", json={"sub": self.sub}))
            self._token = str(answer["token"])
        return self._token

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict | None = None,
        headers: dict | None = None,
    ) -> Any:
        all_headers = {"Authorization": f"Bearer {self.token()}", **(headers or {})}
        response = self._send(method, f"{self.base_url}{path}", json=json, params=params, headers=all_headers)
        return self._answer(response)

    # ---- files

    def upload(self, path: Path, progress: Progress | None = None) -> tuple[dict[str, Any], bool]:
        """Register, PUT straight to S3 and wait for the check. Returns the file and
        whether it was a dedup hit (no bytes sent)."""
        data = path.read_bytes()
        request = {
            "filename": path.name,
            "mediaType": media_type_of(path),
            "size": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
        }
        registered = self.call("POST", "/files/uploads", json=request)
        if registered["upload"] is None:
            return registered["file"], True
        upload = registered["upload"]
        with path.open("rb") as file:
            reader = _ProgressReader(file, len(data), progress)
            response = self._send(upload["method"], upload["url"], data=reader, headers=upload["headers"])
        if not response.ok:
            raise ApiError(response.status_code, "upload_failed", response.text[:300])
        return self.wait_for_file(registered["file"]["id"]), False

    def wait_for_file(self, file_id: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            file = self.file(file_id)
            if file["status"] != "pending":
                if file["status"] == "rejected":
                    rejection = file.get("rejection") or {}
                    raise ApiError(
                        422, rejection.get("code", "rejected"), rejection.get("message", "rejected")
                    )
                return file
            if time.monotonic() > deadline:
                raise ApiError(504, "upload_not_checked", f"file {file_id} is still pending")
            time.sleep(0.25)

    def file(self, file_id: str) -> dict[str, Any]:
        return self.call("GET", f"/files/{file_id}")["file"]

    def file_url(self, file_id: str, timeout: float = 60.0) -> str:
        """A download URL of a file, waiting while it is checked or scanned for malware
        (409 `file_not_ready`): a picture a model drew gets its URL once scanned."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return str(self.call("GET", f"/files/{file_id}/url")["fileUrl"]["url"])
            except ApiError as error:
                if error.code != "file_not_ready" or time.monotonic() > deadline:
                    raise
            time.sleep(0.25)

    def files(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.call("GET", "/files", params={"limit": str(limit)})["items"]

    # ---- threads and messages

    def create_thread(self, title: str | None = None) -> str:
        return str(self.call("POST", "/threads", json={"title": title} if title else {})["thread"]["id"])

    def threads(self, limit: int = 50) -> list[dict[str, Any]]:
        return self.call("GET", "/threads", params={"limit": str(limit)})["items"]

    def messages(self, thread: str, limit: int = 50) -> list[dict[str, Any]]:
        return self.call("GET", f"/threads/{thread}/messages", params={"limit": str(limit)})["items"]

    def send(self, thread: str, content: Any, *, generate: bool = True) -> dict[str, Any]:
        # A retried send with the same key can never save the message twice.
        headers = {"Idempotency-Key": uuid.uuid4().hex}
        body = {"content": content, "generate": generate}
        return self.call("POST", f"/threads/{thread}/messages", json=body, headers=headers)

    def image(self, thread: str, prompt: str, size: str = "1024x1024") -> dict[str, Any]:
        return self.call("POST", f"/threads/{thread}/images", json={"prompt": prompt, "size": size})

    def delete_message(self, thread: str, message_id: str) -> None:
        self.call("DELETE", f"/threads/{thread}/messages/{message_id}")

    def follow(
        self,
        thread: str,
        message_id: str,
        on_text: Callable[[str], None] | None = None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Poll a reply until it ends, handing each new piece of its text to `on_text`."""
        shown = 0
        deadline = time.monotonic() + timeout
        while True:
            message = self.call("GET", f"/threads/{thread}/messages/{message_id}")["message"]
            text = "".join(part.get("text", "") for part in message["content"] if part["type"] == "text")
            if on_text and len(text) > shown:
                on_text(text[shown:])
                shown = len(text)
            if message["status"] in ENDED:
                return message
            if time.monotonic() > deadline:
                raise ApiError(504, "reply_timeout", f"reply {message_id} is still {message['status']}")
            time.sleep(0.2)

    def stream(self, thread: str, message_id: str, after: int = 0) -> dict[str, Any]:
        """`GET .../stream?after=N`: the reply's deltas after N."""
        return self.call(
            "GET", f"/threads/{thread}/messages/{message_id}/stream", params={"after": str(after)}
        )

    def stop(self, thread: str, message_id: str) -> dict[str, Any]:
        return self.call("POST", f"/threads/{thread}/messages/{message_id}/stop")["message"]

    def websocket_url(self) -> str | None:
        """Where replies are pushed: the local stack says so in /health (a deployed
        stack's WebSocketUrl output comes from `agentfiles config` or
        AGENTFILES_WEBSOCKET_URL)."""
        configured = self._websocket_url or os.environ.get("AGENTFILES_WEBSOCKET_URL")
        if configured:
            return configured
        try:
            return self.health().get("websocketUrl")
        except (ApiError, Unreachable):
            return None

    def live(self, thread: str) -> LiveReplies | None:
        """A WebSocket connection following `thread`, or None when it cannot connect."""
        url = self.websocket_url()
        if not url:
            return None
        try:
            return LiveReplies.open(self, url, thread)
        except (OSError, InvalidHandshake, ConnectionClosed, TimeoutError):
            return None

    def follow_live(
        self,
        live: LiveReplies,
        message_id: str,
        on_text: Callable[[str], None] | None = None,
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        """Follow a reply through pushed frames: each delta's text goes to `on_text` as
        it arrives, by seq; after a dropped connection it reconnects, resubscribes and
        asks `after=lastSeq` for what it missed, so no text is repeated or lost."""
        return live.follow(message_id, on_text or (lambda _: None), timeout)

    def download(self, url: str) -> bytes:
        response = self._send("GET", url)
        if not response.ok:
            raise ApiError(response.status_code, "download_failed", response.text[:200])
        return response.content

    # ---- account

    def usage(self) -> dict[str, Any]:
        return self.call("GET", "/usage")

    def models(self) -> dict[str, Any]:
        return self.call("GET", "/models")

    def account(self) -> dict[str, Any]:
        return self.call("GET", "/account")["account"]

    def create_export(self) -> dict[str, Any]:
        return self.call("POST", "/exports")["export"]

    def export(self, export_id: str) -> dict[str, Any]:
        return self.call("GET", f"/exports/{export_id}")["export"]

    def download_to(self, url: str, out: BinaryIO, progress: Progress | None = None) -> int:
        """Stream a download into `out`, a chunk at a time; returns the bytes written."""
        response = self._send("GET", url, stream=True)
        if not response.ok:
            raise ApiError(response.status_code, "download_failed", response.text[:200])
        total = int(response.headers.get("content-length", 0))
        written = 0
        for chunk in response.iter_content(1024 * 1024):
            out.write(chunk)
            written += len(chunk)
            if progress is not None:
                progress(written, total or written)
        return written

    def erase_account(self) -> dict[str, Any]:
        return self.call("DELETE", "/account")["erasure"]

    # ---- local only

    def health(self) -> dict[str, Any]:
        return self._answer(self._send("GET", f"{self.base_url}/health"))

    def invoke(self, function: str, event: Any) -> Any:
        """Run a function of the local stack on an event (`POST /dev/invoke/<name>`)."""
        response = self._send("POST", f"{self.base_url}/dev/invoke/{function}", json=event)
        result = self._answer(response)
        if response.headers.get("x-amz-function-error"):
            raise ApiError(500, result.get("errorType", "FunctionError"), result.get("errorMessage", ""))
        return result


class LiveReplies:
    """One WebSocket connection following one thread, as the protocol in the README goes:
    connect with `?token=`, subscribe, then merge pushed deltas by seq."""

    def __init__(self, client: Client, url: str, thread: str) -> None:
        self.client, self.url, self.thread = client, url, thread
        self.socket: ClientConnection | None = None
        self.reconnects = 0

    @classmethod
    def open(cls, client: Client, url: str, thread: str) -> LiveReplies:
        live = cls(client, url, thread)
        live._connect()
        return live

    def _connect(self) -> None:
        self.socket = connect(f"{self.url}/?token={self.client.token()}", open_timeout=10, legacy=True)
        self.socket.send(json.dumps({"action": "subscribe", "threadId": self.thread}))
        while True:
            frame = json.loads(self.socket.recv(timeout=10))
            if frame.get("type") == "subscribed":
                return
            if frame.get("type") == "error":
                error = frame["error"]
                raise ApiError(404, error["code"], error["message"])

    def close(self) -> None:
        if self.socket is not None:
            self.socket.close()

    def follow(self, message_id: str, on_text: Callable[[str], None], timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        seq, text = 0, ""

        def apply(delta: dict[str, Any]) -> None:
            nonlocal seq, text
            if delta["seq"] <= seq:
                return  # already had it
            if delta.get("reset"):
                text = ""  # a new attempt: what came before is superseded
            text += delta["text"]
            seq = delta["seq"]
            if delta["text"]:
                on_text(delta["text"])

        def catch_up() -> dict[str, Any]:
            missed = self.client.stream(self.thread, message_id, after=seq)
            for delta in missed["deltas"]:
                apply(delta)
            return missed

        def read() -> dict[str, Any]:
            return self.client.call("GET", f"/threads/{self.thread}/messages/{message_id}")["message"]

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(504, "reply_timeout", f"reply {message_id} did not end in time")
            try:
                assert self.socket is not None
                frame = json.loads(self.socket.recv(timeout=remaining))
            except ConnectionClosed:
                # Dropped: connect again, then ask for what was pushed meanwhile.
                self.reconnects += 1
                self._connect()
                missed = catch_up()
                if missed["status"] in ENDED:
                    return read()
                continue
            if frame.get("type") == "delta" and frame.get("messageId") == message_id:
                if frame["seq"] > seq + 1:
                    catch_up()  # a frame went missing: fill the gap from the table
                apply(frame)
            elif frame.get("type") == "message" and frame["message"]["id"] == message_id:
                message = frame["message"]
                if message["status"] in ENDED:
                    if (message.get("lastSeq") or 0) > seq:
                        catch_up()
                    return read() if frame.get("contentOmitted") else message
