"""The TypeScript client (`clients/typescript/`): its own tests under node's test runner
against a local stack, and the two things that must never drift: the generated types
against the API's served OpenAPI document, and the committed ES module (`dist/`, which
the web page imports) against its sources."""

from __future__ import annotations

import fcntl
import filecmp
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.e2e.local_stack import REPO_ROOT, LocalStackProcess

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

CLIENT = REPO_ROOT / "clients" / "typescript"
NODE_MODULES = CLIENT / "node_modules"
# npm ci runs again only when the lock file changed since the last install.
STAMP = NODE_MODULES / ".agentfiles-lock-sha256"


def _npm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["npm", *args, "--no-audit", "--no-fund"], cwd=CLIENT, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def installed() -> Path:
    """`npm ci` for the client's two dev dependencies (typescript, openapi-typescript)."""
    assert shutil.which("node") and shutil.which("npm"), "Node.js is needed for the TypeScript client's tests"
    lock = hashlib.sha256((CLIENT / "package-lock.json").read_bytes()).hexdigest()
    # One install at a time, whichever worker gets here first: a second `npm ci` would
    # empty node_modules under the first.
    with (CLIENT / ".npm-ci.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (STAMP.is_file() and STAMP.read_text() == lock):
            result = _npm("ci")
            assert result.returncode == 0, result.stdout + result.stderr
            STAMP.write_text(lock)
    return NODE_MODULES / ".bin"


def test_given_the_served_openapi_document_when_types_are_generated_then_they_match_the_committed_ones(
    installed: Path, local_stack: LocalStackProcess, tmp_path: Path
):
    # Given the document the stack serves
    served = requests.get(f"{local_stack.base_url}/openapi.json", timeout=30).json()
    # Then it is the document the client's types were generated from
    committed = json.loads((CLIENT / "openapi.json").read_text())
    assert served == committed, "the API changed: run `npm run types` in clients/typescript (see its README)"
    # And generating the types again gives the committed file, byte for byte
    (tmp_path / "openapi.json").write_text(json.dumps(served, indent=2) + "\n")
    result = subprocess.run(
        [
            str(installed / "openapi-typescript"),
            str(tmp_path / "openapi.json"),
            "-o",
            str(tmp_path / "schema.ts"),
        ],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / "schema.ts").read_text() == (CLIENT / "src" / "schema.ts").read_text()


def test_given_the_sources_when_compiled_again_then_the_committed_dist_is_the_same(
    installed: Path, tmp_path: Path
):
    # When the sources are compiled into a fresh folder
    out = tmp_path / "dist"
    result = subprocess.run(
        [str(installed / "tsc"), "-p", "tsconfig.json", "--outDir", str(out)],
        cwd=CLIENT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Then every file equals the committed one, and there is no other
    compared = filecmp.dircmp(out, CLIENT / "dist")
    stale = compared.diff_files + compared.left_only + compared.right_only
    assert not stale, f"dist/ is stale ({stale}): run `npm run build` in clients/typescript"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (CLIENT / "dist").iterdir())


def test_given_a_local_stack_when_the_clients_node_tests_run_then_they_all_pass(
    installed: Path, local_stack: LocalStackProcess
):
    # Node 20 has a WebSocket only behind a flag; later versions ignore it.
    flags = ["--experimental-websocket"] if _node_major() < 22 else []
    tests = sorted(str(path.relative_to(CLIENT)) for path in (CLIENT / "test").glob("*.test.mjs"))
    result = subprocess.run(
        ["node", *flags, "--test", "--test-reporter=spec", *tests],
        cwd=CLIENT,
        env={**os.environ, "AGENTFILES_URL": local_stack.base_url},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]


def _node_major() -> int:
    version = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    return int(version.strip().lstrip("v").split(".")[0])
