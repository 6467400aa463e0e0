"""The caller's account: what they have used and may use, the models they may name, and
the erasure of everything they have."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from agentfiles.logic import catalog, erasure, exports, usage
from agentfiles.models.account import AccountResponse, ErasureResponse
from agentfiles.models.exports import ExportResponse
from agentfiles.models.usage import ModelsOut, UsageOut
from functions.api.contract import ExportId, Router, errors, json_response

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


@router.get(
    "/account",
    summary="This account, and its latest erasure's status and counts",
    tags=["account"],
    responses={200: {"description": "The account"}, **errors(503)},
)
def get_account() -> AccountResponse:
    return AccountResponse(account=erasure.account(router.owner()))


@router.delete(
    "/account",
    summary="Erase every thread, message, file and row of this account, in the background",
    description="202 at once: from then on every write of this account answers 409 `account_erasing` "
    "until the erasure is done (`GET /account`). Asking again while it runs changes nothing.",
    tags=["account"],
    responses={
        202: {"description": "The erasure began (or goes on)"},
        **errors(503),
    },
)
def delete_account() -> Response[ErasureResponse]:
    out = erasure.request_erasure(router.owner())
    return json_response(202, ErasureResponse(erasure=out))


@router.post(
    "/exports",
    summary="Export everything of this account as one ZIP, made in the background",
    description="202 at once. The ZIP holds manifest.json, threads/<threadId>.json and files/<fileId>/"
    "<filename>; poll GET /exports/{exportId} (or wait for the socket's `export` frame) for its `url`. "
    "One at a time: 409 `export_running` while another is being made.",
    tags=["account"],
    responses={202: {"description": "The export is being made"}, **errors(409, 503)},
)
def create_export() -> Response[ExportResponse]:
    return json_response(202, ExportResponse(export=exports.request_export(router.owner())))


@router.get(
    "/exports/<exportId>",
    summary="An export's status, and once ready a short-lived URL of its ZIP",
    tags=["account"],
    responses={200: {"description": "The export"}, **errors(404)},
)
def get_export(export_id: ExportId) -> ExportResponse:
    return ExportResponse(export=exports.get_export(router.owner(), export_id))
