"""One settings model, read from the environment."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from agentfiles.settings import DEFAULT_ALLOWED_MEDIA_TYPES, Settings


def test_defaults_need_no_environment():
    settings = Settings.model_validate({})
    assert settings.inline_max_bytes == 64 * 1024
    assert settings.max_attachments == 20
    assert settings.upload_url_ttl_seconds == 900
    assert settings.allowed_media_types == DEFAULT_ALLOWED_MEDIA_TYPES


def test_values_come_from_environment_names():
    settings = Settings.model_validate(
        {"ALLOWED_MEDIA_TYPES": "image/png, application/pdf", "URL_MODE": "public", "OPENAI_BASE_URL": ""}
    )
    assert settings.allowed_media_types == ("image/png", "application/pdf")
    assert settings.url_mode == "public"
    assert settings.openai_base_url is None


@pytest.mark.parametrize(
    ("name", "value"), [("URL_MODE", "ftp"), ("MAX_ATTACHMENTS", "500"), ("GRACE_SECONDS", "-1")]
)
def test_a_bad_value_is_refused_at_start(name, value):
    with pytest.raises(ValidationError):
        Settings.model_validate({name: value})
