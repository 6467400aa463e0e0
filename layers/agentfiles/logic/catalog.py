"""The models a client may name: the operator's allowlist (`MODEL`, `IMAGE_MODEL`,
`MODELS`, `IMAGE_MODELS`), checked before anything is stored, and listed by
`GET /models`."""

from __future__ import annotations

from typing import Literal

from agentfiles.errors import Unprocessable
from agentfiles.models.usage import DefaultModels, ModelsOut
from agentfiles.settings import get_settings


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
    )
