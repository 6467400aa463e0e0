"""moto's DynamoDB, made safe for the local stack's many threads.

moto serves each request on a thread of its own, and its DynamoDB backend is not
written for that: a transaction deep-copies every table it touches (so that it can
put the copy back if the transaction fails) while other requests change items, which
fails with "dictionary changed size during iteration"; and a transaction that fails
puts its copy back over whatever other requests wrote meanwhile. The local stack
runs the API, the queue pollers and the schedule at once, and refuses transactions
often (quotas, rate windows, leases), so its DynamoDB requests take turns here. On
AWS, DynamoDB isolates transactions itself.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

_LOCK = threading.RLock()
_OPERATIONS = ("get_item", "query", "scan", "put_item", "update_item", "delete_item", "transact_write_items")


def serialize_requests() -> None:
    """One DynamoDB request at a time in this process's moto (idempotent)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _OPERATIONS:
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "serialized", False):
            continue
        setattr(DynamoDBBackend, name, _serialized(original))


def _serialized(operation: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(operation)
    def in_turn(*args: Any, **kwargs: Any) -> Any:
        with _LOCK:
            return operation(*args, **kwargs)

    in_turn.serialized = True  # type: ignore[attr-defined]
    return in_turn
