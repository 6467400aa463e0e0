"""The EventBridge rule that runs the vacuum: a rate schedule, first fired one
interval after start (as a new `rate()` rule does), with a real-shaped event."""

from __future__ import annotations

import logging
import threading

from agentfiles_local.events import schedule_event
from agentfiles_local.runtime.host import FunctionHost

log = logging.getLogger(__name__)


class Schedule:
    def __init__(self, host: FunctionHost, function: str, interval_seconds: float) -> None:
        self._host = host
        self.function = function
        self.interval_seconds = interval_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Schedule:
        self._thread = threading.Thread(target=self._run, name=f"schedule-{self.function}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def fire(self) -> None:
        """One scheduled invocation; a failure is logged and the next run comes anyway,
        as EventBridge does after its retries."""
        self.runs += 1
        try:
            result = self._host.invoke(self.function, schedule_event())
        except Exception:
            log.exception("scheduled %s failed", self.function)
            return
        # One line when the run did something; an idle run says nothing.
        done = (result or {}).get("vacuum") if isinstance(result, dict) else None
        if isinstance(done, dict) and done.get("filesDeleted"):
            log.info(
                "%s: %s file(s) deleted, %s bytes freed",
                self.function,
                done.get("filesDeleted"),
                done.get("bytesFreed", 0),
            )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_seconds):
            self.fire()
