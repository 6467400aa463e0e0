"""Packages whose `__init__` only re-exports names from their submodules, made lazy.

Importing any submodule runs its package's `__init__` first. Some of Powertools'
do nothing but re-export, and pay for every sibling on the way:
`aws_lambda_powertools.event_handler` imports every resolver (AppSync, Bedrock, VPC
Lattice, ... and with them `asyncio`) when the API needs one, and
`aws_lambda_powertools.utilities.data_classes` imports some thirty event classes when a
function reads one. `defer_exports(package)` registers such a package without running
its `__init__`: a name it re-exports is imported from its own submodule the first time
someone asks for it, so a function pays for what it uses.

This is the one place that bends the import system, and it bends it only as far as it
can check. The package's `__init__` is read (not run) first; if it holds anything but a
docstring, `from ... import ...` lines and `__all__`, the package is imported normally.
The names it offers are the ones its `__init__` binds, from the submodules it names, so
an upgrade that moves or adds a name moves the lazy one with it; the tests compare every
name with the eagerly imported package.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

# Powertools packages that only re-export; every function registers them before its
# handler imports anything from them (`functions/__init__.py`).
POWERTOOLS_REEXPORTS = (
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.data_classes",
)


@dataclass(frozen=True)
class Export:
    """`name` of the package is `attribute` of `module` (the module itself when None)."""

    module: str
    attribute: str | None


def defer_exports(package: str) -> bool:
    """Register `package` with its re-exports resolved on first use. False when it was
    already imported, or when its `__init__` does more than re-export (then nothing
    changes: it is imported as usual)."""
    if package in sys.modules:
        return False
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None or spec.submodule_search_locations is None:
        return False
    reexports = read_reexports(package, Path(spec.origin).read_text(encoding="utf-8"))
    if reexports is None:
        return False
    exports, names, doc = reexports
    module = importlib.util.module_from_spec(spec)
    module.__doc__ = doc
    if names is not None:
        module.__all__ = names

    def __getattr__(name: str) -> object:
        export = exports.get(name)
        if export is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        source = importlib.import_module(export.module)
        value = source if export.attribute is None else getattr(source, export.attribute)
        setattr(module, name, value)
        return value

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules[package] = module
    parent, _, child = package.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return True


Reexports = tuple[dict[str, Export], list[str] | None, str | None]


def read_reexports(package: str, source: str) -> Reexports | None:
    """What an `__init__` binds, by name, without running it: None unless it only
    re-exports. Each submodule it imports from is itself a name of the package, as after
    a normal import."""
    tree = ast.parse(source)
    exports: dict[str, Export] = {}
    names: list[str] | None = None
    doc = ast.get_docstring(tree, clean=False)
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, ast.ImportFrom) and node.module != "__future__":
            origin = _absolute(package, node)
            if origin is None or any(alias.name == "*" for alias in node.names):
                return None
            child = origin.removeprefix(f"{package}.")
            if child != origin and "." not in child:
                exports.setdefault(child, Export(origin, None))
            for alias in node.names:
                bound = alias.asname or alias.name
                if origin == package:  # from . import submodule
                    exports[bound] = Export(f"{package}.{alias.name}", None)
                else:
                    exports[bound] = Export(origin, alias.name)
            continue
        if isinstance(node, ast.ImportFrom):
            continue  # from __future__ import annotations
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["__all__"]
            and isinstance(node.value, ast.List | ast.Tuple)
        ):
            names = [ast.literal_eval(element) for element in node.value.elts]
            continue
        return None
    return exports, names, doc


def _absolute(package: str, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    base = package.split(".")
    if node.level > 1:
        base = base[: -(node.level - 1)]
    if not base:
        return None
    return ".".join([*base, node.module]) if node.module else ".".join(base)


def defer_powertools_reexports() -> None:
    for package in POWERTOOLS_REEXPORTS:
        defer_exports(package)
