"""The `agentfiles` command as a user runs it, in a subprocess, against a local stack."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
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


def test_download_saves_the_original_as_uploaded_or_its_small_thumbnail(local_stack, sub, tmp_path):
    # Given a 600x400 PNG uploaded and checked
    picture = _png(tmp_path / "wide.png", 600, 400)
    file_id = run(local_stack, sub, "upload", str(picture)).stdout.strip()
    # When it is downloaded, then its thumbnail
    original = run(local_stack, sub, "download", file_id, "--out", str(tmp_path / "copy.png"))
    thumbnail = run(local_stack, sub, "download", file_id, "--thumbnail", "--out", str(tmp_path / "t.webp"))
    # Then the original is byte for byte what was uploaded
    assert original.returncode == 0, original.stderr
    assert (tmp_path / "copy.png").read_bytes() == picture.read_bytes()
    # And the thumbnail is a WebP whose long side is 256 px, upright proportions kept
    assert thumbnail.returncode == 0, thumbnail.stderr
    with Image.open(tmp_path / "t.webp") as small:
        assert (small.format, small.size) == ("WEBP", (256, 171))


def test_download_of_a_thumbnail_a_file_does_not_have_is_a_clear_error(local_stack, sub, tmp_path):
    # Given a text file (no thumbnail: only images get one)
    notes = tmp_path / "notes.txt"
    notes.write_text("hello")
    file_id = run(local_stack, sub, "upload", str(notes)).stdout.strip()
    # When its thumbnail is asked for
    result = run(local_stack, sub, "download", file_id, "--thumbnail", "--out", str(tmp_path / "t.webp"))
    # Then the command fails with the reason, and writes nothing
    assert result.returncode == 1
    assert "thumbnail_not_found" in result.stderr
    assert not (tmp_path / "t.webp").exists()


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


def _bare(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The command with neither --url nor --sub: what a configured user types."""
    return subprocess.run(
        [sys.executable, "-m", "agentfiles_cli.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("AGENTFILES_")} | env,
    )


def test_a_given_token_acts_as_its_owner_whatever_the_sub(local_stack, sub):
    # Given a token of the user `sub`, and one thread of theirs
    token = local_stack.token(sub)
    thread = local_stack.api("POST", "/threads", token, json={"title": "theirs"}).json()["thread"]["id"]
    # When commands run with it as --token, or as AGENTFILES_TOKEN, under another --sub
    given = run(local_stack, "someone-else", "threads", "--json", "--token", token)
    from_env = _bare("threads", "--json", "--url", local_stack.base_url, env={"AGENTFILES_TOKEN": token})
    # Then both act as the token's owner
    for result in (given, from_env):
        assert result.returncode == 0, result.stderr
        assert [t["id"] for t in json.loads(result.stdout)] == [thread]


def test_a_configured_stack_and_stored_login_take_a_whole_round_trip_without_url_or_token(
    local_stack, sub, tmp_path
):
    # Given the config and the stored login `agentfiles config` and `agentfiles login` write
    # (the stack's outputs, and an access token with its refresh token)
    home = tmp_path / "config"
    (home / "agentfiles").mkdir(parents=True)
    (home / "agentfiles" / "config.json").write_text(
        json.dumps({"url": local_stack.base_url, "websocket_url": local_stack.health["websocketUrl"]})
    )
    credentials = home / "agentfiles" / "credentials.json"
    credentials.write_text(
        json.dumps(
            {
                "access_token": local_stack.token(sub),
                "refresh_token": "unused-while-fresh",
                "expires_at": time.time() + 3600,
                "username": sub,
            }
        )
    )
    env = {"XDG_CONFIG_HOME": str(home)}
    picture = _png(tmp_path / "p.png", 24, 16)
    # When the user uploads, asks and lists, naming neither URL nor token
    asked = _bare("ask", "what is this?", "--file", str(picture), env=env)
    threads = _bare("threads", "--json", env=env)
    # Then it all went to the configured stack as the stored login's user
    assert asked.returncode == 0, asked.stderr
    assert "image 1: PNG 24x16" in asked.stdout
    listed = json.loads(threads.stdout)
    owned = local_stack.api("GET", "/threads", local_stack.token(sub)).json()["items"]
    assert [t["id"] for t in listed] == [t["id"] for t in owned] and len(owned) == 1


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


def test_export_downloads_the_account_as_one_zip_and_erase_account_begins_the_erasure(
    local_stack, sub, tmp_path
):
    import zipfile

    # Given a user with a picture in a thread
    picture = _png(tmp_path / "photo.png")
    asked = run(local_stack, sub, "ask", "what is this?", "--file", str(picture))
    assert asked.returncode == 0, asked.stderr
    # When they export their account
    out = tmp_path / "mine.zip"
    exported = run(local_stack, sub, "export", "--out", str(out))
    # Then a ZIP with their thread, their picture as uploaded and a manifest is written
    assert exported.returncode == 0, exported.stderr
    assert "100%" in exported.stderr
    archive = zipfile.ZipFile(out)
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["owner"] == sub and manifest["counts"]["threads"] == 1
    [entry] = manifest["files"]
    assert archive.read(entry["path"]) == picture.read_bytes()
    # When they erase their account, without waiting for it to end
    erased = run(local_stack, sub, "erase-account", "--yes", "--wait", "0", "--json")
    # Then it is under way, and their writes are refused
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["status"] == "pending"
    refused = run(local_stack, sub, "ask", "still there?")
    assert refused.returncode != 0 and "account_erasing" in refused.stderr
