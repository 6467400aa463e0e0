"""The models a client may name and what each can read.

The operator's allowlist (`MODEL`, `IMAGE_MODEL`, `MODELS`, `IMAGE_MODELS`) is checked
before anything is stored; `MODEL_CAPABILITIES` says per model whether it sees images,
reads file parts, and the geometry its images are fitted to. `GET /models` lists both,
so a client can grey out what a model will not take.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from agentfiles.errors import Unprocessable
from agentfiles.models.files import model_image_name
from agentfiles.models.usage import Capabilities, DefaultModels, ModelsOut
from agentfiles.settings import ModelCapability, get_settings


@dataclass(frozen=True)
class Geometry:
    """What an image is fitted to before a model gets it: within `max_side` x
    `max_side`, then `max_short_side` on its short side (None: no bound)."""

    max_side: int | None
    max_short_side: int | None

    @property
    def derived_name(self) -> str:
        return model_image_name(self.max_side, self.max_short_side)


def capability(model: str) -> ModelCapability:
    """What `model` can read: its own entry in MODEL_CAPABILITIES, else the `*` one."""
    table = get_settings().model_capabilities
    return table.get(model) or table["*"]


def geometry(model: str) -> Geometry:
    found = capability(model)
    return Geometry(found.max_image_side, found.max_image_short_side)


def image_geometries() -> frozenset[Geometry]:
    """Every geometry an allowed chat model that sees images uses: the copies of an image
    the upload check makes, once each, so no reply has to."""
    return frozenset(geometry(model) for model in get_settings().chat_models if capability(model).images)


def check_model(kind: Literal["chat", "image"], model: str | None) -> None:
    """A model a client names must be on the operator's list (MODELS / IMAGE_MODELS,
    which always include the defaults): no one spends on a model the operator did not
    choose."""
    settings = get_settings()
    allowed = settings.image_model_names if kind == "image" else settings.chat_models
    if model is not None and model not in allowed:
        raise Unprocessable(
            f"{kind} model {model!r} is not allowed here; allowed: {', '.join(allowed)} (see GET /models)",
            code="model_not_allowed",
            details={"model": model, "allowed": list(allowed)},
        )


def models() -> ModelsOut:
    settings = get_settings()
    return ModelsOut(
        chat=list(settings.chat_models),
        image=list(settings.image_model_names),
        default=DefaultModels(chat=settings.model, image=settings.image_model),
        capabilities={
            model: Capabilities(
                images=found.images,
                files=found.files,
                max_image_side=found.max_image_side,
                max_image_short_side=found.max_image_short_side,
            )
            for model in settings.chat_models
            for found in (capability(model),)
        },
    )
