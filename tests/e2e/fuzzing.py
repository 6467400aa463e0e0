"""The API fuzzed from its own OpenAPI document: schemathesis against a local stack.

`fuzz(stack, budget, workdir)` runs schemathesis' four phases (examples, coverage,
fuzzing, stateful) with the checks in `schemathesis.toml` beside this file, as a user
of the stack: a bearer token minted by `POST /dev/token`, requests over HTTP to
`/openapi.json`'s operations. It returns what schemathesis' JSON report says.

`make fuzz` runs it for longer, on a stack of its own:

    .venv/bin/python -m tests.e2e.fuzzing [--max-time 600] [--max-examples 100] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.local_stack import LocalStackProcess

CONFIG = Path(__file__).with_name("schemathesis.toml")
FUZZ_SUB = "schemathesis"


@dataclass(frozen=True)
class Budget:
    seed: int
    max_examples: int  # per operation and phase, in each pass
    # The whole run: fuzzing and stateful passes repeat until it is spent. None: every phase
    # runs its examples once and the run ends, however long a loaded machine takes.
    max_time_s: int | None


# Inside `make test`: a fixed seed and a fixed number of examples, no clock. A clock would
# let a loaded machine spend it all before the stateful phase, which then never runs.
CI_BUDGET = Budget(seed=13, max_examples=15, max_time_s=None)
# `make fuzz`: ten minutes, with a seed that changes from run to run unless one is given.
LONG_BUDGET = Budget(seed=0, max_examples=100, max_time_s=600)


@dataclass(frozen=True)
class FuzzReport:
    exit_code: int
    report: dict[str, Any]
    output: str

    @property
    def operations(self) -> int:
        return int(self.report["operations"]["tested"])

    @property
    def test_cases(self) -> int:
        return int(self.report["test_cases"]["generated"])

    @property
    def failures(self) -> list[dict[str, Any]]:
        return list(self.report["failures"]) + list(self.report["errors"])

    @property
    def phases(self) -> dict[str, str]:
        return {name: phase["status"] for name, phase in self.report["phases"].items()}

    def summary(self) -> str:
        failures = sum(int(failure.get("count", 1)) for failure in self.failures)
        return (
            f"schemathesis: {self.operations} operations, {self.test_cases} test cases, "
            f"{failures} failures, phases {self.phases}, seed {self.report['seed']}, "
            f"{self.report['running_time']:.0f} s"
        )


def fuzz(stack: LocalStackProcess, budget: Budget, workdir: Path, *, echo: bool = False) -> FuzzReport:
    """Run schemathesis against `stack` within `budget`; its files stay in `workdir`."""
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(CONFIG),
        "run",
        f"{stack.base_url}/openapi.json",
        "--max-examples",
        str(budget.max_examples),
        *(["--max-time", str(budget.max_time_s)] if budget.max_time_s else []),
        "--report",
        "json",
        "--report-dir",
        str(workdir),
        "--no-color",
    ]
    if budget.seed:
        command += ["--seed", str(budget.seed)]
    environment = {**os.environ, "AGENTFILES_FUZZ_TOKEN": stack.token(FUZZ_SUB), "NO_COLOR": "1"}
    completed = subprocess.run(
        command,
        cwd=workdir,
        env=environment,
        stdout=None if echo else subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=(budget.max_time_s or 360) + 240,
    )
    reports = list(workdir.glob("*.json"))
    if len(reports) != 1:
        raise RuntimeError(f"schemathesis wrote no report (exit {completed.returncode}):\n{completed.stdout}")
    return FuzzReport(completed.returncode, json.loads(reports[0].read_text()), completed.stdout or "")


def main() -> int:
    parser = argparse.ArgumentParser(description="Fuzz the API of a fresh local stack with schemathesis.")
    parser.add_argument("--max-time", type=int, default=LONG_BUDGET.max_time_s, help="seconds for the run")
    parser.add_argument("--max-examples", type=int, default=LONG_BUDGET.max_examples)
    parser.add_argument("--seed", type=int, default=LONG_BUDGET.seed, help="0 picks one at random")
    arguments = parser.parse_args()
    budget = Budget(seed=arguments.seed, max_examples=arguments.max_examples, max_time_s=arguments.max_time)
    stack = LocalStackProcess.start()
    try:
        with tempfile.TemporaryDirectory(prefix="agentfiles-fuzz-") as workdir:
            result = fuzz(stack, budget, Path(workdir), echo=True)
    finally:
        stack.stop()
    print(result.summary())
    return 0 if result.exit_code == 0 and not result.failures else 1


if __name__ == "__main__":
    sys.exit(main())
