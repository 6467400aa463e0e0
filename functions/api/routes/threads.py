"""Threads: create, list, read, delete."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from agentfiles.logic import threads
from agentfiles.models.threads import CreateThreadRequest, ThreadOut, ThreadPage, ThreadResponse
from functions.api.contract import Cursor, Limit, Router, ThreadId, errors, json_response, link

router = Router()

_THREAD = "$response.body#/thread/id"
THREAD_LINKS = {
    "GetThread": link("GET /threads/{threadId}", threadId=_THREAD),
    "ListMessages": link("GET /threads/{threadId}/messages", threadId=_THREAD),
    "SaveMessage": link(
        "POST /threads/{threadId}/messages",
        {"content": "What is in this thread so far?", "fileIds": []},
        threadId=_THREAD,
    ),
    "GenerateImage": link(
        "POST /threads/{threadId}/images", {"prompt": "a lighthouse at dusk"}, threadId=_THREAD
    ),
    "DeleteThread": link("DELETE /threads/{threadId}", threadId=_THREAD),
}


@router.post(
    "/threads",
    summary="Create a thread",
    tags=["threads"],
    responses={201: {"description": "Created", "links": THREAD_LINKS}, **errors(400, 409, 415)},
)
def create_thread(request: CreateThreadRequest | None = None) -> Response[ThreadResponse]:
    thread = threads.create_thread(router.owner(), request or CreateThreadRequest())
    return json_response(201, ThreadResponse(thread=thread))


@router.get(
    "/threads",
    summary="List threads, newest first",
    tags=["threads"],
    responses={200: {"description": "A page of threads"}, **errors(400)},
)
def list_threads(limit: Limit = 50, cursor: Cursor = None) -> ThreadPage:
    return threads.list_threads(router.owner(), limit, cursor)


@router.get(
    "/threads/<threadId>",
    summary="Read a thread",
    tags=["threads"],
    responses={200: {"description": "The thread"}, **errors(404)},
)
def get_thread(thread_id: ThreadId) -> ThreadResponse:
    return ThreadResponse(thread=ThreadOut.of(threads.require_thread(router.owner(), thread_id)))


@router.delete(
    "/threads/<threadId>",
    summary="Delete a thread; its messages are removed in the background, releasing their files",
    tags=["threads"],
    responses={202: {"description": "Deletion under way", "content": {}}, **errors(404, 409)},
)
def delete_thread(thread_id: ThreadId) -> Response[None]:
    threads.delete_thread(router.owner(), thread_id)
    return Response(status_code=202)
