"""Context options: parsing and refusing what cannot deploy. No synthesis here."""

from __future__ import annotations

import json

import pytest

from agentfiles import topology
from agentfiles.settings import DEPLOYMENT_VARIABLES, Settings
from infra.config import CDK_JSON, ConfigError, DeploymentConfig, cdk_json_context
from infra.logs import log_retention

REQUIRED_ENVIRONMENT = {name: "x" for name in DEPLOYMENT_VARIABLES}


def test_given_no_context_when_read_then_defaults_are_the_shared_ones() -> None:
    # Given an empty context / When read
    config = DeploymentConfig.from_context({}.get)

    # Then the values come from the topology and the functions' own settings
    assert config.stage == "dev"
    assert not config.production
    assert config.stack_name == "agentfiles-dev"
    assert config.cors_origins == ("*",)
    assert config.vacuum_schedule_minutes == topology.VACUUM_SCHEDULE_MINUTES
    assert config.grace_seconds == Settings.model_fields["grace_seconds"].default
    assert config.public_urls is False
    assert config.jwt_issuer is None
    assert config.generate_max_concurrency == 10


def test_given_cli_strings_when_read_then_they_become_typed_values() -> None:
    # Given context as `-c key=value` passes it (strings)
    context = {
        "stage": "prod",
        "publicUrls": "TRUE",
        "corsOrigins": "https://a.example, https://b.example",
        "graceSeconds": "0",
        "throttleRate": "12.5",
        "logLevel": "warning",
    }

    # When read
    config = DeploymentConfig.from_context(context.get)

    # Then each is typed
    assert config.production
    assert config.public_urls is True
    assert config.cors_origins == ("https://a.example", "https://b.example")
    assert config.grace_seconds == 0
    assert config.throttle_rate == 12.5
    assert config.log_level == "WARNING"


def test_given_json_values_when_read_then_they_are_accepted_too() -> None:
    # Given context as cdk.json holds it (JSON types)
    context = {"publicUrls": False, "corsOrigins": ["https://a.example"], "vacuumScheduleMinutes": 30}

    # When read / Then the same options result
    config = DeploymentConfig.from_context(context.get)
    assert config.public_urls is False
    assert config.cors_origins == ("https://a.example",)
    assert config.vacuum_schedule_minutes == 30


@pytest.mark.parametrize(
    "context",
    [
        {"jwtIssuer": "https://issuer.example"},  # issuer without audience
        {"jwtAudience": "client"},  # audience without issuer
        {"jwtIssuer": "http://issuer.example", "jwtAudience": "client"},  # not https
        {"publicUrls": "maybe"},
        {"vacuumScheduleMinutes": "0"},
        {"graceSeconds": "1.5"},
        {"throttleBurst": "many"},
        {"logLevel": "LOUD"},
        {"openaiSecretArn": "openai-key"},
        {"generateMaxConcurrency": "1"},  # SQS allows 2 to 1000
        {"generateMaxConcurrency": "1001"},
        {"storageQuotaBytes": "-1"},
        {"generationsPerMinute": "0"},
        {"modelCapabilities": '{"*": {"image": false}}'},  # a misspelt field
        {"modelCapabilities": '{"*": {"files": "maybe"}}'},
        {"modelCapabilities": '{"*": {"maxImageSide": 10}}'},  # below the functions' minimum
        {"modelCapabilities": "images=false"},  # not JSON
        {"modelCapabilities": '["*"]'},
    ],
)
def test_given_a_value_that_cannot_deploy_when_read_then_it_is_refused_with_its_name(
    context: dict[str, str],
) -> None:
    # Given a bad option / When read / Then the error names it
    with pytest.raises(ConfigError) as raised:
        DeploymentConfig.from_context(context.get)
    assert any(key in str(raised.value) for key in context)


def test_given_model_capabilities_as_cli_or_cdk_json_when_read_then_the_functions_read_the_same() -> None:
    # Given the same capabilities as `-c modelCapabilities='...'` passes them (a string)
    # and as cdk.json holds them (an object)
    table = {"*": {"files": False}, "llama3.1:8b": {"images": False, "files": False, "maxImageSide": None}}
    from_cli = DeploymentConfig.from_context({"modelCapabilities": json.dumps(table)}.get)
    from_file = DeploymentConfig.from_context({"modelCapabilities": table}.get)

    # When the functions read what the stack gives them
    assert from_cli.model_capabilities == from_file.model_capabilities
    assert from_cli.model_capabilities is not None
    settings = Settings.model_validate(
        {**REQUIRED_ENVIRONMENT, "MODEL_CAPABILITIES": from_cli.model_capabilities}
    )

    # Then each model reads what the operator wrote, unset fields at the functions' defaults
    star, llama = settings.model_capabilities["*"], settings.model_capabilities["llama3.1:8b"]
    assert (star.images, star.files, star.max_image_side) == (True, False, 2048)
    assert (llama.images, llama.files, llama.max_image_side, llama.max_image_short_side) == (
        False,
        False,
        None,
        768,
    )
    # And unset, the functions keep their own default
    assert DeploymentConfig.from_context({}.get).model_capabilities is None


def test_given_a_retention_cloudwatch_does_not_offer_when_mapped_then_it_is_refused() -> None:
    # Given 31 days (CloudWatch offers 30 and 60) / When mapped / Then refused
    with pytest.raises(ValueError, match="logRetentionDays"):
        log_retention(31)


def test_given_cdk_json_when_read_then_it_runs_the_app_and_holds_the_feature_flags() -> None:
    # Given cdk.json / When read
    document = json.loads(CDK_JSON.read_text())
    context = cdk_json_context()

    # Then the CLI runs app.py from the project's environment, and the flags are set
    assert document["app"].endswith("python app.py")
    assert context["@aws-cdk/aws-iam:minimizePolicies"] is True
    assert context["@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"] is True
