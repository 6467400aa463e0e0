"""Only the generate function loads the model SDK (it costs ~0.3 s and ~50 MB at cold start)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _loads_openai(function: str) -> bool:
    code = f"import sys, functions.{function}.handler; print('openai' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={
            "PATH": "/usr/bin:/bin",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONPATH": f"{ROOT}:{ROOT / 'layers'}",
        },
    )
    return out.stdout.strip() == "True"


@pytest.mark.parametrize("function", ["api", "upload_trigger", "maintenance", "vacuum"])
def test_functions_that_call_no_model_never_import_the_sdk(function):
    assert _loads_openai(function) is False


def test_the_generate_function_does():
    assert _loads_openai("generate") is True
