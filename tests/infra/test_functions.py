"""The Lambda functions: runtime, logging, environment, layers, and how layers are built."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from agentfiles import topology
from agentfiles.settings import Settings
from infra import bundling
from infra.constants import REQUIREMENTS_DIR
from tests.infra.synthesis import Synthesized

FUNCTION_NAMES = list(topology.FUNCTIONS)
SHARED_ENVIRONMENT = {
    "TABLE_NAME",
    "BUCKET_NAME",
    "GENERATIONS_QUEUE_URL",
    "GENERATIONS_DLQ_URL",
    "MAINTENANCE_QUEUE_URL",
    "POWERTOOLS_SERVICE_NAME",
    "POWERTOOLS_METRICS_NAMESPACE",
    "LOG_LEVEL",
    *topology.FUNCTION_ENVIRONMENT,
}
MODEL_ENVIRONMENT = {"OPENAI_API_KEY_SECRET_ARN", "OPENAI_BASE_URL", "MODEL", "IMAGE_MODEL", "URL_MODE"}
MODEL_ENVIRONMENT |= {"PUBLIC_BASE_URL"}


def _function(synthesized: Synthesized, name: str) -> dict[str, Any]:
    return synthesized.resource(synthesized.stack.functions[name])["Properties"]


def _environment(synthesized: Synthesized, name: str) -> dict[str, Any]:
    return _function(synthesized, name)["Environment"]["Variables"]


def _layer_ids(synthesized: Synthesized) -> dict[str, str]:
    """Layer logical ids by what they hold, read from their descriptions."""
    layers = {}
    for layer_id, layer in synthesized.of_type("AWS::Lambda::LayerVersion").items():
        description = layer["Properties"]["Description"]
        match = re.search(r"layers/requirements/(\w+)\.txt", description)
        layers[match.group(1) if match else "domain"] = layer_id
    return layers


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_given_a_function_spec_when_synthesized_then_it_runs_python_on_arm64_with_its_limits(
    any_stack: Synthesized, name: str
) -> None:
    # Given a function of the topology
    spec = topology.FUNCTIONS[name]

    # When synthesized
    props = _function(any_stack, name)

    # Then it runs a current Python on arm64 with the timeout and memory of its spec
    assert props["Runtime"] == "python3.13"
    assert props["Architectures"] == ["arm64"]
    assert props["Handler"] == f"functions.{name}.handler.lambda_handler"
    assert props["Timeout"] == spec.timeout_seconds
    assert props["MemorySize"] == spec.memory_mb
    # And only the traced function records X-Ray segments (the others have no tracing config)
    assert props.get("TracingConfig") == ({"Mode": "Active"} if spec.traced else None)
    # And no function-level DLQ: SQS DLQs, the schedule's DLQ and the vacuum's on-failure
    # destination catch failures
    assert "DeadLetterConfig" not in props


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_given_a_function_when_synthesized_then_it_logs_json_to_its_own_retained_log_group(
    dev: Synthesized, prod: Synthesized, name: str
) -> None:
    for synthesized, retention, level in ((dev, 30, "INFO"), (prod, 90, "DEBUG")):
        # Given the function / When synthesized
        logging = _function(synthesized, name)["LoggingConfig"]
        log_group = synthesized.stack.functions.log_groups[name]

        # Then it writes JSON lines, at the configured level, to its own log group with retention
        assert logging["LogFormat"] == "JSON"
        assert logging["ApplicationLogLevel"] == level
        assert logging["SystemLogLevel"] == "WARN"
        assert logging["LogGroup"] == {"Ref": synthesized.logical_id(log_group)}
        assert synthesized.resource(log_group)["Properties"]["RetentionInDays"] == retention


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_given_a_function_when_synthesized_then_its_environment_names_the_shared_resources(
    any_stack: Synthesized, name: str
) -> None:
    # Given the stack's table, bucket and queues
    stack = any_stack.stack
    generations = stack.queues["generations"]

    # When synthesized
    environment = _environment(any_stack, name)

    # Then every function finds them under the names settings.py reads
    assert environment["TABLE_NAME"] == {"Ref": any_stack.logical_id(stack.storage.table)}
    assert environment["BUCKET_NAME"] == {"Ref": any_stack.logical_id(stack.storage.bucket)}
    assert environment["GENERATIONS_QUEUE_URL"] == {"Ref": any_stack.logical_id(generations.queue)}
    assert environment["GENERATIONS_DLQ_URL"] == {"Ref": any_stack.logical_id(generations.dlq)}
    assert environment["MAINTENANCE_QUEUE_URL"] == {
        "Ref": any_stack.logical_id(stack.queues["maintenance"].queue)
    }
    assert environment["POWERTOOLS_SERVICE_NAME"] == f"agentfiles-{name}"
    assert environment["POWERTOOLS_METRICS_NAMESPACE"] == "agentfiles"


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_given_a_function_when_synthesized_then_every_variable_is_one_the_code_reads(
    any_stack: Synthesized, name: str
) -> None:
    # Given the aliases of the settings model (and Powertools' own variables)
    known = {field.alias for field in Settings.model_fields.values()} | SHARED_ENVIRONMENT

    # When synthesized / Then no variable is set that nothing reads
    assert set(_environment(any_stack, name)) <= known


def test_given_defaults_when_synthesized_then_generate_reads_a_created_secret_and_presigns(
    dev: Synthesized,
) -> None:
    # Given no model context / When synthesized
    environment = _environment(dev, "generate")
    secret = dev.stack.functions.openai_secret

    # Then generate reads the key from the secret the stack created, and presigns image URLs
    assert environment["OPENAI_API_KEY_SECRET_ARN"] == {"Ref": dev.logical_id(secret)}
    assert environment["URL_MODE"] == "presigned"
    assert not {"PUBLIC_BASE_URL", "OPENAI_BASE_URL", "MODEL", "IMAGE_MODEL"} & set(environment)
    assert len(dev.of_type("AWS::SecretsManager::Secret")) == 1


def test_given_model_context_and_public_urls_when_synthesized_then_generate_gets_them(
    prod: Synthesized,
) -> None:
    # Given an existing secret, a model endpoint and public URLs in context / When synthesized
    environment = _environment(prod, "generate")
    distribution_id = prod.logical_id(prod.stack.public_urls.distribution)

    # Then generate uses them, and the images go to the model through CloudFront
    assert environment["OPENAI_API_KEY_SECRET_ARN"] == (
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:openai-key-AbCdEf"
    )
    assert environment["OPENAI_BASE_URL"] == "https://models.example.com/v1"
    assert environment["MODEL"] == "gpt-test"
    assert environment["IMAGE_MODEL"] == "image-test"
    assert environment["URL_MODE"] == "public"
    assert environment["PUBLIC_BASE_URL"] == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution_id, "DomainName"]}]]
    }
    # And no secret is created when one is given
    assert not prod.of_type("AWS::SecretsManager::Secret")


def test_given_limits_in_context_when_synthesized_then_each_goes_to_the_functions_that_enforce_it(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given limits in context (prod) / When synthesized
    api, generate = _environment(prod, "api"), _environment(prod, "generate")

    # Then the API checks the allowlists, the quota and the rate
    assert api["MODELS"] == "gpt-test,gpt-test-large"
    assert api["IMAGE_MODELS"] == "image-test-hd"
    assert api["GENERATIONS_PER_MINUTE"] == "6"
    assert api["STORAGE_QUOTA_BYTES"] == "1073741824" and api["STORAGE_QUOTA_FILES"] == "500"
    # And generate stores pictures under the same quota and sends attachments within the budget
    assert generate["STORAGE_QUOTA_BYTES"] == "1073741824" and generate["STORAGE_QUOTA_FILES"] == "500"
    assert generate["ATTACHMENT_BUDGET_BYTES"] == "8388608"
    # And no other function is given them
    limits = {
        "MODELS",
        "IMAGE_MODELS",
        "GENERATIONS_PER_MINUTE",
        "STORAGE_QUOTA_BYTES",
        "ATTACHMENT_BUDGET_BYTES",
    }
    for name in set(FUNCTION_NAMES) - {"api", "generate"}:
        assert not limits & set(_environment(prod, name))
    # And without context the functions keep their own defaults
    for name in FUNCTION_NAMES:
        assert not limits & set(_environment(dev, name))


def test_given_grace_context_when_synthesized_then_only_the_vacuum_gets_it(
    dev: Synthesized, prod: Synthesized
) -> None:
    # Given the default grace (dev) and graceSeconds=3600 (prod) / When synthesized
    # Then the vacuum reads it
    assert _environment(dev, "vacuum")["GRACE_SECONDS"] == str(Settings.model_fields["grace_seconds"].default)
    assert _environment(prod, "vacuum")["GRACE_SECONDS"] == "3600"
    # And the model's address and key stay with the function that calls the model; the
    # API only learns the model names, to record them on pending replies
    for name in FUNCTION_NAMES:
        environment = set(_environment(prod, name))
        if name != "vacuum":
            assert "GRACE_SECONDS" not in environment
        if not topology.FUNCTIONS[name].needs_model:
            allowed = {"MODEL", "IMAGE_MODEL"} if name == "api" else set()
            assert not (environment & MODEL_ENVIRONMENT) - allowed, name
    assert {"MODEL", "IMAGE_MODEL"} <= set(_environment(prod, "api"))


@pytest.mark.parametrize("name", FUNCTION_NAMES)
def test_given_a_function_when_synthesized_then_it_has_the_domain_layer_and_its_dependency_set(
    any_stack: Synthesized, name: str
) -> None:
    # Given the layers: domain package, common dependencies, model and token-checking sets
    layers = _layer_ids(any_stack)
    assert set(layers) == {"domain", "common", "model", "auth", "media"}

    # When synthesized
    used = {layer["Ref"] for layer in _function(any_stack, name)["Layers"]}

    # Then the function gets the domain package and exactly one dependency set:
    # the model set (with openai) only where a model is called, the auth set (PyJWT,
    # cryptography) only where tokens are checked, the media set (pypdf, Pillow) where
    # derived objects are made (the model set includes it)
    spec = topology.FUNCTIONS[name]
    expected_set = (
        "model"
        if spec.needs_model
        else "auth"
        if spec.verifies_tokens
        else "media"
        if spec.reads_media
        else "common"
    )
    assert used == {layers["domain"], layers[expected_set]}


def test_given_the_api_function_when_synthesized_then_it_does_not_load_openai(dev: Synthesized) -> None:
    # Given the layers / When synthesized
    layers = _layer_ids(dev)
    used = {layer["Ref"] for layer in _function(dev, "api")["Layers"]}

    # Then the API function's cold start does not pay for the model client
    assert layers["model"] not in used
    assert "openai" not in (REQUIREMENTS_DIR / "common.txt").read_text()


def test_given_the_layers_when_synthesized_then_they_are_built_for_arm64_and_the_runtime(
    any_stack: Synthesized,
) -> None:
    # Given every layer / When synthesized / Then each declares the functions' runtime and architecture
    for layer in any_stack.of_type("AWS::Lambda::LayerVersion").values():
        assert layer["Properties"]["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Properties"]["CompatibleArchitectures"] == ["arm64"]


def test_given_the_requirements_files_when_read_then_every_package_is_pinned() -> None:
    # Given the dependency sets
    for path in sorted(REQUIREMENTS_DIR.glob("*.txt")):
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        requirements = [line for line in lines if line and not line.startswith("-r ")]

        # Then each names one exact version
        assert requirements, path
        for requirement in requirements:
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.]*", requirement), (path, requirement)
        # And boto3 is not shipped: the runtime provides it
        assert not any(r.startswith(("boto3", "botocore")) for r in requirements), path
    model = (REQUIREMENTS_DIR / "model.txt").read_text()
    # The model set is the media set (a generated picture gets its thumbnail) plus openai
    assert "-r media.txt" in model
    assert "-r documents.txt" in (REQUIREMENTS_DIR / "media.txt").read_text()
    assert "-r common.txt" in (REQUIREMENTS_DIR / "documents.txt").read_text()
    assert re.search(r"^openai==", model, re.MULTILINE)


def test_given_the_pip_layer_builder_when_asked_for_its_command_then_it_targets_the_lambda_platform() -> None:
    # Given the builder of the common set
    builder = bundling.PipInstall(REQUIREMENTS_DIR / "common.txt")

    # When it makes its pip command
    command = builder.command("/out/python")

    # Then pip installs binary wheels for arm64 Linux and the runtime's Python, into the layer
    joined = " ".join(command)
    assert "--platform manylinux2014_aarch64" in joined
    # And manylinux_2_28 too, the only aarch64 wheels of current Pillow and pillow-heif
    assert "--platform manylinux_2_28_aarch64" in joined
    assert "--only-binary=:all:" in command
    assert f"--python-version {bundling.runtime_python_version()}" in joined
    assert bundling.runtime_python_version() == "3.13"
    assert "--target /out/python" in joined
    # And it names the file relatively, so the asset hash does not depend on the checkout's path
    assert "--requirement common.txt" in joined
    assert str(REQUIREMENTS_DIR) not in joined


def test_given_the_domain_package_when_bundled_locally_then_it_lands_under_python_with_runtime_bytecode(
    tmp_path: Path,
) -> None:
    # Given a package folder with a bytecode cache
    package = tmp_path / "src" / "mypackage"
    (package / "__pycache__").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"")
    output = tmp_path / "out"

    # When the local bundler copies it (it ignores Docker's options)
    bundled = bundling.CopyPackage(package).try_bundle(str(output), None)  # type: ignore[arg-type]

    # Then it is at python/<name>/, where Lambda's sys.path finds it, without this machine's cache
    assert bundled is True
    assert (output / "python" / "mypackage" / "__init__.py").exists()
    assert not (output / "python" / "mypackage" / "__pycache__" / "x.cpython-311.pyc").exists()
    # And with the runtime's own bytecode where an interpreter of its version is found
    shipped = sorted(path.name for path in output.rglob("*.pyc"))
    tag = bundling.runtime_python_version().replace(".", "")
    assert shipped == ([f"__init__.cpython-{tag}.pyc"] if bundling.bytecode_interpreter() else [])
