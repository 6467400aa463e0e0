"""Run every benchmark of the product (each module in this folder has a `run()`), or
those named; the capacity model's two reports are named `capacity.cost_model` and
`capacity.scale_model` and run only when named (or by `make capacity-doc`)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

CAPACITY = ["capacity.cost_model", "capacity.scale_model"]


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    product = [
        m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_") and not m.ispkg
    ]
    chosen = argv or product
    unknown = sorted(set(chosen) - set(product) - set(CAPACITY))
    if unknown:
        have = ", ".join([*product, *CAPACITY])
        print(f"unknown benchmark(s): {', '.join(unknown)}; have: {have}", file=sys.stderr)
        return 2
    for name in chosen:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        started = time.perf_counter()
        module.run()
        print(f"   ({time.perf_counter() - started:.1f} s)\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
