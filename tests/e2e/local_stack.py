"""The local stack as a separate process, driven over HTTP as any client drives it.

`LocalStackProcess.start(env)` runs `agentfiles serve` on a free port (through
`agentfiles_local.process`, as the demo does), waits for `/health`, and gives tests
what they need: tokens, an API caller, the presigned upload dance, bounded polling,
and boto3 clients on the stack's moto.
Tests normally take the session's stack through the `local_stack` fixture; a test
that needs other settings (a short grace period, a failing model...) starts its own.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Self, TypeVar

import boto3
import requests

from agentfiles_local.process import StackProcess

REPO_ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def wait_for(
    probe: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.2, what: str = "the condition"
) -> T:
    """Call `probe` until it returns something truthy; fail after `timeout` seconds
    with the last value seen (the only kind of waiting an end-to-end test does)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"gave up waiting for {what} after {timeout:g} s; last value: {last!r}")


@dataclass
class LocalStackProcess(StackProcess):
    """A started stack, with what tests do with it."""

    _tokens: dict[str, str] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        attempts: int = 3,
        cwd: Path | None = None,
        args: Sequence[str] = (),
    ) -> Self:
        return super().start(env, attempts=attempts, cwd=cwd or REPO_ROOT, args=args)  # type: ignore[return-value]

    # ---- HTTP

    def token(self, sub: str) -> str:
        if sub not in self._tokens:
            response = requests.post(f"{self.base_url}/dev/token", json={"sub": sub}, timeout=10)
            assert response.status_code == 200, response.text
            self._tokens[sub] = response.json()["token"]
        return self._tokens[sub]

    def api(
        self, method: str, path: str, token: str | None = None, *, json: Any = None, **kwargs: Any
    ) -> requests.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(
            method, f"{self.base_url}{path}", json=json, headers=headers, timeout=30, **kwargs
        )

    def register(
        self,
        token: str,
        data: bytes,
        media_type: str,
        *,
        filename: str = "upload.bin",
        size: int | None = None,
        declare_sha256: bool = True,
    ) -> requests.Response:
        """`POST /files/uploads` for these bytes (or for a size the caller declares)."""
        request: dict[str, Any] = {
            "filename": filename,
            "mediaType": media_type,
            "size": len(data) if size is None else size,
        }
        if declare_sha256:
            request["sha256"] = hashlib.sha256(data).hexdigest()
        return self.api("POST", "/files/uploads", token, json=request)

    @staticmethod
    def put(upload: dict[str, Any], body: bytes) -> requests.Response:
        """PUT bytes to a presigned URL with exactly the headers the API returned."""
        assert upload["method"] == "PUT"
        return requests.put(upload["url"], data=body, headers=upload["headers"], timeout=30)

    def upload(self, token: str, data: bytes, media_type: str, *, filename: str = "upload.bin") -> str:
        """Register, PUT and wait until checked; the file id (whatever the outcome)."""
        registered = self.register(token, data, media_type, filename=filename)
        assert registered.status_code in (200, 201), registered.text
        body = registered.json()
        if body["upload"] is not None:
            assert self.put(body["upload"], data).status_code == 200
        self.wait_for_file(token, body["file"]["id"])
        return str(body["file"]["id"])

    def wait_for_file(self, token: str, file_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The file once the upload trigger has decided on it (no longer `pending`)."""

        def checked() -> dict[str, Any] | None:
            response = self.api("GET", f"/files/{file_id}", token)
            assert response.status_code == 200, response.text
            file = response.json()["file"]
            return None if file["status"] == "pending" else file

        return wait_for(checked, timeout=timeout, what=f"file {file_id} to be checked")

    # ---- AWS, as the stack's moto holds it

    def aws(self, service: str) -> Any:
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.health["region"]
        ).client(service, endpoint_url=self.health["awsEndpoint"])

    def callbacks(self) -> Any:
        """The stack's `@connections` API, as the functions push through it."""
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.health["region"]
        ).client("apigatewaymanagementapi", endpoint_url=self.health["websocketCallbackUrl"])

    @cached_property
    def s3(self) -> Any:
        return self.aws("s3")

    @property
    def bucket(self) -> str:
        return str(self.health["bucket"])

    def object_exists(self, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key)
        return any(item["Key"] == key for item in listed.get("Contents", []))
