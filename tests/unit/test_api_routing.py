"""The API's route modules are imported by the first request that needs one
(`functions/api/routing.py`): what is read from their decorators must be what their
routers serve, each path must belong to one module, and a request loads its own."""

from __future__ import annotations

import json
import re
import sys

import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver

from functions.api.routing import RouteModules, path_pattern, read_routes
from harness.imports import run_probe

ULID = "01J0000000000000000000000Z"


@pytest.fixture(scope="module")
def api():
    from functions.api import handler

    handler.routes.load_all()
    return handler


def _concrete(path: str) -> str:
    return re.sub(r"<\w+>", ULID, path)


def test_what_is_read_from_the_route_modules_is_what_the_api_documents(api):
    # Given every route read from the modules' decorators, without importing them
    read = {
        (method, path.replace("<", "{").replace(">", "}"))
        for name in api.routes.names
        for method, path in api.routes.routes(name) or []
    }
    # When compared with the routes the loaded routers document
    schema = api.app.get_openapi_schema()
    documented = {
        (method.upper(), path)
        for path, item in schema.paths.items()
        for method in ("get", "post", "put", "patch", "delete")
        if getattr(item, method, None)
    }
    # Then they are the same routes (and the handler's own /health, public)
    assert read | {("GET", "/health")} == documented


def test_every_route_path_belongs_to_one_module(api):
    # Given each module's routes / When a request for each path is matched against all modules
    patterns = {
        name: [path_pattern(path) for _, path in api.routes.routes(name) or []] for name in api.routes.names
    }
    for name in api.routes.names:
        for _, path in api.routes.routes(name) or []:
            request = _concrete(path)
            owners = {other for other, found in patterns.items() if any(p.match(request) for p in found)}
            # Then only its own module claims it (so which module loads first cannot change the answer)
            assert owners == {name}, path


@pytest.mark.parametrize(
    ("path", "matches"),
    [
        ("/threads/01J/messages", True),
        ("/threads/01J/messages/", True),
        ("/threads//messages", False),
        ("/threads/01J/messages/02K", False),
        ("/threads/01J/images", False),
    ],
)
def test_a_route_pattern_matches_one_segment_per_parameter(path, matches):
    assert bool(path_pattern("/threads/<threadId>/messages").match(path)) is matches


@pytest.mark.parametrize(
    "decorator",
    ['@router.route("/x", method="GET")', "@router.get(PATH)", "@router.get", '@router.head("/x")'],
)
def test_a_module_registering_routes_another_way_is_not_read(decorator):
    # Then RouteModules loads such a module at init, as before
    assert read_routes(f"{decorator}\ndef route():\n    pass\n") is None


def test_a_route_module_that_cannot_be_read_is_loaded_at_init(tmp_path, monkeypatch):
    # Given a routes package: one module with decorated routes, one that registers its
    # route by calling the router
    package = tmp_path / "some_routes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    header = "from functions.api.contract import Router\nrouter = Router()\n"
    (package / "plain.py").write_text(header + '@router.get("/plain")\ndef plain() -> dict:\n    return {}\n')
    (package / "odd.py").write_text(header + 'def odd() -> dict:\n    return {}\nrouter.get("/odd")(odd)\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("some_routes", "some_routes.plain", "some_routes.odd"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    # When the route modules are indexed
    modules = RouteModules(APIGatewayHttpResolver(), "some_routes", ("plain", "odd"))
    # Then the readable one waits for a request, and the other is loaded now
    assert list(modules.pending) == ["plain"]
    assert "some_routes.odd" in sys.modules
    assert "some_routes.plain" not in sys.modules
    for name in ("some_routes", "some_routes.plain", "some_routes.odd"):
        sys.modules.pop(name, None)


def test_undecorated_and_differently_decorated_functions_are_not_routes():
    source = '@router.post("/files", summary="x")\ndef a():\n    pass\n\n@cache\ndef b():\n    pass\n'
    assert read_routes(source) == [("POST", "/files")]


REQUEST = """
import json, sys
from functions.api.handler import lambda_handler
from agentfiles_local.events import http_api_event

class Context:
    function_name = "api"; memory_limit_in_mb = 512; aws_request_id = "r"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    def get_remaining_time_in_millis(self): return 29000

reply = lambda_handler(http_api_event({method!r}, {path!r}, claims={{"sub": "alice"}}), Context())
loaded = sorted(m for m in sys.modules if m.startswith("functions.api.routes."))
print(json.dumps([reply["statusCode"], loaded]))
"""


@pytest.mark.parametrize(
    ("method", "path", "loaded"),
    [
        ("GET", "/threads/not-an-id", ["functions.api.routes.threads"]),
        ("GET", "/threads/not-an-id/messages", ["functions.api.routes.messages"]),
        ("DELETE", "/files/not-an-id", ["functions.api.routes.files"]),
        ("GET", "/nowhere", []),
    ],
)
def test_a_cold_request_loads_only_the_module_of_its_route(method, path, loaded):
    # Given a fresh API function / When its first request is one that fails validation
    # (so that it touches no AWS) or has no route
    probe = run_probe(REQUEST.format(method=method, path=path))
    assert probe.returncode == 0, probe.stderr
    status, modules = json.loads(probe.stdout.strip().splitlines()[-1])
    # Then the answer is the one the full API gives, and only that route's module was loaded
    assert status == (404 if loaded == [] else 422)
    assert modules == loaded
