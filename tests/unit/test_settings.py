"""One settings model, read from the environment."""

from __future__ import annotations

import re
from pathlib import Path

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


def _readme_configuration_rows() -> list[str]:
    """The variables named in the first column of the README's configuration table."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    names: list[str] = []
    for line in section.splitlines():
        if line.startswith("| `"):
            names += re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1])
    return names


def test_the_readme_configuration_table_names_every_setting_once_and_nothing_else() -> None:
    # Given every variable the settings model reads from the environment
    variables = {field.alias for field in Settings.model_fields.values() if field.alias}
    # When the README's configuration table is read
    documented = _readme_configuration_rows()
    # Then each is documented exactly once, and the table names no variable that is not read
    assert sorted(name for name in set(documented) if documented.count(name) > 1) == []
    assert sorted(variables - set(documented)) == []
    assert sorted(set(documented) - variables) == []
