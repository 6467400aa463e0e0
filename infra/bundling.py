"""What each function and layer is made of, bundled on this machine without Docker: a
function's own package, the domain package copied into a layer, and each pinned
requirements set installed by pip for the Lambda platform (arm64 wheels only, so
nothing is compiled here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import jsii
from aws_cdk import BundlingOptions, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.constants import DOMAIN_PACKAGE_DIR, FUNCTIONS_DIR, REQUIREMENTS_DIR

RUNTIME = lambda_.Runtime.PYTHON_3_14
ARCHITECTURE = lambda_.Architecture.ARM_64
# Every platform tag a wheel may carry to run on the runtime (Amazon Linux 2023, glibc
# 2.34). pip takes each tag literally and does not count manylinux_2_28 as covering
# manylinux2014 (2.17), so both are named: most wheels are manylinux2014, while current
# Pillow and pillow-heif (the media set) publish aarch64 wheels only as manylinux_2_28.
PIP_PLATFORMS = ("manylinux2014_aarch64", "manylinux_2_28_aarch64")
LAYER_PYTHON_DIR = "python"  # Lambda puts /opt/python on sys.path
# Bytecode caches differ from machine to machine; leaving them out keeps asset hashes stable.
_CACHES = ["__pycache__", "*.pyc"]
_IGNORED = shutil.ignore_patterns(*_CACHES)


def runtime_python_version() -> str:
    return RUNTIME.name.removeprefix("python")


@jsii.implements(ILocalBundling)
class CopyPackage:
    """Puts a pure-Python package at `python/<name>/` of the layer."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def try_bundle(self, output_dir: str, options: BundlingOptions) -> bool:
        shutil.copytree(self.source, Path(output_dir) / LAYER_PYTHON_DIR / self.source.name, ignore=_IGNORED)
        return True


@jsii.implements(ILocalBundling)
class PipInstall:
    """Installs a requirements file for the Lambda platform with this machine's pip.

    pip runs in the requirements folder and names the file relatively, as a bundling
    container would in /asset-input: the command is part of the asset hash, which must
    not depend on where the repository is checked out.
    """

    def __init__(self, requirements: Path) -> None:
        self.requirements = requirements

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
            *(flag for platform in PIP_PLATFORMS for flag in ("--platform", platform)),
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
        return True


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
        return True


def function_code(name: str) -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR / name),
        exclude=_CACHES,
        bundling=BundlingOptions(
            image=RUNTIME.bundling_image,
            # Never run: local bundling always succeeds (see `domain_layer`).
            command=["cp", "-r", ".", f"/asset-output/{FUNCTIONS_DIR.name}/{name}"],
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
                command=["cp", "-r", ".", f"/asset-output/{LAYER_PYTHON_DIR}/{DOMAIN_PACKAGE_DIR.name}"],
                local=CopyPackage(DOMAIN_PACKAGE_DIR),
            ),
        ),
    )


def dependencies_layer(scope: Construct, requirements_set: str) -> lambda_.LayerVersion:
    pip = PipInstall(REQUIREMENTS_DIR / f"{requirements_set}.txt")
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
                command=pip.command(f"/asset-output/{LAYER_PYTHON_DIR}"),
                local=pip,
            ),
        ),
    )
