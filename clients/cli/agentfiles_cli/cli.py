"""`agentfiles`: the command line of the local system, and of a deployed one.

One subcommand per verb, each added by a `add_<verb>(commands)` function listed in
`SUBCOMMANDS`; a subcommand imports what it needs only when it runs, so that
`agentfiles --help` and quick commands stay quick.
"""

from __future__ import annotations

import argparse
import io
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

SERVE_ENVIRONMENT = """\
environment (each optional):
  PORT                      the HTTP API's port on 127.0.0.1 (default 8000; 0 picks a free one)
  MOTO_PORT                 moto's port, where presigned URLs point (default: a free one)
  FAKE_MODEL_PORT           the built-in model's port (default: a free one)
  FAKE_MODEL_WORD_DELAY_MS  the built-in model's pause between streamed words (default 60,
                            a pace to watch and stop; 0 answers at once, as tests do)
  CORS_ORIGINS              web origins besides the stack's own page that may PUT and GET
                            on moto (a client's dev server: http://localhost:5173,...);
                            no other page may use moto, /dev/* or the fake model
  OPENAI_BASE_URL           an OpenAI-compatible endpoint; with OPENAI_API_KEY, a real model.
  OPENAI_API_KEY            When neither is set, the built-in fake model answers, offline.
  MODEL, IMAGE_MODEL        model names (defaults gpt-4o-mini, gpt-image-1)
  URL_MODE                  how images reach the model: inline (default here: a remote
                            model cannot reach local S3), presigned or public
  PUBLIC_BASE_URL           with URL_MODE=public (default here: the bucket on moto)
  GRACE_SECONDS             how long an unreferenced file is kept (default here 60)
  VACUUM_INTERVAL_SECONDS   how often the vacuum runs (default 30)
  RETRY_BASE_SECONDS        backoff base for retryable model errors (default here 1)
  QUEUE_VISIBILITY_SECONDS  every queue's visibility timeout: how soon a failed record
                            comes back (default 5; on AWS six times its consumer's timeout)
  MALWARE_SCAN              false turns the emulated malware scanner off (on here: files
                            are ready once both the upload check and the scan passed them)
  MALWARE_SCAN_DELAY_MS     how long after an upload the emulated scanner reports (300)
  LOCAL_MALWARE_SHA256S     SHA-256s the emulated scanner reports as threats, besides EICAR
  LOCAL_CONCURRENCY         instances (worker processes) each function may run at once,
                            one event each, as Lambda's concurrency (default: the number
                            of cores, at least 2)
  Every other setting in the README's Configuration table is read as on Lambda.

Everything lives in memory and is gone when the process ends, unless --data DIR
keeps it: written there when the stack stops, read back when it starts. Tokens come from
POST /dev/token {"sub": "alice"}; send them as "Authorization: Bearer <token>".
"""


def serve(args: argparse.Namespace) -> int:
    """Run the local stack until SIGINT or SIGTERM."""
    from agentfiles_local.runtime.snapshot import UnreadableSnapshot
    from agentfiles_local.runtime.stack import LocalStack, StackConfig

    try:
        config = replace(
            StackConfig.from_env(),
            data_dir=args.data,
            function_log=None if args.json else (args.log or _default_function_log()),
        )
    except ValueError as problem:
        print(f"agentfiles serve: {problem}", file=sys.stderr)
        return 2
    if args.data is not None and args.data.exists() and not args.data.is_dir():
        print(f"agentfiles serve: --data {args.data}: not a directory", file=sys.stderr)
        return 2
    _show_runtime_logs()
    # Powertools warns on every invocation that emitted no metric (a health check, an
    # idle vacuum run); locally that is noise between the lines that matter.
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    # Lambda's logs reach CloudWatch line by line; keep stdout as prompt when piped.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stack = LocalStack(config).start()
    except (OSError, UnreadableSnapshot) as problem:
        print(f"agentfiles serve: cannot start: {problem}", file=sys.stderr)
        return 1
    print(stack.banner(), flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        logging.getLogger("agentfiles_local").info("stopping")
        stack.stop()
    return 0


def add_serve(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the whole system on 127.0.0.1 (make run)",
        description="Run the whole system on this machine: moto (S3, DynamoDB, SQS) in a process "
        "of its own, the HTTP API with a JWT authorizer, a poller per queue, the vacuum schedule, "
        "the functions in worker processes (several instances each) and, unless a model is "
        "configured, the built-in fake model.",
        epilog=SERVE_ENVIRONMENT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="keep the data between runs: saved to DIR when the stack stops, restored when it starts "
        "(default: in memory only)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the functions' JSON logs and metrics (what CloudWatch gets on AWS) on the console "
        "too, instead of one line per request",
    )
    parser.add_argument(
        "--log",
        type=Path,
        metavar="FILE",
        help="where the functions' JSON logs and metrics go without --json "
        "(default: agentfiles-functions-<PORT>.log in the temporary directory)",
    )
    parser.set_defaults(run=serve)


def _default_function_log() -> Path:
    import os
    import tempfile

    port = os.environ.get("PORT", "").strip() or "8000"
    return Path(tempfile.gettempdir()) / f"agentfiles-functions-{port}.log"


def _add_client_commands(commands: argparse._SubParsersAction) -> None:
    from agentfiles_cli.commands import add_client_commands

    add_client_commands(commands)


def _add_account_commands(commands: argparse._SubParsersAction) -> None:
    from agentfiles_cli.account import add_account_commands

    add_account_commands(commands)


def _add_admin_commands(commands: argparse._SubParsersAction) -> None:
    from agentfiles_cli.admin import add_admin_commands

    add_admin_commands(commands)


SUBCOMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_serve,
    _add_client_commands,
    _add_account_commands,
    _add_admin_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agentfiles",
        description="The command line of agentfiles: the local stack, or a deployed one "
        "(agentfiles config, login).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader of a pipe has what it wanted (`agentfiles threads | head -1`): stop
        # quietly, as a Unix tool that gets SIGPIPE does, with nothing left to flush.
        import os

        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 128 + signal.SIGPIPE
    return code


def _show_runtime_logs() -> None:
    """The runtime's own lines, short, on stderr; the functions log JSON to stdout.
    (Its own handler, not the root's: Powertools filters the root handlers.)"""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    runtime = logging.getLogger("agentfiles_local")
    runtime.handlers = [handler]
    runtime.setLevel(logging.INFO)
    runtime.propagate = False


if __name__ == "__main__":
    sys.exit(main())
