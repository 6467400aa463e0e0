"""One instance of a function, in its own process, as a Lambda execution environment:
it takes the environment it is given, imports the handler once (the cold start) and
then handles one event at a time, for as long as the host keeps it.

The host and the instance talk over a pipe, in tuples:

- instance → host, once: `("ready", init_seconds)`, or `("error", type, message, traceback)`
  when the handler cannot be imported (the instance then ends);
- host → instance: `(request_id, event)` per invocation, `None` to end;
- instance → host, per invocation: `("ok", result, seconds, max_rss_kib)` or
  `("error", type, message, traceback)`.
"""

from __future__ import annotations

import ctypes
import importlib
import io
import os
import resource
import signal
import sys
import time
import traceback
import warnings
from multiprocessing.connection import Connection
from typing import Any

# Set by `agentfiles serve` (unless --json): the file the functions' stdout goes to.
LOG_FILE_VARIABLE = "AGENTFILES_FUNCTION_LOG"
# The spec of a function: (name, handler module, timeout seconds, memory MB).
FunctionSpec = tuple[str, str, int, int]


def name_process(name: str) -> None:
    """What `ps -o comm` and `top` show for this process (Linux; 15 characters)."""
    try:
        libc = ctypes.CDLL(None)
        libc.prctl(15, name.encode()[:15] + b"\0", 0, 0, 0)  # PR_SET_NAME
    except (OSError, AttributeError):
        pass


def serve(conn: Connection, spec: FunctionSpec, environment: dict[str, str], number: int = 1) -> None:
    """The instance's whole life; runs in the child process."""
    # Ctrl-C reaches every process of the terminal; the host decides when instances end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name_process(f"{spec[0]}#{number}")
    os.environ.clear()
    os.environ.update(environment)
    _log_to_file(environment.get(LOG_FILE_VARIABLE))
    # Lambda's logs reach CloudWatch line by line; keep stdout as prompt when piped.
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(line_buffering=True)
    # Powertools warns on every invocation that emitted no metric; locally that is noise.
    warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)
    name, module, timeout_seconds, memory_mb = spec
    started = time.perf_counter()
    try:
        import agentfiles_local.runtime  # noqa: F401  (puts the repository's functions/ on sys.path)
        from agentfiles_local.events import LambdaContext
        from agentfiles_local.runtime import aws_calls

        # Off unless AGENTFILES_RECORD_AWS_CALLS is set; before the handler makes any client.
        aws_calls.install_from_environment(name)
        handler = importlib.import_module(module).lambda_handler
    except BaseException as error:
        conn.send(_failure(error))
        return
    conn.send(("ready", time.perf_counter() - started))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        request_id, event = message
        context = LambdaContext(name, timeout_seconds, memory_mb)
        context.aws_request_id = request_id
        started = time.perf_counter()
        try:
            result = handler(event, context)
            answer: tuple[Any, ...] = ("ok", result, time.perf_counter() - started, _max_rss_kib())
        except Exception as error:
            answer = _failure(error)
        try:
            conn.send(answer)
        except (EOFError, OSError):
            return
        except Exception as error:  # the result would not pickle
            conn.send(_failure(error))


def _log_to_file(path: str | None) -> None:
    """What the function prints (Powertools' JSON logs, its metrics' EMF blobs: what
    CloudWatch gets on AWS) goes to this file instead of the console, where a person
    reads one line per request; the function itself is unchanged."""
    if not path:
        return
    sys.stdout.flush()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(fd, 1)
    os.close(fd)


def _failure(error: BaseException) -> tuple[str, str, str, str]:
    return ("error", type(error).__name__, str(error), "".join(traceback.format_exception(error)))


def _max_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
