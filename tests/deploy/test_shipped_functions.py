"""Every function as `cdk deploy` ships it: built with real bundling, laid out as Lambda
lays it out (its code asset, only its own layers, the runtime's boto3, the template's
environment), imported and invoked once against a local moto server with a
representative event; and a control that proves the layout is strict: a function
without its dependency layer does not import. (How: `tests/deploy/shipped.py`.)

One build per session, on one xdist worker (`xdist_group`): the build runs pip for each
dependency set and compiles every tree's bytecode, which takes most of this module's time.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agentfiles import topology
from infra.bundling import runtime_python_version
from infra.constants import REPO_ROOT
from tests.deploy.shipped import STAGE, Invocation, Sandbox, Shipped
from tests.deploy.test_oidc_discovery import AUDIENCE, OktaShapedIssuer

pytestmark = [pytest.mark.deploy, pytest.mark.xdist_group("deploy")]

EVENTS = REPO_ROOT / "events"
BYTECODE_TAG = f"cpython-{runtime_python_version().replace('.', '')}"


def _event(name: str) -> dict[str, Any]:
    text = (EVENTS / name).read_text()
    # The samples name the local stack's bucket; the sandbox's is the stage's.
    return json.loads(text.replace("agentfiles-files", f"agentfiles-{STAGE}-files"))


def _maintenance_event() -> dict[str, Any]:
    event = copy.deepcopy(_event("sqs_generation_job.json"))
    (record,) = event["Records"]
    record["body"] = json.dumps(
        {"kind": "delete_thread", "owner": "alice", "threadId": "01JH8Z3Q6M0000000000000000"}
    )
    record["eventSourceARN"] = record["eventSourceARN"].rsplit(":", 1)[0] + ":maintenance"
    return event


def _domain_and_dependencies(layers: tuple[Path, ...]) -> tuple[Path, Path]:
    (domain,) = [layer for layer in layers if (layer / "agentfiles").is_dir()]
    (dependencies,) = [layer for layer in layers if layer != domain]
    return domain, dependencies


def _shipped_paths(shipped: Shipped, name: str) -> tuple[Path, ...]:
    function = shipped.functions[name]
    return (function.code, *function.layers)


def _assert_ran_from_the_bundle(
    shipped: Shipped, sandbox: Sandbox, name: str, invocation: Invocation
) -> None:
    assert invocation.error is None, (
        f"{invocation.error}\n{invocation.traceback}\n{invocation.stderr[-3000:]}"
    )
    roots = tuple(str(path) for path in _shipped_paths(shipped, name))
    # Every shipped module was loaded from its shipped bytecode: none compiled from source.
    assert [path for path in invocation.compiled_from_source if path.startswith(roots)] == []
    # The domain package and pydantic come from the function's layers, boto3 (for the
    # functions that call AWS: all but the authorizer) from the runtime.
    origins = invocation.origins
    assert str(origins["agentfiles"]).startswith(roots)
    assert str(origins["pydantic_core"]).startswith(roots)
    if name != "websocket_authorizer":
        assert str(origins["boto3"]).startswith(str(sandbox.runtime))
    assert origins["boto3"] is None or str(origins["boto3"]).startswith(str(sandbox.runtime))


def test_given_the_shipped_bundle_when_read_then_each_function_has_its_package_bytecode_and_own_layers(
    shipped: Shipped,
) -> None:
    for name, function in shipped.functions.items():
        # Given the function's code asset / Then it holds the function at functions/<name>/
        handler = function.code / "functions" / name / "handler.py"
        assert handler.exists(), name
        # And its bytecode, compiled by the runtime's CPython version
        assert (handler.parent / "__pycache__" / f"handler.{BYTECODE_TAG}.pyc").exists(), name
        # And two layers: the domain package, and the one dependency set the function needs
        domain, dependencies = _domain_and_dependencies(function.layers)
        assert (domain / "agentfiles" / "__pycache__" / f"__init__.{BYTECODE_TAG}.pyc").exists()
        assert (dependencies / "pydantic_core").is_dir()
        assert (dependencies / "openai").is_dir() == topology.FUNCTIONS[name].needs_model, name
        assert (dependencies / "jwt").is_dir() == topology.FUNCTIONS[name].verifies_tokens, name
        # And no boto3: the runtime brings it
        assert not (dependencies / "boto3").exists()


@pytest.mark.parametrize(
    ("name", "event", "expected"),
    [
        ("api", "api_post_files_uploads.json", lambda r: r["statusCode"] == 201),
        ("upload_trigger", "sqs_s3_object_created.json", lambda r: r == {"batchItemFailures": []}),
        ("generate", "sqs_generation_job.json", lambda r: r == {"batchItemFailures": []}),
        ("maintenance", None, lambda r: r == {"batchItemFailures": []}),
        ("vacuum", "eventbridge_schedule.json", lambda r: isinstance(r, dict)),
        ("websocket", "websocket_connect.json", lambda r: r["statusCode"] == 200),
    ],
)
def test_given_a_shipped_function_when_lambda_runs_it_once_then_it_imports_from_its_layers_and_answers(
    shipped: Shipped, sandbox: Sandbox, name: str, event: str | None, expected: Any
) -> None:
    # Given the function as shipped, and a representative event
    payload = _event(event) if event else _maintenance_event()

    # When Lambda's init and one invocation run it
    invocation = sandbox.invoke(shipped.functions[name], payload)

    # Then it imported from its own bundle only, and answered as it does on AWS
    _assert_ran_from_the_bundle(shipped, sandbox, name, invocation)
    assert expected(invocation.result), invocation.result


def test_given_the_shipped_authorizer_when_a_connection_brings_a_valid_token_then_it_is_allowed(
    shipped: Shipped, sandbox: Sandbox
) -> None:
    # Given an issuer the test holds the key of (the one value replaced: the template's is
    # the user pool's), found through its discovery document as in the template (no JWKS_URL)
    issuer = OktaShapedIssuer()
    try:
        event = _event("websocket_authorizer_connect.json")
        event["queryStringParameters"] = {"token": issuer.authority.issue("alice").token}
        function = shipped.functions["websocket_authorizer"]
        assert "JWKS_URL" not in function.environment

        # When Lambda runs the authorizer once
        invocation = sandbox.invoke(
            function, event, overrides={"JWT_ISSUER": issuer.url, "JWT_AUDIENCE": AUDIENCE}
        )
    finally:
        issuer.stop()

    # Then it verified the token with the layer's PyJWT and cryptography, and allowed the connection
    _assert_ran_from_the_bundle(shipped, sandbox, "websocket_authorizer", invocation)
    assert invocation.result["principalId"] == "alice"
    (statement,) = invocation.result["policyDocument"]["Statement"]
    assert statement["Effect"] == "Allow"
    roots = tuple(str(path) for path in function.layers)
    assert str(invocation.origins["jwt"]).startswith(roots)
    assert str(invocation.origins["cryptography"]).startswith(roots)


def test_given_a_function_without_its_dependency_layer_when_lambda_runs_it_then_it_fails_to_import(
    shipped: Shipped, sandbox: Sandbox
) -> None:
    # Given the API function with its domain layer only (the control: the layout is strict,
    # nothing from this machine's environment fills the gap)
    function = shipped.functions["api"]
    domain, _dependencies = _domain_and_dependencies(function.layers)

    # When Lambda runs it
    invocation = sandbox.invoke(function, _event("api_get_health.json"), layers=(domain,))

    # Then its init fails on the missing third-party package
    assert invocation.error is not None
    assert invocation.error.startswith("ModuleNotFoundError"), invocation.error
    assert invocation.result is None
