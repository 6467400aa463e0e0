"""ULIDs: sortable ids, so a descending Query on `MSG#{ulid}` is newest first."""

from __future__ import annotations

import os
import re
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_INDEX = {char: value for value, char in enumerate(_ALPHABET)}
ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
_ULID_RE = re.compile(ULID_PATTERN)


def _encode(value: int) -> str:
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def new_ulid(now_ms: int | None = None) -> str:
    timestamp = int(time.time() * 1000) if now_ms is None else now_ms
    randomness = int.from_bytes(os.urandom(10), "big")
    return _encode((timestamp << 80) | randomness)


def next_ulid(ulid: str) -> str:
    """The id right after `ulid`: same millisecond, sorts after it."""
    value = 0
    for char in ulid:
        value = (value << 5) | _INDEX[char]
    return _encode(value + 1)


def ulid_time_ms(ulid: str) -> int:
    value = 0
    for char in ulid[:10]:
        value = (value << 5) | _INDEX[char]
    return value


def is_ulid(value: str) -> bool:
    return bool(_ULID_RE.match(value))


def usable_owner(sub: str | None) -> bool:
    """An owner is a token's `sub` that keys can hold: `#` separates key parts and `/`
    object key parts, so a subject with either is refused (by the API and the socket)."""
    if not sub:
        return False
    return "#" not in sub and "/" not in sub
