"""Fresh interpreters that import a function as Lambda's init does: nothing cached
in memory, the environment a deployment gives. The import-boundary tests and the
cold-import benchmark both run their probes here."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from agentfiles import topology
from agentfiles.settings import DEPLOYMENT_VARIABLES

ROOT = Path(__file__).resolve().parents[1]


def lambda_environment(**extra: str) -> dict[str, str]:
    """What every function finds in its environment on Lambda (placeholder resources:
    importing names them, it does not call them)."""
    return {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{ROOT}:{ROOT / 'layers'}",
        "AWS_DEFAULT_REGION": "us-east-1",
        **topology.FUNCTION_ENVIRONMENT,
        **{name: f"probe-{name.lower()}" for name in DEPLOYMENT_VARIABLES},
        **extra,
    }


def run_probe(code: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `code` in a fresh interpreter at the repository root."""
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=lambda_environment() if environment is None else environment,
    )
