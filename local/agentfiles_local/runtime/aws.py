"""moto's server, as the local AWS, in a process of its own.

moto answers every request of the stack (the functions' DynamoDB, S3 and SQS calls,
the pollers' receives) and its state is plain Python behind one interpreter lock:
beside the gateway it would make one process the ceiling of the whole stack. In its
own process it uses a core of its own, as AWS's services are elsewhere for Lambda.
`agentfiles_local.moto_patches` is applied there before it serves, and every request
passes the checks AWS would make first (`runtime/moto_guard.py`): signatures, expiry,
signed headers, the one access key, and no web page but the stack's own.

The process ends when the stack stops it, or when the stack's process is gone.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from agentfiles_local.runtime.worker import name_process

START_SECONDS = 60.0
STOP_SECONDS = 10.0
# How often the moto process walks its whole heap for garbage cycles (see `_collect_aside`).
FULL_COLLECTION_SECONDS = 60.0


@dataclass(frozen=True)
class Credentials:
    """The one access key moto takes (`runtime/moto_guard.py`); the stack's processes sign with it."""

    access_key_id: str
    secret_access_key: str


class MotoProcess:
    """moto's server on `host:port` (0: a free port) in a child process, behind the
    checks AWS makes before a request reaches a service (`runtime/moto_guard.py`)."""

    def __init__(
        self, host: str, port: int, credentials: Credentials | None = None, public_reads: bool = False
    ) -> None:
        self._host = host
        self._port = port
        self._credentials = credentials or Credentials("testing", "testing")
        self._public_reads = public_reads
        self._conn: Connection | None = None
        self._process: Any = None
        self._address: tuple[str, int] | None = None

    def start(self) -> MotoProcess:
        context = multiprocessing.get_context("forkserver")
        ours, theirs = context.Pipe()
        self._process = context.Process(
            target=serve,
            args=(theirs, self._host, self._port, self._credentials, self._public_reads),
            name="moto",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._conn = ours
        if not ours.poll(START_SECONDS):
            self.stop()
            raise RuntimeError("moto's server did not start")
        try:
            answer = ours.recv()
        except EOFError:
            self.stop()
            raise RuntimeError("moto's server exited while starting") from None
        if answer[0] != "ready":
            self.stop()
            raise RuntimeError(f"moto's server did not start: {answer[1]}")
        self._address = answer[1]
        return self

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._address is not None, "start() first"
        return self._address

    def allow_origins(self, origins: list[str]) -> None:
        """The web origins (the stack's page) whose browsers may call moto."""
        assert self._conn is not None, "start() first"
        self._conn.send(("origins", list(origins)))

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def stop(self) -> None:
        if self._conn is not None:
            try:
                self._conn.send(None)
            except OSError:
                pass
            self._conn.close()
            self._conn = None
        if self._process is not None:
            self._process.join(STOP_SECONDS)
            if self._process.is_alive():
                self._process.kill()
                self._process.join(STOP_SECONDS)
            self._process = None


def serve(conn: Connection, host: str, port: int, credentials: Credentials, public_reads: bool) -> None:
    """The child: patch moto, serve behind the guard, and wait for the word to stop (or
    for the stack's end of the pipe to close); origins for the guard may come first."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    name_process("moto")
    # moto's server logs every request through werkzeug; the functions' logs matter more.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    try:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        from agentfiles_local import moto_patches
        from agentfiles_local.runtime.moto_guard import MotoGuard

        moto_patches.apply()
        guard = MotoGuard(
            DomainDispatcherApplication(create_backend_app),
            credentials.access_key_id,
            credentials.secret_access_key,
            public_reads=public_reads,
        )
        server = make_server(host, port, guard, threaded=True, request_handler=MotoRequestHandler)
        bound_host, bound_port = server.server_address[:2]
        guard.hosts = {f"{bound_host}:{bound_port}", f"localhost:{bound_port}"}
        thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
        thread.start()
    except BaseException as error:
        conn.send(("error", f"{type(error).__name__}: {error}"))
        return
    stopping = _collect_aside()
    conn.send(("ready", (str(bound_host), int(bound_port))))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            break
        if not (isinstance(message, tuple) and message[0] == "origins"):
            break
        guard.allow_origins(message[1])
    stopping.set()
    server.shutdown()
    thread.join(STOP_SECONDS)


def _collect_aside() -> threading.Event:
    """Full garbage collections on a timer instead of on allocation counts.

    moto keeps every item of every table as Python objects for the life of the process,
    and a full collection walks all of them: left to the allocation counts, full
    collections made each request slower as the tables grew (a save beside 5,000 more
    rows cost about 1.35x the CPU in moto). Young objects, where a request's garbage is,
    are still collected as usual; the whole heap once a minute. Returns the event that
    stops the timer."""
    gc.set_threshold(700, 10, 1_000_000)  # generation 2: practically never by count
    stopping = threading.Event()

    def collect() -> None:
        while not stopping.wait(FULL_COLLECTION_SECONDS):
            gc.collect()

    threading.Thread(target=collect, name="moto-gc", daemon=True).start()
    return stopping
