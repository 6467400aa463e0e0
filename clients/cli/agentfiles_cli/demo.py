"""`agentfiles demo`: a scripted tour of the system, each step checked.

Upload an image through its presigned URL, upload it again (a dedup hit), ask about
it and stream the answer, generate a picture, delete the question, and let the
vacuum remove the file nothing references any more.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from agentfiles_cli.client import ApiError, Client
from agentfiles_cli.words import describe_vacuum


class StepFailed(Exception):
    pass


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise StepFailed(what)


@contextmanager
def _own_stack() -> Iterator[str]:
    """`agentfiles serve` on a free port, with no grace period, for the tour only."""
    from agentfiles_local.process import StackProcess

    settings = {
        "GRACE_SECONDS": "0",
        "VACUUM_INTERVAL_SECONDS": "3600",
        # The reply streams in at the pace `agentfiles serve` shows it.
        "FAKE_MODEL_WORD_DELAY_MS": os.environ.get("FAKE_MODEL_WORD_DELAY_MS", "60"),
    }
    try:
        stack = StackProcess.start(settings, attempts=1)
    except RuntimeError as problem:
        raise StepFailed(str(problem)) from None
    print(f"started a local stack at {stack.base_url}")
    finished = False
    try:
        yield stack.base_url
        finished = True
    finally:
        stack.stop()
        if finished:
            stack.remove_output()  # a tour that checked out leaves nothing behind
        else:
            print(f"the stack's log: {stack.output_path}", file=sys.stderr)


def _picture() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (96, 64), (250, 210, 90))
    ImageDraw.Draw(image).ellipse((30, 14, 66, 50), fill=(220, 80, 40))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def tour(client: Client) -> None:
    from agentfiles_local.events import schedule_event  # the vacuum is invoked as its schedule does

    steps = 7
    step = 0

    def say(text: str) -> None:
        nonlocal step
        step += 1
        print(f"\n[{step}/{steps}] {text}")

    def done(text: str) -> None:
        print(f"      ok: {text}")

    grace = client.health().get("settings", {}).get("graceSeconds")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "sunset.png"
        path.write_bytes(_picture())

        say("Upload an image: register it, PUT the bytes straight to S3, wait for the upload trigger")
        file, deduplicated = client.upload(path)
        _check(file["status"] == "ready" and not deduplicated, f"expected a ready new file, got {file}")
        done(f"file {file['id']} is ready, sha256 {file['sha256'][:12]}..., checked by the trigger")

        say("Upload the same bytes again")
        again, deduplicated = client.upload(path)
        _check(deduplicated and again["id"] == file["id"], "expected the same file back, without an upload")
        done("a dedup hit: the same file came back and no bytes were sent")

    say("Ask about the image; the reply streams in")
    thread = client.create_thread("demo")
    saved = client.send(
        thread,
        [{"type": "text", "text": "What is in this picture?"}, {"type": "image", "fileId": file["id"]}],
    )
    print("      reply: ", end="")
    reply = client.follow(thread, saved["reply"]["id"], lambda piece: print(piece, end="", flush=True))
    print()
    text = "".join(p.get("text", "") for p in reply["content"])
    _check(reply["status"] == "success", f"the reply failed: {reply.get('error')}")
    _check(
        client.call("GET", f"/files/{file['id']}")["file"]["refcount"] == 1, "the message holds no reference"
    )
    done(f"the model answered ({len(text)} characters); the message holds 1 reference on the image")

    say("Generate an image into the thread")
    drawn = client.image(thread, "a lighthouse at dusk", "256x256")
    picture = client.follow(thread, drawn["reply"]["id"])
    _check(picture["status"] == "success", f"no picture: {picture.get('error')}")
    generated = next(p for p in picture["content"] if p["type"] == "image")
    # Its URL comes once the malware scan passed it (at once where scanning is off).
    url = generated.get("url") or client.file_url(generated["fileId"])
    _check(client.download(url).startswith(b"\x89PNG"), "the picture does not download as a PNG")
    done(f"picture {generated['fileId']} stored as a file the reply holds")

    say("Delete the question: its reference on the uploaded image is released")
    client.delete_message(thread, saved["message"]["id"])
    released = client.call("GET", f"/files/{file['id']}")["file"]
    _check(released["refcount"] == 0, f"expected refcount 0, got {released['refcount']}")
    done("refcount 0: the image is now a vacuum candidate")

    say("Run the vacuum")
    result = client.invoke("vacuum", schedule_event())
    print(f"      vacuum: {describe_vacuum(result)}")
    try:
        client.call("GET", f"/files/{file['id']}")
        gone = False
    except ApiError as error:
        gone = error.status == 404
    if grace == 0:
        _check(gone, "the unreferenced image is still there")
        done("the unreferenced image is gone, object and rows")
    else:
        _check(not gone, "the image went before its grace period")
        done(
            f"the image stays until its grace period ({grace} s) is over "
            "(run `agentfiles demo --start` to see it go)"
        )

    say("The generated picture is still referenced, so it stays")
    kept = client.call("GET", f"/files/{generated['fileId']}")["file"]
    _check(kept["refcount"] == 1 and kept["status"] == "ready", f"unexpected: {kept}")
    done("referenced files are never vacuumed")


def run_demo(args: argparse.Namespace) -> int:
    sub = f"demo-{uuid.uuid4().hex[:6]}"
    try:
        if args.start:
            with _own_stack() as url:
                tour(Client(url, sub))
        else:
            tour(Client(args.url, sub))
    except StepFailed as failure:
        print(f"\ndemo failed: {failure}", file=sys.stderr)
        return 1
    print("\ndemo complete: every step checked out")
    return 0
