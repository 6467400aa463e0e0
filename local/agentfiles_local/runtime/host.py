"""The functions, hosted as Lambda hosts them: in instances that each handle one event
at a time, as many instances of a function as there are events in flight for it, up
to a limit (`concurrency`, `LOCAL_CONCURRENCY` for `agentfiles serve`).

A function loaded from `functions/<name>/handler.py` runs in worker processes
(`runtime/worker.py`), so that its CPU work runs in parallel with the gateway, moto
and the other functions, as it does on Lambda. An instance starts when an event finds
no idle one (its cold start: it imports the handler and logs an `INIT` line with how
long that took), stays warm for the next events (`warm()` starts one of each at
once, as provisioned concurrency would), and gets a `LambdaContext` with its
function's deadline from `agentfiles.topology`; one that outlives its deadline is
stopped, as Lambda stops it. Workers are forked from a server process that has
imported the heavy libraries once (`multiprocessing`'s forkserver), so a cold start
costs the handler's own imports only. Each function has its own instances: a long
`generate` never holds up the API.

`add(name, handler)` hosts a handler in this process instead (tests host fakes this
way), one event at a time unless told otherwise.

`invoke(name, event)` is the one way in, for the gateway, the pollers, the schedule
and `/dev/invoke`. A function's exception reaches its caller: in-process as itself,
from a worker as a `FunctionError` carrying the error's type, message and traceback.

With `AGENTFILES_RECORD_AWS_CALLS=<directory>` in the environment, each instance records
every AWS call it makes (`runtime/aws_calls.py`), so a test can check them against the
function's IAM role. Off by default.
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import multiprocessing
import multiprocessing.forkserver
import os
import threading
import time
import uuid
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from agentfiles import topology
from agentfiles_local.events import LambdaContext
from agentfiles_local.runtime import worker

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]

# Imported once by the server that forks the workers; each worker then imports only
# its handler and the domain package. (Third-party only: they read no settings. Not
# `openai`: only `generate` needs it, and it pays for it at its cold start, as on Lambda.)
PRELOAD = (
    "boto3",
    "botocore.session",
    "pydantic",
    "aws_lambda_powertools",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.parser",
)
# How long past its deadline an instance may take to answer before it is stopped.
DEADLINE_GRACE_SECONDS = 1.0
STOP_SECONDS = 5.0
DEFAULT_SPEC = topology.FunctionSpec("function", 60, 512, "")


def default_concurrency() -> int:
    """About the number of cores, and at least two, so that one slow request never
    holds up the next one."""
    return max(2, os.cpu_count() or 2)


def start_forkserver() -> None:
    """Start the server that forks the workers (if it is not running), so that it
    imports `PRELOAD` while the stack starts, not during the first cold start. Workers
    get their environment when they start, not from this server's."""
    multiprocessing.set_forkserver_preload(list(PRELOAD))
    multiprocessing.forkserver.ensure_running()


class FunctionError(Exception):
    """A function's error, raised in a worker: its type's name and message, as Lambda
    reports an unhandled error, with the worker's traceback as its cause (so a logged
    FunctionError shows where the function failed)."""

    def __init__(self, error_type: str, message: str, stack: str = "") -> None:
        super().__init__(message)
        self.error_type = error_type
        if stack:
            self.__cause__ = RemoteTraceback(stack)


class RemoteTraceback(Exception):
    def __str__(self) -> str:
        return "\n" + str(self.args[0]).rstrip()


class _InProcess:
    """A handler called on the invoking thread, at most `limit` at a time."""

    def __init__(self, name: str, handler: Handler, limit: int) -> None:
        self.name = name
        self._handler = handler
        self._slots = threading.BoundedSemaphore(limit)
        self.instances = 1

    def invoke(self, event: Any, spec: topology.FunctionSpec) -> Any:
        with self._slots:
            return self._handler(event, LambdaContext(self.name, spec.timeout_seconds, spec.memory_mb))

    def stop(self) -> None:
        pass


class _Instance:
    """One worker process and the host's end of its pipe."""

    def __init__(self, process: Any, conn: Connection, number: int) -> None:
        self.process = process
        self.conn = conn
        self.number = number
        self.invocations = 0

    def kill(self) -> None:
        self.conn.close()
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_SECONDS)


