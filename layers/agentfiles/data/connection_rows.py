"""WebSocket connections and what they follow, and the frames pushed to them.

- the connection row (`OWNER#{owner}`, `CONN#{connectionId}`): who is connected, and the
  threads it ever subscribed to (so `$disconnect` can remove its subscriptions);
- one subscription row per followed thread (`OWNER#{owner}#THREAD#{threadId}`,
  `SUB#{connectionId}`): a thread's subscribers are one Query, owner-scoped like every
  key, and go with the thread when it is purged.

Both expire (TTL) after the longest life API Gateway gives a connection, so a
connection whose `$disconnect` never ran leaves nothing behind for long.
"""

from __future__ import annotations

from botocore.exceptions import BotoCoreError, ClientError

from agentfiles.data import clients, keys, table
from agentfiles.data.errors import ConditionFailed, Unavailable
from agentfiles.data.table import cond
from agentfiles.models.common import iso_from_ms
from agentfiles.topology import TTL_ATTRIBUTE


def open_connection(owner: str, connection_id: str, now_ms: int, expires_at_s: int) -> None:
    key = keys.connection_key(owner, connection_id)
    table.put(
        {
            "pk": key.pk,
            "sk": key.sk,
            "owner": owner,
            "connectionId": connection_id,
            "connectedAt": iso_from_ms(now_ms),
            TTL_ATTRIBUTE: expires_at_s,
        }
    )


def follow(owner: str, thread_id: str, connection_id: str, expires_at_s: int) -> bool:
    """Subscribe a connection to a thread; False when the connection is not (or no
    longer) open."""
    try:
        # The connection remembers the thread first, so a disconnect never misses it.
        table.update(
            keys.connection_key(owner, connection_id),
            add={"threads": {thread_id}},  # type: ignore[dict-item]  # a string set
            when=cond("attribute_exists(#pk)"),
        )
    except ConditionFailed:
        return False
    key = keys.subscription_key(owner, thread_id, connection_id)
    table.put({"pk": key.pk, "sk": key.sk, "connectionId": connection_id, TTL_ATTRIBUTE: expires_at_s})
    return True


def unfollow(owner: str, thread_id: str, connection_id: str) -> None:
    table.delete(keys.subscription_key(owner, thread_id, connection_id))


def close_connection(owner: str, connection_id: str) -> int:
    """Remove the connection and its subscriptions; returns how many threads it followed."""
    old = table.delete(keys.connection_key(owner, connection_id), returns="old")
    threads = list((old or {}).get("threads", []))
    table.delete_many(keys.subscription_key(owner, thread, connection_id) for thread in threads)
    return len(threads)


def subscribers(owner: str, thread_id: str) -> list[str]:
    """The connections following a thread: one Query (strongly consistent, so a client
    that subscribed before a delta was written is sure to get it pushed)."""
    rows: list[table.Row] = []
    start = None
    while True:
        page = table.query(
            keys.thread_pk(owner, thread_id), prefix=keys.subscription_prefix(), consistent=True, start=start
        )
        rows += page.rows
        if not page.next_start:
            return [row["connectionId"] for row in rows]
        start = page.next_start


def push(connection_id: str, data: str) -> bool:
    """Send one frame to one connection through @connections. False when API Gateway
    says the connection is gone (410)."""
    try:
        clients.connections().post_to_connection(ConnectionId=connection_id, Data=data.encode())
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "GoneException":
            return False
        raise Unavailable(f"the frame could not be pushed: {error}") from error
    except BotoCoreError as error:
        raise Unavailable(f"the @connections endpoint could not be reached: {error}") from error
    return True


def connections_of(owner: str) -> list[str]:
    """The owner's open connections (an erasure closes each)."""
    page = table.query(keys.owner_pk(owner), prefix="CONN#", consistent=True)
    return [str(row["sk"]).removeprefix("CONN#") for row in page.rows]


def disconnect(connection_id: str) -> None:
    """Close a connection through @connections; one already gone is fine."""
    try:
        clients.connections().delete_connection(ConnectionId=connection_id)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "GoneException":
            raise Unavailable(f"the connection could not be closed: {error}") from error
    except BotoCoreError as error:
        raise Unavailable(f"the @connections endpoint could not be reached: {error}") from error
