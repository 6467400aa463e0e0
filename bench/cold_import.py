"""Cold import of each function's handler, as a ratio of importing boto3 and creating the clients it uses.

Every figure comes from fresh interpreters (no module cache between runs, the bytecode
cache warm) started in the environment a deployment gives (`harness/imports.py`).
Each probe runs right after its own baseline probe, and its ratio is taken against that
one, so that a machine whose load drifts affects both alike; a ratio is the median over
the runs (`COLD_IMPORT_RUNS`, default 21). Times are the probe's CPU time: on a machine
shared with other work, wall time also counts the neighbours (it is printed alongside).

- Each function of `agentfiles.topology.FUNCTIONS` is probed, the WebSocket API's two
  included.
- `api + clients` adds the three clients the API uses; `api + clients + request` adds a
  first request that is refused by validation (a 422), so that the route module, the
  validation and the models a request builds on first use are counted, without AWS.
- `generate` is bounded by the model SDK: `openai` is imported first and timed apart,
  and `generate - openai` is what the function adds to it.

Then the read-only case, as on Lambda, where `/var/task` and `/opt` cannot be written:
each function laid out as it ships (its package, the domain package, its own dependency
set copied from this environment; boto3 and its dependencies from this environment, with
their bytecode, as the runtime brings its own), imported with PYTHONDONTWRITEBYTECODE=1
twice: from source only (no `__pycache__` anywhere in the layout: every module compiled
at every cold start, what shipped before bundling compiled bytecode) and with the
bytecode bundling ships (`compileall --invalidation-mode unchecked-hash`, by this
interpreter). The ratio is source-only over shipped, median of paired runs.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from agentfiles import topology
from harness.imports import ROOT, lambda_environment, run_probe

RUNS = int(os.environ.get("COLD_IMPORT_RUNS", "21"))

_TIMER = """
import os, sys, time
def now(): return time.process_time(), time.perf_counter()
def since(start): cpu, wall = now(); return cpu - start[0], wall - start[1]
"""

BASELINE = (
    _TIMER
    + """
start = now()
import boto3
session = boto3.session.Session(region_name="us-east-1")
for name in ("dynamodb", "s3", "sqs"):
    session.client(name)
print(*since(start))
"""
)

HANDLER = (
    _TIMER
    + """
start = now()
import functions.{name}.handler
print(*since(start))
"""
)

GENERATE = (
    _TIMER
    + """
start = now()
import openai
sdk = since(start)
start = now()
import functions.generate.handler
print(*sdk, *since(start))
"""
)

WITH_CLIENTS = (
    _TIMER
    + """
start = now()
import functions.api.handler
from agentfiles.data import clients
clients.dynamodb(); clients.s3(); clients.sqs()
{request}
print(*since(start))
"""
)

# A first request that fails validation: it loads its route module and builds what
# validating a message body needs, and calls no AWS service.
FIRST_REQUEST = """
from agentfiles_local.events import http_api_event
class Context:
    function_name = "api"; memory_limit_in_mb = 512; aws_request_id = "cold"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:api"
    def get_remaining_time_in_millis(self): return 29000
event = http_api_event("POST", "/threads/01J0000000000000000000000Z/messages",
    headers={"content-type": "application/json"}, body='{"content": []}', claims={"sub": "bench"})
reply = functions.api.handler.lambda_handler(event, Context())
assert reply["statusCode"] == 422, reply
"""

# Every function the stack deploys; `generate` is timed in two parts.
PROBES = {
    **{name: HANDLER.format(name=name) for name in topology.FUNCTIONS},
    "generate": GENERATE,
    "api + clients": WITH_CLIENTS.format(request=""),
    "api + clients + request": WITH_CLIENTS.format(request=FIRST_REQUEST),
}


REPORTED = [*PROBES, "openai", "generate - openai"]


@dataclass
class Samples:
    """CPU and wall times of one probe, and of the baseline run just before each."""

    cpu: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    base_cpu: list[float] = field(default_factory=list)
    base_wall: list[float] = field(default_factory=list)

    def add(self, cpu: float, wall: float, base: list[float]) -> None:
        self.cpu.append(cpu)
        self.wall.append(wall)
        self.base_cpu.append(base[0])
        self.base_wall.append(base[1])

    @staticmethod
    def _ratio(values: list[float], bases: list[float]) -> float:
        return statistics.median(value / base for value, base in zip(values, bases, strict=True))

    def line(self, name: str) -> str:
        return (
            f"   {name:24s} {statistics.median(self.cpu) * 1000:5.0f} ms"
            f"  ratio {self._ratio(self.cpu, self.base_cpu):.2f}"
            f"  (wall {self._ratio(self.wall, self.base_wall):.2f})"
        )


def _time(code: str) -> list[float]:
    probe = run_probe(code)
    if probe.returncode != 0:
        raise RuntimeError(probe.stderr)
    return [float(value) for value in probe.stdout.split()]


def run() -> None:
    # Warm the bytecode cache once, as a deployed package has its .pyc files.
    for code in (BASELINE, *PROBES.values()):
        _time(code)
    samples = {name: Samples() for name in REPORTED}
    baselines: list[float] = []
    for _ in range(RUNS):
        for name, code in PROBES.items():
            base = _time(BASELINE)
            baselines.append(base[0])
            values = _time(code)
            if name == "generate":
                sdk_cpu, sdk_wall, rest_cpu, rest_wall = values
                samples["openai"].add(sdk_cpu, sdk_wall, base)
                samples["generate - openai"].add(rest_cpu, rest_wall, base)
                values = [sdk_cpu + rest_cpu, sdk_wall + rest_wall]
            samples[name].add(*values, base)
    base_ms = statistics.median(baselines) * 1000
    print(
        f"   baseline: import boto3 + dynamodb, s3, sqs clients = {base_ms:.0f} ms CPU"
        f" (median of {len(baselines)}); each ratio is the median of {RUNS} paired runs"
    )
    for name in REPORTED:
        print(samples[name].line(name))
    run_read_only()


# The read-only case ----------------------------------------------------------------

REQUIREMENTS = ROOT / "layers" / "requirements"
# What the Lambda runtime brings beside the interpreter (with its own bytecode).
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
READ_ONLY = (
    _TIMER
    + """
