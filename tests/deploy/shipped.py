"""What `cdk deploy` ships, built for real and laid out as Lambda lays it out.

`build` synthesizes the stack with bundling on (`infra/bundling.py`: pip, copies and
bytecode compilation, no Docker) into a temporary cloud assembly, and reads back, for
each function, its code asset, its layers' `python/` folders, its handler and its
environment. `Sandbox.invoke` runs one handler once in a fresh interpreter of the
runtime's version, as Lambda's init and first invocation do:

- the code asset is the working directory and first on `sys.path` (`/var/task`);
- then only the function's own layers (`/opt/python`), in their order;
- then the runtime's own packages (`/var/runtime`): boto3 and its dependencies, taken
  from this machine's environment, which stands in for the runtime's;
- nothing else (`-S`: not even the interpreter's own site-packages), and nothing written
  (`-B`, as `/var/task` and `/opt` are read-only);
- the template's environment, each Ref replaced by a placeholder or by the resource
  the test made for it on a local moto server, and what Lambda adds (region, function
  name, log format and level).

The dependency layers' binary wheels (pydantic-core, cryptography, jiter...) are for
Lambda's aarch64; for this run they are rebuilt for this machine's platform
(`HOST_PLATFORM_CONTEXT`: the same pins, the same pip command with
`--platform manylinux2014_<this machine>`), so that they load here.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from infra.bundling import HOST_PLATFORM_CONTEXT, RUNTIME, bytecode_interpreter
from infra.config import DeploymentConfig
from infra.stack import AgentFilesStack, new_app

REGION = "us-east-1"
ACCOUNT = "123456789012"
STAGE = "shipped"
# What the Lambda runtime brings beside the interpreter: boto3 and what it imports.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
RESULT_MARK = "@@invocation@@"
# The packages whose origin each invocation reports (where the sandbox loaded them from).
ORIGINS = (
    "boto3",
    "pydantic",
    "pydantic_core",
    "aws_lambda_powertools",
    "jwt",
    "cryptography",
    "openai",
    "agentfiles",
)

# Runs in the sandbox: the path as Lambda builds it, a count of modules compiled from
# source (none should be: the shipped bytecode is the runtime's), one invocation.
RUNNER = r"""
import importlib, importlib._bootstrap_external as external, json, sys, traceback
spec = json.loads(sys.argv[1])
# As on Lambda: /var/task, the layers (/opt/python), the runtime (/var/runtime), the stdlib.
sys.path[:] = [spec["task_root"], *spec["layers"], spec["runtime"], *sys.path[1:]]
compiled = []
source_to_code = external.SourceLoader.source_to_code
def counted(self, data, path, *args, **kwargs):
    compiled.append(str(path))
    return source_to_code(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = counted

class Context:
    function_name = spec["function_name"]
    function_version = "$LATEST"
    memory_limit_in_mb = spec["memory_mb"]
    aws_request_id = "00000000-0000-4000-8000-000000000000"
    invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
    log_group_name = f"/aws/lambda/{function_name}"
    log_stream_name = "2026/12/03/[$LATEST]sandbox"
    def get_remaining_time_in_millis(self):
        return spec["timeout_s"] * 1000

outcome = {}
try:
    module_name, _, attribute = spec["handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    outcome["result"] = handler(spec["event"], Context())
except BaseException as error:
    outcome["error"] = f"{type(error).__name__}: {error}"
    outcome["traceback"] = traceback.format_exc()
outcome["compiled_from_source"] = compiled
outcome["origins"] = {
    name: getattr(sys.modules.get(name), "__file__", None)
    for name in spec["origins"]
}
print(spec["mark"] + json.dumps(outcome, default=str))
"""


@dataclass(frozen=True)
class ShippedFunction:
    name: str
    logical_id: str
    handler: str
    code: Path
    layers: tuple[Path, ...]
    environment: dict[str, Any]
    timeout_s: int
    memory_mb: int
    application_log_level: str


@dataclass
class Invocation:
    result: Any = None
    error: str | None = None
    traceback: str | None = None
    compiled_from_source: list[str] = field(default_factory=list)
    origins: dict[str, str | None] = field(default_factory=dict)
    stdout: str = ""
    stderr: str = ""


@dataclass(frozen=True)
class Shipped:
    stack: AgentFilesStack
    template: dict[str, Any]
    outdir: Path
    functions: dict[str, ShippedFunction]

    def resource_of(self, construct: Any) -> str:
        cfn = construct.node.default_child or construct
        return self.stack.resolve(self.stack.get_logical_id(cfn))


def build(outdir: Path) -> Shipped:
    """Synthesize with real bundling (dependency layers for this machine's platform)."""
    app = new_app(
        {
            "stage": STAGE,
            HOST_PLATFORM_CONTEXT: True,
            # Where each resource's asset is, as the CDK CLI asks for it.
            "aws:cdk:enable-asset-metadata": True,
        },
        outdir=str(outdir),
    )
    config = DeploymentConfig.from_context(app.node.try_get_context)
    stack = AgentFilesStack(app, config.stack_name, config=config)
    template = app.synth().get_stack_by_name(stack.stack_name).template
    resources = template["Resources"]

    def asset(logical_id: str) -> Path:
        return outdir / resources[logical_id]["Metadata"]["aws:asset:path"]

    functions = {}
    for name, function in stack.functions.by_name.items():
        logical_id = stack.resolve(stack.get_logical_id(function.node.default_child))
        properties = resources[logical_id]["Properties"]
        functions[name] = ShippedFunction(
            name=name,
            logical_id=logical_id,
            handler=properties["Handler"],
            code=asset(logical_id),
            layers=tuple(asset(layer["Ref"]) / "python" for layer in properties["Layers"]),
            environment=properties["Environment"]["Variables"],
            timeout_s=properties["Timeout"],
            memory_mb=properties["MemorySize"],
            application_log_level=properties["LoggingConfig"]["ApplicationLogLevel"],
        )
    return Shipped(stack=stack, template=template, outdir=outdir, functions=functions)


def runtime_packages(into: Path) -> Path:
    """A stand-in for the runtime's `/var/runtime`: boto3 and its dependencies, linked
    from this machine's environment (pure Python, so any CPython 3 loads them)."""
    into.mkdir(parents=True, exist_ok=True)
    for name in RUNTIME_PACKAGES:
        found = importlib.util.find_spec(name)
        assert found and found.origin, name
        origin = Path(found.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (into / source.name).symlink_to(source, target_is_directory=source.is_dir())
    return into


class Placeholders:
    """The template's intrinsic values, resolved: a Ref to a resource the test made is
    that resource (its name, URL or ARN); any other Ref is `placeholder-<LogicalId>`."""

    PSEUDO = {
        "AWS::Region": REGION,
        "AWS::AccountId": ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": f"agentfiles-{STAGE}",
    }

    def __init__(self, refs: dict[str, str], attributes: dict[tuple[str, str], str]) -> None:
        self.refs = refs
        self.attributes = attributes

    def resolve(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            return str(value)
        if "Ref" in value:
            name = value["Ref"]
            return self.PSEUDO.get(name) or self.refs.get(name) or f"placeholder-{name}"
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return self.attributes.get((logical_id, attribute)) or f"placeholder-{logical_id}-{attribute}"
        if "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return separator.join(self.resolve(part) for part in parts)
        if "Fn::Select" in value:
            index, items = value["Fn::Select"]
            return self.resolve_list(items)[int(index)]
        raise AssertionError(f"an intrinsic the sandbox does not resolve: {value!r}")

    def resolve_list(self, value: Any) -> list[str]:
        if "Fn::Split" in value:
            separator, source = value["Fn::Split"]
            return self.resolve(source).split(separator)
        return [self.resolve(item) for item in value]


@dataclass
class Sandbox:
    interpreter: str
    runtime: Path
    placeholders: Placeholders
    aws_endpoint: str
    extra_environment: dict[str, str] = field(default_factory=dict)

    def environment(self, function: ShippedFunction, overrides: dict[str, str]) -> dict[str, str]:
        variables = {key: self.placeholders.resolve(value) for key, value in function.environment.items()}
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            # What Lambda sets for every function.
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_LAMBDA_FUNCTION_NAME": f"agentfiles-{STAGE}-{function.name}",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
            "AWS_LAMBDA_LOG_LEVEL": function.application_log_level,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUNTIME.name}",
            "LAMBDA_TASK_ROOT": str(function.code),
            "LAMBDA_RUNTIME_DIR": str(self.runtime),
            # A trace header that is not sampled: the tracer records nothing.
            "_X_AMZN_TRACE_ID": "Root=1-67000000-000000000000000000000000;Parent=0000000000000000;Sampled=0",
            # The role's credentials, and every AWS call to the local moto server.
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            # Anything that would leave the machine is refused at once, not waited for.
            "HTTP_PROXY": "http://127.0.0.1:9",
            "HTTPS_PROXY": "http://127.0.0.1:9",
            "NO_PROXY": "127.0.0.1,localhost",
            **self.extra_environment,
            **variables,
            **overrides,
        }

    def invoke(
        self,
        function: ShippedFunction,
        event: dict[str, Any],
        *,
        layers: tuple[Path, ...] | None = None,
        overrides: dict[str, str] | None = None,
    ) -> Invocation:
        spec = {
            "task_root": str(function.code),
            "layers": [str(path) for path in (function.layers if layers is None else layers)],
            "runtime": str(self.runtime),
            "handler": function.handler,
            "function_name": function.name,
            "memory_mb": function.memory_mb,
            "timeout_s": function.timeout_s,
            "event": event,
            "mark": RESULT_MARK,
            "origins": ORIGINS,
        }
        completed = subprocess.run(
            [self.interpreter, "-S", "-B", "-c", RUNNER, json.dumps(spec)],
            cwd=function.code,
            env=self.environment(function, overrides or {}),
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = [line for line in completed.stdout.splitlines() if line.startswith(RESULT_MARK)]
        assert lines, f"the sandbox died (exit {completed.returncode}):\n{completed.stderr[-4000:]}"
        outcome = json.loads(lines[-1].removeprefix(RESULT_MARK))
        return Invocation(**outcome, stdout=completed.stdout, stderr=completed.stderr)


def interpreter() -> str | None:
    """The runtime's CPython version on this machine (the same one compiles the bytecode)."""
    return bytecode_interpreter()
