"""The test suite before and after a change: the same tests, timed on the same machine.

    .venv/bin/python -m bench._suite_time [--before REV] [--runs N]

Checks `REV` out in a temporary worktree (default: `4bdfcc0`, main just before the
local stack moved moto and the functions into processes of their own), then runs the
suite as `make test` runs it (`pytest -n 2 --dist loadgroup`) there and here, in turn,
`N` times each (default 1: a run takes about six minutes), with a JUnit report. The
tests both sides have, by id, are compared: their summed durations, per folder. Tests
added since have no counterpart and are left out; the wall time of each whole run is
printed beside, for what it is worth (the suites differ).

The old side runs on this checkout's virtual environment, with its own `layers/`
first on the path. Not part of `make bench`: it takes minutes, not seconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEFORE = "4bdfcc0"
PYTEST = ["-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p", "no:cacheprovider"]

Durations = dict[tuple[str, str], float]


def _run(checkout: Path, report: Path) -> tuple[Durations, float, str]:
    """One run of the suite in `checkout`: per-test durations, wall seconds, summary line."""
    environment = {**os.environ, "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    if checkout != ROOT:
        environment["PYTHONPATH"] = str(checkout / "layers")
    started = time.perf_counter()
    finished = subprocess.run(
        [sys.executable, *PYTEST, f"--junitxml={report}"],
        cwd=checkout,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    summary = (finished.stdout.strip().splitlines() or ["(no output)"])[-1]
    durations = {
        (case.get("classname") or "", case.get("name") or ""): float(case.get("time") or 0)
        for case in ElementTree.parse(report).getroot().iter("testcase")
    }
    return durations, wall, summary


def _folder(test: tuple[str, str]) -> str:
    parts = test[0].split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def compare(before: list[Durations], after: list[Durations]) -> list[str]:
    """Lines comparing the tests every run of both sides has: median summed seconds."""
    common = set.intersection(*(set(run) for run in before + after))
    folders = sorted({_folder(test) for test in common})
    lines = [f"{len(common)} tests on both sides (before: {len(before[0])}, after: {len(after[0])})"]
    rows = [("all", common), *((name, {t for t in common if _folder(t) == name}) for name in folders)]
    for name, tests in rows:
        old = statistics.median(sum(run[t] for t in tests) for run in before)
        new = statistics.median(sum(run[t] for t in tests) for run in after)
        lines.append(
            f"  {name:<12} {len(tests):4d} tests: {old:7.1f} s before, {new:7.1f} s after ({new / old:.2f}x)"
        )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=BEFORE)
    parser.add_argument("--runs", type=int, default=1)
    options = parser.parse_args(argv)
    runs: dict[str, list[Durations]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="agentfiles-suite-") as scratch:
        old = Path(scratch) / "before"
        subprocess.run(
            ["git", "worktree", "add", "--detach", "--quiet", str(old), options.before], cwd=ROOT, check=True
        )
        try:
            (old / ".venv").symlink_to(ROOT / ".venv")  # checkov's environment, too
            for n in range(1, options.runs + 1):
                for side, checkout in (("before", old), ("after", ROOT)):
                    durations, wall, summary = _run(checkout, Path(scratch) / f"{side}-{n}.xml")
                    runs[side].append(durations)
                    print(f"   {side} run {n}: {summary} ({wall:.0f} s wall)", flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, check=False)
    for line in compare(runs["before"], runs["after"]):
        print(f"   {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
