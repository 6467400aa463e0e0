"""`agentfiles serve` as a child process: started on a free port, waited for until it
answers `/health`, stopped as a user's Ctrl-C stops it. The demo and the end-to-end
tests both start their stacks here."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
# Settings a developer's shell may hold that would change what the stack does.
CLEARED = (
    "OPENAI_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_API_KEY_SECRET_ARN",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class StackProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    output_path: Path
    health: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        attempts: int = 3,
        cwd: Path | None = None,
        args: Sequence[str] = (),
    ) -> StackProcess:
        """Start a stack on a free port with the caller's settings on top of this
        environment and `args` after `serve` (trying another port if that one is taken
        in the meantime), and wait until it answers `/health`. Raises RuntimeError with
        its output if it does not start."""
        for attempt in range(1, attempts + 1):
            port = free_port()
            environment = {key: value for key, value in os.environ.items() if key not in CLEARED}
            environment.update({"PORT": str(port), "MOTO_PORT": "0", "PYTHONUNBUFFERED": "1"})
            # A program reads a reply at once: the built-in model's pause between words
            # is for a person watching (`agentfiles serve`), unless the caller asks for it.
            environment["FAKE_MODEL_WORD_DELAY_MS"] = "0"
            environment.update(env or {})
            output = Path(tempfile.mkstemp(prefix="agentfiles-local-", suffix=".log")[1])
            with output.open("wb") as sink:
                process = subprocess.Popen(
                    # --json: the output a test shows when it fails has every line in it.
                    [sys.executable, "-m", "agentfiles_cli.cli", "serve", "--json", *args],
                    cwd=cwd,
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
            said = stack.output()
            stack.remove_output()  # what it said goes into the error
            if attempt == attempts or "Address already in use" not in said:
                raise RuntimeError(f"the local stack did not start:\n{said}")
        raise AssertionError("unreachable")

    def _wait_until_healthy(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                response = requests.get(f"{self.base_url}/health", timeout=2)
                if response.status_code == 200:
                    self.health = response.json()
                    return True
            except requests.RequestException:
                pass  # not listening yet, or too busy starting to answer in time
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

    def remove_output(self) -> None:
        """Delete the file the stack's output went to (once nobody needs to read it)."""
        self.output_path.unlink(missing_ok=True)

    def output(self, tail_chars: int = 20_000) -> str:
        text = self.output_path.read_text(errors="replace")
        return text[-tail_chars:]
