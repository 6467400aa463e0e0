"""What each function loads at init: only the generate function loads the model SDK
(it costs ~0.3 s and ~50 MB at cold start), and none starts without its resources."""

from __future__ import annotations

import pytest

from agentfiles import topology
from tests.support.imports import lambda_environment, run_probe


def _loads_openai(function: str) -> bool:
    probe = run_probe(f"import sys, functions.{function}.handler; print('openai' in sys.modules)")
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip() == "True"


@pytest.mark.parametrize("function", ["api", "upload_trigger", "maintenance", "vacuum"])
def test_functions_that_call_no_model_never_import_the_sdk(function):
    assert _loads_openai(function) is False


def test_the_generate_function_does():
    assert _loads_openai("generate") is True


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