class _Workers:
    """The instances of one function, started on demand up to `limit`."""

    def __init__(self, name: str, module: str, limit: int) -> None:
        self.name = name
        self.module = module
        self.limit = limit
        self._idle: list[_Instance] = []
        self._all: set[_Instance] = set()
        self._starting = 0
        self._numbers = itertools.count(1)
        self._changed = threading.Condition()
        self._stopped = False

    @property
    def instances(self) -> int:
        return len(self._all)

    def invoke(self, event: Any, spec: topology.FunctionSpec) -> Any:
        instance = self._acquire(spec)
        request_id = str(uuid.uuid4())
        try:
            instance.conn.send((request_id, event))
            if not instance.conn.poll(spec.timeout_seconds + DEADLINE_GRACE_SECONDS):
                self._discard(instance)
                raise FunctionError(
                    "Sandbox.Timedout", f"{request_id} Task timed out after {spec.timeout_seconds} seconds"
                )
            answer = instance.conn.recv()
        except (EOFError, OSError) as lost:
            self._discard(instance)
            code = instance.process.exitcode
            raise FunctionError(
                "Runtime.ExitError", f"{request_id} Runtime exited with error: exit status {code}"
            ) from lost
        instance.invocations += 1
        self._release(instance)
        if answer[0] == "error":
            _, error_type, message, stack = answer
            raise FunctionError(error_type, message, stack)
        _, result, seconds, max_rss_kib = answer
        log.debug(
            "REPORT %s#%d RequestId: %s Duration: %.2f ms Max Memory Used: %d MB",
            self.name,
            instance.number,
            request_id,
            seconds * 1000,
            max_rss_kib // 1024,
        )
        return result

    def _acquire(self, spec: topology.FunctionSpec) -> _Instance:
        with self._changed:
            while True:
                if self._stopped:
                    raise FunctionError("Runtime.Stopped", f"{self.name} is stopping")
                if self._idle:
                    return self._idle.pop()
                if len(self._all) + self._starting < self.limit:
                    self._starting += 1
                    break
                self._changed.wait()
        return self._grow(spec)

    def _grow(self, spec: topology.FunctionSpec) -> _Instance:
        """Start the instance a caller took a slot for (in `_starting`)."""
        try:
            instance = self._start(spec)
        except BaseException:
            with self._changed:
                self._starting -= 1
                self._changed.notify()
            raise
        with self._changed:
            self._starting -= 1
            self._all.add(instance)
        return instance

    def warm(self, spec: topology.FunctionSpec) -> None:
        """Start one instance now, unless there is one already."""
        with self._changed:
            if self._all or self._starting or self._stopped:
                return
            self._starting += 1
        self._release(self._grow(spec))

    def _start(self, spec: topology.FunctionSpec) -> _Instance:
        """A cold start: a new process imports the handler; INIT says how long it took."""
        context = multiprocessing.get_context("forkserver")
        ours, theirs = context.Pipe()
        number = next(self._numbers)
        process = context.Process(
            target=worker.serve,
            args=(
                theirs,
                (self.name, self.module, spec.timeout_seconds, spec.memory_mb),
                dict(os.environ),
                number,
            ),
            name=f"{self.name}#{number}",
            daemon=True,
        )
        started = time.perf_counter()
        process.start()
        theirs.close()
        instance = _Instance(process, ours, number)
        try:
            answer = ours.recv()
        except (EOFError, OSError):
            instance.kill()
            raise FunctionError(
                "Runtime.ExitError", f"{self.name} exited while starting (status {process.exitcode})"
            ) from None
        if answer[0] == "error":
            instance.kill()
            _, error_type, message, stack = answer
            raise FunctionError(error_type, message, stack)
        log.info(
            "INIT %s#%d pid %d: handler imported in %.0f ms (%.0f ms with the process)",
            self.name,
            number,
            process.pid,
            answer[1] * 1000,
            (time.perf_counter() - started) * 1000,
        )
        return instance

    def _release(self, instance: _Instance) -> None:
        with self._changed:
            if self._stopped:
                self._all.discard(instance)
            else:
                self._idle.append(instance)
                self._changed.notify()
                return
        instance.kill()

    def _discard(self, instance: _Instance) -> None:
        instance.kill()
        with self._changed:
            self._all.discard(instance)
            self._changed.notify()

    def stop(self) -> None:
        """End idle instances now, and busy ones as they finish (or at once after a grace)."""
        with self._changed:
            self._stopped = True
            idle, self._idle = self._idle, []
            self._changed.notify_all()
        for instance in idle:
            try:
                instance.conn.send(None)
            except OSError:
                pass
        deadline = time.monotonic() + STOP_SECONDS
        for instance in idle:
            instance.process.join(max(0.0, deadline - time.monotonic()))
            instance.kill()
            with self._changed:
                self._all.discard(instance)


class FunctionHost:
    """Loads and invokes the functions named in `topology.FUNCTIONS`."""

    def __init__(self, package: str = "functions", concurrency: int | None = None) -> None:
        self._package = package
        self.concurrency = concurrency or default_concurrency()
        self._functions: dict[str, _InProcess | _Workers] = {}

    def load(self, name: str) -> bool:
        """Host a function of the repository in worker processes; False (with a
        warning) when it has not been written yet, so the rest of the stack still runs.
        Nothing is imported here: each instance imports the handler when it starts."""
        module_name = f"{self._package}.{name}.handler"
        try:
            found = importlib.util.find_spec(module_name)
        except ModuleNotFoundError:
            found = None
        if found is None:
            log.warning("function %s not found (%s): skipped", name, module_name)
            return False
        self._functions[name] = _Workers(name, module_name, self.concurrency)
        return True

    def add(self, name: str, handler: Handler, concurrency: int = 1) -> None:
        """Host a handler in this process under a name (tests host fakes this way)."""
        self._functions[name] = _InProcess(name, handler, concurrency)

    def warm(self) -> None:
        """Start one instance of each function hosted in workers, all at once, and wait
        for them, as provisioned concurrency of one would: the first events find them
        warm. A handler that cannot be imported is logged and left cold; its
        invocations report the error."""

        def start(name: str, function: _Workers) -> None:
            try:
                function.warm(topology.FUNCTIONS.get(name, DEFAULT_SPEC))
            except FunctionError:
                log.exception("%s could not start", name)

        threads = [
            threading.Thread(target=start, args=(name, function), name=f"warm-{name}")
            for name, function in self._functions.items()
            if isinstance(function, _Workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def has(self, name: str) -> bool:
        return name in self._functions

    @property
    def names(self) -> list[str]:
        return sorted(self._functions)

    def instances(self) -> dict[str, int]:
        """How many instances each function has now (started and not stopped)."""
        return {name: function.instances for name, function in sorted(self._functions.items())}

    def invoke(self, name: str, event: Any) -> Any:
        """One invocation; exceptions propagate, as a function error does to its caller."""
        spec = topology.FUNCTIONS.get(name, DEFAULT_SPEC)
        return self._functions[name].invoke(event, spec)

    def stop(self) -> None:
        """End every instance (the stack calls this once nothing invokes any more)."""
        for function in self._functions.values():
            function.stop()
