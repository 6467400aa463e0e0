"""The caller's account: what they have used and may use, and the models they may name."""

from __future__ import annotations

from agentfiles.logic import catalog, usage
from agentfiles.models.usage import ModelsOut, UsageOut
from functions.api.contract import Router, errors

router = Router()


@router.get(
    "/usage",
    summary="Storage used and its quota, today's replies, images and tokens, and the rate limit",
    tags=["account"],
    responses={200: {"description": "This owner's usage and limits"}, **errors(503)},
)
def get_usage() -> UsageOut:
    return usage.usage_of(router.owner())


@router.get(
    "/models",
    summary="The chat and image models a request may name, and the defaults",
    tags=["account"],
    responses={200: {"description": "The models a request may name"}, **errors()},
)
def get_models() -> ModelsOut:
    router.owner()  # signed-in callers only, as every route behind the authorizer
    return catalog.models()
