"""The `agentfiles` command as a user runs it, in a subprocess, against a local stack."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.local_stack import LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]
EVENTS = Path(__file__).resolve().parents[2] / "events"


def run(stack: LocalStackProcess, sub: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", *args, "--url", stack.base_url, "--sub", sub],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _png(path: Path, width: int = 40, height: int = 30) -> Path:
    seed = uuid.uuid4().bytes
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (seed[0], seed[1], seed[2])).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture
def sub() -> str:
    return f"cli-{uuid.uuid4().hex[:8]}"


def test_token_prints_a_bearer_token(local_stack, sub):
    result = run(local_stack, sub, "token")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(".") == 2  # header.payload.signature


def test_upload_shows_progress_for_a_large_file_and_dedup_on_the_second(local_stack, sub, tmp_path):
    # Given a 2 MB text file
    big = tmp_path / "notes.txt"
    big.write_text("line of notes\n" * 150_000)
    # When it is uploaded
    first = run(local_stack, sub, "upload", str(big))
    # Then a progress bar reached 100% and the file id is printed
    assert first.returncode == 0, first.stderr
    assert "100%" in first.stderr and "uploaded" in first.stderr
    file_id = first.stdout.strip()
    # And uploading it again is a dedup hit: the same id, no bytes sent
    second = run(local_stack, sub, "upload", str(big))
    assert second.stdout.strip() == file_id
    assert "dedup" in second.stderr
    listed = json.loads(run(local_stack, sub, "files", "--json").stdout)
    assert [f["id"] for f in listed] == [file_id]


def test_ask_streams_the_reply_about_an_attached_image(local_stack, sub, tmp_path):
    picture = _png(tmp_path / "p.png", 40, 30)
    result = run(local_stack, sub, "ask", "what is this?", "--file", str(picture))
    assert result.returncode == 0, result.stderr
    assert "image 1: PNG 40x30" in result.stdout
    threads = json.loads(run(local_stack, sub, "threads", "--json").stdout)
    assert len(threads) == 1
    shown = run(local_stack, sub, "messages", threads[0]["id"])
    assert "user (success): what is this?" in shown.stdout
    assert "assistant (success): I see 1 attachment(s)" in shown.stdout


def test_image_saves_the_generated_picture(local_stack, sub, tmp_path):
    out = tmp_path / "drawn.png"
    result = run(local_stack, sub, "image", "a red fox", "--size", "256x256", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == (256, 256)


def test_vacuum_and_invoke_run_functions_of_the_stack(local_stack, sub):
    vacuum = run(local_stack, sub, "vacuum", "--json")
    assert vacuum.returncode == 0, vacuum.stderr
    assert {"vacuum", "sweep"} <= set(json.loads(vacuum.stdout))
    invoked = run(local_stack, sub, "invoke", "upload_trigger", str(EVENTS / "sqs_s3_test_event.json"))
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout) == {"batchItemFailures": []}


def test_failures_exit_non_zero_with_the_apis_error(local_stack, sub, tmp_path):
    fake = tmp_path / "fake.png"
    fake.write_bytes(b"not a picture at all")
    rejected = run(local_stack, sub, "upload", str(fake))
    assert rejected.returncode == 1
    assert "error: type_mismatch:" in rejected.stderr
    missing = run(local_stack, sub, "messages", "01JDQ8ZK3M4N5P6Q7R8S9T0V1W")
    assert missing.returncode == 1 and "thread_not_found" in missing.stderr
    nowhere = subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", "files", "--url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nowhere.returncode == 2 and "make run" in nowhere.stderr


@pytest.mark.parametrize("command", ["threads", "files", "usage", "models"])
def test_a_listing_in_a_shell_pipeline_whose_reader_stops_ends_quietly(local_stack, sub, tmp_path, command):
    # Given: something to list
    token = local_stack.token(sub)
    assert local_stack.api("POST", "/threads", token, json={"title": "piped"}).status_code == 201
    errors = tmp_path / "stderr.txt"
    # When: its reader is gone before it writes (`| true`; `| head -1` once the line is read)
    line = (
        f"{sys.executable} -m agentfiles_cli.cli {command} --url {local_stack.base_url} --sub {sub}"
        f" 2>{errors} | true"
    )
    subprocess.run(["bash", "-c", line], timeout=120, check=True)
    # Then: no traceback, no "Exception ignored ... BrokenPipeError", nothing at all on stderr
    assert errors.read_text() == ""
