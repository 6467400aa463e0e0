"""Where objects live in the bucket, and what each model can read."""

from __future__ import annotations

import pytest

from agentfiles.data import keys
from agentfiles.logic import catalog
from agentfiles.settings import SettingsError, get_settings


def test_an_original_key_reads_back_as_its_owner_and_file():
    # Given the key of an uploaded file / When it is parsed / Then owner and id come back
    key = keys.object_key("alice", "01JDQ8ZK3M4N5P6Q7R8S9T0V1W")
    assert key == "files/alice/01JDQ8ZK3M4N5P6Q7R8S9T0V1W"
    assert keys.parse_object_key(key) == ("alice", "01JDQ8ZK3M4N5P6Q7R8S9T0V1W")


@pytest.mark.parametrize(
    "key",
    [
        "derived/alice/01JDQ8ZK3M4N5P6Q7R8S9T0V1W/thumbnail",
        "exports/alice/01JDQ8ZK3M4N5P6Q7R8S9T0V1W.zip",
        "alice/01JDQ8ZK3M4N5P6Q7R8S9T0V1W",
        "files/alice",
        "files//01JDQ8ZK3M4N5P6Q7R8S9T0V1W",
        "files/alice/01JDQ8ZK3M4N5P6Q7R8S9T0V1W/extra",
    ],
)
def test_a_key_that_is_not_an_original_names_no_file(key):
    # Given a derived object, an export, or a key this system never makes
    # When it is parsed / Then it names no file, so the upload check leaves it alone
    assert keys.parse_object_key(key) is None


def test_every_object_of_an_owner_is_under_one_of_their_prefixes():
    # Given an owner's original, derived object and export
    made = [
        keys.object_key("alice", "F1"),
        keys.derived_key("alice", "F1", "thumbnail"),
        keys.export_key("alice", "E1"),
    ]
    # Then each lies under one of the owner's prefixes, and none under another owner's
    prefixes = keys.owner_object_prefixes("alice")
    assert all(any(key.startswith(p) for p in prefixes) for key in made)
    assert not any(key.startswith(p) for key in made for p in keys.owner_object_prefixes("alic"))


def test_without_capabilities_every_model_sees_images_and_files(monkeypatch):
    # Given no MODEL_CAPABILITIES / When a model's are asked for
    monkeypatch.delenv("MODEL_CAPABILITIES", raising=False)
    get_settings.cache_clear()
    found = catalog.capability("gpt-4o-mini")
    # Then it takes images and files, at OpenAI's high-detail geometry
    assert (found.images, found.files) == (True, True)
    assert catalog.geometry("gpt-4o-mini") == catalog.Geometry(2048, 768)
    get_settings.cache_clear()


def test_a_named_model_has_its_own_capabilities_and_others_the_star(monkeypatch):
    # Given a text-only model, a vLLM model without file parts, and a default
    monkeypatch.setenv("MODEL", "gpt-4o-mini")
    monkeypatch.setenv("MODELS", "llama-3-8b,qwen-vl")
    monkeypatch.setenv(
        "MODEL_CAPABILITIES",
        '{"llama-3-8b": {"images": false, "files": false},'
        ' "qwen-vl": {"files": false, "maxImageSide": 1280, "maxImageShortSide": null},'
        ' "*": {"images": true, "files": true}}',
    )
    get_settings.cache_clear()
    try:
        # Then each gets its own entry, and the default the star's
        assert catalog.capability("llama-3-8b").images is False
        assert catalog.capability("qwen-vl").files is False
        assert catalog.capability("gpt-4o-mini").files is True
        # And the image copies made at upload are one per geometry of a model that sees images
        assert catalog.image_geometries() == {catalog.Geometry(2048, 768), catalog.Geometry(1280, None)}
    finally:
        get_settings.cache_clear()


def test_malformed_capabilities_stop_the_function_at_init(monkeypatch):
    # Given MODEL_CAPABILITIES that is not JSON / When settings are read
    monkeypatch.setenv("MODEL_CAPABILITIES", "{images: yes}")
    get_settings.cache_clear()
    try:
        # Then the function cannot start, and says which variable is wrong
        with pytest.raises(SettingsError, match="MODEL_CAPABILITIES"):
            get_settings()
    finally:
        get_settings.cache_clear()
