"""Cold import of each function's handler, as a ratio of importing boto3 and creating the clients it uses.

Each figure is the median of fresh interpreters (no module cache between runs, the
bytecode cache warm as on Lambda); baseline and handler runs alternate so that the
machine's load affects both alike.
"""

from __future__ import annotations

import statistics

from tests.support.imports import run_probe

RUNS = 7
MEASURED = ("api", "upload_trigger", "generate")

BASELINE = """
import time; t = time.perf_counter()
import boto3
session = boto3.session.Session(region_name="us-east-1")
for name in ("dynamodb", "s3", "sqs"):
    session.client(name)
print(time.perf_counter() - t)
"""

HANDLER = """
import os, sys, time
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
t = time.perf_counter()
import functions.{name}.handler
elapsed = time.perf_counter() - t
print(elapsed, "openai" in sys.modules)
"""

FIRST_USE = """
import os, time
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
t = time.perf_counter()
import functions.{name}.handler
from agentfiles.data import clients
clients.dynamodb(); clients.s3(); clients.sqs()
print(time.perf_counter() - t)
"""


def _time(code: str) -> list[str]:
    probe = run_probe(code)
    if probe.returncode != 0:
        raise RuntimeError(probe.stderr)
    return probe.stdout.split()


def run() -> None:
    # Warm the bytecode cache once, as a deployed package has its .pyc files.
    for name in MEASURED:
        _time(HANDLER.format(name=name))
    baseline: list[float] = []
    results: dict[str, list[float]] = {}
    with_clients: list[float] = []
    openai_loaded: dict[str, bool] = {}
    for _ in range(RUNS):
        baseline.append(float(_time(BASELINE)[0]))
        for name in MEASURED:
            elapsed, loaded = _time(HANDLER.format(name=name))
            results.setdefault(name, []).append(float(elapsed))
            openai_loaded[name] = loaded == "True"
        with_clients.append(float(_time(FIRST_USE.format(name="api"))[0]))
    base = statistics.median(baseline)
    print(f"   baseline: import boto3 + dynamodb, s3, sqs clients = {base * 1000:.0f} ms (median of {RUNS})")
    for name, values in results.items():
        value = statistics.median(values)
        print(
            f"   {name:15s} handler import = {value * 1000:4.0f} ms  ratio {value / base:.2f}"
            f"  (openai imported: {openai_loaded[name]})"
        )
    api_full = statistics.median(with_clients)
    print(
        f"   api handler import + its three clients = {api_full * 1000:.0f} ms  ratio {api_full / base:.2f}"
    )
