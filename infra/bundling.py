"""What each function and layer is made of, bundled on this machine without Docker: a
function's own package, the domain package copied into a layer, and each pinned
requirements set installed by pip for the Lambda platform (arm64 wheels only, so
nothing is compiled from C here).

Every tree ships with its bytecode. Lambda's `/var/task` and `/opt` are read-only, so
Python cannot cache what it compiles there: without `.pyc` files, each new execution
environment compiles every module it imports from source. The bytecode must be the
runtime's own CPython version (the `.pyc` of another version is ignored), so bundling
needs an interpreter of that version (`bytecode_interpreter`). The runtime is the version
this build can compile for, Python 3.13; where no 3.13 interpreter is found, bundling
says so loudly and ships source only. The `.pyc` files are `unchecked-hash` ones:
they never look at the source's modification time (which a zip does not keep exactly),
and their paths name where Lambda puts the files (`/var/task`, `/opt`), so tracebacks do.
"""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import subprocess
import sys
import warnings
from functools import cache
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constants import DOMAIN_PACKAGE_DIR, FUNCTIONS_DIR, REQUIREMENTS_DIR

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
# Every platform tag a wheel may carry to run on the runtime (Amazon Linux 2023, glibc
# 2.34). pip takes each tag literally and does not count manylinux_2_28 as covering
# manylinux2014 (2.17), so both are named: most wheels are manylinux2014, while current
# Pillow and pillow-heif (the media set) publish aarch64 wheels only as manylinux_2_28.
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
LAYER_PYTHON_DIR = "python"  # Lambda puts /opt/python on sys.path
FUNCTION_ROOT = "/var/task"  # a function's code asset, its working directory
LAYER_ROOT = "/opt"  # each layer's asset, unpacked over the others
# Bytecode caches differ from machine to machine; leaving them out keeps asset hashes stable.
_CACHES = ["__pycache__", "*.pyc"]
_IGNORED = shutil.ignore_patterns(*_CACHES)
# An interpreter of the runtime's version to compile with, when it is not found by itself.
BYTECODE_PYTHON_VARIABLE = "LAMBDA_BYTECODE_PYTHON"
# Context (tests only): build the dependency layers for this machine's platform instead of
# Lambda's, so that their binary wheels load here; everything else is as shipped.
HOST_PLATFORM_CONTEXT = "agentfiles:layersForHostPlatform"


class BytecodeWarning(UserWarning):
    """The bundle ships without bytecode: cold starts compile every module from source."""


def runtime_python_version() -> str:
    return RUNTIME.name.removeprefix("python")


def _version_of(executable: str) -> str | None:
    try:
        result = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _candidates(version: str) -> list[str]:
    found = [os.environ.get(BYTECODE_PYTHON_VARIABLE, ""), sys.executable]
    # pyenv and uv keep interpreters under the home directory; a pyenv shim on PATH
    # answers only for the version selected, so the install itself is asked.
    home = Path.home()
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or home / ".pyenv")
    found += sorted(str(path) for path in pyenv_root.glob(f"versions/{version}.*/bin/python{version}"))
    uv_root = Path(os.environ.get("UV_PYTHON_INSTALL_DIR") or home / ".local/share/uv/python")
    found += sorted(str(path) for path in uv_root.glob(f"cpython-{version}.*/bin/python{version}"))
    found += [shutil.which(f"python{version}") or ""]
    return [candidate for candidate in found if candidate]


@cache
def bytecode_interpreter(version: str | None = None) -> str | None:
    """An interpreter of the runtime's CPython version (`version`), or None."""
    version = version or runtime_python_version()
    return next((path for path in _candidates(version) if _version_of(path) == version), None)


