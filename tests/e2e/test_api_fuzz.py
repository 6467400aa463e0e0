"""The API against its own schema: schemathesis on a local stack of its own finds no
server error, no undocumented status, content type or body, no route that ignores a
missing token, and nothing still readable after it was deleted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.e2e.fuzzing import CI_BUDGET, fuzz
from tests.e2e.local_stack import LocalStackProcess

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("fuzz")]


@pytest.fixture(scope="module")
def fuzzed_stack() -> Iterator[LocalStackProcess]:
    """A stack of its own: the fuzzing fills it with threads, messages and files that
    the other end-to-end tests should not meet."""
    stack = LocalStackProcess.start()
    yield stack
    stack.stop()


def test_given_the_openapi_document_when_schemathesis_runs_every_phase_then_no_check_fails(
    fuzzed_stack: LocalStackProcess, tmp_path: Path
) -> None:
    # Given the local stack and its /openapi.json
    # When schemathesis runs examples, coverage, fuzzing and stateful, 15 examples each
    result = fuzz(fuzzed_stack, CI_BUDGET, tmp_path)
    print(result.summary())

    # Then it tested every operation the document declares, and every phase ran
    document = requests.get(f"{fuzzed_stack.base_url}/openapi.json", timeout=10).json()
    declared = sum(
        method in HTTP_METHODS for operations in document["paths"].values() for method in operations
    )
    assert declared >= 14
    assert result.operations == declared, result.output
    assert result.phases == {
        "examples": "success",
        "coverage": "success",
        "fuzzing": "success",
        "stateful": "success",
    }, result.output
    # And no check failed, and nothing errored
    assert result.failures == [], result.output
    assert result.exit_code == 0, result.output