start = now()
import functions.{name}.handler
print(*since(start))
"""
)


def _distributions(requirements: Path) -> list[str]:
    names: list[str] = []
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            names += _distributions(requirements.parent / line.removeprefix("-r ").strip())
        elif line:
            names.append(re.split(r"[=<>~!]", line)[0])
    return names


def _copy_distribution(name: str, into: Path) -> bool:
    """Copy one installed distribution's files (no bytecode) into `into`."""
    try:
        distribution = metadata.distribution(name)
    except metadata.PackageNotFoundError:
        return False
    for file in distribution.files or []:
        if "__pycache__" in file.parts or file.suffix == ".pyc" or str(file).startswith(".."):
            continue
        source = Path(str(distribution.locate_file(file)))
        if source.is_file():
            target = into / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return True


def _layout(root: Path, name: str) -> tuple[list[Path], list[str]]:
    """The function's code, the domain layer and its dependency set, as shipped, without
    bytecode; the packages of its set this environment lacks are returned apart."""
    from infra.constants import requirements_for

    task = root / "task"
    shutil.copytree(
        ROOT / "functions" / name, task / "functions" / name, ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy2(ROOT / "functions" / "__init__.py", task / "functions" / "__init__.py")
    domain = root / "domain"
    shutil.copytree(
        ROOT / "layers" / "agentfiles", domain / "agentfiles", ignore=shutil.ignore_patterns("__pycache__")
    )
    dependencies = root / "dependencies"
    dependencies.mkdir()
    missing = [
        dist
        for dist in _distributions(REQUIREMENTS / f"{requirements_for(name)}.txt")
        if not _copy_distribution(dist, dependencies)
    ]
    runtime = root / "runtime"
    runtime.mkdir()
    for package in RUNTIME_PACKAGES:
        module = __import__(package)
        origin = Path(module.__file__ or "")
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return [task, domain, dependencies, runtime], missing


def _read_only_time(code: str, paths: list[Path]) -> list[float]:
    environment = lambda_environment(
        PYTHONPATH=":".join(str(path) for path in paths), PYTHONDONTWRITEBYTECODE="1"
    )
    # -S: nothing of this environment's site-packages but what the layout names.
    probe = subprocess.run(
        [sys.executable, "-S", "-c", code], cwd=paths[0], capture_output=True, text=True, env=environment
    )
    if probe.returncode != 0:
        raise RuntimeError(probe.stderr)
    return [float(value) for value in probe.stdout.split()]


def run_read_only() -> None:
    print(
        "   read-only code (PYTHONDONTWRITEBYTECODE=1): source only vs shipped bytecode, "
        f"CPU ms, median of {RUNS} paired runs"
    )
    with tempfile.TemporaryDirectory(prefix="cold-import-") as scratch:
        for name in topology.FUNCTIONS:
            root = Path(scratch) / name
            source_only, missing = _layout(root / "source", name)
            shipped, _ = _layout(root / "shipped", name)
            for tree in shipped[:3]:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "compileall",
                        "-q",
                        "--invalidation-mode",
                        "unchecked-hash",
                        str(tree),
                    ],
                    check=True,
                    capture_output=True,
                )
            code = READ_ONLY.format(name=name)
            source_cpu: list[float] = []
            shipped_cpu: list[float] = []
            for _ in range(RUNS):
                source_cpu.append(_read_only_time(code, source_only)[0])
                shipped_cpu.append(_read_only_time(code, shipped)[0])
            ratio = statistics.median(a / b for a, b in zip(source_cpu, shipped_cpu, strict=True))
            note = f"  (not in this environment: {', '.join(missing)})" if missing else ""
            print(
                f"   {name:24s} source only {statistics.median(source_cpu) * 1000:5.0f} ms"
                f"  shipped .pyc {statistics.median(shipped_cpu) * 1000:5.0f} ms  ratio {ratio:.2f}{note}"
            )
