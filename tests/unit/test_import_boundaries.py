"""What ships imports only what ships, and what each function loads at init.

The tree has three parts: what deploys to AWS (`functions/`, `layers/agentfiles/`,
`infra/`), what emulates it on one machine (`local/agentfiles_local/`, and the command
line in `clients/cli/` that starts it) and what measures or tests it (`harness/`,
`bench/`, `tests/`). Imports run only from the later parts to the earlier ones.

At init, as Lambda's on-demand init does it: only the generate function loads the model
SDK (it costs ~0.3 s and ~50 MB at cold start); no function loads Powertools' resolvers
it does not use (AppSync, Bedrock: `asyncio` comes with them) or the OpenAPI models; the
API loads no route module before a request asks for one; and none starts without its
resources. `make bench` measures what these keep out."""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

import pytest

from agentfiles import topology
from harness.imports import ROOT, lambda_environment, run_probe

EMULATES = {"agentfiles_local", "agentfiles_cli"}
MEASURES = {"harness", "bench", "tests"}
# Each folder, and the top-level packages it must never import.
NEVER_IMPORTS = {
    "layers/agentfiles": {"functions", "infra", *EMULATES, *MEASURES},
    "functions": {"infra", *EMULATES, *MEASURES},
    "infra": {"functions", *EMULATES, *MEASURES},
    "local/agentfiles_local": {"agentfiles_cli", *MEASURES},
    "clients/cli/agentfiles_cli": {"functions", "infra", *MEASURES},
    "harness": {"bench", "tests"},
    "bench": {"tests"},
}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """Each top-level package `path` imports, and whether it does so at module level."""
    tree = ast.parse(path.read_text(), str(path))
    nested = {
        id(inner)
        for outer in ast.walk(tree)
        if isinstance(outer, ast.FunctionDef | ast.AsyncFunctionDef)
        for inner in ast.walk(outer)
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], id(node) not in nested) for name in names]
    return found


@pytest.mark.parametrize("folder", sorted(NEVER_IMPORTS))
def test_each_part_of_the_tree_imports_only_the_parts_below_it(folder):
    # Given every module of the folder / Then none imports a part it must not know
    forbidden = NEVER_IMPORTS[folder]
    crossings = [
        f"{path.relative_to(ROOT)} imports {package}"
        for path in sorted((ROOT / folder).rglob("*.py"))
        for package, _ in _imports(path)
        if package in forbidden
    ]
    assert not crossings


def test_the_command_line_loads_the_local_stack_only_for_the_commands_that_run_it():
    # Given the command line's modules / Then each imports agentfiles_local inside the
    # command that needs it, so a client command never pays for moto and the runtime
    eager = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "clients/cli/agentfiles_cli").rglob("*.py"))
        for package, module_level in _imports(path)
        if package == "agentfiles_local" and module_level
    ]
    assert not eager


OPENAPI_MODELS = "aws_lambda_powertools.event_handler.openapi.models"
RESOLVERS = tuple(
    f"aws_lambda_powertools.event_handler.{name}"
    for name in ("appsync", "events_appsync", "graphql_appsync", "bedrock_agent", "vpc_lattice")
)
# Powertools' batch processor imports asyncio in its own module (for its async variant):
# the SQS consumers pay for it, the API and the schedule do not.
WITHOUT_ASYNCIO = ("api", "vacuum")
NO_MODEL = ("api", "upload_trigger", "maintenance", "vacuum")


@cache
def loaded_at_init(function: str, initialization: str = "on-demand") -> frozenset[str]:
    probe = run_probe(
        f"import json, sys, functions.{function}.handler; print(json.dumps(sorted(sys.modules)))",
        lambda_environment(AWS_LAMBDA_INITIALIZATION_TYPE=initialization),
    )
    assert probe.returncode == 0, probe.stderr
    return frozenset(json.loads(probe.stdout))


@pytest.mark.parametrize("function", NO_MODEL)
def test_functions_that_call_no_model_never_import_the_sdk(function):
    assert "openai" not in loaded_at_init(function)


def test_the_generate_function_does():
    assert "openai" in loaded_at_init("generate")


@pytest.mark.parametrize("function", sorted(topology.FUNCTIONS))
def test_no_function_loads_resolvers_it_does_not_use(function):
    # Given a function initialized on demand / Then no AppSync, Bedrock or Lattice resolver
    assert not loaded_at_init(function) & set(RESOLVERS)


@pytest.mark.parametrize("function", WITHOUT_ASYNCIO)
def test_the_api_and_the_vacuum_do_not_load_asyncio(function):
    assert "asyncio" not in loaded_at_init(function)


@pytest.mark.parametrize("function", sorted(topology.FUNCTIONS))
def test_no_function_builds_the_openapi_models_at_init(function):
    # The API builds its OpenAPI document (and the models behind it) when it is asked for.
    assert OPENAPI_MODELS not in loaded_at_init(function)


def test_the_api_loads_every_route_module_at_init_but_not_the_openapi_models():
    # Given the API initialized on demand / Then every route is included (a plain
    # include_router each), and the OpenAPI models, which only /docs needs, are not loaded
    loaded = loaded_at_init("api")
    assert {f"functions.api.routes.{name}" for name in ("files", "threads", "messages")} <= loaded
    assert OPENAPI_MODELS not in loaded


def test_an_api_initialized_ahead_of_requests_loads_every_route_and_builds_the_openapi_document():
    # Given a SnapStart snapshot's init, which no request waits for
    loaded = loaded_at_init("api", "snap-start")
    # Then every route module is loaded, and what the OpenAPI document needs is built
    routes = {f"functions.api.routes.{name}" for name in ("files", "threads", "messages")}
    assert routes <= loaded
    assert OPENAPI_MODELS in loaded


@pytest.mark.parametrize("function", sorted(topology.FUNCTIONS))
def test_a_function_without_its_table_fails_at_init_naming_the_variable(function):
    # Given a deployment that forgot the table's name
    environment = lambda_environment()
    del environment["TABLE_NAME"]
    # When the function is initialised
    probe = run_probe(f"import functions.{function}.handler", environment)
    # Then it stops there, and says which variable is missing
    assert probe.returncode != 0
    assert "missing environment variable(s) TABLE_NAME" in probe.stderr
