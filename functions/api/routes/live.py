"""Live replies over HTTP: catch up on a reply's stream by seq, and stop a reply."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query

from agentfiles.logic import live
from agentfiles.models.live import StreamOut
from agentfiles.models.messages import MessageOut, MessageResponse
from functions.api.contract import MessageId, Router, ThreadId, errors, json_response

router = Router()

After = Annotated[
    int, Query(ge=0, le=9_999_999_999, description="The last seq the client has; 0 for the whole stream")
]


@router.get(
    "/threads/<threadId>/messages/<messageId>/stream",
    summary="A reply's deltas after a seq, to catch up after a dropped connection",
    tags=["live"],
    description=(
        "`status` is the reply's own: it says the reply ended only once a read of the"
        " message finds it ended, with its whole text."
    ),
    responses={200: {"description": "The deltas after `after` that are still kept"}, **errors(404)},
)
def stream(thread_id: ThreadId, message_id: MessageId, after: After = 0) -> StreamOut:
    return live.catch_up(router.owner(), thread_id, message_id, after)


@router.post(
    "/threads/<threadId>/messages/<messageId>/stop",
    summary="Stop a reply: it ends `stopped` with the text streamed so far",
    tags=["live"],
    responses={
        200: {"description": "The reply had ended already; unchanged"},
        202: {"description": "Stopping: the reply ends `stopped` within about one flush interval"},
        **errors(404, 409),
    },
)
def stop(thread_id: ThreadId, message_id: MessageId) -> Response[MessageResponse]:
    outcome = live.stop_reply(router.owner(), thread_id, message_id)
    body = MessageResponse(message=MessageOut.of(outcome.message))
    return json_response(202 if outcome.accepted else 200, body)
