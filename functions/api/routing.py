"""The route modules of the API, each imported by the first request that needs it.

A route module (`routes/<concern>.py`) brings its use cases, its data access and its
models; a cold start on demand, which a user waits for, should pay only for the
concern of its request. So the resolver starts with no route module loaded, and
`RouteModules` knows which module serves which path without importing any: it reads
the modules' route decorators (`@router.get("/threads/<threadId>")`), not runs them.
Before each request, the modules whose routes could match its path are imported and
included in the resolver; a request for the OpenAPI document loads them all.

A module whose routes cannot be read this way (a path that is not a string literal,
a decorator other than `get`, `post`, `put`, `patch`, `delete`, no decorated route at
all) is loaded at init, as before. A test holds what is read against what the routers
document.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import ApiGatewayResolver

ROUTER = "router"
METHODS = frozenset({"get", "post", "put", "patch", "delete"})
_PARAMETER = re.compile(r"<\w+>")


def read_routes(source: str) -> list[tuple[str, str]] | None:
    """(METHOD, path) of every `@router.<method>("<path>", ...)` on a function of a
    module's source; None when it decorates one with `router` in some other way."""
    routes: list[tuple[str, str]] = []
    for node in ast.parse(source).body:
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for decorator in node.decorator_list:
            call = decorator if isinstance(decorator, ast.Call) else None
            target = call.func if call else decorator
            if not (isinstance(target, ast.Attribute) and getattr(target.value, "id", None) == ROUTER):
                continue
            if call is None or target.attr not in METHODS or not call.args:
                return None
            path = call.args[0]
            if not (isinstance(path, ast.Constant) and isinstance(path.value, str)):
                return None
            routes.append((target.attr.upper(), path.value))
    return routes


def path_pattern(path: str) -> re.Pattern[str]:
    """A pattern that matches every request path the route could serve (a parameter is
    one path segment, as in Powertools and in API Gateway), with or without a trailing
    slash: a superset is safe, it only loads a module that then does not answer."""
    parts = _PARAMETER.split(path)
    return re.compile("^" + "[^/]+".join(re.escape(part) for part in parts).rstrip("/") + "/?$")


class RouteModules:
    """Route modules of `package` by name, each included in `app` on first need."""

    def __init__(self, app: ApiGatewayResolver, package: str, names: tuple[str, ...]) -> None:
        self.app = app
        self.package = package
        self.names = names
        self.pending: dict[str, tuple[re.Pattern[str], ...]] = {}
        for name in names:
            routes = self._read(name)
            if not routes:  # none found: registered some way this does not read
                self._load(name)
            else:
                self.pending[name] = tuple(path_pattern(path) for _, path in routes)

    def load_for(self, path: str) -> None:
        """Include every module that has a route whose path could match `path`."""
        if not self.pending:
            return
        for name in [name for name, patterns in self.pending.items() if any(p.match(path) for p in patterns)]:
            self._load(name)

    def load_all(self) -> None:
        for name in list(self.pending):
            self._load(name)

    def routes(self, name: str) -> list[tuple[str, str]] | None:
        """What `read_routes` finds in the module `name` (for the tests)."""
        return self._read(name)

    def _read(self, name: str) -> list[tuple[str, str]] | None:
        spec = importlib.util.find_spec(f"{self.package}.{name}")
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"no route module {self.package}.{name}")
        return read_routes(Path(spec.origin).read_text(encoding="utf-8"))

    def _load(self, name: str) -> None:
        module = importlib.import_module(f"{self.package}.{name}")
        self.app.include_router(getattr(module, ROUTER))
        self.pending.pop(name, None)
