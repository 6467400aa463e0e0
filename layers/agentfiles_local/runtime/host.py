"""The functions, hosted as Lambda hosts them: each `functions/<name>/handler.py` is
imported once (its cold start) and invoked with a `LambdaContext` carrying the
deadline from `agentfiles.topology`.

A Lambda instance handles one event at a time, so each function has its own lock:
concurrent HTTP requests to `api` wait for each other, while a long `generate` on a
poller thread never holds up the API. Unlike Lambda, all functions share one
process (one environment, one set of cached clients, one Powertools logger).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from agentfiles import topology
from agentfiles_local.events import LambdaContext

log = logging.getLogger(__name__)

Handler = Callable[[Any, Any], Any]


class FunctionHost:
    """Loads and invokes the functions named in `topology.FUNCTIONS`."""

    def __init__(self, package: str = "functions") -> None:
        self._package = package
        self._handlers: dict[str, Handler] = {}
        self._locks: dict[str, threading.Lock] = {}

    def load(self, name: str) -> bool:
        """Import a function's handler; False (with a warning) when the function has
        not been written yet, so the rest of the stack still runs."""
        module_name = f"{self._package}.{name}.handler"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as error:
            if error.name not in (module_name, f"{self._package}.{name}"):
                raise
            log.warning("function %s not found (%s): skipped", name, module_name)
            return False
        self.add(name, module.lambda_handler)
        return True

    def add(self, name: str, handler: Handler) -> None:
        """Host a handler under a name (tests host fakes this way)."""
        self._handlers[name] = handler
        self._locks[name] = threading.Lock()

    def has(self, name: str) -> bool:
        return name in self._handlers

    @property
    def names(self) -> list[str]:
        return sorted(self._handlers)

    def invoke(self, name: str, event: Any) -> Any:
        """One invocation; exceptions propagate, as a function error does to its caller."""
        spec = topology.FUNCTIONS.get(name)
        timeout, memory = (spec.timeout_seconds, spec.memory_mb) if spec else (60, 512)
        with self._locks[name]:
            return self._handlers[name](event, LambdaContext(name, timeout, memory))
