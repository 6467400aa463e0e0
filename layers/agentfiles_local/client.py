"""A small client of the agentfiles HTTP API, as a program on a user's machine uses it:
a token, presigned uploads with progress, messages, replies followed as they stream.

The command line is built on it; it talks HTTP only, so it works against the local
stack and, given a real token, against a deployed API.
"""

from __future__ import annotations

import hashlib
import mimetypes
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import requests

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
    def __init__(self, base_url: str, sub: str, token: str | None = None, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self.sub = sub
        self.timeout = timeout
        self._token = token
        self._http = requests.Session()

    # ---- plumbing

    def _send(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._http.request(method, url, timeout=self.timeout, **kwargs)
        except requests.ConnectionError as error:
            raise Unreachable(
                f"cannot reach {self.base_url}: is the local stack running (make run)?"
            ) from error

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
            file = self.call("GET", f"/files/{file_id}")["file"]
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
            if message["status"] in ("success", "failed"):
                return message
            if time.monotonic() > deadline:
                raise ApiError(504, "reply_timeout", f"reply {message_id} is still {message['status']}")
            time.sleep(0.2)

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
