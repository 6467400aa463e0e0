"""One settings model, read from the environment."""

from __future__ import annotations

import pytest

from agentfiles.settings import (
    DEFAULT_ALLOWED_MEDIA_TYPES,
    DEPLOYMENT_VARIABLES,
    Settings,
    SettingsError,
    get_settings,
)

RESOURCES = {name: f"value-of-{name.lower()}" for name in DEPLOYMENT_VARIABLES}


@pytest.fixture
def environment(monkeypatch):
    """A clean environment with only what a test sets, and the settings cache cleared."""

    def use(values: dict[str, str]) -> None:
        for name in [*DEPLOYMENT_VARIABLES, "URL_MODE", "MAX_ATTACHMENTS"]:
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()

    yield use
    get_settings.cache_clear()


def test_the_resources_a_deployment_names_have_no_defaults():
    assert set(DEPLOYMENT_VARIABLES) == {
        "TABLE_NAME",
        "BUCKET_NAME",
        "GENERATIONS_QUEUE_URL",
        "GENERATIONS_DLQ_URL",
        "MAINTENANCE_QUEUE_URL",
    }


def test_everything_else_has_a_default():
    settings = Settings.model_validate(RESOURCES)
    assert settings.inline_max_bytes == 64 * 1024
    assert settings.max_attachments == 20
    assert settings.upload_url_ttl_seconds == 900
    assert settings.allowed_media_types == DEFAULT_ALLOWED_MEDIA_TYPES


def test_values_come_from_environment_names():
    settings = Settings.model_validate(
        {
            **RESOURCES,
            "ALLOWED_MEDIA_TYPES": "image/png, application/pdf",
            "URL_MODE": "public",
            "OPENAI_BASE_URL": "",
        }
    )
    assert settings.allowed_media_types == ("image/png", "application/pdf")
    assert settings.url_mode == "public"
    assert settings.openai_base_url is None


def test_a_missing_resource_is_named(environment):
    # Given an environment without the queue URLs
    environment({"TABLE_NAME": "t", "BUCKET_NAME": "b"})
    # When the settings are read, Then the error names every missing variable
    with pytest.raises(SettingsError) as raised:
        get_settings()
    message = str(raised.value)
    assert "GENERATIONS_QUEUE_URL" in message and "MAINTENANCE_QUEUE_URL" in message
    assert "TABLE_NAME" not in message


def test_an_empty_resource_name_is_refused(environment):
    environment({**RESOURCES, "TABLE_NAME": ""})
    with pytest.raises(SettingsError, match="TABLE_NAME"):
        get_settings()


@pytest.mark.parametrize(
    ("name", "value"), [("URL_MODE", "ftp"), ("MAX_ATTACHMENTS", "500"), ("GRACE_SECONDS", "-1")]
)
def test_a_bad_value_is_refused_at_start_naming_it(environment, name, value):
    environment({**RESOURCES, name: value})
    with pytest.raises(SettingsError, match=name):
        get_settings()
