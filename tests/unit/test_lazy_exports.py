"""Powertools packages that only re-export are registered lazily (`agentfiles.lazy_exports`):
every name they offer is the object their own `__init__` would have bound, and a package
whose `__init__` does anything else is imported as usual."""

from __future__ import annotations

import json
import textwrap

import pytest

from agentfiles.lazy_exports import POWERTOOLS_REEXPORTS, Export, read_reexports
from harness.imports import lambda_environment, run_probe

# Runs the package's real __init__ in a scratch namespace named after the package, after
# the lazy one resolved every name, and reports any name that differs.
COMPARE = """
import importlib, importlib.util, json, sys
from pathlib import Path
from agentfiles.lazy_exports import defer_exports
package = {package!r}
deferred = defer_exports(package)
lazy = importlib.import_module(package)
names = list(lazy.__all__)
resolved = {{name: getattr(lazy, name) for name in names}}
spec = importlib.util.find_spec(package)
eager = {{"__name__": package, "__package__": package, "__path__": spec.submodule_search_locations}}
exec(compile(Path(spec.origin).read_text(), spec.origin, "exec"), eager)
bound = {{k for k in eager if not k.startswith("__")}}
print(json.dumps({{
    "deferred": deferred,
    "same_all": names == eager["__all__"],
    "differ": sorted(k for k in bound if getattr(lazy, k) is not eager[k]),
    "count": len(bound),
}}))
"""


@pytest.mark.parametrize("package", POWERTOOLS_REEXPORTS)
def test_every_name_a_lazy_package_offers_is_the_one_its_init_binds(package):
    # Given the package registered lazily in a fresh interpreter
    probe = run_probe(COMPARE.format(package=package))
    assert probe.returncode == 0, probe.stderr
    report = json.loads(probe.stdout)
    # Then it was deferred (its __init__ only re-exports), its __all__ is the real one,
    # and every name the real __init__ binds (submodules too) is the very same object
    assert report["deferred"] is True
    assert report["same_all"] is True
    assert report["count"] > 10
    assert report["differ"] == []


def test_a_lazy_package_loads_only_the_submodule_of_the_name_asked_for():
    # Given the event handler package registered lazily
    probe = run_probe(
        "import sys; from agentfiles.lazy_exports import defer_exports\n"
        "defer_exports('aws_lambda_powertools.event_handler')\n"
        "from aws_lambda_powertools.event_handler import APIGatewayHttpResolver\n"
        "before = sorted(m for m in sys.modules\n"
        "    if '.event_handler.' in m and 'appsync' in m or m == 'asyncio')\n"
        "from aws_lambda_powertools.event_handler import AppSyncResolver\n"
        "print(before, AppSyncResolver.__module__, 'asyncio' in sys.modules)"
    )
    assert probe.returncode == 0, probe.stderr
    # When the HTTP resolver is imported, the AppSync resolver and asyncio are not;
    # and asking for the AppSync resolver still gives it (with what it needs)
    assert probe.stdout.split() == ["[]", "aws_lambda_powertools.event_handler.appsync", "True"]


def test_an_init_that_does_more_than_re_export_is_imported_as_usual(tmp_path):
    # Given a package whose __init__ runs code of its own
    package = tmp_path / "busy"
    package.mkdir()
    (package / "__init__.py").write_text("from .part import VALUE\nSTARTED = print('init ran')\n")
    (package / "part.py").write_text("VALUE = 1\n")
    environment = lambda_environment()
    environment["PYTHONPATH"] += f":{tmp_path}"
    # When it is offered for deferral, then refused, and imported with its __init__
    probe = run_probe(
        "from agentfiles.lazy_exports import defer_exports\n"
        "print(defer_exports('busy'))\nimport busy\nprint(busy.VALUE)",
        environment,
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split("\n")[:3] == ["False", "init ran", "1"]


def test_an_already_imported_package_is_left_alone():
    # Given the package imported normally, when offered for deferral, then it stays as it is
    probe = run_probe(
        "import aws_lambda_powertools.event_handler as eager\n"
        "from agentfiles.lazy_exports import defer_exports\n"
        "import sys\n"
        "print(defer_exports('aws_lambda_powertools.event_handler'),"
        " sys.modules['aws_lambda_powertools.event_handler'] is eager)"
    )
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == ["False", "True"]


def test_reading_an_init_maps_each_name_to_where_it_lives():
    # Given an __init__ with relative, absolute, aliased and submodule imports
    source = textwrap.dedent(
        '''
        """Docs."""
        from __future__ import annotations
        from .alpha import A, B as Bee
        from pkg.beta import C
        from . import gamma
        __all__ = ["A", "Bee", "C", "gamma"]
        '''
    )
    # When it is read
    exports, names, doc = read_reexports("pkg", source) or ({}, None, None)
    # Then every bound name says which module holds it, modules included
    assert exports == {
        "alpha": Export("pkg.alpha", None),
        "A": Export("pkg.alpha", "A"),
        "Bee": Export("pkg.alpha", "B"),
        "beta": Export("pkg.beta", None),
        "C": Export("pkg.beta", "C"),
        "gamma": Export("pkg.gamma", None),
    }
    assert names == ["A", "Bee", "C", "gamma"]
    assert doc == "Docs."


@pytest.mark.parametrize(
    "line",
    ["import os", "from .alpha import *", "X = compute()", "if True:\n    from .alpha import A"],
)
def test_an_init_with_anything_else_is_not_read(line):
    assert read_reexports("pkg", f"from .alpha import A\n{line}\n") is None