def compile_bytecode(tree: Path, runtime_root: str) -> bool:
    """Compile every module under `tree` for the runtime, as if `tree` were `runtime_root`.

    False (with a BytecodeWarning) when no interpreter of the runtime's version is found.
    """
    interpreter = bytecode_interpreter()
    if interpreter is None:
        message = (
            f"no Python {runtime_python_version()} interpreter found (set {BYTECODE_PYTHON_VARIABLE}): "
            f"{tree.name} ships WITHOUT bytecode, and every cold start compiles it from source"
        )
        print(f"WARNING: {message}", file=sys.stderr)
        warnings.warn(message, BytecodeWarning, stacklevel=2)
        return False
    command = [
        interpreter,
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(tree),
        "-p",
        runtime_root,
        str(tree),
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bytecode could not be compiled under {tree}:\n{result.stdout}{result.stderr}")
    return True


def compile_command(target: str, runtime_root: str) -> list[str]:
    """The same compilation, as the runtime's bundling image (its own python) would run it."""
    return [
        "python",
        "-m",
        "compileall",
        "-q",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        target,
        "-p",
        runtime_root,
        target,
    ]


def host_pip_platforms() -> tuple[str, ...]:
    """The runtime's platform tags, for this machine's architecture instead of arm64."""
    return tuple(tag.replace("aarch64", platform.machine()) for tag in PIP_PLATFORMS)


@jsii.implements(ILocalBundling)
class CopyPackage:
    """Puts a pure-Python package at `python/<name>/` of the layer."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        shutil.copytree(self.source, Path(output_dir) / LAYER_PYTHON_DIR / self.source.name, ignore=_IGNORED)
        compile_bytecode(Path(output_dir), LAYER_ROOT)
        return True


@jsii.implements(ILocalBundling)
class PipInstall:
    """Installs a requirements file for the Lambda platform with this machine's pip.

    pip runs in the requirements folder and names the file relatively, as a bundling
    container would in /asset-input: the command is part of the asset hash, which must
    not depend on where the repository is checked out.
    """

    def __init__(self, requirements: Path, pip_platforms: tuple[str, ...] = PIP_PLATFORMS) -> None:
        self.requirements = requirements
        self.pip_platforms = pip_platforms

    def command(self, target: str) -> list[str]:
        return [
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            # Bytecode compiled here would be for this interpreter, not the runtime's.
            "--no-compile",
            # Each file pins its whole closure; a dependency it leaves out on purpose
            # (botocore, which the runtime brings) must not be pulled in to shadow it.
            "--no-deps",
            *(flag for platform in self.pip_platforms for flag in ("--platform", platform)),
            "--implementation",
            "cp",
            "--python-version",
            runtime_python_version(),
            "--only-binary=:all:",
            "--target",
            target,
            "--requirement",
            self.requirements.name,
        ]

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        command = self.command(str(Path(output_dir) / LAYER_PYTHON_DIR))
        result = subprocess.run(
            [sys.executable, "-m", *command],
            cwd=self.requirements.parent,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            # Failing here beats returning False: CDK would then try Docker, which
            # this build does not use.
            raise RuntimeError(f"pip could not build the layer from {self.requirements}:\n{result.stderr}")
        compile_bytecode(Path(output_dir), LAYER_ROOT)
        return True

    def container_command(self) -> list[str]:
        """The same install and compilation, as the runtime's bundling image would run them."""
        target = f"/asset-output/{LAYER_PYTHON_DIR}"
        return [
            "bash",
            "-c",
            f"{shlex.join(self.command(target))} && {shlex.join(compile_command(target, LAYER_ROOT))}",
        ]


@jsii.implements(ILocalBundling)
class CopyFunction:
    """Puts a function at `functions/<name>/` of its asset, so that it imports its own
    modules (`functions.api.routes`) by the same names on Lambda as in the repository."""

    def __init__(self, name: str) -> None:
        self.name = name

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        package = Path(output_dir) / FUNCTIONS_DIR.name
        shutil.copytree(FUNCTIONS_DIR / self.name, package / self.name, ignore=_IGNORED)
        shutil.copy2(FUNCTIONS_DIR / "__init__.py", package / "__init__.py")
        compile_bytecode(Path(output_dir), FUNCTION_ROOT)
        return True


def function_code(name: str) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR / name),
        exclude=_CACHES,
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            # Never run: local bundling always succeeds (see `domain_layer`).
            command=_copy_and_compile(f"/asset-output/{FUNCTIONS_DIR.name}/{name}", FUNCTION_ROOT),
            local=CopyFunction(name),
        ),
    )


def domain_layer(scope: Construct) -> lambda_.LayerVersion:
    return lambda_.LayerVersion(
        scope,
        "DomainLayer",
        description="The agentfiles domain package",
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        code=lambda_.Code.from_asset(
            str(DOMAIN_PACKAGE_DIR),
            exclude=_CACHES,
            bundling=BundlingOptions(
                image=RUNTIME.bundling_image,
                # Never run: local bundling always succeeds. It documents the copy and
                # keeps this asset's hash apart from the other layers'.
                command=_copy_and_compile(
                    f"/asset-output/{LAYER_PYTHON_DIR}/{DOMAIN_PACKAGE_DIR.name}", LAYER_ROOT
                ),
                local=CopyPackage(DOMAIN_PACKAGE_DIR),
            ),
        ),
    )


def _copy_and_compile(target: str, runtime_root: str) -> list[str]:
    copy = shlex.join(["mkdir", "-p", target]) + " && " + shlex.join(["cp", "-r", ".", target])
    return ["bash", "-c", f"{copy} && {shlex.join(compile_command('/asset-output', runtime_root))}"]


def dependencies_layer(scope: Construct, requirements_set: str) -> lambda_.LayerVersion:
    for_host = bool(scope.node.try_get_context(HOST_PLATFORM_CONTEXT))
    pip = PipInstall(
        REQUIREMENTS_DIR / f"{requirements_set}.txt", host_pip_platforms() if for_host else PIP_PLATFORMS
    )
    return lambda_.LayerVersion(
        scope,
        f"{requirements_set.capitalize()}DependenciesLayer",
        description=f"Third-party packages: layers/requirements/{requirements_set}.txt",
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        code=lambda_.Code.from_asset(
            str(REQUIREMENTS_DIR),
            bundling=BundlingOptions(
                image=RUNTIME.bundling_image,
                # The same install, as a container would run it; it also gives each
                # requirements set its own asset hash, though they share a folder.
                command=pip.container_command(),
                local=pip,
            ),
        ),
    )
