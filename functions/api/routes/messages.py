"""Messages of a thread: save (queueing the reply), list, read, delete, ask for an image."""

from __future__ import annotations

from aws_lambda_powertools.event_handler import Response

from agentfiles.logic import message_views, messages
from agentfiles.models.messages import (
    ImageRequest,
    MessagePage,
    MessageResponse,
    SavedMessage,
    SaveMessageRequest,
)
from functions.api.contract import (
    Cursor,
    IdempotencyKey,
    Limit,
    MessageId,
    Router,
    ThreadId,
    errors,
    json_response,
    link,
)

router = Router()

_SAME_THREAD = "$request.path.threadId"
MESSAGE_LINKS = {
    "GetMessage": link(
        "GET /threads/{threadId}/messages/{messageId}",
        threadId=_SAME_THREAD,
        messageId="$response.body#/message/id",
    ),
    "GetReply": link(
        "GET /threads/{threadId}/messages/{messageId}",
        threadId=_SAME_THREAD,
        messageId="$response.body#/reply/id",
    ),
    "DeleteMessage": link(
        "DELETE /threads/{threadId}/messages/{messageId}",
        threadId=_SAME_THREAD,
        messageId="$response.body#/message/id",
    ),
}


@router.post(
    "/threads/<threadId>/messages",
    summary="Save a message (and queue the assistant's reply)",
    tags=["messages"],
    responses={
        201: {"description": "Saved; `reply` is the pending assistant message", "links": MESSAGE_LINKS},
        **errors(400, 404, 409, 413, 415, 422, 429, 503),
    },
)
def save_message(
    thread_id: ThreadId, request: SaveMessageRequest, idempotency_key: IdempotencyKey = None
) -> Response[SavedMessage]:
    return json_response(201, messages.save_message(router.owner(), thread_id, request, idempotency_key))


@router.get(
    "/threads/<threadId>/messages",
    summary="List messages, newest first; file parts carry fresh URLs",
    tags=["messages"],
    responses={200: {"description": "A page of messages"}, **errors(400, 404)},
)
def list_messages(thread_id: ThreadId, limit: Limit = 50, cursor: Cursor = None) -> MessagePage:
    return message_views.list_messages(router.owner(), thread_id, limit, cursor)


@router.get(
    "/threads/<threadId>/messages/<messageId>",
    summary="Read a message",
    tags=["messages"],
    responses={200: {"description": "The message"}, **errors(404)},
)
def get_message(thread_id: ThreadId, message_id: MessageId) -> MessageResponse:
    return MessageResponse(message=message_views.get_message(router.owner(), thread_id, message_id))


@router.delete(
    "/threads/<threadId>/messages/<messageId>",
    summary="Delete a message, releasing its files",
    tags=["messages"],
    responses={204: {"description": "Deleted", "content": {}}, **errors(404, 409)},
)
def delete_message(thread_id: ThreadId, message_id: MessageId) -> Response[None]:
    messages.delete_message(router.owner(), thread_id, message_id)
    return Response(status_code=204)


@router.post(
    "/threads/<threadId>/images",
    summary="Generate an image into the thread",
    tags=["messages"],
    responses={
        202: {"description": "Queued; `reply` gets the picture as an image part", "links": MESSAGE_LINKS},
        **errors(400, 404, 409, 415, 422, 429, 503),
    },
)
def generate_image(
    thread_id: ThreadId, request: ImageRequest, idempotency_key: IdempotencyKey = None
) -> Response[SavedMessage]:
    return json_response(202, messages.request_image(router.owner(), thread_id, request, idempotency_key))
