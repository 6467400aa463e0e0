"""How many generations an owner may ask for per window, decided inside the write.

One counter row per owner and window (`RATE#{window}`, windows of `WINDOW_MS` numbered
from the epoch): `take` is an item of the transaction that saves the request, +1 only
while the count is below the limit, so the limit holds exactly under any concurrency
and costs no call of its own. Rows expire (TTL) soon after their window.

A fixed window lets a burst straddling two windows reach twice the limit for a moment;
in exchange it needs one row and one condition, not a log of timestamps.
"""

from __future__ import annotations

from agentfiles.data import keys
from agentfiles.data.table import Update, cond
from agentfiles.topology import TTL_ATTRIBUTE

WINDOW_MS = 60_000


def window_of(now_ms: int) -> int:
    return now_ms // WINDOW_MS


def take(owner: str, now_ms: int, limit: int) -> Update:
    """+1 on the owner's counter of the current window, only while it is below `limit`."""
    window = window_of(now_ms)
    ends_s = (window + 1) * WINDOW_MS // 1000
    return Update(
        keys.rate_key(owner, window),
        set={TTL_ATTRIBUTE: ends_s + WINDOW_MS // 1000},
        add={"count": 1},
        when=cond("attribute_not_exists(#count) OR #count < :limit", limit=limit),
    )


def seconds_left(now_ms: int) -> int:
    """Whole seconds until the current window ends (at least 1): when to try again."""
    ends_ms = (window_of(now_ms) + 1) * WINDOW_MS
    return max(1, -(-(ends_ms - now_ms) // 1000))
