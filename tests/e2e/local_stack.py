"""The local stack as a separate process, driven over HTTP as any client drives it.

`LocalStackProcess.start(env)` runs `python -m agentfiles_local.cli serve` on a free
port, waits for `/health`, and gives tests what they need: tokens, an API caller,
the presigned upload dance, bounded polling, and boto3 clients on the stack's moto.
Tests normally take the session's stack through the `local_stack` fixture; a test
that needs other settings (a short grace period, a failing model...) starts its own.
"""

from __future__ import annotations

import hashlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import boto3
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# Settings a developer's shell may hold that would change what the stack does.
_CLEARED = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_API_KEY_SECRET_ARN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
)

T = TypeVar("T")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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
class LocalStackProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    output_path: Path
    health: dict[str, Any] = field(default_factory=dict)
    _tokens: dict[str, str] = field(default_factory=dict)

    # ---- lifecycle

    @classmethod
    def start(cls, env: dict[str, str] | None = None, attempts: int = 3) -> LocalStackProcess:
        """Start a stack on a free port (trying another if that port is taken in the
        meantime) and wait until it answers `/health`."""
        for attempt in range(1, attempts + 1):
            port = free_port()
            environment = {key: value for key, value in os.environ.items() if key not in _CLEARED}
            environment.update({"PORT": str(port), "MOTO_PORT": "0", "PYTHONUNBUFFERED": "1"})
            environment.update(env or {})
            output = Path(tempfile.mkstemp(prefix="agentfiles-local-", suffix=".log")[1])
            with output.open("wb") as sink:
                process = subprocess.Popen(
                    [sys.executable, "-m", "agentfiles_local.cli", "serve"],
                    cwd=REPO_ROOT,
                    env=environment,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            stack = cls(process, f"http://127.0.0.1:{port}", output)
            try:
                healthy = stack._wait_until_healthy()
            except BaseException:
                stack.stop()  # never leave a stack running behind a failed start
                raise
            if healthy:
                return stack
            stack.stop()
            if attempt == attempts or "Address already in use" not in stack.output():
                raise RuntimeError(f"the local stack did not start:\n{stack.output()}")
        raise AssertionError("unreachable")

    def _wait_until_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                response = requests.get(f"{self.base_url}/health", timeout=2)
                if response.status_code == 200:
                    self.health = response.json()
                    return True
            except (requests.ConnectionError, requests.Timeout):
                # Not listening yet, or a loaded machine answering slowly: ask again.
                pass
            time.sleep(0.1)
        return False

    def stop(self) -> int | None:
        """SIGTERM, as a user's Ctrl-C or a service manager would; kill if it hangs."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return self.process.returncode

    def output(self, tail_chars: int = 20_000) -> str:
        text = self.output_path.read_text(errors="replace")
        return text[-tail_chars:]

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

    @cached_property
    def s3(self) -> Any:
        return self.aws("s3")

    @property
    def bucket(self) -> str:
        return str(self.health["bucket"])

    def object_exists(self, key: str) -> bool:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=key)
        return any(item["Key"] == key for item in listed.get("Contents", []))
