"""The `agentfiles` commands a user runs against the API: token, upload, ask, image,
threads, messages, files, download, usage, models, vacuum, invoke, demo.

Output is for people by default and JSON with `--json`; any failure exits non-zero
with the API's error code and message on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentfiles import topology
from agentfiles_cli.client import ApiError, Client, Unreachable
from agentfiles_cli.words import describe_vacuum, human_size

DEFAULT_URL = "http://127.0.0.1:8000"
# Smaller files upload too fast for a progress bar to say anything.
PROGRESS_FROM_BYTES = 256 * 1024


def _client(args: argparse.Namespace) -> Client:
    return Client(args.url, args.sub, token=args.token, websocket_url=args.websocket_url)


def _emit(args: argparse.Namespace, data: Any, human: Callable[[], None]) -> None:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        human()


class ProgressBar:
    """`name [#########.........] 45%  12.3/27.1 MiB` on stderr, redrawn in place."""

    def __init__(self, label: str, width: int = 30):
        self.label, self.width, self.last = label, width, -1
        # Redrawn in place on a terminal; into a file or a pipe, only the finished line.
        self.redraw = sys.stderr.isatty()

    def __call__(self, sent: int, total: int) -> None:
        percent = int(sent * 100 / total) if total else 100
        if percent == self.last or (not self.redraw and sent < total):
            return
        self.last = percent
        filled = self.width * percent // 100
        bar = "#" * filled + "." * (self.width - filled)
        mib = 1024 * 1024
        start = "\r" if self.redraw else ""
        sys.stderr.write(f"{start}{self.label} [{bar}] {percent:3d}%  {sent / mib:.1f}/{total / mib:.1f} MiB")
        if sent >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def upload_files(client: Client, paths: list[Path], quiet: bool = False) -> list[dict[str, Any]]:
    uploaded = []
    for path in paths:
        if not path.is_file():
            raise ApiError(400, "no_such_file", f"{path} is not a file")
        big = path.stat().st_size >= PROGRESS_FROM_BYTES and not quiet
        file, deduplicated = client.upload(path, ProgressBar(path.name) if big else None)
        uploaded.append({"file": file, "deduplicated": deduplicated, "path": str(path)})
        if not quiet:
            how = "already there (dedup: no bytes sent)" if deduplicated else "uploaded"
            print(
                f"{path.name}: {how} → {file['id']} ({file['status']}, {file['size']} bytes)", file=sys.stderr
            )
    return uploaded


# ---- commands ------------------------------------------------------------------


def cmd_token(args: argparse.Namespace) -> int:
    token = _client(args).token()
    _emit(args, {"token": token, "sub": args.sub}, lambda: print(token))
    return 0


def cmd_upload(args: argparse.Namespace) -> int:
    uploaded = upload_files(_client(args), [Path(p) for p in args.files], quiet=args.json)
    _emit(args, uploaded, lambda: [print(u["file"]["id"]) for u in uploaded])
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    client = _client(args)
    files = upload_files(client, [Path(p) for p in args.file], quiet=args.json)
    thread = args.thread or client.create_thread(args.text[:60])
    # Follow the thread before asking, so every frame of the reply is pushed to us.
    live = client.live(thread)
    parts: list[dict[str, Any]] = [{"type": "text", "text": args.text}]
    for item in files:
        kind = "image" if item["file"]["mediaType"].startswith("image/") else "file"
        parts.append({"type": kind, "fileId": item["file"]["id"]})
    saved = client.send(thread, parts)
    if not args.json:
        print(f"thread {thread}", file=sys.stderr)

    def show(piece: str) -> None:
        if not args.json:
            sys.stdout.write(piece)
            sys.stdout.flush()

    if live is not None:
        try:
            reply = client.follow_live(live, saved["reply"]["id"], show)
        finally:
            live.close()
    else:
        # No WebSocket to be had: poll the reply instead.
        reply = client.follow(thread, saved["reply"]["id"], show)
    if not args.json:
        print()
    _emit(args, {"thread": thread, "message": saved["message"], "reply": reply}, lambda: None)
    if reply["status"] == "stopped":
        print("(stopped)", file=sys.stderr)
    if reply["status"] == "failed":
        error = reply.get("error") or {}
        print(f"error: the reply failed: {error.get('code')}: {error.get('message')}", file=sys.stderr)
        return 1
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    client = _client(args)
    thread = args.thread or client.create_thread(args.prompt[:60])
    saved = client.image(thread, args.prompt, args.size)
    reply = client.follow(thread, saved["reply"]["id"])
    if reply["status"] != "success":
        error = reply.get("error") or {}
        print(f"error: no image: {error.get('code')}: {error.get('message')}", file=sys.stderr)
        return 1
    part = next(p for p in reply["content"] if p["type"] == "image")
    # Where files are scanned for malware, the picture's URL comes once it is scanned.
    part = {**part, "url": part.get("url") or client.file_url(part["fileId"])}
    if args.out:
        Path(args.out).write_bytes(client.download(part["url"]))

    def human() -> None:
        print(f"thread {thread}: image {part['fileId']}")
        print(part["url"])
        if args.out:
            print(f"saved to {args.out}")

    _emit(args, {"thread": thread, "reply": reply}, human)
    return 0


def cmd_threads(args: argparse.Namespace) -> int:
    items = _client(args).threads()

    def human() -> None:
        for thread in items:
            print(f"{thread['id']}  {thread['updatedAt']}  {thread.get('title') or ''}")

    _emit(args, items, human)
    return 0


def cmd_messages(args: argparse.Namespace) -> int:
    items = list(reversed(_client(args).messages(args.thread)))

    def human() -> None:
        for message in items:
            text = " ".join(p.get("text", "") for p in message["content"] if p["type"] == "text")
            files = [p.get("filename") or p.get("fileId") for p in message["content"] if p["type"] != "text"]
            attached = f"  [{', '.join(str(f) for f in files)}]" if files else ""
            print(f"{message['role']:>9} ({message['status']}): {text}{attached}")

    _emit(args, items, human)
    return 0


def cmd_files(args: argparse.Namespace) -> int:
    items = _client(args).files()

    def human() -> None:
        for file in items:
            print(
                f"{file['id']}  {file['status']:8} refs={file['refcount']}  "
                f"{file['size']:>9}  {file['filename']}"
            )

    _emit(args, items, human)
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    client = _client(args)
    file = client.file(args.file_id)
    if file["status"] != "ready":
        raise ApiError(409, "file_not_ready", f"file {args.file_id} is {file['status']}")
    url = file.get("thumbnailUrl") if args.thumbnail else file.get("url")
    if url is None:
        raise ApiError(404, "thumbnail_not_found", f"file {args.file_id} has no thumbnail (only images do)")
    name = Path(file["filename"]).name or file["id"]
    out = Path(args.out or (f"{Path(name).stem}.thumbnail.webp" if args.thumbnail else name))
    data = client.download(url)
    out.write_bytes(data)

    def human() -> None:
        print(f"saved {human_size(len(data))} to {out}")

    _emit(args, {"file": file, "path": str(out), "bytes": len(data)}, human)
    return 0


def cmd_usage(args: argparse.Namespace) -> int:
    usage = _client(args).usage()

    def human() -> None:
        storage, today = usage["storage"], usage["generation"]
        print(
            f"storage  {human_size(storage['bytes'])} of {human_size(storage['quotaBytes'])}, "
            f"{storage['files']} of {storage['quotaFiles']} files"
        )
        print(
            f"today    ({today['day']}, UTC) {today['replies']} replies, {today['images']} images, "
            f"{today['promptTokens']} prompt + {today['completionTokens']} completion tokens"
        )
        print(f"limit    {usage['limits']['generationsPerMinute']} replies or images per minute")

    _emit(args, usage, human)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    models = _client(args).models()

    def human() -> None:
        for kind in ("chat", "image"):
            names = [
                f"{name} (default)" if name == models["default"][kind] else name for name in models[kind]
            ]
            print(f"{kind:5}  {', '.join(names)}")

    _emit(args, models, human)
    return 0


def cmd_vacuum(args: argparse.Namespace) -> int:
    from agentfiles_local.events import schedule_event

    result = _client(args).invoke("vacuum", schedule_event())
    _emit(args, result, lambda: print(f"vacuum: {describe_vacuum(result)}"))
    return 0


def cmd_invoke(args: argparse.Namespace) -> int:
    event = json.loads(Path(args.event).read_text())
    result = _client(args).invoke(args.function, event)
    print(json.dumps(result, indent=2))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from agentfiles_cli.demo import run_demo

    return run_demo(args)


# ---- wiring --------------------------------------------------------------------


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        default=None,
        help="the API (default $AGENTFILES_URL, else the stack `agentfiles config` saved, "
        f"else {DEFAULT_URL})",
    )
    parser.add_argument(
        "--token",
        default=None,
        help="a bearer token (default $AGENTFILES_TOKEN, else the stored `agentfiles login`, "
        "else a local stack's token for --sub)",
    )
    parser.add_argument(
        "--sub",
        default=os.environ.get("AGENTFILES_SUB", "demo"),
        help="the local user to act as (default $AGENTFILES_SUB or %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _run(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    def guarded(args: argparse.Namespace) -> int:
        from agentfiles_cli.account import AccountError, resolve

        try:
            target = resolve(args.url, args.token, DEFAULT_URL)
            args.url, args.token, args.websocket_url = target.url, target.token, target.websocket_url
            return command(args)
        except AccountError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except ApiError as error:
            print(f"error: {error.code}: {error.message}", file=sys.stderr)
            return 1
        except Unreachable as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        except BrokenPipeError:
            raise  # the reader of a pipe left: `main` ends quietly
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1

    return guarded


def cmd_export(args: argparse.Namespace) -> int:
    client = _client(args)
    export = client.create_export()
    print(f"export {export['id']}: being made", file=sys.stderr)
    deadline = time.monotonic() + args.wait
    while export["status"] == "pending":
        if time.monotonic() > deadline:
            raise ApiError(
                504, "export_not_ready", f"export {export['id']} not ready after {args.wait:.0f} s"
            )
        time.sleep(1)
        export = client.export(export["id"])
    if export["status"] != "ready":
        raise ApiError(500, "export_failed", f"export {export['id']} failed")
    out = Path(args.out or f"agentfiles-export-{export['id']}.zip")
    with out.open("wb") as file:
        written = client.download_to(export["url"], file, ProgressBar(out.name))
    _emit(args, {**export, "path": str(out)}, lambda: print(f"{out}: {written} bytes"))
    return 0


def _erasure_line(erasure: dict[str, Any]) -> str:
    counts = erasure.get("counts", {})
    removed = ", ".join(f"{counts.get(k, 0)} {k}" for k in ("threads", "threadRows", "objects", "rows"))
    where = f" ({erasure['phase']})" if erasure.get("phase") else ""
    return f"erasure {erasure['status']}{where}: {removed} removed"


def cmd_erase_account(args: argparse.Namespace) -> int:
    client = _client(args)
    if not args.yes:
        if not sys.stdin.isatty():
            print("error: give --yes to erase the account without a question", file=sys.stderr)
            return 1
        answer = input(f"Erase every thread, message and file of {args.sub}? Type the user name to confirm: ")
        if answer.strip() != args.sub:
            print("not erased")
            return 1
    erasure = client.erase_account()
    print(_erasure_line(erasure), file=sys.stderr)
    deadline = time.monotonic() + args.wait
    while erasure["status"] != "done" and time.monotonic() < deadline:
        time.sleep(1)
        erasure = client.account().get("erasure") or erasure
        print(_erasure_line(erasure), file=sys.stderr)
    _emit(args, erasure, lambda: print(_erasure_line(erasure)))
    return 0


def add_client_commands(commands: argparse._SubParsersAction) -> None:
    def add(name: str, command: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        parser = commands.add_parser(name, help=help_, description=help_)
        _common(parser)
        parser.set_defaults(run=_run(command))
        return parser

    add("token", cmd_token, "print the bearer token commands send (the local user's, or the stored login's)")
    add("upload", cmd_upload, "upload files through presigned URLs (dedup shown)").add_argument(
        "files", nargs="+", metavar="FILE"
    )
    ask = add("ask", cmd_ask, "send a message (with files) and stream the reply")
    ask.add_argument("text")
    ask.add_argument("--file", action="append", default=[], metavar="PATH", help="attach a file (repeatable)")
    ask.add_argument("--thread", help="continue this thread (default: a new one)")
    image = add("image", cmd_image, "generate an image into a thread")
    image.add_argument("prompt")
    image.add_argument("--thread", help="the thread (default: a new one)")
    image.add_argument("--size", default="1024x1024")
    image.add_argument("--out", metavar="PATH", help="also save the picture here")
    add("threads", cmd_threads, "list your threads, newest first")
    add("messages", cmd_messages, "show a thread's messages, oldest first").add_argument("thread")
    add("files", cmd_files, "list your files, newest first")
    download = add("download", cmd_download, "save a file as uploaded (or its thumbnail) to disk")
    download.add_argument("file_id", metavar="FILE_ID")
    download.add_argument("--out", metavar="PATH", help="where to save it (default: its filename here)")
    download.add_argument(
        "--thumbnail", action="store_true", help="the image's small thumbnail (WebP) instead of the original"
    )
    add("usage", cmd_usage, "your storage and its quota, and today's replies, images and tokens")
    add("models", cmd_models, "the chat and image models you may name")
    export = add("export", cmd_export, "download everything of your account as one ZIP (a progress bar)")
    export.add_argument(
        "--out", metavar="FILE", help="where to write it (default agentfiles-export-<id>.zip)"
    )
    export.add_argument(
        "--wait",
        type=float,
        default=600,
        metavar="SECONDS",
        help="wait this long for it (default %(default)s)",
    )
    erase = add("erase-account", cmd_erase_account, "erase your account: every thread, message and file")
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.add_argument(
        "--wait", type=float, default=600, metavar="SECONDS", help="follow it this long (default %(default)s)"
    )
    add("vacuum", cmd_vacuum, "run one vacuum now (local stack)")
    invoke = add(
        "invoke", cmd_invoke, "run a function on an event file, e.g. events/eventbridge_schedule.json"
    )
    invoke.add_argument("function", choices=sorted(topology.FUNCTIONS))
    invoke.add_argument("event", metavar="EVENT.json")
    demo = add("demo", cmd_demo, "a scripted tour: upload, dedup, ask, image, delete, vacuum")
    demo.add_argument(
        "--start",
        action="store_true",
        help="start a local stack of its own for the tour (grace 0, so the vacuum shows)",
    )
