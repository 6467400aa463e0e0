"""Frames to the WebSocket connections that follow a thread, or to every open
connection of an owner (what concerns the account: a settled upload, an export).

Publishing is best effort: a client that missed a frame catches up by seq through
`GET .../stream?after=N`, so a push that fails is logged, never raised into the work
that produced it. A connection API Gateway calls gone (410) is forgotten on the spot.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentfiles.data import connection_rows
from agentfiles.data.errors import DataError
from agentfiles.models.live import Frame, MessageFrame, frame_json
from agentfiles.models.messages import MessageOut, MessageRecord
from agentfiles.observability import logger
from agentfiles.settings import get_settings

# API Gateway takes at most 128 KB per PostToConnection; a final message over this goes
# without its content, which the client then reads with GET.
FRAME_MAX_BYTES = 120 * 1024


def enabled() -> bool:
    return get_settings().websocket_callback_url is not None


def message_frame(record: MessageRecord | MessageOut) -> MessageFrame:
    out = record if isinstance(record, MessageOut) else MessageOut.of(record)
    frame = MessageFrame(thread_id=out.thread_id, message=out)
    if len(frame_json(frame).encode()) > FRAME_MAX_BYTES:
        shorter = out.model_copy(update={"content": []})
        frame = MessageFrame(thread_id=out.thread_id, message=shorter, content_omitted=True)
    return frame


def publish(owner: str, thread_id: str, frames: Sequence[Frame]) -> int:
    """Send the frames, in order, to every connection following the thread (found with
    one Query). Returns how many connections got them."""
    if not frames or not enabled():
        return 0
    try:
        followers = connection_rows.subscribers(owner, thread_id)
    except DataError:
        logger.warning("subscribers could not be read; frames not pushed", extra={"thread_id": thread_id})
        return 0
    return _send(owner, followers, frames)


def publish_to_owner(owner: str, frames: Sequence[Frame]) -> int:
    """Send the frames, in order, to every open connection of the owner (one Query)."""
    if not frames or not enabled():
        return 0
    try:
        connections = connection_rows.connections_of(owner)
    except DataError:
        logger.warning("connections could not be read; frames not pushed")
        return 0
    return _send(owner, connections, frames)


def _send(owner: str, connection_ids: Sequence[str], frames: Sequence[Frame]) -> int:
    payloads = [frame_json(frame) for frame in frames]
    reached = 0
    for connection_id in connection_ids:
        try:
            for payload in payloads:
                if not connection_rows.push(connection_id, payload):
                    connection_rows.close_connection(owner, connection_id)
                    logger.info("gone connection removed", extra={"connection_id": connection_id})
                    break
            else:
                reached += 1
        except DataError as error:
            logger.warning("push failed", extra={"connection_id": connection_id, "error_message": str(error)})
    return reached


def publish_messages(*records: MessageRecord) -> int:
    """Messages of one thread were created or changed status."""
    if not records:
        return 0
    return publish(records[0].owner, records[0].thread_id, [message_frame(r) for r in records])
