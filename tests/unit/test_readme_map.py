"""The README's map of the code, held to the tree: every folder, every shipped module and
every function is named where a newcomer looks for it, so the map cannot fall behind."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from agentfiles import topology

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "layers" / "agentfiles"


def _section(title: str) -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    start = readme.index(f"\n## {title}\n")
    end = readme.index("\n## ", start + 1)
    return readme[start:end]


def _named(text: str, name: str) -> bool:
    """`name` appears as code in `text`: `name`, `name.py`, `dir/name/`, or inside `{a,name}`."""
    return re.search(rf"`[^`\n]*(?<![\w.-]){re.escape(name)}(?:\.py)?(?![\w-])[^`\n]*`", text) is not None


def test_the_tree_at_a_glance_names_every_top_level_folder():
    # Given the repository's top-level folders that hold tracked files (not what a build made)
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    folders = sorted({path.split("/")[0] for path in tracked if "/" in path and not path.startswith(".")})
    # When the README's map is read
    section = _section("How the code is organised")
    # Then each folder has its row
    assert [name for name in folders if f"`{name}/" not in section] == []


def test_the_map_names_every_module_of_the_shipped_package():
    # Given every module and subpackage of the domain package that ships to Lambda
    modules = sorted(
        {p.stem for p in PACKAGE.rglob("*.py") if p.stem != "__init__"}
        | {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    )
    # When the README's map is read
    section = _section("How the code is organised")
    # Then each is named there
    assert [name for name in modules if not _named(section, name)] == []


def test_the_map_names_every_route_module_of_the_api():
    routes = sorted(
        p.stem for p in (ROOT / "functions" / "api" / "routes").glob("*.py") if p.stem != "__init__"
    )
    section = _section("How the code is organised")
    assert [name for name in routes if f"`routes/{name}.py`" not in section] == []


def test_the_diagram_shows_every_function_and_every_function_folder_is_deployed():
    # Given the functions the stack deploys and the folders that hold handlers
    deployed = set(topology.FUNCTIONS)
    folders = {p.name for p in (ROOT / "functions").iterdir() if (p / "handler.py").exists()}
    # When the flow diagram is read
    diagram = _section("How it fits together")
    # Then every deployed function is drawn, and no handler folder is left out of the stack
    assert sorted(name for name in deployed if not re.search(rf"λ {name}\b", diagram)) == []
    assert folders == deployed
