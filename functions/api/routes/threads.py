"""Threads: create, list, read, delete."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from agentfiles.logic import threads
from agentfiles.models.threads import CreateThreadRequest, ThreadOut, ThreadPage, ThreadResponse
from functions.api.contract import Cursor, Limit, Router, ThreadId, errors, json_response

router = Router()


@router.post(
    "/threads",
    summary="Create a thread",
    tags=["threads"],
    responses={201: {"description": "Created"}, **errors()},
)
def create_thread(request: CreateThreadRequest | None = None) -> Response[ThreadResponse]:
    thread = threads.create_thread(router.owner(), request or CreateThreadRequest())
    return json_response(201, ThreadResponse(thread=thread))


@router.get("/threads", summary="List threads, newest first", tags=["threads"], responses=errors(400))
def list_threads(limit: Limit = 50, cursor: Cursor = None) -> ThreadPage:
    return threads.list_threads(router.owner(), limit, cursor)


@router.get("/threads/<threadId>", summary="Read a thread", tags=["threads"], responses=errors(404))
def get_thread(thread_id: ThreadId) -> ThreadResponse:
    return ThreadResponse(thread=ThreadOut.of(threads.require_thread(router.owner(), thread_id)))


@router.delete(
    "/threads/<threadId>",
    summary="Delete a thread; its messages are removed in the background, releasing their files",
    tags=["threads"],
    responses={202: {"description": "Deletion under way"}, **errors(404)},
)
def delete_thread(thread_id: ThreadId) -> Response[None]:
    threads.delete_thread(router.owner(), thread_id)
    return Response(status_code=202)
