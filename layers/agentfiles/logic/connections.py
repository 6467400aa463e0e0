"""WebSocket connections: who is connected, and which of their threads they follow.

A connection belongs to the owner its `$connect` token named; a subscription to one of
that owner's active threads is one row in the thread's partition, so another owner's
thread (or an unknown one) can never be followed: it is `thread_not_found`.
"""

from __future__ import annotations

from agentfiles.data import connection_rows, thread_rows
from agentfiles.models.common import ErrorDetail, now_ms
from agentfiles.models.live import ErrorFrame, Frame, SubscribedFrame, SubscriptionRequest, UnsubscribedFrame

# API Gateway closes a WebSocket connection after two hours at most; rows outlive it a little.
CONNECTION_TTL_S = 2 * 3600 + 600


def _expires_at_s() -> int:
    return now_ms() // 1000 + CONNECTION_TTL_S


def connect(owner: str, connection_id: str) -> None:
    connection_rows.open_connection(owner, connection_id, now_ms(), _expires_at_s())


def disconnect(owner: str, connection_id: str) -> None:
    connection_rows.close_connection(owner, connection_id)


def _not_found(thread_id: str) -> ErrorFrame:
    detail = ErrorDetail(code="thread_not_found", message=f"thread {thread_id} not found")
    return ErrorFrame(thread_id=thread_id, error=detail)


def handle(owner: str, connection_id: str, request: SubscriptionRequest) -> Frame:
    thread_id = request.thread_id
    if request.action == "unsubscribe":
        connection_rows.unfollow(owner, thread_id, connection_id)
        return UnsubscribedFrame(thread_id=thread_id)
    thread = thread_rows.get_thread(owner, thread_id)
    if thread is None or thread.status != "active":
        return _not_found(thread_id)
    if not connection_rows.follow(owner, thread_id, connection_id, _expires_at_s()):
        detail = ErrorDetail(code="connection_not_found", message="this connection is not registered")
        return ErrorFrame(thread_id=thread_id, error=detail)
    return SubscribedFrame(thread_id=thread_id)


def bad_frame(message: str, thread_id: str | None = None) -> ErrorFrame:
    return ErrorFrame(thread_id=thread_id, error=ErrorDetail(code="bad_request", message=message))
