"""How AWS meters a request, as its pricing pages and developer guides define it.

Pure arithmetic, no AWS: the meter (`meter.py`) feeds it what it saw, the tests check
it on known cases (`bench/capacity/tests/test_capacity_units.py`).

DynamoDB (on-demand; https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/
CapacityUnitCalculations.html and .../read-write-operations.html):

- An item's size is the sum of its attribute names and values (UTF-8 bytes for
  strings, raw bytes for binary, about one byte per two significant digits plus one
  for numbers, one byte for booleans and nulls, 3 bytes of overhead for a list or map
  plus one byte per element).
- A write costs one write request unit per started 1 KiB of the item (the larger of
  its size before and after, for a put over an existing item or an update; the old
  item's size for a delete), two inside a transaction. A conditional write that fails
  still costs the same.
- A read costs one read request unit per started 4 KiB strongly consistent, half of
  that eventually consistent, twice that inside a transaction. A Query rounds up the
  total size of the items it read (its page) once; BatchGetItem rounds up each item on
  its own, as a GetItem would. A read that finds nothing still costs one 4 KiB step.
- Every global secondary index an item enters, leaves or moves in (its index key
  changes) costs one write on the index for entering or leaving and two for moving
  (delete + put), each priced on the size of the projected entry (for KEYS_ONLY: the
  table's keys and the index's keys).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

KIB = 1024
WRITE_UNIT_BYTES = 1 * KIB
READ_UNIT_BYTES = 4 * KIB
SQS_REQUEST_CHUNK_BYTES = 64 * KIB  # each started 64 KiB of payload is one request
HTTP_API_REQUEST_CHUNK_BYTES = 512 * KIB  # HTTP API requests are metered in 512 KB steps
WEBSOCKET_MESSAGE_CHUNK_BYTES = 32 * KIB  # WebSocket messages are metered in 32 KB steps
LIST_OR_MAP_OVERHEAD = 3
ELEMENT_OVERHEAD = 1

Consistency = Literal["eventual", "strong", "transactional"]
_READ_FACTOR: dict[str, float] = {"eventual": 0.5, "strong": 1.0, "transactional": 2.0}


def _utf8(text: str) -> int:
    return len(text.encode("utf-8"))


def number_size(text: str) -> int:
    """About one byte per two significant digits, plus one (leading and trailing
    zeros trimmed)."""
    try:
        value = Decimal(text)
    except InvalidOperation as error:
        raise ValueError(f"not a DynamoDB number: {text!r}") from error
    digits = "".join(str(d) for d in value.as_tuple().digits).strip("0")
    return math.ceil(len(digits) / 2) + 1


def _binary_size(value: Any) -> int:
    # boto3 hands binary back as bytes or as boto3.dynamodb.types.Binary (`.value`).
    return len(getattr(value, "value", value))


def value_size(value: Mapping[str, Any]) -> int:
    """The size of one attribute value in DynamoDB JSON (`{"S": "..."}`), without its name."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return _utf8(inner)
    if kind == "N":
        return number_size(inner)
    if kind == "B":
        return _binary_size(inner)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(_utf8(v) for v in inner)
    if kind == "NS":
        return sum(number_size(v) for v in inner)
    if kind == "BS":
        return sum(_binary_size(v) for v in inner)
    if kind == "L":
        return LIST_OR_MAP_OVERHEAD + sum(ELEMENT_OVERHEAD + value_size(v) for v in inner)
    if kind == "M":
        members = sum(ELEMENT_OVERHEAD + _utf8(name) + value_size(v) for name, v in inner.items())
        return LIST_OR_MAP_OVERHEAD + members
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: Mapping[str, Mapping[str, Any]] | None) -> int:
    """Bytes of an item (DynamoDB JSON) as DynamoDB counts them; 0 for no item."""
    if not item:
        return 0
    return sum(_utf8(name) + value_size(value) for name, value in item.items())


def write_units(size: int, *, transactional: bool = False) -> int:
    """Write request units for one item write of `size` bytes (at least one)."""
    units = max(1, math.ceil(size / WRITE_UNIT_BYTES))
    return 2 * units if transactional else units


def read_units(size: int, consistency: Consistency = "strong") -> float:
    """Read request units for reading one item (GetItem) of `size` bytes."""
    return max(1, math.ceil(size / READ_UNIT_BYTES)) * _READ_FACTOR[consistency]


def query_read_units(sizes: Iterable[int], consistency: Consistency = "eventual") -> float:
    """A Query page: the total of the items it read, rounded up once."""
    return read_units(sum(sizes), consistency)


def batch_get_read_units(sizes: Iterable[int], consistency: Consistency = "eventual") -> float:
    """BatchGetItem: each item rounded up on its own."""
    return sum(read_units(size, consistency) for size in sizes)


def index_entry(
    item: Mapping[str, Mapping[str, Any]] | None, index_keys: tuple[str, str], table_keys: tuple[str, str]
) -> dict[str, Mapping[str, Any]] | None:
    """The KEYS_ONLY entry an item has in a sparse index, or None when it is not in it
    (an item is in a global secondary index only when it carries all the index's keys)."""
    if not item or any(name not in item for name in index_keys):
        return None
    return {name: item[name] for name in (*table_keys, *index_keys) if name in item}


def index_writes(
    before: Mapping[str, Mapping[str, Any]] | None,
    after: Mapping[str, Mapping[str, Any]] | None,
    index_keys: tuple[str, str],
    table_keys: tuple[str, str],
) -> list[dict[str, Mapping[str, Any]]]:
    """The entries a KEYS_ONLY index writes when an item goes from `before` to `after`:
    none when its entry is unchanged, one when it enters or leaves, two (delete the old
    entry, put the new) when its index key changes. Each costs `write_units` of its size."""
    old = index_entry(before, index_keys, table_keys)
    new = index_entry(after, index_keys, table_keys)
    if old == new:
        return []
    return [entry for entry in (old, new) if entry is not None]


def chunks(size: int, chunk: int) -> int:
    """Requests billed for a payload metered in `chunk`-byte steps (at least one)."""
    return max(1, math.ceil(size / chunk))


def billed_ms(duration_s: float) -> int:
    """Lambda bills duration rounded up to the millisecond."""
    return max(1, math.ceil(duration_s * 1000 - 1e-9))


def gb_seconds(duration_s: float, memory_mb: int) -> float:
    """Lambda compute for one invocation: billed duration times configured memory."""
    return billed_ms(duration_s) / 1000 * memory_mb / 1024
